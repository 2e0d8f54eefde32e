/**
 * Sorted table (SSTable) format, and the pure code that writes and decodes it. A table holds
 * internal entries (internal_entry.ts) in internal order; all versions of one user key that a
 * compaction keeps land in the same table.
 *
 *   table       := dataBlock+ filter index footer             (a table has >= 1 entry)
 *   dataBlock   := body codec:u8 crc:u32                       crc = CRC32(body ++ codec)
 *   body        := entries                                     (codec 0: none)
 *                | rawLen:varint deflateRaw(entries)           (codec 1: deflate, zlib level 1)
 *   entries     := entry+ entryStart[count] width:u8 count:u32
 *                  (entryStart: where each entry starts, from the start of `entries`; the first
 *                   is 0, then strictly ascending. u16 when width = 2, used when the entries
 *                   take at most 65535 bytes; else u32 and width = 4. A point read binary-searches
 *                   these starts in place: nothing is decoded or allocated per entry.)
 *   entry       := see internal_entry.ts
 *   filter      := bloom filter over the table's user keys (bloom.ts)
 *   index       := indexEntry+                                 one per data block, in order
 *   indexEntry  := lastKeyLen:varint lastKey lastSeq:varint blockOffset:varint blockSize:varint
 *                  (lastKey/lastSeq: the block's last internal key; blockSize includes the
 *                   5-byte trailer)
 *   footer      := filterOffset:u48 filterLen:u32 filterCrc:u32
 *                  indexOffset:u48 indexLen:u32 indexCrc:u32
 *                  entryCount:u48 formatVersion:u16 footerCrc:u32 magic[8]   (48 bytes)
 *                  footerCrc = CRC32(the 36 bytes before it); magic = "RKVTABLE"
 *
 * Integers little-endian. Every length and offset read is checked against the file size and
 * the limits in limits.ts before a buffer is allocated; any mismatch is a FormatError, which
 * the I/O layer reports as StorageError('ECORRUPT') naming the file.
 *
 * Compression: a block is stored compressed only when that saves at least 1/8 of it.
 * Codec choice by measurement: see bench/results/storage-eventloop.md, section "Block codec".
 */
import { equalBytes, wordAt } from './bytes.js';
import assert from 'node:assert';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { BloomBuilder, validateBloom } from './bloom.js';
import {
  compareInternal,
  decodeEntry,
  encodeEntry,
  encodedEntryLength,
  KIND_DELETE,
  KIND_PUT,
  type InternalEntry,
} from './internal_entry.js';
import {
  BLOCK_BYTES_HARD_MAX,
  TABLE_FILE_BYTES_MAX,
  TABLE_FILTER_BYTES_MAX,
  TABLE_INDEX_BYTES_MAX,
} from './limits.js';
import { ByteReader, FormatError, putVarint, VARINT_BYTES_MAX, varintLength } from './varint.js';
import { SLAB_BYTES, takeSlab } from './slab_pool.js';

export const TABLE_MAGIC = Buffer.from('RKVTABLE', 'latin1');
/** 2: data blocks end with their entry starts (version 1 had none). */
export const TABLE_FORMAT_VERSION = 2;
export const FOOTER_BYTES = 48;
export const BLOCK_TRAILER_BYTES = 5;
export const CODEC_NONE = 0;
export const CODEC_DEFLATE = 1;
/** Bytes after a block's entry starts: width:u8 count:u32. */
const ENTRY_STARTS_TAIL_BYTES = 5;
/** Entries of at most this many bytes get u16 starts. */
const NARROW_ENTRIES_BYTES_MAX = 0xffff;

export type Compression = 'none' | 'deflate';

export interface TableBuildOptions {
  blockBytes: number;
  bloomBitsPerKey: number;
  compression: Compression;
}

/** What the manifest records about a table (besides its number and level). */
export interface TableMeta {
  smallestKey: Buffer;
  largestKey: Buffer;
  smallestSeq: number;
  largestSeq: number;
  entries: number;
  tombstones: number;
  size: number;
}

export function tableFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, '0')}.sst`;
}

/**
 * Blocks are encoded in place into slabs (slab_pool.ts; one ArrayBuffer per slab, not per
 * block), and a finished table is those slabs plus one buffer for filter, index and footer
 * (finishParts): an entry is copied once, into its slab. Before, each block was copied into a
 * buffer of its own, and later every table was copied once more into one buffer.
 */
const BUILD_SLAB_BYTES = SLAB_BYTES;

/** A finished table as consecutive byte ranges (each a view of a buffer of its own, or of a slab). */
export interface TableParts {
  parts: Buffer[];
  /** Total bytes: the file size. */
  size: number;
  meta: TableMeta;
}

/** Builds one table in memory. Pure: bytes in, bytes out (runs in the worker thread). */
export class TableBuilder {
  /** Finished blocks, in order, as views of full slabs. */
  private readonly chunks: Buffer[] = [];
  private offset = 0;
  /** The current slab: finished blocks [0, blockStart), then the open block. */
  private block: Buffer;
  private blockStart = 0;
  private blockLen = 0;
  /** Where each entry of the open block starts. */
  private starts: number[] = [];
  private readonly bloom: BloomBuilder;
  private readonly index: { key: Buffer; seq: number; offset: number; size: number }[] = [];
  private last: InternalEntry | undefined;
  private first: InternalEntry | undefined;
  private entries = 0;
  private tombstones = 0;
  private smallestSeq = Number.MAX_SAFE_INTEGER;
  private largestSeq = 0;
  /** Blocks copied as they were (see add). */
  copiedBlocks = 0;

  constructor(private readonly options: TableBuildOptions) {
    this.block = takeSlab(Math.max(BUILD_SLAB_BYTES, options.blockBytes * 2));
    this.bloom = new BloomBuilder(options.bloomBitsPerKey);
  }

  /** Bytes written so far plus the open block: what the table would roughly take now. */
  get estimatedBytes(): number {
    return this.offset + this.blockLen;
  }

  get entryCount(): number {
    return this.entries;
  }

  /**
   * Adds an entry; entries must come in strictly increasing internal order. `block`, when
   * given, is a checked data block (raw, trailer included) holding e and nothing else (a
   * compaction input, EntrySource.currentBlock): when e would fill a block of its own here
   * anyway (an empty open block and e at least blockBytes long) and blocks are stored
   * uncompressed, that block is copied as is, so the entry is neither encoded nor
   * checksummed again. With 4 KiB values every block is such a block, and the checksum of
   * the output was 11% of the compaction worker's time (storage-perf-notes.md, session 5).
   */
  add(e: InternalEntry, block?: Buffer): void {
    const prev = this.last;
    if (prev) assert(compareInternal(prev.key, prev.seq, e.key, e.seq) < 0, 'table entries out of order');
    if (!prev || !equalBytes(prev.key, e.key)) this.bloom.addKey(e.key);
    const len = encodedEntryLength(e);
    if (block && this.blockLen === 0 && len >= this.options.blockBytes && this.options.compression === 'none') {
      this.reserve(block.length);
      block.copy(this.block, this.blockStart);
      this.blockStart += block.length;
      this.copiedBlocks++;
      this.countEntry(e);
      this.indexBlock(block.length);
      return;
    }
    this.reserve(len);
    this.starts.push(this.blockLen);
    this.blockLen = encodeEntry(this.block, this.blockStart + this.blockLen, e) - this.blockStart;
    this.countEntry(e);
    if (this.blockLen >= this.options.blockBytes) this.finishBlock();
  }

  /** Table-wide bookkeeping of an added entry. */
  private countEntry(e: InternalEntry): void {
    // Keep copies of boundary keys: e.key may be a view into a buffer that is reused.
    this.last = e;
    if (!this.first) this.first = { ...e, key: Buffer.from(e.key), value: Buffer.alloc(0) };
    this.entries++;
    if (e.kind === KIND_DELETE) this.tombstones++;
    if (e.seq < this.smallestSeq) this.smallestSeq = e.seq;
    if (e.seq > this.largestSeq) this.largestSeq = e.seq;
  }

  /**
   * Makes room for n more bytes of the open block in the current slab; when the slab is full,
   * its finished blocks become a chunk and the open block moves to a fresh slab.
   */
  private reserve(n: number): void {
    if (this.blockStart + this.blockLen + n <= this.block.length) return;
    const next = takeSlab(Math.max(BUILD_SLAB_BYTES, this.blockLen + n));
    this.block.copy(next, 0, this.blockStart, this.blockStart + this.blockLen);
    if (this.blockStart > 0) this.chunks.push(this.block.subarray(0, this.blockStart));
    this.block = next;
    this.blockStart = 0;
  }

  private finishBlock(): void {
    if (this.blockLen === 0) return;
    this.appendEntryStarts();
    this.reserve(BLOCK_TRAILER_BYTES);
    const start = this.blockStart;
    let bodyLen = this.blockLen;
    let codec = CODEC_NONE;
    if (this.options.compression === 'deflate') {
      const raw = this.block.subarray(start, start + bodyLen);
      const compressed = deflateRawSync(raw, { level: 1 });
      const header = varintLength(raw.length);
      if (header + compressed.length <= raw.length - raw.length / 8) {
        // Shorter than the raw block by construction: written over it in place.
        const rawLength = raw.length;
        putVarint(this.block, start, rawLength);
        compressed.copy(this.block, start + header);
        bodyLen = header + compressed.length;
        codec = CODEC_DEFLATE;
      }
    }
    this.block[start + bodyLen] = codec;
    this.block.writeUInt32LE(crc32(this.block.subarray(start, start + bodyLen + 1)), start + bodyLen + 1);
    const size = bodyLen + BLOCK_TRAILER_BYTES;
    this.blockStart = start + size;
    this.blockLen = 0;
    this.starts = [];
    this.indexBlock(size);
  }

  /** Adds the index entry of the block just finished (`size` bytes, its last entry this.last). */
  private indexBlock(size: number): void {
    const last = this.last!;
    this.index.push({ key: Buffer.from(last.key), seq: last.seq, offset: this.offset, size });
    this.offset += size;
  }

  /** Appends entryStart[count] width count to the open block (see the grammar). */
  private appendEntryStarts(): void {
    const n = this.starts.length;
    const width = this.blockLen <= NARROW_ENTRIES_BYTES_MAX ? 2 : 4;
    this.reserve(n * width + ENTRY_STARTS_TAIL_BYTES);
    let p = this.blockStart + this.blockLen;
    for (const start of this.starts) {
      if (width === 2) this.block.writeUInt16LE(start, p);
      else this.block.writeUInt32LE(start, p);
      p += width;
    }
    this.block[p++] = width;
    this.block.writeUInt32LE(n, p);
    this.blockLen = p + 4 - this.blockStart;
  }

  /** Lays out filter, index and footer; returns the whole file as one buffer (a copy of finishParts). */
  finish(): { bytes: Buffer; meta: TableMeta } {
    const { parts, size, meta } = this.finishParts();
    // One exclusive ArrayBuffer (allocUnsafeSlow: never the shared pool).
    const bytes = Buffer.allocUnsafeSlow(size);
    let q = 0;
    for (const p of parts) q += p.copy(bytes, q);
    return { bytes, meta };
  }

  /**
   * Lays out filter, index and footer; returns the file as parts: the slabs holding the data
   * blocks (views, in order) and one buffer of its own for filter + index + footer. Every part
   * views an ArrayBuffer no other table uses, so the parts can be transferred between threads.
   */
  finishParts(): TableParts {
    assert(this.entries > 0, 'a table needs at least one entry');
    this.finishBlock();
    if (this.blockStart > 0) this.chunks.push(this.block.subarray(0, this.blockStart));
    this.blockStart = 0;
    const filter = this.bloom.finish();
    const filterOffset = this.offset;
    let indexLen = 0;
    for (const ie of this.index) {
      indexLen += varintLength(ie.key.length) + ie.key.length + varintLength(ie.seq) + varintLength(ie.offset) + varintLength(ie.size);
    }
    const indexOffset = filterOffset + filter.length;
    // filter ++ index ++ footer in one exclusive buffer.
    const tail = Buffer.allocUnsafeSlow(filter.length + indexLen + FOOTER_BYTES);
    filter.copy(tail, 0);
    const index = tail.subarray(filter.length, filter.length + indexLen);
    let p = 0;
    for (const ie of this.index) {
      p = putVarint(index, p, ie.key.length);
      p += ie.key.copy(index, p);
      p = putVarint(index, p, ie.seq);
      p = putVarint(index, p, ie.offset);
      p = putVarint(index, p, ie.size);
    }
    const footer = tail.subarray(filter.length + indexLen);
    footer.fill(0);
    footer.writeUIntLE(filterOffset, 0, 6);
    footer.writeUInt32LE(filter.length, 6);
    footer.writeUInt32LE(crc32(filter), 10);
    footer.writeUIntLE(indexOffset, 14, 6);
    footer.writeUInt32LE(index.length, 20);
    footer.writeUInt32LE(crc32(index), 24);
    footer.writeUIntLE(this.entries, 28, 6);
    footer.writeUInt16LE(TABLE_FORMAT_VERSION, 34);
    footer.writeUInt32LE(crc32(footer.subarray(0, 36)), 36);
    TABLE_MAGIC.copy(footer, 40);
    const size = indexOffset + index.length + FOOTER_BYTES;
    const first = this.first!;
    return {
      parts: [...this.chunks, tail],
      size,
      meta: {
        smallestKey: first.key,
        largestKey: Buffer.from(this.last!.key),
        smallestSeq: this.smallestSeq,
        largestSeq: this.largestSeq,
        entries: this.entries,
        tombstones: this.tombstones,
        size,
      },
    };
  }
}

export interface Footer {
  filterOffset: number;
  filterLen: number;
  filterCrc: number;
  indexOffset: number;
  indexLen: number;
  indexCrc: number;
  entries: number;
}

/** Decodes and checks a footer against the file size and limits. */
export function parseFooter(buf: Buffer, fileSize: number): Footer {
  if (fileSize < FOOTER_BYTES || buf.length !== FOOTER_BYTES) throw new FormatError(`file of ${fileSize} bytes is too short for a table`);
  if (fileSize > TABLE_FILE_BYTES_MAX) throw new FormatError(`file of ${fileSize} bytes exceeds the table limit`);
  if (!buf.subarray(40, 48).equals(TABLE_MAGIC)) throw new FormatError('bad table magic');
  if (crc32(buf.subarray(0, 36)) !== buf.readUInt32LE(36)) throw new FormatError('table footer checksum mismatch');
  const version = buf.readUInt16LE(34);
  if (version !== TABLE_FORMAT_VERSION) throw new FormatError(`unsupported table format version ${version}`);
  const f: Footer = {
    filterOffset: buf.readUIntLE(0, 6),
    filterLen: buf.readUInt32LE(6),
    filterCrc: buf.readUInt32LE(10),
    indexOffset: buf.readUIntLE(14, 6),
    indexLen: buf.readUInt32LE(20),
    indexCrc: buf.readUInt32LE(24),
    entries: buf.readUIntLE(28, 6),
  };
  const body = fileSize - FOOTER_BYTES;
  if (f.filterLen > TABLE_FILTER_BYTES_MAX || f.indexLen > TABLE_INDEX_BYTES_MAX) throw new FormatError('table filter or index over limit');
  if (f.filterOffset + f.filterLen !== f.indexOffset || f.indexOffset + f.indexLen !== body || f.indexLen === 0) {
    throw new FormatError('table footer offsets inconsistent with file size');
  }
  return f;
}

/**
 * A table's sparse index: one entry per data block, held in memory while the table is open.
 * Compact on purpose (it is the only per-table memory besides the bloom filter): the index
 * block as read from disk, with each block's last key referenced in place (no Buffer object
 * per block), and typed arrays for the numbers. About 24 bytes plus the key per data block.
 */
export interface TableIndex {
  /** Number of data blocks. */
  count: number;
  /** The index block as read; block b's last key is keys[keyStarts[b], keyStarts[b] + keyLens[b]). */
  keys: Buffer;
  keyStarts: Uint32Array;
  keyLens: Uint32Array;
  /** Seq of each block's last internal key. */
  seqs: Float64Array;
  /** offsets[b]: where block b starts; offsets[count]: where the filter starts (end of the data). */
  offsets: Float64Array;
  /** Bytes every block's last key starts with (their common prefix). */
  prefixLen: number;
  /**
   * words[b]: the 4 bytes of block b's last key after prefixLen, big-endian, zero-padded. A
   * search compares these (one small array) and reads a whole key only on a tie: with random
   * point reads the index is cold, and each whole-key step touched three arrays.
   */
  words: Uint32Array;
}

/** Bytes a parsed index holds per data block besides its key bytes (the typed arrays). */
export const INDEX_BYTES_PER_BLOCK = 4 + 4 + 8 + 8 + 4;

/** Block b's size on disk, trailer included. */
export function blockSizeAt(idx: TableIndex, b: number): number {
  return idx.offsets[b + 1]! - idx.offsets[b]!;
}

/** Block b's last user key (a view into the index block). */
export function blockLastKey(idx: TableIndex, b: number): Buffer {
  const at = idx.keyStarts[b]!;
  return idx.keys.subarray(at, at + idx.keyLens[b]!);
}

/** compareInternal(last key of block b, (key, seq)) in place. */
function compareIndexKey(idx: TableIndex, b: number, key: Buffer, seq: number): number {
  const c = compareRange(idx.keys, idx.keyStarts[b]!, idx.keyLens[b]!, key);
  if (c !== 0) return c;
  const s = idx.seqs[b]!;
  return s > seq ? -1 : s < seq ? 1 : 0;
}

/** Bytewise compare of buf[at, at + len) with key (sign only matters). */
function compareRange(buf: Buffer, at: number, len: number, key: Buffer): number {
  const n = len < key.length ? len : key.length;
  for (let j = 0; j < n; j++) {
    const d = buf[at + j]! - key[j]!;
    if (d !== 0) return d;
  }
  return len - key.length;
}

export function parseIndex(buf: Buffer, footer: Footer): TableIndex {
  if (crc32(buf) !== footer.indexCrc) throw new FormatError('table index checksum mismatch');
  const r = new ByteReader(buf);
  const keyStarts: number[] = [];
  const keyLens: number[] = [];
  const seqs: number[] = [];
  const offsets: number[] = [];
  let expectOffset = 0;
  while (r.remaining > 0) {
    const keyLen = r.varint();
    const keyStart = r.pos;
    const key = r.bytes(keyLen);
    const seq = r.varint();
    const offset = r.varint();
    const size = r.varint();
    if (offset !== expectOffset || size <= BLOCK_TRAILER_BYTES || size > BLOCK_BYTES_HARD_MAX || offset + size > footer.filterOffset) {
      throw new FormatError(`table index entry ${offsets.length} has bad block bounds`);
    }
    const n = keyStarts.length;
    if (n > 0) {
      const c = compareRange(buf, keyStarts[n - 1]!, keyLens[n - 1]!, key);
      if (c > 0 || (c === 0 && seqs[n - 1]! <= seq)) throw new FormatError('table index out of order');
    }
    expectOffset = offset + size;
    keyStarts.push(keyStart);
    keyLens.push(keyLen);
    seqs.push(seq);
    offsets.push(offset);
  }
  if (expectOffset !== footer.filterOffset) throw new FormatError('table index does not cover the data blocks');
  offsets.push(expectOffset);
  const n = keyStarts.length;
  // Keys are in order: the first and the last share what all of them share.
  let prefixLen = 0;
  if (n > 0) {
    const a = keyStarts[0]!;
    const z = keyStarts[n - 1]!;
    const max = Math.min(keyLens[0]!, keyLens[n - 1]!);
    while (prefixLen < max && buf[a + prefixLen] === buf[z + prefixLen]) prefixLen++;
  }
  const words = new Uint32Array(n);
  for (let b = 0; b < n; b++) words[b] = wordAt(buf, keyStarts[b]! + prefixLen, keyStarts[b]! + keyLens[b]!);
  return {
    count: n,
    keys: buf,
    keyStarts: Uint32Array.from(keyStarts),
    keyLens: Uint32Array.from(keyLens),
    seqs: Float64Array.from(seqs),
    offsets: Float64Array.from(offsets),
    prefixLen,
    words,
  };
}

export function checkFilter(buf: Buffer, footer: Footer): void {
  if (crc32(buf) !== footer.filterCrc) throw new FormatError('table filter checksum mismatch');
  validateBloom(buf);
}

/** Index of the first block whose last internal key >= (key, seq); == block count if none. */
export function findBlock(idx: TableIndex, key: Buffer, seq: number): number {
  // Off the shared prefix, key is below or above every block's last key.
  const p = idx.prefixLen;
  const first = idx.keyStarts[0] ?? 0;
  for (let j = 0; j < p; j++) {
    if (j >= key.length) return 0;
    const d = key[j]! - idx.keys[first + j]!;
    if (d !== 0) return d < 0 ? 0 : idx.count;
  }
  // Ordering by word agrees with bytewise order whenever the words differ (zero padding: a
  // shorter key orders first, as a prefix does), so only ties need the whole key.
  const w = wordAt(key, p, key.length);
  const words = idx.words;
  let lo = 0;
  let hi = idx.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const mw = words[mid]!;
    if (mw < w || (mw === w && compareIndexKey(idx, mid, key, seq) < 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A checked data block: its `entries` bytes (see the grammar) and where the entry starts lie.
 * A seek binary-searches the entries, comparing keys in place; a block decoded for reads
 * (decodeBlock's keyWords) also has each entry's key word, so that a seek compares words in one
 * small array and reads an entry only where the words tie (as findBlock does with the index).
 * Without them each probe of a point read's binary search read two entry starts and an entry's
 * header and key (a cache line each, rarely cached: a table's blocks are megabytes): with 4 KiB
 * blocks of ~130-byte entries, seekInBlock and entryStart were ~37% of a getSync that went to
 * the tables; with them such a getSync costs 0.92-0.96x (storage-perf-notes.md, session 13).
 */
export interface Block {
  data: Buffer;
  count: number;
  /** Where entryStart[0] lies in data (also where the last entry ends). */
  startsAt: number;
  /** 2 or 4: bytes per entry start. */
  width: number;
  /**
   * Each entry's key word (bytes.ts wordAt) past the keyPrefixLen bytes every key of the block
   * shares, or undefined (not asked for, or a block of fewer than KEY_WORDS_ENTRIES_MIN).
   */
  keyWords: Uint32Array | undefined;
  keyPrefixLen: number;
  /** Where the first entry's key starts in data (the shared prefix is read there). */
  firstKeyAt: number;
}

/** Blocks of fewer entries get no key words: a seek there reads about as many entries anyway. */
const KEY_WORDS_ENTRIES_MIN = 4;

/**
 * Checks a block's trailer, decompresses it and checks its entry starts (all bounds-checked).
 * keyWords: also reads every entry's header and key word (Block.keyWords; a malformed entry
 * throws FormatError here, not at the seek that reaches it). The crc just read every byte of
 * the block, so this pass finds it in the cache: blocks for point reads and scans take them,
 * a compaction's sequential pass (BlockSpanIterator) does not.
 */
export function decodeBlock(raw: Buffer, keyWords = false): Block {
  if (raw.length <= BLOCK_TRAILER_BYTES) throw new FormatError('block too short');
  const bodyLen = raw.length - BLOCK_TRAILER_BYTES;
  if (crc32(raw.subarray(0, bodyLen + 1)) !== raw.readUInt32LE(bodyLen + 1)) throw new FormatError('block checksum mismatch');
  const codec = raw[bodyLen]!;
  let data: Buffer;
  if (codec === CODEC_NONE) {
    data = raw.subarray(0, bodyLen);
  } else if (codec === CODEC_DEFLATE) {
    const r = new ByteReader(raw, 0, bodyLen);
    const rawLen = r.varint();
    if (rawLen > BLOCK_BYTES_HARD_MAX) throw new FormatError(`block raw length ${rawLen} over limit`);
    try {
      data = inflateRawSync(raw.subarray(r.pos, bodyLen), { maxOutputLength: Math.max(1, rawLen) });
    } catch (err) {
      throw new FormatError(`block does not decompress: ${(err as Error).message}`);
    }
    if (data.length !== rawLen) throw new FormatError('block decompressed to the wrong length');
  } else {
    throw new FormatError(`unknown block codec ${codec}`);
  }
  if (data.length <= ENTRY_STARTS_TAIL_BYTES) throw new FormatError('block has no entry starts');
  const count = data.readUInt32LE(data.length - 4);
  const width = data[data.length - ENTRY_STARTS_TAIL_BYTES]!;
  if (width !== 2 && width !== 4) throw new FormatError(`bad entry start width ${width}`);
  const startsAt = data.length - ENTRY_STARTS_TAIL_BYTES - count * width;
  if (count === 0 || startsAt <= 0 || (width === 2) !== startsAt <= NARROW_ENTRIES_BYTES_MAX) {
    throw new FormatError(`bad entry count ${count}`);
  }
  const block: Block = { data, count, startsAt, width, keyWords: undefined, keyPrefixLen: 0, firstKeyAt: 0 };
  // The stored first start must be 0 (entryStart assumes it without reading it).
  if ((width === 2 ? data.readUInt16LE(startsAt) : data.readUInt32LE(startsAt)) !== 0) throw new FormatError('bad start of entry 0');
  let prev = 0;
  for (let i = 1; i < count; i++) {
    const at = entryStart(block, i);
    if (at <= prev || at >= startsAt) throw new FormatError(`bad start of entry ${i}`);
    prev = at;
  }
  if (keyWords && count >= KEY_WORDS_ENTRIES_MIN) addKeyWords(block);
  return block;
}

/** Where entry i's key starts (its length left in keyLenAt), checked as compareEntryAt checks it. */
function entryKeyAt(block: Block, i: number): number {
  const data = block.data;
  const end = entryEnd(block, i);
  keyLenAt = varintAt(data, entryStart(block, i), end);
  const valueLen = varintAt(data, varintEndPos, end);
  varintAt(data, varintEndPos, end); // seq
  varintAt(data, varintEndPos + 1, end); // kind, then time
  const keyAt = varintEndPos;
  if (keyLenAt + valueLen !== end - keyAt) throw new FormatError(`entry ${i} length does not match its bounds`);
  return keyAt;
}

/** Set by entryKeyAt: the key length of the entry it read. */
let keyLenAt = 0;

/** Block.keyWords, keyPrefixLen, firstKeyAt of a checked block (entries in internal order). */
function addKeyWords(block: Block): void {
  const data = block.data;
  const n = block.count;
  const firstAt = entryKeyAt(block, 0);
  const firstLen = keyLenAt;
  const lastAt = entryKeyAt(block, n - 1);
  const lastLen = keyLenAt;
  // The keys are sorted: what the first and the last share, every key shares.
  let p = 0;
  const max = firstLen < lastLen ? firstLen : lastLen;
  while (p < max && data[firstAt + p] === data[lastAt + p]) p++;
  const words = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const at = entryKeyAt(block, i);
    words[i] = wordAt(data, at + p, at + keyLenAt);
  }
  block.keyWords = words;
  block.keyPrefixLen = p;
  block.firstKeyAt = firstAt;
}

function entryStart(block: Block, i: number): number {
  // The first start is 0 (checked by decodeBlock): not read, so a point read of a block's only
  // entry never touches the block's far end (a cache miss with 4 KiB values).
  if (i === 0) return 0;
  const p = block.startsAt + i * block.width;
  const d = block.data;
  return block.width === 2 ? d[p]! | (d[p + 1]! << 8) : d.readUInt32LE(p);
}

function entryEnd(block: Block, i: number): number {
  return i + 1 < block.count ? entryStart(block, i + 1) : block.startsAt;
}

/** Set by varintAt: the position after the varint it read (saves an object per read). */
let varintEndPos = 0;

/** The varint at buf[pos] (bounds-checked against end); sets varintEndPos. */
function varintAt(buf: Buffer, pos: number, end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < VARINT_BYTES_MAX; i++) {
    if (pos >= end) throw new FormatError('varint past end');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      varintEndPos = pos;
      return result;
    }
    mul *= 128;
  }
  throw new FormatError('varint too long');
}

/** compareInternal(entry i of block, (key, seq)), reading the entry header in place. */
function compareEntryAt(block: Block, i: number, key: Buffer, seq: number): number {
  const data = block.data;
  const end = entryEnd(block, i);
  const keyLen = varintAt(data, entryStart(block, i), end);
  const valueLen = varintAt(data, varintEndPos, end);
  const s = varintAt(data, varintEndPos, end);
  varintAt(data, varintEndPos + 1, end); // kind, then time
  const keyAt = varintEndPos;
  if (keyLen + valueLen !== end - keyAt) throw new FormatError(`entry ${i} length does not match its bounds`);
  const c = compareRange(data, keyAt, keyLen, key);
  if (c !== 0) return c;
  return s > seq ? -1 : s < seq ? 1 : 0;
}

/** Index of the first entry in block with internal key >= (key, seq); == count if none. */
export function seekInBlock(block: Block, key: Buffer, seq: number): number {
  const words = block.keyWords;
  let lo = 0;
  let hi = block.count;
  if (words === undefined) {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareEntryAt(block, mid, key, seq) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  // Off the shared prefix, key is below or above every entry's key.
  const p = block.keyPrefixLen;
  const data = block.data;
  const first = block.firstKeyAt;
  for (let j = 0; j < p; j++) {
    if (j >= key.length) return 0;
    const d = key[j]! - data[first + j]!;
    if (d !== 0) return d < 0 ? 0 : hi;
  }
  // Ordering by word agrees with bytewise order whenever the words differ (zero padding: a
  // shorter key orders first, as a prefix does), so only ties read the entry.
  const w = wordAt(key, p, key.length);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const mw = words[mid]!;
    if (mw < w || (mw === w && compareEntryAt(block, mid, key, seq) < 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Entry i of block when its user key is `key`, else undefined (a point read's answer). Checked
 * as blockEntry checks it, but the header is read once and in place, and the entry's key is
 * `key` itself (equal bytes): one view (the value) instead of a reader and two views.
 */
export function entryWithKey(block: Block, i: number, key: Buffer): InternalEntry | undefined {
  const data = block.data;
  const end = entryEnd(block, i);
  const keyLen = varintAt(data, entryStart(block, i), end);
  const valueLen = varintAt(data, varintEndPos, end);
  const seq = varintAt(data, varintEndPos, end);
  const kindAt = varintEndPos;
  const time = varintAt(data, kindAt + 1, end);
  const keyAt = varintEndPos;
  if (keyLen + valueLen !== end - keyAt) throw new FormatError(`entry ${i} length does not match its bounds`);
  const kind = data[kindAt];
  if (kind !== KIND_DELETE && kind !== KIND_PUT) throw new FormatError(`bad entry kind ${kind}`);
  if (keyLen !== key.length || compareRange(data, keyAt, keyLen, key) !== 0) return undefined;
  return { key, seq, kind, time, value: data.subarray(keyAt + keyLen, end) };
}

/** Entry i of block; key and value are views into the block. */
export function blockEntry(block: Block, i: number): InternalEntry {
  const end = entryEnd(block, i);
  const r = new ByteReader(block.data, entryStart(block, i), end);
  const e = decodeEntry(r);
  if (r.pos !== end) throw new FormatError(`entry ${i} length does not match its bounds`);
  return e;
}

/**
 * Sequential iterator over consecutive data blocks held in memory (raw, with trailers), block b
 * being sizes[b] bytes: a compaction slice's input. Checks every block as it goes.
 */
export class BlockSpanIterator {
  private blockNo = -1;
  private start = 0;
  private block: Block | undefined;
  private i = 0;
  current: InternalEntry | undefined;
  /** The raw current block when `current` is its only entry (see EntrySource.currentBlock). */
  currentBlock: Buffer | undefined;

  constructor(
    private readonly bytes: Buffer,
    private readonly sizes: ArrayLike<number>,
  ) {
    let total = 0;
    for (let b = 0; b < sizes.length; b++) total += sizes[b]!;
    if (total !== bytes.length) throw new FormatError(`block sizes add up to ${total}, not ${bytes.length}`);
    this.loadNext();
  }

  private loadNext(): void {
    if (this.blockNo >= 0) this.start += this.sizes[this.blockNo]!;
    this.blockNo++;
    if (this.blockNo >= this.sizes.length) {
      this.block = undefined;
      this.current = undefined;
      this.currentBlock = undefined;
      return;
    }
    const raw = this.bytes.subarray(this.start, this.start + this.sizes[this.blockNo]!);
    this.block = decodeBlock(raw);
    this.i = 0;
    this.current = blockEntry(this.block, 0);
    this.currentBlock = this.block.count === 1 ? raw : undefined;
  }

  next(): void {
    if (!this.block) return;
    this.i++;
    if (this.i < this.block.count) {
      this.current = blockEntry(this.block, this.i);
      return;
    }
    this.loadNext();
  }
}

/** Sizes of a parsed index's blocks, in order. */
export function blockSizes(idx: TableIndex): number[] {
  const out: number[] = [];
  for (let b = 0; b < idx.count; b++) out.push(blockSizeAt(idx, b));
  return out;
}

/**
 * Sequential iterator over a whole table held in memory. Verifies footer, index and every
 * block checksum as it goes.
 */
export class TableBufferIterator extends BlockSpanIterator {
  constructor(file: Buffer) {
    const footer = parseFooter(file.subarray(file.length - FOOTER_BYTES), file.length);
    const idx = parseIndex(file.subarray(footer.indexOffset, footer.indexOffset + footer.indexLen), footer);
    super(file.subarray(0, footer.filterOffset), blockSizes(idx));
  }
}
