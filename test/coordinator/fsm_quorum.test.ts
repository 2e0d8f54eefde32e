// The request paths through in-process coordinators: quorums met and missed, settings read on
// every request, forwarding from a non-replica, late acks.
import t from 'tap';
import { MAX_FORWARD_HOPS } from '../../src/coordinator/coordinator.js';
import { NoQuorumError, UnavailableError } from '../../src/coordinator/fsm_errors.js';
import { LocalReplica } from '../../src/coordinator/local_replica.js';
import { contextOf, decodeObject, encodeObject, type VersionedObject } from '../../src/coordinator/object.js';
import { QuorumError } from '../../src/coordinator/quorum.js';
import { keySlot } from '../../src/coordinator/slot.js';
import type { WriteRequest } from '../../src/server/keyspace.js';
import { startCluster, values } from './fsm_cluster.js';

const set = (v: string) => ({ value: Buffer.from(v), expiresAtMs: 0 });

t.test('writes at W=2 are readable at R=2 from every node', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const keys = Array.from({ length: 12 }, (_, i) => Buffer.from(`key:${i}`));
  for (const [i, key] of keys.entries()) {
    const via = c.ids[i % 3]!;
    const stored = await c.node(via).put(key, set(`v${i}`));
    t.same(values(stored), [`v${i}`], 'the put answers with the stored object');
  }
  for (const key of keys) {
    for (const id of c.ids) {
      const got = await c.node(id).get(key);
      t.same(values(got), [`v${key.toString().split(':')[1]}`], `${key} via node ${c.ids.indexOf(id)}`);
    }
  }
  await c.idle();
  // Every replica stored each write (fan-out to all N, not just W).
  for (const key of keys) {
    const bytes = await Promise.all(c.ids.map(async (id) => encodeObject(await c.keyspace(id).readObject(key)).toString('hex')));
    t.equal(new Set(bytes).size, 1, `${key}: all replicas hold identical bytes`);
  }
  t.equal(await c.node(c.ids[0]!).get(Buffer.from('never-written')).then((o) => o.siblings.length), 0, 'absent key: empty object');
});

t.test('a plain SET overwrites; a delete leaves a tombstone that reads as nothing', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3 });
  const key = Buffer.from('over');
  const [a, b] = c.ids as [string, string];
  await c.node(a).put(key, set('one'));
  await c.node(b).put(key, set('two'));
  t.same(values(await c.node(a).get(key)), ['two'], 'second SET via another node supersedes the first');
  const del = await c.node(a).put(key, { value: null, expiresAtMs: 0 });
  t.equal(del.siblings.length, 1, 'one tombstone sibling');
  t.equal(del.siblings[0]!.value, null);
  t.same(values(await c.node(b).get(key)), [], 'deleted');
});

t.test('the local replica hands back exactly the bytes the keyspace stored', async (t) => {
  const c = await startCluster(t, { nodes: 1, n: 1 });
  const ks = c.keyspace(c.ids[0]!);
  const local = new LocalReplica(ks);
  const key = Buffer.from('predict');
  const write = async (w: WriteRequest): Promise<VersionedObject> => {
    const r = local.coordinateWrite(key, w);
    const stored = r instanceof Promise ? await r : r;
    await stored.settled;
    t.same(stored.bytes, encodeObject(await ks.readObject(key)), 'the bytes stored');
    return decodeObject(stored.bytes);
  };
  const first = await write({ value: Buffer.from('a'), expiresAtMs: 0 });
  t.same(first.siblings.map((s) => s.value?.toString()), ['a'], 'plain write');
  const second = await write({ value: Buffer.from('b'), expiresAtMs: Date.now() + 60_000, context: new Map() });
  t.equal(second.siblings.length, 2, 'a write with an empty context makes a sibling');
  const third = await write({ value: null, expiresAtMs: 0, context: contextOf(second) });
  t.equal(third.siblings.length, 1, 'delete with the context');
  t.equal(third.siblings[0]!.value, null);
  const fourth = await write({ value: Buffer.from('c'), expiresAtMs: Date.now() + 60_000 });
  t.same(fourth.siblings.map((s) => s.value?.toString()), ['c'], 'plain write over the tombstone');
  t.ok(fourth.siblings[0]!.expiresAtMs > 0, 'with its TTL');

  // Two writes of one key in one synchronous stretch: the second waits for the first's lock
  // (the general path, a promise) and supersedes it.
  const k2 = Buffer.from('twice');
  const a = local.coordinateWrite(k2, { value: Buffer.from('x'), expiresAtMs: 0 });
  const b = local.coordinateWrite(k2, { value: Buffer.from('y'), expiresAtMs: 0 });
  t.notOk(a instanceof Promise, 'a free key in memory: synchronous');
  t.ok(b instanceof Promise, 'the same key again while its put is queued: the general path');
  const sa = a instanceof Promise ? await a : a;
  const sb = await b;
  await Promise.all([sa.settled, sb.settled]);
  t.same(decodeObject(sa.bytes).siblings.map((s) => s.value?.toString()), ['x']);
  t.same(sb.bytes, encodeObject(await ks.readObject(k2)), 'the later write is what is stored');
  t.same(decodeObject(sb.bytes).siblings.map((s) => s.value?.toString()), ['y']);
  t.equal(decodeObject(sb.bytes).clock.get(ks.actor), 2, 'two dots minted');
});

t.test('NOQUORUM with the exact text when too few replicas answer', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { requestTimeoutMs: 300 } });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('nq');

  // b and d refuse connections but a still believes them up: a writes locally, both fail.
  c.net.partition([[a], [b, d]], 'refuse', false);
  await t.rejects(c.node(a).put(key, set('x'), { w: 2 }), {
    name: 'NoQuorumError',
    message: 'NOQUORUM write: 1 of 2 replicas acknowledged (the write may be partially applied)',
  });
  t.same(values(await c.keyspace(a).readObject(key)), ['x'], 'partially applied: the coordinator kept its copy');

  // Silent replicas: the deadline decides.
  c.net.heal();
  c.net.partition([[a], [b, d]], 'blackhole', false);
  const started = Date.now();
  const err = await c.node(a).put(key, set('y'), { w: 3 }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof NoQuorumError, 'NoQuorumError');
  t.equal((err as Error).message, 'NOQUORUM write: 1 of 3 replicas acknowledged (the write may be partially applied)');
  t.ok(Date.now() - started >= 250, 'waited for the request timeout');
  t.same([(err as NoQuorumError).got, (err as NoQuorumError).need], [1, 3], 'the numbers are on the error');

  await t.rejects(c.node(a).get(key, { r: 2 }), { message: 'NOQUORUM read: 1 of 2 replicas answered' }, 'read quorum missed');
  t.same(values(await c.node(a).get(key, { r: 1 })), ['y'], 'R=1 answers from the local replica');

  // A node that knows the others are down fails at once and writes nothing (sloppy off: no fallbacks).
  c.net.heal();
  c.net.partition([[a], [b, d]], 'refuse', true);
  c.settings = { ...c.settings, sloppyQuorum: false };
  const before = encodeObject(await c.keyspace(a).readObject(key));
  await t.rejects(c.node(a).put(key, set('z'), { w: 2 }), {
    message: 'NOQUORUM write: 0 of 2 replicas acknowledged (the write may be partially applied)',
  });
  t.same(encodeObject(await c.keyspace(a).readObject(key)), before, 'nothing written when W could never be met');
  t.ok(c.node(a).stats.writeNoQuorum >= 3, 'counted');

  await t.rejects(c.node(a).put(key, set('w'), { w: 4 }), QuorumError, 'W above N is a quorum error');
});

t.test('R, W and N changes apply to the next request', async (t) => {
  const c = await startCluster(t, { nodes: 4, n: 3, settings: { readQuorum: 1, writeQuorum: 1, requestTimeoutMs: 300 } });
  const key = c.keyWithPreflist(() => true);
  const keyPref = c.ring().preflist(keySlot(key));
  const [p0, p1, p2] = keyPref as [string, string, string];
  // p1 and p2 cannot be reached, p0 does not know it yet.
  c.net.partition([[p0], [p1, p2]], 'refuse', false);
  await c.node(p0).put(key, set('w1'));
  t.pass('W=1 succeeds with one replica');
  c.settings = { ...c.settings, writeQuorum: 2 };
  await t.rejects(c.node(p0).put(key, set('w2')), { message: /^NOQUORUM write: 1 of 2 / }, 'W=2 from the config at once');
  c.settings = { ...c.settings, writeQuorum: 'one' };
  await c.node(p0).put(key, set('w3'));
  t.same(values(await c.node(p0).get(key)), ['w3'], 'R=1');
  c.settings = { ...c.settings, readQuorum: 'all' };
  // Refused as soon as the two refusals are in: R=3 is out of reach (fail fast, as get_core). The
  // local replica answers from memory before anything is sent, so it is counted.
  await t.rejects(c.node(p0).get(key), { message: 'NOQUORUM read: 1 of 3 replicas answered' }, 'R=all from the config at once');
  t.same(values(await c.node(p0).get(key, { r: 1 })), ['w3'], 'a per-call R overrides the config');
  await t.rejects(c.node(p0).put(key, set('w4'), { w: 'all' }), { message: /^NOQUORUM write: 1 of 3 / }, 'a per-call W overrides the config');

  c.net.heal();
  const ring3 = c.ring();
  t.equal(c.ring(), ring3, 'the ring is rebuilt only on a change');
  c.n = 4;
  t.equal(c.ring().n, 4, 'the ring follows replication-factor');
  await c.node(p0).put(key, set('n4'), { w: 4 });
  await c.idle();
  for (const id of c.ids) t.same(values(await c.keyspace(id).readObject(key)), ['n4'], 'N=4: every node holds the key');
});

t.test('a non-replica forwards writes to the first reachable primary', async (t) => {
  const c = await startCluster(t, { nodes: 5, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const ring = c.ring();
  const outsider = c.ids[0]!;
  const key = c.keyWithPreflist((p) => !p.includes(outsider), 'fwd');
  const pref = ring.preflist(keySlot(key));
  const [p0, p1] = pref as [string, string, string];

  const stored = await c.node(outsider).put(key, set('via-outsider'));
  t.same(values(stored), ['via-outsider']);
  t.equal(stored.siblings[0]!.dot.actor, c.keyspace(p0).actor, 'the dot was minted by the first primary');
  t.equal(c.node(outsider).stats.forwards, 1);
  t.equal(c.node(outsider).stats.puts, 0, 'the outsider did not coordinate');
  t.equal(c.node(p0).stats.puts, 1, 'the first primary did');
  await c.idle();
  t.equal((await c.keyspace(outsider).readObject(key)).siblings.length, 0, 'the outsider stores nothing');
  for (const id of pref) t.same(values(await c.keyspace(id).readObject(key)), ['via-outsider'], 'every primary has it');
  t.same(values(await c.node(outsider).get(key)), ['via-outsider'], 'readable via the outsider');

  // The first primary refuses the connection though believed up: the next one coordinates.
  c.net.faults.set(`${outsider}>${p0}`, 'refuse');
  const second = await c.node(outsider).put(key, set('second'));
  t.equal(second.siblings[0]!.dot.actor, c.keyspace(p1).actor, 'the second primary minted it');
  t.equal(c.node(outsider).stats.forwardRetries, 1);

  // The first primary is known down: no attempt at all.
  c.net.heal();
  c.net.downIn.set(outsider, new Set([p0]));
  const third = await c.node(outsider).put(key, set('third'));
  t.equal(third.siblings[0]!.dot.actor, c.keyspace(p1).actor);
  t.equal(c.node(outsider).stats.forwardRetries, 1, 'no failed attempt');

  // No primary reachable: CLUSTERDOWN, not a write by a fallback.
  c.net.downIn.set(outsider, new Set(pref));
  await t.rejects(c.node(outsider).put(key, set('nope')), UnavailableError);
  c.net.downIn.clear();
  for (const id of pref) c.net.faults.set(`${outsider}>${id}`, 'refuse');
  await t.rejects(c.node(outsider).put(key, set('nope')), { message: /^CLUSTERDOWN no primary replica of slot \d+ is reachable$/ });

  // The forwarded-to node disagrees that it is a primary (it thinks itself down): it forwards on,
  // and the hop limit stops a loop.
  c.net.heal();
  c.net.downIn.set(p0, new Set([p0]));
  const hop = await c.node(outsider).put(key, set('hop'));
  t.equal(hop.siblings[0]!.dot.actor, c.keyspace(p1).actor, 'p0 forwarded to p1');
  for (const id of pref) c.net.downIn.set(id, new Set([id]));
  await t.rejects(c.node(outsider).put(key, set('loop')), { message: new RegExp(`forwarded ${MAX_FORWARD_HOPS} times`) }, 'hop limit');

  // A NOQUORUM from the remote coordinator reaches the client unchanged.
  c.net.heal();
  c.net.partition([[p0, outsider], pref.slice(1)], 'refuse', false);
  await t.rejects(c.node(outsider).put(key, set('nq'), { w: 3 }), {
    name: 'NoQuorumError',
    message: 'NOQUORUM write: 1 of 3 replicas acknowledged (the write may be partially applied)',
  });
});

t.test('a forward that times out is NOQUORUM with 0 acknowledged, and may still be applied', async (t) => {
  const c = await startCluster(t, { nodes: 4, n: 3, settings: { writeQuorum: 2, requestTimeoutMs: 100 } });
  const outsider = c.ids[0]!;
  const key = c.keyWithPreflist((p) => !p.includes(outsider), 'slowfwd');
  const p0 = c.ring().preflist(keySlot(key))[0]!;
  c.net.delays.set(`${outsider}>${p0}`, 600); // delivered after the forwarder gave up (100 + grace)
  await t.rejects(c.node(outsider).put(key, set('maybe')), {
    name: 'NoQuorumError',
    message: 'NOQUORUM write: 0 of 2 replicas acknowledged (the write may be partially applied)',
  });
  t.equal(c.node(outsider).stats.forwardRetries, 0, 'not retried elsewhere: it may have arrived');
  // It did arrive, late: the write is applied there (indeterminate, as the message says).
  for (let i = 0; i < 100 && values(await c.keyspace(p0).readObject(key)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(values(await c.keyspace(p0).readObject(key)), ['maybe']);
  await c.idle();
});

t.test('acks after the reply are counted, never acted on', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { writeQuorum: 2 } });
  const [a, b, d] = c.ids as [string, string, string];
  c.net.hold(a, d);
  const key = Buffer.from('late');
  await c.node(a).put(key, set('v'));
  t.pass('replied at W=2 while the third replica had not even received the write');
  t.equal(c.node(a).stats.lateAcks, 0);
  t.same(values(await c.keyspace(d).readObject(key)), [], 'the held replica does not have it yet');
  t.equal(c.net.release(a, d), 1, 'one message was held');
  await c.idle();
  t.equal(c.node(a).stats.lateAcks, 1, 'the late ack was counted');
  t.same(values(await c.keyspace(d).readObject(key)), ['v'], 'and the write landed');
  t.same(values(await c.keyspace(b).readObject(key)), ['v']);

  // A late failure (the deadline passes for a blackholed replica after the reply) is counted too.
  c.settings = { ...c.settings, requestTimeoutMs: 100 };
  c.net.faults.set(`${a}>${d}`, 'blackhole');
  await c.node(a).put(key, set('v2'));
  await c.idle();
  t.equal(c.node(a).stats.lateWriteErrors, 1);
});

t.test('per-datacenter quorums: local_quorum and each_quorum', async (t) => {
  // 6 nodes, 3 per dc, 2 replicas in each dc.
  const c = await startCluster(t, {
    nodes: 6,
    n: 4,
    dcOf: (i) => (i < 3 ? 'east' : 'west'),
    dcReplication: new Map([
      ['east', 2],
      ['west', 2],
    ]),
    settings: { writeQuorum: 'each_quorum', readQuorum: 'local_quorum' },
  });
  const ring = c.ring();
  const key = Buffer.from('dc-key');
  const pref = ring.preflist(keySlot(key));
  const east = pref.filter((id) => ring.member(id)!.dc === 'east');
  const west = pref.filter((id) => ring.member(id)!.dc === 'west');
  t.equal(east.length, 2);
  t.equal(west.length, 2);
  const coord = east[0]!;

  await c.node(coord).put(key, set('both-dcs'));
  await c.idle();
  for (const id of pref) t.same(values(await c.keyspace(id).readObject(key)), ['both-dcs'], 'every replica in both dcs');

  // West is cut off (not detected): each_quorum (2 per dc, 4 in all) cannot be met. The tally
  // (quorum.ts) reports the total requirement when it is the one that fails first.
  const eastNodes = c.ids.filter((id) => ring.member(id)!.dc === 'east');
  const westNodes = c.ids.filter((id) => ring.member(id)!.dc === 'west');
  c.net.partition([eastNodes, westNodes], 'refuse', false);
  await t.rejects(c.node(coord).put(key, set('east-only')), {
    message: /^NOQUORUM write: [12] of 4 replicas acknowledged \(the write may be partially applied\)$/,
  });
  const local = await c.node(coord).put(key, set('east-only'), { w: 'local_quorum' });
  t.same(values(local), ['east-only'], 'local_quorum: the local dc suffices');
  t.same(values(await c.node(coord).get(key)), ['east-only'], 'local_quorum read in east');
  await t.rejects(c.node(coord).get(key, { r: 'each_quorum' }), { message: /^NOQUORUM read: [0-2] of 4 replicas answered$/ });

  // The other east replica refuses instead: west could make up the total, but local_quorum
  // needs 2 in east, and the error names the datacenter.
  c.net.heal();
  c.net.faults.set(`${coord}>${east[1]}`, 'refuse');
  await t.rejects(c.node(coord).put(key, set('x'), { w: 'local_quorum' }), {
    message: 'NOQUORUM write: 1 of 2 replicas acknowledged in datacenter east (the write may be partially applied)',
  });
});
