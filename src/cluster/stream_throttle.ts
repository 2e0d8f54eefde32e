/**
 * Pacing of slot streaming (`stream-max-bytes-per-sec`): pure. After a chunk of `bytes` that
 * took `elapsedMs`, wait until the chunk's bytes at the configured rate would have taken, so
 * the long-run rate stays at or under the limit whatever the chunk size; 0 means unlimited.
 * The chunk size asked of the source follows the rate (a tenth of a second's worth, within
 * bounds) so a low limit paces smoothly instead of in long bursts and long pauses.
 */
import assert from 'node:assert';

/** Smallest chunk asked for, bytes (below it per-request overhead dominates). */
export const MIN_STREAM_CHUNK_BYTES = 16 * 1024;
/** Chunk asked for when the rate is unlimited or high, bytes. */
export const DEFAULT_STREAM_CHUNK_BYTES = 1024 * 1024;
/** Chunks per second the pacing aims for at low rates. */
const CHUNKS_PER_SECOND = 10;

/** Milliseconds to wait after a chunk before asking for the next one. */
export function throttleDelayMs(bytes: number, elapsedMs: number, maxBytesPerSec: number): number {
  assert(bytes >= 0 && elapsedMs >= 0 && maxBytesPerSec >= 0);
  if (maxBytesPerSec === 0) return 0;
  return Math.max(0, (bytes * 1000) / maxBytesPerSec - elapsedMs);
}

/** Chunk size to ask the source for at this rate, bytes. */
export function chunkBytesFor(maxBytesPerSec: number): number {
  if (maxBytesPerSec === 0) return DEFAULT_STREAM_CHUNK_BYTES;
  return Math.min(DEFAULT_STREAM_CHUNK_BYTES, Math.max(MIN_STREAM_CHUNK_BYTES, Math.floor(maxBytesPerSec / CHUNKS_PER_SECOND)));
}
