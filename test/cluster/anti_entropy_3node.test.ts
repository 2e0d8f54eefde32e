// Anti-entropy on three real ringkv processes (N=3, W=2, R=2; issue 5): a replica killed with
// kill -9 misses writes, overwrites and deletes; after its restart the replicas' CLUSTER DIGESTs
// differ; CLUSTER REPAIR on it makes all three hold the same objects (every slot's digest equal,
// every key readable at R=1 through each node with the right value) and the deleted keys, which
// the restarted replica still held as values, stay deleted on every replica (no resurrection).
// Then, with `anti-entropy-interval-ms` set, the background rounds alone repair a second miss.
// Every process is stopped by pid and its temp dir removed at teardown.
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNodes, type RingkvNode } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { waitUntil as waitFor } from '../helpers/fault_cluster.js';

const CONVERGE_TIMEOUT_MS = 20_000;
const SLOT_LAST = 16383;

function baseConfig(busPort: number, seeds: string): Record<string, string | number> {
  return {
    bind: LOOPBACK_HOST,
    'cluster-port': busPort,
    seeds,
    'replication-factor': 3,
    'read-quorum': 2,
    'write-quorum': 2,
    vnodes: 64,
    'gossip-interval-ms': 100,
    'node-timeout-ms': 1000,
    'request-timeout-ms': 2000,
    'anti-entropy-interval-ms': 0,
  };
}

/** fault_cluster.ts's waitUntil, with a failing probe (a node still starting) counted as not yet. */
const waitUntil = (what: string, pred: () => Promise<boolean>, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> =>
  waitFor(what, () => pred().catch(() => false), timeoutMs);

async function liveMembers(c: Redis): Promise<number> {
  const text = String(await cmd(c, 'CLUSTER', 'NODES'));
  return text.split('\n').filter((l) => l.length > 0 && !l.split(' ')[2]!.includes('fail')).length;
}

const digest = async (c: Redis): Promise<string[]> => (await cmd(c, 'CLUSTER', 'DIGEST', 0, SLOT_LAST)) as string[];

function infoField(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  if (m === null) throw new Error(`INFO has no ${name}`);
  return Number(m[1]);
}

/** Slots whose digests differ between two nodes. */
function differing(a: readonly string[], b: readonly string[]): number {
  let n = 0;
  for (let s = 0; s < a.length; s++) if (a[s] !== b[s]) n++;
  return n;
}

t.test('CLUSTER REPAIR and background rounds bring a replica that missed writes back in line', async (t) => {
  const busPorts = await freePorts(3);
  const nodes: RingkvNode[] = await startNodes(t, 3, (i, ports) => {
    const seeds = ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(',');
    return { config: baseConfig(busPorts[i]!, seeds) };
  });
  const clients = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  await waitUntil('membership convergence', async () => (await Promise.all(clients.map(liveMembers))).every((n) => n === 3));

  // Bad arguments.
  await t.rejects(cmd(clients[0]!, 'CLUSTER', 'DIGEST', 5, 4), /ERR Invalid slot range/);
  await t.rejects(cmd(clients[0]!, 'CLUSTER', 'DIGEST', 0, 16384), /ERR Invalid slot range/);
  await t.rejects(cmd(clients[0]!, 'CLUSTER', 'DIGEST', 'x', 1), /ERR value is not an integer/);

  // 1. All up: 200 keys on all three replicas; the digests agree.
  const expected = new Map<string, string | null>();
  for (let k = 0; k < 200; k++) {
    await clients[k % 3]!.set(`k:${k}`, `v1-${k}`);
    expected.set(`k:${k}`, `v1-${k}`);
  }
  await waitUntil('equal digests after healthy writes', async () => {
    const ds = await Promise.all(clients.map(digest));
    return differing(ds[0]!, ds[1]!) === 0 && differing(ds[0]!, ds[2]!) === 0;
  });
  const d0 = await digest(clients[0]!);
  t.equal(d0.length, SLOT_LAST + 1, 'one digest string per slot');
  t.ok(d0.filter((d) => d !== '').length > 150, 'non-empty slots have digests');
  t.ok(d0.every((d) => d === '' || /^[0-9a-f]{24}$/.test(d)), 'digests are hex strings');

  // 2. Node 2 is killed; the survivors take new keys, overwrites and deletes at W=2.
  await nodes[2]!.kill9();
  for (let k = 200; k < 350; k++) {
    await clients[k % 2]!.set(`k:${k}`, `v1-${k}`);
    expected.set(`k:${k}`, `v1-${k}`);
  }
  for (let k = 0; k < 60; k++) {
    await clients[k % 2]!.set(`k:${k}`, `v2-${k}`);
    expected.set(`k:${k}`, `v2-${k}`);
  }
  for (let k = 60; k < 90; k++) {
    t.equal(await clients[k % 2]!.del(`k:${k}`), 1);
    expected.set(`k:${k}`, null);
  }

  // 3. Node 2 returns with its old data: it differs from the others.
  await nodes[2]!.start();
  clients[2] = await connectIoredis(t, nodes[2]!.port);
  await waitUntil('everyone sees three live members again', async () => (await Promise.all(clients.map(liveMembers))).every((n) => n === 3));
  const [before0, before2] = await Promise.all([digest(clients[0]!), digest(clients[2]!)]);
  t.ok(differing(before0, before2) > 100, `the restarted replica differs in ${differing(before0, before2)} slots`);
  t.equal(differing(before0, await digest(clients[1]!)), 0, 'the two survivors agree');

  // 4. CLUSTER REPAIR on the restarted node: one round with both peers.
  const summary = String(await cmd(clients[2]!, 'CLUSTER', 'REPAIR'));
  const fields = new Map(summary.split(' ').map((kv) => kv.split('=') as [string, string]));
  t.equal(fields.get('peers'), '2', `REPAIR exchanged with both peers: ${summary}`);
  t.equal(fields.get('errors'), '0', 'no exchange failed');
  t.ok(Number(fields.get('keysPulled')) >= 240, `the missed objects were pulled (${fields.get('keysPulled')})`);
  t.ok(Number(fields.get('bytesSent')) > 0 && Number(fields.get('ms')) >= 0);
  const after = await Promise.all(clients.map(digest));
  t.equal(differing(after[0]!, after[2]!), 0, 'after REPAIR node 2 holds exactly what node 0 holds');
  t.equal(differing(after[0]!, after[1]!), 0, 'and node 1 as well');

  // 5. Every key at R=1 through each node: the latest value, deleted keys absent.
  for (const [i, c] of clients.entries()) {
    await cmd(c, 'CLIENT', 'QUORUM', 1, 1);
    const keys = [...expected.keys()];
    const got = await c.mget(...keys);
    t.same(got, keys.map((k) => expected.get(k)), `node ${i} reads every key at R=1 with its latest value`);
  }
  // The deleted keys were values on node 2: repair brought the tombstones there, not the values back.
  for (const k of ['k:60', 'k:75', 'k:89']) {
    const [, entries] = (await cmd(clients[0]!, 'CLUSTER', 'PREFLIST', k)) as [number, Array<[string, string, string, string, string, string, number]>];
    t.same(entries.map((e) => e[6]), [0, 0, 0], `${k}: no replica holds a live value`);
  }

  const info2 = String(await cmd(clients[2]!, 'INFO', 'cluster'));
  t.equal(infoField(info2, 'antientropy_rounds'), 1, 'INFO counts the round');
  t.ok(infoField(info2, 'antientropy_keys_repaired') >= 240, 'INFO counts the repaired keys');
  t.equal(infoField(info2, 'antientropy_bytes_sent'), Number(fields.get('bytesSent')), 'INFO counts the bytes sent');
  t.match(info2, /antientropy_last_round_ms:\d+/);
  t.equal(infoField(info2, 'antientropy_dirty_slots'), 0, 'every slot of the tree is up to date');

  // 6. A second miss, repaired by the background rounds alone.
  for (const c of clients) t.equal(await cmd(c, 'CONFIG', 'SET', 'anti-entropy-interval-ms', 300), 'OK');
  // Nodes 0 and 2 run the background rounds (node 1 restarts with its command-line interval 0).
  // Either one's round may be the one that converges the digests: each polls the interval
  // every AE_FIRST_ROUND_DELAY_MS (5 s) while it is 0, so which node starts first is a race.
  const roundsOf = async (c: Redis): Promise<number> => infoField(String(await cmd(c, 'INFO', 'cluster')), 'antientropy_rounds');
  const roundsBefore = (await roundsOf(clients[0]!)) + (await roundsOf(clients[2]!));
  await nodes[1]!.kill9();
  for (let k = 400; k < 450; k++) await clients[(k % 2) * 2]!.set(`k:${k}`, `v3-${k}`);
  t.equal(await clients[0]!.del('k:0'), 1);
  await nodes[1]!.start();
  clients[1] = await connectIoredis(t, nodes[1]!.port);
  await waitUntil(
    'background anti-entropy converges the digests',
    async () => {
      const ds = await Promise.all(clients.map(digest));
      return differing(ds[0]!, ds[1]!) === 0 && differing(ds[0]!, ds[2]!) === 0;
    },
    30_000,
  );
  t.pass('the background rounds alone (no REPAIR, no reads) made the digests equal');
  // A round counts itself once it has exchanged with every peer, so the digests can agree (node 1
  // repaired by the round's first exchange) a moment before INFO shows that round.
  let roundsAfter = roundsBefore;
  await waitUntil('INFO counts the round that converged the digests', async () => {
    roundsAfter = (await roundsOf(clients[0]!)) + (await roundsOf(clients[2]!));
    return roundsAfter > roundsBefore;
  });
  t.ok(roundsAfter > roundsBefore, `INFO shows the background rounds (nodes 0 and 2: ${roundsBefore} -> ${roundsAfter})`);
  await cmd(clients[1]!, 'CLIENT', 'QUORUM', 1, 1);
  t.equal(await clients[1]!.get('k:420'), 'v3-420', 'the restarted node answers the missed write at R=1');
  t.equal(await clients[1]!.get('k:0'), null, 'and the missed delete');
});
