/**
 * Wire formats of hinted handoff on the cluster bus (types 0x40-0x4f, message_types.ts). Pure;
 * every count and length read off the wire is checked against a named cap and the bytes that
 * remain before anything is sliced (ByteReader throws ClusterError ERR_GOSSIP_DECODE, which the
 * bus answers as an ERROR frame). Integers big-endian.
 *
 *   HINT_BATCH  request : str8 target id | u32 count | count x (u32 keyLen | key | u32 objLen | object bytes)
 *               response: u32 count | count x u8 status (handoff_plan.HintStatus, in request order)
 *   HINT_QUERY  request : u32 keyLen | key
 *               response: u16 count | count x str8 target id (targets this node holds a hint of key for)
 */
import { MAX_NODE_ID_BYTES } from './limits.js';
import { MAX_WIRE_KEY_BYTES } from './replica_codec.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

export const HandoffMessageType = {
  HINT_BATCH: 0x40,
  HINT_QUERY: 0x41,
} as const;

/** Most hints one HINT_BATCH may carry (config hint-handoff-batch-keys is capped at this). */
export const MAX_HINT_BATCH_KEYS = 4096;
/** Most targets a HINT_QUERY answer may list (one per other member at most). */
export const MAX_HINT_QUERY_TARGETS = 4096;

export interface HintItem {
  readonly key: Buffer;
  readonly objectBytes: Buffer;
}

export function encodeHintBatch(target: string, items: readonly HintItem[]): Buffer {
  let size = 8 + target.length;
  for (const it of items) size += 8 + it.key.length + it.objectBytes.length;
  const w = new ByteWriter(size);
  w.str8(target, MAX_NODE_ID_BYTES).u32(items.length);
  for (const it of items) w.u32(it.key.length).bytes(it.key).u32(it.objectBytes.length).bytes(it.objectBytes);
  return w.finish();
}

export function decodeHintBatch(payload: Buffer): { target: string; items: HintItem[] } {
  const r = new ByteReader(payload);
  const target = r.str8(MAX_NODE_ID_BYTES, 'target id', 1);
  const count = r.u32('hint count');
  if (count > MAX_HINT_BATCH_KEYS) fail(`hint batch of ${count} keys over ${MAX_HINT_BATCH_KEYS}`);
  const items: HintItem[] = [];
  for (let i = 0; i < count; i++) {
    const keyLen = r.u32('key length');
    if (keyLen > MAX_WIRE_KEY_BYTES) fail(`key of ${keyLen} bytes over ${MAX_WIRE_KEY_BYTES}`);
    // Copies: what the keyspace keeps must not pin the frame buffer.
    const key = Buffer.from(r.bytes(keyLen, 'key'));
    const objLen = r.u32('object length');
    const objectBytes = Buffer.from(r.bytes(objLen, 'object'));
    items.push({ key, objectBytes });
  }
  r.end('hint batch');
  return { target, items };
}

export function encodeHintStatuses(statuses: readonly number[]): Buffer {
  const w = new ByteWriter(4 + statuses.length);
  w.u32(statuses.length);
  for (const s of statuses) w.u8(s);
  return w.finish();
}

export function decodeHintStatuses(payload: Buffer): number[] {
  const r = new ByteReader(payload);
  const count = r.u32('status count');
  if (count > MAX_HINT_BATCH_KEYS) fail(`${count} statuses over ${MAX_HINT_BATCH_KEYS}`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(r.u8('status'));
  r.end('hint statuses');
  return out;
}

export function encodeHintQuery(key: Buffer): Buffer {
  return new ByteWriter(4 + key.length).u32(key.length).bytes(key).finish();
}

export function decodeHintQuery(payload: Buffer): Buffer {
  const r = new ByteReader(payload);
  const n = r.u32('key length');
  if (n > MAX_WIRE_KEY_BYTES) fail(`key of ${n} bytes over ${MAX_WIRE_KEY_BYTES}`);
  const key = Buffer.from(r.bytes(n, 'key'));
  r.end('hint query');
  return key;
}

export function encodeHintQueryAnswer(targets: readonly string[]): Buffer {
  const w = new ByteWriter(2 + targets.length * 16);
  w.u16(targets.length);
  for (const t of targets) w.str8(t, MAX_NODE_ID_BYTES);
  return w.finish();
}

export function decodeHintQueryAnswer(payload: Buffer): string[] {
  const r = new ByteReader(payload);
  const n = r.u16('target count');
  if (n > MAX_HINT_QUERY_TARGETS) fail(`${n} targets over ${MAX_HINT_QUERY_TARGETS}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str8(MAX_NODE_ID_BYTES, 'target id', 1));
  r.end('hint query answer');
  return out;
}
