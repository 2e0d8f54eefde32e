/**
 * The receiving side of slot streaming (issue 6): pulls one task's pages from a source and
 * merges each page into the local engine in one batch.
 *
 *   fetch(page k) ─▶ reply k ─┬─▶ fetch(page k+1)   (issued before page k is merged: the next
 *                             │                      round trip and the source's scan overlap
 *                             │                      the merge; positions come one reply at a
 *                             │                      time, so one page ahead per task)
 *                             └─▶ merge page k ─▶ onPage(k)  (in page order, one at a time)
 *
 * A page is merged with Keyspace.mergeObjectsBatch: the page's key locks, reads from memory
 * where possible, version-vector merges, one atomic engine write. A client write to a key of the
 * page waits for that key's lock, so it lands before or after the merge and is never lost.
 * `onPage` runs after its page is stored (the caller advances and persists its position there),
 * so a position is never ahead of what is stored; pages are merged in order for the same reason.
 */
import { decodeObject, type VersionedObject } from '../coordinator/object.js';
import type { Keyspace } from '../server/keyspace.js';
import type { StreamEntry, StreamScanReply } from './stream_codec.js';

export interface PagePullOptions {
  /** Position to start from (engine key; empty: the start of the task's range). */
  readonly from: Buffer;
  /** One STREAM_SCAN from `from`. */
  fetch(from: Buffer): Promise<StreamScanReply>;
  /** Waits until the next page may be asked for (stream-max-bytes-per-sec pacing). */
  beforeFetch(): Promise<void>;
  /** Stores one page (mergeStreamPage in production). */
  merge(entries: readonly StreamEntry[]): Promise<void>;
  /** After page `reply` is stored, with its bytes (keys + objects). */
  onPage(reply: StreamScanReply, bytes: number): void;
  /** True once the caller is shutting down: no more pages are asked for. */
  closed(): boolean;
}

/** Keys plus object bytes of a page: what streaming counts and paces. */
export function pageBytes(entries: readonly StreamEntry[]): number {
  let bytes = 0;
  for (const e of entries) bytes += e.key.length + e.object.length;
  return bytes;
}

/** Decodes a page's objects (a corrupt one throws before anything is stored) and merges them in one batch. */
export async function mergeStreamPage(ks: Keyspace, entries: readonly StreamEntry[]): Promise<void> {
  if (entries.length === 0) return;
  // The received bytes go along: for a key new here they are stored as they came (no re-encode).
  const decoded: { key: Buffer; object: VersionedObject; encoded: Buffer }[] = entries.map((e) => ({ key: e.key, object: decodeObject(e.object), encoded: e.object }));
  await ks.mergeObjectsBatch(decoded);
}

/**
 * Pulls pages until the source says done (true) or the caller closes (false). A failed fetch
 * rejects after every page before it has been merged and reported, so the caller's position is
 * exactly where to resume.
 */
export async function pullPages(o: PagePullOptions): Promise<boolean> {
  const ask = (from: Buffer): Promise<StreamScanReply> => {
    const p = o.beforeFetch().then(() => o.fetch(from));
    p.catch(() => undefined); // observed when its turn comes; never an unhandled rejection meanwhile
    return p;
  };
  if (o.closed()) return false;
  let next: Promise<StreamScanReply> | undefined = ask(o.from);
  while (next !== undefined) {
    const reply: StreamScanReply = await next;
    // The following page is asked for before this one is merged.
    next = reply.done || o.closed() ? undefined : ask(reply.next);
    await o.merge(reply.entries);
    o.onPage(reply, pageBytes(reply.entries));
    if (reply.done) return true;
  }
  return false;
}
