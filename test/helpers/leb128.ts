// What both varint writers (coordinator/bytes.ts, storage/varint.ts) are checked against: unsigned
// LEB128 computed on BigInt, at every 7-bit length boundary up to 2^53 - 1 and for any safe integer
// or time in ms around now (over 2^31: the low 7 bits come from a double there), as two tap tests.
import fc from 'fast-check';
import t from 'tap';

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

function varintBoundaryValues(): number[] {
  const values = [0, 1, 127, Number.MAX_SAFE_INTEGER];
  for (let k = 1; k <= 7; k++) values.push(2 ** (7 * k) - 1, 2 ** (7 * k), 2 ** (7 * k) + 1);
  return values;
}

const varintValueArb: fc.Arbitrary<number> = fc.oneof(fc.maxSafeNat(), fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }));

/**
 * The two tests both varint writers run: `check(value)` (the writer's bytes, length and read-back
 * against leb128Reference) answers undefined or what differed, at every boundary and for 5000
 * values of varintValueArb.
 */
export function varintReferenceTests(check: (value: number) => string | undefined): void {
  t.test('every length boundary, and the largest safe integer', (t) => {
    for (const v of varintBoundaryValues()) t.equal(check(v), undefined, `value ${v}`);
    t.end();
  });

  t.test('any safe integer, and times in ms around now', (t) => {
    fc.assert(fc.property(varintValueArb, (v) => check(v) === undefined), { numRuns: 5000 });
    t.pass('5000 values encode as the reference does');
    t.end();
  });
}
