// Ring changes under trouble (issue 6), N=3 W=2 R=2, under a write/read workload:
//  1. a node joins while another node is down (kill -9): the join completes, streaming from the
//     replicas that are up (the down node is not waited for); the down node comes back and the
//     cluster ends consistent: every acknowledged write reads back and is on exactly N of the 4
//     nodes (the returning node drops what moved away while it was down; anti-entropy brings it
//     what it missed);
//  2. a dead node is forgotten (CLUSTER FORGET) and its slots re-replicated; started again with
//     its old data dir it refuses to rejoin (the others hold it as `left`) and tells the operator
//     to wipe the dir; the others never list it again.
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { badReplicaCounts, clusterInfo, elasticConfig, missingKeys, nodeFlags, refusedStart, waitUntil, Workload } from './elastic_harness.js';

const PRELOAD_KEYS = 1200;
const VALUE_BYTES = 500;
const STREAM_RATE = '1mb';
/** Short, so the node that was down catches up on the writes it missed within the test. */
const ANTI_ENTROPY_MS = 2000;

t.test('a join while a node is down completes; the node returns consistent; a forgotten node refuses to rejoin', async (t) => {
  const busPorts = await freePorts(4);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const extra = { 'stream-max-bytes-per-sec': STREAM_RATE, 'anti-entropy-interval-ms': ANTI_ENTROPY_MS };
  const nodes = await startNodes(t, 3, (i, ports) => ({ config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(','), extra) }));
  const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
  const clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  const ids = await Promise.all(clients.map(async (c) => String(await cmd(c, 'CLUSTER', 'MYID'))));
  await waitUntil('3 nodes converge', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3));
  const w = new Workload('dj', VALUE_BYTES);
  await w.preload(clients, PRELOAD_KEYS);
  t.same(w.failures, [], 'preload acknowledged');
  const [a, b] = clients as [Redis, Redis, Redis];
  let live: Redis[] = [a, b];
  w.start(t, () => live, 2);

  // ---- 1. C down, D joins ----------------------------------------------------------------
  const down = 2;
  await nodes[down]!.kill9();
  clients[down]!.disconnect();
  await waitUntil('the killed node is marked failed', async () => (await nodeFlags(a)).get(ids[down]!)?.split(',').includes('fail') === true);
  const d = await startNode(t, { config: elasticConfig(busPorts[3]!, seeds, { ...extra, 'join-streaming': 'yes' }) });
  const dc = await connectIoredis(t, d.port);
  const dId = String(await cmd(dc, 'CLUSTER', 'MYID'));
  await waitUntil('the join completes while the other node is down', async () =>
    (await clusterInfo(dc)).get('stream_state') === 'idle' && (await nodeFlags(a)).get(dId)?.includes('joining') === false,
  60_000);
  t.ok((await nodeFlags(a)).get(ids[down]!)?.split(',').includes('fail'), 'the other node was down for the whole join');
  const joined = await clusterInfo(dc);
  t.ok(Number(joined.get('stream_slots_streamed')) > 0 && joined.get('stream_slots_remaining') === '0', `the joiner streamed ${joined.get('stream_slots_streamed')} slot copies from the replicas that were up`);
  live = [a, b, dc];

  // ---- the down node comes back ------------------------------------------------------------
  await nodes[down]!.start();
  const cc = await connectIoredis(t, nodes[down]!.port);
  await waitUntil('the returning node is seen alive and knows the joiner as up', async () =>
    (await nodeFlags(a)).get(ids[down]!)?.split(',').includes('fail') === false && (await nodeFlags(cc)).get(dId)?.includes('joining') === false,
  );
  await new Promise((r) => setTimeout(r, 1500)); // the workload on the 4 nodes, the returning one included
  await w.stop();
  t.same(w.failures, [], `no client errors but NOQUORUM (${w.writes} writes, ${w.noquorum} NOQUORUM)`);
  t.same(w.lostReads, [], 'every read of an acknowledged key found it');
  const keys = [...w.acked.keys()];
  await waitUntil('every key on exactly N of the 4 nodes', async () => (await badReplicaCounts(a, keys)).length === 0, 40_000).catch(() => undefined);
  t.same((await badReplicaCounts(a, keys)).slice(0, 10), [], `all ${keys.length} acknowledged keys on exactly N of the 4 nodes after the down node returned`);
  t.same(await missingKeys(cc, w.acked), [], 'every acknowledged key reads back through the returning node');

  // ---- 2. forget a dead node, then it comes back with its old data dir -----------------------
  await nodes[down]!.kill9();
  cc.disconnect();
  await waitUntil('the node is marked failed again', async () => (await nodeFlags(a)).get(ids[down]!)?.split(',').includes('fail') === true);
  t.equal(String(await cmd(a, 'CLUSTER', 'FORGET', ids[down]!)), 'OK', 'CLUSTER FORGET of the dead node');
  const survivors = [a, b, dc];
  await waitUntil('every survivor dropped the forgotten node', async () => (await Promise.all(survivors.map(nodeFlags))).every((f) => f.get(ids[down]!) === undefined));
  await waitUntil('re-replication finishes', async () => (await badReplicaCounts(dc, keys)).length === 0, 30_000).catch(() => undefined);
  t.same((await badReplicaCounts(dc, keys)).slice(0, 10), [], 'forget: every acknowledged key on exactly N of the 3 survivors');

  const refused = await refusedStart(nodes[down]!);
  t.match(refused, /removed from the cluster/, 'the forgotten node refuses to start with its old data dir');
  t.match(refused, /wipe the data dir/, 'and tells the operator to wipe it to start as a new node');
  t.notOk(nodes[down]!.running, 'it is not running');
  await new Promise((r) => setTimeout(r, 500)); // any gossip it might have sent would have landed by now
  t.same((await Promise.all(survivors.map(nodeFlags))).map((f) => f.get(ids[down]!)), [undefined, undefined, undefined], 'no survivor lists it again');
  t.same(await missingKeys(b, w.acked), [], `forget: all ${w.acked.size} acknowledged keys read back`);
  t.same((await badReplicaCounts(b, keys)).slice(0, 10), [], 'forget: still exactly N copies each');
});
