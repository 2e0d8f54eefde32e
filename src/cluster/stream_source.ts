/**
 * The sending side of slot streaming: one STREAM_SCAN chunk read from this node's engine.
 *
 * The reply payload is written while scanning (StreamScanReplyWriter): each stored object is
 * copied once, straight into the payload, and never decoded here.
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
import { MAX_STREAM_CHUNK_ENTRIES, StreamScanReplyWriter, type StreamScanRequest } from './stream_codec.js';

const ZERO = Buffer.from([0]);

export async function readStreamChunk(ks: Keyspace, req: StreamScanRequest): Promise<Buffer> {
  const bounds = slotRangeBounds(req.firstSlot, req.lastSlot);
  // A position outside the range (a stale or forged one) is clamped to it.
  const gte = req.from.length === 0 || Buffer.compare(req.from, bounds.gte) < 0 ? bounds.gte : req.from;
  const out = new StreamScanReplyWriter(req.maxBytes);
  if (Buffer.compare(gte, bounds.lt) >= 0) return out.finish(true, Buffer.alloc(0));
  let bytes = 0;
  let last: Buffer | undefined;
  for await (const e of ks.engine.range({ gte, lt: bounds.lt, limit: MAX_STREAM_CHUNK_ENTRIES + 1 })) {
    if (out.count >= MAX_STREAM_CHUNK_ENTRIES || (out.count > 0 && bytes >= req.maxBytes)) {
      return out.finish(false, Buffer.concat([last as Buffer, ZERO]));
    }
    // The stored encoding goes out as it is: the source never decodes what it forwards.
    out.add(userKeyOf(e.key), e.value);
    bytes += e.key.length + e.value.length;
    last = e.key;
  }
  return out.finish(true, Buffer.alloc(0));
}
