/**
 * Issue 4's benchmark: redis-benchmark (-c 50, -d 100, SET/GET at -P 1 and -P 16) side by side in
 * one run against
 *   ringkv-1          one ringkv node
 *   ringkv-3          3 ringkv nodes, N=3 W=2 R=2, every request sent to node 0 (it coordinates)
 *   ringkv-3-cluster  the same 3 nodes, redis-benchmark --cluster (keys routed by CLUSTER NODES)
 *   redis             one redis-server
 *   redis-cluster     a Redis Cluster of 3 primaries + 3 replicas, redis-benchmark --cluster
 * All persist with appendfsync everysec (ringkv `--appendfsync everysec`, redis `--appendonly yes
 * --appendfsync everysec --save ""`). Targets (issue 4): ringkv-3 >= 0.4x ringkv-1 at -P 16, and
 * ringkv-3 p99 < 10 ms at -P 1.
 *
 *   node .build/NAME/bench/cluster.js [--rounds 3] [--warmup 1] [--run-seconds 3] [--quick]
 *        [--profile] [--out bench/results] [--only ringkv-1,ringkv-3] [--rev COMMIT]
 *
 * Each contender is started once (temp dirs, dynamic ports) and stopped by pid at the end.
 * Before the runs each contender gets PRELOAD_REQUESTS SETs over the KEYSPACE keys, so GETs hit
 * alike everywhere. Per workload the contenders alternate (order rotated every round), warm-up
 * rounds size the measured runs to about --run-seconds each and are discarded; tables report
 * medians over rounds and ratios of medians. --profile afterwards runs a fresh ringkv-3 with its
 * coordinator (node 0) and a replica (node 1) under `node --cpu-prof` and lists their hot spots
 * for each -P 16 workload. Writes <out>/cluster.md and <out>/cluster.svg.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  barChartSvg,
  codeBlock,
  commandLine,
  codeVersion,
  describeEnvironment,
  flagValue,
  formatBytes,
  formatNumber,
  formatRatio,
  markdownTable,
  median,
  medians,
  ratio,
  relativeSpread,
  runAlternating,
  type Contender,
} from './lib/index.js';
import { readProfile, topInclusiveTime, topSelfTime, type HotSpot } from './cpuprofile_top.js';
import { benchmarkArgs, runBenchmark, type BenchmarkRow, type BenchmarkRun } from './redis_benchmark.js';
import { startRedisCluster, startRingkvCluster, type StartedCluster } from './cluster_procs.js';
import { startNode } from '../test/helpers/node_process.js';
import { redisBenchmarkPath, redisCliPath, redisServerPath, startRedisServer } from '../test/helpers/redis_server.js';

const CLIENTS = 50;
const DATA_BYTES = 100;
/** Keys redis-benchmark -r picks from; PRELOAD_REQUESTS SETs cover all but ~0.7% of them. */
const KEYSPACE = 10_000;
const PRELOAD_REQUESTS = 50_000;
const RUN_REQUESTS_MIN = 5_000;
const RUN_REQUESTS_MAX = 2_000_000;
/** Issue 4's targets. */
const TARGET_CLUSTER_RATIO_P16 = 0.4;
const TARGET_P99_MS_P1 = 10;
const PROFILE_TOP = 14;
const RINGKV_CLUSTER_CONFIG = { 'replication-factor': 3, 'read-quorum': 2, 'write-quorum': 2, appendfsync: 'everysec' } as const;
const REDIS_PERSISTENCE = ['--appendonly', 'yes', '--appendfsync', 'everysec'] as const;

interface Options {
  rounds: number;
  warmup: number;
  runSeconds: number;
  nWarmupP1: number;
  nWarmupP16: number;
  profile: boolean;
  out: string;
  only: readonly string[] | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => flagValue(argv, name);
  const quick = argv.includes('--quick');
  return {
    rounds: Number(get('--rounds') ?? (quick ? 1 : 3)),
    warmup: Math.max(1, Number(get('--warmup') ?? 1)),
    runSeconds: Number(get('--run-seconds') ?? (quick ? 1 : 3)),
    nWarmupP1: quick ? 5_000 : 10_000,
    nWarmupP16: quick ? 10_000 : 40_000,
    profile: argv.includes('--profile'),
    out: get('--out') ?? 'bench/results',
    only: get('--only')?.split(','),
  };
}

interface Workload {
  label: string;
  test: 'set' | 'get';
  pipeline: number;
}

const WORKLOADS: readonly Workload[] = [
  { label: 'SET -P 1', test: 'set', pipeline: 1 },
  { label: 'GET -P 1', test: 'get', pipeline: 1 },
  { label: 'SET -P 16', test: 'set', pipeline: 16 },
  { label: 'GET -P 16', test: 'get', pipeline: 16 },
];

/** Something redis-benchmark is pointed at. Two targets may share processes (ringkv-3 plain/--cluster). */
interface Target {
  name: string;
  port: number;
  cluster: boolean;
  describe: string;
}

const log = (msg: string): void => {
  process.stderr.write(`[bench/cluster] ${msg}\n`);
};

function runOf(bin: string, t: Target, w: Workload, requests: number): BenchmarkRun {
  return { bin, port: t.port, test: w.test, requests, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE, pipeline: w.pipeline, cluster: t.cluster };
}

function sizedRequests(rps: number, runSeconds: number): number {
  return Math.min(RUN_REQUESTS_MAX, Math.max(RUN_REQUESTS_MIN, Math.round((rps * runSeconds) / 1000) * 1000));
}

interface Started {
  targets: Target[];
  rss: Map<string, () => number>;
  stop(): Promise<void>;
}

async function startAll(cli: string, only: readonly string[] | undefined): Promise<Started> {
  const want = (name: string): boolean => only === undefined || only.some((o) => name === o || name.startsWith(`${o}-`));
  const stops: Array<() => Promise<unknown>> = [];
  const targets: Target[] = [];
  const rss = new Map<string, () => number>();
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => log(`stop failed: ${String(err)}`));
  };
  try {
    if (want('ringkv-1')) {
      const one = await startNode(null, { config: { appendfsync: 'everysec' } });
      stops.push(() => one.dispose());
      targets.push({ name: 'ringkv-1', port: one.port, cluster: false, describe: 'one ringkv node' });
      rss.set('ringkv-1', () => one.rssBytes());
    }
    if (want('ringkv-3') || want('ringkv-3-cluster')) {
      const three = await startRingkvCluster(cli, 3, RINGKV_CLUSTER_CONFIG);
      stops.push(() => three.stop());
      if (want('ringkv-3')) targets.push({ name: 'ringkv-3', port: three.ports[0]!, cluster: false, describe: '3 nodes N=3 W=2 R=2, all requests to node 0' });
      if (want('ringkv-3-cluster')) targets.push({ name: 'ringkv-3-cluster', port: three.ports[0]!, cluster: true, describe: 'the same 3 nodes, redis-benchmark --cluster' });
      rss.set('ringkv-3 (3 processes)', () => three.rssBytes());
    }
    if (want('redis')) {
      const redis = await startRedisServer(null, REDIS_PERSISTENCE);
      stops.push(() => redis.dispose());
      targets.push({ name: 'redis', port: redis.port, cluster: false, describe: 'one redis-server' });
      rss.set('redis', () => redis.proc.rssBytes());
    }
    if (want('redis-cluster')) {
      const rc: StartedCluster = await startRedisCluster(cli, 3, REDIS_PERSISTENCE);
      stops.push(() => rc.stop());
      targets.push({ name: 'redis-cluster', port: rc.ports[0]!, cluster: true, describe: 'Redis Cluster 3 primaries + 3 replicas, redis-benchmark --cluster' });
      rss.set('redis-cluster (6 processes)', () => rc.rssBytes());
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { targets, rss, stop };
}

interface ProfileTables {
  node: string;
  workload: string;
  self: HotSpot[];
  inclusive: HotSpot[];
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** A fresh ringkv-3 with node 0 (coordinator) and node 1 (a replica) under --cpu-prof. */
async function profileCluster(bin: string, cli: string, requests: (w: Workload) => number): Promise<ProfileTables[]> {
  const dirs = [await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-prof-coord-')), await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-prof-replica-'))];
  try {
    const cluster = await startRingkvCluster(cli, 3, RINGKV_CLUSTER_CONFIG, (i) => (i < 2 ? ['--cpu-prof', '--cpu-prof-dir', dirs[i]!] : []));
    const windows: Array<{ w: Workload; fromUs: number; toUs: number }> = [];
    const target: Target = { name: 'ringkv-3', port: cluster.ports[0]!, cluster: false, describe: '' };
    try {
      await runBenchmark(runOf(bin, target, { label: 'preload', test: 'set', pipeline: 16 }, PRELOAD_REQUESTS));
      for (const w of WORKLOADS.filter((x) => x.pipeline === 16)) {
        const fromUs = nowUs();
        await runBenchmark(runOf(bin, target, w, requests(w)));
        windows.push({ w, fromUs, toUs: nowUs() });
      }
    } finally {
      await cluster.stop();
    }
    const out: ProfileTables[] = [];
    for (const [i, dir] of dirs.entries()) {
      const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) continue;
      const profile = readProfile(path.join(dir, files[0]!));
      for (const { w, fromUs, toUs } of windows) {
        out.push({
          node: i === 0 ? 'node 0 (coordinator)' : 'node 1 (replica)',
          workload: w.label,
          self: topSelfTime(profile, PROFILE_TOP, { fromUs, toUs }),
          inclusive: topInclusiveTime(profile, PROFILE_TOP, { fromUs, toUs }),
        });
      }
    }
    return out;
  } finally {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const bin = redisBenchmarkPath();
  const cli = redisCliPath();
  if (!bin || !cli || !redisServerPath()) throw new Error('redis-benchmark, redis-cli and redis-server are required (apt-get install redis-server redis-tools)');
  const env = describeEnvironment();
  const started = await startAll(cli, opts.only);
  const { targets } = started;
  const names = targets.map((t) => t.name);
  const rows = new Map<string, BenchmarkRow[]>(); // `${workload}|${target}` -> measured rows in round order
  const samples = new Map<string, Map<string, number[]>>();
  const requestsUsed = new Map<string, number>();
  const rssAtEnd = new Map<string, number>();
  try {
    for (const t of targets) {
      log(`preloading ${t.name}: ${PRELOAD_REQUESTS} SETs over ${KEYSPACE} keys`);
      const row = await runBenchmark(runOf(bin, t, { label: 'preload', test: 'set', pipeline: 16 }, PRELOAD_REQUESTS));
      log(`preload of ${t.name}: ${formatNumber(row.rps)} SET/s`);
    }
    for (const w of WORKLOADS) {
      const contenders: Contender[] = targets.map((t) => ({
        name: t.name,
        run: async (round: number) => {
          const key = `${w.label}|${t.name}`;
          const warm = round < opts.warmup;
          const n = warm ? (w.pipeline === 1 ? opts.nWarmupP1 : opts.nWarmupP16) : requestsUsed.get(key)!;
          const row = await runBenchmark(runOf(bin, t, w, n));
          if (warm) requestsUsed.set(key, sizedRequests(row.rps, opts.runSeconds));
          else rows.set(key, [...(rows.get(key) ?? []), row]);
          return row.rps;
        },
      }));
      samples.set(
        w.label,
        await runAlternating(contenders, {
          rounds: opts.rounds,
          warmupRounds: opts.warmup,
          onResult: (name, round, value) => log(`${w.label} ${name} round ${round}: ${formatNumber(value)} ops/s`),
        }),
      );
    }
    for (const [name, f] of started.rss) rssAtEnd.set(name, f());
  } finally {
    await started.stop();
  }

  let profiles: ProfileTables[] = [];
  if (opts.profile && names.includes('ringkv-3')) {
    log('profiling a fresh ringkv-3: node 0 and node 1 under node --cpu-prof');
    profiles = await profileCluster(bin, cli, (w) => requestsUsed.get(`${w.label}|ringkv-3`) ?? opts.nWarmupP16);
  }

  const rps = (label: string, name: string): number => medians(samples.get(label)!).get(name) ?? Number.NaN;
  const lat = (label: string, name: string, f: (r: BenchmarkRow) => number): number => {
    const list = rows.get(`${label}|${name}`) ?? [];
    return list.length === 0 ? Number.NaN : median(list.map(f));
  };
  const has = (n: string): boolean => names.includes(n);
  const r = (label: string, a: string, b: string): string => (has(a) && has(b) ? formatRatio(ratio(rps(label, a), rps(label, b))) : 'n/a');

  const throughput = markdownTable(
    ['workload', ...names.map((n) => `${n} ops/s`)],
    WORKLOADS.map((w) => [w.label, ...names.map((n) => `${formatNumber(rps(w.label, n))} (±${(relativeSpread(samples.get(w.label)!.get(n)!) * 100).toFixed(0)}%)`)]),
  );
  const ratios = markdownTable(
    ['workload', 'ringkv-3 / ringkv-1', 'ringkv-3-cluster / ringkv-1', 'target', 'redis-cluster / redis', 'ringkv-1 / redis', 'ringkv-3 / redis-cluster', 'ringkv-3-cluster / redis-cluster'],
    WORKLOADS.map((w) => [
      w.label,
      r(w.label, 'ringkv-3', 'ringkv-1'),
      r(w.label, 'ringkv-3-cluster', 'ringkv-1'),
      w.pipeline === 16 ? `>= ${TARGET_CLUSTER_RATIO_P16}x` : '',
      r(w.label, 'redis-cluster', 'redis'),
      r(w.label, 'ringkv-1', 'redis'),
      r(w.label, 'ringkv-3', 'redis-cluster'),
      r(w.label, 'ringkv-3-cluster', 'redis-cluster'),
    ]),
  );
  const latency = markdownTable(
    ['workload', ...names.flatMap((n) => [`${n} p50`, `${n} p99`])],
    WORKLOADS.map((w) => [w.label, ...names.flatMap((n) => [formatNumber(lat(w.label, n, (x) => x.p50Ms)), formatNumber(lat(w.label, n, (x) => x.p99Ms))])]),
  );
  const raw = markdownTable(
    ['workload', 'target', 'ops/s per round', 'p99 ms per round', '-n'],
    WORKLOADS.flatMap((w) =>
      names.map((n) => [
        w.label,
        n,
        samples.get(w.label)!.get(n)!.map((v) => formatNumber(v)).join(', '),
        (rows.get(`${w.label}|${n}`) ?? []).map((x) => formatNumber(x.p99Ms)).join(', '),
        formatNumber(requestsUsed.get(`${w.label}|${n}`) ?? Number.NaN),
      ]),
    ),
    ['left', 'left', 'left', 'left', 'right'],
  );
  const verdicts: string[] = [];
  for (const n of ['ringkv-3', 'ringkv-3-cluster'].filter(has)) {
    if (!has('ringkv-1')) break;
    for (const w of WORKLOADS.filter((x) => x.pipeline === 16)) {
      const x = ratio(rps(w.label, n), rps(w.label, 'ringkv-1'));
      verdicts.push(`- ${n} ${w.label}: ${formatRatio(x)} of ringkv-1 (target >= ${TARGET_CLUSTER_RATIO_P16}x): ${x >= TARGET_CLUSTER_RATIO_P16 ? 'met' : 'NOT met'}`);
    }
    for (const w of WORKLOADS.filter((x) => x.pipeline === 1)) {
      const p99 = lat(w.label, n, (x) => x.p99Ms);
      verdicts.push(`- ${n} ${w.label}: p99 ${formatNumber(p99)} ms (target < ${TARGET_P99_MS_P1} ms): ${p99 < TARGET_P99_MS_P1 ? 'met' : 'NOT met'}`);
    }
  }
  const example = ['redis-benchmark', ...benchmarkArgs({ bin, port: 0, test: 'set', requests: 0, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE, pipeline: 16 })]
    .join(' ')
    .replace('-p 0', '-p PORT')
    .replace('-n 0', '-n N');
  const md: string[] = [
    '# Cluster benchmark: ringkv 1 node vs 3 nodes (N=3 W=2 R=2) vs redis-server vs Redis Cluster',
    '',
    `Measured ${env}; ringkv ${flagValue(process.argv, '--rev') === undefined ? codeVersion(['src']) : `${flagValue(process.argv, '--rev')!} (a clean export of that commit)`}.`,
    '',
    'Produced by (from the repository root, after `npx tsc -p . --outDir .build/NAME`):',
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
    'Contenders (each started once, temp dirs, dynamic loopback ports, stopped by pid):',
    '',
    ...targets.map((t) => `- **${t.name}**: ${t.describe}${t.cluster ? ' (`--cluster`)' : ''}`),
    '',
    `Each run is one redis-benchmark invocation, e.g. \`${example}\` (plus \`--cluster\` for the cluster-routed targets). ` +
      'Every ringkv node runs `--appendfsync everysec`; every redis-server `--appendonly yes --appendfsync everysec --save ""`. ' +
      `Each target first gets ${PRELOAD_REQUESTS} SETs over the ${KEYSPACE} keys so GETs hit alike. ` +
      `Per workload the targets alternate (order rotated each round); ${opts.warmup} warm-up round(s) size the measured runs to about ` +
      `${opts.runSeconds} s and are discarded; ${opts.rounds} measured round(s); figures are medians (± median absolute deviation), ` +
      'ratios are ratios of medians. The ringkv-3 write path does three writes per SET (N=3) on the same 2 cores as everything else; ' +
      'Redis Cluster replicates asynchronously (acknowledges after the primary alone), ringkv-3 waits for W=2. ' +
      'redis-benchmark --cluster gives each client one node and hash-tagged keys, so its keys fall in one slot per node. ' +
      'The machine is shared with other engineers\' builds and tests: trust the ratios more than the absolute numbers.',
    '',
    '## Against the targets',
    '',
    ...verdicts,
    '',
    '## Throughput (ops/s, median over rounds)',
    '',
    throughput,
    '## Ratios (of medians)',
    '',
    ratios,
    '## Latency (ms, redis-benchmark p50 / p99, median over rounds)',
    '',
    latency,
    '## Every round',
    '',
    raw,
    '## Memory (RSS at the end of the run)',
    '',
    markdownTable(['contender', 'RSS'], [...rssAtEnd].map(([n, b]) => [n, formatBytes(b)])),
  ];
  if (profiles.length > 0) {
    md.push(
      '## Where ringkv-3 spends its CPU (node --cpu-prof)',
      '',
      'After the measurement, a fresh ringkv-3 ran each -P 16 workload once against node 0 (same -n as ringkv-3 above) with node 0 ' +
        '(the coordinator: it receives every request) and node 1 (a replica) under `node --cpu-prof`; each table counts only ' +
        'the samples of that run, in % of busy samples.',
      '',
    );
    for (const p of profiles) {
      md.push(
        `### ${p.node}, ${p.workload}`,
        '',
        markdownTable(['self %', 'function', 'location', 'main caller'], p.self.map((h) => [h.percent.toFixed(1), h.fn, h.location, h.topCaller ?? '']), ['right', 'left', 'left', 'left']),
        markdownTable(['incl. %', 'ringkv function', 'location'], p.inclusive.map((h) => [h.percent.toFixed(1), h.fn, h.location]), ['right', 'left', 'left']),
      );
    }
  }
  await fs.mkdir(opts.out, { recursive: true });
  await fs.writeFile(path.join(opts.out, 'cluster.md'), md.join('\n'));
  await fs.writeFile(
    path.join(opts.out, 'cluster.svg'),
    barChartSvg({
      title: 'redis-benchmark ops/s (medians): ringkv 1 and 3 nodes vs redis-server and Redis Cluster',
      subtitle: `-c ${CLIENTS} -d ${DATA_BYTES} -r ${KEYSPACE}; appendfsync everysec everywhere; ringkv-3 = N=3 W=2 R=2; log scale; higher is better`,
      categories: WORKLOADS.map((w) => w.label),
      series: names.map((n) => ({ name: n, values: WORKLOADS.map((w) => rps(w.label, n)) })),
      yLabel: 'ops/s',
      logScale: true,
    }),
  );
  log(`wrote ${path.join(opts.out, 'cluster.md')} and cluster.svg`);
  process.stdout.write([...verdicts, '', throughput, ratios, latency].join('\n'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
