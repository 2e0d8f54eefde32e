/**
 * Which process of a 3-node cluster (N=3 W=2 R=2) bounds its throughput, and where that process
 * spends its CPU per request. Every node runs under `node --cpu-prof`; redis-benchmark -P 16 SET
 * then GET against node 0; each profile's samples inside a workload's window give, per node:
 *  - busy fraction of its main (JavaScript) thread: busy samples' time / the window's wall time.
 *    A node near 1.0 is the bound (one thread cannot go faster); all well below 1.0 on a quiet
 *    machine means requests wait on something else (latency-bound).
 *  - CPU microseconds of that thread per request, and its top functions by self time (node 0, the
 *    coordinator of every request, apart from the two replicas, which are summed).
 * The profiler itself costs CPU (figures run ~1.5-2x a plain run's); compare rows, not builds.
 *
 *   node .build/NAME/bench/cluster_profile.js [--build .build/NAME] [--requests 40000] [--top 25]
 *
 * --build picks the build whose CLI runs the nodes (default: the one this file belongs to).
 * --keep DIR keeps the three profiles there as node0.cpuprofile .. node2.cpuprofile (for a call
 * tree in Chrome DevTools or a script); without it they are deleted.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { flagValue } from './lib/index.js';
import { readProfile, topInclusiveTime, topSelfTime, type CpuProfile, type HotSpot, type SampleWindow } from './cpuprofile_top.js';
import { runBenchmark } from './redis_benchmark.js';
import type { StartedCluster } from './cluster_procs.js';

const CLIENTS = 50;
const DATA_BYTES = 100;
const KEYSPACE = 10_000;
const PIPELINE = 16;
const NODES = 3;
const CONFIG = { 'replication-factor': 3, 'read-quorum': 2, 'write-quorum': 2, appendfsync: 'everysec' } as const;
const IDLE = '(idle)';
/** Enough rows of each node's ranking that the summed replica table is not cut short. */
const PER_NODE_ROWS = 200;

type StartCluster = (cli: string, n: number, config: Readonly<Record<string, string | number>>, nodeArgs?: (i: number) => readonly string[]) => Promise<StartedCluster>;

interface Window extends SampleWindow {
  label: string;
  rps: number;
  requests: number;
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Busy (non-idle) time of the profiled thread within the window, microseconds. */
function busyUs(p: CpuProfile, w: SampleWindow): number {
  const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === IDLE).map((n) => n.id));
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let t = p.startTime ?? 0;
  let busy = 0;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    // A sample stands for the time until the next one.
    if (t >= w.fromUs && t <= w.toUs && !idle.has(samples[i]!)) busy += deltas[i + 1] ?? 0;
  }
  return busy;
}

type Ranking = (p: CpuProfile, count: number, w: SampleWindow) => HotSpot[];

/** CPU microseconds per function (self or inclusive, by `rank`) over the profiles within the window. */
function usByFn(profiles: readonly CpuProfile[], w: SampleWindow, rank: Ranking): Map<string, number> {
  const sum = new Map<string, number>();
  for (const p of profiles) {
    const busy = busyUs(p, w);
    for (const h of rank(p, PER_NODE_ROWS, w)) {
      const k = h.location ? `${h.fn} ${h.location}` : h.fn;
      sum.set(k, (sum.get(k) ?? 0) + (h.percent / 100) * busy);
    }
  }
  return sum;
}

/** `busy`: the busy time of the profiles the ranking covers (% column), microseconds. */
function table(title: string, byFn: Map<string, number>, w: Window, top: number, busy: number): string {
  const rows = [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `| ${(v / w.requests).toFixed(2)} | ${((100 * v) / busy).toFixed(1)} | ${k} |`);
  return `\n### ${title}\n\n| us/req | % | function |\n|---:|---:|---|\n${rows.join('\n')}\n`;
}

function report(w: Window, profiles: readonly CpuProfile[], top: number): string {
  const wallUs = w.toUs - w.fromUs;
  const busy = profiles.map((p) => busyUs(p, w));
  const replicasBusy = busy.slice(1).reduce((a, b) => a + b, 0);
  const perNode = busy.map((b, i) => `node ${i}: busy ${(b / wallUs).toFixed(2)}, ${(b / w.requests).toFixed(1)} us/req`).join('; ');
  return (
    `\n## ${w.label}: ${Math.round(w.rps)} req/s\n\nMain thread per node (${(wallUs / 1e6).toFixed(2)} s window): ${perNode}\n` +
    table('node 0 (coordinator), self time', usByFn(profiles.slice(0, 1), w, topSelfTime), w, top, busy[0]!) +
    table('node 0 (coordinator), inclusive time of src/ functions', usByFn(profiles.slice(0, 1), w, topInclusiveTime), w, top, busy[0]!) +
    table('nodes 1 + 2 (replicas), self time summed', usByFn(profiles.slice(1), w, topSelfTime), w, top, replicasBusy)
  );
}

async function readProfiles(dirs: readonly string[]): Promise<CpuProfile[]> {
  const profiles: CpuProfile[] = [];
  for (const d of dirs) {
    const file = (await fs.readdir(d)).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`no .cpuprofile written in ${d}`);
    profiles.push(readProfile(path.join(d, file)));
  }
  return profiles;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const build = path.resolve(flagValue(argv, '--build') ?? here);
  const requests = Number(flagValue(argv, '--requests') ?? 40_000);
  const top = Number(flagValue(argv, '--top') ?? 25);
  const keep = flagValue(argv, '--keep');
  const procs = (await import(pathToFileURL(path.join(build, 'bench/cluster_procs.js')).href)) as { startRingkvCluster: StartCluster };
  const dirs = await Promise.all(Array.from({ length: NODES }, (_, i) => fs.mkdtemp(path.join(os.tmpdir(), `ringkv-cprof-${i}-`))));
  try {
    const cluster = await procs.startRingkvCluster('redis-cli', NODES, CONFIG, (i) => ['--cpu-prof', '--cpu-prof-dir', dirs[i]!]);
    const windows: Window[] = [];
    try {
      const base = { bin: 'redis-benchmark', port: cluster.ports[0]!, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE };
      await runBenchmark({ ...base, test: 'set', requests: KEYSPACE * 3, pipeline: PIPELINE });
      for (const test of ['set', 'get'] as const) {
        const fromUs = nowUs();
        const row = await runBenchmark({ ...base, test, requests, pipeline: PIPELINE });
        windows.push({ label: `${test.toUpperCase()} -P ${PIPELINE}`, fromUs, toUs: nowUs(), rps: row.rps, requests });
      }
    } finally {
      // SIGTERM: each node writes its profile on the way out.
      await cluster.stop();
    }
    const profiles = await readProfiles(dirs);
    if (keep !== undefined) {
      await fs.mkdir(keep, { recursive: true });
      for (const [i, d] of dirs.entries()) {
        const file = (await fs.readdir(d)).find((f) => f.endsWith('.cpuprofile'))!;
        await fs.copyFile(path.join(d, file), path.join(keep, `node${i}.cpuprofile`));
      }
    }
    for (const w of windows) process.stdout.write(report(w, profiles, top));
  } finally {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
