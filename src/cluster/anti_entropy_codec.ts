/**
 * Wire formats of the anti-entropy exchange (anti_entropy.ts) on the cluster bus. Pure
 * encode/decode; every count and length read off the wire is checked against a named cap and
 * against the bytes that remain before anything is allocated or sliced (ByteReader throws
 * ClusterError ERR_GOSSIP_DECODE, which the bus answers as an ERROR frame). Integers are
 * big-endian; a 64-bit hash is written as two u32 halves.
 *
 *   AE_HASHES request : u16 rangeCount | rangeCount x (u16 firstSlot | u16 lastSlot)
 *                       | u8 parentLevel | u32 parentCount | parentCount x u32 parent
 *             response: u64 root | parentCount x FANOUT x u64 childHash
 *      (the slot ranges are the mask: the slots both replicas hold; parentCount 0 asks the root only)
 *   AE_KEYS   request : u32 leafCount | leafCount x (u32 leaf | u32 entryCount
 *                       | entryCount x (u32 keyLength | key | u64 entryHash | u48 clockSum))
 *             response: u8 flags (1: truncated, more objects differ than fit)
 *                       | u32 objectCount | objectCount x (u32 keyLength | key | u32 objectLength | object)
 *                       | u32 wantCount | wantCount x (u32 keyLength | key)
 *   AE_PUSH   request : u32 objectCount | objectCount x (u32 keyLength | key | u32 objectLength | object)
 *             response: u32 merged | u32 objectCount | objectCount x (u32 keyLength | key | u32 objectLength | object)
 *      (the response's objects: merge results that differ from what was pushed, for the initiator)
 * clockSum: the sum of the object's causal-context counters (capped at MAX_CLOCK_SUM), a cheap
 * hint of which of two versions may dominate (anti_entropy_plan.ts compareLeaf).
 */
import { SLOT_COUNT } from '../server/key_layout.js';
import { KEY_BYTES_HARD_MAX, VALUE_BYTES_HARD_MAX } from '../storage/limits.js';
import { FANOUT, LEAF_COUNT, LEAF_LEVEL, levelWidth, type SlotRanges } from './merkle.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

/** Bus message types (message_types.ts assigns 0x50-0x57 to anti-entropy). */
export const AntiEntropyMessageType = {
  AE_HASHES: 0x50,
  AE_KEYS: 0x51,
  AE_PUSH: 0x52,
} as const;

/** Most tree nodes one AE_HASHES request descends into (the reply holds FANOUT hashes each). */
export const MAX_AE_PARENTS_PER_REQUEST = 8192;
/** Most leaves one AE_KEYS request lists. */
export const MAX_AE_LEAVES_PER_REQUEST = 1024;
/** Most keys (entries, objects or wants) in one message. */
export const MAX_AE_KEYS_PER_MESSAGE = 200_000;
/** Object bytes after which an AE_KEYS reply stops adding objects (and says it was truncated). */
export const MAX_AE_REPLY_OBJECT_BYTES = 4 * 1024 * 1024;
/** Longest key and object accepted: the storage engine's own caps. */
export const MAX_AE_KEY_BYTES = KEY_BYTES_HARD_MAX;
export const MAX_AE_OBJECT_BYTES = VALUE_BYTES_HARD_MAX;
/** Most slot ranges in a mask (alternating slots: SLOT_COUNT / 2). */
export const MAX_AE_RANGES = SLOT_COUNT / 2;

export interface HashesRequest {
  readonly ranges: SlotRanges;
  readonly parentLevel: number;
  readonly parents: readonly number[];
}

export interface HashesResponse {
  readonly root: bigint;
  readonly children: readonly bigint[];
}

export interface LeafEntry {
  readonly key: Buffer;
  readonly hash: bigint;
  readonly clockSum: number;
}

/** Largest clock sum on the wire (u48). */
export const MAX_CLOCK_SUM = 2 ** 48 - 1;

export interface LeafListing {
  readonly leaf: number;
  readonly entries: readonly LeafEntry[];
}

export interface KeyedObject {
  readonly key: Buffer;
  /** The stored encoding (object_codec.ts). */
  readonly bytes: Buffer;
}

export interface KeysResponse {
  readonly truncated: boolean;
  readonly objects: readonly KeyedObject[];
  readonly wants: readonly Buffer[];
}

const U32 = 0x1_0000_0000n;

function writeHash(w: ByteWriter, h: bigint): void {
  w.u32(Number(h / U32)).u32(Number(h % U32));
}

function readHash(r: ByteReader, what: string): bigint {
  return BigInt(r.u32(what)) * U32 + BigInt(r.u32(what));
}

function readCount(r: ByteReader, what: string, max: number, minBytesEach: number): number {
  const n = r.u32(what);
  if (n > max) fail(`${n} ${what} over ${max}`);
  if (n * minBytesEach > r.remaining) fail(`${n} ${what} do not fit in ${r.remaining} bytes`);
  return n;
}

function readKey(r: ByteReader): Buffer {
  const len = r.u32('key length');
  if (len > MAX_AE_KEY_BYTES) fail(`key of ${len} bytes over ${MAX_AE_KEY_BYTES}`);
  return Buffer.from(r.bytes(len, 'key'));
}

function writeObjects(w: ByteWriter, objects: readonly KeyedObject[]): void {
  w.u32(objects.length);
  for (const o of objects) w.u32(o.key.length).bytes(o.key).u32(o.bytes.length).bytes(o.bytes);
}

function readObjects(r: ByteReader): KeyedObject[] {
  const n = readCount(r, 'objects', MAX_AE_KEYS_PER_MESSAGE, 8);
  const out: KeyedObject[] = [];
  for (let i = 0; i < n; i++) {
    const key = readKey(r);
    const len = r.u32('object length');
    if (len > MAX_AE_OBJECT_BYTES) fail(`object of ${len} bytes over ${MAX_AE_OBJECT_BYTES}`);
    out.push({ key, bytes: Buffer.from(r.bytes(len, 'object')) });
  }
  return out;
}

function objectsSize(objects: readonly KeyedObject[]): number {
  let n = 4;
  for (const o of objects) n += 8 + o.key.length + o.bytes.length;
  return n;
}

export function encodeHashesRequest(req: HashesRequest): Buffer {
  const w = new ByteWriter(8 + 4 * req.ranges.length + 4 * req.parents.length);
  w.u16(req.ranges.length);
  for (const [a, b] of req.ranges) w.u16(a).u16(b);
  w.u8(req.parentLevel).u32(req.parents.length);
  for (const p of req.parents) w.u32(p);
  return w.finish();
}

export function decodeHashesRequest(payload: Buffer): HashesRequest {
  const r = new ByteReader(payload);
  const nRanges = r.u16('range count');
  if (nRanges > MAX_AE_RANGES) fail(`${nRanges} slot ranges over ${MAX_AE_RANGES}`);
  const ranges: Array<[number, number]> = [];
  let prev = -1;
  for (let i = 0; i < nRanges; i++) {
    const a = r.u16('first slot');
    const b = r.u16('last slot');
    if (a <= prev || b < a || b >= SLOT_COUNT) fail(`bad slot range ${a}-${b}`);
    ranges.push([a, b]);
    prev = b;
  }
  const parentLevel = r.u8('parent level');
  if (parentLevel >= LEAF_LEVEL) fail(`parent level ${parentLevel} not above the leaves (${LEAF_LEVEL})`);
  const n = readCount(r, 'parents', MAX_AE_PARENTS_PER_REQUEST, 4);
  const width = levelWidth(parentLevel);
  const parents: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = r.u32('parent');
    if (p >= width) fail(`parent ${p} outside level ${parentLevel} (${width} nodes)`);
    parents.push(p);
  }
  r.end('AE_HASHES request');
  return { ranges, parentLevel, parents };
}

export function encodeHashesResponse(res: HashesResponse): Buffer {
  const w = new ByteWriter(8 + 8 * res.children.length);
  writeHash(w, res.root);
  for (const h of res.children) writeHash(w, h);
  return w.finish();
}

/** `parentCount`: how many parents the request named (the reply must hold FANOUT hashes each). */
export function decodeHashesResponse(payload: Buffer, parentCount: number): HashesResponse {
  const r = new ByteReader(payload);
  const root = readHash(r, 'root');
  const n = parentCount * FANOUT;
  if (r.remaining !== n * 8) fail(`AE_HASHES reply has ${r.remaining} bytes for ${n} child hashes`);
  const children: bigint[] = [];
  for (let i = 0; i < n; i++) children.push(readHash(r, 'child hash'));
  r.end('AE_HASHES response');
  return { root, children };
}

export function encodeKeysRequest(leaves: readonly LeafListing[]): Buffer {
  let size = 4;
  for (const l of leaves) {
    size += 8;
    for (const e of l.entries) size += 18 + e.key.length;
  }
  const w = new ByteWriter(size);
  w.u32(leaves.length);
  for (const l of leaves) {
    w.u32(l.leaf).u32(l.entries.length);
    for (const e of l.entries) {
      w.u32(e.key.length).bytes(e.key);
      writeHash(w, e.hash);
      w.u48(Math.min(e.clockSum, MAX_CLOCK_SUM));
    }
  }
  return w.finish();
}

export function decodeKeysRequest(payload: Buffer): LeafListing[] {
  const r = new ByteReader(payload);
  const n = readCount(r, 'leaves', MAX_AE_LEAVES_PER_REQUEST, 8);
  const out: LeafListing[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const leaf = r.u32('leaf');
    if (leaf >= LEAF_COUNT) fail(`leaf ${leaf} over ${LEAF_COUNT - 1}`);
    const m = readCount(r, 'leaf entries', MAX_AE_KEYS_PER_MESSAGE, 18);
    total += m;
    if (total > MAX_AE_KEYS_PER_MESSAGE) fail(`${total} leaf entries over ${MAX_AE_KEYS_PER_MESSAGE}`);
    const entries: LeafEntry[] = [];
    for (let j = 0; j < m; j++) entries.push({ key: readKey(r), hash: readHash(r, 'entry hash'), clockSum: r.u48('clock sum') });
    out.push({ leaf, entries });
  }
  r.end('AE_KEYS request');
  return out;
}

export function encodeKeysResponse(res: KeysResponse): Buffer {
  let size = 1 + objectsSize(res.objects) + 4;
  for (const k of res.wants) size += 4 + k.length;
  const w = new ByteWriter(size);
  w.u8(res.truncated ? 1 : 0);
  writeObjects(w, res.objects);
  w.u32(res.wants.length);
  for (const k of res.wants) w.u32(k.length).bytes(k);
  return w.finish();
}

export function decodeKeysResponse(payload: Buffer): KeysResponse {
  const r = new ByteReader(payload);
  const flags = r.u8('flags');
  if ((flags & ~1) !== 0) fail(`unknown AE_KEYS flags ${flags}`);
  const objects = readObjects(r);
  const n = readCount(r, 'wanted keys', MAX_AE_KEYS_PER_MESSAGE, 4);
  const wants: Buffer[] = [];
  for (let i = 0; i < n; i++) wants.push(readKey(r));
  r.end('AE_KEYS response');
  return { truncated: flags === 1, objects, wants };
}

export function encodePush(objects: readonly KeyedObject[]): Buffer {
  const w = new ByteWriter(objectsSize(objects));
  writeObjects(w, objects);
  return w.finish();
}

export function decodePush(payload: Buffer): KeyedObject[] {
  const r = new ByteReader(payload);
  const out = readObjects(r);
  r.end('AE_PUSH request');
  return out;
}

export interface PushResponse {
  readonly merged: number;
  /** Merge results that differ from the pushed objects: the initiator merges them back. */
  readonly objects: readonly KeyedObject[];
}

export function encodePushResponse(res: PushResponse): Buffer {
  const w = new ByteWriter(4 + objectsSize(res.objects));
  w.u32(res.merged);
  writeObjects(w, res.objects);
  return w.finish();
}

export function decodePushResponse(payload: Buffer): PushResponse {
  const r = new ByteReader(payload);
  const merged = r.u32('merged');
  const objects = readObjects(r);
  r.end('AE_PUSH response');
  return { merged, objects };
}
