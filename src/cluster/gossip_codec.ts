/**
 * Binary encoding of gossip messages. Compact (a record is about 40 bytes plus its strings) and
 * bounded: every string has a cap from limits.ts, counts are capped by MAX_MEMBERS, and decoding
 * checks each before slicing (wire.ts). Any violation is ClusterError('ERR_GOSSIP_DECODE').
 *
 *   record    u8 len|id  u8 len|host  u16 port  u16 busPort  u8 len|dc  u8 len|rack  f64 weight
 *             u48 incarnation  u48 heartbeat  u8 state(0 joining,1 up,2 leaving,3 left)
 *             u8 flags(bit0: claim, bit1: target weight)  [u48 suspectedAt if bit0]
 *             [f64 targetWeight if bit1: a weight change in progress, membership_weight.ts]
 *   SYNC      u8 version | u8 len|senderId | u16 count | record*count      (request and reply)
 *   PING      u8 version | u8 len|targetId                  -> reply: record (the target's own)
 *   PING_REQ  u8 version | u32 timeoutMs | u8 len|targetId | u8 len|host | u16 busPort
 *                                       -> reply: u8 1 | record  (ack)   or   u8 0  (nack)
 */
import { isValidNodeId } from './handshake.js';
import { MAX_COUNTER, MAX_DC_BYTES, MAX_HOST_BYTES, MAX_MEMBERS, MAX_NODE_ID_BYTES, MAX_RACK_BYTES, MAX_WEIGHT } from './limits.js';
import { targetWeightOf, weightPending, type MemberRecord, type MemberState } from './membership.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

export const GOSSIP_CODEC_VERSION = 1;
/** A helper's ping on our behalf may wait at most this long (a peer cannot park our helper forever). */
export const MAX_PING_REQ_TIMEOUT_MS = 60_000;

const STATES: readonly MemberState[] = ['joining', 'up', 'leaving', 'left'];
const FLAG_CLAIM = 0x01;
const FLAG_TARGET_WEIGHT = 0x02;

export function encodeRecord(w: ByteWriter, r: MemberRecord): void {
  w.str8(r.id, MAX_NODE_ID_BYTES)
    .str8(r.host, MAX_HOST_BYTES)
    .u16(r.port)
    .u16(r.busPort)
    .str8(r.dc, MAX_DC_BYTES)
    .str8(r.rack, MAX_RACK_BYTES)
    .f64(r.weight)
    .u48(r.incarnation)
    .u48(r.heartbeat)
    .u8(STATES.indexOf(r.state))
    .u8((r.suspectedAt === null ? 0 : FLAG_CLAIM) | (weightPending(r) ? FLAG_TARGET_WEIGHT : 0));
  if (r.suspectedAt !== null) w.u48(r.suspectedAt);
  if (weightPending(r)) w.f64(targetWeightOf(r));
}

function readId(r: ByteReader, what: string): string {
  const id = r.str8(MAX_NODE_ID_BYTES, what, 1);
  if (!isValidNodeId(id)) fail(`invalid ${what}`);
  return id;
}

export function decodeRecord(r: ByteReader): MemberRecord {
  const id = readId(r, 'node id');
  const host = r.str8(MAX_HOST_BYTES, 'host', 1);
  const port = r.u16('port');
  const busPort = r.u16('bus port');
  const dc = r.str8(MAX_DC_BYTES, 'dc');
  const rack = r.str8(MAX_RACK_BYTES, 'rack');
  const weight = r.f64('weight');
  if (!(Number.isFinite(weight) && weight >= 0 && weight <= MAX_WEIGHT)) fail(`weight ${weight} out of [0, ${MAX_WEIGHT}]`);
  const incarnation = r.u48('incarnation');
  const heartbeat = r.u48('heartbeat');
  const stateIndex = r.u8('state');
  const state = STATES[stateIndex];
  if (state === undefined) fail(`unknown member state ${stateIndex}`);
  const flags = r.u8('flags');
  if ((flags & ~(FLAG_CLAIM | FLAG_TARGET_WEIGHT)) !== 0) fail(`unknown record flags 0x${flags.toString(16)}`);
  const suspectedAt = flags & FLAG_CLAIM ? r.u48('suspectedAt') : null;
  if (incarnation > MAX_COUNTER || heartbeat > MAX_COUNTER) fail('counter out of range');
  const base = { id, host, port, busPort, dc, rack, weight, state, incarnation, heartbeat, suspectedAt };
  if ((flags & FLAG_TARGET_WEIGHT) === 0) return base;
  const targetWeight = r.f64('target weight');
  if (!(Number.isFinite(targetWeight) && targetWeight >= 0 && targetWeight <= MAX_WEIGHT)) fail(`target weight ${targetWeight} out of [0, ${MAX_WEIGHT}]`);
  // An equal target is no change in progress: the canonical record omits it.
  return targetWeight === weight ? base : { ...base, targetWeight };
}

function version(r: ByteReader, what: string): void {
  const v = r.u8(`${what} version`);
  if (v !== GOSSIP_CODEC_VERSION) fail(`${what} version ${v} unsupported`);
}

export interface SyncMessage {
  readonly senderId: string;
  readonly records: readonly MemberRecord[];
}

export function encodeSync(m: SyncMessage): Buffer {
  if (m.records.length > MAX_MEMBERS) fail(`${m.records.length} records exceed MAX_MEMBERS`);
  const w = new ByteWriter(64 + m.records.length * 64);
  w.u8(GOSSIP_CODEC_VERSION).str8(m.senderId, MAX_NODE_ID_BYTES).u16(m.records.length);
  for (const r of m.records) encodeRecord(w, r);
  return w.finish();
}

export function decodeSync(buf: Buffer): SyncMessage {
  const r = new ByteReader(buf);
  version(r, 'SYNC');
  const senderId = readId(r, 'sender id');
  const count = r.u16('record count');
  if (count > MAX_MEMBERS) fail(`${count} records exceed MAX_MEMBERS`);
  const records: MemberRecord[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < count; i++) {
    const rec = decodeRecord(r);
    if (ids.has(rec.id)) fail(`duplicate record for ${rec.id}`);
    ids.add(rec.id);
    records.push(rec);
  }
  r.end('SYNC');
  return { senderId, records };
}

export function encodePing(targetId: string): Buffer {
  return new ByteWriter(80).u8(GOSSIP_CODEC_VERSION).str8(targetId, MAX_NODE_ID_BYTES).finish();
}

export function decodePing(buf: Buffer): string {
  const r = new ByteReader(buf);
  version(r, 'PING');
  const id = readId(r, 'target id');
  r.end('PING');
  return id;
}

export function encodeAck(self: MemberRecord): Buffer {
  const w = new ByteWriter(128);
  encodeRecord(w, self);
  return w.finish();
}

export function decodeAck(buf: Buffer): MemberRecord {
  const r = new ByteReader(buf);
  const rec = decodeRecord(r);
  r.end('ACK');
  return rec;
}

export interface PingReq {
  readonly timeoutMs: number;
  readonly targetId: string;
  readonly host: string;
  readonly busPort: number;
}

export function encodePingReq(m: PingReq): Buffer {
  return new ByteWriter(128)
    .u8(GOSSIP_CODEC_VERSION)
    .u32(m.timeoutMs)
    .str8(m.targetId, MAX_NODE_ID_BYTES)
    .str8(m.host, MAX_HOST_BYTES)
    .u16(m.busPort)
    .finish();
}

export function decodePingReq(buf: Buffer): PingReq {
  const r = new ByteReader(buf);
  version(r, 'PING_REQ');
  const timeoutMs = r.u32('timeout');
  if (timeoutMs < 1 || timeoutMs > MAX_PING_REQ_TIMEOUT_MS) fail(`PING_REQ timeout ${timeoutMs} ms out of range`);
  const targetId = readId(r, 'target id');
  const host = r.str8(MAX_HOST_BYTES, 'host', 1);
  const busPort = r.u16('bus port');
  r.end('PING_REQ');
  return { timeoutMs, targetId, host, busPort };
}

export function encodePingReqReply(ack: MemberRecord | null): Buffer {
  const w = new ByteWriter(128).u8(ack ? 1 : 0);
  if (ack) encodeRecord(w, ack);
  return w.finish();
}

export function decodePingReqReply(buf: Buffer): MemberRecord | null {
  const r = new ByteReader(buf);
  const status = r.u8('status');
  if (status === 0) {
    r.end('PING_REQ nack');
    return null;
  }
  if (status !== 1) fail(`PING_REQ status ${status} unknown`);
  const rec = decodeRecord(r);
  r.end('PING_REQ ack');
  return rec;
}
