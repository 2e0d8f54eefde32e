/**
 * The sending side of slot streaming: one STREAM_SCAN chunk read from this node's engine.
 *
 * A chunk is one engine range iteration (the engine takes a snapshot when it starts, so the
 * chunk is a consistent cut) over the data keys of slots [firstSlot, lastSlot] from `from`,
 * stopping after `maxBytes` of stored objects (always at least one entry, so a single large
 * object still moves) or MAX_STREAM_CHUNK_ENTRIES. Dead objects (tombstones within gc grace)
 * travel too: the receiver must not resurrect what was deleted. Writes made after the snapshot
 * reach the receiver as pending-replica writes (ring_transition.ts), not through the scan.
 *
 * `next` is the smallest engine key after the last one sent (the key plus a 0x00 byte), so a
 * receiver that persisted it resumes without repeating or skipping anything.
 */
import { slotRangeBounds, userKeyOf } from '../server/key_layout.js';
import type { Keyspace } from '../server/keyspace.js';
import { MAX_STREAM_CHUNK_ENTRIES, type StreamEntry, type StreamScanReply, type StreamScanRequest } from './stream_codec.js';

const ZERO = Buffer.from([0]);

export async function readStreamChunk(ks: Keyspace, req: StreamScanRequest): Promise<StreamScanReply> {
  const bounds = slotRangeBounds(req.firstSlot, req.lastSlot);
  // A position outside the range (a stale or forged one) is clamped to it.
  const gte = req.from.length === 0 || Buffer.compare(req.from, bounds.gte) < 0 ? bounds.gte : req.from;
  if (Buffer.compare(gte, bounds.lt) >= 0) return { done: true, next: Buffer.alloc(0), entries: [] };
  const entries: StreamEntry[] = [];
  let bytes = 0;
  let last: Buffer | undefined;
  for await (const e of ks.engine.range({ gte, lt: bounds.lt, limit: MAX_STREAM_CHUNK_ENTRIES + 1 })) {
    if (entries.length >= MAX_STREAM_CHUNK_ENTRIES || (entries.length > 0 && bytes >= req.maxBytes)) {
      return { done: false, next: Buffer.concat([last as Buffer, ZERO]), entries };
    }
    entries.push({ key: Buffer.from(userKeyOf(e.key)), object: e.value });
    bytes += e.key.length + e.value.length;
    last = e.key;
  }
  return { done: true, next: Buffer.alloc(0), entries };
}
