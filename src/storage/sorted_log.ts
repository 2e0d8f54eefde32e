/**
 * A flush's input: one memtable's entries, as rows of typed arrays (the versions the memtable
 * picked, EntryRows) or as commit-log records (log.ts writeRecord's encoding, decoded into such
 * rows), sorted into internal order (key bytewise, seq descending) with no object per entry.
 * Entries are made one at a time as the table builder pulls them (`current`), so they die young: decoding every entry into an object and then
 * sorting those kept ~30k objects (and their key and value views) alive across the sort, which
 * with the sort itself was most of the table-build worker's CPU under SET load
 * (bench/results/storage-perf-notes.md, session 9).
 *
 * The records were encoded by this process and never left memory, so their checksums are NOT
 * verified: nothing outside this process wrote these bytes, and verifying them again was 11%
 * of the flush worker's time with 4 KiB values (storage-perf-notes.md, session 5). Bounds are
 * still checked: a malformed record throws FormatError.
 *
 * The sort is a radix sort by 4-byte words, most significant word first: the row indexes are
 * sorted natively as doubles packing the big-endian word of each key's bytes [at, at + 4)
 * (32 bits, bytes.ts wordAt) and the row's place in its run (21 bits), starting after the
 * prefix all keys share; each run of equal words is sorted the same way on the next word, and
 * short runs by comparing keys. A flush's keys often share a long prefix and then differ in a
 * few bytes (the keyspace's 2-byte slot, the last digits of a numbered key).
 *
 * Rows already in internal order are not sorted (one pass of comparisons checks it): a
 * memtable hands its survivors so (Memtable.survivorRows), which took the sort, ~20% of the
 * flush job, off the worker (storage-perf-notes.md, session 11).
 */
import { compareByteRanges, wordAt } from './bytes.js';
import type { EntrySource } from './compaction_merge.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry, type Kind } from './internal_entry.js';
import { LOG_HEADER_BYTES } from './log.js';
import { ByteReader, FormatError } from './varint.js';

/** A run of up to this many rows is sorted as packed doubles (21 bits of index). */
const PACKED_ROWS_MAX = 1 << 21;
/** Runs this short are insertion-sorted by comparing keys. */
const SMALL_RUN_ROWS = 8;
// A row's int32 fields (rowI[r * ROW_INTS + field]) and double fields (rowF[r * ROW_FLOATS + field]).
const ROW_BUF = 0;
const ROW_KEY_OFF = 1;
const ROW_KEY_LEN = 2;
const ROW_VAL_OFF = 3;
const ROW_VAL_LEN = 4;
const ROW_KIND = 5;
const ROW_INTS = 6;
/** Int32s per row of EntryRows.ints. */
export const ENTRY_ROW_INTS = ROW_INTS;
const ROW_SEQ = 0;
const ROW_TIME = 1;
const ROW_FLOATS = 2;

const EMPTY = Buffer.alloc(0);

/**
 * Entries as rows, not records: what a memtable hands a flush once it has picked the versions
 * that survive (Memtable.survivorRows), so the worker decodes nothing. Row r's key and value
 * are buf[keyOff, keyOff + keyLen) and buf[valOff, valOff + valLen) of its buffer: bufs[b]
 * when bufs is set (the memtable's own buffers, shared memory read in place), else bytes (b is
 * 0); use newEntryRows and setEntryRow to fill them.
 */
export interface EntryRows {
  bytes: Buffer;
  bufs?: readonly Uint8Array[];
  /** ROW_INTS int32s per row. */
  ints: Int32Array;
  /** ROW_FLOATS doubles per row. */
  floats: Float64Array;
}

/** Rows for count entries whose bytes take byteLength (each array with its own, transferable, ArrayBuffer). */
export function newEntryRows(count: number, byteLength: number): EntryRows {
  return { bytes: Buffer.allocUnsafeSlow(byteLength), ints: new Int32Array(count * ROW_INTS), floats: new Float64Array(count * ROW_FLOATS) };
}

export function setEntryRow(rows: EntryRows, r: number, buf: number, keyOff: number, keyLen: number, valOff: number, valLen: number, kind: Kind, seq: number, time: number): void {
  const at = r * ROW_INTS;
  const ri = rows.ints;
  ri[at + ROW_BUF] = buf;
  ri[at + ROW_KEY_OFF] = keyOff;
  ri[at + ROW_KEY_LEN] = keyLen;
  ri[at + ROW_VAL_OFF] = valOff;
  ri[at + ROW_VAL_LEN] = valLen;
  ri[at + ROW_KIND] = kind;
  rows.floats[r * ROW_FLOATS + ROW_SEQ] = seq;
  rows.floats[r * ROW_FLOATS + ROW_TIME] = time;
}

/** The records' (or rows') entries in internal order, as an EntrySource. */
export class SortedLogSource implements EntrySource {
  current: InternalEntry | undefined;
  private readonly rowI: Int32Array;
  private readonly rowF: Float64Array;
  /** Row indexes in internal order. */
  private readonly order: Int32Array;
  private i = 0;
  private readonly bufs: Buffer[];

  /**
   * bufs: whole records, back to back in each buffer; a malformed record throws FormatError.
   * Or rows (EntryRows, not decoded again; a row out of its buffer's bounds throws FormatError).
   */
  constructor(input: Buffer[] | EntryRows) {
    let n = 0;
    if (Array.isArray(input)) {
      this.bufs = input;
      for (const buf of input) n += countOps(buf);
      this.rowI = new Int32Array(n * ROW_INTS);
      this.rowF = new Float64Array(n * ROW_FLOATS);
      let r = 0;
      for (let b = 0; b < input.length; b++) r = this.decode(b, r);
    } else {
      this.bufs = input.bufs ? input.bufs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) : [input.bytes];
      n = input.ints.length / ROW_INTS;
      if (!Number.isInteger(n) || input.floats.length !== n * ROW_FLOATS) throw new FormatError('entry rows of mismatched lengths');
      this.rowI = input.ints;
      this.rowF = input.floats;
      checkRows(input.ints, this.bufs);
    }
    this.order = new Int32Array(n);
    for (let k = 0; k < n; k++) this.order[k] = k;
    if (n > 1 && !this.inOrder(n)) this.sortRows(0, n, this.sharedPrefix(n), new Float64Array(n));
    this.load();
  }

  next(): void {
    if (!this.current) return;
    this.i++;
    this.load();
  }

  private load(): void {
    if (this.i >= this.order.length) {
      this.current = undefined;
      return;
    }
    const r = this.order[this.i]!;
    const at = r * ROW_INTS;
    const ri = this.rowI;
    const buf = this.bufs[ri[at + ROW_BUF]!]!;
    const ko = ri[at + ROW_KEY_OFF]!;
    const kind = ri[at + ROW_KIND] === KIND_DELETE ? KIND_DELETE : KIND_PUT;
    const vo = ri[at + ROW_VAL_OFF]!;
    this.current = {
      key: buf.subarray(ko, ko + ri[at + ROW_KEY_LEN]!),
      seq: this.rowF[r * ROW_FLOATS + ROW_SEQ]!,
      kind,
      time: this.rowF[r * ROW_FLOATS + ROW_TIME]!,
      value: kind === KIND_PUT ? buf.subarray(vo, vo + ri[at + ROW_VAL_LEN]!) : EMPTY,
    };
  }

  /** Decodes bufs[b]'s records into rows from r on; returns the next free row. */
  private decode(b: number, r: number): number {
    const buf = this.bufs[b]!;
    const ri = this.rowI;
    const rf = this.rowF;
    let pos = 0;
    while (pos < buf.length) {
      const end = recordEnd(buf, pos);
      const rd = new ByteReader(buf, pos + LOG_HEADER_BYTES, end);
      let seq = rd.varint();
      const count = rd.varint();
      for (let k = 0; k < count; k++, r++) {
        const kind = rd.u8();
        if (kind !== KIND_DELETE && kind !== KIND_PUT) throw new FormatError(`bad op kind ${kind}`);
        const at = r * ROW_INTS;
        const keyLen = rd.varint();
        ri[at + ROW_BUF] = b;
        ri[at + ROW_KEY_OFF] = rd.pos;
        ri[at + ROW_KEY_LEN] = keyLen;
        rd.pos += keyLen;
        const time = rd.varint(); // checks that the key ended inside the record
        let valOff = 0;
        let valLen = 0;
        if (kind === KIND_PUT) {
          valLen = rd.varint();
          valOff = rd.pos;
          if (valLen > rd.remaining) throw new FormatError(`value of ${valLen} bytes past the record end`);
          rd.pos += valLen;
        }
        ri[at + ROW_VAL_OFF] = valOff;
        ri[at + ROW_VAL_LEN] = valLen;
        ri[at + ROW_KIND] = kind as Kind;
        rf[r * ROW_FLOATS + ROW_SEQ] = seq++;
        rf[r * ROW_FLOATS + ROW_TIME] = time;
      }
      pos = end;
    }
    return r;
  }

  private keyBuf(r: number): Buffer {
    return this.bufs[this.rowI[r * ROW_INTS + ROW_BUF]!]!;
  }
  private keyOff(r: number): number {
    return this.rowI[r * ROW_INTS + ROW_KEY_OFF]!;
  }
  private keyLen(r: number): number {
    return this.rowI[r * ROW_INTS + ROW_KEY_LEN]!;
  }

  /** Internal order of rows a and b. */
  private compareRows(a: number, b: number): number {
    const c = compareByteRanges(this.keyBuf(a), this.keyOff(a), this.keyLen(a), this.keyBuf(b), this.keyOff(b), this.keyLen(b));
    if (c !== 0) return c;
    return this.rowF[b * ROW_FLOATS + ROW_SEQ]! - this.rowF[a * ROW_FLOATS + ROW_SEQ]!;
  }

  /**
   * True when rows [0, n) are already in internal order (a memtable's survivorRows hands them so:
   * it keeps its keys in order); stops at the first pair out of order (commit-log records come
   * in seq order, so their check ends within a few rows).
   */
  private inOrder(n: number): boolean {
    for (let r = 1; r < n; r++) if (this.compareRows(r - 1, r) > 0) return false;
    return true;
  }

  /** Bytes every key shares with row 0's. */
  private sharedPrefix(n: number): number {
    const b0 = this.keyBuf(0);
    const o0 = this.keyOff(0);
    let prefix = this.keyLen(0);
    for (let r = 1; r < n && prefix > 0; r++) {
      const b = this.keyBuf(r);
      const o = this.keyOff(r);
      const m = Math.min(prefix, this.keyLen(r));
      let j = 0;
      while (j < m && b[o + j] === b0[o0 + j]) j++;
      prefix = j;
    }
    return prefix;
  }

  /** Sorts order[from, to), whose rows' keys agree on their bytes before `at` (see the header). */
  private sortRows(from: number, to: number, at: number, packed: Float64Array): void {
    const n = to - from;
    const order = this.order;
    if (n <= SMALL_RUN_ROWS) {
      for (let i = from + 1; i < to; i++) {
        const r = order[i]!;
        let j = i - 1;
        for (; j >= from && this.compareRows(order[j]!, r) > 0; j--) order[j + 1] = order[j]!;
        order[j + 1] = r;
      }
      return;
    }
    if (n > PACKED_ROWS_MAX) {
      order.subarray(from, to).sort((a, b) => this.compareRows(a, b));
      return;
    }
    const words = packed.subarray(from, to);
    let longest = 0;
    for (let i = 0; i < n; i++) {
      const r = order[from + i]!;
      const o = this.keyOff(r);
      const len = this.keyLen(r);
      if (len > longest) longest = len;
      words[i] = wordAt(this.keyBuf(r), o + at, o + len) * PACKED_ROWS_MAX + i;
    }
    if (longest <= at) {
      // Every key ends before `at`: only lengths and seqs differ.
      order.subarray(from, to).sort((a, b) => this.compareRows(a, b));
      return;
    }
    words.sort();
    const run = order.slice(from, to);
    for (let i = 0; i < n; i++) order[from + i] = run[words[i]! % PACKED_ROWS_MAX]!;
    for (let i = 0; i < n; ) {
      const w = Math.floor(words[i]! / PACKED_ROWS_MAX);
      let j = i + 1;
      while (j < n && Math.floor(words[j]! / PACKED_ROWS_MAX) === w) j++;
      // Overwrites words[i, j) only: the scan goes on from j.
      if (j - i > 1) this.sortRows(from + i, from + j, at + 4, packed);
      i = j;
    }
  }
}

/** Every row within its buffer of byteLength bytes, with buffer 0 and a known kind. */
function checkRows(ri: Int32Array, bufs: readonly Buffer[]): void {
  for (let at = 0; at < ri.length; at += ROW_INTS) {
    const keyOff = ri[at + ROW_KEY_OFF]!;
    const valOff = ri[at + ROW_VAL_OFF]!;
    const kind = ri[at + ROW_KIND]!;
    const byteLength = bufs[ri[at + ROW_BUF]!]?.length ?? -1;
    if (
      byteLength < 0 ||
      (kind !== KIND_PUT && kind !== KIND_DELETE) ||
      keyOff < 0 ||
      ri[at + ROW_KEY_LEN]! < 0 ||
      keyOff + ri[at + ROW_KEY_LEN]! > byteLength ||
      valOff < 0 ||
      ri[at + ROW_VAL_LEN]! < 0 ||
      valOff + ri[at + ROW_VAL_LEN]! > byteLength
    ) {
      throw new FormatError(`entry row ${at / ROW_INTS} out of bounds`);
    }
  }
}

/** The end of the record at pos (its length checked against the buffer). */
function recordEnd(buf: Buffer, pos: number): number {
  if (buf.length - pos < LOG_HEADER_BYTES) throw new FormatError(`record header past the end at ${pos}`);
  const end = pos + LOG_HEADER_BYTES + buf.readUInt32LE(pos + 4);
  if (end > buf.length) throw new FormatError(`record at ${pos} runs past the end`);
  return end;
}

/** Number of ops in buf's records (each record's count; each op takes at least 3 bytes). */
function countOps(buf: Buffer): number {
  let n = 0;
  for (let pos = 0; pos < buf.length; ) {
    const end = recordEnd(buf, pos);
    const rd = new ByteReader(buf, pos + LOG_HEADER_BYTES, end);
    rd.varint();
    const count = rd.varint();
    if (count > rd.remaining / 3) throw new FormatError(`op count ${count} exceeds record`);
    n += count;
    pos = end;
  }
  return n;
}

/** The records' (or rows') entries in internal order (tests). */
export function sortedLogEntries(input: Buffer[] | EntryRows): InternalEntry[] {
  const out: InternalEntry[] = [];
  for (const s = new SortedLogSource(input); s.current; s.next()) out.push(s.current);
  return out;
}
