// keySlot against the vectors of Redis's documentation and cluster specification, and the hash
// tag rules case by case. The expected numbers were also checked against redis-server 7.0
// (`CLUSTER KEYSLOT`) when this test was written.
import t from 'tap';
import { crc16, keySlot, SLOT_COUNT } from '../../src/coordinator/slot.js';

const slot = (s: string | Buffer): number => keySlot(typeof s === 'string' ? Buffer.from(s) : s);

t.test('CRC16/XMODEM check value', async (t) => {
  t.equal(crc16(Buffer.from('123456789')), 0x31c3, 'the standard check value of CRC-16/XMODEM');
  t.equal(crc16(Buffer.alloc(0)), 0);
});

t.test('Redis documentation vectors', async (t) => {
  const table: Array<[string, number]> = [
    ['somekey', 11058], // CLUSTER KEYSLOT docs
    ['foo', 12182],
    ['bar', 5061],
    ['foo{hash_tag}', 2515], // CLUSTER KEYSLOT docs
    ['bar{hash_tag}', 2515],
    ['hello', 866],
    ['', 0],
    // Asked of redis-server 7.0.15 with --cluster-enabled yes, CLUSTER KEYSLOT:
    ['foo{}{bar}', 8363],
    ['foo{{bar}}zap', 4015],
    ['{bar', 4015],
    ['a}b{c}', 7365],
    ['x{ }y', 9314],
    ['}{', 12793],
  ];
  for (const [key, want] of table) t.equal(slot(key), want, JSON.stringify(key));
});

t.test('hash tags exactly as Redis Cluster', async (t) => {
  t.equal(slot('{user1000}.following'), slot('{user1000}.followers'));
  t.equal(slot('{user1000}.following'), slot('user1000'));
  const table: Array<[string, string, string]> = [
    // key, what is hashed, why
    ['foo{}{bar}', 'foo{}{bar}', 'empty tag: the whole key'],
    ['foo{{bar}}zap', '{bar', 'first { then first } after it'],
    ['foo{bar}{zap}', 'bar', 'only the first tag'],
    ['{}', '{}', 'empty tag'],
    ['{', '{', 'no closing brace'],
    ['}{', '}{', 'closing brace before the opening one'],
    ['a}b{c', 'a}b{c', 'no } after the {'],
    ['a}b{c}', 'c', 'a } before the { is ignored'],
    ['{a}', 'a', 'whole key is a tag'],
    ['x{ }y', ' ', 'a space is a tag'],
  ];
  for (const [key, hashed, why] of table) t.equal(slot(key), crc16(Buffer.from(hashed)) % SLOT_COUNT, `${key}: ${why}`);
  t.not(slot('foo{}{bar}'), slot('bar'));
});

t.test('binary keys and range', async (t) => {
  t.equal(slot(Buffer.from([0x7b, 0x00, 0xff, 0x7d, 0x01])), crc16(Buffer.from([0x00, 0xff])) % SLOT_COUNT);
  for (let i = 0; i < 2000; i++) {
    const s = slot(`key:${i}`);
    if (s < 0 || s >= SLOT_COUNT || !Number.isInteger(s)) t.fail(`slot out of range: ${s}`);
  }
  // Spread: 100k keys land on nearly all slots.
  const used = new Set<number>();
  for (let i = 0; i < 100000; i++) used.add(slot(`key:${i}`));
  t.ok(used.size > 16000, `100k keys use ${used.size} slots`);
});

t.test('long keys (searched natively) and short keys (searched by a loop) agree on tags', async (t) => {
  for (const pad of [0, 10, 60, 61, 62, 63, 64, 65, 200]) {
    const filler = 'x'.repeat(pad);
    t.equal(slot(`${filler}{tag}rest`), slot('tag'), `tag after ${pad} bytes`);
    t.equal(slot(`{${filler}}`), pad === 0 ? crc16(Buffer.from('{}')) % SLOT_COUNT : slot(filler), `tag of ${pad} bytes`);
    t.equal(slot(`${filler}{`), crc16(Buffer.from(`${filler}{`)) % SLOT_COUNT, `no closing brace after ${pad} bytes`);
  }
  // A plain Uint8Array (not a Buffer) is a key too.
  t.equal(keySlot(new Uint8Array(Buffer.from('a{b}c'))), slot('b'));
});
