/**
 * The block cache: decoded data blocks, LRU, bounded in BYTES (lru-cache maxSize +
 * sizeCalculation), shared by all tables of an engine. Key: "<file number>:<block offset>".
 */
import { LRUCache } from 'lru-cache';
import { BLOCK_INDEX_BYTES_PER_ENTRY, type Block } from './table_format.js';

/** Bookkeeping per cached block counted on top of its bytes (entry, map slot, offsets object). */
const BLOCK_OVERHEAD_BYTES = 128;

export class BlockCache {
  private readonly lru: LRUCache<string, Block> | undefined;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, Block>({
            maxSize: maxBytes,
            sizeCalculation: (b) => b.data.length + b.offsets.length * BLOCK_INDEX_BYTES_PER_ENTRY + BLOCK_OVERHEAD_BYTES,
          })
        : undefined;
  }

  get(fileNumber: number, offset: number): Block | undefined {
    const b = this.lru?.get(`${fileNumber}:${offset}`);
    if (b) this.hits++;
    else this.misses++;
    return b;
  }

  set(fileNumber: number, offset: number, block: Block): void {
    if (!this.lru) return;
    // A block whose view pins a much larger buffer would under-count: cache a compact copy.
    const data = block.data.byteLength === block.data.buffer.byteLength ? block.data : Buffer.from(block.data);
    this.lru.set(`${fileNumber}:${offset}`, { ...block, data });
  }

  /** Drops every block of a table (when the table is deleted). */
  evictTable(fileNumber: number, offsets: readonly number[]): void {
    if (!this.lru) return;
    for (const off of offsets) this.lru.delete(`${fileNumber}:${off}`);
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }
}
