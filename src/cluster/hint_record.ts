/**
 * How a fallback keeps its hints in the node's storage engine (key_layout.ts namespace 0x02),
 * and the record format. Pure encode/decode, every length checked before it is sliced.
 *
 *   hint key   = [0x02][u8 targetLen][target node id][slot u16 BE][user key]
 *   hint value = [u8 HINT_RECORD_VERSION][f64 writtenAtMs][object bytes (object_codec.ts)]
 *
 * The target comes first, so all hints for one target are one contiguous range (one range scan
 * per handoff), and inside it the hints are in (slot, key) order, as the data namespace is.
 * One record per (target, key): a newer hint for the same key is merged into it (version
 * vectors), and `writtenAtMs` is the time of the last merge, so a record's age is the age of
 * its newest write (what max-hint-window-ms measures).
 */
import assert from 'node:assert';
import { keySlot } from '../coordinator/slot.js';
import { NAMESPACE_HINTS } from '../server/key_layout.js';
import { MAX_NODE_ID_BYTES } from './limits.js';

export const HINT_RECORD_VERSION = 1;
/** Bytes of a record before the object: version + writtenAtMs. */
export const HINT_RECORD_HEADER_BYTES = 9;

/** Operating error: a stored hint that does not parse (logged and deleted by the store). */
export class HintFormatError extends Error {
  readonly code = 'ERR_HINT_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'HintFormatError';
  }
}

/** The engine key prefix of every hint for `target`. */
export function hintTargetPrefix(target: string): Buffer {
  const id = Buffer.from(target, 'utf8');
  assert(id.length > 0 && id.length <= MAX_NODE_ID_BYTES, `node id of ${id.length} bytes`);
  const out = Buffer.allocUnsafe(2 + id.length);
  out[0] = NAMESPACE_HINTS;
  out[1] = id.length;
  id.copy(out, 2);
  return out;
}

export function hintKey(target: string, userKey: Buffer, slot: number = keySlot(userKey)): Buffer {
  const prefix = hintTargetPrefix(target);
  const out = Buffer.allocUnsafe(prefix.length + 2 + userKey.length);
  prefix.copy(out, 0);
  out.writeUInt16BE(slot, prefix.length);
  userKey.copy(out, prefix.length + 2);
  return out;
}

/** The smallest key greater than every key starting with `prefix`. */
export function prefixSuccessor(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++;
      return out.subarray(0, i + 1);
    }
  }
  assert.fail('no successor of an all-0xff prefix');
}

/** [gte, lt) of one target's hints. */
export function hintTargetBounds(target: string): { gte: Buffer; lt: Buffer } {
  const gte = hintTargetPrefix(target);
  return { gte, lt: prefixSuccessor(gte) };
}

/** [gte, lt) of the whole hint namespace. */
export function hintNamespaceBounds(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from([NAMESPACE_HINTS]), lt: Buffer.from([NAMESPACE_HINTS + 1]) };
}

export interface ParsedHintKey {
  readonly target: string;
  readonly slot: number;
  /** A view into the engine key. */
  readonly userKey: Buffer;
}

export function parseHintKey(engineKey: Buffer): ParsedHintKey {
  if (engineKey.length < 2 || engineKey[0] !== NAMESPACE_HINTS) throw new HintFormatError('not a hint key');
  const idLen = engineKey[1]!;
  if (idLen === 0 || idLen > MAX_NODE_ID_BYTES) throw new HintFormatError(`hint key with a target id of ${idLen} bytes`);
  if (engineKey.length < 2 + idLen + 2) throw new HintFormatError('truncated hint key');
  return {
    target: engineKey.toString('utf8', 2, 2 + idLen),
    slot: engineKey.readUInt16BE(2 + idLen),
    userKey: engineKey.subarray(2 + idLen + 2),
  };
}

export function encodeHintRecord(writtenAtMs: number, objectBytes: Buffer): Buffer {
  assert(Number.isFinite(writtenAtMs) && writtenAtMs >= 0, 'writtenAtMs must be a time');
  const out = Buffer.allocUnsafe(HINT_RECORD_HEADER_BYTES + objectBytes.length);
  out[0] = HINT_RECORD_VERSION;
  out.writeDoubleBE(writtenAtMs, 1);
  objectBytes.copy(out, HINT_RECORD_HEADER_BYTES);
  return out;
}

export interface ParsedHintRecord {
  readonly writtenAtMs: number;
  /** A view into the record. */
  readonly objectBytes: Buffer;
}

export function parseHintRecord(value: Buffer): ParsedHintRecord {
  if (value.length < HINT_RECORD_HEADER_BYTES) throw new HintFormatError(`hint record of ${value.length} bytes`);
  if (value[0] !== HINT_RECORD_VERSION) throw new HintFormatError(`hint record version ${value[0]}`);
  const writtenAtMs = value.readDoubleBE(1);
  if (!Number.isFinite(writtenAtMs) || writtenAtMs < 0) throw new HintFormatError('hint record with a bad time');
  return { writtenAtMs, objectBytes: value.subarray(HINT_RECORD_HEADER_BYTES) };
}
