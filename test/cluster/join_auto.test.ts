// `join-streaming auto` (the default, issue 6): the decision as pure logic, and on real processes
// a brand-new cluster of empty nodes started together forms without streaming, while a fresh
// node joining that cluster once it holds data streams its slots (and every key ends on exactly
// N nodes, readable).
import t from 'tap';
import type { Redis } from 'ioredis';
import { decideAutoJoin, onlySelfSeeds, type PreflightView } from '../../src/cluster/join_auto.js';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { badReplicaCounts, clusterInfo, elasticConfig, missingKeys, nodeFlags, waitUntil, Workload, N } from './elastic_harness.js';

const v = (over: Partial<PreflightView> = {}): PreflightView => ({ onlySelfSeeds: false, seedAnswered: true, owners: [], ...over });

t.test('decideAutoJoin', async (t) => {
  t.equal(decideAutoJoin(v({ onlySelfSeeds: true, seedAnswered: false })), 'up', 'every seed is this node: a one-node cluster');
  t.equal(decideAutoJoin(v({ seedAnswered: false })), 'up', 'no seed answered: the first node of a new cluster');
  t.equal(decideAutoJoin(v()), 'up', 'a new cluster: nobody owns slots');
  t.equal(decideAutoJoin(v({ owners: [false, false] })), 'up', 'the owners are empty');
  t.equal(decideAutoJoin(v({ owners: [false, true] })), 'joining', 'an owner holds data');
  t.equal(decideAutoJoin(v({ owners: [false, undefined] })), 'joining', 'an owner did not answer: it may hold data');
  t.equal(decideAutoJoin(v({ owners: [true, true], knownOwner: true })), 'up', 'the seeds already hold this id as an owner: a restarted member, not a joiner');
  t.ok(onlySelfSeeds([{ host: '127.0.0.1', busPort: 17001 }], { host: '127.0.0.1', busPort: 17001 }));
  t.ok(onlySelfSeeds([{ host: 'localhost', busPort: 17001 }], { host: '127.0.0.1', busPort: 17001 }), 'loopback names');
  t.notOk(onlySelfSeeds([{ host: '127.0.0.1', busPort: 17001 }, { host: '127.0.0.1', busPort: 17002 }], { host: '127.0.0.1', busPort: 17001 }));
  t.notOk(onlySelfSeeds([{ host: '10.0.0.2', busPort: 17001 }], { host: '10.0.0.1', busPort: 17001 }), 'another host');
});

t.test('auto: empty nodes started together form without streaming; a node joining once data exists streams', async (t) => {
  const busPorts = await freePorts(4);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const nodes = await startNodes(t, 3, (i, ports) => ({ config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(',')) }));
  const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
  const clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  await waitUntil('3 nodes up', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3 && [...f.values()].every((x) => !x.includes('joining'))));
  const formed = await Promise.all(clients.map(clusterInfo));
  t.same(formed.map((i) => i.get('stream_slots_streamed')), ['0', '0', '0'], 'the new cluster formed without streaming');
  t.ok(nodes.every((n) => /join-streaming auto: .*; up without streaming/.test(n.log)), 'each node decided: new or empty cluster, up without streaming');

  const w = new Workload('ak', 300);
  await w.preload(clients, 900);
  t.same(w.failures, [], 'preload acknowledged');
  w.start(t, () => clients, 2);
  const d = await startNode(t, { config: elasticConfig(busPorts[3]!, seeds, { 'stream-max-bytes-per-sec': '512kb' }) });
  const dc = await connectIoredis(t, d.port);
  const dId = String(await cmd(dc, 'CLUSTER', 'MYID'));
  await waitUntil('the new node joins with streaming and turns up', async () => {
    const i = await clusterInfo(dc);
    const f = await nodeFlags(clients[0]!);
    return i.get('stream_state') === 'idle' && Number(i.get('stream_slots_streamed')) > 0 && f.get(dId)?.includes('joining') === false;
  }, 60_000);
  await w.stop();
  t.match(d.log, /join-streaming auto: the cluster holds data \(\d+ of 3 owners hold keys, 0 did not answer\); joining with streaming/, 'the joiner saw data and streamed');
  const info = await clusterInfo(dc);
  t.ok(Number(info.get('stream_keys_streamed')) > 0, `streamed ${info.get('stream_slots_streamed')} slot copies, ${info.get('stream_keys_streamed')} objects`);
  t.same(w.failures, [], `no client errors but NOQUORUM (${w.writes} writes, ${w.noquorum} NOQUORUM)`);
  t.same(w.lostReads, [], 'every read of an acknowledged key found it');
  t.same(await missingKeys(dc, w.acked), [], `all ${w.acked.size} acknowledged keys read back`);
  await waitUntil('old owners dropped what moved', async () => (await badReplicaCounts(dc, [...w.acked.keys()])).length === 0, 20_000).catch(() => undefined);
  t.same((await badReplicaCounts(dc, [...w.acked.keys()])).slice(0, 10), [], `every acknowledged key on exactly N=${N} of 4 nodes`);
});
