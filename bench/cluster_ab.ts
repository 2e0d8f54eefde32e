/**
 * A/B of two ringkv builds as a 3-node cluster (N=3 W=2 R=2, appendfsync everysec), for the
 * cluster-core (issue 4) hot path: alternating rounds, medians, ratios; and the CPU each request
 * costs the node processes (utime + stime of the three pids from /proc/PID/stat, summed), which
 * is far less sensitive to the other load on a shared machine than ops/s.
 *
 *   node .build/NAME/bench/cluster_ab.js --a .build/BEFORE --b .build/AFTER [--rounds 4]
 *        [--requests 20000] [--paired] [--a-node-args '...'] [--b-node-args '...'] [--out bench/results/cluster-ab]
 *
 * Per round and build (order swapped every round): a fresh cluster of THAT build (its own
 * bench/cluster_procs.js, so its own CLI), preloaded with one SET per key, then
 * redis-benchmark -c 50 -d 100 -r KEYSPACE against node 0: SET -P 16, GET -P 16, SET -P 1,
 * GET -P 1. Writes `<out>.md` and `<out>.svg` when --out is given, else prints the table.
 * --paired: per round both builds' clusters run side by side and every workload hits both at
 * the same time (see runPaired): on a machine whose other load changes between rounds, the
 * two CPU figures of a round were measured under the same load.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { barChartSvg, benchEnvironment, describeEnvironment, flagValue, formatNumber, formatRatio, markdownTable, median } from './lib/index.js';
import { runBenchmark } from './redis_benchmark.js';
import type { StartedCluster } from './cluster_procs.js';

const CLIENTS = 50;
const DATA_BYTES = 100;
const KEYSPACE = 10_000;
/** Linux USER_HZ: /proc/PID/stat counts CPU time in these ticks per second. */
const CLOCK_TICKS_PER_S = 100;
const CONFIG = { 'replication-factor': 3, 'read-quorum': 2, 'write-quorum': 2, appendfsync: 'everysec' } as const;
const WORKLOADS = [
  { test: 'set', pipeline: 16 },
  { test: 'get', pipeline: 16 },
  { test: 'set', pipeline: 1 },
  { test: 'get', pipeline: 1 },
] as const;

/** Median of the finite values (failed runs are NaN and left out); NaN when none. */
const finiteMedian = (xs: readonly number[]): number => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length === 0 ? NaN : median(ok);
};

type StartCluster = (cli: string, n: number, config: Readonly<Record<string, string | number>>, nodeArgs?: (i: number) => readonly string[]) => Promise<StartedCluster>;

interface Sample {
  rps: number;
  p99Ms: number;
  /** CPU of the three node processes per request, microseconds. */
  cpuUsPerReq: number;
  /**
   * CPU of node 0 (the coordinator of every request) per request, microseconds: with all
   * requests sent to node 0 its main thread is the bound (cluster_profile.ts: busy 0.93-0.97 at
   * -P 16 while the replicas idle), so this predicts ops/s on a quiet machine better than the sum.
   */
  node0UsPerReq: number;
  /**
   * Node 0's write and read system calls per request (syscw, syscr of /proc/PID/io: write/writev
   * and read/readv on its sockets and files). On loopback a socket write also runs the receiving
   * side's TCP path and wakeup in the writer's context, so each one is a visible share of node 0's CPU.
   */
  node0WritesPerReq: number;
  node0ReadsPerReq: number;
}

/** CPU ticks (utime + stime) of one process. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

/** Write and read system calls of one process so far (/proc/PID/io syscw, syscr). */
function syscalls(pid: number): { w: number; r: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? NaN);
  return { w: field('syscw'), r: field('syscr') };
}

const label = (w: (typeof WORKLOADS)[number]): string => `${w.test.toUpperCase()} -P ${w.pipeline}`;

/** A running cluster of one build, preloaded. */
interface Running {
  readonly build: string;
  readonly cluster: StartedCluster;
  readonly base: { bin: string; port: number; clients: number; dataBytes: number; keyspace: number };
}

/** Extra node flags per side (--a-node-args / --b-node-args, space-separated), e.g. V8 heap sizes. */
const nodeArgsOf: Record<string, readonly string[]> = {};

async function startBuild(build: string): Promise<Running> {
  const procs = (await import(pathToFileURL(path.resolve(build, 'bench/cluster_procs.js')).href)) as { startRingkvCluster: StartCluster };
  const extra = nodeArgsOf[build] ?? [];
  const cluster = await procs.startRingkvCluster('redis-cli', 3, CONFIG, () => extra);
  const base = { bin: 'redis-benchmark', port: cluster.ports[0]!, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE };
  try {
    await runBenchmark({ ...base, test: 'set', requests: KEYSPACE * 3, pipeline: 16 });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return { build, cluster, base };
}

const FAILED: Sample = { rps: NaN, p99Ms: NaN, cpuUsPerReq: NaN, node0UsPerReq: NaN, node0WritesPerReq: NaN, node0ReadsPerReq: NaN };

/** One workload against node 0 of `r`, with the CPU and system calls it cost the nodes. */
async function measure(r: Running, w: (typeof WORKLOADS)[number], requests: number): Promise<Sample> {
  const pids = r.cluster.pids();
  const before = pids.reduce((a, p) => a + cpuTicks(p), 0);
  const node0Before = cpuTicks(pids[0]!);
  const node0IoBefore = syscalls(pids[0]!);
  const n = w.pipeline === 1 ? Math.round(requests / 2) : requests;
  try {
    const row = await runBenchmark({ ...r.base, test: w.test, requests: n, pipeline: w.pipeline });
    const after = pids.reduce((a, p) => a + cpuTicks(p), 0);
    const usPerReq = (ticks: number): number => (ticks / CLOCK_TICKS_PER_S / n) * 1e6;
    const io = syscalls(pids[0]!);
    return {
      rps: row.rps,
      p99Ms: row.p99Ms,
      cpuUsPerReq: usPerReq(after - before),
      node0UsPerReq: usPerReq(cpuTicks(pids[0]!) - node0Before),
      node0WritesPerReq: (io.w - node0IoBefore.w) / n,
      node0ReadsPerReq: (io.r - node0IoBefore.r) / n,
    };
  } catch (err) {
    // e.g. a NOQUORUM past the request timeout on an overloaded machine: the run is left out.
    process.stderr.write(`${r.build} ${label(w)}: run failed, left out: ${(err as Error).message.slice(0, 200)}\n`);
    return FAILED;
  }
}

async function runBuild(build: string, requests: number): Promise<Sample[]> {
  const r = await startBuild(build);
  try {
    const out: Sample[] = [];
    for (const w of WORKLOADS) out.push(await measure(r, w, requests));
    return out;
  } finally {
    await r.cluster.stop();
  }
}

/**
 * --paired: both builds' clusters run at the same time, each workload against both at once, so
 * both see the same machine (the other helpers' load changes from minute to minute on a shared
 * machine; alternating rounds only spread it). Ops/s are then each cluster's share of the
 * machine; the CPU per request is the figure to compare.
 */
async function runPaired(a: string, b: string, requests: number): Promise<[Sample[], Sample[]]> {
  const [ra, rb] = await Promise.all([startBuild(a), startBuild(b)]);
  try {
    const sa: Sample[] = [];
    const sb: Sample[] = [];
    for (const w of WORKLOADS) {
      const [x, y] = await Promise.all([measure(ra, w, requests), measure(rb, w, requests)]);
      sa.push(x);
      sb.push(y);
    }
    return [sa, sb];
  } finally {
    await Promise.all([ra.cluster.stop(), rb.cluster.stop()]);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const a = flagValue(argv, '--a');
  const b = flagValue(argv, '--b');
  if (a === undefined || b === undefined) throw new Error('usage: cluster_ab.js --a BUILD_DIR --b BUILD_DIR [--rounds N] [--requests N] [--paired] [--a-node-args ARGS] [--b-node-args ARGS] [--out PREFIX]');
  const rounds = Number(flagValue(argv, '--rounds') ?? 4);
  const requests = Number(flagValue(argv, '--requests') ?? 20_000);
  const outPrefix = flagValue(argv, '--out');
  const samples: Record<'A' | 'B', Sample[][]> = { A: [], B: [] };
  const loads: string[] = [];
  const paired = argv.includes('--paired');
  // The same build on both sides with different node flags needs two names for it: --b may be
  // the same directory with a trailing slash.
  const aArgs = flagValue(argv, '--a-node-args');
  const bArgs = flagValue(argv, '--b-node-args');
  if (aArgs !== undefined) nodeArgsOf[a] = aArgs.split(' ').filter((x) => x.length > 0);
  if (bArgs !== undefined) nodeArgsOf[b] = bArgs.split(' ').filter((x) => x.length > 0);
  if ((aArgs !== undefined || bArgs !== undefined) && a === b) throw new Error('--a and --b must differ as strings when node args differ (add a trailing slash to one)');
  const show = (r: number, x: 'A' | 'B', s: Sample[]): void => {
    process.stderr.write(
      `round ${r + 1} ${x}: ${s.map((v, i) => `${label(WORKLOADS[i]!)} ${Math.round(v.rps)}/s p99 ${v.p99Ms} ms ${Math.round(v.cpuUsPerReq)} us (node 0 ${Math.round(v.node0UsPerReq)}, ${v.node0WritesPerReq.toFixed(3)} writes ${v.node0ReadsPerReq.toFixed(3)} reads)`).join('; ')}\n`,
    );
  };
  for (let r = 0; r < rounds && paired; r++) {
    loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!);
    const [sa, sb] = await runPaired(a, b, requests);
    samples.A.push(sa);
    samples.B.push(sb);
    show(r, 'A', sa);
    show(r, 'B', sb);
  }
  for (let r = 0; r < rounds && !paired; r++) {
    const order: Array<'A' | 'B'> = r % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const x of order) {
      loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!);
      const s = await runBuild(x === 'A' ? a : b, requests);
      samples[x].push(s);
      process.stderr.write(`round ${r + 1} ${x}: ${s.map((v, i) => `${label(WORKLOADS[i]!)} ${Math.round(v.rps)}/s p99 ${v.p99Ms} ms ${Math.round(v.cpuUsPerReq)} us (node 0 ${Math.round(v.node0UsPerReq)}, ${v.node0WritesPerReq.toFixed(3)} writes ${v.node0ReadsPerReq.toFixed(3)} reads)`).join('; ')}\n`);
    }
  }
  const rows = WORKLOADS.map((w, i) => {
    const col = (x: 'A' | 'B', f: (s: Sample) => number): number[] => samples[x].map((s) => f(s[i]!));
    const perRound = (f: (s: Sample) => number): number[] => samples.A.map((s, r) => f(samples.B[r]![i]!) / f(s[i]!));
    const med = (x: 'A' | 'B', f: (s: Sample) => number): number => finiteMedian(col(x, f));
    return [
      label(w),
      Math.round(med('A', (s) => s.cpuUsPerReq)),
      Math.round(med('B', (s) => s.cpuUsPerReq)),
      formatRatio(finiteMedian(perRound((s) => s.cpuUsPerReq))),
      Math.round(med('A', (s) => s.node0UsPerReq)),
      Math.round(med('B', (s) => s.node0UsPerReq)),
      formatRatio(finiteMedian(perRound((s) => s.node0UsPerReq))),
      `${med('A', (s) => s.node0WritesPerReq).toFixed(3)} / ${med('B', (s) => s.node0WritesPerReq).toFixed(3)}`,
      Math.round(med('A', (s) => s.rps)),
      Math.round(med('B', (s) => s.rps)),
      formatRatio(finiteMedian(perRound((s) => s.rps))),
      formatNumber(med('A', (s) => s.p99Ms)),
      formatNumber(med('B', (s) => s.p99Ms)),
      perRound((s) => s.rps).map((v) => v.toFixed(2)).join(', '),
    ];
  });
  const table = markdownTable(
    ['workload', 'CPU us/req A', 'CPU us/req B', 'B/A CPU', 'node 0 us/req A', 'node 0 us/req B', 'B/A node 0', 'node 0 writes/req A / B', 'ops/s A', 'ops/s B', 'B/A ops', 'p99 ms A', 'p99 ms B', 'B/A ops per round'],
    rows,
  );
  const text =
    `# Cluster A/B: ${a} (A) vs ${b} (B)\n\n${describeEnvironment(benchEnvironment())}; load average (1 min) before each run: ${loads.join(', ')}\n\n` +
    `Command: \`node ${process.argv.slice(1).map((x) => path.relative(process.cwd(), x) || x).join(' ')}\`\n\n` +
    (paired
      ? `3 nodes N=3 W=2 R=2 appendfsync everysec, fresh per round and build; --paired: both builds' clusters up at once and each workload run against both at the same time (ops/s: each one's share of the machine), ` 
      : `3 nodes N=3 W=2 R=2 appendfsync everysec, fresh per round and build, builds alternated (order swapped each round), `) +
    `redis-benchmark -c ${CLIENTS} -d ${DATA_BYTES} -r ${KEYSPACE} against node 0 (-n ${requests} at -P 16, ${Math.round(requests / 2)} at -P 1). ` +
    `CPU us/req: utime+stime of the 3 node processes over the run / requests; node 0: the same for node 0 alone (the coordinator); writes/req: node 0's write system calls per request (/proc/PID/io syscw). Medians of ${rounds} rounds; B/A = median of per-round ratios.\n\n` +
    table;
  if (outPrefix === undefined) {
    process.stdout.write(text);
    return;
  }
  writeFileSync(`${outPrefix}.md`, text);
  writeFileSync(
    `${outPrefix}.svg`,
    barChartSvg({
      title: 'Cluster A/B: CPU of the 3 node processes per request (lower is better)',
      subtitle: `A = ${a}, B = ${b}; medians of ${rounds} alternating rounds`,
      categories: WORKLOADS.map(label),
      series: (['A', 'B'] as const).map((x) => ({ name: x, values: WORKLOADS.map((_, i) => finiteMedian(samples[x].map((s) => s[i]!.cpuUsPerReq))) })),
      yLabel: 'CPU us per request',
    }),
  );
  process.stdout.write(text);
}

await main();
