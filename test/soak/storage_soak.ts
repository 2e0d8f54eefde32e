/**
 * Storage soak: the storage proofs of npm test, run much longer (not part of npm test).
 *
 *   node .build/NAME/test/soak/storage_soak.js [--kill9-cycles 500] [--powerloss-workloads 100]
 *                                              [--property-runs 2000] [--only kill9|powerloss|property]
 *
 * - kill9: the kill -9 cycle of test/storage/kill9_harness.ts on one directory, cycles in a row
 *   (the directory grows across cycles, so recovery also runs over many tables);
 * - powerloss / property: the compiled test files run with larger counts through their
 *   environment knobs (POWERLOSS_WORKLOADS, FC_RUNS), tap's timeout disabled.
 * Prints progress to stderr and exits non-zero on the first failing part.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runKill9Cycles } from '../storage/kill9_harness.js';
import { seededRandom } from '../storage/fault_fs.js';

interface Args {
  kill9Cycles: number;
  powerlossWorkloads: number;
  propertyRuns: number;
  only: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { kill9Cycles: 500, powerlossWorkloads: 100, propertyRuns: 2000, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${a} needs a value`);
    i++;
    if (a === '--kill9-cycles') args.kill9Cycles = Number(v);
    else if (a === '--powerloss-workloads') args.powerlossWorkloads = Number(v);
    else if (a === '--property-runs') args.propertyRuns = Number(v);
    else if (a === '--only') args.only = v;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

function say(msg: string): void {
  process.stderr.write(`[storage soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

let running: ChildProcess | null = null;

function runTestFile(file: string, env: Record<string, string>): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL(file, import.meta.url).pathname], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TAP_TIMEOUT: '0', ...env },
    });
    running = child;
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
      // Subtest summaries (they carry the counts) and every failure.
      for (const line of s.split('\n')) if (/^\s*not ok \d+ - /.test(line) || /^\s{0,4}ok \d+ - .*(# time=|points|crashes|runs)/.test(line)) say(`  ${line.trim().slice(0, 300)}`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      running = null;
      if (code !== 0) process.stderr.write(out.slice(-5000));
      resolve(code === 0);
    });
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const want = (part: string) => args.only === undefined || args.only === part;
  process.once('SIGINT', () => {
    running?.kill('SIGKILL');
    process.exit(130);
  });
  if (want('kill9')) {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-soak-kill9-'));
    let child: ChildProcess | null = null;
    // A failing run keeps its directory (the evidence); a passing one removes it.
    let keep = false;
    try {
      const seed = Date.now() % 1_000_000;
      say(`kill9: ${args.kill9Cycles} cycles, seed ${seed}`);
      const report = await runKill9Cycles({
        dir: path.join(root, 'db'),
        cycles: args.kill9Cycles,
        minDelayMs: 20,
        maxDelayMs: 1500,
        earlyKillChance: 0.1,
        window: 8,
        memtableBytes: 64 * 1024,
        random: seededRandom(seed),
        onChild: (c) => {
          child = c;
        },
        onCycle: (cycle, r) => {
          if ((cycle + 1) % 25 === 0) say(`  cycle ${cycle + 1}: ${r.ackedPuts} acked puts, ${r.ackedDeletes} deletes, ${r.liveKeys} live keys, ${r.problems.length} problems`);
        },
      });
      say(`kill9: ${report.cycles} cycles, ${report.ackedPuts} acked puts, ${report.ackedDeletes} acked deletes, ${report.tornBytes} torn bytes, problems: ${report.problems.length}`);
      for (const p of report.problems.slice(0, 20)) say(`  ${p}`);
      if (report.problems.length) {
        process.exitCode = 1;
        keep = true;
        say(`kill9: directory kept for inspection: ${path.join(root, 'db')}`);
      }
    } finally {
      const c = child as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      if (!keep) await fsp.rm(root, { recursive: true, force: true });
    }
  }
  if (want('powerloss')) {
    say(`powerloss: ${args.powerlossWorkloads} workloads`);
    if (!(await runTestFile('../storage/powerloss.test.js', { POWERLOSS_WORKLOADS: String(args.powerlossWorkloads) }))) process.exitCode = 1;
  }
  if (want('property')) {
    say(`property: ${args.propertyRuns} runs`);
    if (!(await runTestFile('../storage/model.property.test.js', { FC_RUNS: String(args.propertyRuns) }))) process.exitCode = 1;
  }
  say(process.exitCode ? 'FAILED' : 'all parts passed');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
