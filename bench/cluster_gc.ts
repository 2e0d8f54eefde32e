/**
 * What node 0 of a 3-node cluster (N=3 W=2 R=2, all requests sent to it) promotes to the old
 * generation and how long its collector pauses, per workload: node 0 runs with V8's
 * --trace-gc-nvp and every GC it logs during a workload's run is summed.
 *
 *   node .build/NAME/bench/cluster_gc.js [--build .build/NAME] [--requests 30000]
 *        [--workloads set:1,get:1,set:16,get:16] [--node0-args '--max-semi-space-size=32']
 *
 * Why promoted bytes: an object promoted by a scavenge lives on until a mark-compact, and a dead
 * old-space object still holding pointers into the young generation keeps what they reach alive
 * through every scavenge (pending_table.ts tells how that made node 0 promote nearly every
 * request). Unlike CPU time or pause length, the bytes promoted per request hardly depend on the
 * other load of a shared machine, so two builds can be compared run by run (run the tool once
 * per build). Pauses are wall time on the main thread and do depend on the load.
 *
 * Per workload (one cluster for all, after a SET -P 16 preload of 3 x the keyspace), the table
 * gives: scavenges and mark-compacts, their summed pauses (and per request), the bytes promoted
 * (total, per request, and the median per scavenge after the first three of the run), the longest
 * pause, and the share of requests a pause held up: every pause stops all the requests in flight
 * (clients x pipeline), so pauses x in-flight / requests (capped at 100%). When that share is
 * above 1%, the p99 latency includes a GC pause (the -P 1 p99 target of issue 4).
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { flagValue, markdownTable, median } from './lib/index.js';
import { runBenchmark } from './redis_benchmark.js';
import type { StartedCluster } from './cluster_procs.js';

const CLIENTS = 50;
const DATA_BYTES = 100;
const KEYSPACE = 10_000;
const NODES = 3;
const CONFIG = { 'replication-factor': 3, 'read-quorum': 2, 'write-quorum': 2, appendfsync: 'everysec' } as const;
/** Scavenges at the start of a run left out of the per-scavenge median (the young generation still sizing itself). */
const WARMUP_SCAVENGES = 3;

type StartCluster = (cli: string, n: number, config: Readonly<Record<string, string | number>>, nodeArgs?: (i: number) => readonly string[]) => Promise<StartedCluster>;

/** One --trace-gc-nvp line: `[pid:isolate]  <ms since start> ms: pause=<ms> ... gc=<s|mc|mmc> ... promoted=<bytes> ...`. */
interface GcEvent {
  atMs: number;
  kind: string;
  pauseMs: number;
  promotedBytes: number;
}

const NVP_LINE = /\]\s+(\d+) ms: pause=([\d.]+) .*?\bgc=(\w+)\b/;

export function parseNvp(log: string): GcEvent[] {
  const out: GcEvent[] = [];
  for (const line of log.split('\n')) {
    const m = NVP_LINE.exec(line);
    if (m === null) continue;
    const promoted = / promoted=(\d+)/.exec(line);
    out.push({ atMs: Number(m[1]), pauseMs: Number(m[2]), kind: m[3]!, promotedBytes: promoted === null ? 0 : Number(promoted[1]) });
  }
  return out;
}

interface Row {
  label: string;
  requests: number;
  /** Requests in flight at any time (clients x pipeline). */
  inflight: number;
  rps: number;
  events: GcEvent[];
}

function tableOf(rows: readonly Row[]): string {
  return markdownTable(
    ['workload', 'req/s', 'scavenges', 'mark-compacts', 'pauses ms', 'max pause ms', 'requests held up %', 'pause us/req', 'promoted KB', 'promoted B/req', 'median KB per scavenge'],
    rows.map((r) => {
      const scav = r.events.filter((e) => e.kind === 's');
      const pause = r.events.reduce((a, e) => a + e.pauseMs, 0);
      const promoted = r.events.reduce((a, e) => a + e.promotedBytes, 0);
      const later = scav.slice(WARMUP_SCAVENGES).map((e) => e.promotedBytes);
      return [
        r.label,
        String(Math.round(r.rps)),
        String(scav.length),
        String(r.events.filter((e) => e.kind !== 's').length),
        pause.toFixed(0),
        r.events.reduce((a, e) => Math.max(a, e.pauseMs), 0).toFixed(1),
        Math.min(100, (100 * r.events.length * r.inflight) / r.requests).toFixed(1),
        ((1000 * pause) / r.requests).toFixed(1),
        (promoted / 1024).toFixed(0),
        (promoted / r.requests).toFixed(0),
        later.length === 0 ? '-' : (median(later) / 1024).toFixed(1),
      ];
    }),
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const build = path.resolve(flagValue(argv, '--build') ?? here);
  const requests = Number(flagValue(argv, '--requests') ?? 30_000);
  const workloads = (flagValue(argv, '--workloads') ?? 'set:1,get:1,set:16,get:16').split(',').map((w) => {
    const [test, p] = w.split(':');
    if ((test !== 'set' && test !== 'get') || !Number.isInteger(Number(p)) || Number(p) < 1) throw new Error(`bad workload '${w}' (want set:N or get:N)`);
    return { test, pipeline: Number(p) } as const;
  });
  const procs = (await import(pathToFileURL(path.join(build, 'bench/cluster_procs.js')).href)) as { startRingkvCluster: StartCluster };
  const node0Args = (flagValue(argv, '--node0-args') ?? '').split(' ').filter((a) => a !== '');
  const cluster = await procs.startRingkvCluster('redis-cli', NODES, CONFIG, (i) => (i === 0 ? ['--trace-gc-nvp', ...node0Args] : []));
  const rows: Row[] = [];
  try {
    const log = cluster.log;
    if (log === undefined) throw new Error(`${build}'s cluster_procs gives no node logs (older build: run this tool from a newer one with --build)`);
    const base = { bin: 'redis-benchmark', port: cluster.ports[0]!, clients: CLIENTS, dataBytes: DATA_BYTES, keyspace: KEYSPACE };
    await runBenchmark({ ...base, test: 'set', requests: KEYSPACE * 3, pipeline: 16 });
    for (const w of workloads) {
      // The node keeps only the tail of its output: a run's GCs are those logged after the last one before it.
      const before = parseNvp(log(0));
      const since = before.length === 0 ? -1 : before[before.length - 1]!.atMs;
      const row = await runBenchmark({ ...base, test: w.test, requests, pipeline: w.pipeline });
      await new Promise((r) => setTimeout(r, 200));
      rows.push({ label: `${w.test.toUpperCase()} -P ${w.pipeline}`, requests, inflight: CLIENTS * w.pipeline, rps: row.rps, events: parseNvp(log(0)).filter((e) => e.atMs > since) });
    }
  } finally {
    await cluster.stop();
  }
  process.stdout.write(`node 0's GCs (--trace-gc-nvp${node0Args.length === 0 ? '' : ` ${node0Args.join(' ')}`}), ${build}, ${requests} requests per workload, -c ${CLIENTS} -d ${DATA_BYTES} -r ${KEYSPACE}\n\n${tableOf(rows)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
