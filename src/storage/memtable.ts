/**
 * The memtable: an in-memory map from user key to its versions (newest first), with key order
 * available for iteration. Writers add versions; readers look up "the newest version with
 * seq <= S" and iterate in internal order (key ascending, seq descending).
 *
 * Layout, chosen by measurement:
 *  - Version data is kept in chunks of shared memory (SharedArrayBuffers): the commit-log
 *    records of each group commit, copied in whole (applyRecords: one copy per group), or the
 *    key and value of a version added one by one (recovery). Rows point into them. A flush's
 *    worker reads the surviving versions there in place (SurvivorPick), so their bytes are not
 *    copied on this thread.
 *    Each version is a row: 8 int32s (segment, key/value offsets and lengths, kind, older
 *    row, key id) and 2 doubles (seq, time) in two typed arrays, so a lookup
 *    touches one or two cache lines per version and there is no JS object per write: the
 *    garbage collector has almost nothing to trace (per-write objects cost 30-60 ms scavenge
 *    pauses under write load, which broke the 20 ms event-loop budget).
 *  - Each distinct key gets a key id (0, 1, 2, ... in order of first write). An open-addressing
 *    hash table (linear probing, at most half full) finds a key's newest row from its bytes:
 *    each slot is two int32s, that row + 1 (0 = empty) and the key's hash (murmur3 over the
 *    bytes, hashKey); a probe compares bytes in place, against that row's key in its record
 *    buffer. So a get or an insert allocates nothing that outlives it. (A Map keyed by latin1
 *    strings built and hashed a string per get and per insert, and every key's string and Map
 *    entry survived the scavenges: bench/results/storage-perf-notes.md, session 9.)
 *  - Key order is built in bounded steps as keys come: sorted runs (a large base, a small
 *    delta, and while they merge a frozen former delta) plus the ids added since (the tail).
 *    When the tail reaches OrderLimits.sliceKeys distinct keys, the insert that made it so sorts
 *    it and merges it into the delta (orderTail), and a base merge, when one is due, advances by
 *    one step; an iterator or countRange does the same for the shorter tail it finds, and
 *    merges the runs as it reads. So no one call orders more than one slice and one step:
 *    sorting a full memtable's keys at its first iterator held the event loop ~0.1 s for 500k
 *    keys (bench/results/storage-perf-notes.md, session 11). Sorting reads a dense copy
 *    of each distinct key (keyData, written when the key id is made, in id order), never the
 *    keys scattered over the record buffers: 100k keys read from there cost ~50 ms of cache
 *    misses. The sort is a radix-like pass over 4-byte words (sortKeyIds). A flush never needs
 *    the order (survivorRows: the worker sorts what survives). (A skip list spent ~30
 *    pointer-chasing comparisons per insert: 5-10x slower.)
 *
 * Consistency: an iterator takes the sorted runs as they are when created (every key written
 * so far; none of them is written again: the next merge into a delta it holds copies it
 * first) and, per key, the version chain from the head it finds (older links never change);
 * keys and versions added later have sequence numbers above any snapshot it reads at.
 *
 * Size accounting (`bytes`) counts keys, values, a fixed per-version overhead, the dense key
 * copy and an order record (ORDER_BYTES_PER_KEY) once per distinct key; the engine
 * turns the memtable immutable once it passes EngineOptions.memtableBytes.
 */
import assert from 'node:assert';
import { JS_COMPARE_BYTES_MAX } from './bytes.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry, type Kind } from './internal_entry.js';
import { LOG_HEADER_BYTES } from './log.js';
import { stripeOf } from './compaction_merge.js';
import { newEntryRows, setEntryRow, type EntryRows } from './sorted_log.js';
import { ByteReader } from './varint.js';

/** Per-version bookkeeping bytes counted on top of key and value (rows, index slots). */
export const MEMTABLE_ENTRY_OVERHEAD_BYTES = 64;
const INITIAL_ROWS = 1024;
const INITIAL_KEYS = 1024;
// A row's int32 fields (rowI[r * ROW_INTS + field]) and double fields (rowF[r * ROW_FLOATS + field]).
const ROW_SEG = 0;
const ROW_KEY_OFF = 1;
const ROW_KEY_LEN = 2;
const ROW_VAL_OFF = 3;
const ROW_VAL_LEN = 4;
/** The version's Kind, or ROW_PUT_EXPIRING for a put with an expiry time. */
const ROW_KIND = 5;
/** The key's next older row, or -1. */
const ROW_PREV = 6;
const ROW_KEY_ID = 7;
const ROW_INTS = 8;
const ROW_SEQ = 0;
const ROW_TIME = 1;
const ROW_FLOATS = 2;
/**
 * ROW_KIND of a put that expires (time > 0). A read at the latest sequence number tells a live
 * row from the int32s alone (rowDeadAt reads the time only for these): the doubles are a cache
 * line of their own, a miss per memtable read on this VM.
 */
const ROW_PUT_EXPIRING = 2;
/**
 * A chunk of shared memory (a SharedArrayBuffer) that group commits' records and added versions
 * are copied into, back to back. Shared so that a flush's worker can read the surviving
 * versions in place: copying them out on the event loop was 40-74 ms of CPU per 64 MiB flush
 * (storage-perf-notes.md, sessions 13 and 15). The records are written elsewhere first and
 * copied in whole: V8 copies into shared memory as a relaxed-atomic memmove, per call ~+50 ns
 * over a plain one, so writing each key and value straight into it (two copies per op) cost
 * ~60-130 ns per op, one aligned copy of a group ~13 ns per op (session 15).
 */
const RECORD_CHUNK_BYTES = 1024 * 1024;
/** Groups of records this large get a shared buffer of their own (a chunk wastes less than this at its end). */
const RECORD_OWN_BUFFER_BYTES_MIN = 256 * 1024;
/** A group's records start at a multiple of this in a chunk (the copy moves words, not bytes). */
const RECORD_ALIGN_BYTES = 8;
/** Runs of keys up to this long are insertion-sorted (sortIds); longer ones radix-sorted. */
const INSERTION_SORT_KEYS_MAX = 12;
const INITIAL_KEY_BYTES = 64 * 1024;
/**
 * How a memtable builds its key order in bounded steps (Memtable.orderTail). Defaults:
 * ORDER_LIMITS; tests use small ones so that every stage runs.
 */
export interface OrderLimits {
  /**
   * Distinct keys the unsorted tail may reach before an insert orders it: the most one call
   * sorts (sortKeyIds) and merges into the delta. While the memtable is small the slice is
   * half the keys ordered so far, at least ORDER_SLICE_KEYS_MIN: the first sorts in a process
   * run before V8 compiled them (8192 keys: ~30 ms of sort and ~20 ms of merge cold, ~0.3 and
   * ~1 ms warm).
   */
  sliceKeys: number;
  /** The delta starts merging into the base at this many keys, or at base / 4 if more. */
  deltaMinKeys: number;
  /**
   * Records of a base merge written per orderTail call: at least (1 + 4) * 1.2 * sliceKeys, so
   * that a base merge ends before the delta grows past a quarter of the base.
   */
  mergeStepRecords: number;
}
export const ORDER_LIMITS: Readonly<OrderLimits> = { sliceKeys: 4096, deltaMinKeys: 32768, mergeStepRecords: 24576 };
const ORDER_SLICE_KEYS_MIN = 256;
/** The delta merges into the base once it holds more than base >>> DELTA_BASE_SHIFT keys. */
const DELTA_BASE_SHIFT = 2;
const NO_RECORDS: Int32Array = new Int32Array(0);
/** Moves of up to this many order records are done by a loop (a copyWithin call costs more). */
const JS_MOVE_RECORDS_MAX = 64;

/**
 * murmur3 (x86, 32-bit, seed 0) of buf[off, off + len): the memtable index's hash. The engine
 * hashes a looked-up key once for the active and the immutable memtables (getHashed).
 */
export function hashKey(buf: Uint8Array, off: number, len: number): number {
  let h = 0;
  let i = off;
  const end = off + len;
  for (const end4 = off + (len & ~3); i < end4; i += 4) {
    let k = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < end) {
    let k = 0;
    for (let j = 0; i + j < end; j++) k |= buf[i + j]! << (8 * j);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * Ranges up to this long are copied byte by byte. Buffer.copy of a part of a buffer makes a
 * view object per call; for the 19- and 100-byte ranges of SET -d 100 both cost about the same
 * (~150 ns per range measured on the AMD VM), the loop allocates nothing.
 */
const JS_COPY_BYTES_MAX = 512;

/** n bytes of shared memory (a SharedArrayBuffer of its own; zeroed). */
function sharedBuffer(n: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(n));
}

/** n int32s of shared memory (zeroed). */
function sharedInts(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}

/** A copy of a, n elements long, in shared memory of its own. */
function growShared<T extends Int32Array | Float64Array | Uint8Array>(a: T, n: number): T {
  const ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const b = new ctor(new SharedArrayBuffer(n * a.BYTES_PER_ELEMENT));
  b.set(a);
  return b;
}

/** Order of keys a and b of a dense key copy (Memtable.keyData), known to agree before byte depth. */
function compareKeysFrom(ks: Int32Array, d: Uint8Array, a: number, b: number, depth: number): number {
  const as = ks[a]! + depth;
  const bs = ks[b]! + depth;
  const al = ks[a + 1]! - as;
  const bl = ks[b + 1]! - bs;
  const n = al < bl ? al : bl;
  for (let j = 0; j < n; j++) {
    const x = d[as + j]! - d[bs + j]!;
    if (x !== 0) return x < 0 ? -1 : 1;
  }
  return al === bl ? 0 : al < bl ? -1 : 1;
}

/**
 * Sorts ids (key ids of the dense key copy ks/d: key k is d[ks[k], ks[k + 1])) into key order:
 * a most-significant-first radix-like sort. A run of ids whose keys agree before byte `depth`
 * first skips the bytes they all share (putting first the one key that ends there, if any); a
 * short run is then insertion-sorted by comparing from `depth`; a long one is radix-sorted by
 * each key's big-endian word at `depth` (4 bytes, zero-padded), and each run of equal words is
 * sorted again past them. A work stack, not recursion: adversarial keys (each a prefix of the
 * next) cannot overflow the call stack. Each hot loop is a function of its own: in one
 * function, V8 recompiled it on stack (OSR) and threw the code away at each loop reached for
 * the first time, ~3x the warm time for the first sorts in a process.
 * (Float64Array.sort of packed (word, index) doubles took ~9.5 ms per 100k keys; the radix
 * passes a fraction of that. Reading keys where the rows keep them, in the record buffers,
 * instead of the dense copy: ~50 ms of cache misses per 100k keys.)
 */
export function sortKeyIds(ids: Int32Array, ks: Int32Array, d: Uint8Array): void {
  const n = ids.length;
  const words = new Uint32Array(n);
  const wordsTmp = new Uint32Array(n);
  const idsTmp = new Int32Array(n);
  const counts = new Int32Array(256);
  // (lo, hi, depth) triples still to sort: disjoint runs of 2 keys or more.
  const work = new Int32Array(3 * (n >> 1) + 3);
  work[0] = 0;
  work[1] = n;
  work[2] = 0;
  let top = 3;
  while (top > 0) {
    top -= 3;
    let lo = work[top]!;
    const hi = work[top + 1]!;
    // Pushed as depth + 4: some keys may end before that.
    let depth = minLength(ids, lo, hi, work[top + 2]!, ks);
    for (;;) {
      if (hi - lo < 2) break;
      depth = sharedDepth(ids, lo, hi, depth, ks, d);
      const ended = endsAt(ids, lo, hi, depth, ks);
      if (ended < 0) break;
      // Distinct keys agreeing before depth: only one can end there; it sorts first.
      const t = ids[ended]!;
      ids[ended] = ids[lo]!;
      ids[lo] = t;
      lo++;
    }
    if (hi - lo < 2) continue;
    if (hi - lo <= INSERTION_SORT_KEYS_MAX) {
      insertionSort(ids, lo, hi, depth, ks, d);
      continue;
    }
    radixSortWords(ids, idsTmp, words, wordsTmp, counts, lo, hi, depth, ks, d);
    top = pushEqualWordRuns(work, top, words, lo, hi, depth + 4);
  }
}

/** The shortest length of the keys of ids[lo, hi), or max if none is shorter. */
function minLength(ids: Int32Array, lo: number, hi: number, max: number, ks: Int32Array): number {
  let m = max;
  for (let i = lo; i < hi; i++) {
    const id = ids[i]!;
    const len = ks[id + 1]! - ks[id]!;
    if (len < m) m = len;
  }
  return m;
}

/**
 * The first byte offset >= depth at which the keys of ids[lo, hi) (agreeing before depth) do
 * not all agree, or at which one of them ends.
 */
function sharedDepth(ids: Int32Array, lo: number, hi: number, depth: number, ks: Int32Array, d: Uint8Array): number {
  const first = ids[lo]!;
  for (let at = depth; ; at++) {
    const fAt = ks[first]! + at;
    if (fAt >= ks[first + 1]!) return at;
    const b = d[fAt]!;
    for (let i = lo + 1; i < hi; i++) {
      const id = ids[i]!;
      const p = ks[id]! + at;
      if (p >= ks[id + 1]! || d[p] !== b) return at;
    }
  }
}

/** The index in ids[lo, hi) of the key that ends at depth, or -1. */
function endsAt(ids: Int32Array, lo: number, hi: number, depth: number, ks: Int32Array): number {
  for (let i = lo; i < hi; i++) {
    const id = ids[i]!;
    if (ks[id]! + depth >= ks[id + 1]!) return i;
  }
  return -1;
}

function insertionSort(ids: Int32Array, lo: number, hi: number, depth: number, ks: Int32Array, d: Uint8Array): void {
  for (let i = lo + 1; i < hi; i++) {
    const id = ids[i]!;
    let j = i - 1;
    while (j >= lo && compareKeysFrom(ks, d, ids[j]!, id, depth) > 0) {
      ids[j + 1] = ids[j]!;
      j--;
    }
    ids[j + 1] = id;
  }
}

/**
 * Sorts ids[lo, hi) by each key's big-endian word at depth (left in words[lo, hi)): an LSD
 * radix sort by bytes, skipping the bytes every word has the same.
 */
function radixSortWords(ids: Int32Array, idsTmp: Int32Array, words: Uint32Array, wordsTmp: Uint32Array, counts: Int32Array, lo: number, hi: number, depth: number, ks: Int32Array, d: Uint8Array): void {
  let or = 0;
  let and = -1;
  for (let i = lo; i < hi; i++) {
    const id = ids[i]!;
    const at = ks[id]! + depth;
    const end = ks[id + 1]!;
    let w = 0;
    for (let j = 0; j < 4; j++) w = (w << 8) | (at + j < end ? d[at + j]! : 0);
    or |= w;
    and &= w;
    words[i] = w >>> 0;
  }
  // One pass per byte that is not the same in every word.
  const varying = or ^ and;
  let passes = 0;
  for (let shift = 0; shift < 32; shift += 8) {
    if (((varying >>> shift) & 255) === 0) continue;
    if ((passes & 1) === 0) radixPass(words, ids, wordsTmp, idsTmp, counts, lo, hi, shift);
    else radixPass(wordsTmp, idsTmp, words, ids, counts, lo, hi, shift);
    passes++;
  }
  if ((passes & 1) === 1) {
    ids.set(idsTmp.subarray(lo, hi), lo);
    words.set(wordsTmp.subarray(lo, hi), lo);
  }
}

/** One stable counting pass by the byte at shift, src[lo, hi) to dst[lo, hi). */
function radixPass(srcW: Uint32Array, srcI: Int32Array, dstW: Uint32Array, dstI: Int32Array, counts: Int32Array, lo: number, hi: number, shift: number): void {
  counts.fill(0);
  for (let i = lo; i < hi; i++) counts[(srcW[i]! >>> shift) & 255]!++;
  let sum = lo;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]!;
    counts[b] = sum;
    sum += c;
  }
  for (let i = lo; i < hi; i++) {
    const w = srcW[i]!;
    const at = counts[(w >>> shift) & 255]!++;
    dstW[at] = w;
    dstI[at] = srcI[i]!;
  }
}

/**
 * Pushes (on work, at top) each run of 2 or more equal words in words[lo, hi) (sorted) with
 * depth: their keys agree through it, or through the shortest one's end. Returns the new top.
 */
function pushEqualWordRuns(work: Int32Array, top: number, words: Uint32Array, lo: number, hi: number, depth: number): number {
  for (let i = lo; i < hi; ) {
    const w = words[i]!;
    let j = i + 1;
    while (j < hi && words[j] === w) j++;
    if (j - i > 1) {
      work[top] = i;
      work[top + 1] = j;
      work[top + 2] = depth;
      top += 3;
    }
    i = j;
  }
  return top;
}

/**
 * The order is kept as records of ORDER_STRIDE int32s: a key id, then its key's first 16 bytes
 * as four big-endian words (zero-padded past the key's end, sign bit flipped so that int32
 * order is byte order). A merge or a seek compares the cached words, next to each other in the
 * order, and reads the dense key copy only when all four are equal: comparing through the key
 * ids (keyStart, then keyData, both scattered) cost two cache misses per comparison, ~1.8 us
 * per merged key at 500k keys on this VM. 16 bytes cover a data key up to its first digits
 * (0x01, 2-byte slot, `key:`, 9 digits).
 */
const ORDER_STRIDE = 5;
const ORDER_WORDS = 4;
/** What the order costs per distinct key (one record, plus room to grow), counted in `bytes`. */
const ORDER_BYTES_PER_KEY = 6 * ORDER_STRIDE;

/** Word w (0-3) of key buf[off, end) as an order record holds it (zero-padded, sign-flipped). */
function prefixWord(buf: Uint8Array, off: number, end: number, w: number): number {
  const at = off + 4 * w;
  let x = 0;
  for (let j = 0; j < 4; j++) x = (x << 8) | (at + j < end ? buf[at + j]! : 0);
  return x ^ 0x80000000;
}

/** Writes the order record of key id at rec[o, o + ORDER_STRIDE). */
function setOrderRecord(rec: Int32Array, o: number, id: number, ks: Int32Array, d: Uint8Array): void {
  const s = ks[id]!;
  const e = ks[id + 1]!;
  rec[o] = id;
  for (let w = 0; w < ORDER_WORDS; w++) rec[o + 1 + w] = prefixWord(d, s, e, w);
}

/** Order of the keys of records a[ao] and b[bo] (distinct ids). */
function compareRecords(a: Int32Array, ao: number, b: Int32Array, bo: number, ks: Int32Array, d: Uint8Array): number {
  for (let w = 1; w <= ORDER_WORDS; w++) {
    const x = a[ao + w]!;
    const y = b[bo + w]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return compareKeysFrom(ks, d, a[ao]!, b[bo]!, 0);
}

/**
 * The index p in order[0, i) (records in key order, none with the key of tail record t) such
 * that the keys of records [0, p) are below it and of [p, i) above it: an exponential search
 * back from i, then a binary search, so a key that lands near i costs a few comparisons of
 * records close together.
 */
function gallopBack(order: Int32Array, i: number, tail: Int32Array, t: number, ks: Int32Array, d: Uint8Array): number {
  // Records [hi, i) are above the key; record lo (when lo >= 0) is below it.
  let hi = i;
  let step = 1;
  let lo = i - 1;
  while (lo >= 0 && compareRecords(order, lo * ORDER_STRIDE, tail, t, ks, d) > 0) {
    hi = lo;
    step *= 2;
    lo = i - step;
  }
  let a = lo < 0 ? 0 : lo + 1;
  let b = hi;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (compareRecords(order, m * ORDER_STRIDE, tail, t, ks, d) > 0) b = m;
    else a = m + 1;
  }
  return a;
}

/**
 * Merges tail (tailLen order records in key order) into order's records [0, n) (in key order,
 * no key in both), in place: from the back, each tail record's place found by gallopBack and
 * the records above it moved up once. order must have room for n + tailLen records.
 */
export function mergeOrderRecords(order: Int32Array, n: number, tail: Int32Array, tailLen: number, ks: Int32Array, d: Uint8Array): void {
  let i = n;
  let k = n + tailLen;
  assert(k * ORDER_STRIDE <= order.length, 'mergeOrderRecords: no room');
  for (let j = tailLen - 1; j >= 0; j--) {
    const t = j * ORDER_STRIDE;
    const p = gallopBack(order, i, tail, t, ks, d);
    const moved = i - p;
    if (moved > JS_MOVE_RECORDS_MAX) {
      order.copyWithin((k - moved) * ORDER_STRIDE, p * ORDER_STRIDE, i * ORDER_STRIDE);
    } else {
      for (let x = i * ORDER_STRIDE - 1, y = k * ORDER_STRIDE - 1; x >= p * ORDER_STRIDE; x--, y--) order[y] = order[x]!;
    }
    k -= moved;
    k--;
    for (let w = 0; w < ORDER_STRIDE; w++) order[k * ORDER_STRIDE + w] = tail[t + w]!;
    i = p;
  }
}

export class Memtable {
  private readonly segs: Buffer[] = [];
  /** The chunk being filled (RECORD_CHUNK_BYTES), its index in segs and its bytes in use. */
  private chunk: Buffer | undefined;
  private chunkSeg = 0;
  private chunkUsed = 0;
  // Rows, one per version, as records of ROW_INTS int32s (ROW_SEG ... ROW_KEY_ID) and ROW_FLOATS
  // doubles (ROW_SEQ, ROW_TIME): a lookup touches one or two cache lines per version, not one
  // per field.
  private rows = 0;
  // Rows, heads, the dense key copy and the key order's runs are shared memory, as the chunks
  // are: a flush's worker picks the surviving rows (flushInput) reading them in place.
  private rowI = new Int32Array(new SharedArrayBuffer(INITIAL_ROWS * ROW_INTS * 4));
  private rowF = new Float64Array(new SharedArrayBuffer(INITIAL_ROWS * ROW_FLOATS * 8));
  // Keys: one per distinct key, by id.
  private keyCount = 0;
  /** The newest row of each key id (for iterators; the index holds it too). */
  private heads = sharedInts(INITIAL_KEYS);
  /**
   * Each key id's bytes, copied densely in id order: key id k is keyData[keyStart[k],
   * keyStart[k + 1]). Only key order reads them (sortIds, mergeKeyIds, lowerBound).
   */
  private keyData = new Uint8Array(new SharedArrayBuffer(INITIAL_KEY_BYTES));
  private keyStart = sharedInts(INITIAL_KEYS + 1);
  /**
   * The index: slot i is slots[2i] = the key's newest row + 1 (0: empty) and slots[2i + 1] =
   * the key's hash.
   */
  private slots = new Int32Array(4 * INITIAL_KEYS);
  /*
   * Key order, as order records (ORDER_STRIDE int32s each) in up to three sorted runs that
   * together hold the key ids [0, ordered); ids from `ordered` on (the tail) are not ordered
   * yet:
   *   base    the large run, never written after it is made;
   *   frozen  a former delta being merged with base into mergeOut, mergeStepRecords per
   *           orderTail call (mergeA/mergeB: how far into each, in int32s); never written;
   *           when done, mergeOut becomes the base;
   *   delta   the small run each slice of the tail is merged into, in place (it has room to
   *           grow), unless deltaShared: an iterator holds delta[0, deltaLen) and the next
   *           merge writes into a copy.
   * So no call copies more than the delta plus one merge step, whatever the memtable's size.
   */
  private ordered = 0;
  private base = NO_RECORDS;
  private frozen: Int32Array | undefined;
  private mergeOut = NO_RECORDS;
  private mergeA = 0;
  private mergeB = 0;
  private delta = NO_RECORDS;
  private deltaLen = 0;
  private deltaShared = false;
  bytes = 0;
  maxSeq = 0;
  /** Sequence number of the first version added (0 when empty). */
  minSeq = 0;

  constructor(
    /** The commit log holding this memtable's writes. */
    readonly logNumber: number,
    private readonly limits: Readonly<OrderLimits> = ORDER_LIMITS,
  ) {
    assert(limits.sliceKeys >= 1 && limits.deltaMinKeys >= 1 && limits.mergeStepRecords >= 1, 'order limits must be at least 1');
  }

  get empty(): boolean {
    return this.rows === 0;
  }

  /** Number of versions held. */
  get entries(): number {
    return this.rows;
  }

  /** Number of distinct keys. */
  get keys(): number {
    return this.keyCount;
  }

  private ensureRow(): number {
    const r = this.rows;
    if ((r + 1) * ROW_INTS > this.rowI.length) {
      this.rowI = growShared(this.rowI, this.rowI.length * 2);
      this.rowF = growShared(this.rowF, this.rowF.length * 2);
    }
    return r;
  }

  /** True when row r's key is buf[off, off + len). */
  private keyIs(r: number, buf: Buffer, off: number, len: number): boolean {
    const ri = this.rowI;
    const at = r * ROW_INTS;
    if (ri[at + ROW_KEY_LEN] !== len) return false;
    const kb = this.segs[ri[at + ROW_SEG]!]!;
    const ko = ri[at + ROW_KEY_OFF]!;
    if (len > JS_COMPARE_BYTES_MAX) return kb.compare(buf, off, off + len, ko, ko + len) === 0;
    for (let j = 0; j < len; j++) if (kb[ko + j] !== buf[off + j]) return false;
    return true;
  }

  /**
   * The index slot of key buf[off, off + len) with hash h: where it is, or, when slots[2i] is
   * 0, the empty slot where it goes.
   */
  private findSlot(buf: Buffer, off: number, len: number, h: number): number {
    const slots = this.slots;
    const mask = (slots.length >>> 1) - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const head1 = slots[2 * i]!;
      if (head1 === 0 || (slots[2 * i + 1] === h && this.keyIs(head1 - 1, buf, off, len))) return i;
    }
  }

  /** Doubles the index (rehashing by the stored hashes: no key is read). */
  private growIndex(): void {
    const old = this.slots;
    const slots = new Int32Array(old.length * 2);
    const mask = (slots.length >>> 1) - 1;
    for (let s = 0; s < old.length; s += 2) {
      const head1 = old[s]!;
      if (head1 === 0) continue;
      const h = old[s + 1]!;
      let i = h & mask;
      while (slots[2 * i] !== 0) i = (i + 1) & mask;
      slots[2 * i] = head1;
      slots[2 * i + 1] = h;
    }
    this.slots = slots;
  }

  private insertRow(segNo: number, buf: Buffer, keyOff: number, keyLen: number, valOff: number, valLen: number, seq: number, kind: Kind, time: number): void {
    assert(seq > this.maxSeq, 'memtable seqs must increase');
    const r = this.ensureRow();
    const ri = this.rowI;
    const at = r * ROW_INTS;
    ri[at + ROW_SEG] = segNo;
    ri[at + ROW_KEY_OFF] = keyOff;
    ri[at + ROW_KEY_LEN] = keyLen;
    ri[at + ROW_VAL_OFF] = valOff;
    ri[at + ROW_VAL_LEN] = valLen;
    ri[at + ROW_KIND] = kind === KIND_PUT && time > 0 ? ROW_PUT_EXPIRING : kind;
    this.rowF[r * ROW_FLOATS + ROW_SEQ] = seq;
    this.rowF[r * ROW_FLOATS + ROW_TIME] = time;
    const h = hashKey(buf, keyOff, keyLen);
    const i = this.findSlot(buf, keyOff, keyLen, h);
    const head1 = this.slots[2 * i]!;
    let id: number;
    if (head1 !== 0) {
      ri[at + ROW_PREV] = head1 - 1;
      id = ri[(head1 - 1) * ROW_INTS + ROW_KEY_ID]!;
    } else {
      id = this.keyCount++;
      if (id === this.heads.length) {
        this.heads = growShared(this.heads, id * 2);
        this.keyStart = growShared(this.keyStart, id * 2 + 1);
      }
      this.copyKey(id, buf, keyOff, keyLen);
      this.bytes += ORDER_BYTES_PER_KEY;
      ri[at + ROW_PREV] = -1;
      this.slots[2 * i + 1] = h;
    }
    ri[at + ROW_KEY_ID] = id;
    this.slots[2 * i] = r + 1;
    this.heads[id] = r;
    if (head1 === 0 && this.keyCount * 4 > this.slots.length) this.growIndex();
    if (this.rows === 0) this.minSeq = seq;
    this.rows++;
    this.maxSeq = seq;
    this.bytes += keyLen + valLen + MEMTABLE_ENTRY_OVERHEAD_BYTES;
    if (head1 === 0 && this.keyCount - this.ordered >= this.sliceKeys()) this.orderTail();
  }

  /** Appends key id's bytes to keyData (ids come in order: id is the newest). */
  private copyKey(id: number, buf: Buffer, keyOff: number, keyLen: number): void {
    const start = this.keyStart[id]!;
    const end = start + keyLen;
    if (end > this.keyData.length) this.keyData = growShared(this.keyData, Math.max(end, this.keyData.length * 2));
    const data = this.keyData;
    if (keyLen > JS_COPY_BYTES_MAX) data.set(buf.subarray(keyOff, keyOff + keyLen), start);
    else for (let j = 0; j < keyLen; j++) data[start + j] = buf[keyOff + j]!;
    this.keyStart[id + 1] = end;
    this.bytes += keyLen;
  }

  /**
   * Adds every op of the commit-log records in buf (as written by log.ts writeRecord, already
   * validated). The records are copied (the caller may reuse buf) into the memtable's shared
   * memory, where reads and a flush's worker then find keys and values in place.
   */
  applyRecords(buf: Buffer): void {
    let segNo: number;
    let seg: Buffer;
    let base: number;
    if (buf.length >= RECORD_OWN_BUFFER_BYTES_MIN) {
      segNo = this.segs.length;
      seg = sharedBuffer(buf.length);
      base = 0;
      this.segs.push(seg);
    } else {
      base = this.room(buf.length, RECORD_ALIGN_BYTES);
      segNo = this.chunkSeg;
      seg = this.chunk!;
    }
    seg.set(buf, base);
    // One reader for every record (a reader per record was an object per SET at -P 1): the
    // records were validated, so reading one never runs past its end. Offsets are seg's.
    const end = base + buf.length;
    const r = new ByteReader(seg, base, end);
    let pos = base;
    while (pos < end) {
      const length = seg.readUInt32LE(pos + 4);
      const recordEnd = pos + LOG_HEADER_BYTES + length;
      r.pos = pos + LOG_HEADER_BYTES;
      let seq = r.varint();
      const count = r.varint();
      for (let i = 0; i < count; i++) {
        const kind = r.u8() as Kind;
        const keyLen = r.varint();
        const keyOff = r.pos;
        r.pos += keyLen;
        const time = r.varint();
        let valOff = 0;
        let valLen = 0;
        if (kind === KIND_PUT) {
          valLen = r.varint();
          valOff = r.pos;
          r.pos += valLen;
        }
        this.insertRow(segNo, seg, keyOff, keyLen, valOff, valLen, seq++, kind, time);
      }
      pos = recordEnd;
    }
  }

  /** Adds one version, copying key and value into the chunk (recovery, tests). */
  add(e: InternalEntry): void {
    const keyOff = this.room(e.key.length + e.value.length, 1);
    const a = this.chunk!;
    a.set(e.key, keyOff);
    a.set(e.value, keyOff + e.key.length);
    this.insertRow(this.chunkSeg, a, keyOff, e.key.length, keyOff + e.key.length, e.value.length, e.seq, e.kind, e.time);
  }

  /**
   * Takes n bytes of the chunk at a multiple of `align` (a new chunk when they do not fit);
   * returns their offset in this.chunk.
   */
  private room(n: number, align: number): number {
    let at = Math.ceil(this.chunkUsed / align) * align;
    if (this.chunk === undefined || at + n > this.chunk.length) {
      this.chunk = sharedBuffer(Math.max(RECORD_CHUNK_BYTES, n));
      this.chunkSeg = this.segs.length;
      this.segs.push(this.chunk);
      at = 0;
    }
    this.chunkUsed = at + n;
    return at;
  }

  /**
   * The versions a flush keeps, as rows (a flush's input, sorted_log.ts EntryRows): per key the newest version of each snapshot stripe
   * (compaction_merge.ts rule 1; with no snapshots, only the newest version of each key).
   * The versions a stripe shadows never leave this thread: with the server's 64 MiB memtables
   * and an overwrite load most of them are shadowed (100k keys: 367k versions, 100k kept), and
   * decoding and sorting all of them was most of the flush worker's CPU
   * (bench/results/storage-perf-notes.md, session 10). The rows are in internal order (the
   * memtable's key order, versions newest first), so SortedLogSource finds them in order and
   * does not sort them. The rows point into the memtable's shared memory (EntryRows.bufs: a
   * flush's worker reads keys and values in place; bytes is empty). The table built is the
   * same.
   * In one call (tests, tools); the engine takes them in steps (survivors).
   */
  survivorRows(snapshots: readonly number[]): EntryRows {
    const pick = this.survivors(snapshots);
    while (!pick.step(Number.MAX_SAFE_INTEGER));
    return pick.result();
  }

  /**
   * survivorRows in bounded steps (SurvivorPick.step), for a memtable that gets no more writes
   * (an immutable one); iterators may run between the steps.
   */
  survivors(snapshots: readonly number[]): SurvivorPick {
    const input = this.flushInput(snapshots);
    return new SurvivorPick(input.snapshots, input.runs, input.arrays);
  }

  /**
   * What survivorRowsOf needs to pick this memtable's survivors, for a memtable that gets no
   * more writes: a flush's worker picks them (table_job.ts, input kind 'memtable'). Posted to
   * the worker, every array is shared memory (SharedArrayBuffers: nothing is copied), where
   * picking them here took 57-128 ms of this thread per 64 MiB flush, in slices
   * (storage-perf-notes.md, sessions 13 and 15).
   */
  flushInput(snapshots: readonly number[]): SurvivorInput {
    return {
      snapshots,
      runs: this.orderedRuns(true),
      arrays: {
        rowI: this.rowI,
        rowF: this.rowF,
        rows: this.rows,
        heads: this.heads,
        keyCount: this.keyCount,
        keyStart: this.keyStart,
        keyData: this.keyData,
        segs: this.segs,
      },
    };
  }

  /** Materializes row r (key and value are views into the memtable's buffers). */
  entryAt(r: number): InternalEntry {
    const at = r * ROW_INTS;
    const ko = this.rowI[at + ROW_KEY_OFF]!;
    return this.entryWithKey(r, this.segs[this.rowI[at + ROW_SEG]!]!.subarray(ko, ko + this.rowI[at + ROW_KEY_LEN]!));
  }

  /** Row r with `key` (equal bytes) as its key; the value is a view into the memtable's buffer. */
  private entryWithKey(r: number, key: Buffer): InternalEntry {
    const ri = this.rowI;
    const at = r * ROW_INTS;
    const vo = ri[at + ROW_VAL_OFF]!;
    return {
      key,
      seq: this.rowF[r * ROW_FLOATS + ROW_SEQ]!,
      kind: ri[at + ROW_KIND] === KIND_DELETE ? KIND_DELETE : KIND_PUT,
      time: this.rowF[r * ROW_FLOATS + ROW_TIME]!,
      value: this.segs[ri[at + ROW_SEG]!]!.subarray(vo, vo + ri[at + ROW_VAL_LEN]!),
    };
  }

  /** @internal The newest row of key id. */
  headOf(id: number): number {
    return this.heads[id]!;
  }

  /** @internal */
  olderThan(r: number): number {
    return this.rowI[r * ROW_INTS + ROW_PREV]!;
  }

  /** @internal */
  seqAt(r: number): number {
    return this.rowF[r * ROW_FLOATS + ROW_SEQ]!;
  }

  /** Order of key (a caller's buffer) and key id. */
  private compareKeyToId(key: Buffer, id: number): number {
    const s = this.keyStart[id]!;
    const e = this.keyStart[id + 1]!;
    const d = this.keyData;
    const n = Math.min(key.length, e - s);
    for (let j = 0; j < n; j++) {
      const x = key[j]! - d[s + j]!;
      if (x !== 0) return x < 0 ? -1 : 1;
    }
    return key.length === e - s ? 0 : key.length < e - s ? -1 : 1;
  }

  /** Ids [from, to) in key order (sortKeyIds over the dense key copy). */
  private sortIds(from: number, to: number): Int32Array {
    const out = new Int32Array(to - from);
    for (let i = 0; i < out.length; i++) out[i] = from + i;
    sortKeyIds(out, this.keyStart, this.keyData);
    return out;
  }

  /** The tail length an insert orders (OrderLimits.sliceKeys). */
  private sliceKeys(): number {
    const ramp = this.ordered >>> 1;
    const max = this.limits.sliceKeys;
    return ramp >= max ? max : Math.max(ramp, Math.min(max, ORDER_SLICE_KEYS_MIN));
  }

  /**
   * One bounded step of building the key order: sorts the tail (at most sliceKeys ids) and
   * merges it into the delta; starts a base merge when the delta is large enough; advances the
   * base merge by mergeStepRecords.
   */
  private orderTail(): void {
    const n = this.ordered;
    const to = this.keyCount;
    const ks = this.keyStart;
    const d = this.keyData;
    if (n < to) {
      const ids = this.sortIds(n, to);
      const tail = new Int32Array(ids.length * ORDER_STRIDE);
      for (let j = 0; j < ids.length; j++) setOrderRecord(tail, j * ORDER_STRIDE, ids[j]!, ks, d);
      const len = this.deltaLen + ids.length;
      if (this.deltaShared || this.delta.length < len * ORDER_STRIDE) {
        const next = sharedInts(Math.max(len + (len >>> 1), len + this.limits.sliceKeys) * ORDER_STRIDE);
        next.set(this.delta.subarray(0, this.deltaLen * ORDER_STRIDE));
        this.delta = next;
        this.deltaShared = false;
      }
      mergeOrderRecords(this.delta, this.deltaLen, tail, ids.length, ks, d);
      this.deltaLen = len;
      this.ordered = to;
    }
    if (this.frozen === undefined && this.deltaLen >= Math.max(this.limits.deltaMinKeys, this.base.length / ORDER_STRIDE >>> DELTA_BASE_SHIFT)) {
      this.startBaseMerge();
    }
    if (this.frozen !== undefined) this.stepBaseMerge();
  }

  /** The delta becomes frozen, to be merged with the base; a new delta starts empty. */
  private startBaseMerge(): void {
    const frozen = this.delta.subarray(0, this.deltaLen * ORDER_STRIDE);
    this.delta = NO_RECORDS;
    this.deltaLen = 0;
    this.deltaShared = false;
    if (this.base.length === 0) {
      this.base = frozen;
      return;
    }
    this.frozen = frozen;
    this.mergeOut = sharedInts(this.base.length + frozen.length);
    this.mergeA = 0;
    this.mergeB = 0;
  }

  /** Writes the next mergeStepRecords records of merging base and frozen; the last makes the base. */
  private stepBaseMerge(): void {
    const a = this.base;
    const b = this.frozen!;
    const out = this.mergeOut;
    const ks = this.keyStart;
    const d = this.keyData;
    let i = this.mergeA;
    let j = this.mergeB;
    let o = i + j;
    const end = Math.min(out.length, o + this.limits.mergeStepRecords * ORDER_STRIDE);
    while (o < end) {
      if (j >= b.length || (i < a.length && compareRecords(a, i, b, j, ks, d) < 0)) {
        for (let w = 0; w < ORDER_STRIDE; w++) out[o + w] = a[i + w]!;
        i += ORDER_STRIDE;
      } else {
        for (let w = 0; w < ORDER_STRIDE; w++) out[o + w] = b[j + w]!;
        j += ORDER_STRIDE;
      }
      o += ORDER_STRIDE;
    }
    if (o === out.length) {
      this.base = out;
      this.frozen = undefined;
      this.mergeOut = NO_RECORDS;
    } else {
      this.mergeA = i;
      this.mergeB = j;
    }
  }

  /**
   * The sorted runs (order records) that together hold every key id; `hold`: the caller keeps
   * them (none is ever written again). A pending tail or base merge takes one step first.
   */
  private orderedRuns(hold: boolean): Int32Array[] {
    if (this.ordered < this.keyCount || this.frozen !== undefined) this.orderTail();
    const runs: Int32Array[] = [];
    if (this.base.length > 0) runs.push(this.base);
    if (this.frozen !== undefined) runs.push(this.frozen);
    if (this.deltaLen > 0) {
      runs.push(this.delta.subarray(0, this.deltaLen * ORDER_STRIDE));
      if (hold) this.deltaShared = true;
    }
    return runs;
  }

  /** @internal Order of the keys of order records a[ao] and b[bo] (MemtableIterator). */
  compareOrder(a: Int32Array, ao: number, b: Int32Array, bo: number): number {
    return compareRecords(a, ao, b, bo, this.keyStart, this.keyData);
  }

  /** Index of the first record in run (order records, key order) whose key is >= key. */
  private lowerBound(run: Int32Array, key: Buffer): number {
    const w0 = prefixWord(key, 0, key.length, 0);
    const w1 = prefixWord(key, 0, key.length, 1);
    const w2 = prefixWord(key, 0, key.length, 2);
    const w3 = prefixWord(key, 0, key.length, 3);
    let lo = 0;
    let hi = run.length / ORDER_STRIDE;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const o = mid * ORDER_STRIDE;
      let c = w0 !== run[o + 1] ? w0 - run[o + 1]! : w1 !== run[o + 2] ? w1 - run[o + 2]! : w2 !== run[o + 3] ? w2 - run[o + 3]! : w3 - run[o + 4]!;
      if (c === 0) c = this.compareKeyToId(key, run[o]!);
      if (c > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The newest version of key with seq <= seq, or undefined when the memtable has none. The
   * entry's key is the caller's `key` (not a copy); its value is a view into the memtable.
   */
  get(key: Buffer, seq: number): InternalEntry | undefined {
    // Empty (a reopened engine's): nothing to hash.
    if (this.rows === 0) return undefined;
    return this.getHashed(key, hashKey(key, 0, key.length), seq);
  }

  /** get() with the key's hashKey already computed (one hash for several memtables). */
  getHashed(key: Buffer, hash: number, seq: number): InternalEntry | undefined {
    const r = this.rowHashed(key, hash, seq);
    return r >= 0 ? this.entryWithKey(r, key) : undefined;
  }

  /**
   * getHashed without the entry record: the row of the newest version of `key` at `seq` or
   * below, or -1 (for KVEngine.getSync, which needs only liveness and the value: rowDeadAt and
   * rowValue; a sampling heap profile put the record at ~74 B of every SET's and GET's read).
   */
  rowHashed(key: Buffer, hash: number, seq: number): number {
    const r = this.slots[2 * this.findSlot(key, 0, key.length, hash)]! - 1;
    // At maxSeq or above every version is visible: the newest answers, its seq (in the rows'
    // doubles, another cache line) not read.
    return seq >= this.maxSeq ? r : this.visibleFrom(r, seq);
  }

  /** The first of row r and its older versions with seq <= seq, or -1. */
  private visibleFrom(r: number, seq: number): number {
    while (r >= 0 && this.rowF[r * ROW_FLOATS + ROW_SEQ]! > seq) r = this.rowI[r * ROW_INTS + ROW_PREV]!;
    return r;
  }

  /** isDeadAt of row `r`'s entry (rowHashed): a delete, or expired at nowMs. */
  rowDeadAt(r: number, nowMs: number): boolean {
    const kind = this.rowI[r * ROW_INTS + ROW_KIND];
    if (kind === KIND_DELETE) return true;
    return kind === ROW_PUT_EXPIRING && nowMs >= this.rowF[r * ROW_FLOATS + ROW_TIME]!;
  }

  /** Row `r`'s value (rowHashed): a view of the memtable's memory, as entryWithKey's value. */
  rowValue(r: number): Buffer {
    const ri = this.rowI;
    const at = r * ROW_INTS;
    const vo = ri[at + ROW_VAL_OFF]!;
    return this.segs[ri[at + ROW_SEG]!]!.subarray(vo, vo + ri[at + ROW_VAL_LEN]!);
  }

  /** A pull iterator in internal order from the first key >= gte. */
  iterator(gte?: Buffer): MemtableIterator {
    const runs = this.orderedRuns(true);
    return new MemtableIterator(this, runs, runs.map((run) => (gte ? this.lowerBound(run, gte) : 0)));
  }

  /** Number of distinct keys in [gte, lt) and (prorated) their bytes. */
  countRange(gte?: Buffer, lt?: Buffer): { keys: number; bytes: number } {
    let count = 0;
    let n = 0;
    for (const run of this.orderedRuns(false)) {
      const len = run.length / ORDER_STRIDE;
      count += len;
      const from = gte ? this.lowerBound(run, gte) : 0;
      const to = lt ? this.lowerBound(run, lt) : len;
      if (to > from) n += to - from;
    }
    if (n === 0) return { keys: 0, bytes: 0 };
    return { keys: n, bytes: Math.round((this.bytes * n) / Math.max(1, count)) };
  }
}

/**
 * Pull iterator over a memtable in internal order: the memtable's sorted runs of keys (order
 * records, at most three) merged, each key's versions newest first.
 */
export class MemtableIterator {
  private row = -1;
  /** The run of the current key, or -1 at the end. */
  private run = -1;
  current: InternalEntry | undefined;
  constructor(
    private readonly mem: Memtable,
    /** Order records (ORDER_STRIDE int32s, the key id first) in key order, never written again. */
    private readonly runs: readonly Int32Array[],
    /** Per run, the index of its next record. */
    private readonly at: number[],
  ) {
    this.load();
  }
  private load(): void {
    const runs = this.runs;
    const at = this.at;
    let best = -1;
    for (let r = 0; r < runs.length; r++) {
      if (at[r]! * ORDER_STRIDE >= runs[r]!.length) continue;
      if (best < 0 || this.mem.compareOrder(runs[r]!, at[r]! * ORDER_STRIDE, runs[best]!, at[best]! * ORDER_STRIDE) < 0) best = r;
    }
    this.run = best;
    if (best >= 0) {
      this.row = this.mem.headOf(runs[best]![at[best]! * ORDER_STRIDE]!);
      this.current = this.mem.entryAt(this.row);
    } else {
      this.current = undefined;
    }
  }
  next(): void {
    if (!this.current) return;
    const older = this.mem.olderThan(this.row);
    if (older >= 0) {
      this.row = older;
      this.current = this.mem.entryAt(older);
      return;
    }
    this.at[this.run]!++;
    this.load();
  }
}

/** A memtable's arrays as SurvivorPick reads them (none is written while it runs). */
export interface MemtableArrays {
  rowI: Int32Array;
  rowF: Float64Array;
  rows: number;
  heads: Int32Array;
  keyCount: number;
  keyStart: Int32Array;
  keyData: Uint8Array;
  segs: readonly Uint8Array[];
}

/** A memtable's survivors to pick (Memtable.flushInput), in any thread. */
export interface SurvivorInput {
  snapshots: readonly number[];
  /** The key order's sorted runs (held: never written again). */
  runs: readonly Int32Array[];
  arrays: MemtableArrays;
}

/** Memtable.survivorRows from a flushInput, in one call (a flush's worker). */
export function survivorRowsOf(input: SurvivorInput): EntryRows {
  const pick = new SurvivorPick(input.snapshots, input.runs, input.arrays);
  while (!pick.step(Number.MAX_SAFE_INTEGER));
  return pick.result();
}

const PICK_RANK = 0;
const PICK_KEEP = 1;
const PICK_ROWS = 2;
const PICK_DONE = 3;

/**
 * Memtable.survivorRows in steps, each doing at most `units` keys or rows of one stage:
 *   rank  the sorted runs (held: never written again) merged into each key id's rank;
 *   keep  the rows that survive picked (in write order with no snapshots: a key's head row;
 *         with snapshots, keys in rank order and each key's stripes);
 *   rows  their output rows written, pointing into the memtable's shared memory (no key or
 *         value byte is read here: a flush's worker reads them in place).
 * In one call the whole of it held the event loop 23-28 ms per 64 MiB flush on the server
 * (50-100 ms under load): a p99 spike at -P1. The engine yields between steps.
 */
export class SurvivorPick {
  private stage = PICK_RANK;
  /** Keys ranked (rank), rows or keys scanned (keep), rows written (rows). */
  private i = 0;
  /** Per run, the int32 offset of its next record (rank). */
  private readonly at: number[];
  private readonly rank: Int32Array;
  /** Key ids in key order (with snapshots only). */
  private readonly byRank: Int32Array;
  private kept = NO_RECORDS;
  /** Output row of kept[i]: the rows go out in internal order, so the worker need not sort them. */
  private outRow = NO_RECORDS;
  private n = 0;
  private out: EntryRows | undefined;

  constructor(
    private readonly snapshots: readonly number[],
    private readonly runs: readonly Int32Array[],
    private readonly m: Readonly<MemtableArrays>,
  ) {
    this.at = runs.map(() => 0);
    this.rank = new Int32Array(m.keyCount);
    this.byRank = snapshots.length === 0 ? NO_RECORDS : new Int32Array(m.keyCount);
  }

  /** Does up to `units` keys or rows of work; true when the rows are ready (result). */
  step(units: number): boolean {
    if (this.stage === PICK_RANK) this.rankStep(units);
    else if (this.stage === PICK_KEEP) {
      if (this.snapshots.length === 0) this.keepHeadsStep(units);
      else this.keepStripesStep(units);
    } else if (this.stage === PICK_ROWS) this.rowsStep(units);
    return this.stage === PICK_DONE;
  }

  result(): EntryRows {
    assert(this.stage === PICK_DONE && this.out !== undefined, 'survivor rows taken before they are ready');
    return this.out;
  }

  private rankStep(units: number): void {
    const { runs, at, rank, byRank } = this;
    const ks = this.m.keyStart;
    const d = this.m.keyData;
    const count = this.m.keyCount;
    const end = Math.min(count, this.i + units);
    const byRanks = byRank.length > 0;
    for (let k = this.i; k < end; k++) {
      let best = -1;
      for (let r = 0; r < runs.length; r++) {
        if (at[r]! >= runs[r]!.length) continue;
        if (best < 0 || compareRecords(runs[r]!, at[r]!, runs[best]!, at[best]!, ks, d) < 0) best = r;
      }
      const id = runs[best]![at[best]!]!;
      rank[id] = k;
      if (byRanks) byRank[k] = id;
      at[best] = at[best]! + ORDER_STRIDE;
    }
    this.i = end;
    if (end < count) return;
    this.stage = PICK_KEEP;
    this.i = 0;
    if (this.snapshots.length === 0) {
      this.kept = new Int32Array(count);
      this.outRow = new Int32Array(count);
    } else {
      this.kept = new Int32Array(this.m.rows);
    }
  }

  /**
   * No snapshots: rows in write order (sequential reads of rows and record buffers, not one
   * cache miss per field); a row survives when it is its key's newest and goes out at its
   * key's rank.
   */
  private keepHeadsStep(units: number): void {
    const { rowI: ri, heads, rows } = this.m;
    const { kept, outRow, rank } = this;
    const end = Math.min(rows, this.i + units);
    let n = this.n;
    for (let r = this.i; r < end; r++) {
      const id = ri[r * ROW_INTS + ROW_KEY_ID]!;
      if (heads[id] !== r) continue;
      outRow[n] = rank[id]!;
      kept[n++] = r;
    }
    this.n = n;
    this.i = end;
    if (end < rows) return;
    assert(n === this.m.keyCount, 'memtable heads disagree with its rows');
    this.startRows();
  }

  /** Keys in key order, each key's versions newest first: already internal order. */
  private keepStripesStep(units: number): void {
    const { rowI: ri, rowF, heads, keyCount } = this.m;
    const { kept, byRank, snapshots } = this;
    const end = Math.min(keyCount, this.i + units);
    let n = this.n;
    for (let k = this.i; k < end; k++) {
      let lastStripe = -1;
      for (let r = heads[byRank[k]!]!; r >= 0; r = ri[r * ROW_INTS + ROW_PREV]!) {
        const stripe = stripeOf(snapshots, rowF[r * ROW_FLOATS + ROW_SEQ]!);
        if (stripe === lastStripe) continue;
        lastStripe = stripe;
        kept[n++] = r;
      }
    }
    this.n = n;
    this.i = end;
    if (end < keyCount) return;
    this.kept = kept.subarray(0, n);
    this.outRow = new Int32Array(n);
    for (let i = 0; i < n; i++) this.outRow[i] = i;
    this.startRows();
  }

  private startRows(): void {
    this.out = { ...newEntryRows(this.n, 0), bufs: this.m.segs };
    this.stage = PICK_ROWS;
    this.i = 0;
  }

  private rowsStep(units: number): void {
    const { rowI: ri, rowF } = this.m;
    const { kept, outRow } = this;
    const out = this.out!;
    const end = Math.min(this.n, this.i + units);
    for (let i = this.i; i < end; i++) {
      const r = kept[i]!;
      const at = r * ROW_INTS;
      const kind = ri[at + ROW_KIND] === KIND_DELETE ? KIND_DELETE : KIND_PUT;
      const ff = r * ROW_FLOATS;
      setEntryRow(out, outRow[i]!, ri[at + ROW_SEG]!, ri[at + ROW_KEY_OFF]!, ri[at + ROW_KEY_LEN]!, ri[at + ROW_VAL_OFF]!, ri[at + ROW_VAL_LEN]!, kind, rowF[ff + ROW_SEQ]!, rowF[ff + ROW_TIME]!);
    }
    this.i = end;
    if (end === this.n) this.stage = PICK_DONE;
  }
}
