/**
 * SCAN cursors over an ordered key space, as Redis-compatible unsigned 64-bit integers.
 *
 * Redis clients treat the cursor as a decimal u64 (redis-cli parses it with strtoull), so the
 * cursor cannot carry a whole key. It carries a position instead:
 *
 *   cursor = 0                                   start (and, in a reply, "done")
 *   cursor = 1 + slot * 2^48 + prefix48          resume at the first key of `slot` whose first six
 *                                                bytes (zero padded) are >= prefix48
 *
 * The scan cuts only between "groups" of keys (same slot, same zero-padded six-byte prefix), so
 * resuming from a group's start never skips a key that existed for the whole scan and never
 * loops (Redis's SCAN guarantee). The price: a reply may exceed COUNT by one group's size, which
 * Redis allows (COUNT is a hint). The resume bound is the prefix with trailing zero bytes
 * trimmed, which sorts at or before every key of the group (key "ab" pads to "ab\0\0\0\0").
 *
 * The largest cursor is 16384 * 2^48 = 2^62, well inside u64.
 */
import { DATA_KEY_PREFIX_BYTES, NAMESPACE_DATA, SLOT_COUNT } from './key_layout.js';

export const CURSOR_PREFIX_BYTES = 6;
const PREFIX_SPACE = 1n << BigInt(CURSOR_PREFIX_BYTES * 8);
const U64_MAX = (1n << 64n) - 1n;

/** Parses a cursor as Redis does (strtoul base 10: optional sign, wraps negatives); undefined: invalid. */
export function parseCursor(arg: Buffer): bigint | undefined {
  const s = arg.toString('latin1');
  if (s === '') return 0n;
  const m = /^([+-]?)(\d+)$/.exec(s);
  if (m === null) return undefined;
  const magnitude = BigInt(m[2]!);
  if (magnitude > U64_MAX) return undefined;
  return m[1] === '-' && magnitude !== 0n ? (1n << 64n) - magnitude : magnitude;
}

/** The group of an engine data key: the cursor that resumes at it. */
export function cursorAt(engineKey: Buffer): bigint {
  const slot = engineKey.readUInt16BE(1);
  let prefix = 0n;
  for (let i = 0; i < CURSOR_PREFIX_BYTES; i++) {
    const b = engineKey[DATA_KEY_PREFIX_BYTES + i] ?? 0;
    prefix = (prefix << 8n) | BigInt(b);
  }
  return 1n + BigInt(slot) * PREFIX_SPACE + prefix;
}

/** The inclusive engine-key lower bound a non-zero cursor resumes from; undefined past the end. */
export function cursorLowerBound(cursor: bigint): Buffer | undefined {
  if (cursor === 0n) return Buffer.from([NAMESPACE_DATA]);
  const pos = cursor - 1n;
  const slot = pos / PREFIX_SPACE;
  if (slot >= BigInt(SLOT_COUNT)) return undefined;
  let prefix = pos % PREFIX_SPACE;
  const bytes = Buffer.alloc(CURSOR_PREFIX_BYTES);
  for (let i = CURSOR_PREFIX_BYTES - 1; i >= 0; i--) {
    bytes[i] = Number(prefix & 0xffn);
    prefix >>= 8n;
  }
  let end = CURSOR_PREFIX_BYTES;
  while (end > 0 && bytes[end - 1] === 0) end--;
  const out = Buffer.allocUnsafe(DATA_KEY_PREFIX_BYTES + end);
  out[0] = NAMESPACE_DATA;
  out.writeUInt16BE(Number(slot), 1);
  bytes.copy(out, DATA_KEY_PREFIX_BYTES, 0, end);
  return out;
}
