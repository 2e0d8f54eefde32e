/**
 * A pool of fixed-size byte slabs (each its own ArrayBuffer) that the table builder encodes
 * blocks into. A built table leaves the worker thread as views of its slabs (no copy into one
 * table buffer); the engine writes them and transfers them back (worker_pool.ts
 * releaseTableBytes), and the worker puts them back here for the next table.
 *
 * Why: every fresh 1 MiB slab was a new mapping from the allocator, so the first write to each
 * of its pages was a page fault, and the freed slab went back to glibc, which kept it (RSS grew
 * with the data, storage-perf-notes.md "Session 3"). Reusing slabs removes both; measured in
 * storage-perf-notes.md "Session 4".
 *
 * Not thread-safe by design: each thread has its own pool (module state), and a slab is only
 * ever owned by one thread at a time (transferred, never shared).
 */

/** Size of a pooled slab. Requests for more get a buffer of their own, never pooled. */
export const SLAB_BYTES = 1024 * 1024;
/** Slabs kept for reuse; more are dropped (collected as usual). 16 MiB per thread at most. */
const POOLED_SLABS_MAX = 16;

const free: ArrayBuffer[] = [];

/** A buffer of at least n bytes (exactly SLAB_BYTES when n <= SLAB_BYTES) with its own ArrayBuffer. */
export function takeSlab(n: number): Buffer {
  if (n <= SLAB_BYTES) {
    const ab = free.pop();
    if (ab) return Buffer.from(ab);
    return Buffer.allocUnsafeSlow(SLAB_BYTES);
  }
  return Buffer.allocUnsafeSlow(n);
}

/** Returns a slab for reuse; buffers of another size (or past the cap) are simply dropped. */
export function giveSlab(ab: ArrayBuffer): void {
  if (ab.byteLength === SLAB_BYTES && free.length < POOLED_SLABS_MAX) free.push(ab);
}

/** Bytes held in the pool (the worker leaves them out of its dead-buffer accounting). */
export function pooledSlabBytes(): number {
  return free.length * SLAB_BYTES;
}
