// storage/varint.ts at every length boundary up to 2^53 - 1 (times in ms are over 2^31, where the
// low 7 bits are computed on a double): putVarint gives the LEB128 bytes a BigInt reference gives,
// varintLength their length, and ByteReader.varint reads them back.
import fc from 'fast-check';
import t from 'tap';
import { ByteReader, putVarint, varintLength } from '../../src/storage/varint.js';

function reference(value: number): Buffer {
  const out: number[] = [];
  let v = BigInt(value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function check(value: number): string | undefined {
  const want = reference(value);
  if (varintLength(value) !== want.length) return `varintLength(${value}) ${varintLength(value)} vs ${want.length}`;
  const buf = Buffer.alloc(want.length + 1, 0xee);
  const end = putVarint(buf, 1, value);
  if (end !== want.length + 1 || !buf.subarray(1).equals(want)) return `putVarint(${value}): ${buf.subarray(1).toString('hex')} vs ${want.toString('hex')}`;
  const r = new ByteReader(buf, 1);
  const back = r.varint();
  if (back !== value || r.pos !== end) return `read back ${back} at ${r.pos} for ${value}`;
  return undefined;
}

t.test('every length boundary, and the largest safe integer', (t) => {
  const values = [0, 1, 127, Number.MAX_SAFE_INTEGER];
  for (let k = 1; k <= 7; k++) values.push(2 ** (7 * k) - 1, 2 ** (7 * k), 2 ** (7 * k) + 1);
  for (const v of values) t.equal(check(v), undefined, `value ${v}`);
  t.end();
});

t.test('any safe integer, and times in ms around now', (t) => {
  fc.assert(fc.property(fc.oneof(fc.maxSafeNat(), fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 })), (v) => check(v) === undefined), { numRuns: 5000 });
  t.pass('5000 values encode as the reference does');
  t.end();
});
