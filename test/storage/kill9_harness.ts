/**
 * The kill -9 cycle shared by kill9.test.ts (>= 50 cycles in npm test) and the storage soak
 * (test/soak/storage_soak.ts, many more): spawn kill9_child.js on a real directory, let it write
 * with appendfsync 'always', SIGKILL it at a random moment (sometimes before it finished opening,
 * i.e. during recovery), then open the directory in this process and check that every write the
 * child acknowledged is there with its exact value, every acknowledged delete stays deleted, and
 * nothing is present that the child never wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openEngine } from '../../src/storage/engine.js';
import type { Entry } from '../../src/storage/types.js';
import { kill9Key, kill9Value } from './kill9_child.js';

const CHILD_SCRIPT = new URL('./kill9_child.js', import.meta.url).pathname;
/** Keys of different cycles never collide: cycle c writes indices from c * INDEX_STRIDE. */
const INDEX_STRIDE = 10_000_000;
const KEY_PATTERN = /^key-(\d{10})$/;

type Expect = 'present' | 'maybe-deleted' | 'deleted';

export interface Kill9Options {
  dir: string;
  cycles: number;
  /** Random delay between the child saying ready and the kill. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance of killing at a random moment after spawn without waiting for ready. */
  earlyKillChance: number;
  window: number;
  memtableBytes: number;
  random: () => number;
  /** Registers the running child so a caller's teardown can kill it on failure. */
  onChild?: (child: ChildProcess | null) => void;
  onCycle?: (cycle: number, report: Kill9Report) => void;
}

export interface Kill9Report {
  cycles: number;
  ackedPuts: number;
  ackedDeletes: number;
  /** Cycles in which the child acknowledged at least one write before the kill. */
  cyclesWithAcks: number;
  earlyKills: number;
  tornBytes: number;
  liveKeys: number;
  problems: string[];
}

interface CycleOutcome {
  acks: number;
  early: boolean;
}

function runChild(opts: Kill9Options, cycle: number, expect: Map<number, Expect>, report: Kill9Report): Promise<CycleOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD_SCRIPT, opts.dir, String(cycle * INDEX_STRIDE), String(opts.window), String(opts.memtableBytes)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    opts.onChild?.(child);
    let acks = 0;
    let buffered = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const early = opts.random() < opts.earlyKillChance;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const delay = () => opts.minDelayMs + opts.random() * (opts.maxDelayMs - opts.minDelayMs);
    if (early) timer = setTimeout(kill, opts.random() * 150);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr += s;
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [a, b, c] = line.split(' ');
        if (a === 'ready') {
          if (!early) timer = setTimeout(kill, delay());
        } else if (a === 'del-issued') {
          expect.set(Number(b), 'maybe-deleted');
        } else if (a === 'ack' && b === 'put') {
          expect.set(Number(c), 'present');
          acks++;
          report.ackedPuts++;
        } else if (a === 'ack' && b === 'del') {
          expect.set(Number(c), 'deleted');
          acks++;
          report.ackedDeletes++;
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      opts.onChild?.(null);
      if (signal !== 'SIGKILL') {
        reject(new Error(`cycle ${cycle}: child exited by itself (code ${code}, signal ${signal}): ${stderr.slice(0, 2000)}`));
        return;
      }
      resolve({ acks, early });
    });
  });
}

async function verify(dir: string, expect: Map<number, Expect>, cycle: number, report: Kill9Report): Promise<void> {
  const engine = await openEngine({ dir, appendfsync: 'always' });
  const present = new Map<number, Entry>();
  try {
    report.tornBytes += engine.stats().recoveredTornBytes;
    for await (const e of engine.range()) {
      const m = KEY_PATTERN.exec(e.key.toString());
      if (!m) {
        report.problems.push(`cycle ${cycle}: unknown key ${e.key.toString('hex')}`);
        continue;
      }
      present.set(Number(m[1]), e);
    }
    for (const [i, e] of present) {
      if (!e.value.equals(kill9Value(i))) report.problems.push(`cycle ${cycle}: key ${i} has a wrong value (${e.value.length} bytes)`);
      if (expect.get(i) === 'deleted') report.problems.push(`cycle ${cycle}: key ${i} was deleted (acknowledged) but is back`);
    }
    for (const [i, state] of expect) {
      if (state === 'present' && !present.has(i)) report.problems.push(`cycle ${cycle}: acknowledged put of key ${i} lost`);
    }
    // Spot-check point reads agree with the scan (the read path differs from the scan path).
    let probes = 0;
    for (const [i, state] of expect) {
      if (probes++ >= 50) break;
      const v = await engine.get(kill9Key(i));
      if (state === 'present' && !(v && v.equals(kill9Value(i)))) report.problems.push(`cycle ${cycle}: get of acknowledged key ${i} wrong`);
      if (state === 'deleted' && v !== undefined) report.problems.push(`cycle ${cycle}: get of deleted key ${i} returned a value`);
    }
    report.liveKeys = present.size;
  } finally {
    await engine.close();
  }
  // Settle the indeterminate deletes so later cycles check them exactly.
  for (const [i, state] of expect) if (state === 'maybe-deleted') expect.set(i, present.has(i) ? 'present' : 'deleted');
  // Keys that were put but never acked and are present now must stay: record them as well.
  for (const i of present.keys()) if (!expect.has(i)) expect.set(i, 'present');
}

export async function runKill9Cycles(opts: Kill9Options): Promise<Kill9Report> {
  const report: Kill9Report = { cycles: 0, ackedPuts: 0, ackedDeletes: 0, cyclesWithAcks: 0, earlyKills: 0, tornBytes: 0, liveKeys: 0, problems: [] };
  const expect = new Map<number, Expect>();
  for (let cycle = 0; cycle < opts.cycles; cycle++) {
    const outcome = await runChild(opts, cycle, expect, report);
    report.cycles++;
    if (outcome.acks > 0) report.cyclesWithAcks++;
    if (outcome.early) report.earlyKills++;
    await verify(opts.dir, expect, cycle, report);
    opts.onCycle?.(cycle, report);
    if (report.problems.length > 20) break;
  }
  return report;
}
