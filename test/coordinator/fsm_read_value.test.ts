// Coordinator.getValue (GET's read, get_fsm.ts runGetValue): when every counted answer is this
// node's own stored bytes of its plain shape (one clock entry of its actor, one sibling), the read
// resolves with the live value itself (a Buffer) or null, with no object decoded; in every other
// case with get()'s merged object. Either way the live values equal those of get()'s object, and
// the quorum decisions and read repair are get()'s.
import t from 'tap';
import { encodeObject, type VersionedObject } from '../../src/coordinator/object.js';
import type { ReadValue } from '../../src/coordinator/get_fsm.js';
import { startCluster, values, type TestCluster } from './fsm_cluster.js';

const set = (v: string, expiresAtMs = 0) => ({ value: Buffer.from(v), expiresAtMs });
const DEL = { value: null, expiresAtMs: 0 };
const QUORUM_FANOUT = { readFanout: 'quorum' as const, readQuorum: 2, writeQuorum: 2 };

/** The live values a ReadValue stands for, as strings. */
function valuesOf(r: ReadValue, nowMs: number): string[] {
  if (r === null) return [];
  if (Buffer.isBuffer(r)) return [r.toString()];
  return values(r as VersionedObject, nowMs);
}

async function both(c: TestCluster, via: string, key: Buffer, nowMs: number, opts: { r?: number } = {}): Promise<{ value: ReadValue; object: VersionedObject }> {
  const value = await c.node(via).getValue(key, nowMs, opts);
  await c.idle();
  const object = await c.node(via).get(key, opts);
  await c.idle();
  return { value, object };
}

for (const getsAsBytes of [true, false]) {
  t.test(`replicas in sync (gets as bytes: ${getsAsBytes}): the value itself, no repair`, async (t) => {
    const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, writeQuorum: 3 }, getsAsBytes });
    const [a] = c.ids as [string];
    const key = Buffer.from('in-sync');
    await c.node(a).put(key, set('v'));
    await c.idle();
    const now = Date.now();
    const r = await c.node(a).getValue(key, now);
    await c.idle();
    if (getsAsBytes) {
      t.ok(Buffer.isBuffer(r), 'a Buffer: the answers were this node\'s bytes');
      t.equal(c.node(a).stats.readAnswersSameBytes, 1, 'the remote answer compared equal');
    }
    t.same(valuesOf(r, now), ['v'], 'the value');
    t.equal(c.node(a).stats.readRepairsSent, 0, 'no repair');
    // A tombstone and an expired value: null (no live value), as get() has none.
    const gone = Buffer.from('deleted');
    await c.node(a).put(gone, set('x'));
    await c.node(a).put(gone, DEL);
    await c.idle();
    const d = await both(c, a, gone, Date.now());
    if (getsAsBytes) t.equal(d.value, null, 'deleted: null');
    t.same(valuesOf(d.value, Date.now()), values(d.object), 'deleted: as get()');
    const exp = Buffer.from('expiring');
    const at = Date.now() + 60_000;
    await c.node(a).put(exp, set('e', at));
    await c.idle();
    const before = await both(c, a, exp, at);
    t.same(valuesOf(before.value, at), ['e'], 'live at its expiry');
    const after = await both(c, a, exp, at + 1);
    if (getsAsBytes) t.equal(after.value, null, 'expired: null');
    t.same(valuesOf(after.value, at + 1), values(after.object, at + 1), 'expired: as get()');
    // Absent: get()'s empty object.
    const none = await c.node(a).getValue(Buffer.from('never-written'), Date.now());
    t.same(valuesOf(none, Date.now()), [], 'absent: no value');
    t.equal(c.node(a).stats.readRepairsSent, 0, 'still no repair');
  });
}

t.test('another actor\'s object (written through another node): get()\'s object', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, writeQuorum: 3 }, getsAsBytes: true });
  const [a, b] = c.ids as [string, string];
  const key = c.keyWithPreflist((p) => p[0] === b);
  await c.node(b).put(key, set('from-b'));
  await c.idle();
  const r = await c.node(a).getValue(key, Date.now());
  t.notOk(Buffer.isBuffer(r) || r === null, 'not this node\'s plain shape: an object');
  t.same(valuesOf(r, Date.now()), ['from-b'], 'its value');
});

t.test('a stale replica: merged object, repaired as get() repairs', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  for (const via of [a, d]) {
    const key = Buffer.from(`stale-via-${via.slice(0, 6)}`);
    await c.node(a).put(key, set('old'), { w: 3 });
    c.net.faults.set(`${a}>${d}`, 'refuse');
    await c.node(a).put(key, set('new'));
    await c.idle();
    c.net.heal();
    t.same(values(await c.keyspace(d).readObject(key)), ['old'], 'd is stale');
    for (let i = 0; i < 2; i++) {
      const r = await c.node(via).getValue(key, Date.now());
      t.same(valuesOf(r, Date.now()), ['new'], `read ${i + 1}: the newest value`);
      await c.idle();
    }
    t.same(values(await c.keyspace(d).readObject(key)), ['new'], 'd was repaired');
    t.same(encodeObject(await c.keyspace(d).readObject(key)), encodeObject(await c.keyspace(b).readObject(key)), 'd and b hold the same bytes');
  }
});

t.test('this node stale, a remote answer newer: the merge, and this node repaired', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, readQuorum: 3 }, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = c.keyWithPreflist((p) => p[0] === a);
  await c.node(a).put(key, set('old'), { w: 3 });
  // b writes through a partition that keeps a out: a's plain object is now behind.
  c.net.partition([[a], [b, d]], 'refuse', false);
  const cur = await c.node(b).get(key, { r: 2 });
  await c.node(b).put(key, { ...set('new'), context: cur.clock }, { w: 2 });
  c.net.heal();
  await c.idle();
  const r = await c.node(a).getValue(key, Date.now());
  t.notOk(Buffer.isBuffer(r), 'answers differ: not the local bytes');
  t.same(valuesOf(r, Date.now()), ['new'], 'the newer value');
  await c.idle();
  t.same(values(await c.keyspace(a).readObject(key)), ['new'], 'this node repaired');
});

t.test('concurrent writes (siblings): both values, as an object', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('conflict');
  c.net.partition([[a], [b, d]], 'refuse', false);
  await c.node(a).put(key, set('from-a'), { w: 1 });
  await c.node(b).put(key, set('from-b'), { w: 1 });
  c.net.heal();
  const r = await c.node(a).getValue(key, Date.now(), { r: 3 });
  t.same(valuesOf(r, Date.now()).sort(), ['from-a', 'from-b'], 'both siblings');
  await c.idle();
  for (const id of [a, b, d]) t.same(values(await c.keyspace(id).readObject(key)).sort(), ['from-a', 'from-b'], `${id.slice(0, 6)} repaired to both siblings`);
});

t.test('quorum errors are get()\'s: R not met rejects NOQUORUM', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('corrupt-answers');
  await c.node(a).put(key, set('v'), { w: 3 });
  await c.idle();
  c.net.corruptGetsFrom.add(b);
  t.same(valuesOf(await c.node(a).getValue(key, Date.now()), Date.now()), ['v'], 'one corrupt answer: R=2 still met');
  await c.idle();
  c.net.corruptGetsFrom.add(d);
  await t.rejects(c.node(a).getValue(key, Date.now()), { code: 'NOQUORUM' }, 'both remote answers corrupt');
  await c.idle();
});

t.test('random writes through random nodes: getValue\'s values are always get()\'s', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const keys = ['k0', 'k1', 'k2', 'k3'].map((k) => Buffer.from(k));
  let plain = 0;
  for (let step = 0; step < 60; step++) {
    const key = keys[rnd(keys.length)]!;
    const via = c.ids[rnd(c.ids.length)]!;
    const op = rnd(4);
    if (op === 0) await c.node(via).put(key, DEL);
    else if (op === 1) await c.node(via).put(key, set(`v${step}`, Date.now() + 50_000));
    else await c.node(via).put(key, set(`v${step}`));
    await c.idle();
    const reader = c.ids[rnd(c.ids.length)]!;
    const now = Date.now();
    const r = await c.node(reader).getValue(key, now);
    await c.idle();
    if (r === null || Buffer.isBuffer(r)) plain++;
    const obj = await c.node(reader).get(key);
    await c.idle();
    t.same(valuesOf(r, now), values(obj, now), `step ${step}`);
  }
  t.ok(plain > 0, `some reads took the value without a decode (${plain})`);
});
