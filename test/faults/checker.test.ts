// The nothing-lost checker (checker.ts) on hand-made histories: each verdict is produced by the
// history that should produce it and by nothing milder.
import t from 'tap';
import { check, type FinalKey, type ReadRecord, type WriteRecord } from './checker.js';

let clock = 0;
function w(kind: WriteRecord['kind'], key: string, value: string | null, covers: string[] | null, outcome: 'ok' | 'unknown' = 'ok'): WriteRecord {
  clock += 10;
  return { kind, key, value, covers, outcome, startMs: clock, endMs: clock + 5, node: 0 };
}
const fin = (values: string[] | null, replicasEqual = true): FinalKey => ({ values, replicasEqual });
const finals = (o: Record<string, FinalKey>): Map<string, FinalKey> => new Map(Object.entries(o));
const none: ReadRecord[] = [];

t.test('a causal chain that ends in its last value is clean', async (t) => {
  const h = [w('setctx', 'k', 'a', []), w('setctx', 'k', 'b', ['a']), w('setctx', 'k', 'c', ['b'])];
  const r = check(h, none, finals({ k: fin(['c']) }));
  t.ok(r.ok);
  t.equal(r.acknowledged, 3);
  t.equal(r.lost.length, 0);
});

t.test('an acknowledged value missing and covered by nobody is lost', async (t) => {
  // Two writers concurrently replaced 'a' (a partition); last-write-wins kept only one side.
  const h = [w('setctx', 'k', 'a', []), w('setctx', 'k', 'x', ['a']), w('setctx', 'k', 'y', ['a'])];
  const r = check(h, none, finals({ k: fin(['y']) }));
  t.notOk(r.ok);
  t.same(r.lost.map((f) => f.value), ['x']);
  const siblings = check(h, none, finals({ k: fin(['x', 'y']) }));
  t.ok(siblings.ok, 'both kept as siblings: nothing lost');
});

t.test('a value covered by an indeterminate write may be gone; an indeterminate value may be missing', async (t) => {
  const h = [w('setctx', 'k', 'a', []), w('setctx', 'k', 'b', ['a'], 'unknown')];
  t.ok(check(h, none, finals({ k: fin(['b']) })).ok, 'the indeterminate write took effect');
  t.ok(check(h, none, finals({ k: fin(['a']) })).ok, 'it did not');
  const r = check(h, none, finals({ k: fin(['a']) }));
  t.equal(r.indeterminate, 1);
  t.equal(r.acknowledged, 1);
});

t.test('an acknowledged DELCTX removes what it covered; the value coming back is a resurrection', async (t) => {
  const h = [w('setctx', 'k', 'a', []), w('delctx', 'k', null, ['a'])];
  t.ok(check(h, none, finals({ k: fin([]) })).ok);
  const r = check(h, none, finals({ k: fin(['a']) }));
  t.same(r.resurrected.map((f) => f.value), ['a']);
  t.notOk(r.ok);
});

t.test('a superseded value back next to its successor is a resurrection', async (t) => {
  const h = [w('setctx', 'k', 'a', []), w('setctx', 'k', 'b', ['a'])];
  const r = check(h, none, finals({ k: fin(['a', 'b']) }));
  t.same(r.resurrected.map((f) => f.value), ['a']);
});

t.test('an indeterminate covering write does not make the covered value a resurrection', async (t) => {
  const h = [w('setctx', 'k', 'a', []), w('setctx', 'k', 'b', ['a'], 'unknown')];
  t.ok(check(h, none, finals({ k: fin(['a', 'b']) })).ok);
});

t.test('values never written are phantoms, in reads or at the end', async (t) => {
  const h = [w('setctx', 'k', 'a', [])];
  t.same(check(h, none, finals({ k: fin(['a', 'zz']) })).phantoms.map((f) => f.value), ['zz']);
  t.same(check(h, [{ key: 'k', values: ['q'] }], finals({ k: fin(['a']) })).phantoms.map((f) => f.value), ['q']);
  t.same(check(h, none, finals({ other: fin(['a']) })).phantoms.map((f) => f.key), ['other'], 'a value of another key');
});

t.test('divergent replicas and unreadable keys fail the check', async (t) => {
  const h = [w('setctx', 'k', 'a', [])];
  t.same(check(h, none, finals({ k: fin(['a'], false) })).divergent, ['k']);
  t.same(check(h, none, finals({ k: fin(null) })).unreadable, ['k']);
  t.same(check(h, none, finals({})).unreadable, ['k'], 'a key with acknowledged writes not read at all');
  t.ok(check([w('setctx', 'u', 'a', [], 'unknown')], none, finals({})).ok, 'only indeterminate writes: nothing to find');
});

t.test('plain SET/DEL keys: the last acknowledged value must survive unless a later write took effect', async (t) => {
  const h = [w('set', 'p', 'a', null), w('set', 'p', 'b', null), w('set', 'p', 'c', null, 'unknown')];
  t.ok(check(h, none, finals({ p: fin(['b']) })).ok, 'b survives, c did not happen');
  t.ok(check(h, none, finals({ p: fin(['c']) })).ok, 'c happened and superseded b');
  t.ok(check(h, none, finals({ p: fin(['a', 'b']) })).ok, 'b did not see a: siblings are allowed');
  const r = check(h, none, finals({ p: fin(['a']) }));
  t.same(r.lost.map((f) => f.value), ['b'], 'b gone, a back, c never seen: b is lost');
  const withSeenC = check(h, [{ key: 'p', values: ['c'] }], finals({ p: fin(['a']) }));
  t.equal(withSeenC.lost.length, 0, 'c was seen during the run, so it took effect and may have superseded b');
  const del = [w('set', 'p', 'a', null), w('del', 'p', null, null, 'unknown')];
  t.ok(check(del, none, finals({ p: fin([]) })).ok, 'an indeterminate DEL may have removed it');
  t.ok(check(del, none, finals({ p: fin(['a']) })).ok, 'or not');
  t.same(check([w('set', 'p', 'a', null)], none, finals({ p: fin([]) })).lost.map((f) => f.value), ['a']);
});
