// Gossip on the real cluster bus over 127.0.0.1 with dynamic ports: three nodes started with one
// seed list (naming themselves too) converge; a fourth joins by MEET; a stopped node is marked
// down by the others (probes through the bus), and nobody else is.
import t, { type Test } from 'tap';
import { ClusterBus } from '../../src/cluster/bus.js';
import { Gossiper, realClock, type GossipPeer } from '../../src/cluster/gossip.js';
import { attachGossip, busGossipTransport } from '../../src/cluster/gossip_bus.js';
import { MembershipTable, type MemberChange } from '../../src/cluster/membership.js';

const HOST = '127.0.0.1';
const INTERVAL = 50;
const TIMEOUT = 1500;
const PROBE = 400;

interface Node {
  id: string;
  bus: ClusterBus;
  gossiper: Gossiper;
  changes: MemberChange[];
}

async function listenBus(t: Test, id: string): Promise<ClusterBus> {
  const bus = new ClusterBus({ nodeId: id, host: HOST, port: 0, secret: 'shared-secret', limits: { reconnectBaseMs: 20, reconnectMaxMs: 200 } });
  await bus.listen();
  t.teardown(() => bus.close());
  return bus;
}

/** Gossip on an already listening bus (ports are dynamic, so the seed list exists only after binding). */
function startGossip(t: Test, bus: ClusterBus, seeds: GossipPeer[]): Node {
  const changes: MemberChange[] = [];
  const id = bus.nodeId;
  const table = MembershipTable.create({ id, host: HOST, port: 6379, busPort: bus.port, dc: 'dc1', rack: '', weight: 1, state: 'up' }, realClock.now(), { nodeTimeoutMs: TIMEOUT });
  const gossiper = new Gossiper({
    table,
    transport: busGossipTransport(bus),
    gossipIntervalMs: INTERVAL,
    probeTimeoutMs: PROBE,
    seeds,
    onChange: (cs) => changes.push(...cs),
  });
  attachGossip(bus, gossiper);
  gossiper.start();
  t.teardown(() => gossiper.stop());
  return { id, bus, gossiper, changes };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

const sees = (n: Node, ids: string[], liveness: 'alive' | 'down'): boolean => ids.every((id) => n.gossiper.table.get(id)?.liveness === liveness);

t.test('three bus nodes converge from one seed list, a fourth joins by MEET, a stopped one goes down', async (t) => {
  const buses = [await listenBus(t, 'alpha'), await listenBus(t, 'beta'), await listenBus(t, 'gamma')];
  // One seed list for all three, each node's own address included.
  const seedList: GossipPeer[] = buses.map((b) => ({ host: HOST, busPort: b.port }));
  const ports = buses.map((b) => b.port);
  const started = Date.now();
  const nodes = buses.map((b) => startGossip(t, b, seedList));
  const ids = nodes.map((n) => n.id);
  t.ok(await waitFor(() => nodes.every((n) => n.gossiper.table.size === 3 && sees(n, ids, 'alive')), 5000), 'all three know each other');
  t.comment(`3 nodes on the bus converged in ${Date.now() - started} ms`);

  // A fourth node joins through one MEET; gossip spreads it to the others.
  const delta = startGossip(t, await listenBus(t, 'delta'), []);
  t.equal(await delta.gossiper.meet(HOST, ports[0]!, 3000), 'alpha', 'MEET answers with the node id found there');
  const all = [...ids, 'delta'];
  const four = [...nodes, delta];
  t.ok(await waitFor(() => four.every((n) => n.gossiper.table.size === 4 && sees(n, all, 'alive')), 5000), 'the fourth node spread to everyone');

  // Stable for a few timeouts: nobody suspected down.
  await new Promise((r) => setTimeout(r, 1.5 * TIMEOUT));
  t.equal(four.flatMap((n) => n.changes).filter((c) => c.kind === 'down').length, 0, 'no node marked down while all run');

  // Stop gamma (its bus closes: connections refused); the others mark it down.
  const gamma = nodes[2]!;
  const stoppedAt = Date.now();
  gamma.gossiper.stop();
  await gamma.bus.close();
  const rest = [nodes[0]!, nodes[1]!, delta];
  t.ok(await waitFor(() => rest.every((n) => sees(n, ['gamma'], 'down')), 4 * TIMEOUT), 'gamma marked down by every other node');
  const took = Date.now() - stoppedAt;
  t.ok(took >= TIMEOUT * 0.75, `not before the timeout (${took} ms)`);
  t.comment(`gamma down everywhere ${took} ms after it stopped (node-timeout ${TIMEOUT} ms)`);
  t.ok(rest.every((n) => sees(n, ['alpha', 'beta', 'delta'], 'alive')), 'the others stay alive');
});
