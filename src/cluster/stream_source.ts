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
 *
 * A source answers only for slots it holds in full (serveStreamScan): the engine cannot tell a
 * slot that is empty from one this node swept or has not streamed in yet, and a receiver takes
 * an empty `done` as the whole slot (it would turn `up` with a short copy). A refusal is an
 * ERROR answer; the receiver asks its next source, or again on a later tick.
 */
import { slotRangeBounds, userKeyOf } from '../server/key_layout.js';
import type { Keyspace } from '../server/keyspace.js';
import { MAX_STREAM_CHUNK_ENTRIES, StreamScanReplyWriter, type StreamScanRequest } from './stream_codec.js';

const ZERO = Buffer.from([0]);

/** A STREAM_SCAN of slots this node does not hold in full (answered as an ERROR frame with this code). */
export class StreamScanRefusedError extends Error {
  readonly code = 'ERR_STREAM_NOT_HELD';
}

/** What the source knows about its own copy of a slot range (StreamManager implements it). */
export interface SlotHolding {
  /** Why slots first..last are not all held in full here, or undefined when they are. */
  notHeld(first: number, last: number): string | undefined;
}

/**
 * One chunk of `req`, or StreamScanRefusedError. Checked before the read and again after it
 * (the read awaits the engine): a sweep marks the slots it drops before it deletes anything,
 * so a chunk of slots unmarked at its end read no deletion of theirs. (A mark is cleared only
 * when the slot is streamed in again, which takes longer than a chunk read.)
 */
export async function serveStreamScan(ks: Keyspace, req: StreamScanRequest, holding: SlotHolding): Promise<Buffer> {
  const refuse = (why: string): StreamScanRefusedError => new StreamScanRefusedError(`slots ${req.firstSlot}-${req.lastSlot} not held in full here: ${why}`);
  const before = holding.notHeld(req.firstSlot, req.lastSlot);
  if (before !== undefined) throw refuse(before);
  const chunk = await readStreamChunk(ks, req);
  const after = holding.notHeld(req.firstSlot, req.lastSlot);
  if (after !== undefined) throw refuse(after);
  return chunk;
}

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
