/**
 * The memtable: an in-memory map from user key to its versions (newest first), with key order
 * available for iteration. Writers add versions; readers look up "the newest version with
 * seq <= S" and iterate in internal order (key ascending, seq descending).
 *
 * Layout, chosen by measurement:
 *  - Version data stays where it already is: in the commit-log record buffers of the group
 *    commits (applyRecords), or, for versions added one by one (recovery), in arena chunks.
 *    Each version is a row of typed arrays (segment, key/value offsets and lengths, seq, kind,
 *    time, older version): no JS object per write, so the garbage collector has almost nothing
 *    to trace (per-write objects cost 30-60 ms scavenge pauses under write load, which broke
 *    the 20 ms event-loop budget).
 *  - A Map from the key's latin1 string (one char per byte, so JS string order IS bytewise
 *    order) to its newest version, and the key strings in order as a sorted array plus an
 *    unsorted tail, folded in when it grows past 1/8 of the sorted part or when an iterator
 *    needs order. (A skip list spent ~30 pointer-chasing comparisons per insert: 5-10x slower.)
 *
 * Consistency: an iterator takes the sorted key array as it is when created (every key written
 * so far) and, per key, the version chain from the head it finds (older links never change);
 * keys and versions added later have sequence numbers above any snapshot it reads at.
 *
 * Size accounting (`bytes`) counts keys, values and a fixed per-version overhead; the engine
 * turns the memtable immutable once it passes EngineOptions.memtableBytes.
 */
import assert from 'node:assert';
import { encodedEntryLength, KIND_DELETE, KIND_PUT, type InternalEntry, type Kind } from './internal_entry.js';
import { LOG_HEADER_BYTES } from './log.js';
import { ByteReader } from './varint.js';

/** Per-version bookkeeping bytes counted on top of key and value (rows, map entry, string). */
export const MEMTABLE_ENTRY_OVERHEAD_BYTES = 64;
const SORT_TAIL_KEYS_MIN = 4096;
const SORT_TAIL_FRACTION = 8;
const INITIAL_ROWS = 1024;
/** Arena chunk for versions added one by one (recovery). */
const ARENA_CHUNK_BYTES = 1024 * 1024;

export function keyString(key: Buffer): string {
  return key.toString('latin1');
}

function lowerBound(sorted: string[], s: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mergeSorted(a: string[], b: string[]): string[] {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

function grow<T extends Uint32Array | Int32Array | Float64Array | Uint8Array>(a: T, n: number): T {
  const ctor = a.constructor as new (n: number) => T;
  const b = new ctor(n);
  b.set(a);
  return b;
}

export class Memtable {
  private readonly map = new Map<string, number>();
  private sorted: string[] = [];
  private tail: string[] = [];
  private readonly segs: Buffer[] = [];
  private arena: Buffer | undefined;
  private arenaUsed = 0;
  private rows = 0;
  private seg = new Uint32Array(INITIAL_ROWS);
  private keyOff = new Uint32Array(INITIAL_ROWS);
  private keyLen = new Uint32Array(INITIAL_ROWS);
  private valOff = new Uint32Array(INITIAL_ROWS);
  private valLen = new Uint32Array(INITIAL_ROWS);
  private seqs = new Float64Array(INITIAL_ROWS);
  private times = new Float64Array(INITIAL_ROWS);
  private kinds = new Uint8Array(INITIAL_ROWS);
  private prev = new Int32Array(INITIAL_ROWS);
  bytes = 0;
  /** Bytes the versions take in the internal_entry.ts encoding (sizes a serialized flush). */
  encodedBytes = 0;
  maxSeq = 0;
  /** Sequence number of the first version added (0 when empty). */
  minSeq = 0;
  /**
   * True while every version came in through applyRecords: `records()` then holds all of
   * them as commit-log records, which a flush hands to the worker as they are.
   */
  private onlyRecords = true;
  private recordBytes = 0;

  constructor(
    /** The commit log holding this memtable's writes. */
    readonly logNumber: number,
  ) {}

  get empty(): boolean {
    return this.rows === 0;
  }

  /** Number of versions held. */
  get entries(): number {
    return this.rows;
  }

  /** Number of distinct keys. */
  get keys(): number {
    return this.map.size;
  }

  /** The log records holding every version (see onlyRecords), or null. */
  records(): { buffers: Buffer[]; bytes: number } | null {
    return this.onlyRecords ? { buffers: this.segs, bytes: this.recordBytes } : null;
  }

  private ensureRow(): number {
    const r = this.rows;
    if (r === this.seg.length) {
      const n = r * 2;
      this.seg = grow(this.seg, n);
      this.keyOff = grow(this.keyOff, n);
      this.keyLen = grow(this.keyLen, n);
      this.valOff = grow(this.valOff, n);
      this.valLen = grow(this.valLen, n);
      this.seqs = grow(this.seqs, n);
      this.times = grow(this.times, n);
      this.kinds = grow(this.kinds, n);
      this.prev = grow(this.prev, n);
    }
    return r;
  }

  private insertRow(segNo: number, buf: Buffer, keyOff: number, keyLen: number, valOff: number, valLen: number, seq: number, kind: Kind, time: number): void {
    assert(seq > this.maxSeq, 'memtable seqs must increase');
    const r = this.ensureRow();
    this.seg[r] = segNo;
    this.keyOff[r] = keyOff;
    this.keyLen[r] = keyLen;
    this.valOff[r] = valOff;
    this.valLen[r] = valLen;
    this.seqs[r] = seq;
    this.kinds[r] = kind;
    this.times[r] = time;
    const s = buf.toString('latin1', keyOff, keyOff + keyLen);
    const head = this.map.get(s);
    this.prev[r] = head ?? -1;
    this.map.set(s, r);
    if (head === undefined) {
      this.tail.push(s);
      if (this.tail.length >= Math.max(SORT_TAIL_KEYS_MIN, this.sorted.length / SORT_TAIL_FRACTION)) this.foldTail();
    }
    if (this.rows === 0) this.minSeq = seq;
    this.rows++;
    this.maxSeq = seq;
    this.bytes += keyLen + valLen + MEMTABLE_ENTRY_OVERHEAD_BYTES;
  }

  /**
   * Adds every op of the commit-log records in buf (as written by log.ts writeRecord, already
   * validated). The memtable keeps buf: keys and values are read from it in place.
   */
  applyRecords(buf: Buffer): void {
    const segNo = this.segs.length;
    this.segs.push(buf);
    this.recordBytes += buf.length;
    let pos = 0;
    while (pos < buf.length) {
      const length = buf.readUInt32LE(pos + 4);
      const end = pos + LOG_HEADER_BYTES + length;
      const r = new ByteReader(buf, pos + LOG_HEADER_BYTES, end);
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
        this.insertRow(segNo, buf, keyOff, keyLen, valOff, valLen, seq++, kind, time);
      }
      pos = end;
    }
  }

  /** Adds one version, copying key and value into the arena (recovery, tests). */
  add(e: InternalEntry): void {
    const need = e.key.length + e.value.length;
    if (!this.arena || this.arenaUsed + need > this.arena.length) {
      this.arena = Buffer.allocUnsafe(Math.max(ARENA_CHUNK_BYTES, need));
      this.arenaUsed = 0;
      this.segs.push(this.arena);
    }
    const a = this.arena;
    const keyOff = this.arenaUsed;
    e.key.copy(a, keyOff);
    e.value.copy(a, keyOff + e.key.length);
    this.arenaUsed += need;
    this.onlyRecords = false;
    this.encodedBytes += encodedEntryLength(e);
    this.insertRow(this.segs.length - 1, a, keyOff, e.key.length, keyOff + e.key.length, e.value.length, e.seq, e.kind, e.time);
  }

  /** Materializes row r (key and value are views into the memtable's buffers). */
  entryAt(r: number): InternalEntry {
    const buf = this.segs[this.seg[r]!]!;
    const ko = this.keyOff[r]!;
    const vo = this.valOff[r]!;
    return {
      key: buf.subarray(ko, ko + this.keyLen[r]!),
      seq: this.seqs[r]!,
      kind: this.kinds[r] === KIND_DELETE ? KIND_DELETE : KIND_PUT,
      time: this.times[r]!,
      value: buf.subarray(vo, vo + this.valLen[r]!),
    };
  }

  /** @internal */
  headOf(s: string): number {
    return this.map.get(s) ?? -1;
  }

  /** @internal */
  olderThan(r: number): number {
    return this.prev[r]!;
  }

  /** @internal */
  seqAt(r: number): number {
    return this.seqs[r]!;
  }

  private foldTail(): void {
    if (this.tail.length === 0) return;
    this.tail.sort();
    this.sorted = mergeSorted(this.sorted, this.tail);
    this.tail = [];
  }

  /** Every key, in order (the array is never mutated afterwards: safe to hold). */
  private orderedKeys(): string[] {
    this.foldTail();
    return this.sorted;
  }

  /** The newest version of key with seq <= seq, or undefined when the memtable has none. */
  get(key: Buffer, seq: number): InternalEntry | undefined {
    // Empty (a reopened engine's): no key string to build.
    if (this.rows === 0) return undefined;
    let r = this.map.get(keyString(key)) ?? -1;
    while (r >= 0 && this.seqs[r]! > seq) r = this.prev[r]!;
    return r >= 0 ? this.entryAt(r) : undefined;
  }

  /** A pull iterator in internal order from the first key >= gte. */
  iterator(gte?: Buffer): MemtableIterator {
    const keys = this.orderedKeys();
    return new MemtableIterator(this, keys, gte ? lowerBound(keys, keyString(gte)) : 0);
  }

  /** Number of distinct keys in [gte, lt) and (prorated) their bytes. */
  countRange(gte?: Buffer, lt?: Buffer): { keys: number; bytes: number } {
    const keys = this.orderedKeys();
    const from = gte ? lowerBound(keys, keyString(gte)) : 0;
    const to = lt ? lowerBound(keys, keyString(lt)) : keys.length;
    if (to <= from) return { keys: 0, bytes: 0 };
    const n = to - from;
    return { keys: n, bytes: Math.round((this.bytes * n) / Math.max(1, keys.length)) };
  }
}

/** Pull iterator over a memtable in internal order. */
export class MemtableIterator {
  private row = -1;
  current: InternalEntry | undefined;
  constructor(
    private readonly mem: Memtable,
    private readonly keys: string[],
    private i: number,
  ) {
    this.load();
  }
  private load(): void {
    if (this.i < this.keys.length) {
      this.row = this.mem.headOf(this.keys[this.i]!);
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
    this.i++;
    this.load();
  }
}
