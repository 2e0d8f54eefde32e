/**
 * What a node has streamed in and still has to, persisted so an interrupted join (either side
 * restarted) resumes where it stopped instead of starting over (issue 6).
 *
 *   file = "RKST1 " sha256-hex(body) "\n" body      body = JSON of StreamProgress, positions hex
 *
 * Pure: serialize / parse; the manager writes the bytes with temp file + rename. A file that
 * fails its checksum or shape is an operating error (StreamStateError): the node logs it and
 * streams again from the start, which is safe (merging an object twice changes nothing).
 */
import assert from 'node:assert';
import { createHash } from 'node:crypto';
import { slotRuns } from '../coordinator/ring_transition.js';
import { SLOT_COUNT } from '../coordinator/slot.js';
import { MAX_STREAM_POSITION_BYTES } from './stream_codec.js';

/** Name of the progress file in the data dir. */
export const STREAM_STATE_FILE_NAME = 'stream-progress.json';
/** Largest progress file read back (16384 tasks with long positions fit easily). */
export const MAX_STREAM_STATE_FILE_BYTES = 32 * 1024 * 1024;

const MAGIC = 'RKST1 ';

/** A run of consecutive slots to pull from one of `sources`, and how far it got. */
export interface StreamTask {
  readonly first: number;
  readonly last: number;
  /** Current replicas of these slots, in preference order (any one holds them all). */
  readonly sources: readonly string[];
  /** Engine-key position to resume from; empty: not started. */
  next: Buffer;
  bytes: number;
  keys: number;
}

export interface StreamProgress {
  /** A join is in progress: this node restarts as `joining`. */
  joining: boolean;
  /** CLUSTER LEAVE is in progress: this node restarts as `leaving` and goes on handing its slots over. */
  leaving: boolean;
  /** This node left the ring (CLUSTER LEAVE done): it refuses to start with this data dir (rejoin_guard.ts). */
  left: boolean;
  /** Slots fully streamed in for a ring this node is not yet an owner in. */
  streamed: Set<number>;
  /**
   * Slots whose copy here a sweep dropped (marked before the first delete) and that were not
   * streamed in again since: a STREAM_SCAN of them is refused (stream_source.ts). Persisted,
   * so a restarted node does not serve a swept slot as an empty one.
   */
  dropped: Set<number>;
  tasks: StreamTask[];
  /** Totals since this node's data dir was created. */
  bytesStreamed: number;
  keysStreamed: number;
  slotsStreamed: number;
  slotsDropped: number;
  keysDropped: number;
}

export class StreamStateError extends Error {
  readonly code = 'ERR_STREAM_STATE';
}

export function emptyProgress(): StreamProgress {
  return { joining: false, leaving: false, left: false, streamed: new Set(), dropped: new Set(), tasks: [], bytesStreamed: 0, keysStreamed: 0, slotsStreamed: 0, slotsDropped: 0, keysDropped: 0 };
}

export function serializeProgress(p: StreamProgress): Buffer {
  const body = JSON.stringify({
    joining: p.joining,
    leaving: p.leaving,
    left: p.left,
    streamed: [...p.streamed].sort((a, b) => a - b),
    // As [first, last] runs: a sweep marks most of the slots a node does not hold.
    dropped: slotRuns([...p.dropped].sort((a, b) => a - b)).map((r) => [r.first, r.last]),
    tasks: p.tasks.map((t) => ({ first: t.first, last: t.last, sources: t.sources, next: t.next.toString('hex'), bytes: t.bytes, keys: t.keys })),
    bytesStreamed: p.bytesStreamed,
    keysStreamed: p.keysStreamed,
    slotsStreamed: p.slotsStreamed,
    slotsDropped: p.slotsDropped,
    keysDropped: p.keysDropped,
  });
  return Buffer.from(`${MAGIC}${createHash('sha256').update(body).digest('hex')}\n${body}`, 'utf8');
}

const isSlot = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < SLOT_COUNT;
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

export function parseProgress(bytes: Buffer): StreamProgress {
  assert(bytes.length <= MAX_STREAM_STATE_FILE_BYTES, 'caller checks the file size first');
  const text = bytes.toString('utf8');
  const nl = text.indexOf('\n');
  if (!text.startsWith(MAGIC) || nl !== MAGIC.length + 64) throw new StreamStateError('not a stream progress file');
  const body = text.slice(nl + 1);
  if (createHash('sha256').update(body).digest('hex') !== text.slice(MAGIC.length, nl)) throw new StreamStateError('stream progress checksum mismatch');
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new StreamStateError('stream progress is not JSON');
  }
  const o = raw as Record<string, unknown>;
  const counts = ['bytesStreamed', 'keysStreamed', 'slotsStreamed', 'slotsDropped', 'keysDropped'] as const;
  if (typeof o !== 'object' || o === null || typeof o.joining !== 'boolean' || !Array.isArray(o.streamed) || !Array.isArray(o.tasks)) {
    throw new StreamStateError('stream progress has a bad shape');
  }
  // `leaving` and `left` came after the first format: absent means false.
  for (const f of ['leaving', 'left'] as const) if (o[f] !== undefined && typeof o[f] !== 'boolean') throw new StreamStateError(`stream progress: bad ${f}`);
  for (const c of counts) if (!isCount(o[c])) throw new StreamStateError(`stream progress: bad ${c}`);
  if (!o.streamed.every(isSlot)) throw new StreamStateError('stream progress: bad streamed slot');
  // `dropped` came later too: absent means no slot marked.
  const dropped = new Set<number>();
  if (o.dropped !== undefined) {
    if (!Array.isArray(o.dropped)) throw new StreamStateError('stream progress: bad dropped slots');
    for (const r of o.dropped as unknown[]) {
      if (!Array.isArray(r) || r.length !== 2 || !isSlot(r[0]) || !isSlot(r[1]) || r[0] > r[1]) throw new StreamStateError('stream progress: bad dropped run');
      for (let s = r[0]; s <= r[1]; s++) dropped.add(s);
    }
  }
  const tasks: StreamTask[] = [];
  for (const t of o.tasks as unknown[]) {
    const x = t as Record<string, unknown>;
    if (typeof x !== 'object' || x === null || !isSlot(x.first) || !isSlot(x.last) || x.first > x.last) throw new StreamStateError('stream progress: bad task range');
    if (!Array.isArray(x.sources) || !x.sources.every((s) => typeof s === 'string')) throw new StreamStateError('stream progress: bad task sources');
    if (typeof x.next !== 'string' || !/^([0-9a-f]{2})*$/.test(x.next) || x.next.length / 2 > MAX_STREAM_POSITION_BYTES) {
      throw new StreamStateError('stream progress: bad task position');
    }
    if (!isCount(x.bytes) || !isCount(x.keys)) throw new StreamStateError('stream progress: bad task counts');
    tasks.push({ first: x.first, last: x.last, sources: x.sources as string[], next: Buffer.from(x.next, 'hex'), bytes: x.bytes, keys: x.keys });
  }
  return {
    joining: o.joining,
    leaving: o.leaving === true,
    left: o.left === true,
    streamed: new Set(o.streamed as number[]),
    dropped,
    tasks,
    bytesStreamed: o.bytesStreamed as number,
    keysStreamed: o.keysStreamed as number,
    slotsStreamed: o.slotsStreamed as number,
    slotsDropped: o.slotsDropped as number,
    keysDropped: o.keysDropped as number,
  };
}
