/**
 * How the node's data is laid out in the storage engine's single ordered key space.
 *
 *   engine key = [namespace u8][slot u16 big-endian][user key bytes]
 *
 * Keys are ordered bytewise, so every namespace is one contiguous range, and inside it every
 * slot (and every run of slots) is one contiguous range: SCAN, COUNTKEYSINSLOT, streaming a slot
 * range to a new node and Merkle rebuilds are single range scans.
 *
 * Namespaces (one byte; new ones take an unused value, never reuse one):
 *   0x00  node metadata (reserved)
 *   0x01  data: versioned objects (encodeObject), the Redis keyspace
 *   0x02  hints for other nodes: [0x02][u8 target id length][target id][slot u16][user key]
 *         (src/cluster/hint_record.ts: one range per target, then in (slot, key) order)
 */
import assert from 'node:assert';
import { crc16, keySlot } from '../coordinator/slot.js';

export const NAMESPACE_META = 0x00;
export const NAMESPACE_DATA = 0x01;
export const NAMESPACE_HINTS = 0x02;

/** Redis Cluster's slot count. */
export const SLOT_COUNT = 16384;
/** Bytes before the user key: namespace + slot. */
export const DATA_KEY_PREFIX_BYTES = 3;

/**
 * keySlot of the key bytes buf[start, end) (a request's key as offsets, RawCommand), without a
 * view of them: the same hash tag rule (the bytes between the first '{' and the first '}' after
 * it, when not empty) and CRC16.
 */
export function keySlotOfRange(buf: Buffer, start: number, end: number): number {
  let open = -1;
  for (let i = start; i < end; i++) {
    if (buf[i] === OPEN_BRACE) {
      open = i;
      break;
    }
  }
  if (open !== -1) {
    for (let i = open + 1; i < end; i++) {
      if (buf[i] === CLOSE_BRACE) {
        if (i > open + 1) return crc16(buf, open + 1, i) & (SLOT_COUNT - 1);
        break;
      }
    }
  }
  return crc16(buf, start, end) & (SLOT_COUNT - 1);
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** dataKey of the user key buf[start, end) (a request's key as offsets). */
export function dataKeyOfRange(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(DATA_KEY_PREFIX_BYTES + end - start);
  const slot = keySlotOfRange(buf, start, end);
  out[0] = NAMESPACE_DATA;
  out[1] = slot >>> 8;
  out[2] = slot & 0xff;
  // Short keys by a loop, not buf.copy: copying part of a Buffer makes a Uint8Array view of the
  // part (~99 B per SET in the sampling heap profile).
  if (end - start > LOOKUP_SCRATCH_MAX_BYTES) buf.copy(out, DATA_KEY_PREFIX_BYTES, start, end);
  else for (let i = start, o = DATA_KEY_PREFIX_BYTES; i < end; i++, o++) out[o] = buf[i] as number;
  return out;
}

export function dataKey(userKey: Buffer, slot: number = keySlot(userKey)): Buffer {
  const out = Buffer.allocUnsafe(DATA_KEY_PREFIX_BYTES + userKey.length);
  out[0] = NAMESPACE_DATA;
  out[1] = slot >>> 8;
  out[2] = slot & 0xff;
  out.set(userKey, DATA_KEY_PREFIX_BYTES);
  return out;
}

/** Engine keys up to this long get a scratch buffer from lookupDataKey; longer ones a fresh one. */
export const LOOKUP_SCRATCH_MAX_BYTES = 64;

/** lookupDataKey's buffers, by engine key length. */
const lookupScratch: (Buffer | undefined)[] = new Array<Buffer | undefined>(LOOKUP_SCRATCH_MAX_BYTES + 1);

/**
 * dataKey(userKey) for one synchronous lookup that keeps no reference to the key
 * (KVEngine.getSync): a short engine key is written into a scratch buffer of its length, the
 * same Buffer every call, so a GET allocates none (an allocUnsafe of a few bytes cost ~6% of a
 * pipelined GET's CPU). The bytes are valid until the next lookupDataKey call; never store,
 * write or await with them.
 */
export function lookupDataKey(userKey: Buffer): Buffer {
  const n = DATA_KEY_PREFIX_BYTES + userKey.length;
  if (n > LOOKUP_SCRATCH_MAX_BYTES) return dataKey(userKey);
  let out = lookupScratch[n];
  if (out === undefined) {
    out = Buffer.alloc(n);
    lookupScratch[n] = out;
  }
  const slot = keySlot(userKey);
  out[0] = NAMESPACE_DATA;
  out[1] = slot >>> 8;
  out[2] = slot & 0xff;
  for (let i = 0; i < userKey.length; i++) out[DATA_KEY_PREFIX_BYTES + i] = userKey[i] as number;
  return out;
}

/**
 * lookupDataKey of the user key buf[start, end): the same scratch buffers and the same rule
 * (valid until the next lookupDataKey or lookupDataKeyOfRange call; never store it).
 */
export function lookupDataKeyOfRange(buf: Buffer, start: number, end: number): Buffer {
  const n = DATA_KEY_PREFIX_BYTES + end - start;
  if (n > LOOKUP_SCRATCH_MAX_BYTES) return dataKeyOfRange(buf, start, end);
  let out = lookupScratch[n];
  if (out === undefined) {
    out = Buffer.alloc(n);
    lookupScratch[n] = out;
  }
  const slot = keySlotOfRange(buf, start, end);
  out[0] = NAMESPACE_DATA;
  out[1] = slot >>> 8;
  out[2] = slot & 0xff;
  for (let i = start, o = DATA_KEY_PREFIX_BYTES; i < end; i++, o++) out[o] = buf[i] as number;
  return out;
}

let lastRangeBuf: Buffer | undefined;
let lastRangeStart = 0;
let lastRangeEnd = 0;
let lastRangeName = '';

/**
 * keyArgName of the key buf[start, end) (a request's key as offsets): the overlap plan and the
 * key lock ask about the same range back to back, so the last one's string is remembered (by
 * the Buffer's identity and the offsets: received bytes are never written again).
 */
export function keyRangeName(buf: Buffer, start: number, end: number): string {
  if (buf === lastRangeBuf && start === lastRangeStart && end === lastRangeEnd) return lastRangeName;
  lastRangeName = buf.toString('latin1', start, end);
  lastRangeBuf = buf;
  lastRangeStart = start;
  lastRangeEnd = end;
  return lastRangeName;
}

let lastKeyArg: Buffer | undefined;
let lastKeyName = '';

/**
 * The latin1 string of a request's key argument: the name key locks and overlap plans use. The
 * connection's overlap plan and the command's key lock ask about the same argument Buffer back
 * to back (every pipelined SET), so the string of the last Buffer asked about is remembered and
 * built once. By Buffer identity: only for request arguments, which nothing writes to after
 * parsing (views of received bytes).
 */
export function keyArgName(arg: Buffer): string {
  if (arg === lastKeyArg) return lastKeyName;
  lastKeyName = arg.toString('latin1');
  lastKeyArg = arg;
  return lastKeyName;
}

/** The user key inside a data engine key (a view, not a copy). */
export function userKeyOf(engineKey: Buffer): Buffer {
  assert(engineKey.length >= DATA_KEY_PREFIX_BYTES && engineKey[0] === NAMESPACE_DATA, 'not a data key');
  return engineKey.subarray(DATA_KEY_PREFIX_BYTES);
}

export function slotOf(engineKey: Buffer): number {
  assert(engineKey.length >= DATA_KEY_PREFIX_BYTES && engineKey[0] === NAMESPACE_DATA, 'not a data key');
  return engineKey.readUInt16BE(1);
}

/** [gte, lt) bounds of the data keys of slots [firstSlot, lastSlot] (inclusive). */
export function slotRangeBounds(firstSlot: number, lastSlot: number = firstSlot): { gte: Buffer; lt: Buffer } {
  assert(firstSlot >= 0 && lastSlot < SLOT_COUNT && firstSlot <= lastSlot, `bad slot range ${firstSlot}-${lastSlot}`);
  const gte = Buffer.from([NAMESPACE_DATA, firstSlot >> 8, firstSlot & 0xff]);
  const lt =
    lastSlot + 1 < SLOT_COUNT
      ? Buffer.from([NAMESPACE_DATA, (lastSlot + 1) >> 8, (lastSlot + 1) & 0xff])
      : Buffer.from([NAMESPACE_DATA + 1]);
  return { gte, lt };
}

/** Bounds of the whole data namespace. */
export function dataBounds(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from([NAMESPACE_DATA]), lt: Buffer.from([NAMESPACE_DATA + 1]) };
}
