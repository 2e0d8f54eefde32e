// Randomized fault schedules for gossip membership in the deterministic simulation (sim.ts).
// Not part of `npm test` (no .test.ts suffix): a longer run for confidence.
//
//   node .build/<name>/test/cluster/gossip_soak.js [--schedules 20] [--nodes 10] [--first-seed 1]
//
// `--pause-max F` (default 0.9) sets the longest "short" pause to F x node-timeout; F = 2 makes
// I1 false on purpose and shows the checker catches it (violations expected).
//
// Each schedule, from its seed: converge, then 6 random faults in sequence, each followed by a
// settle phase: kill (+ later restart), pause below the timeout, pause past it, isolate one node
// (+ heal), cut one link. Invariants checked:
//   I1 a node paused for less than node-timeout is never marked down by anyone;
//   I2 a killed node is marked down by every live node within timeout + 2 x probe + 20 rounds;
//   I3 nobody marks a node down that was running and reachable from a majority the whole time;
//   I4 after every fault heals, all live nodes converge (all alive everywhere) within 5 timeouts.
// Exit code 1 and a line per violation if any schedule breaks one.
import { mulberry32, SimCluster, type SimNode } from './sim.js';

const INTERVAL = 100;
const TIMEOUT = 2000;
const PROBE = 500;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const PAUSE_MAX = arg('--pause-max', 0.9);

async function schedule(seed: number, n: number): Promise<string[]> {
  const bad: string[] = [];
  const sim = new SimCluster({ seed, gossipIntervalMs: INTERVAL, nodeTimeoutMs: TIMEOUT, probeTimeoutMs: PROBE });
  const rnd = mulberry32(seed ^ 0x5eed);
  for (let i = 0; i < n; i++) sim.add(i, [0, 1, 2]);
  if (!(await sim.runUntil(100 * INTERVAL, () => sim.converged()))) bad.push(`seed ${seed}: no initial convergence`);
  const pick = (): SimNode => sim.nodes[Math.floor(rnd() * n)]!;
  const downsOf = (id: string, from: number): number => sim.changes.slice(from).filter((c) => c.change.kind === 'down' && c.change.id === id).length;
  for (let step = 0; step < 6; step++) {
    const kind = Math.floor(rnd() * 5);
    const node = pick();
    const from = sim.changes.length;
    const t0 = sim.sched.now;
    let innocent: string[] = sim.nodes.map((x) => x.id).filter((id) => id !== node.id);
    if (kind === 0) {
      sim.kill(node);
      const others = sim.live();
      const ok = await sim.runUntil(t0 + TIMEOUT + 2 * PROBE + 20 * INTERVAL, () => others.every((o) => o.gossiper.table.get(node.id)!.liveness === 'down'));
      if (!ok) bad.push(`seed ${seed} step ${step}: killed ${node.id} not down everywhere in time (I2)`);
      sim.restart(node);
    } else if (kind === 1) {
      const ms = Math.floor((0.3 + (PAUSE_MAX - 0.3) * rnd()) * TIMEOUT);
      sim.pause(node, ms);
      await sim.runUntil(t0 + ms + 2 * TIMEOUT);
      if (downsOf(node.id, from) > 0) bad.push(`seed ${seed} step ${step}: ${node.id} paused ${ms} ms (< timeout) was marked down (I1)`);
      innocent = sim.nodes.map((x) => x.id);
    } else if (kind === 2) {
      sim.pause(node, Math.floor(TIMEOUT * (1.2 + rnd())));
      await sim.runUntil(t0 + 4 * TIMEOUT);
    } else if (kind === 3) {
      for (const o of sim.nodes) if (o !== node) sim.cut(node.id, o.id);
      await sim.runUntil(t0 + 3 * TIMEOUT);
      sim.heal();
    } else {
      const other = sim.nodes.find((o) => o !== node)!;
      sim.cut(node.id, other.id);
      await sim.runUntil(t0 + 3 * TIMEOUT);
      sim.heal();
      innocent = sim.nodes.map((x) => x.id);
    }
    for (const id of innocent) if (downsOf(id, from) > 0) bad.push(`seed ${seed} step ${step} (fault ${kind} on ${node.id}): ${id} wrongly marked down (I3)`);
    const healFrom = sim.sched.now;
    if (!(await sim.runUntil(healFrom + 5 * TIMEOUT, () => sim.converged()))) bad.push(`seed ${seed} step ${step}: no convergence after fault ${kind} (I4)`);
  }
  return bad;
}

const schedules = arg('--schedules', 20);
const nodes = arg('--nodes', 10);
const first = arg('--first-seed', 1);
const started = Date.now();
let violations = 0;
for (let s = first; s < first + schedules; s++) {
  const bad = await schedule(s, nodes);
  violations += bad.length;
  process.stdout.write(`schedule seed ${s}: ${bad.length === 0 ? 'ok' : bad.join('; ')}\n`);
}
process.stdout.write(`${schedules} schedules x 6 faults on ${nodes} nodes: ${violations} violations (${Math.round((Date.now() - started) / 1000)} s)\n`);
process.exitCode = violations === 0 ? 0 : 1;
