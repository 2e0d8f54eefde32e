/**
 * The block cache: checked data blocks, LRU, bounded in BYTES (lru-cache maxSize +
 * sizeCalculation), shared by all tables of an engine. Key: (table file number, block number).
 *
 * A block is charged for the whole ArrayBuffer it keeps alive plus a fixed bookkeeping cost,
 * so the bound is a bound on memory, not on payload: a block that is a view into a larger
 * buffer (a scan's read-ahead span, the shared allocation pool) is copied to a buffer of its
 * own before it is cached.
 */
import { LRUCache } from 'lru-cache';
import { BLOCK_TRAILER_BYTES, type Block } from './table_format.js';

/** Bookkeeping per cached block counted on top of its bytes (LRU entry, map slot, Block and Buffer objects). */
const BLOCK_OVERHEAD_BYTES = 160;
/**
 * Numeric keys: fileNumber * BLOCKS_PER_TABLE_KEY_SPAN + blockNo, exact while below 2^53. A table
 * has fewer blocks than this (its index is at most TABLE_INDEX_BYTES_MAX = 2^28 bytes and an
 * index entry takes at least 5), so keys never collide; file numbers past the exact range fall
 * back to string keys.
 */
const BLOCKS_PER_TABLE_KEY_SPAN = 2 ** 26;
const NUMERIC_FILE_NUMBER_MAX = Math.floor(Number.MAX_SAFE_INTEGER / BLOCKS_PER_TABLE_KEY_SPAN) - 1;

type CacheKey = number | string;

/**
 * Options passed to every LRUCache.get: without them lru-cache allocates an empty options object
 * per call (a point read makes one get per table it consults). Holds no state of ours (get
 * only records an undefined status on it when no diagnostics subscriber listens).
 */
const GET_OPTIONS: LRUCache.GetOptions<CacheKey, Block, unknown> = {};

function cacheKey(fileNumber: number, blockNo: number): CacheKey {
  return fileNumber <= NUMERIC_FILE_NUMBER_MAX ? fileNumber * BLOCKS_PER_TABLE_KEY_SPAN + blockNo : `${fileNumber}:${blockNo}`;
}

/** Bytes a cached block keeps alive. */
export function blockMemoryBytes(b: Block): number {
  return b.data.buffer.byteLength + BLOCK_OVERHEAD_BYTES;
}

/** A copy with an ArrayBuffer of its own (never a slice of the shared allocation pool). */
function ownCopy(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

export class BlockCache {
  private readonly lru: LRUCache<CacheKey, Block> | undefined;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.lru = maxBytes > 0 ? new LRUCache<CacheKey, Block>({ maxSize: maxBytes, sizeCalculation: blockMemoryBytes }) : undefined;
  }

  get(fileNumber: number, blockNo: number): Block | undefined {
    const b = this.lru?.get(cacheKey(fileNumber, blockNo), GET_OPTIONS);
    if (b) this.hits++;
    else this.misses++;
    return b;
  }

  set(fileNumber: number, blockNo: number, block: Block): void {
    if (!this.lru) return;
    // A view that pins more than its own block's bytes (plus trailer) is cached as a compact copy.
    const data = block.data.buffer.byteLength > block.data.length + BLOCK_TRAILER_BYTES ? ownCopy(block.data) : block.data;
    this.lru.set(cacheKey(fileNumber, blockNo), data === block.data ? block : { ...block, data });
  }

  /** Drops every block of a table (when the table is deleted). */
  evictTable(fileNumber: number, blockCount: number): void {
    if (!this.lru) return;
    for (let b = 0; b < blockCount; b++) this.lru.delete(cacheKey(fileNumber, b));
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }
}
