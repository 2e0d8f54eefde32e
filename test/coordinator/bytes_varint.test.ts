// Varints of src/coordinator/bytes.ts at every length boundary, up to 2^53 - 1 (times in ms are
// over 2^31, where the low 7 bits are computed on a double): writeVarint and ByteWriter.varint
// give the LEB128 bytes a BigInt reference gives, and ByteReader reads them back.
import { ByteReader, ByteWriter, varintLength, writeVarint } from '../../src/coordinator/bytes.js';
import { leb128Reference, varintReferenceTests } from '../helpers/leb128.js';

function check(value: number): string | undefined {
  const want = leb128Reference(value);
  const buf = Buffer.alloc(varintLength(value));
  const end = writeVarint(buf, 0, value);
  if (end !== want.length || !buf.equals(want)) return `writeVarint(${value}): ${buf.toString('hex')} vs ${want.toString('hex')}`;
  const w = new ByteWriter();
  w.varint(value);
  const bytes = w.finish();
  if (!bytes.equals(want)) return `ByteWriter.varint(${value}): ${bytes.toString('hex')} vs ${want.toString('hex')}`;
  const back = new ByteReader(bytes, (m) => new Error(m)).varint('v', Number.MAX_SAFE_INTEGER);
  if (back !== value) return `read back ${back} for ${value}`;
  return undefined;
}

varintReferenceTests(check);
