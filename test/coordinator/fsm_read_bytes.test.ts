// Reads over a transport that answers replica gets as bytes (ReplicaTransport.replicaGetBytesNotify,
// what the cluster bus offers): an answer byte-identical to this node's stored object is taken as
// that object without a decode (stats.readAnswersSameBytes); any other answer is decoded and goes
// through the same quorum, reconcile and read repair as before; one that does not decode counts
// as that replica's error.
import t from 'tap';
import { encodeObject } from '../../src/coordinator/object.js';
import { startCluster, values } from './fsm_cluster.js';

const set = (v: string) => ({ value: Buffer.from(v), expiresAtMs: 0 });
const QUORUM_FANOUT = { readFanout: 'quorum' as const, readQuorum: 2, writeQuorum: 2 };

t.test('replicas in sync: each read takes the remote answer as its own object, no repair', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { ...QUORUM_FANOUT, writeQuorum: 3 }, getsAsBytes: true });
  const [a] = c.ids as [string];
  const key = Buffer.from('in-sync');
  await c.node(a).put(key, set('v'));
  await c.idle();
  const before = c.net.delivered.get;
  for (let i = 0; i < 4; i++) t.same(values(await c.node(a).get(key)), ['v'], `read ${i + 1}`);
  await c.idle();
  t.equal(c.net.delivered.get - before, 4, 'one remote get per read');
  t.equal(c.node(a).stats.readAnswersSameBytes, 4, 'every remote answer was the same bytes');
  t.equal(c.node(a).stats.readRepairsSent, 0, 'no repair');
  // An absent key: both sides answer the empty object's bytes.
  const none = await c.node(a).get(Buffer.from('never-written'));
  t.same(values(none), [], 'absent key reads empty');
  t.equal(none.siblings.length, 0, 'no siblings');
  t.equal(c.node(a).stats.readAnswersSameBytes, 5, 'the empty answers compare equal too');
});

t.test('a stale replica answers other bytes: decoded, merged, and repaired', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  for (const [name, via] of [['through-stale', d], ['through-fresh', a]] as const) {
    const key = Buffer.from(name);
    await c.node(a).put(key, set('old'), { w: 3 });
    c.net.faults.set(`${a}>${d}`, 'refuse');
    await c.node(a).put(key, set('new'));
    await c.idle();
    c.net.heal();
    t.same(values(await c.keyspace(d).readObject(key)), ['old'], `${name}: d is stale`);
    for (let i = 0; i < 2; i++) {
      t.same(values(await c.node(via).get(key)), ['new'], `${name}: read ${i + 1} answers the newest value`);
      await c.idle();
    }
    t.same(values(await c.keyspace(d).readObject(key)), ['new'], `${name}: d was repaired`);
    t.same(encodeObject(await c.keyspace(d).readObject(key)), encodeObject(await c.keyspace(b).readObject(key)), `${name}: d and b hold the same bytes`);
  }
  t.ok(c.node(d).stats.readRepairsSent + c.node(a).stats.readRepairsSent >= 2, 'repairs were sent');
});

t.test('concurrent writes (siblings): a differing answer is merged, not taken as the local object', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('conflict');
  // a and b each write without seeing the other: two concurrent versions.
  c.net.partition([[a], [b, d]], 'refuse', false);
  await c.node(a).put(key, set('from-a'), { w: 1 });
  await c.node(b).put(key, set('from-b'), { w: 1 });
  c.net.heal();
  const got = await c.node(a).get(key, { r: 3 });
  t.same(values(got).sort(), ['from-a', 'from-b'], 'both siblings in the answer');
  await c.idle();
  for (const id of [a, b, d]) t.same(values(await c.keyspace(id).readObject(key)).sort(), ['from-a', 'from-b'], `${id.slice(0, 6)} repaired to both siblings`);
});

t.test('an answer that does not decode counts as that replica failing; the next replica is asked', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('corrupt-answer');
  await c.node(a).put(key, set('v'), { w: 3 });
  await c.idle();
  c.net.corruptGetsFrom.add(b);
  for (let i = 0; i < 2; i++) t.same(values(await c.node(a).get(key)), ['v'], `read ${i + 1} still meets R=2`);
  await c.idle();
  c.net.corruptGetsFrom.add(d);
  await t.rejects(c.node(a).get(key), { code: 'NOQUORUM' }, 'both remote answers corrupt: R=2 not met');
  await c.idle();
});
