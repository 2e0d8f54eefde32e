/**
 * Describes the machine and the command a benchmark ran with, for the header of a results file:
 * figures are only comparable with the conditions they were measured under.
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

export interface BenchEnvironment {
  date: string;
  node: string;
  platform: string;
  cpus: number;
  cpuModel: string;
  totalMemBytes: number;
  loadAverage: [number, number, number];
}

export function benchEnvironment(): BenchEnvironment {
  const cpus = os.cpus();
  const [l1, l5, l15] = os.loadavg();
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemBytes: os.totalmem(),
    loadAverage: [l1 ?? 0, l5 ?? 0, l15 ?? 0],
  };
}

/** One markdown line describing the environment. */
export function describeEnvironment(e: BenchEnvironment = benchEnvironment()): string {
  const gib = (e.totalMemBytes / 2 ** 30).toFixed(1);
  const load = e.loadAverage.map((l) => l.toFixed(2)).join(' ');
  return `${e.date}, Node ${e.node}, ${e.platform}, ${e.cpus} x ${e.cpuModel}, ${gib} GiB RAM, load average at start ${load}`;
}

/**
 * The command line that reproduces this run, relative to the repository root, e.g.
 * `node .build/x/bench/storage.js --quick`. `scriptUrl` is the bench's import.meta.url.
 */
export function commandLine(scriptUrl?: string): string {
  const script = scriptUrl ? new URL(scriptUrl).pathname : (process.argv[1] ?? '');
  const rel = path.relative(process.cwd(), script) || script;
  return ['node', rel, ...process.argv.slice(2)].join(' ');
}

/**
 * The last commit touching `paths` and whether they have uncommitted changes, e.g.
 * "c1f69fd (src/storage; plus uncommitted changes)": what code a figure was measured on.
 * Returns "unknown" outside a git checkout.
 */
export function codeVersion(paths: readonly string[]): string {
  try {
    const commit = execFileSync('git', ['log', '-1', '--format=%h', '--', ...paths], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', ...paths], { encoding: 'utf8' }).trim() !== '';
    return `${commit || 'uncommitted'} (${paths.join(', ')}${dirty ? '; plus uncommitted changes in the work tree' : ''})`;
  } catch {
    return 'unknown';
  }
}
