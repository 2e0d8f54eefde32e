/**
 * Sorted table (SSTable) format, and the pure code that writes and decodes it. A table holds
 * internal entries (internal_entry.ts) in internal order; all versions of one user key that a
 * compaction keeps land in the same table.
 *
 *   table       := dataBlock+ filter index footer             (a table has >= 1 entry)
 *   dataBlock   := body codec:u8 crc:u32                       crc = CRC32(body ++ codec)
 *   body        := entry*                                      (codec 0: none)
 *                | rawLen:varint deflateRaw(entry*)            (codec 1: deflate, zlib level 1)
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
import { equalBytes } from './bytes.js';
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
import { ByteReader, FormatError, putVarint, varintLength } from './varint.js';

export const TABLE_MAGIC = Buffer.from('RKVTABLE', 'latin1');
export const TABLE_FORMAT_VERSION = 1;
export const FOOTER_BYTES = 48;
export const BLOCK_TRAILER_BYTES = 5;
export const CODEC_NONE = 0;
export const CODEC_DEFLATE = 1;

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

/** Builds one table in memory. Pure: bytes in, bytes out (runs in the worker thread). */
export class TableBuilder {
  private readonly chunks: Buffer[] = [];
  private offset = 0;
  private block: Buffer;
  private blockLen = 0;
  private readonly bloom: BloomBuilder;
  private readonly index: { key: Buffer; seq: number; offset: number; size: number }[] = [];
  private last: InternalEntry | undefined;
  private first: InternalEntry | undefined;
  private entries = 0;
  private tombstones = 0;
  private smallestSeq = Number.MAX_SAFE_INTEGER;
  private largestSeq = 0;

  constructor(private readonly options: TableBuildOptions) {
    this.block = Buffer.allocUnsafe(Math.max(1024, options.blockBytes * 2));
    this.bloom = new BloomBuilder(options.bloomBitsPerKey);
  }

  /** Bytes written so far plus the open block: what the table would roughly take now. */
  get estimatedBytes(): number {
    return this.offset + this.blockLen;
  }

  get entryCount(): number {
    return this.entries;
  }

  /** Adds an entry; entries must come in strictly increasing internal order. */
  add(e: InternalEntry): void {
    const prev = this.last;
    if (prev) assert(compareInternal(prev.key, prev.seq, e.key, e.seq) < 0, 'table entries out of order');
    if (!prev || !equalBytes(prev.key, e.key)) this.bloom.addKey(e.key);
    const len = encodedEntryLength(e);
    if (this.blockLen + len > this.block.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.block.length * 2, this.blockLen + len));
      this.block.copy(bigger, 0, 0, this.blockLen);
      this.block = bigger;
    }
    this.blockLen = encodeEntry(this.block, this.blockLen, e);
    // Keep copies of boundary keys: e.key may be a view into a buffer that is reused.
    this.last = e;
    if (!this.first) this.first = { ...e, key: Buffer.from(e.key), value: Buffer.alloc(0) };
    this.entries++;
    if (e.kind === KIND_DELETE) this.tombstones++;
    if (e.seq < this.smallestSeq) this.smallestSeq = e.seq;
    if (e.seq > this.largestSeq) this.largestSeq = e.seq;
    if (this.blockLen >= this.options.blockBytes) this.finishBlock();
  }

  private finishBlock(): void {
    if (this.blockLen === 0) return;
    const last = this.last!;
    const raw = this.block.subarray(0, this.blockLen);
    let body: Buffer = raw;
    let codec = CODEC_NONE;
    if (this.options.compression === 'deflate') {
      const compressed = deflateRawSync(raw, { level: 1 });
      const header = varintLength(raw.length);
      if (header + compressed.length <= raw.length - raw.length / 8) {
        body = Buffer.allocUnsafe(header + compressed.length);
        putVarint(body, 0, raw.length);
        compressed.copy(body, header);
        codec = CODEC_DEFLATE;
      }
    }
    const out = Buffer.allocUnsafe(body.length + BLOCK_TRAILER_BYTES);
    body.copy(out, 0);
    out[body.length] = codec;
    out.writeUInt32LE(crc32(out.subarray(0, body.length + 1)), body.length + 1);
    this.index.push({ key: Buffer.from(last.key), seq: last.seq, offset: this.offset, size: out.length });
    this.chunks.push(out);
    this.offset += out.length;
    this.blockLen = 0;
  }

  /** Lays out filter, index and footer; returns the whole file. */
  finish(): { bytes: Buffer; meta: TableMeta } {
    assert(this.entries > 0, 'a table needs at least one entry');
    this.finishBlock();
    const filter = this.bloom.finish();
    const filterOffset = this.offset;
    let indexLen = 0;
    for (const ie of this.index) {
      indexLen += varintLength(ie.key.length) + ie.key.length + varintLength(ie.seq) + varintLength(ie.offset) + varintLength(ie.size);
    }
    const index = Buffer.allocUnsafe(indexLen);
    let p = 0;
    for (const ie of this.index) {
      p = putVarint(index, p, ie.key.length);
      p += ie.key.copy(index, p);
      p = putVarint(index, p, ie.seq);
      p = putVarint(index, p, ie.offset);
      p = putVarint(index, p, ie.size);
    }
    const indexOffset = filterOffset + filter.length;
    const footer = Buffer.alloc(FOOTER_BYTES);
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
    // One exclusive ArrayBuffer (allocUnsafeSlow: never the shared pool) so it can be
    // transferred between threads.
    const size = indexOffset + index.length + FOOTER_BYTES;
    const bytes = Buffer.allocUnsafeSlow(size);
    let q = 0;
    for (const c of this.chunks) q += c.copy(bytes, q);
    q += filter.copy(bytes, q);
    q += index.copy(bytes, q);
    footer.copy(bytes, q);
    const first = this.first!;
    return {
      bytes,
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

/** A table's sparse index: one entry per data block, held in memory while the table is open. */
export interface TableIndex {
  lastKeys: Buffer[];
  lastSeqs: number[];
  offsets: number[];
  sizes: number[];
}

export function parseIndex(buf: Buffer, footer: Footer): TableIndex {
  if (crc32(buf) !== footer.indexCrc) throw new FormatError('table index checksum mismatch');
  const r = new ByteReader(buf);
  const idx: TableIndex = { lastKeys: [], lastSeqs: [], offsets: [], sizes: [] };
  let expectOffset = 0;
  while (r.remaining > 0) {
    const key = r.bytes(r.varint());
    const seq = r.varint();
    const offset = r.varint();
    const size = r.varint();
    if (offset !== expectOffset || size <= BLOCK_TRAILER_BYTES || size > BLOCK_BYTES_HARD_MAX || offset + size > footer.filterOffset) {
      throw new FormatError(`table index entry ${idx.offsets.length} has bad block bounds`);
    }
    const n = idx.lastKeys.length;
    if (n > 0 && compareInternal(idx.lastKeys[n - 1]!, idx.lastSeqs[n - 1]!, key, seq) >= 0) {
      throw new FormatError('table index out of order');
    }
    expectOffset = offset + size;
    idx.lastKeys.push(key);
    idx.lastSeqs.push(seq);
    idx.offsets.push(offset);
    idx.sizes.push(size);
  }
  if (expectOffset !== footer.filterOffset) throw new FormatError('table index does not cover the data blocks');
  return idx;
}

export function checkFilter(buf: Buffer, footer: Footer): void {
  if (crc32(buf) !== footer.filterCrc) throw new FormatError('table filter checksum mismatch');
  validateBloom(buf);
}

/** Index of the first block whose last internal key >= (key, seq); == block count if none. */
export function findBlock(idx: TableIndex, key: Buffer, seq: number): number {
  let lo = 0;
  let hi = idx.lastKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareInternal(idx.lastKeys[mid]!, idx.lastSeqs[mid]!, key, seq) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A decoded data block: the raw entries, where each starts, and where each key lies and its
 * seq (so a seek inside the block compares bytes in place, without decoding or allocating).
 */
export interface Block {
  data: Buffer;
  offsets: Uint32Array;
  keyOffsets: Uint32Array;
  keyLengths: Uint32Array;
  seqs: Float64Array;
}

/** Bytes a decoded block's side arrays take per entry (for cache accounting). */
export const BLOCK_INDEX_BYTES_PER_ENTRY = 4 + 4 + 4 + 8;

/** Checks a block's trailer, decompresses it and indexes its entries (all bounds-checked). */
export function decodeBlock(raw: Buffer): Block {
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
  const offsets: number[] = [];
  const keyOffsets: number[] = [];
  const keyLengths: number[] = [];
  const seqs: number[] = [];
  const r = new ByteReader(data);
  while (r.remaining > 0) {
    offsets.push(r.pos);
    const keyLen = r.varint();
    const valueLen = r.varint();
    const seq = r.varint();
    const kind = r.u8();
    if (kind !== KIND_DELETE && kind !== KIND_PUT) throw new FormatError(`bad entry kind ${kind}`);
    r.varint();
    keyOffsets.push(r.pos);
    keyLengths.push(keyLen);
    seqs.push(seq);
    r.bytes(keyLen);
    r.bytes(valueLen);
  }
  if (offsets.length === 0) throw new FormatError('empty block');
  return {
    data,
    offsets: Uint32Array.from(offsets),
    keyOffsets: Uint32Array.from(keyOffsets),
    keyLengths: Uint32Array.from(keyLengths),
    seqs: Float64Array.from(seqs),
  };
}

/** compareInternal(entry i of block, (key, seq)) without decoding the entry. */
function compareEntryAt(block: Block, i: number, key: Buffer, seq: number): number {
  const data = block.data;
  const off = block.keyOffsets[i]!;
  const len = block.keyLengths[i]!;
  const n = len < key.length ? len : key.length;
  for (let j = 0; j < n; j++) {
    const d = data[off + j]! - key[j]!;
    if (d !== 0) return d;
  }
  if (len !== key.length) return len - key.length;
  const s = block.seqs[i]!;
  return s > seq ? -1 : s < seq ? 1 : 0;
}

/** Index of the first entry in block with internal key >= (key, seq); == count if none. */
export function seekInBlock(block: Block, key: Buffer, seq: number): number {
  let lo = 0;
  let hi = block.offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareEntryAt(block, mid, key, seq) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function blockEntry(block: Block, i: number): InternalEntry {
  return decodeEntry(new ByteReader(block.data, block.offsets[i]!, block.data.length));
}

/**
 * Sequential iterator over a whole table held in memory (the compaction worker's input).
 * Verifies footer, index and every block checksum as it goes.
 */
export class TableBufferIterator {
  private readonly idx: TableIndex;
  private blockNo = 0;
  private block: Block | undefined;
  private i = 0;
  current: InternalEntry | undefined;

  constructor(private readonly file: Buffer) {
    const footer = parseFooter(file.subarray(file.length - FOOTER_BYTES), file.length);
    this.idx = parseIndex(file.subarray(footer.indexOffset, footer.indexOffset + footer.indexLen), footer);
    this.loadBlock();
  }

  private loadBlock(): void {
    while (this.blockNo < this.idx.offsets.length) {
      const off = this.idx.offsets[this.blockNo]!;
      this.block = decodeBlock(this.file.subarray(off, off + this.idx.sizes[this.blockNo]!));
      this.i = 0;
      this.current = blockEntry(this.block, 0);
      return;
    }
    this.block = undefined;
    this.current = undefined;
  }

  next(): void {
    if (!this.block) return;
    this.i++;
    if (this.i < this.block.offsets.length) {
      this.current = blockEntry(this.block, this.i);
      return;
    }
    this.blockNo++;
    this.loadBlock();
  }
}
