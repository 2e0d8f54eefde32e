/**
 * Wire formats of the coordinator's node-to-node calls on the cluster bus (replica_transport.ts).
 * Pure encode/decode; every length read off the wire is checked against the bytes that remain
 * and a named cap before anything is sliced (ByteReader throws ClusterError ERR_GOSSIP_DECODE,
 * which the bus answers as an ERROR frame). Integers big-endian.
 *
 *   REPLICA_PUT   request : u32 keyLen | key | u8 hintLen | hintFor (utf8, 0 = none) | object bytes (rest)
 *                 response: empty
 *   REPLICA_GET   request : u32 keyLen | key
 *                 response: object bytes (object_codec.ts; EMPTY_OBJECT when absent)
 *   FORWARD_WRITE request : u32 keyLen | key | u8 hasValue | [u32 valueLen | value]
 *                           | f64 expiresAtMs | u32 ctxLen | context token (ascii, 0 = none)
 *                           | u8 wKind (0 none, 1 number, 2 name) | [u32 w | str8 name]
 *                           | u32 timeoutMs | u8 hops
 *                 response: object bytes (the object as stored by the remote coordinator)
 *   REPLICA_PUT_BATCH request : u32 count | count x (u32 keyLen | key | u8 hintLen | hintFor
 *                                                    | u32 objectLen | object bytes)
 *                 response: u32 count | count x (u32 errLen | error payload (connection.ts
 *                           encodeErrorPayload), errLen 0 = merged), in request order
 *                 (the replica puts one coordinator sent one peer in one event-loop turn, one
 *                 frame and one answer instead of one each; replica_put_batcher.ts)
 * Object bytes are decoded by decodeObject, which checks its own counts and lengths.
 */
import { decodeContext, encodeContext } from '../coordinator/object.js';
import { QUORUM_NAMES, type QuorumName, type QuorumSpec } from '../coordinator/quorum.js';
import type { WriteRequestWire } from '../coordinator/replica_transport.js';
import { MAX_CONTEXT_TOKEN_CHARS, MAX_SIBLING_VALUE_BYTES } from '../coordinator/limits.js';
import { MAX_NODE_ID_BYTES } from './limits.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

/** Message types of the coordinator range (0x20-0x3f, message_types.ts reserves it). */
export const ReplicaMessageType = {
  REPLICA_PUT: 0x20,
  REPLICA_GET: 0x21,
  FORWARD_WRITE: 0x22,
  REPLICA_PUT_BATCH: 0x25,
} as const;

/** Most entries one REPLICA_PUT_BATCH may carry on the wire (checked before allocating). */
export const MAX_WIRE_BATCH_ENTRIES = 65_536;
/** Longest per-entry error payload accepted in a batch answer, bytes. */
export const MAX_WIRE_BATCH_ERROR_BYTES = 4096;

/** Longest key accepted off the wire (config max-key-bytes is capped at this as well). */
export const MAX_WIRE_KEY_BYTES = 64 * 1024 * 1024;
/** Most forward hops a request may claim (the coordinator's MAX_FORWARD_HOPS is far below). */
export const MAX_WIRE_HOPS = 255;
/** Longest request budget accepted off the wire, ms (the coordinator's MAX_REQUEST_TIMEOUT_MS). */
export const MAX_WIRE_TIMEOUT_MS = 86_400_000;
/** Largest W sent as a number. */
export const MAX_WIRE_QUORUM = 0xffff;

function readKey(r: ByteReader): Buffer {
  // Copy: the frame buffer must not be retained by what the keyspace keeps.
  return Buffer.from(readKeyView(r));
}

/** A key as a view into the payload (replica puts: the handler copies what outlives the request). */
function readKeyView(r: ByteReader): Buffer {
  const n = r.u32('key length');
  if (n > MAX_WIRE_KEY_BYTES) fail(`key of ${n} bytes over ${MAX_WIRE_KEY_BYTES}`);
  return r.bytes(n, 'key');
}

function writeKey(w: ByteWriter, key: Buffer): void {
  w.u32(key.length).bytes(key);
}

export function encodeReplicaPut(key: Buffer, objectBytes: Buffer, hintFor: string | undefined): Buffer {
  const w = new ByteWriter(16 + key.length + objectBytes.length);
  writeKey(w, key);
  w.str8(hintFor ?? '', MAX_NODE_ID_BYTES);
  w.bytes(objectBytes);
  return w.finish();
}

/**
 * The key and the object bytes are views into `payload`, as decodeReplicaPutBatch's: a caller that
 * keeps either beyond the request copies it.
 */
export function decodeReplicaPut(payload: Buffer): { key: Buffer; hintFor: string | undefined; objectBytes: Buffer } {
  const r = new ByteReader(payload);
  const key = readKeyView(r);
  const hint = r.str8(MAX_NODE_ID_BYTES, 'hint node id');
  const objectBytes = r.bytes(r.remaining, 'object');
  return { key, hintFor: hint.length === 0 ? undefined : hint, objectBytes };
}

/** One replica put of a batch: the key, the encoded object, and the primary it is a hint for. */
export interface ReplicaPutEntry {
  readonly key: Buffer;
  readonly objectBytes: Buffer;
  readonly hintFor: string | undefined;
}

export function encodeReplicaPutBatch(entries: readonly ReplicaPutEntry[]): Buffer {
  let size = 4;
  for (const e of entries) size += 10 + e.key.length + Buffer.byteLength(e.hintFor ?? '') + e.objectBytes.length;
  const w = new ByteWriter(size);
  w.u32(entries.length);
  for (const e of entries) {
    writeKey(w, e.key);
    w.str8(e.hintFor ?? '', MAX_NODE_ID_BYTES);
    w.u32(e.objectBytes.length).bytes(e.objectBytes);
  }
  return w.finish();
}

/**
 * Keys and object bytes are views into `payload` (a copy of each key was one more buffer per entry
 * of every batch): a caller that keeps either beyond the request copies it (decodeObject copies
 * what it keeps; the replica handler copies a hinted put's key, which a hint store may keep).
 */
export function decodeReplicaPutBatch(payload: Buffer): ReplicaPutEntry[] {
  const r = new ByteReader(payload);
  const count = r.u32('batch count');
  if (count > MAX_WIRE_BATCH_ENTRIES) fail(`batch of ${count} entries over ${MAX_WIRE_BATCH_ENTRIES}`);
  // Each entry takes at least 9 bytes: a count the payload cannot hold is refused before the loop.
  if (count * 9 > r.remaining) fail(`batch of ${count} entries in ${r.remaining} bytes`);
  const out: ReplicaPutEntry[] = [];
  for (let i = 0; i < count; i++) {
    const key = readKeyView(r);
    const hint = r.str8(MAX_NODE_ID_BYTES, 'hint node id');
    const n = r.u32('object length');
    const objectBytes = r.bytes(n, 'object');
    out.push({ key, objectBytes, hintFor: hint.length === 0 ? undefined : hint });
  }
  r.end('replica put batch');
  return out;
}

/** `errors[i]`: undefined when entry i was merged, else its encoded error payload. */
export function encodeReplicaPutBatchAnswer(errors: readonly (Buffer | undefined)[]): Buffer {
  let size = 4 + 4 * errors.length;
  for (const e of errors) size += e?.length ?? 0;
  const w = new ByteWriter(size);
  w.u32(errors.length);
  for (const e of errors) {
    if (e === undefined) w.u32(0);
    else w.u32(e.length).bytes(e);
  }
  return w.finish();
}

/** The per-entry error payloads (undefined: merged); `expected` entries must be answered. */
export function decodeReplicaPutBatchAnswer(payload: Buffer, expected: number): (Buffer | undefined)[] {
  const r = new ByteReader(payload);
  const count = r.u32('batch answer count');
  if (count !== expected) fail(`batch answer for ${count} entries, ${expected} were sent`);
  const out: (Buffer | undefined)[] = [];
  for (let i = 0; i < count; i++) {
    const n = r.u32('error length');
    if (n > MAX_WIRE_BATCH_ERROR_BYTES) fail(`batch entry error of ${n} bytes over ${MAX_WIRE_BATCH_ERROR_BYTES}`);
    out.push(n === 0 ? undefined : r.bytes(n, 'entry error'));
  }
  r.end('replica put batch answer');
  return out;
}

export function encodeReplicaGet(key: Buffer): Buffer {
  // One buffer of the exact size, no ByteWriter and no view of it: every GET of a cluster sends one.
  const out = Buffer.allocUnsafe(replicaGetBytes(key));
  writeReplicaGet(out, 0, key);
  return out;
}

/** Size of encodeReplicaGet(key). */
export function replicaGetBytes(key: Buffer): number {
  return 4 + key.length;
}

/**
 * encodeReplicaGet(key)'s bytes written at `at` of `out` (replicaGetBytes(key) of room, checked by
 * the caller): the bus writes it straight into its outbound batch (BusConnection.requestNotifyWrite).
 */
export function writeReplicaGet(out: Buffer, at: number, key: Buffer): void {
  out.writeUInt32BE(key.length, at);
  out.set(key, at + 4);
}

export function decodeReplicaGet(payload: Buffer): Buffer {
  const r = new ByteReader(payload);
  const key = readKey(r);
  r.end('replica get');
  return key;
}

export function encodeForwardWrite(req: WriteRequestWire): Buffer {
  const w = new ByteWriter(64 + req.key.length + (req.value?.length ?? 0));
  writeKey(w, req.key);
  if (req.value === null) w.u8(0);
  else w.u8(1).u32(req.value.length).bytes(req.value);
  w.f64(req.expiresAtMs);
  const ctx = req.context === undefined ? '' : encodeContext(req.context);
  w.u32(ctx.length).bytes(Buffer.from(ctx, 'latin1'));
  if (req.w === undefined) w.u8(0);
  else if (typeof req.w === 'number') w.u8(1).u32(Math.min(req.w, MAX_WIRE_QUORUM));
  else w.u8(2).str8(req.w, 32);
  w.u32(Math.min(Math.max(0, Math.floor(req.timeoutMs)), MAX_WIRE_TIMEOUT_MS));
  w.u8(Math.min(req.hops, MAX_WIRE_HOPS));
  return w.finish();
}

/** Throws ClusterError (sizes, framing) or ContextError (a bad context token). */
export function decodeForwardWrite(payload: Buffer): WriteRequestWire {
  const r = new ByteReader(payload);
  const key = readKey(r);
  let value: Buffer | null = null;
  const hasValue = r.u8('value flag');
  if (hasValue === 1) {
    const n = r.u32('value length');
    if (n > MAX_SIBLING_VALUE_BYTES) fail(`value of ${n} bytes over ${MAX_SIBLING_VALUE_BYTES}`);
    value = Buffer.from(r.bytes(n, 'value'));
  } else if (hasValue !== 0) fail(`bad value flag ${hasValue}`);
  const expiresAtMs = r.f64('expiry');
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) fail(`bad expiry ${expiresAtMs}`);
  const ctxLen = r.u32('context length');
  if (ctxLen > MAX_CONTEXT_TOKEN_CHARS) fail(`context of ${ctxLen} characters over ${MAX_CONTEXT_TOKEN_CHARS}`);
  const ctxText = r.bytes(ctxLen, 'context').toString('latin1');
  const wKind = r.u8('quorum kind');
  let wq: QuorumSpec | undefined;
  if (wKind === 1) {
    wq = r.u32('quorum');
    if (wq < 1 || wq > MAX_WIRE_QUORUM) fail(`bad quorum ${wq}`);
  } else if (wKind === 2) {
    const name = r.str8(32, 'quorum name', 1);
    if (!(QUORUM_NAMES as readonly string[]).includes(name)) fail(`bad quorum name ${JSON.stringify(name)}`);
    wq = name as QuorumName;
  } else if (wKind !== 0) fail(`bad quorum kind ${wKind}`);
  const timeoutMs = r.u32('timeout');
  if (timeoutMs < 1 || timeoutMs > MAX_WIRE_TIMEOUT_MS) fail(`bad timeout ${timeoutMs}`);
  const hops = r.u8('hops');
  r.end('forward write');
  return {
    key,
    value,
    expiresAtMs,
    ...(ctxLen === 0 ? {} : { context: decodeContext(ctxText) }),
    ...(wq === undefined ? {} : { w: wq }),
    timeoutMs,
    hops,
  };
}
