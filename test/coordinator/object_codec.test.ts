// Table tests of the object and context formats: round trips, canonical bytes, and every
// malformed input the decoders must reject with their typed errors. Random inputs are in
// object.property.test.ts.
import t from 'tap';
import { ByteWriter } from '../../src/coordinator/bytes.js';
import {
  MAX_ACTOR_BYTES,
  MAX_CLOCK_ENTRIES,
  MAX_CONTEXT_TOKEN_CHARS,
  MAX_SIBLINGS_LIMIT,
} from '../../src/coordinator/limits.js';
import {
  applyWrite,
  ContextError,
  CorruptObjectError,
  decodeContext,
  decodeObject,
  EMPTY_OBJECT,
  encodeContext,
  encodeObject,
  mergeObjects,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';

const OPTS: WriteOptions = { maxSiblings: 25, conflictPolicy: 'siblings', vclockMaxEntries: 50 };

function sample(): VersionedObject {
  let a = applyWrite(EMPTY_OBJECT, new Map(), 'node-a:1', { value: Buffer.from('hello'), writtenAtMs: 1700000000000, expiresAtMs: 0 }, OPTS);
  a = applyWrite(a, new Map(), 'node-a:1', { value: null, writtenAtMs: 1700000000001, expiresAtMs: 0 }, OPTS);
  const bObj = applyWrite(EMPTY_OBJECT, new Map(), 'nöde-b:2', { value: Buffer.alloc(300, 7), writtenAtMs: 5, expiresAtMs: 2 ** 53 - 1 }, OPTS);
  return mergeObjects(a, bObj, OPTS);
}

t.test('object round trip is exact and canonical', async (t) => {
  const obj = sample();
  const bytes = encodeObject(obj);
  const back = decodeObject(bytes);
  t.same(back, obj);
  t.same(encodeObject(back), bytes, 're-encoding gives the same bytes');
  t.same(decodeObject(encodeObject(EMPTY_OBJECT)), EMPTY_OBJECT);
  t.same([...encodeObject(EMPTY_OBJECT)], [0xd7, 0x01, 0x00, 0x00], 'empty object: magic, version, 0 entries, 0 siblings');
});

t.test('object decode rejects corrupt input with CorruptObjectError', async (t) => {
  const good = encodeObject(sample());
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['bad magic', Buffer.from([0x00, 0x01, 0, 0])],
    ['bad version', Buffer.from([0xd7, 0x02, 0, 0])],
    ['trailing byte', Buffer.concat([good, Buffer.from([0])])],
    ['clock count past limit', Buffer.from([0xd7, 0x01, ...varint(MAX_CLOCK_ENTRIES + 1)])],
    ['huge clock count', Buffer.from([0xd7, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f])],
    ['non-canonical varint', Buffer.from([0xd7, 0x01, 0x80, 0x00, 0])],
    ['sibling count past limit', Buffer.from([0xd7, 0x01, 0x00, ...varint(MAX_SIBLINGS_LIMIT + 1)])],
    ['sibling with empty clock', Buffer.from([0xd7, 0x01, 0x00, 0x01, 0x00, 0x01, 0, 0, 0])],
    ['actor too long', build((w) => { w.varint(1); w.varint(MAX_ACTOR_BYTES + 1); })],
    ['empty actor', build((w) => { w.varint(1); w.varint(0); })],
    ['actor length past the end', build((w) => { w.varint(1); w.varint(10); w.bytes(Buffer.from('abc')); })],
    ['invalid utf-8 actor', build((w) => { w.varint(1); w.varint(1); w.bytes(Buffer.from([0xff])); w.varint(1); w.varint(0); w.varint(0); })],
    ['actors out of order', build((w) => { w.varint(2); entry(w, 'b', 1); entry(w, 'a', 1); w.varint(0); })],
    ['duplicate actor', build((w) => { w.varint(2); entry(w, 'a', 1); entry(w, 'a', 2); w.varint(0); })],
    ['clock counter 0', build((w) => { w.varint(1); entry(w, 'a', 0); w.varint(0); })],
    ['sibling counter above clock', build((w) => { w.varint(1); entry(w, 'a', 1); w.varint(1); sib(w, 0, 2, 1, 0); })],
    ['sibling actor index out of range', build((w) => { w.varint(1); entry(w, 'a', 1); w.varint(1); sib(w, 1, 1, 1, 0); })],
    ['duplicate dot', build((w) => { w.varint(1); entry(w, 'a', 2); w.varint(2); sib(w, 0, 1, 1, 0); sib(w, 0, 1, 1, 0); })],
    ['siblings out of order', build((w) => { w.varint(1); entry(w, 'a', 2); w.varint(2); sib(w, 0, 1, 9, 0); sib(w, 0, 2, 1, 0); })],
    ['bad sibling kind', build((w) => { w.varint(1); entry(w, 'a', 1); w.varint(1); w.varint(0); w.varint(1); w.varint(1); w.varint(0); w.u8(2); })],
    ['value length past the end', build((w) => { w.varint(1); entry(w, 'a', 1); w.varint(1); w.varint(0); w.varint(1); w.varint(1); w.varint(0); w.u8(1); w.varint(2 ** 30); })],
    ['varint too long', Buffer.from([0xd7, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
  ];
  for (let cut = 0; cut < good.length; cut++) cases.push([`truncated at ${cut}`, good.subarray(0, cut)]);
  for (const [name, buf] of cases) {
    t.throws(() => decodeObject(buf), CorruptObjectError, name);
  }
  // The table's builders do produce a valid object when given valid fields.
  const ok = build((w) => { w.varint(1); entry(w, 'a', 2); w.varint(2); sib(w, 0, 1, 1, 0); sib(w, 0, 2, 9, 0); });
  t.equal(decodeObject(ok).siblings.length, 2);
});

t.test('context token round trip, format and rejection', async (t) => {
  const ctx = new Map([['a', 1], ['b', 2 ** 53 - 1], ['ñ', 3]]);
  const token = encodeContext(ctx);
  t.match(token, /^[A-Za-z0-9_-]+$/, 'printable base64url');
  t.same(decodeContext(token), ctx);
  t.equal(encodeContext(new Map([['b', 2 ** 53 - 1], ['ñ', 3], ['a', 1]])), token, 'independent of map order');
  t.same(decodeContext(encodeContext(new Map())), new Map());
  t.equal(encodeContext(new Map()), 'AQA');
  const bad: Array<[string, string]> = [
    ['empty', ''],
    ['not base64url', 'AQA='],
    ['space', 'AQ A'],
    ['plus', 'A+A'],
    ['non-canonical tail bits', 'AQB'],
    ['bad version', Buffer.from([2, 0]).toString('base64url')],
    ['trailing', Buffer.from([1, 0, 0]).toString('base64url')],
    ['count past limit', Buffer.from([1, ...varint(MAX_CLOCK_ENTRIES + 1)]).toString('base64url')],
    ['actor too long', Buffer.from([1, 1, MAX_ACTOR_BYTES + 1]).toString('base64url')],
    ['empty actor', Buffer.from([1, 1, 0, 1]).toString('base64url')],
    ['counter 0', Buffer.from([1, 1, 1, 0x61, 0]).toString('base64url')],
    ['unsorted', Buffer.from([1, 2, 1, 0x62, 1, 1, 0x61, 1]).toString('base64url')],
    ['truncated', Buffer.from([1, 2, 1, 0x62, 1]).toString('base64url')],
    ['too long', 'A'.repeat(MAX_CONTEXT_TOKEN_CHARS + 1)],
  ];
  for (const [name, tok] of bad) t.throws(() => decodeContext(tok), ContextError, name);
});

function varint(n: number): number[] {
  const w = new ByteWriter();
  w.varint(n);
  return [...w.finish()];
}
function build(body: (w: ByteWriter) => void): Buffer {
  const w = new ByteWriter();
  w.u8(0xd7);
  w.u8(0x01);
  body(w);
  return w.finish();
}
function entry(w: ByteWriter, actor: string, counter: number): void {
  const b = Buffer.from(actor);
  w.varint(b.length);
  w.bytes(b);
  w.varint(counter);
  w.varint(0);
}
function sib(w: ByteWriter, actorIndex: number, counter: number, at: number, exp: number): void {
  w.varint(actorIndex);
  w.varint(counter);
  w.varint(at);
  w.varint(exp);
  w.u8(0);
}
