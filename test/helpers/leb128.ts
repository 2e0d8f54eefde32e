// The reference both varint writers (coordinator/bytes.ts, storage/varint.ts) are checked against:
// unsigned LEB128 computed on BigInt, the values at every 7-bit length boundary up to 2^53 - 1, and
// an arbitrary of any safe integer or a time in ms around now (over 2^31: the low 7 bits come from
// a double there).
import fc from 'fast-check';

export function leb128Reference(value: number): Buffer {
  const out: number[] = [];
  let v = BigInt(value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export function varintBoundaryValues(): number[] {
  const values = [0, 1, 127, Number.MAX_SAFE_INTEGER];
  for (let k = 1; k <= 7; k++) values.push(2 ** (7 * k) - 1, 2 ** (7 * k), 2 ** (7 * k) + 1);
  return values;
}

export const varintValueArb: fc.Arbitrary<number> = fc.oneof(fc.maxSafeNat(), fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }));
