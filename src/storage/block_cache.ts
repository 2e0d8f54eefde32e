/**
 * The block cache: checked data blocks, LRU, bounded in BYTES (lru-cache maxSize +
 * sizeCalculation), shared by all tables of an engine. Key: (table file number, block number).
 *
 * A block is charged for the whole ArrayBuffer it keeps alive plus a fixed bookkeeping cost,
 * so the bound is a bound on memory, not on payload: a block that is a view into a larger
 * buffer (a scan's read-ahead span, the shared allocation pool) is copied to a buffer of its
 * own before it is cached.
 *
 * Reused memory. A point read that misses reads its block into fresh memory, and with a small
 * cache every such block soon evicts another: one new ArrayBuffer per cold get, written by the
 * kernel while cold in the CPU caches (measured on the AMD VM: pread of 4 KiB into a new buffer
 * 6.6-9.4 us, into a reused one 3.8-4.7 us). So the memory of an evicted block is kept for the
 * next read when no reader can still see it: the block came in through a point read that copied
 * what it returned before doing anything else (set(..., reusable = true)) and was never handed
 * out by get() since (a hit may go to an iterator or a getSync caller, who keep views). Such
 * memory waits in a small spare list (SPARE_BYTES_MAX) until takeBuffer() hands it out.
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

/** What the LRU holds: a block, and whether its memory may be reused once it is evicted. */
interface Slot {
  block: Block;
  reusable: boolean;
}

/** Memory of evicted blocks kept for reuse, at most this many bytes and buffers (outside maxBytes). */
const SPARE_BYTES_MAX = 128 * 1024;
const SPARE_BUFFERS_MAX = 16;
/** A spare buffer serves a read of size bytes if it is at most this much larger (the cache charges the whole buffer). */
const SPARE_SLACK_BYTES = 256;

/**
 * Options passed to every LRUCache.get: without them lru-cache allocates an empty options object
 * per call (a point read makes one get per table it consults). Holds no state of ours (get
 * only records an undefined status on it when no diagnostics subscriber listens).
 */
const GET_OPTIONS: LRUCache.GetOptions<CacheKey, Slot, unknown> = {};

function cacheKey(fileNumber: number, blockNo: number): CacheKey {
  return fileNumber <= NUMERIC_FILE_NUMBER_MAX ? fileNumber * BLOCKS_PER_TABLE_KEY_SPAN + blockNo : `${fileNumber}:${blockNo}`;
}

/** Bytes a cached block keeps alive. */
export function blockMemoryBytes(b: Block): number {
  return b.data.buffer.byteLength + (b.keyWords?.byteLength ?? 0) + BLOCK_OVERHEAD_BYTES;
}

/** A copy with an ArrayBuffer of its own (never a slice of the shared allocation pool). */
function ownCopy(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

export class BlockCache {
  private readonly lru: LRUCache<CacheKey, Slot> | undefined;
  private readonly spare: ArrayBuffer[] = [];
  private spareBytes = 0;
  hits = 0;
  misses = 0;
  /** takeBuffer() calls served from the memory of an evicted block. */
  buffersReused = 0;

  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<CacheKey, Slot>({
            maxSize: maxBytes,
            sizeCalculation: (slot) => blockMemoryBytes(slot.block),
            dispose: (slot) => {
              if (slot.reusable) this.keepSpare(slot.block.data.buffer as ArrayBuffer);
            },
          })
        : undefined;
  }

  get(fileNumber: number, blockNo: number): Block | undefined {
    const slot = this.lru?.get(cacheKey(fileNumber, blockNo), GET_OPTIONS);
    if (!slot) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // The caller may keep views into the block past its eviction.
    slot.reusable = false;
    return slot.block;
  }

  /**
   * Caches block. reusable: only the caller has seen block, and it drops every view into it
   * (copying what it keeps) before its next engine call or await; the cache may then reuse the
   * block's memory once it evicts it, if that memory is the block's own (takeBuffer()).
   */
  set(fileNumber: number, blockNo: number, block: Block, reusable = false): void {
    if (!this.lru) return;
    // A view that pins more than its own block's bytes (plus trailer and the slack a spare
    // buffer may have) is cached as a compact copy.
    const data = block.data.buffer.byteLength > block.data.length + BLOCK_TRAILER_BYTES + SPARE_SLACK_BYTES ? ownCopy(block.data) : block.data;
    this.lru.set(cacheKey(fileNumber, blockNo), { block: data === block.data ? block : { ...block, data }, reusable: reusable && data.byteOffset === 0 });
  }

  /**
   * size bytes to read a block into: the memory of an evicted block when one fits, otherwise
   * new. Nothing else references it.
   */
  takeBuffer(size: number): Buffer {
    const spare = this.spare;
    for (let i = spare.length - 1; i >= 0; i--) {
      const ab = spare[i]!;
      if (ab.byteLength >= size && ab.byteLength - size <= SPARE_SLACK_BYTES) {
        spare.splice(i, 1);
        this.spareBytes -= ab.byteLength;
        this.buffersReused++;
        return Buffer.from(ab, 0, size);
      }
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Keeps ab as a spare, dropping the oldest spares (which fit no recent read) to stay in bounds. */
  private keepSpare(ab: ArrayBuffer): void {
    if (ab.byteLength > SPARE_BYTES_MAX) return;
    while (this.spare.length >= SPARE_BUFFERS_MAX || this.spareBytes + ab.byteLength > SPARE_BYTES_MAX) this.spareBytes -= this.spare.shift()!.byteLength;
    this.spare.push(ab);
    this.spareBytes += ab.byteLength;
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
