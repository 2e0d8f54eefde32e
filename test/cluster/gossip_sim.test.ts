// Gossip and failure detection in a deterministic in-process simulation (sim.ts: virtual time,
// seeded randomness, injected transport; no sockets). Convergence of 3, 10 and 100 nodes from
// a shared seed list; a dead node marked down everywhere after the timeout and back when it
// restarts; a node paused below the timeout never marked down; a false suspicion refuted; an
// isolated node that marks nobody down for its own isolation.
import t from 'tap';
import { SimCluster, type ChangeLog } from './sim.js';

const INTERVAL = 100;
const TIMEOUT = 2000;
const PROBE = 500;

async function converge(n: number, seed: number): Promise<{ sim: SimCluster; rounds: number }> {
  const sim = new SimCluster({ seed, gossipIntervalMs: INTERVAL, nodeTimeoutMs: TIMEOUT, probeTimeoutMs: PROBE });
  // One seed list for everyone (it includes the seeds themselves).
  const seeds = [0, 1, 2].filter((s) => s < n);
  for (let i = 0; i < n; i++) sim.add(i, seeds);
  const done = await sim.runUntil(100 * INTERVAL, () => sim.converged());
  if (!done) throw new Error(`${n} nodes did not converge in 100 rounds`);
  return { sim, rounds: sim.round() };
}

const downs = (log: readonly ChangeLog[], id: string): ChangeLog[] => log.filter((c) => c.change.kind === 'down' && c.change.id === id);

t.test('convergence of 3, 10 and 100 nodes from one seed list', async (t) => {
  const report: string[] = [];
  for (const n of [3, 10, 100]) {
    const rounds: number[] = [];
    for (const seed of n === 100 ? [1] : [1, 2, 3]) {
      const { sim, rounds: r } = await converge(n, seed);
      rounds.push(r);
      t.ok(sim.converged(), `${n} nodes, seed ${seed}: every node knows all ${n} and sees them alive`);
      t.equal(sim.changes.filter((c) => c.change.kind === 'down').length, 0, 'nobody marked down while converging');
      // Every table agrees on every record's owner-set fields.
      const ref = JSON.stringify(sim.nodes[0]!.gossiper.table.members().map((m) => [m.id, m.host, m.busPort, m.rack, m.state]));
      t.ok(sim.nodes.every((x) => JSON.stringify(x.gossiper.table.members().map((m) => [m.id, m.host, m.busPort, m.rack, m.state])) === ref));
      if (n === 100) t.comment(`100 nodes seed ${seed}: ${sim.messages} messages, ${sim.sched.events} events`);
    }
    report.push(`${n} nodes: converged in ${rounds.join(', ')} rounds`);
    t.ok(Math.max(...rounds) <= (n === 100 ? 30 : 15), `${n} nodes within the round budget (${rounds.join(', ')})`);
  }
  t.comment(`gossip convergence (interval ${INTERVAL} ms, seeds n0..n2): ${report.join('; ')}`);
});

t.test('deterministic: the same seed gives the same run', async (t) => {
  const a = await converge(10, 7);
  const b = await converge(10, 7);
  t.equal(a.rounds, b.rounds);
  t.equal(a.sim.messages, b.sim.messages);
  t.equal(a.sim.sched.events, b.sim.sched.events);
});

t.test('a dead node is marked down everywhere after the timeout, and up again when it restarts', async (t) => {
  const { sim } = await converge(10, 11);
  await sim.runUntil(sim.sched.now + 10 * INTERVAL);
  const victim = sim.nodes[5]!;
  const killedAt = sim.sched.now;
  sim.kill(victim);
  const others = sim.live();
  const allDown = (): boolean => others.every((o) => o.gossiper.table.get(victim.id)!.liveness === 'down');
  t.ok(await sim.runUntil(killedAt + 3 * TIMEOUT, allDown), 'every live node marks it down');
  const times = downs(sim.changes, victim.id).map((c) => Math.round(c.at - killedAt)).sort((x, y) => x - y);
  t.equal(times.length, others.length, 'once per observer');
  t.ok(times[0]! >= TIMEOUT, `never before the timeout (first after ${times[0]} ms)`);
  t.ok(times[times.length - 1]! <= TIMEOUT + 2 * PROBE + 10 * INTERVAL, `all within timeout + probes + a few rounds (last ${times[times.length - 1]} ms)`);
  t.comment(`detection time after kill: min ${times[0]} ms, median ${times[times.length >> 1]} ms, max ${times[times.length - 1]} ms (node-timeout ${TIMEOUT}, probe ${PROBE})`);
  t.equal(sim.changes.filter((c) => c.change.kind === 'down' && c.change.id !== victim.id).length, 0, 'no other node was marked down');
  // Restart from its persisted table: a new incarnation, and alive again everywhere.
  const restartAt = sim.sched.now;
  sim.restart(victim);
  t.ok(await sim.runUntil(restartAt + 3 * TIMEOUT, () => sim.converged()), 'back alive everywhere');
  t.ok(victim.gossiper.table.self().incarnation >= 1, 'restarted with a higher incarnation');
  t.comment(`back up everywhere ${Math.round(sim.sched.now - restartAt)} ms after restart`);
});

t.test('a node paused for less than the timeout is never marked down', async (t) => {
  const { sim } = await converge(10, 21);
  await sim.runUntil(sim.sched.now + 10 * INTERVAL);
  for (const pauseMs of [0.5 * TIMEOUT, 0.9 * TIMEOUT]) {
    const node = sim.nodes[3]!;
    const start = sim.sched.now;
    const logFrom = sim.changes.length;
    sim.pause(node, pauseMs);
    await sim.runUntil(start + pauseMs + 3 * TIMEOUT);
    const later = sim.changes.slice(logFrom);
    t.equal(later.filter((c) => c.change.kind === 'down').length, 0, `paused ${pauseMs} ms: nobody marked down`);
    t.ok(sim.converged(), 'all alive afterwards');
    t.ok(node.gossiper.stats.lateRounds >= 1, 'the paused node saw its own late timer');
    t.equal(later.filter((c) => c.observer === node.id && c.change.kind === 'suspect').length, 0, 'and suspected nobody for its own pause');
    t.comment(`paused ${pauseMs} ms: ${later.filter((c) => c.change.kind === 'suspect').length} suspicions, 0 down`);
  }
});

t.test('a false suspicion is refuted: paused just past the timeout, it answers the probes', async (t) => {
  const { sim } = await converge(10, 31);
  await sim.runUntil(sim.sched.now + 10 * INTERVAL);
  const node = sim.nodes[4]!;
  const start = sim.sched.now;
  const logFrom = sim.changes.length;
  sim.pause(node, TIMEOUT + PROBE / 2);
  await sim.runUntil(start + 4 * TIMEOUT);
  const later = sim.changes.slice(logFrom);
  const suspicions = later.filter((c) => c.change.kind === 'suspect' && c.change.id === node.id);
  t.ok(suspicions.length >= 1, `it was suspected (${suspicions.length} observers)`);
  t.equal(downs(later, node.id).length, 0, 'but never marked down: it answered the probes');
  t.ok(node.gossiper.stats.refutations >= 1, 'it refuted the suspicion claim');
  t.ok(node.gossiper.table.self().incarnation >= 1, 'with a higher incarnation');
  t.ok(sim.converged(), 'alive everywhere');
  t.ok(sim.nodes.every((n) => n.gossiper.table.get(node.id)!.suspectedAt === null), 'no claim left anywhere');
});

t.test('an isolated node marks nobody down; the others mark it down; all heal', async (t) => {
  const { sim } = await converge(10, 41);
  await sim.runUntil(sim.sched.now + 10 * INTERVAL);
  const lonely = sim.nodes[7]!;
  for (const n of sim.nodes) if (n !== lonely) sim.cut(lonely.id, n.id);
  const start = sim.sched.now;
  const logFrom = sim.changes.length;
  await sim.runUntil(start + 3 * TIMEOUT);
  const during = sim.changes.slice(logFrom);
  t.equal(during.filter((c) => c.observer === lonely.id && c.change.kind === 'down').length, 0, 'no confirmation reached it: nobody down in its view');
  t.ok(lonely.gossiper.table.members().filter((m) => m.id !== lonely.id).every((m) => m.liveness === 'suspect'), 'it suspects everyone');
  t.equal(downs(during, lonely.id).length, 9, 'each of the 9 others marked it down (helpers confirmed)');
  t.equal(during.filter((c) => c.change.kind === 'down' && c.change.id !== lonely.id).length, 0, 'and nobody else');
  sim.heal();
  const healAt = sim.sched.now;
  t.ok(await sim.runUntil(healAt + 3 * TIMEOUT, () => sim.converged()), 'after healing all are alive everywhere');
  t.comment(`healed in ${Math.round(sim.sched.now - healAt)} ms`);
});

t.test('without a witness nothing is confirmed: two of three dead stay suspect; a pair decides alone', async (t) => {
  const { sim } = await converge(3, 51);
  await sim.runUntil(sim.sched.now + 10 * INTERVAL);
  sim.kill(sim.nodes[1]!);
  sim.kill(sim.nodes[2]!);
  await sim.runUntil(sim.sched.now + 4 * TIMEOUT);
  const survivor = sim.nodes[0]!.gossiper.table;
  t.same([survivor.get('n1')!.liveness, survivor.get('n2')!.liveness], ['suspect', 'suspect'], 'no third party answered: suspect (pfail), not down');
  const pair = await converge(2, 52);
  await pair.sim.runUntil(pair.sim.sched.now + 10 * INTERVAL);
  pair.sim.kill(pair.sim.nodes[1]!);
  await pair.sim.runUntil(pair.sim.sched.now + 4 * TIMEOUT);
  t.equal(pair.sim.nodes[0]!.gossiper.table.get('n1')!.liveness, 'down', 'in a two-node cluster the direct probe decides');
});

t.test('a state change (up -> leaving) spreads to every node with the new incarnation', async (t) => {
  const { sim } = await converge(10, 61);
  const node = sim.nodes[2]!;
  const change = node.gossiper.updateSelf({ state: 'leaving' });
  t.equal(change.kind, 'updated');
  const at = sim.sched.now;
  const spread = (): boolean => sim.nodes.every((n) => n.gossiper.table.get(node.id)!.state === 'leaving');
  t.ok(await sim.runUntil(at + 20 * INTERVAL, spread), 'every node sees it leaving');
  t.ok(sim.changes.filter((c) => c.change.kind === 'updated' && c.change.id === node.id).length >= 10, 'reported as an update on every node');
  t.comment(`state change reached all 10 nodes in ${Math.round((sim.sched.now - at) / INTERVAL)} rounds`);
});
