/**
 * Pacing of slot streaming (`stream-max-bytes-per-sec`): pure. Every chunk's bytes push a
 * shared "not before" time forward by bytes / rate, so the long-run rate of all workers stays
 * at or under the limit whatever the chunk size; 0 means unlimited.
 * The chunk size asked of the source follows the rate (a tenth of a second's worth, within
 * bounds) so a low limit paces smoothly instead of in long bursts and long pauses.
 */
import assert from 'node:assert';

/** Smallest chunk asked for, bytes (below it per-request overhead dominates). */
export const MIN_STREAM_CHUNK_BYTES = 16 * 1024;
/**
 * Chunk (page) asked for when the rate is unlimited or high, bytes. The receiver merges a page
 * in one engine batch holding the page's key locks (stream_merge.ts), so a page is also the
 * longest stretch a client write to one of its keys can wait; 4 MiB of 4 KiB values is ~1000
 * objects. Bigger pages mean fewer round trips per byte (a join is ~70 tasks, each pulled one
 * page ahead).
 */
export const DEFAULT_STREAM_CHUNK_BYTES = 4 * 1024 * 1024;
/** Chunks per second the pacing aims for at low rates. */
const CHUNKS_PER_SECOND = 10;

/**
 * The shared pace of several stream workers (a token bucket kept as a debt): after a chunk of
 * `bytes` arrives at `nowMs`, no worker asks for the next chunk before the returned time, so
 * all of them together stay at or under `maxBytesPerSec`; an idle spell earns no burst beyond
 * one chunk. 0 = unlimited (the pace stays at `nowMs`).
 */
export function nextPaceMs(paceAtMs: number, nowMs: number, bytes: number, maxBytesPerSec: number): number {
  assert(bytes >= 0 && maxBytesPerSec >= 0);
  if (maxBytesPerSec === 0) return nowMs;
  return Math.max(paceAtMs, nowMs) + (bytes * 1000) / maxBytesPerSec;
}

/** Chunk size to ask the source for at this rate, bytes. */
export function chunkBytesFor(maxBytesPerSec: number): number {
  if (maxBytesPerSec === 0) return DEFAULT_STREAM_CHUNK_BYTES;
  return Math.min(DEFAULT_STREAM_CHUNK_BYTES, Math.max(MIN_STREAM_CHUNK_BYTES, Math.floor(maxBytesPerSec / CHUNKS_PER_SECOND)));
}
