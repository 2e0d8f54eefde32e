// Read fan-out 'quorum' (get_fsm.ts ReadFanout, the server's setting): a read asks R replicas
// first (this node's own replica locally) and the rest only when needed: a replacement for a
// failed one, all of them when the answers disagree (so read repair reaches every replica), when
// the first wave leaves the decision open, or when no decision came by the hedge time.
import t from 'tap';
import { startCluster, values } from './fsm_cluster.js';

const set = (v: string) => ({ value: Buffer.from(v), expiresAtMs: 0 });
const QUORUM_FANOUT = { readFanout: 'quorum' as const, readQuorum: 2, writeQuorum: 2 };

t.test('a healthy R=2 read asks this node and ONE other replica; R=1 reads locally only', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, writeQuorum: 3 } });
  const [a] = c.ids as [string];
  const key = Buffer.from('healthy');
  await c.node(a).put(key, set('v'));
  await c.idle();
  const before = c.net.delivered.get;
  for (let i = 0; i < 4; i++) t.same(values(await c.node(a).get(key)), ['v'], `read ${i + 1}`);
  await c.idle();
  t.equal(c.net.delivered.get - before, 4, 'one remote replica get per read');
  t.equal(c.node(a).stats.readRepairsSent, 0, 'agreeing replicas: no repair');
  const before1 = c.net.delivered.get;
  t.same(values(await c.node(a).get(key, { r: 1 })), ['v'], 'R=1');
  t.equal(c.net.delivered.get, before1, 'R=1 on a replica: no remote get at all');
  c.settings = { ...c.settings, readFanout: 'all' };
  const beforeAll = c.net.delivered.get;
  await c.node(a).get(key);
  await c.idle();
  t.equal(c.net.delivered.get - beforeAll, 2, "fan-out 'all' asks both other replicas");
});

t.test('a stale replica is repaired: read through it at once, or within two reads through another replica', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT });
  const [a, b, d] = c.ids as [string, string, string];
  for (const [name, via] of [['through-stale', d], ['through-fresh', a]] as const) {
    const key = Buffer.from(name);
    await c.node(a).put(key, set('old'), { w: 3 });
    c.net.faults.set(`${a}>${d}`, 'refuse');
    await c.node(a).put(key, set('new'));
    await c.idle();
    c.net.heal();
    t.same(values(await c.keyspace(d).readObject(key)), ['old'], `${name}: d is stale`);
    // Consecutive reads through one node start at the next other replica: within two reads
    // both are asked (a read through d itself sees the difference at once).
    for (let i = 0; i < 2; i++) {
      t.same(values(await c.node(via).get(key)), ['new'], `${name}: read ${i + 1} answers the newest value`);
      await c.idle();
    }
    t.same(values(await c.keyspace(d).readObject(key)), ['new'], `${name}: d was repaired`);
    t.same(values(await c.keyspace(b).readObject(key)), ['new'], `${name}: b untouched`);
  }
});

t.test('a replica that refuses is replaced by the next one', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT });
  const [a, b] = c.ids as [string, string];
  const key = Buffer.from('replaced');
  await c.node(a).put(key, set('v'), { w: 3 });
  await c.idle();
  c.net.faults.set(`${a}>${b}`, 'refuse'); // a does not know b is unreachable
  for (let i = 0; i < 2; i++) t.same(values(await c.node(a).get(key)), ['v'], `read ${i + 1} still meets R=2`);
});

t.test('a silent replica: the other is asked at the hedge time, the read succeeds before its deadline', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, requestTimeoutMs: 1000 } });
  const [a, b] = c.ids as [string, string];
  const key = Buffer.from('hedged');
  await c.node(a).put(key, set('v'), { w: 3 });
  await c.idle();
  c.net.faults.set(`${a}>${b}`, 'blackhole');
  for (let i = 0; i < 2; i++) t.same(values(await c.node(a).get(key)), ['v'], `read ${i + 1} meets R=2 without b`);
  c.net.heal();
});

t.test('notfound_ok off: a first wave of notfounds asks the rest before deciding', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, notfoundOk: false } });
  const [x, y, z] = c.ids as [string, string, string];
  const key = Buffer.from('only-on-x');
  c.net.partition([[x], [y, z]], 'refuse', false);
  await c.node(x).put(key, set('found'), { w: 1 });
  c.net.heal();
  t.same(values(await c.node(y).get(key, { r: 1 })), ['found'], 'R=1 at y: its own notfound does not decide, x is asked');
  await c.idle();
  t.same(values(await c.keyspace(y).readObject(key)), ['found'], 'and y was repaired');
  t.same(values(await c.keyspace(z).readObject(key)), ['found'], 'and z');
});
