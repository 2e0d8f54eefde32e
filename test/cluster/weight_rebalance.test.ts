// Run-time weight change on real processes (issue 6): 3 nodes, N=2 W=2 R=1, data written, then
// `CONFIG SET weight 2` on one node under a continuous write/read workload. The slots that change
// hands are streamed (current ring at the old weight, target ring at the new one) and the weight
// becomes current once they are. Checked: every node ends with exactly the placement the pure
// ring function gives for weights (2, 1, 1) (about 2x the primaries of the others), the node
// streamed exactly the slot copies the pure transition says it gains, every acknowledged key
// reads back and is held by exactly N nodes, the only client errors are NOQUORUM, and after
// CONFIG REWRITE a restart keeps weight 2 without moving anything.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Redis } from 'ioredis';
import { buildRing, type Ring } from '../../src/coordinator/ring.js';
import { RingTransition } from '../../src/coordinator/ring_transition.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNodes, type RingkvNode } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { badReplicaCounts, clusterInfo, elasticConfig, missingKeys, nodeFlags, waitUntil, Workload } from './elastic_harness.js';

const N = 2;
const VNODES = 64;
const PRELOAD_KEYS = 1200;
const VALUE_BYTES = 400;
/** Slow enough that the change takes a moment under the workload. */
const STREAM_RATE = '512kb';

/** Slot ranges of CLUSTER SLOTS as slot -> [primary, ...replicas] ids. */
async function slotOwners(c: Redis): Promise<string[][]> {
  const out: string[][] = new Array<string[]>(SLOT_COUNT);
  const rows = (await cmd(c, 'CLUSTER', 'SLOTS')) as Array<[number, number, ...Array<[string, number, string]>]>;
  for (const [first, last, ...nodes] of rows) for (let s = first; s <= last; s++) out[s] = nodes.map((n) => n[2]);
  return out;
}

/** Primary and replica slot counts per node id. */
function countsOf(owners: ReadonlyArray<readonly string[] | undefined>): Map<string, { primaries: number; replicas: number }> {
  const m = new Map<string, { primaries: number; replicas: number }>();
  const get = (id: string): { primaries: number; replicas: number } => {
    let x = m.get(id);
    if (x === undefined) m.set(id, (x = { primaries: 0, replicas: 0 }));
    return x;
  };
  for (const o of owners) {
    if (o === undefined || o.length === 0) continue;
    get(o[0]!).primaries++;
    for (const id of o) get(id).replicas++;
  }
  return m;
}

function ringOwners(r: Ring): string[][] {
  return Array.from({ length: SLOT_COUNT }, (_, s) => [...r.preflist(s)]);
}

const same = (a: ReadonlyArray<readonly string[] | undefined>, b: ReadonlyArray<readonly string[]>): boolean =>
  b.every((x, s) => a[s] !== undefined && a[s]!.length === x.length && x.every((id) => a[s]!.includes(id)));

t.test('CONFIG SET weight 2 on one of 3 nodes: streamed rebalance to the pure placement, nothing lost, N copies; kept across a restart', async (t) => {
  const confDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-weight-'));
  t.teardown(() => fs.rm(confDir, { recursive: true, force: true }));
  const confFile = path.join(confDir, 'node0.conf');
  await fs.writeFile(confFile, '# weight test: CONFIG REWRITE writes here\n');

  const busPorts = await freePorts(3);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const extra = { 'replication-factor': N, 'read-quorum': 1, 'write-quorum': 2, vnodes: VNODES, 'stream-max-bytes-per-sec': STREAM_RATE };
  const nodes: RingkvNode[] = await startNodes(t, 3, (i, ports) => ({
    ...(i === 0 ? { confFile } : {}),
    config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(','), extra),
  }));
  let clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  const ids = await Promise.all(clients.map(async (c) => String(await cmd(c, 'CLUSTER', 'MYID'))));
  await waitUntil('3 nodes converge', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3 && [...f.values()].every((x) => !x.includes('joining'))));

  const member = (id: string, weight: number) => ({ id, weight, dc: 'dc1', rack: '', state: 'up' as const });
  const before = buildRing(ids.map((id) => member(id, 1)), { vnodes: VNODES, n: N });
  const after = buildRing(ids.map((id, i) => member(id, i === 0 ? 2 : 1)), { vnodes: VNODES, n: N });
  const pure = new RingTransition(before, after);
  const gained = pure.gainedBy(ids[0]!).length;
  await waitUntil('CLUSTER SLOTS shows the pure placement at weights 1, 1, 1', async () => same(await slotOwners(clients[1]!), ringOwners(before)));
  const countsBefore = countsOf(await slotOwners(clients[1]!));

  const w = new Workload('wk', VALUE_BYTES);
  await w.preload(clients, PRELOAD_KEYS);
  t.same(w.failures, [], 'preload: every write acknowledged');
  w.start(t, () => clients, 3);

  t.equal(String(await cmd(clients[0]!, 'CONFIG', 'SET', 'weight', '2')), 'OK', 'CONFIG SET weight 2');
  let sawStreaming = false;
  await waitUntil('every node places slots as the pure ring at weights 2, 1, 1', async () => {
    const st = (await clusterInfo(clients[0]!)).get('stream_state');
    if (st === 'streaming') sawStreaming = true;
    const owners = await Promise.all(clients.map(slotOwners));
    return owners.every((o) => same(o, ringOwners(after)));
  }, 60_000);
  await new Promise((r) => setTimeout(r, 1500)); // the workload goes on over the new placement
  await w.stop();
  t.same(w.failures, [], `no client errors but NOQUORUM (${w.writes} writes, ${w.reads} reads, ${w.noquorum} NOQUORUM)`);
  t.same(w.lostReads, [], 'every read of an acknowledged key found it');

  const info0 = await clusterInfo(clients[0]!);
  const streamed = Number(info0.get('stream_slots_streamed'));
  t.comment(`weight node: ${sawStreaming ? 'seen streaming; ' : ''}streamed ${streamed} slot copies, ${info0.get('stream_keys_streamed')} objects, ${info0.get('stream_bytes_streamed')} bytes; the pure transition gains it ${gained} (of ${pure.stats.slotsChanged} changed slots)`);
  t.ok(gained > 0, 'the pure transition moves slots to the heavier node');
  t.ok(streamed >= gained && streamed <= gained * 1.1, `the node streamed ${streamed} slot copies: what the pure transition gains it (${gained})`);
  t.equal(info0.get('stream_slots_remaining'), '0', 'nothing remaining');

  const countsAfter = countsOf(await slotOwners(clients[2]!));
  const fmt = (m: Map<string, { primaries: number; replicas: number }>): string => ids.map((id, i) => `node${i} ${m.get(id)?.primaries}/${m.get(id)?.replicas}`).join(', ');
  t.comment(`primary/replica slots before (1,1,1): ${fmt(countsBefore)}; after (2,1,1): ${fmt(countsAfter)}`);
  const p = ids.map((id) => countsAfter.get(id)?.primaries ?? 0);
  const ratio = p[0]! / ((p[1]! + p[2]!) / 2);
  // Node ids are random, so the exact ratio varies with the placement (1.596 was seen once): the
  // counts equal the pure function's (checked above); the bound only says "about twice".
  t.ok(ratio > 1.3 && ratio < 3, `the weight-2 node has ${ratio.toFixed(2)}x the primaries of the others`);

  t.same(await missingKeys(clients[1]!, w.acked), [], `all ${w.acked.size} acknowledged keys read back with their value`);
  await waitUntil('old owners dropped what moved', async () => (await badReplicaCounts(clients[1]!, [...w.acked.keys()], N)).length === 0, 20_000).catch(() => undefined);
  t.same((await badReplicaCounts(clients[1]!, [...w.acked.keys()], N)).slice(0, 10), [], 'every acknowledged key on exactly N nodes');
  const dropped = (await Promise.all(clients.slice(1).map(clusterInfo))).reduce((a, i) => a + Number(i.get('stream_slots_dropped')), 0);
  t.comment(`old owners dropped ${dropped} slot copies`);

  // ---- persisted: CONFIG REWRITE, restart, the weight stays 2 and nothing moves -------------
  t.equal(String(await cmd(clients[0]!, 'CONFIG', 'REWRITE')), 'OK', 'CONFIG REWRITE');
  t.match(await fs.readFile(confFile, 'utf8'), /^weight 2$/m, 'the conf file holds weight 2');
  await nodes[0]!.restart();
  clients = [await connectIoredis(t, nodes[0]!.port), clients[1]!, clients[2]!];
  t.equal(String(await cmd(clients[0]!, 'CONFIG', 'GET', 'weight').then((r) => (r as string[])[1])), '2', 'restarted: CONFIG GET weight 2');
  await waitUntil('the restarted node is seen again', async () => (await nodeFlags(clients[1]!)).get(ids[0]!)?.includes('fail') === false);
  await new Promise((r) => setTimeout(r, 1000));
  const owners = await Promise.all(clients.map(slotOwners));
  t.ok(owners.every((o) => same(o, ringOwners(after))), 'after the restart every node still places slots at weights 2, 1, 1');
  t.equal((await clusterInfo(clients[0]!)).get('stream_ring_slots_moving'), '0', 'no slots moving after the restart');
  t.same(await missingKeys(clients[2]!, w.acked), [], 'after the restart every acknowledged key reads back');
});
