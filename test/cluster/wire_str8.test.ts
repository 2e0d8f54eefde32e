// ByteReader.str8: u8-prefixed UTF-8 strings read in place (empty, ASCII, multi-byte, at the
// 255-byte limit), the reader's position after each, and the refusals with their messages.
import t from 'tap';
import { ClusterError } from '../../src/cluster/errors.js';
import { ByteReader, ByteWriter } from '../../src/cluster/wire.js';

function decodeMessage(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof ClusterError) return err.message;
    throw err;
  }
  return '(none)';
}

t.test('strings round-trip and the position moves past each', async (t) => {
  const strings = ['', 'node-1', '', 'dc-é-∑', 'x'.repeat(255), ''];
  const w = new ByteWriter(1024);
  for (const s of strings) w.str8(s, 255).u8(0xab);
  const r = new ByteReader(w.finish());
  for (const s of strings) {
    t.equal(r.str8(255, 'id'), s);
    t.equal(r.u8(), 0xab, `the byte after ${JSON.stringify(s.slice(0, 8))} is read next`);
  }
  r.end('strings');
});

t.test('a string inside a larger buffer at an offset reads only its own bytes', async (t) => {
  const backing = Buffer.from([9, 9, 3, 0x61, 0x62, 0x63, 0x64, 9]);
  const r = new ByteReader(backing.subarray(2, 7));
  t.equal(r.str8(16, 'id'), 'abc');
  t.equal(r.remaining, 1);
});

t.test('refusals name the field and the numbers', async (t) => {
  t.equal(decodeMessage(() => new ByteReader(Buffer.alloc(0)).str8(8, 'hint node id')), 'truncated hint node id length: need 1 bytes, 0 left');
  t.equal(decodeMessage(() => new ByteReader(Buffer.from([5, 0x61, 0x62])).str8(8, 'hint node id')), 'truncated hint node id: need 5 bytes, 2 left');
  t.equal(decodeMessage(() => new ByteReader(Buffer.from([9, ...Buffer.alloc(9)])).str8(8, 'node id')), 'node id of 9 bytes outside [0, 8]');
  t.equal(decodeMessage(() => new ByteReader(Buffer.from([0])).str8(8, 'node id', 1)), 'node id of 0 bytes outside [1, 8]');
});
