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
 * ERROR answer (code ERR_STREAM_NOT_HELD); the receiver asks its next source, or again on a
 * later tick.
 */
import { DATA_KEY_PREFIX_BYTES, slotOf, slotRangeBounds, userKeyOf } from '../server/key_layout.js';
import type { Keyspace } from '../server/keyspace.js';
import { MAX_STREAM_CHUNK_ENTRIES, StreamScanReplyWriter, type StreamScanRequest } from './stream_codec.js';

const ZERO = Buffer.from([0]);

/** A STREAM_SCAN of slots this node does not hold in full (answered as an ERROR frame with this code). */
export class StreamScanRefusedError extends Error {
  readonly code = 'ERR_STREAM_NOT_HELD';
}

/** The first slot of a range a source does not hold in full, and why. */
export interface SlotNotHeld {
  readonly slot: number;
  readonly why: string;
}

/** What the source knows about its own copy of a slot range (StreamManager implements it). */
export interface SlotHolding {
  /** The lowest slot of first..last not held in full here, or undefined when all are. */
  firstNotHeld(first: number, last: number): SlotNotHeld | undefined;
}

/**
 * One chunk of `req` over the slots held in full from the scan's start, or
 * StreamScanRefusedError when its start slot is not. A chunk stops before the first slot not
 * held (`done` false, `next` that slot's start): the receiver's next request, from there, is
 * refused, and it asks another source, which goes on from the same position. So each slot of a
 * task comes whole from some source even when no one source holds them all (each old owner
 * swept a different slot of the run).
 *
 * Checked again after the read (it awaits the engine): a sweep marks the slots it drops before
 * it deletes anything, so a chunk of slots still unmarked at its end read no deletion of theirs.
 * (A mark is cleared only when the slot is streamed in again, which takes longer than a read.)
 */
export async function serveStreamScan(ks: Keyspace, req: StreamScanRequest, holding: SlotHolding): Promise<Buffer> {
  const first = scanStartSlot(req);
  const refuse = (n: SlotNotHeld): StreamScanRefusedError => new StreamScanRefusedError(`slots ${req.firstSlot}-${req.lastSlot} not held in full here: slot ${n.slot} ${n.why}`);
  const hole = holding.firstNotHeld(first, req.lastSlot);
  if (hole !== undefined && hole.slot === first) throw refuse(hole);
  const last = hole === undefined ? req.lastSlot : hole.slot - 1;
  const chunk = await readStreamChunk(ks, { ...req, lastSlot: last }, hole === undefined ? undefined : slotRangeBounds(hole.slot).gte);
  const after = holding.firstNotHeld(first, last);
  if (after !== undefined) throw refuse(after);
  return chunk;
}

/** The slot a scan starts in: its position's, within the request's range. */
function scanStartSlot(req: StreamScanRequest): number {
  if (req.from.length < DATA_KEY_PREFIX_BYTES || Buffer.compare(req.from, slotRangeBounds(req.firstSlot).gte) < 0) return req.firstSlot;
  return Math.min(req.lastSlot, slotOf(req.from));
}

/**
 * One chunk read of `req`. `stopAt`: a position past req.lastSlot where the caller's range goes
 * on; a chunk that reaches req.lastSlot's end then answers not done, with `next` = stopAt.
 */
export async function readStreamChunk(ks: Keyspace, req: StreamScanRequest, stopAt?: Buffer): Promise<Buffer> {
  const bounds = slotRangeBounds(req.firstSlot, req.lastSlot);
  // A position outside the range (a stale or forged one) is clamped to it.
  const gte = req.from.length === 0 || Buffer.compare(req.from, bounds.gte) < 0 ? bounds.gte : req.from;
  const out = new StreamScanReplyWriter(req.maxBytes);
  const end = (): Buffer => (stopAt === undefined ? out.finish(true, Buffer.alloc(0)) : out.finish(false, stopAt));
  if (Buffer.compare(gte, bounds.lt) >= 0) return end();
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
  return end();
}
