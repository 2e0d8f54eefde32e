// Three real ringkv processes on 127.0.0.1 joined by `seeds` (issue 4): membership converges by
// gossip; data commands go through the coordinator (N=3, W=2, R=2); CONFIG SET of the quorums
// applies to the next request; a kill -9'd node leaves W=2 writes working and makes W=3 fail with
// the exact NOQUORUM text; ioredis Cluster routes by CLUSTER SLOTS; a process with the wrong
// cluster-secret never joins. Every process is stopped by pid and its temp dir removed at teardown.
import t from 'tap';
import { Cluster, type Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes, type RingkvNode } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';

const SECRET = 'wiring-test-secret';
const CONVERGE_TIMEOUT_MS = 15_000;
/** A hash tag putting test keys in one slot (COUNTKEYSINSLOT / GETKEYSINSLOT). */
const SLOT_TAG = '{slotkeys}';

function baseConfig(busPort: number, seeds: string, secret = SECRET): Record<string, string | number> {
  return {
    bind: LOOPBACK_HOST,
    'cluster-port': busPort,
    'cluster-secret': secret,
    seeds,
    'replication-factor': 3,
    'read-quorum': 2,
    'write-quorum': 2,
    vnodes: 64,
    'gossip-interval-ms': 100,
    'node-timeout-ms': 1000,
    'request-timeout-ms': 2000,
  };
}

async function waitUntil(what: string, pred: () => Promise<boolean>, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CLUSTER NODES lines as [id, flags] pairs. */
async function nodesOf(c: Redis): Promise<Array<{ id: string; addr: string; flags: string }>> {
  const text = String(await cmd(c, 'CLUSTER', 'NODES'));
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [id, addr, flags] = l.split(' ');
      return { id: id!, addr: addr!, flags: flags! };
    });
}

/** `INFO <section>` text as a name -> value map. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

function pick(fields: Map<string, string>, names: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((n) => [n, fields.get(n)]));
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  return '(no error)';
}

t.test('a 3-node cluster: gossip, quorum reads and writes, failures, ioredis Cluster, secret', async (t) => {
  const busPorts = await freePorts(3);
  let nodes: RingkvNode[] = [];
  nodes = await startNodes(t, 3, (i, ports) => {
    const seeds = ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(',');
    return { config: baseConfig(busPorts[i]!, seeds) };
  });
  const clients = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  const ids = await Promise.all(clients.map(async (c) => String(await cmd(c, 'CLUSTER', 'MYID'))));
  t.equal(new Set(ids).size, 3, 'three distinct node ids');

  // 1. Membership converges: every node lists all three, none failed.
  await waitUntil('membership convergence', async () => {
    const views = await Promise.all(clients.map(nodesOf));
    return views.every((v) => v.length === 3 && v.every((n) => !n.flags.includes('fail')));
  });
  for (const [i, c] of clients.entries()) {
    const view = await nodesOf(c);
    t.same(view.map((n) => n.id).sort(), [...ids].sort(), `node ${i} knows every node`);
    t.equal(view.find((n) => n.id === ids[i])?.flags, 'myself,master', `node ${i} marks itself`);
    t.ok(view.some((n) => n.addr === `${LOOPBACK_HOST}:${nodes[(i + 1) % 3]!.port}@${busPorts[(i + 1) % 3]!}`), `node ${i} has the next node's client and bus ports`);
    const info = String(await cmd(c, 'CLUSTER', 'INFO'));
    t.match(info, /cluster_state:ok/);
    t.match(info, /cluster_known_nodes:3\r\n/);
    t.match(info, /cluster_size:3\r\n/);
    t.match(info, /cluster_replication_factor:3\r\n/);
    const section = infoFields(String(await cmd(c, 'INFO', 'cluster')));
    t.same(
      pick(section, ['cluster_enabled', 'cluster_node_id', 'cluster_members_total', 'cluster_members_up', 'cluster_members_alive', 'cluster_members_down', 'cluster_ring_members', 'cluster_replication_factor', 'cluster_read_quorum', 'cluster_write_quorum', 'cluster_sloppy_quorum']),
      { cluster_enabled: '1', cluster_node_id: ids[i], cluster_members_total: '3', cluster_members_up: '3', cluster_members_alive: '3', cluster_members_down: '0', cluster_ring_members: '3', cluster_replication_factor: '3', cluster_read_quorum: '2', cluster_write_quorum: '2', cluster_sloppy_quorum: 'yes' },
      `INFO cluster on node ${i}: members by state and liveness, ring, N/R/W, sloppy quorum`,
    );
    t.match(section.get('cluster_ring_fingerprint'), /^\S+$/, 'INFO cluster names the ring fingerprint');
  }
  const fingerprints = await Promise.all(clients.map(async (c) => infoFields(String(await cmd(c, 'INFO', 'cluster'))).get('cluster_ring_fingerprint')));
  t.equal(new Set(fingerprints).size, 1, 'every node computes the same ring');

  // 2. Writes at W=2 are readable at R=2 from every node; the writes reach all three replicas.
  for (let k = 0; k < 20; k++) t.equal(await clients[k % 3]!.set(`key:${k}`, `value-${k}`), 'OK');
  for (const [i, c] of clients.entries()) {
    const got = await Promise.all(Array.from({ length: 20 }, (_, k) => c.get(`key:${k}`)));
    t.same(got, Array.from({ length: 20 }, (_, k) => `value-${k}`), `node ${i} reads every key at R=2`);
  }
  t.same(await clients[1]!.mget('key:1', 'nokey', 'key:2'), ['value-1', null, 'value-2'], 'MGET through the coordinator');
  t.equal(await clients[2]!.del('key:19', 'nokey'), 1, 'DEL counts the key that existed');
  t.equal(await clients[0]!.get('key:19'), null, 'deleted everywhere');
  t.equal(await clients[0]!.exists('key:18', 'key:19'), 1);
  // Read-modify-write commands read at R and write at W through the coordinator as well.
  t.equal(await clients[0]!.incr('counter'), 1);
  t.equal(await clients[1]!.incrby('counter', 10), 11, 'INCRBY on another node sees the first INCR');
  t.equal(await clients[2]!.get('counter'), '11');
  t.equal(await clients[2]!.append('counter', 'x'), 3);
  t.equal(await clients[0]!.get('counter'), '11x');
  t.equal(await clients[0]!.setnx('counter', 'no'), 0, 'SETNX sees the replicated key');
  t.equal(await clients[1]!.expire('counter', 100), 1);
  const ttl = await clients[2]!.ttl('counter');
  t.ok(ttl > 90 && ttl <= 100, `the TTL is replicated (${ttl})`);
  t.equal(await clients[2]!.getdel('counter'), '11x');
  t.equal(await clients[0]!.exists('counter'), 0, 'GETDEL deleted it everywhere');
  // COUNTKEYSINSLOT / GETKEYSINSLOT: the slot's keys from its replicas, merged (each key once).
  const tagSlot = Number(await cmd(clients[0]!, 'CLUSTER', 'KEYSLOT', SLOT_TAG));
  for (let k = 4; k >= 1; k--) t.equal(await clients[k % 3]!.set(`${SLOT_TAG}:${k}`, `s${k}`), 'OK');
  const tagKeys = [1, 2, 3, 4].map((k) => `${SLOT_TAG}:${k}`);
  for (const [i, c] of clients.entries()) {
    t.equal(await cmd(c, 'CLUSTER', 'COUNTKEYSINSLOT', tagSlot), 4, `COUNTKEYSINSLOT on node ${i}: each key once, though 2 or 3 replicas hold it`);
    t.same(await cmd(c, 'CLUSTER', 'GETKEYSINSLOT', tagSlot, 3), tagKeys.slice(0, 3), `GETKEYSINSLOT on node ${i}: the first keys in order`);
    t.same(await cmd(c, 'CLUSTER', 'GETKEYSINSLOT', tagSlot, 100), tagKeys);
  }
  const pre = (await cmd(clients[0]!, 'CLUSTER', 'PREFLIST', 'key:1')) as [number, Array<[string, string, string, string, string]>];
  t.equal(pre[0], Number(await cmd(clients[0]!, 'CLUSTER', 'KEYSLOT', 'key:1')), 'PREFLIST names the key slot');
  t.same(pre[1].map((e) => e[0]).sort(), [...ids].sort(), 'N=3 of 3 nodes: every node is a primary replica');
  t.ok(pre[1].every((e) => e[1] === 'primary' && e[4] === 'up'));

  // Causal commands: a context read on one node resolves the value written through another.
  const [ctx0, vals0] = (await cmd(clients[1]!, 'GETCTX', 'key:3')) as [string, string[]];
  t.same(vals0, ['value-3']);
  t.equal(await cmd(clients[2]!, 'SETCTX', 'key:3', ctx0, 'resolved'), 'OK');
  t.equal(await clients[0]!.get('key:3'), 'resolved');
  const [ctx1] = (await cmd(clients[0]!, 'GETCTX', 'key:3')) as [string, string[]];
  t.equal(await cmd(clients[1]!, 'DELCTX', 'key:3', ctx1), 1);
  t.equal(await clients[2]!.get('key:3'), null);

  // Two clients doing interleaved read-modify-write cycles through one node: each write misses
  // the other's, so there are siblings, but never more than the two writers (DVV, no explosion).
  const w1 = await connectIoredis(t, nodes[0]!.port);
  const w2 = await connectIoredis(t, nodes[0]!.port);
  for (let i = 0; i < 100; i++) {
    const [ctxA] = (await cmd(w1, 'GETCTX', 'rmw')) as [string, string[]];
    const [ctxB] = (await cmd(w2, 'GETCTX', 'rmw')) as [string, string[]];
    await cmd(w1, 'SETCTX', 'rmw', ctxA, `a${i}`);
    await cmd(w2, 'SETCTX', 'rmw', ctxB, `b${i}`);
  }
  t.same(((await clients[1]!.call('GET', 'rmw')) as string[]).slice().sort(), ['a99', 'b99'], 'exactly 2 siblings after 100 interleaved cycles');
  const [rmwCtx] = (await cmd(clients[2]!, 'GETCTX', 'rmw')) as [string, string[]];
  t.equal(await cmd(clients[2]!, 'SETCTX', 'rmw', rmwCtx, 'merged'), 'OK');
  t.equal(await clients[0]!.get('rmw'), 'merged', 'resolved with the context: one value everywhere');

  // 3. ioredis Cluster routes by CLUSTER SLOTS (every range lists its replicas, a master first).
  const slots = (await cmd(clients[0]!, 'CLUSTER', 'SLOTS')) as Array<[number, number, ...Array<[string, number, string]>]>;
  t.equal(slots.reduce((a, r) => a + (r[1] - r[0] + 1), 0), 16384, 'CLUSTER SLOTS covers every slot once');
  t.ok(slots.every((r) => r.length === 5), 'each range lists its 3 replicas');
  const cluster = new Cluster([{ host: LOOPBACK_HOST, port: nodes[0]!.port }], { enableOfflineQueue: true, clusterRetryStrategy: () => null });
  cluster.on('error', () => undefined);
  t.teardown(() => cluster.disconnect());
  for (let k = 0; k < 30; k++) t.equal(await cluster.set(`c:${k}`, `cv${k}`), 'OK');
  const viaCluster = await Promise.all(Array.from({ length: 30 }, (_, k) => cluster.get(`c:${k}`)));
  t.same(viaCluster, Array.from({ length: 30 }, (_, k) => `cv${k}`), 'ioredis Cluster reads back its writes');
  t.equal(await clients[2]!.get('c:7'), 'cv7', 'a plain client on another node sees them');
  cluster.disconnect();

  // 4. CONFIG SET read-quorum applies to the next request; CLIENT QUORUM overrides per connection.
  t.equal(await cmd(clients[1]!, 'CONFIG', 'SET', 'read-quorum', 'all'), 'OK');
  t.same(await cmd(clients[1]!, 'CONFIG', 'GET', 'read-quorum'), ['read-quorum', 'all']);
  t.equal(await clients[1]!.get('key:5'), 'value-5', 'R=all with every node up');

  // 5. kill -9 one node (by its pid).
  await nodes[2]!.kill9();
  t.equal(await clients[0]!.set('after-kill', 'x'), 'OK', 'W=2 write succeeds with one node dead');
  t.equal(await clients[1]!.set('after-kill-2', 'y'), 'OK');
  t.equal(await clients[1]!.set(`${SLOT_TAG}:0`, 'missed'), 'OK', 'a write to the tagged slot the dead node misses');
  await waitUntil('the dead node marked failed', async () => (await nodesOf(clients[0]!)).some((n) => n.id === ids[2] && n.flags.split(',').includes('fail')));
  await waitUntil('the dead node marked failed on node 1', async () => (await nodesOf(clients[1]!)).some((n) => n.id === ids[2] && n.flags.split(',').includes('fail')));
  t.equal(
    await errorOf(clients[1]!.get('key:5')),
    'NOQUORUM read: 0 of 3 replicas answered',
    'R=all (set with CONFIG SET) cannot be met with a node down',
  );
  t.equal(await cmd(clients[1]!, 'CONFIG', 'SET', 'read-quorum', '2'), 'OK');
  t.equal(await clients[1]!.get('key:5'), 'value-5', 'CONFIG SET read-quorum 2 applies at once');
  t.equal(await clients[1]!.get('after-kill'), 'x', 'the write made with a node dead is readable elsewhere');
  t.equal(await cmd(clients[0]!, 'CONFIG', 'SET', 'write-quorum', '3'), 'OK');
  t.equal(
    await errorOf(clients[0]!.set('w3', 'v')),
    'NOQUORUM write: 0 of 3 replicas acknowledged (the write may be partially applied)',
    'W=3 with one of three replicas down',
  );
  t.equal(await cmd(clients[0]!, 'CLIENT', 'QUORUM', '2', '2'), 'OK');
  t.equal(await clients[0]!.set('w3', 'v'), 'OK', 'CLIENT QUORUM 2 2 overrides write-quorum 3 on this connection');
  t.equal(await cmd(clients[0]!, 'CONFIG', 'SET', 'write-quorum', '2'), 'OK');
  t.match(String(await cmd(clients[0]!, 'CLUSTER', 'INFO')), /cluster_members_down:1\r\n/);
  t.same(
    pick(infoFields(String(await cmd(clients[0]!, 'INFO', 'cluster'))), ['cluster_members_total', 'cluster_members_up', 'cluster_members_down', 'cluster_write_noquorum']),
    { cluster_members_total: '3', cluster_members_up: '3', cluster_members_down: '1', cluster_write_noquorum: '1' },
    'INFO cluster: the killed node is down (still a member in state up), the W=3 write counted as NOQUORUM',
  );

  // 6. Read repair: the killed node comes back (same port and data dir) without the writes it
  // missed; a read through it finds its copy stale and repairs it.
  await nodes[2]!.start();
  const c2 = await connectIoredis(t, nodes[2]!.port);
  await waitUntil('node 0 sees the restarted node alive', async () => (await nodesOf(clients[0]!)).some((n) => n.id === ids[2] && !n.flags.includes('fail')));
  const copies = async (key: string): Promise<Map<string, number>> => {
    const [, entries] = (await cmd(clients[0]!, 'CLUSTER', 'PREFLIST', key)) as [number, Array<[string, string, string, string, string, string, number]>];
    return new Map(entries.map((e) => [e[0], e[6]]));
  };
  // Gossip may call it alive before node 0's own link to it has left its reconnect backoff.
  await waitUntil('node 0 reaches the restarted node', async () => (await copies('after-kill')).get(ids[2]!) !== -1);
  t.same([...(await copies('after-kill'))].sort(), [[ids[0]!, 1], [ids[1]!, 1], [ids[2]!, 0]].sort(), 'PREFLIST: the restarted replica lacks the write it missed');
  t.same([...(await copies(`${SLOT_TAG}:0`))].sort(), [[ids[0]!, 1], [ids[1]!, 1], [ids[2]!, 0]].sort(), 'PREFLIST: it lacks the tagged-slot write too');
  // The restarted node holds 4 keys of the tagged slot; asked through it, the slot has 5.
  await waitUntil('the restarted node sees both peers up', async () => (await nodesOf(c2)).filter((n) => !n.flags.includes('fail')).length === 3);
  t.equal(await cmd(c2, 'CLUSTER', 'COUNTKEYSINSLOT', tagSlot), 5, 'COUNTKEYSINSLOT through the stale replica counts the key only its peers hold');
  t.same(await cmd(c2, 'CLUSTER', 'GETKEYSINSLOT', tagSlot, 2), [`${SLOT_TAG}:0`, `${SLOT_TAG}:1`], 'GETKEYSINSLOT through it lists that key first');
  t.equal(await c2.get('after-kill'), 'x', 'a read through the stale replica still answers the latest value');
  await waitUntil('read repair of the restarted replica', async () => (await copies('after-kill')).get(ids[2]!) === 1);
  t.pass('read repair brought the restarted replica up to date');

  // 7. A node with the wrong cluster-secret cannot join.
  const [intruderBus] = await freePorts(1);
  const intruder = await startNode(t, {
    config: baseConfig(intruderBus!, `${LOOPBACK_HOST}:${nodes[0]!.port}@${busPorts[0]!}`, 'not-the-secret'),
  });
  const ic = await connectIoredis(t, intruder.port);
  const intruderId = String(await cmd(ic, 'CLUSTER', 'MYID'));
  // Wait for the proof that it tried (the seed refused its handshake), not for a fixed time: on
  // a loaded machine the intruder's first dial can come later than any fixed sleep.
  await waitUntil('the seed refusing the intruder', async () => /cluster bus: refused/.test(nodes[0]!.log));
  await new Promise((r) => setTimeout(r, 500));
  t.same((await nodesOf(ic)).map((n) => n.id), [intruderId], 'the intruder knows only itself');
  t.notOk((await nodesOf(clients[0]!)).some((n) => n.id === intruderId), 'the cluster never lists the intruder');
  t.pass('the seed logged the refused handshake');

  // 8. CLUSTER MEET adds a node started on its own (its seed list names only itself).
  const [lonePort, loneBus] = await freePorts(2);
  const lone = await startNode(t, { port: lonePort!, config: baseConfig(loneBus!, `${LOOPBACK_HOST}:${lonePort!}@${loneBus!}`) });
  const lc = await connectIoredis(t, lone.port);
  const loneId = String(await cmd(lc, 'CLUSTER', 'MYID'));
  t.same((await nodesOf(lc)).map((n) => n.id), [loneId], 'alone before MEET');
  t.equal(await cmd(clients[0]!, 'CLUSTER', 'MEET', LOOPBACK_HOST, lonePort!, loneBus!), 'OK');
  await waitUntil('the met node learns the whole cluster', async () => (await nodesOf(lc)).length === 4);
  // Every node must know it (not just one): until then their rings differ, and a write through
  // the new node may be forwarded along views that disagree.
  for (const [i, c] of [clients[0]!, clients[1]!, c2].entries()) {
    await waitUntil(`node ${i} learns the met node`, async () => (await nodesOf(c)).some((n) => n.id === loneId && !n.flags.includes('fail')));
  }
  await waitUntil('the met node sees every member alive', async () => (await nodesOf(lc)).filter((n) => !n.flags.includes('fail')).length === 4);
  t.same((await nodesOf(lc)).map((n) => n.id).sort(), [ids[0]!, ids[1]!, ids[2]!, loneId].sort(), 'four members on the met node');
  t.equal(await lc.set('via-new-node', 'n'), 'OK', 'the new member coordinates writes');
  t.equal(await clients[1]!.get('via-new-node'), 'n');
});
