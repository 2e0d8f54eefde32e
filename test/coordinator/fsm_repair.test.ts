// Read path: read repair, notfound handling (notfound_ok), sloppy quorum with hinted fallbacks.
import t from 'tap';
import { encodeObject } from '../../src/coordinator/object.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { startCluster, values, type TestCluster } from './fsm_cluster.js';

const set = (v: string) => ({ value: Buffer.from(v), expiresAtMs: 0 });

async function replicaBytes(c: TestCluster, key: Buffer, ids: readonly string[] = c.ids): Promise<string[]> {
  return Promise.all(ids.map(async (id) => encodeObject(await c.keyspace(id).readObject(key)).toString('hex')));
}

t.test('read repair converges a replica that missed a write', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('missed');
  await c.node(a).put(key, set('old'));
  await c.idle();

  // d misses the next write: its link from a is cut, a does not know.
  c.net.faults.set(`${a}>${d}`, 'refuse');
  await c.node(a).put(key, set('new'));
  await c.idle();
  t.same(values(await c.keyspace(d).readObject(key)), ['old'], 'd is stale');
  c.net.heal();

  // Hold a's answer so the first R=2 answers are b's (fresh) and d's (stale): the reply is the merge.
  c.net.hold(b, a);
  const got = await c.node(b).get(key);
  t.same(values(got), ['new'], 'the merged answer wins over the stale one');
  t.equal(c.node(b).stats.readRepairsSent, 0, 'no repair before every answer is in (or the deadline)');
  c.net.release(b, a);
  await c.idle();
  t.same(values(await c.keyspace(d).readObject(key)), ['new'], 'd was repaired');
  t.ok(c.node(b).stats.readRepairsDone >= 1, 'counted');
  t.equal(new Set(await replicaBytes(c, key)).size, 1, 'all replicas identical');

  // A converged key is not repaired again.
  const sent = c.node(b).stats.readRepairsSent;
  await c.node(b).get(key);
  await c.idle();
  t.equal(c.node(b).stats.readRepairsSent, sent, 'nothing to repair');
});

t.test('read repair spreads a delete, never resurrects the old value', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3 });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('deleted');
  await c.node(a).put(key, set('alive'));
  await c.idle();
  c.net.faults.set(`${a}>${d}`, 'refuse');
  await c.node(a).put(key, { value: null, expiresAtMs: 0 });
  await c.idle();
  t.same(values(await c.keyspace(d).readObject(key)), ['alive'], 'd missed the delete');
  c.net.heal();
  t.same(values(await c.node(d).get(key, { r: 3 })), [], 'read via the stale node: deleted');
  await c.idle();
  for (const id of [a, b, d]) {
    const obj = await c.keyspace(id).readObject(key);
    t.same(values(obj), [], 'no live value anywhere');
    t.equal(obj.siblings.length, 1, 'the tombstone is kept');
  }
});

t.test('notfound handling (notfound_ok)', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { requestTimeoutMs: 1000 } });
  const [x, y, z] = c.ids as [string, string, string];
  const key = Buffer.from('only-on-x');
  // Only x stores the key: its fan-out is refused, W=1.
  c.net.partition([[x], [y, z]], 'refuse', false);
  await c.node(x).put(key, set('lonely'), { w: 1 });
  c.net.heal();
  c.net.hold(y, x); // x's answer to a read via y comes last

  t.same(values(await c.node(y).get(key, { r: 1 })), [], 'notfound_ok, R=1: the first answer (a notfound) decides');
  t.equal((await c.node(y).get(key, { r: 2 })).siblings.length, 0, 'notfound_ok, R=2: two notfounds decide');
  t.equal(c.net.release(y, x), 2);
  await c.idle();
  t.same(values(await c.keyspace(y).readObject(key)), ['lonely'], 'x answered later: read repair fixed y');
  t.same(values(await c.keyspace(z).readObject(key)), ['lonely'], 'and z');

  const key2 = Buffer.from('only-on-x-2');
  c.net.heal();
  c.net.partition([[x], [y, z]], 'refuse', false);
  await c.node(x).put(key2, set('found'), { w: 1 });
  c.net.heal();
  c.net.hold(y, x);
  c.settings = { ...c.settings, notfoundOk: false };
  let answered = false;
  const pending = c.node(y).get(key2, { r: 1 }).then((o) => {
    answered = true;
    return o;
  });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(answered, 'notfound_ok off, R=1: two notfounds do not answer while x may still have it');
  c.net.release(y, x);
  t.same(values(await pending), ['found'], 'x had it');
  t.same(values(await c.node(y).get(Buffer.from('nowhere'), { r: 2 })), [], 'notfound_ok off: all notfound is notfound, not an error');
});

t.test('sloppy quorum: a fallback stands in for a down primary, with a hint', async (t) => {
  const c = await startCluster(t, { nodes: 4, n: 3, settings: { writeQuorum: 3, readQuorum: 3 } });
  const key = Buffer.from('sloppy');
  const slot = keySlot(key);
  const pref = c.ring().preflist(slot);
  const [p0, , p2] = pref as [string, string, string];
  const spare = c.ids.find((id) => !pref.includes(id))!;
  // p2 is down and everyone knows it.
  c.net.isolate(p2, 'refuse', true);
  const stored = await c.node(p0).put(key, set('hinted'));
  t.same(values(stored), ['hinted'], 'W=3 met with the fallback');
  await c.idle();
  t.equal(c.node(spare).stats.hintedPutsReceived, 1, 'the fallback got a hinted copy');
  t.same(values(await c.keyspace(spare).readObject(key)), ['hinted']);
  t.same(values(await c.node(p0).get(key)), ['hinted'], 'R=3 met with the fallback');

  c.settings = { ...c.settings, sloppyQuorum: false };
  await t.rejects(c.node(p0).put(key, set('strict')), {
    message: 'NOQUORUM write: 0 of 3 replicas acknowledged (the write may be partially applied)',
  }, 'sloppy-quorum no: W=3 of the primaries cannot be met');
  await t.rejects(c.node(p0).get(key), { message: /^NOQUORUM read: \d of 3 replicas answered$/ });
  c.settings = { ...c.settings, writeQuorum: 2, readQuorum: 2 };
  await c.node(p0).put(key, set('strict'));
  t.same(values(await c.node(p0).get(key)), ['strict'], 'W=2/R=2 of the primaries still works');
  await c.idle();
  t.same(values(await c.keyspace(spare).readObject(key)), ['hinted'], 'without sloppy quorum the fallback is not written');
});

t.test('read repairs in flight are bounded; past the cap they are skipped and counted', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, maxReadRepairsInFlight: 1 });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('bounded');
  // Only a has the write; b and d are both stale.
  c.net.partition([[a], [b, d]], 'refuse', false);
  await c.node(a).put(key, set('v'), { w: 1 });
  c.net.heal();
  // Both stale replicas are found at once: the first repair takes the only slot.
  await c.node(a).get(key, { r: 3 });
  t.equal(c.node(a).stats.readRepairsSent, 1, 'one repair sent');
  t.equal(c.node(a).stats.readRepairsSkipped, 1, 'the other skipped at the cap');
  await c.idle();
  t.equal(c.node(a).stats.readRepairsDone, 1);
  const stale = await Promise.all([b, d].map(async (id) => values(await c.keyspace(id).readObject(key)).length));
  t.same(stale.sort(), [0, 1], 'one of the two replicas repaired');
  // The next read repairs what was skipped.
  await c.node(a).get(key, { r: 3 });
  await c.idle();
  for (const id of [a, b, d]) t.same(values(await c.keyspace(id).readObject(key)), ['v'], 'converged');
});

t.test('sameClockTimes: read repair also evens out the pruning timestamps', async (t) => {
  const { sameClockTimes } = await import('../../src/coordinator/get_fsm.js');
  const clock = new Map([
    ['a', 2],
    ['b', 1],
  ]);
  const base = { clock, siblings: [] };
  t.ok(sameClockTimes({ ...base, clockTimesMs: new Map([['a', 5], ['b', 7]]) }, { ...base, clockTimesMs: new Map([['a', 5], ['b', 7]]) }));
  t.notOk(sameClockTimes({ ...base, clockTimesMs: new Map([['a', 5], ['b', 6]]) }, { ...base, clockTimesMs: new Map([['a', 5], ['b', 7]]) }), 'one entry differs');
  t.ok(sameClockTimes(base, { ...base, clockTimesMs: new Map([['a', 0]]) }), 'missing counts as 0');
  t.notOk(sameClockTimes(base, { ...base, clockTimesMs: new Map([['b', 3]]) }));
});
