// Damaged encodings for the property tests of the bytes-level object paths (object_plain_write,
// object_plain_merge): a byte overwritten, the bytes cut short, or a byte appended.
import fc from 'fast-check';
import { decodeObject } from '../../src/coordinator/object.js';

export type Damage = { op: 'flip' | 'cut' | 'append'; at: number; byte: number };

export const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
  fc.record({ op: fc.constant('append' as const), at: fc.constant(0), byte: fc.nat(255) }),
);

/** `good` with `damage` applied (a new buffer, or a view of `good` when cut). */
export function damaged(good: Buffer, damage: Damage): Buffer {
  if (damage.op === 'flip') {
    const bad = Buffer.from(good);
    bad[damage.at % bad.length] = damage.byte;
    return bad;
  }
  if (damage.op === 'cut') return good.subarray(0, damage.at % good.length);
  return Buffer.concat([good, Buffer.from([damage.byte])]);
}

/** True when decodeObject accepts `bytes`. */
export function decodes(bytes: Buffer): boolean {
  try {
    decodeObject(bytes);
    return true;
  } catch {
    return false;
  }
}
