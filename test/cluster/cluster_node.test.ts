// The assembled membership stack on real sockets: three nodes started with one seed list (their
// own address included) converge; a node restarted from its persisted table comes back with a
// higher incarnation and its members known at once; a damaged persisted table is ignored.
import t, { type Test } from 'tap';
import { ClusterMembership, type ClusterMembershipOptions } from '../../src/cluster/cluster_node.js';
import { freePorts } from '../helpers/ports.js';

const HOST = '127.0.0.1';

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

const allAlive = (ms: readonly ClusterMembership[], ids: readonly string[]): boolean =>
  ms.every((m) => ids.every((id) => m.table.get(id)?.liveness === 'alive'));

t.test('seeds, restart from the persisted table, damaged table ignored', async (t: Test) => {
  const ports = await freePorts(3);
  const ids = ['node-a', 'node-b', 'node-c'];
  const disk = new Map<string, Buffer>();
  const logs: string[] = [];
  const open: ClusterMembership[] = [];
  t.teardown(async () => {
    for (const m of open) await m.close();
  });
  const start = async (i: number, persisted: Buffer | null = disk.get(ids[i]!) ?? null): Promise<ClusterMembership> => {
    const opts: ClusterMembershipOptions = {
      nodeId: ids[i]!,
      host: HOST,
      port: 7000 + i,
      busPort: ports[i]!,
      secret: 'cluster-test',
      seeds: ports.map((p) => ({ host: HOST, busPort: p })),
      gossipIntervalMs: 50,
      nodeTimeoutMs: 1000,
      probeTimeoutMs: 200,
      persisted,
      persist: (b) => disk.set(ids[i]!, b),
      persistEveryMs: 100,
      log: (level, msg) => logs.push(`${ids[i]} ${level} ${msg}`),
      busLimits: { reconnectBaseMs: 20, reconnectMaxMs: 200 },
      beforeListen: (bus) => bus.handle(0x40, (p) => Buffer.concat([Buffer.from(`${ids[i]}:`), p])),
    };
    const m = await ClusterMembership.start(opts);
    open.push(m);
    return m;
  };
  const nodes = [await start(0), await start(1), await start(2)];
  t.ok(await waitFor(() => allAlive(nodes, ids), 5000), 'three nodes started with one seed list converge');
  t.equal(nodes[0]!.table.get('node-b')!.port, 7001, 'client ports travel with the records');
  const reply = await nodes[0]!.bus.request({ host: HOST, port: ports[1]!, id: 'node-b' }, 0x40, Buffer.from('x'), 2000);
  t.equal(reply.toString(), 'node-b:x', 'handlers registered in beforeListen serve other nodes');

  // Restart node-c from its persisted table on the same cluster port.
  const c = nodes[2]!;
  await c.close();
  open.splice(open.indexOf(c), 1);
  t.ok(disk.has('node-c'), 'the table was persisted on close');
  const c2 = await start(2);
  t.equal(c2.table.size, 3, 'the restarted node knows its members before any gossip');
  t.ok(c2.table.self().incarnation >= 1, 'and comes back with a higher incarnation');
  const after = [nodes[0]!, nodes[1]!, c2];
  t.ok(await waitFor(() => allAlive(after, ids) && after.every((m) => m.table.get('node-c')!.incarnation === c2.table.self().incarnation), 5000), 'everyone sees the new incarnation, all alive');

  // A damaged table is ignored (logged) and the node rejoins from the seeds.
  await c2.close();
  open.splice(open.indexOf(c2), 1);
  const damaged = Buffer.from(disk.get('node-c')!);
  damaged[damaged.length - 1]! ^= 0xff;
  const c3 = await start(2, damaged);
  t.equal(c3.table.size, 1, 'nothing restored from a damaged table');
  t.ok(logs.some((l) => l.includes('node-c warn') && l.includes('checksum')), 'and it says so in the log');
  const final = [nodes[0]!, nodes[1]!, c3];
  t.ok(await waitFor(() => allAlive(final, ids), 5000), 'rejoined from the seeds');
  t.ok(c3.table.self().incarnation > c2.table.self().incarnation, 'outran its old incarnation after hearing of it (refutation path)');
});
