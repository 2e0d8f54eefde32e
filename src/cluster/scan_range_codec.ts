/**
 * Wire formats of the whole-keyspace calls on the cluster bus (cluster_keys_transport.ts). Pure
 * encode/decode; every length and count read off the wire is checked against a named cap and
 * the bytes that remain before anything is sliced (ByteReader throws ClusterError
 * ERR_GOSSIP_DECODE, which the bus answers as an ERROR frame). Integers big-endian; a cursor
 * (scan_cursor.ts, below 2^63) is two u32 halves.
 *
 *   SCAN_RANGE request : u8 flags (1 countOnly, 2 matchNone) | u32 cursorHi | u32 cursorLo
 *                        | u16 lastSlot | u32 count | u32 patternLen | pattern (0 = none)
 *              response: u32 cursorHi | u32 cursorLo | u32 examined | u32 live | u32 keyCount
 *                        | keyCount x (u32 keyLen | key)
 *   FLUSH_ALL  request : empty           response: empty
 */
import { SLOT_COUNT } from '../server/key_layout.js';
import type { RangeScanRequest, RangeScanResult } from '../server/commands/cluster_keyspace.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

/** Longest key in a reply (replica_codec.ts's MAX_WIRE_KEY_BYTES, the largest key a node stores). */
export const MAX_WIRE_SCAN_KEY_BYTES = 64 * 1024 * 1024;
/** Largest COUNT accepted off the wire (keys.ts clamps SCAN COUNT to 100 000 as well). */
export const MAX_WIRE_SCAN_COUNT = 100_000;
/** Longest MATCH pattern accepted off the wire. */
export const MAX_WIRE_PATTERN_BYTES = 1024 * 1024;
/** Most keys in one SCAN_RANGE reply (the server stops at a group boundary past this). */
export const MAX_WIRE_SCAN_KEYS = 1_000_000;
/** Key bytes after which a SCAN_RANGE reply stops at the next group boundary. */
export const MAX_SCAN_REPLY_KEY_BYTES = 8 * 1024 * 1024;
/** Largest cursor: the start of slot SLOT_COUNT (= past the end). */
const MAX_CURSOR = 1n + BigInt(SLOT_COUNT) * (1n << 48n);

const FLAG_COUNT_ONLY = 1;
const FLAG_MATCH_NONE = 2;
const KNOWN_FLAGS = FLAG_COUNT_ONLY | FLAG_MATCH_NONE;
const U32 = 0x1_0000_0000n;

function writeCursor(w: ByteWriter, c: bigint): void {
  w.u32(Number(c / U32)).u32(Number(c % U32));
}

function readCursor(r: ByteReader): bigint {
  const c = BigInt(r.u32('cursor high')) * U32 + BigInt(r.u32('cursor low'));
  if (c > MAX_CURSOR) fail(`scan cursor ${c} past the end`);
  return c;
}

export function encodeScanRange(req: RangeScanRequest): Buffer {
  const pattern = req.pattern ?? Buffer.alloc(0);
  const w = new ByteWriter(24 + pattern.length);
  w.u8((req.countOnly ? FLAG_COUNT_ONLY : 0) | (req.matchNone ? FLAG_MATCH_NONE : 0));
  writeCursor(w, req.cursor);
  w.u16(req.lastSlot).u32(req.count).u32(pattern.length).bytes(pattern);
  return w.finish();
}

export function decodeScanRange(payload: Buffer): RangeScanRequest {
  const r = new ByteReader(payload);
  const flags = r.u8('scan flags');
  if ((flags & ~KNOWN_FLAGS) !== 0) fail(`unknown scan flags ${flags}`);
  const cursor = readCursor(r);
  if (cursor === 0n) fail('scan range cursor 0');
  const lastSlot = r.u16('last slot');
  if (lastSlot >= SLOT_COUNT) fail(`last slot ${lastSlot} over ${SLOT_COUNT - 1}`);
  const count = r.u32('scan count');
  if (count < 1 || count > MAX_WIRE_SCAN_COUNT) fail(`scan count ${count} outside 1-${MAX_WIRE_SCAN_COUNT}`);
  const patternLen = r.u32('pattern length');
  if (patternLen > MAX_WIRE_PATTERN_BYTES) fail(`pattern of ${patternLen} bytes over ${MAX_WIRE_PATTERN_BYTES}`);
  const pattern = patternLen === 0 ? undefined : Buffer.from(r.bytes(patternLen, 'pattern'));
  r.end('scan range');
  return { cursor, lastSlot, count, pattern, countOnly: (flags & FLAG_COUNT_ONLY) !== 0, matchNone: (flags & FLAG_MATCH_NONE) !== 0 };
}

export function encodeScanRangeResult(res: RangeScanResult): Buffer {
  let size = 20;
  for (const k of res.keys) size += 4 + k.length;
  const w = new ByteWriter(size);
  writeCursor(w, res.cursor);
  w.u32(res.examined).u32(res.live).u32(res.keys.length);
  for (const k of res.keys) w.u32(k.length).bytes(k);
  return w.finish();
}

export function decodeScanRangeResult(payload: Buffer): RangeScanResult {
  const r = new ByteReader(payload);
  const cursor = readCursor(r);
  const examined = r.u32('examined');
  const live = r.u32('live');
  const n = r.u32('key count');
  if (n > MAX_WIRE_SCAN_KEYS) fail(`${n} keys over ${MAX_WIRE_SCAN_KEYS}`);
  // Each key takes at least its 4-byte length: a count the payload cannot hold is refused first.
  if (n * 4 > r.remaining) fail(`${n} keys do not fit in ${r.remaining} bytes`);
  const keys: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.u32('key length');
    if (len > MAX_WIRE_SCAN_KEY_BYTES) fail(`key of ${len} bytes over ${MAX_WIRE_SCAN_KEY_BYTES}`);
    keys.push(Buffer.from(r.bytes(len, 'key')));
  }
  r.end('scan range result');
  return { cursor, examined, live, keys };
}
