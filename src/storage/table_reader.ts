/**
 * An open table: footer, sparse index and bloom filter held in memory (small: one index entry
 * per data block, ~bloomBitsPerKey bits per key), data blocks read on demand through the block
 * cache. All reads go through the engine's FileSystem. Every failed check is
 * StorageError('ECORRUPT') naming the file, never a crash and never a wrong value.
 */
import * as path from 'node:path';
import type { FileHandle, FileSystem } from './fs.js';
import { StorageError } from './types.js';
import { bloomMayContain, type BloomKey } from './bloom.js';
import type { BlockCache } from './block_cache.js';
import type { InternalEntry } from './internal_entry.js';
import type { Slice } from './compaction_slices.js';
import {
  blockEntry,
  blockSizeAt,
  checkFilter,
  decodeBlock,
  entryWithKey,
  findBlock,
  FOOTER_BYTES,
  INDEX_BYTES_PER_BLOCK,
  parseFooter,
  parseIndex,
  seekInBlock,
  tableFileName,
  type Block,
  type TableIndex,
} from './table_format.js';
import { FormatError } from './varint.js';

/**
 * Scans read consecutive blocks with one file read, starting with one block (short scans, the
 * common SCAN/range case, read no more than they need) and doubling up to this many bytes.
 */
export const SCAN_READAHEAD_BYTES = 256 * 1024;
/** getCached(): the block is not cached, call get(). */
export const NEEDS_IO = Symbol('needs-io');

export interface ReadStats {
  bloomChecks: number;
  bloomNegatives: number;
}

export class TableReader {
  private constructor(
    readonly fileNumber: number,
    readonly file: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly index: TableIndex,
    private readonly filter: Buffer,
    readonly entries: number,
    private readonly cache: BlockCache,
    private readonly syncReads: boolean,
  ) {}

  static async open(fs: FileSystem, dir: string, fileNumber: number, cache: BlockCache, syncReads = false): Promise<TableReader> {
    const name = tableFileName(fileNumber);
    const file = path.join(dir, name);
    const handle = await fs.open(file, 'read');
    try {
      const size = await handle.size();
      const footerBuf = await readExactly(handle, size - FOOTER_BYTES, FOOTER_BYTES, name);
      const footer = parseFooter(footerBuf, size);
      const filter = await readExactly(handle, footer.filterOffset, footer.filterLen, name);
      checkFilter(filter, footer);
      const indexBuf = await readExactly(handle, footer.indexOffset, footer.indexLen, name);
      const index = parseIndex(indexBuf, footer);
      return new TableReader(fileNumber, name, handle, size, index, filter, footer.entries, cache, syncReads && handle.readSync !== undefined);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw asCorrupt(err, name);
    }
  }

  /** Bytes held in memory for this table (index + filter). */
  get memoryBytes(): number {
    return this.filter.length + this.index.keys.length + this.index.count * INDEX_BYTES_PER_BLOCK;
  }

  mayContain(key: Buffer | BloomKey, stats: ReadStats): boolean {
    stats.bloomChecks++;
    const may = bloomMayContain(this.filter, key);
    if (!may) stats.bloomNegatives++;
    return may;
  }

  /** Reads length bytes at position synchronously (only when syncReads) into raw, or a new buffer. */
  private readSync(position: number, length: number, raw: Buffer = Buffer.allocUnsafe(length)): Buffer {
    let done = 0;
    while (done < length) {
      const n = this.handle.readSync!(raw, done, length - done, position + done);
      if (n <= 0) throw new StorageError('ECORRUPT', `${this.file}: unexpected end of file at offset ${position + done}`);
      done += n;
    }
    return raw;
  }

  /** Reads (or finds in the cache) block number b. */
  async block(b: number, fillCache = true): Promise<Block> {
    const cached = this.cache.get(this.fileNumber, b);
    if (cached) return cached;
    const off = this.index.offsets[b]!;
    const size = blockSizeAt(this.index, b);
    const raw = this.syncReads ? this.readSync(off, size, this.cache.takeBuffer(size)) : await readExactly(this.handle, off, size, this.file);
    const block = this.decode(raw, off);
    if (fillCache) this.cache.set(this.fileNumber, b, block);
    return block;
  }

  private decode(raw: Buffer, off: number): Block {
    try {
      return decodeBlock(raw, true);
    } catch (err) {
      throw asCorrupt(err, `${this.file} block at offset ${off}`);
    }
  }

  /**
   * get() without I/O: the answer when the bloom filter or the block cache can give it, or
   * NEEDS_IO when the block must be read (then call get()). Lets a point read that hits the
   * cache finish without a single await (no microtask hop per table).
   *
   * transient: the caller copies what it keeps of the entry and drops it before its next read
   * or await. A block read for such a caller is cached as reusable (BlockCache.set): once
   * evicted, its memory holds a later read's block, and any view still held would change.
   */
  getCached(key: Buffer, seq: number, stats: ReadStats, hashed: BloomKey | undefined, transient: boolean): InternalEntry | undefined | typeof NEEDS_IO {
    if (!this.mayContain(hashed ?? key, stats)) return undefined;
    const b = findBlock(this.index, key, seq);
    if (b >= this.index.count) return undefined;
    let block = this.cache.get(this.fileNumber, b);
    if (!block) {
      if (!this.syncReads) return NEEDS_IO;
      const off = this.index.offsets[b]!;
      const size = blockSizeAt(this.index, b);
      block = this.decode(this.readSync(off, size, this.cache.takeBuffer(size)), off);
      this.cache.set(this.fileNumber, b, block, transient);
    }
    return this.findInBlock(block, key, seq);
  }

  /** The newest version of key with seq <= seq in this table, or undefined. Bloom first. */
  async get(key: Buffer, seq: number, stats: ReadStats, hashed?: BloomKey): Promise<InternalEntry | undefined> {
    if (!this.mayContain(hashed ?? key, stats)) return undefined;
    const b = findBlock(this.index, key, seq);
    if (b >= this.index.count) return undefined;
    return this.findInBlock(await this.block(b), key, seq);
  }

  private findInBlock(block: Block, key: Buffer, seq: number): InternalEntry | undefined {
    try {
      // A block of one entry (every block, with values of blockBytes or more): that entry is
      // the first >= (key, seq) in the block (findBlock chose the block by its last key).
      const i = block.count === 1 ? 0 : seekInBlock(block, key, seq);
      return i < block.count ? entryWithKey(block, i, key) : undefined;
    } catch (err) {
      throw asCorrupt(err, this.file);
    }
  }

  /** Estimated bytes and entries of this table in [gte, lt), from the index. */
  estimateRange(gte: Buffer | undefined, lt: Buffer | undefined): { bytes: number; entries: number } {
    const n = this.index.count;
    const from = gte ? findBlock(this.index, gte, Number.MAX_SAFE_INTEGER) : 0;
    const to = lt ? findBlock(this.index, lt, Number.MAX_SAFE_INTEGER) : n - 1;
    // Blocks from..to (inclusive, clamped) hold the range; count partial blocks as half.
    const last = Math.min(to, n - 1);
    if (from > last) return { bytes: 0, entries: 0 };
    let blocks = last - from + 1;
    if (blocks > 1) blocks -= 0.5;
    else blocks = 0.5;
    const frac = blocks / n;
    return { bytes: Math.round(frac * this.fileSize), entries: Math.round(frac * this.entries) };
  }

  iterator(gte: Buffer | undefined): TableIterator {
    return new TableIterator(this, this.handle, gte);
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  /**
   * The blocks [from, to] that hold every user key of the slice (after, upTo], or undefined
   * when none can (they may hold keys outside it too: the job filters).
   */
  sliceBlocks(slice: Slice): { from: number; to: number } | undefined {
    const n = this.index.count;
    const from = slice.after ? findBlock(this.index, slice.after, 0) : 0;
    const to = slice.upTo ? Math.min(n - 1, findBlock(this.index, slice.upTo, 0)) : n - 1;
    return from <= to ? { from, to } : undefined;
  }

  /**
   * Reads blocks [from, to] raw (unchecked: the worker checks them) into a buffer of its own,
   * which a job may transfer to the worker thread; asynchronous (compaction is background work).
   */
  async readBlocksRaw(from: number, to: number): Promise<{ bytes: Buffer; sizes: number[] }> {
    const start = this.index.offsets[from]!;
    const length = this.index.offsets[to + 1]! - start;
    const bytes = Buffer.allocUnsafeSlow(length);
    let done = 0;
    while (done < length) {
      const n = await this.handle.read(bytes, done, length - done, start + done);
      if (n <= 0) throw new StorageError('ECORRUPT', `${this.file}: unexpected end of file at offset ${start + done}`);
      done += n;
    }
    const sizes: number[] = [];
    for (let b = from; b <= to; b++) sizes.push(blockSizeAt(this.index, b));
    return { bytes, sizes };
  }

  /** Reads blocks [from, to] with one read (scans), decoding each; uses cached ones as is. */
  async readSpan(from: number, to: number): Promise<Block[]> {
    const start = this.index.offsets[from]!;
    const end = this.index.offsets[to + 1]!;
    const raw = this.syncReads ? this.readSync(start, end - start) : await readExactly(this.handle, start, end - start, this.file);
    const out: Block[] = [];
    for (let b = from; b <= to; b++) {
      const off = this.index.offsets[b]!;
      out.push(this.cache.get(this.fileNumber, b) ?? this.decode(raw.subarray(off - start, off - start + blockSizeAt(this.index, b)), off));
    }
    return out;
  }
}

/**
 * Iterates a table in internal order from the first key >= gte, reading ahead several
 * consecutive blocks per file read. next() returns a promise only when it must read.
 */
export class TableIterator {
  private blocks: Block[] = [];
  private blockNo: number;
  private spanStart = 0;
  private block: Block | undefined;
  private i = 0;
  current: InternalEntry | undefined;
  private started = false;
  private readaheadBytes = 0;

  constructor(
    private readonly table: TableReader,
    _handle: FileHandle,
    private readonly gte: Buffer | undefined,
  ) {
    this.blockNo = gte ? findBlock(table.index, gte, Number.MAX_SAFE_INTEGER) : 0;
  }

  /** Positions on the first entry; must be awaited once before use. */
  async init(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.loadFrom(this.blockNo);
    if (this.gte && this.block) {
      try {
        this.i = seekInBlock(this.block, this.gte, Number.MAX_SAFE_INTEGER);
      } catch (err) {
        throw asCorrupt(err, this.table.file);
      }
      if (this.i >= this.block.count) {
        await this.advanceBlock();
        return;
      }
      this.current = this.entry();
    }
  }

  private entry(): InternalEntry {
    try {
      return blockEntry(this.block!, this.i);
    } catch (err) {
      throw asCorrupt(err, this.table.file);
    }
  }

  private async loadFrom(b: number): Promise<void> {
    const idx = this.table.index;
    if (b >= idx.count) {
      this.block = undefined;
      this.current = undefined;
      return;
    }
    let to = b;
    if (this.readaheadBytes === 0) {
      this.blocks = [await this.table.block(b)];
      this.readaheadBytes = blockSizeAt(idx, b);
    } else {
      this.readaheadBytes = Math.min(SCAN_READAHEAD_BYTES, this.readaheadBytes * 2);
      while (to + 1 < idx.count && idx.offsets[to + 2]! - idx.offsets[b]! <= this.readaheadBytes) to++;
      this.blocks = await this.table.readSpan(b, to);
    }
    this.spanStart = b;
    this.blockNo = b;
    this.block = this.blocks[0];
    this.i = 0;
    this.current = this.entry();
  }

  private advanceBlock(): Promise<void> | void {
    this.blockNo++;
    const k = this.blockNo - this.spanStart;
    if (k < this.blocks.length) {
      this.block = this.blocks[k]!;
      this.i = 0;
      this.current = this.entry();
      return;
    }
    return this.loadFrom(this.blockNo);
  }

  next(): Promise<void> | void {
    if (!this.block) return;
    this.i++;
    if (this.i < this.block.count) {
      this.current = this.entry();
      return;
    }
    return this.advanceBlock();
  }
}

async function readExactly(handle: FileHandle, position: number, length: number, name: string): Promise<Buffer> {
  if (position < 0 || length < 0) throw new StorageError('ECORRUPT', `${name}: bad read range ${position}+${length}`);
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = await handle.read(buf, done, length - done, position + done);
    if (n <= 0) throw new StorageError('ECORRUPT', `${name}: unexpected end of file at offset ${position + done}`);
    done += n;
  }
  return buf;
}

export function asCorrupt(err: unknown, what: string): unknown {
  if (err instanceof FormatError) return new StorageError('ECORRUPT', `${what}: ${err.message}`, { cause: err });
  return err;
}
