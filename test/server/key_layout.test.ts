import t from 'tap';
import { keySlot } from '../../src/coordinator/slot.js';
import {
  DATA_KEY_PREFIX_BYTES,
  dataKey,
  dataKeyOfRange,
  keyArgName,
  keyRangeName,
  keySlotOfRange,
  LOOKUP_SCRATCH_MAX_BYTES,
  lookupDataKey,
  lookupDataKeyOfRange,
  NAMESPACE_DATA,
  slotOf,
  userKeyOf,
} from '../../src/server/key_layout.js';

t.test('dataKey: namespace, big-endian slot, user key', async (t) => {
  const k = Buffer.from('{user}:1');
  const ek = dataKey(k);
  t.equal(ek[0], NAMESPACE_DATA);
  t.equal(slotOf(ek), keySlot(k));
  t.same(userKeyOf(ek), k);
  t.equal(ek.length, DATA_KEY_PREFIX_BYTES + k.length);
});

t.test('lookupDataKey has dataKey bytes, for every length around the scratch limit', async (t) => {
  for (let n = 0; n <= LOOKUP_SCRATCH_MAX_BYTES + 3; n++) {
    const k = Buffer.alloc(n);
    for (let i = 0; i < n; i++) k[i] = (i * 37 + n) & 0xff;
    t.same(lookupDataKey(k), dataKey(k), `user key of ${n} bytes`);
  }
});

t.test('lookupDataKey reuses one buffer per length: valid until the next call', async (t) => {
  const a = lookupDataKey(Buffer.from('key:000000000001'));
  const aBytes = Buffer.from(a);
  const b = lookupDataKey(Buffer.from('key:000000000002'));
  t.equal(a, b, 'same scratch for the same length');
  t.same(b, dataKey(Buffer.from('key:000000000002')));
  t.notSame(a, aBytes, 'the earlier answer was overwritten (callers must not keep it)');
  const long = Buffer.alloc(LOOKUP_SCRATCH_MAX_BYTES, 0x61);
  t.not(lookupDataKey(long), lookupDataKey(long), 'a long key gets a fresh buffer');
});

t.test('the *OfRange forms answer what the Buffer forms answer for the same key bytes', async (t) => {
  const keys = ['', 'a', 'key:000000000042', '{user}:1', 'x{user}y', '{}a', 'a{}b{c}', '{a', 'a}b{', '{{a}}', 'a{b}{c}'];
  for (let n = 0; n <= LOOKUP_SCRATCH_MAX_BYTES + 3; n++) {
    let k = '';
    for (let i = 0; i < n; i++) k += String.fromCharCode(((i * 37 + n) % 95) + 32); // includes { and }
    keys.push(k);
  }
  for (const k of keys) {
    const key = Buffer.from(k, 'latin1');
    // The key inside a larger buffer, with braces around it that must not count.
    const buf = Buffer.concat([Buffer.from('{x}'), key, Buffer.from('}{y}')]);
    const start = 3;
    const end = 3 + key.length;
    t.equal(keySlotOfRange(buf, start, end), keySlot(key), `slot of ${JSON.stringify(k)}`);
    t.same(dataKeyOfRange(buf, start, end), dataKey(key), `dataKey of ${JSON.stringify(k)}`);
    t.same(lookupDataKeyOfRange(buf, start, end), dataKey(key), `lookupDataKey of ${JSON.stringify(k)}`);
    t.equal(keyRangeName(buf, start, end), keyArgName(Buffer.from(key)), `name of ${JSON.stringify(k)}`);
  }
  const buf = Buffer.from('abcabc');
  t.equal(keyRangeName(buf, 0, 3), 'abc');
  t.equal(keyRangeName(buf, 1, 4), 'bca', 'another range of the same buffer is not the remembered one');
});
