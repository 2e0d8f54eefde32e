/**
 * One ringkv node against redis-server and a bare Node RESP server, measured by redis-benchmark
 * side by side in one run (issue 3, "How it is measured").
 *
 *   node .build/NAME/bench/server.js [--rounds 5] [--warmup 1] [--n-p1 30000] [--n-p16 200000] [--run-seconds 3]
 *                                    [--quick] [--profile] [--out bench/results] [--rev COMMIT]
 *
 * Contenders, each started once and kept for the whole run:
 *   ringkv     node src/cli/main.js --appendfsync everysec (persists every write: WAL + memtable)
 *   redis      redis-server --appendonly yes --appendfsync everysec
 *   bare-node  bench/bare_node_server.js: RESP from a Map, the ceiling of the runtime
 * Workloads: SET and GET, -d 100 -r 100000 -c 50, at -P 1 and -P 16. For each workload the
 * contenders alternate (order rotated every round) for several rounds after warm-up rounds;
 * the tables report medians and the ratios of medians. With --profile, a separate ringkv
 * process runs each workload under `node --cpu-prof` afterwards and the hot spots of each run
 * are listed.
 * Run from the repository root; writes <out>/server.md and <out>/server.svg.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { spawn, execFileSync } from 'node:child_process';
import {
  runAlternating,
  medians,
  median,
  ratio,
  relativeSpread,
  formatNumber,
  formatRatio,
  formatBytes,
  markdownTable,
  codeBlock,
  barChartSvg,
  describeEnvironment,
  commandLine,
  type Contender,
  flagValue,
} from './lib/index.js';
import { runBenchmark, benchmarkArgs, type BenchmarkRow, type BenchmarkRun } from './redis_benchmark.js';
import { topSelfTime, topInclusiveTime, readProfile, type HotSpot } from './cpuprofile_top.js';
import { startNode, type RingkvNode } from '../test/helpers/node_process.js';
import {
  startRedisServer,
  redisServerPath,
  redisBenchmarkPath,
  redisCliPath,
  type RedisServerHandle,
} from '../test/helpers/redis_server.js';
import { ServerProcess } from '../test/helpers/server_process.js';
import { freePort } from '../test/helpers/ports.js';

const CLIENTS = 50;
const DATA_BYTES = 100;
const KEYSPACE = 100_000;
/** Issue 3's targets for ringkv / redis throughput. */
const TARGET_RATIO_P1 = 0.9;
const TARGET_RATIO_P16 = 0.6;
const RUN_REQUESTS_MIN = 10_000;
const RUN_REQUESTS_MAX = 3_000_000;
const BARE_SERVER = fileURLToPath(new URL('./bare_node_server.js', import.meta.url));

interface Options {
  rounds: number;
  warmup: number;
  /** Requests of a warm-up (calibration) run at -P 1 and -P 16. */
  nP1: number;
  nP16: number;
  /** Measured runs are sized from the warm-up rate to last about this long. */
  runSeconds: number;
  profile: boolean;
  out: string;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => flagValue(argv, name);
  const quick = argv.includes('--quick');
  return {
    rounds: Number(get('--rounds') ?? (quick ? 2 : 5)),
    // At least one: the warm-up run sizes the measured runs.
    warmup: Math.max(1, Number(get('--warmup') ?? 1)),
    nP1: Number(get('--n-p1') ?? (quick ? 10_000 : 30_000)),
    nP16: Number(get('--n-p16') ?? (quick ? 50_000 : 200_000)),
    runSeconds: Number(get('--run-seconds') ?? (quick ? 1 : 3)),
    profile: argv.includes('--profile'),
    out: get('--out') ?? 'bench/results',
  };
}

interface Workload {
  label: string;
  test: 'set' | 'get';
  pipeline: number;
  requests: number;
}

interface Server {
  name: string;
  port: number;
  pid(): number;
  rssBytes(): number;
  stop(): Promise<unknown>;
}

const log = (msg: string): void => {
  process.stderr.write(`[bench/server] ${msg}\n`);
};

async function startServers(): Promise<Server[]> {
  const ringkv: RingkvNode = await startNode(null, { config: { appendfsync: 'everysec' } });
  const redis: RedisServerHandle = await startRedisServer(null, ['--appendonly', 'yes', '--appendfsync', 'everysec']);
  const barePort = await freePort();
  const bare = await ServerProcess.start({
    command: process.execPath,
    args: [BARE_SERVER, '--port', String(barePort)],
    port: barePort,
    readyPattern: /Ready to accept connections/,
  });
  return [
    { name: 'ringkv', port: ringkv.port, pid: () => ringkv.pid, rssBytes: () => ringkv.rssBytes(), stop: () => ringkv.dispose() },
    { name: 'redis', port: redis.port, pid: () => redis.proc.pid, rssBytes: () => redis.proc.rssBytes(), stop: () => redis.dispose() },
    { name: 'bare-node', port: barePort, pid: () => bare.pid, rssBytes: () => bare.rssBytes(), stop: () => bare.stop() },
  ];
}

function runFor(bin: string, port: number, w: Workload, requests = w.requests): BenchmarkRun {
  return { bin, port, test: w.test, requests, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE, pipeline: w.pipeline };
}

/** Requests for a measured run: what the warm-up rate does in runSeconds, within bounds. */
function sizedRequests(rps: number, runSeconds: number): number {
  return Math.min(RUN_REQUESTS_MAX, Math.max(RUN_REQUESTS_MIN, Math.round((rps * runSeconds) / 1000) * 1000));
}

/**
 * Stores every key redis-benchmark -r KEYSPACE can pick (`key:%012d`) with a DATA_BYTES value,
 * so GET runs always hit and hit alike on every contender, however many SETs each managed.
 */
async function preload(cliBin: string, port: number): Promise<void> {
  const value = 'x'.repeat(DATA_BYTES);
  const parts: string[] = [];
  for (let i = 0; i < KEYSPACE; i++) {
    const key = `key:${String(i).padStart(12, '0')}`;
    parts.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
  }
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cliBin, ['-h', '127.0.0.1', '-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(text));
    child.stdin.end(parts.join(''));
  });
  if (!out.includes(`errors: 0, replies: ${KEYSPACE}`)) throw new Error(`preload on port ${port} failed: ${out}`);
}

/** Stacks complete SVG documents vertically into one (nested <svg> elements, each at its y). */
function stackSvgs(svgs: readonly string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const svg of svgs) {
    const w = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 0);
    const h = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 0);
    parts.push(svg.replace(/^<svg /, `<svg x="0" y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">\n${parts.join('\n')}\n</svg>\n`;
}

/** The commit measured, and whether src/ had uncommitted changes (then the figures are of those). */
function sourceRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim();
    return dirty ? `${rev} plus uncommitted changes in src/` : rev;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

interface WorkloadProfile {
  label: string;
  self: HotSpot[];
  inclusive: HotSpot[];
}

interface ProfileResult {
  workloads: WorkloadProfile[];
  note: string;
}

const PROFILE_TOP = 12;
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Runs each workload once against a fresh, preloaded ringkv under `node --cpu-prof` and ranks
 * the hot spots of each run separately (samples selected by the run's time window, so the
 * preload and the other workloads do not blur them).
 */
async function profileRingkv(
  bin: string,
  cliBin: string,
  workloads: readonly Workload[],
  requests: (w: Workload) => number,
): Promise<ProfileResult> {
  const profDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-cpuprof-'));
  try {
    const windows: { w: Workload; fromUs: number; toUs: number }[] = [];
    const node = await startNode(null, {
      config: { appendfsync: 'everysec' },
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
    });
    try {
      await preload(cliBin, node.port);
      for (const w of workloads) {
        const fromUs = nowUs();
        await runBenchmark(runFor(bin, node.port, w, requests(w)));
        windows.push({ w, fromUs, toUs: nowUs() });
      }
    } finally {
      await node.dispose();
    }
    const files = (await fs.readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) {
      return { workloads: [], note: 'no .cpuprofile written (the node did not exit normally on SIGTERM)' };
    }
    const profile = readProfile(path.join(profDir, files[0]!));
    return {
      workloads: windows.map(({ w, fromUs, toUs }) => ({
        label: w.label,
        self: topSelfTime(profile, PROFILE_TOP, { fromUs, toUs }),
        inclusive: topInclusiveTime(profile, PROFILE_TOP, { fromUs, toUs }),
      })),
      note: '',
    };
  } finally {
    await fs.rm(profDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const bin = redisBenchmarkPath();
  const cliBin = redisCliPath();
  if (!bin || !cliBin || !redisServerPath()) {
    throw new Error('redis-benchmark, redis-cli and redis-server are required (apt-get install redis-server redis-tools)');
  }
  const env = describeEnvironment();
  // --rev names the commit when the build is of a clean export of it (git archive), not of this tree.
  const revArg = process.argv.indexOf('--rev');
  const revision = revArg >= 0 ? `${process.argv[revArg + 1]} (clean export)` : sourceRevision();
  const workloads: Workload[] = [
    { label: 'SET -P 1', test: 'set', pipeline: 1, requests: opts.nP1 },
    { label: 'GET -P 1', test: 'get', pipeline: 1, requests: opts.nP1 },
    { label: 'SET -P 16', test: 'set', pipeline: 16, requests: opts.nP16 },
    { label: 'GET -P 16', test: 'get', pipeline: 16, requests: opts.nP16 },
  ];
  const servers = await startServers();
  const rows = new Map<string, BenchmarkRow[]>(); // `${workload}|${server}` -> measured rows
  const samplesByWorkload = new Map<string, Map<string, number[]>>();
  const rss = new Map<string, number>();
  const requestsUsed = new Map<string, number>(); // `${workload}|${server}` -> measured -n
  try {
    for (const s of servers) {
      log(`preloading ${KEYSPACE} keys into ${s.name}`);
      await preload(cliBin, s.port);
    }
    for (const w of workloads) {
      const contenders: Contender[] = servers.map((s) => ({
        name: s.name,
        run: async (round: number) => {
          const key = `${w.label}|${s.name}`;
          const n = round < opts.warmup ? w.requests : requestsUsed.get(key) ?? w.requests;
          const row = await runBenchmark(runFor(bin, s.port, w, n));
          if (round < opts.warmup) requestsUsed.set(key, sizedRequests(row.rps, opts.runSeconds));
          const list = rows.get(key) ?? [];
          list.push(row);
          rows.set(key, list);
          return row.rps;
        },
      }));
      const samples = await runAlternating(contenders, {
        rounds: opts.rounds,
        warmupRounds: opts.warmup,
        onResult: (name, round, value) => log(`${w.label} ${name} round ${round}: ${formatNumber(value)} ops/s`),
      });
      samplesByWorkload.set(w.label, samples);
      // Warm-up rows were recorded too: keep only the measured (last `rounds`) ones.
      for (const s of servers) {
        const key = `${w.label}|${s.name}`;
        rows.set(key, (rows.get(key) ?? []).slice(-opts.rounds));
      }
    }
    for (const s of servers) rss.set(s.name, s.rssBytes());
  } finally {
    for (const s of servers) await s.stop();
  }

  let profile: ProfileResult | undefined;
  if (opts.profile) {
    log('profiling ringkv under node --cpu-prof');
    profile = await profileRingkv(bin, cliBin, workloads, (w) => requestsUsed.get(`${w.label}|ringkv`) ?? w.requests);
  }

  const names = servers.map((s) => s.name);
  const med = (label: string, name: string): number => medians(samplesByWorkload.get(label)!).get(name)!;
  const lat = (label: string, name: string, f: (r: BenchmarkRow) => number): number =>
    median((rows.get(`${label}|${name}`) ?? []).map(f));

  const table = markdownTable(
    ['workload', ...names.map((n) => `${n} ops/s`), 'ringkv / redis', 'target', 'ringkv / bare-node', 'bare-node / redis'],
    workloads.map((w) => [
      w.label,
      ...names.map((n) => `${formatNumber(med(w.label, n))} (±${(relativeSpread(samplesByWorkload.get(w.label)!.get(n)!) * 100).toFixed(0)}%)`),
      formatRatio(ratio(med(w.label, 'ringkv'), med(w.label, 'redis'))),
      `>= ${w.pipeline === 1 ? TARGET_RATIO_P1 : TARGET_RATIO_P16}x`,
      formatRatio(ratio(med(w.label, 'ringkv'), med(w.label, 'bare-node'))),
      formatRatio(ratio(med(w.label, 'bare-node'), med(w.label, 'redis'))),
    ]),
  );
  const latency = markdownTable(
    ['workload', ...names.flatMap((n) => [`${n} p50 ms`, `${n} p99 ms`])],
    workloads.map((w) => [
      w.label,
      ...names.flatMap((n) => [formatNumber(lat(w.label, n, (r) => r.p50Ms)), formatNumber(lat(w.label, n, (r) => r.p99Ms))]),
    ]),
  );
  const raw = markdownTable(
    ['workload', 'server', 'ops/s per round (in order)'],
    workloads.flatMap((w) =>
      names.map((n) => [w.label, n, samplesByWorkload.get(w.label)!.get(n)!.map((v) => formatNumber(v)).join(', ')]),
    ),
    ['left', 'left', 'left'],
  );
  const rssTable = markdownTable(
    ['server', 'RSS after the run'],
    names.map((n) => [n, formatBytes(rss.get(n) ?? NaN)]),
  );
  const example = ['redis-benchmark', ...benchmarkArgs(runFor(bin, 0, workloads[2]!))]
    .join(' ')
    .replace('-p 0', '-p PORT')
    .replace(/-n \d+/, '-n N');
  const nTable = markdownTable(
    ['workload', ...names.map((n) => `${n} -n`)],
    workloads.map((w) => [w.label, ...names.map((n) => formatNumber(requestsUsed.get(`${w.label}|${n}`) ?? w.requests))]),
  );

  const md: string[] = [
    '# One ringkv node vs redis-server vs a bare Node RESP server (redis-benchmark)',
    '',
    `Measured ${env}, ringkv at commit ${revision}.`,
    '',
    'Produced by (from the repository root, after `npx tsc -p . --outDir .build/NAME`):',
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
    `Each run is one redis-benchmark invocation, e.g. \`${example}\`. ` +
      `Before the runs, all ${KEYSPACE} keys redis-benchmark can pick are stored in each server (redis-cli --pipe), so GETs always hit. ` +
      `A warm-up run per workload and server (-n ${opts.nP1} at -P 1, ${opts.nP16} at -P 16) sizes the measured runs to ` +
      `about ${opts.runSeconds} s each (N below). ringkv runs with \`--appendfsync everysec\`, ` +
      'redis-server with `--appendonly yes --appendfsync everysec --save ""`, bare-node is bench/bare_node_server.ts ' +
      '(a Map, no persistence). ' +
      `Per workload the three alternate, order rotated each round, ${opts.warmup} warm-up round(s) discarded, ` +
      `${opts.rounds} measured rounds; figures are medians (± median absolute deviation), ratios are ratios of medians. ` +
      'The machine is shared with other engineers\' builds and tests: trust the ratios more than the absolute numbers.',
    '',
    '## Throughput',
    '',
    table,
    'Requests per measured run (N):',
    '',
    nTable,
    '## Latency (redis-benchmark p50 / p99, median over rounds)',
    '',
    latency,
    '## Every round',
    '',
    raw,
    '## Memory',
    '',
    rssTable,
  ];
  if (profile) {
    md.push('## Where ringkv spends its CPU (node --cpu-prof)', '');
    if (profile.note) md.push(profile.note, '');
    md.push(
      'After the measurement, a separate ringkv process, preloaded the same way, ran each workload once (same N as ' +
        'above) under `node --cpu-prof`; each table counts only the samples taken during that run. Percentages are of ' +
        'busy (non-idle) samples. Self time: the function was the running frame (with the caller most of those ' +
        'samples came from). Inclusive: a ringkv function was anywhere on the stack.',
      '',
    );
    for (const wp of profile.workloads) {
      md.push(
        `### ${wp.label}`,
        '',
        markdownTable(
          ['self %', 'function', 'location', 'main caller'],
          wp.self.map((h) => [h.percent.toFixed(1), h.fn, h.location, h.topCaller ?? '']),
          ['right', 'left', 'left', 'left'],
        ),
        markdownTable(
          ['incl. %', 'ringkv function', 'location'],
          wp.inclusive.map((h) => [h.percent.toFixed(1), h.fn, h.location]),
          ['right', 'left', 'left'],
        ),
      );
    }
  }
  await fs.mkdir(opts.out, { recursive: true });
  await fs.writeFile(path.join(opts.out, 'server.md'), md.join('\n'));
  await fs.writeFile(
    path.join(opts.out, 'server.svg'),
    stackSvgs([
      barChartSvg({
        title: 'redis-benchmark ops/s: ringkv vs redis-server vs bare Node (medians)',
        subtitle: `-c ${CLIENTS} -d ${DATA_BYTES} -r ${KEYSPACE}; ringkv and redis persist with appendfsync everysec; higher is better`,
        categories: workloads.map((w) => w.label),
        series: names.map((n) => ({ name: n, values: workloads.map((w) => med(w.label, n)) })),
        yLabel: 'ops/s',
      }),
      barChartSvg({
        title: 'Throughput relative to redis-server (ratio of medians; 1.0 = Redis)',
        subtitle: `targets for ringkv: >= ${TARGET_RATIO_P1}x at -P 1, >= ${TARGET_RATIO_P16}x at -P 16`,
        categories: workloads.map((w) => w.label),
        series: [
          { name: 'ringkv / redis', values: workloads.map((w) => ratio(med(w.label, 'ringkv'), med(w.label, 'redis'))) },
          { name: 'bare-node / redis', values: workloads.map((w) => ratio(med(w.label, 'bare-node'), med(w.label, 'redis'))) },
          { name: 'target', values: workloads.map((w) => (w.pipeline === 1 ? TARGET_RATIO_P1 : TARGET_RATIO_P16)) },
        ],
        yLabel: 'x redis',
      }),
    ]),
  );
  log(`wrote ${path.join(opts.out, 'server.md')} and server.svg`);
  process.stdout.write(table + '\n' + latency);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
