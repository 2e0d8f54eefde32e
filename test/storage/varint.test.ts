// storage/varint.ts at every length boundary up to 2^53 - 1 (times in ms are over 2^31, where the
// low 7 bits are computed on a double): putVarint gives the LEB128 bytes a BigInt reference gives,
// varintLength their length, and ByteReader.varint reads them back.
import { ByteReader, putVarint, varintLength } from '../../src/storage/varint.js';
import { leb128Reference, varintReferenceTests } from '../helpers/leb128.js';

function check(value: number): string | undefined {
  const want = leb128Reference(value);
  if (varintLength(value) !== want.length) return `varintLength(${value}) ${varintLength(value)} vs ${want.length}`;
  const buf = Buffer.alloc(want.length + 1, 0xee);
  const end = putVarint(buf, 1, value);
  if (end !== want.length + 1 || !buf.subarray(1).equals(want)) return `putVarint(${value}): ${buf.subarray(1).toString('hex')} vs ${want.toString('hex')}`;
  const r = new ByteReader(buf, 1);
  const back = r.varint();
  if (back !== value || r.pos !== end) return `read back ${back} at ${r.pos} for ${value}`;
  return undefined;
}

varintReferenceTests(check);
