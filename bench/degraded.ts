/**
 * Issue 5's second measurement: a client workload's throughput and p99 on a degraded cluster, as
 * ratios to the healthy cluster in the same run. Real processes on loopback, N=3 W=2 R=2,
 * --nodes nodes (default 4: with N=3 a 3-node cluster has no fallback, so no hints to drain).
 *
 * Workload: --clients closed loops, 50% SET / 50% GET of 100 B values on --keys preloaded keys,
 * round robin over connections to the nodes that are up. Per round, in this order:
 *   healthy  --window-ms of load on the whole cluster.
 *   down     kill -9 the last node, wait until every other node marks it failed (past
 *            node-timeout-ms), then --window-ms of load (its writes leave hints on fallbacks).
 *   drain    restart it; load from its ready line until hints_pending is 0 on every node.
 *   restart  control for drain: kill -9 it again with no load (so no hints), restart it, and load
 *            from its ready line for as long as the drain phase lasted: the cost of the node's
 *            cold start and of the others still marking it failed, without handoff.
 *   repair   kill -9 it again, CONFIG SET sloppy-quorum no on the others and write --missed
 *            fresh keys it misses (no fallback, so no hints: only anti-entropy can bring them),
 *            restart it, sloppy-quorum yes again; load while CLUSTER REPAIR runs on it (the
 *            command replies when its round is done: unpaced, as an operator asked for it).
 *   background  the same setup as repair, but the restarted node runs a background round
 *            (paced: at most about half of its time busy): CONFIG SET anti-entropy-interval-ms
 *            on it, load until its INFO antientropy_rounds counts the round, then back to 0.
 *   healthy  again, --window-ms on the whole cluster (the round's baseline is the mean of both
 *            healthy windows, so a drift of the machine's load during the round cancels out).
 * Per phase: ops/s and p99 latency; per round the ratio to that round's healthy baseline; medians
 * over --rounds rounds. Writes bench/results/degraded.md and bench/results/degraded.svg.
 *
 *   npx tsc -p . --outDir .build/degraded && node .build/degraded/bench/degraded.js --rounds 3
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { startNodes, type RingkvNode } from '../test/helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../test/helpers/ports.js';
import { waitUntil } from '../test/helpers/fault_cluster.js';
import { clusterInfoNumbers, hintInfo, seesDown } from '../test/helpers/handoff_cluster.js';
import { barChartSvg, codeBlock, codeVersion, commandLine, describeEnvironment, flagValue, formatRatio, markdownTable, median, percentile } from './lib/index.js';
import { closedLoop, type LoadResult } from './lib/closed_loop.js';
import { AE_FIRST_ROUND_DELAY_MS } from '../src/cluster/anti_entropy.js';

const argv = process.argv.slice(2);
const NODES = Number(flagValue(argv, '--nodes') ?? 4);
const ROUNDS = Number(flagValue(argv, '--rounds') ?? 3);
const WINDOW_MS = Number(flagValue(argv, '--window-ms') ?? 3000);
const CLIENTS = Number(flagValue(argv, '--clients') ?? 8);
const KEYS = Number(flagValue(argv, '--keys') ?? 2000);
const MISSED_KEYS = Number(flagValue(argv, '--missed') ?? 2000);
const OUT_DIR = path.resolve(flagValue(argv, '--out') ?? 'bench/results');
const VALUE_BYTES = 100;
const PIPELINE_CHUNK = 200;
const SLOW_WAIT_TIMEOUT_MS = 180_000;
const VALUE = Buffer.alloc(VALUE_BYTES, 0x61);

const CONFIG = {
  'replication-factor': 3,
  'read-quorum': 2,
  'write-quorum': 2,
  vnodes: 32,
  'gossip-interval-ms': 100,
  'node-timeout-ms': 1000,
  'request-timeout-ms': 5000,
  appendfsync: 'everysec',
  // Anti-entropy only on CLUSTER REPAIR and in the background phase (set there, on one node).
  'anti-entropy-interval-ms': 0,
} as const;

const PHASES = ['healthy', 'down', 'drain', 'restart', 'repair', 'background'] as const;
/** anti-entropy-interval-ms set on the restarted node for the background phase: one round, then back to 0. */
const BACKGROUND_INTERVAL_MS = 600_000;
/** Shortest restart-phase window (a drain can end within a few ms). */
const MIN_RESTART_WINDOW_MS = 500;
type Phase = (typeof PHASES)[number];

interface PhaseSample {
  opsPerSec: number;
  p99Ms: number;
  errors: number;
  durationMs: number;
}

async function connect(port: number): Promise<Redis> {
  const c = new Redis({ host: LOOPBACK_HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

function sample(r: LoadResult): PhaseSample {
  return {
    opsPerSec: (r.ops * 1000) / r.elapsedMs,
    p99Ms: r.latenciesMs.length > 0 ? percentile(r.latenciesMs, 99) : Number.NaN,
    errors: r.errors,
    durationMs: r.elapsedMs,
  };
}

/** The workload on connections to `nodes` until `until` settles (its rejection is rethrown). */
async function measure(nodes: readonly RingkvNode[], until: Promise<unknown>): Promise<PhaseSample> {
  const clients = await Promise.all(nodes.map((n) => connect(n.port)));
  try {
    const r = await closedLoop(
      CLIENTS,
      (loop, i) => {
        const c = clients[(loop + i) % clients.length]!;
        const k = `dk:${Math.floor(Math.random() * KEYS)}`;
        return (loop + i) % 2 === 0 ? c.set(k, VALUE) : c.get(k);
      },
      until,
    );
    await until;
    return sample(r);
  } finally {
    for (const c of clients) c.disconnect();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes keys through `c` pipelined; a key whose write failed (e.g. NOQUORUM on a starved machine) is written again once. */
async function writeKeys(c: Redis, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += PIPELINE_CHUNK) {
    const chunk = keys.slice(i, i + PIPELINE_CHUNK);
    const p = c.pipeline();
    for (const k of chunk) p.set(k, VALUE);
    const res = (await p.exec()) ?? [];
    for (const [j, [err]] of res.entries()) if (err !== null) await c.set(chunk[j]!, VALUE);
  }
}

async function allSee(admins: readonly Redis[], id: string, down: boolean): Promise<void> {
  await waitUntil(`every node sees ${id} ${down ? 'down' : 'up'}`, async () => {
    for (const a of admins) if ((await seesDown(a, id)) !== down) return false;
    return true;
  }, SLOW_WAIT_TIMEOUT_MS);
}

async function totalHintsPending(admins: readonly Redis[]): Promise<number> {
  let n = 0;
  for (const a of admins) n += (await hintInfo(a)).hints_pending ?? 0;
  return n;
}

/**
 * Kills `victim`, writes --missed fresh keys with sloppy-quorum no on the others (no fallback, so
 * no hints: only anti-entropy can bring them to it), restarts it and waits until all see it up.
 */
async function missWrites(victim: RingkvNode, victimId: string, admins: readonly Redis[], prefix: string, writer: Redis = admins[0]!): Promise<void> {
  await victim.kill9();
  await allSee(admins, victimId, true);
  for (const a of admins) await a.call('CONFIG', 'SET', 'sloppy-quorum', 'no');
  await writeKeys(writer, Array.from({ length: MISSED_KEYS }, (_, i) => `${prefix}:${i}`));
  await victim.start();
  await allSee(admins, victimId, false);
  for (const a of admins) await a.call('CONFIG', 'SET', 'sloppy-quorum', 'yes');
}

async function infoField(c: Redis, name: string): Promise<number> {
  const v = (await clusterInfoNumbers(c))[name];
  if (v === undefined) throw new Error(`INFO cluster has no ${name}`);
  return v;
}

const antiEntropyRounds = (c: Redis): Promise<number> => infoField(c, 'antientropy_rounds');

async function main(): Promise<void> {
  const busPorts = await freePorts(NODES);
  const nodes = await startNodes(null, NODES, (i, ports) => ({
    config: {
      ...CONFIG,
      bind: LOOPBACK_HOST,
      'cluster-port': busPorts[i]!,
      seeds: ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(','),
    },
  }));
  const victim = nodes[NODES - 1]!;
  const others = nodes.slice(0, NODES - 1);
  const admins = await Promise.all(others.map((n) => connect(n.port)));
  const samples = new Map<Phase, PhaseSample[]>(PHASES.map((p) => [p, []]));
  const drained: number[] = [];
  const repairs: string[] = [];
  const backgrounds: string[] = [];
  try {
    const vc = await connect(victim.port);
    const victimId = String(await vc.call('CLUSTER', 'MYID'));
    vc.disconnect();
    await waitUntil('membership', async () => {
      for (const a of admins) if (!String(await a.call('CLUSTER', 'INFO')).includes(`cluster_known_nodes:${NODES}\r\n`)) return false;
      return true;
    }, SLOW_WAIT_TIMEOUT_MS);
    await writeKeys(admins[0]!, Array.from({ length: KEYS }, (_, i) => `dk:${i}`));

    for (let round = 0; round < ROUNDS; round++) {
      const got = new Map<Phase, PhaseSample>();
      got.set('healthy', await measure(nodes, sleep(WINDOW_MS)));

      await victim.kill9();
      await allSee(admins, victimId, true);
      got.set('down', await measure(others, sleep(WINDOW_MS)));

      const pending = await totalHintsPending(admins);
      await victim.start();
      got.set('drain', await measure(nodes, waitUntil('hints drained', async () => (await totalHintsPending(admins)) === 0, SLOW_WAIT_TIMEOUT_MS)));
      drained.push(pending);

      await victim.kill9();
      await allSee(admins, victimId, true);
      await victim.start();
      got.set('restart', await measure(nodes, sleep(Math.max(MIN_RESTART_WINDOW_MS, got.get('drain')!.durationMs))));
      await allSee(admins, victimId, false);

      await missWrites(victim, victimId, admins, `dm:${round}`, admins[round % admins.length]!);
      const hintsBefore = await totalHintsPending(admins);
      const rc = await connect(victim.port);
      try {
        const t0 = Date.now();
        got.set('repair', await measure(nodes, rc.call('CLUSTER', 'REPAIR').then((r) => repairs.push(`${String(r)} (${Date.now() - t0} ms, ${hintsBefore} hints pending at start)`))));
      } finally {
        rc.disconnect();
      }

      await missWrites(victim, victimId, admins, `db:${round}`);
      const bc = await connect(victim.port);
      try {
        const roundsBefore = await antiEntropyRounds(bc);
        await bc.call('CONFIG', 'SET', 'anti-entropy-interval-ms', String(BACKGROUND_INTERVAL_MS));
        const t0 = Date.now();
        // The load starts when the round does (the timer polls up to AE_FIRST_ROUND_DELAY_MS for
        // a changed interval): the phase is the round itself, not the wait before it.
        await waitUntil('a background anti-entropy round to start', async () => (await infoField(bc, 'antientropy_running')) === 1 || (await antiEntropyRounds(bc)) > roundsBefore, SLOW_WAIT_TIMEOUT_MS);
        const startedAfter = Date.now() - t0;
        const roundDone = waitUntil('a background anti-entropy round', async () => (await antiEntropyRounds(bc)) > roundsBefore, SLOW_WAIT_TIMEOUT_MS);
        got.set('background', await measure(nodes, roundDone));
        backgrounds.push(`round started ${startedAfter} ms after CONFIG SET; keys repaired ${await infoField(bc, 'antientropy_keys_repaired')}, round ${await infoField(bc, 'antientropy_last_round_ms')} ms`);
        await bc.call('CONFIG', 'SET', 'anti-entropy-interval-ms', '0');
      } finally {
        bc.disconnect();
      }

      const again = await measure(nodes, sleep(WINDOW_MS));
      const first = got.get('healthy')!;
      got.set('healthy', {
        opsPerSec: (first.opsPerSec + again.opsPerSec) / 2,
        p99Ms: (first.p99Ms + again.p99Ms) / 2,
        errors: first.errors + again.errors,
        durationMs: first.durationMs + again.durationMs,
      });
      for (const p of PHASES) samples.get(p)!.push(got.get(p)!);
      const h = got.get('healthy')!;
      process.stderr.write(
        `round ${round}: ${PHASES.map((p) => `${p} ${Math.round(got.get(p)!.opsPerSec)} ops/s p99 ${got.get(p)!.p99Ms.toFixed(1)} ms (${formatRatio(got.get(p)!.opsPerSec / h.opsPerSec)})`).join('; ')}; drained ${pending}; repair ${repairs.at(-1)}\n`,
      );
    }
  } finally {
    for (const a of admins) a.disconnect();
    await Promise.all(nodes.map((n) => n.dispose()));
  }

  const healthy = samples.get('healthy')!;
  const rows = PHASES.map((p) => {
    const s = samples.get(p)!;
    return {
      phase: p,
      ops: median(s.map((x) => x.opsPerSec)),
      p99: median(s.map((x) => x.p99Ms)),
      opsRatio: median(s.map((x, i) => x.opsPerSec / healthy[i]!.opsPerSec)),
      p99Ratio: median(s.map((x, i) => x.p99Ms / healthy[i]!.p99Ms)),
      errors: median(s.map((x) => x.errors)),
      duration: median(s.map((x) => x.durationMs)),
    };
  });
  const table = markdownTable(
    ['phase', 'ops/s', 'p99 ms', 'ops/s vs healthy', 'p99 vs healthy', 'errors', 'phase duration ms'],
    rows.map((r) => [r.phase, Math.round(r.ops), r.p99.toFixed(1), formatRatio(r.opsRatio), formatRatio(r.p99Ratio), r.errors, Math.round(r.duration)]),
  );
  const md = [
    `# Client workload on a degraded cluster (${NODES} nodes, N=3 W=2 R=2, loopback)`,
    '',
    `${ROUNDS} rounds; each round runs the phases below in this order on one cluster. ${CLIENTS} closed-loop clients, 50% SET / 50% GET of ${VALUE_BYTES} B values on ${KEYS} keys, over connections to the nodes that are up.`,
    `- healthy: ${WINDOW_MS} ms on the whole cluster at the start of the round and again at its end; the baseline is the mean of the two.`,
    `- down: the last node killed with kill -9 and marked failed by every other node (node-timeout-ms ${CONFIG['node-timeout-ms']}), then ${WINDOW_MS} ms.`,
    '- drain: from its restart (ready line) until hints_pending is 0 on every node.',
    `- restart: the control for drain: killed again with no load (no hints), restarted, then load from its ready line for as long as that round's drain phase (at least ${MIN_RESTART_WINDOW_MS} ms).`,
    `- repair: it is killed again, misses ${MISSED_KEYS} writes made with sloppy-quorum no (so no hints), restarts; the phase lasts while CLUSTER REPAIR runs on it (unpaced: an operator asked for it).`,
    `- background: the same setup (another ${MISSED_KEYS} missed writes); then anti-entropy-interval-ms is set on the restarted node and the phase runs from the round's start (INFO antientropy_running, polled; the round starts within ${AE_FIRST_ROUND_DELAY_MS} ms) until antientropy_rounds counts it (paced: it sleeps as long as each request took, at most about half of the time busy).`,
    '',
    'Medians over rounds; the ratios are medians of each round\'s ratio to that round\'s healthy baseline. "errors" counts failed commands (NOQUORUM, timeouts).',
    '',
    table,
    `Hints drained per round: ${drained.join(', ')}.`,
    '',
    'CLUSTER REPAIR replies (per round):',
    '',
    ...repairs.map((r) => `- ${r}`),
    '',
    'Background rounds (per round):',
    '',
    ...backgrounds.map((r) => `- ${r}`),
    '',
    `Machine: ${describeEnvironment()} (shared with other engineers: compare the ratios). The ${NODES} nodes and the client share its CPUs: with one node killed the others get more of them, which the down phase's ratio includes.`,
    '',
    `Code: ${codeVersion(['src'])}`,
    '',
    'Command:',
    '',
    codeBlock(commandLine(import.meta.url)),
  ].join('\n');
  await fs.mkdir(OUT_DIR, { recursive: true });
  await fs.writeFile(path.join(OUT_DIR, 'degraded.md'), md);
  await fs.writeFile(
    path.join(OUT_DIR, 'degraded.svg'),
    barChartSvg({
      title: `Client workload on a degraded cluster (${NODES} nodes, N=3 W=2 R=2)`,
      subtitle: 'ratio to the healthy phase, median of rounds (ops/s: higher is better; p99: lower is better)',
      categories: rows.map((r) => r.phase),
      series: [
        { name: 'ops/s ratio', values: rows.map((r) => r.opsRatio) },
        { name: 'p99 ratio', values: rows.map((r) => r.p99Ratio) },
      ],
      yLabel: 'x healthy',
    }),
  );
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
