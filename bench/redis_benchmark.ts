/**
 * Running Debian's redis-benchmark and reading its `--csv` output. The parser is pure; the
 * runner spawns the binary and rejects with its stderr if it fails.
 *
 * CSV (redis-benchmark 7.x):
 *   "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
 *   "SET","34482.76","0.212","0.032","0.127","0.351","2.711","2.863"
 */
import { spawn } from 'node:child_process';

export interface BenchmarkRow {
  test: string;
  rps: number;
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

const HEADER = '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"';
const RUN_TIMEOUT_MS_DEFAULT = 300_000;

export class BenchmarkOutputError extends Error {
  readonly code = 'BENCHMARK_OUTPUT';
}

/** Parses redis-benchmark --csv output; throws BenchmarkOutputError on anything unexpected. */
export function parseBenchmarkCsv(text: string): BenchmarkRow[] {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const h = lines.indexOf(HEADER);
  if (h < 0) throw new BenchmarkOutputError(`no CSV header in redis-benchmark output: ${text.slice(0, 300)}`);
  return lines.slice(h + 1).map((line) => {
    const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''));
    const nums = cells.slice(1).map(Number);
    if (cells.length !== 8 || nums.some((n) => !Number.isFinite(n))) {
      throw new BenchmarkOutputError(`bad CSV row: ${line}`);
    }
    const [rps, avgMs, , p50Ms, p95Ms, p99Ms, maxMs] = nums as [number, number, number, number, number, number, number];
    return { test: cells[0]!, rps, avgMs, p50Ms, p95Ms, p99Ms, maxMs };
  });
}

export interface BenchmarkRun {
  bin: string;
  port: number;
  /** e.g. 'set' or 'get'. */
  test: string;
  requests: number;
  clients: number;
  dataBytes: number;
  keyspace: number;
  pipeline: number;
  timeoutMs?: number;
  /** `--cluster`: route each key to the node CLUSTER NODES names for its slot. */
  cluster?: boolean;
}

export function benchmarkArgs(r: BenchmarkRun): string[] {
  return [
    '-h', '127.0.0.1', '-p', String(r.port), '-t', r.test, '-n', String(r.requests), '-c', String(r.clients),
    '-d', String(r.dataBytes), '-r', String(r.keyspace), '-P', String(r.pipeline), '--csv',
    ...(r.cluster === true ? ['--cluster'] : []),
  ];
}

/** Runs redis-benchmark once and returns its single result row. */
export function runBenchmark(r: BenchmarkRun): Promise<BenchmarkRow> {
  return new Promise((resolve, reject) => {
    const child = spawn(r.bin, benchmarkArgs(r), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), r.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`redis-benchmark exited with ${code ?? signal}: ${err.slice(0, 500)}`));
        return;
      }
      try {
        const rows = parseBenchmarkCsv(out);
        if (rows.length !== 1) throw new BenchmarkOutputError(`expected one row, got ${rows.length}`);
        resolve(rows[0]!);
      } catch (e) {
        reject(e);
      }
    });
  });
}
