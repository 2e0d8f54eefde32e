/**
 * Before/after comparison of two builds of ringkv's storage engine (A = before, B = after), in
 * alternating rounds (order swapped every round), each phase in a fresh child process running
 * that build's own bench/storage_run.js (so each build reads the table format it wrote).
 *
 *   node .build/NAME/bench/storage_ab.js --a .build/BEFORE --b .build/AFTER [--scale 0.2] [--rounds 3] [--values 100,4096] [--out bench/results/storage-before-after.md]
 *       [--a-opts JSON] [--b-opts JSON] [--c .build/OTHER] [--c-opts JSON] [--leveldb] [--fill-only | --cold-only]
 *
 * Same phases and sizes as bench/storage.ts (fill: single puts, durable puts, batched fill,
 * write amplification; read: hot, scans, cold), ringkv only. Reports medians and B / A.
 * Experiments: --a-opts / --b-opts set RINGKV_STORAGE_OPTS (engine options merged over the
 * bench's shape, bench/storage_run.ts) for that side's children, so one build can be compared
 * with itself under other options; --c adds a third ringkv build C (reported as C / A);
 * --leveldb adds LevelDB as a side in the rotation (reported as B / LevelDB); --fill-only skips
 * the read phase. RINGKV_STORAGE_DEBT=1 in the environment also measures the compaction debt
 * each fill leaves (bench/storage_run.ts).
 * --cold-only: one fill per engine and data set (ringkv's by build A, so every ringkv side must
 * read A's table format), then per round and side only the cold reads (storage_run.js cold) on
 * a fresh copy of that fill: cheaper rounds, and every side reads the same tables.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { coldArgs, fillArgs, PHASE_CHILD_TIMEOUT_MS, readArgs } from './storage_phases.js';
import { codeBlock, commandLine, describeEnvironment, flagValue, formatBytes, formatNumber, markdownTable, median, ratio, runChildJson } from './lib/index.js';

const SETS = [
  { name: '100-byte values', fullCount: 1_000_000, valueBytes: 100 },
  { name: '4 KiB values', fullCount: 200_000, valueBytes: 4096 },
];

const METRICS: Array<{ label: string; key: string; format: (v: number) => string }> = [
  { label: 'fill, single awaited puts (ops/s)', key: 'singlePutsPerSec', format: formatNumber },
  { label: 'fill, batches of 100 (ops/s)', key: 'batchedPutsPerSec', format: formatNumber },
  { label: 'fill, batches of 100 (ops per CPU-second)', key: 'batchedPutsPerCpuSec', format: formatNumber },
  { label: 'read random, hot cache (gets/s)', key: 'hotGetsPerSec', format: formatNumber },
  { label: 'read random, hot cache (gets per CPU-second)', key: 'hotGetsPerCpuSec', format: formatNumber },
  { label: 'read random, cold cache (gets/s)', key: 'coldGetsPerSec', format: formatNumber },
  { label: 'read random, cold cache (gets per CPU-second)', key: 'coldGetsPerCpuSec', format: formatNumber },
  { label: 'read random, cold cache, first 10,000 gets after the reopen (gets/s)', key: 'coldFirstGetsPerSec', format: formatNumber },
  { label: 'read random, cold cache, first 10,000 gets (gets per CPU-second)', key: 'coldFirstGetsPerCpuSec', format: formatNumber },
  { label: 'range scans (entries/s)', key: 'scanEntriesPerSec', format: formatNumber },
  { label: 'write amplification (x)', key: 'writeAmplification', format: (v) => v.toFixed(2) },
  { label: 'write amplification with the debt paid (x, RINGKV_STORAGE_DEBT=1)', key: 'writeAmplificationWithDebt', format: (v) => v.toFixed(2) },
  { label: 'batched fill per CPU-second, debt paid (RINGKV_STORAGE_DEBT=1)', key: 'batchedPutsPerCpuSecWithDebt', format: formatNumber },
  { label: 'peak RSS, fill process', key: 'fillPeakRssBytes', format: formatBytes },
  { label: 'peak RSS, read process', key: 'readPeakRssBytes', format: formatBytes },
];

function log(msg: string): void {
  process.stderr.write(`[storage a/b ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  const a = flagValue(process.argv, '--a');
  const b = flagValue(process.argv, '--b');
  if (!a || !b) throw new Error('usage: --a BUILD_DIR --b BUILD_DIR');
  const scale = Number(flagValue(process.argv, '--scale') ?? 0.2);
  const rounds = Number(flagValue(process.argv, '--rounds') ?? 3);
  const out = flagValue(process.argv, '--out') ?? 'bench/results/storage-before-after.md';
  const values = (flagValue(process.argv, '--values') ?? '100,4096').split(',').map(Number);
  const sets = SETS.filter((x) => values.includes(x.valueBytes));
  const c = flagValue(process.argv, '--c');
  const builds = { A: path.resolve(a), B: path.resolve(b), C: path.resolve(c ?? b), L: path.resolve(a) };
  const sideOpts = { A: flagValue(process.argv, '--a-opts'), B: flagValue(process.argv, '--b-opts'), C: flagValue(process.argv, '--c-opts'), L: undefined };
  const withC = c !== undefined || sideOpts.C !== undefined;
  const withLeveldb = process.argv.includes('--leveldb');
  const fillOnly = process.argv.includes('--fill-only');
  const coldOnly = process.argv.includes('--cold-only');
  if (fillOnly && coldOnly) throw new Error('--fill-only and --cold-only exclude each other');
  const sides: Array<'A' | 'B' | 'C' | 'L'> = ['A', 'B', ...(withC ? (['C'] as const) : []), ...(withLeveldb ? (['L'] as const) : [])];
  const samples = new Map<string, number[]>();
  const add = (k: string, v: unknown): void => {
    if (typeof v === 'number' && Number.isFinite(v)) samples.set(k, [...(samples.get(k) ?? []), v]);
  };
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-storage-ab-'));
  const started = Date.now();
  /** --cold-only: one fill per engine and data set, then rounds of cold reads on copies of it. */
  const coldRounds = async (): Promise<void> => {
    for (const set of sets) {
      const count = Math.round(set.fullCount * scale);
      const bases = new Map<string, string>();
      for (const engine of withLeveldb ? ['ringkv', 'leveldb'] : ['ringkv']) {
        const base = path.join(root, `base-${engine}-${set.valueBytes}`);
        log(`${set.name} x ${count}: ${engine} fill (build A)`);
        await runChildJson(path.join(builds.A, 'bench', 'storage_run.js'), fillArgs(engine, base, count, set.valueBytes), { timeoutMs: PHASE_CHILD_TIMEOUT_MS });
        bases.set(engine, base);
      }
      for (let r = 0; r < rounds; r++) {
        const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
        for (const which of order) {
          const engine = which === 'L' ? 'leveldb' : 'ringkv';
          const dir = path.join(root, `cold-${which}-${set.valueBytes}-${r}`);
          await fsp.cp(bases.get(engine)!, dir, { recursive: true });
          const opts = sideOpts[which];
          if (opts) process.env['RINGKV_STORAGE_OPTS'] = opts;
          else delete process.env['RINGKV_STORAGE_OPTS'];
          const cold = await runChildJson(path.join(builds[which], 'bench', 'storage_run.js'), coldArgs(engine, dir, count, set.valueBytes), { timeoutMs: PHASE_CHILD_TIMEOUT_MS });
          delete process.env['RINGKV_STORAGE_OPTS'];
          await fsp.rm(dir, { recursive: true, force: true });
          log(`round ${r + 1}/${rounds} ${set.name}: ${which}: cold ${Math.round(Number(cold['coldGetsPerSec']))}/s, ${Math.round(Number(cold['coldGetsPerCpuSec']))}/CPU-s; first ${Math.round(Number(cold['coldFirstGetsPerSec']))}/s`);
          for (const m of ['coldGetsPerSec', 'coldGetsPerCpuSec', 'coldFirstGetsPerSec', 'coldFirstGetsPerCpuSec']) add(`${set.valueBytes}|${which}|${m}`, cold[m]);
          add(`${set.valueBytes}|${which}|readPeakRssBytes`, cold['peakRssBytes']);
        }
      }
    }
  };
  try {
    if (coldOnly) await coldRounds();
    for (let r = 0; !coldOnly && r < rounds; r++) {
      for (const set of sets) {
        const count = Math.round(set.fullCount * scale);
        // The order rotates each round: A B C, B C A, C A B, ...
        const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
        for (const which of order) {
          const runner = path.join(builds[which], 'bench', 'storage_run.js');
          const engine = which === 'L' ? 'leveldb' : 'ringkv';
          const dir = path.join(root, `${which}-${set.valueBytes}-${r}`);
          log(`round ${r + 1}/${rounds} ${set.name} x ${count}: ${which}`);
          const opts = sideOpts[which];
          if (opts) process.env['RINGKV_STORAGE_OPTS'] = opts;
          else delete process.env['RINGKV_STORAGE_OPTS'];
          const fill = await runChildJson(runner, fillArgs(engine, dir, count, set.valueBytes), { timeoutMs: PHASE_CHILD_TIMEOUT_MS });
          const read: Record<string, unknown> = fillOnly ? {} : await runChildJson(runner, readArgs(engine, dir, count, set.valueBytes), { timeoutMs: PHASE_CHILD_TIMEOUT_MS });
          delete process.env['RINGKV_STORAGE_OPTS'];
          await fsp.rm(dir, { recursive: true, force: true });
          log(
            `  ${which}: fill ${Math.round(Number(fill['batchedPutsPerSec']))}/s, ${Math.round(Number(fill['batchedPutsPerCpuSec']))}/CPU-s, ` +
              `WA ${Number(fill['writeAmplification']).toFixed(3)}${fill['writeAmplificationWithDebt'] ? ` (${Number(fill['writeAmplificationWithDebt']).toFixed(3)} with the debt paid in ${Math.round(Number(fill['debtMs']))} ms)` : ''}${fill['shapeAfterSettle'] ? `, shape after settle ${JSON.stringify(fill['shapeAfterSettle'])}` : ''}` +
              (fillOnly ? '' : `; hot ${Math.round(Number(read['hotGetsPerSec']))}/s, cold ${Math.round(Number(read['coldGetsPerSec']))}/s`),
          );
          const k = (m: string) => `${set.valueBytes}|${which}|${m}`;
          for (const m of ['singlePutsPerSec', 'batchedPutsPerSec', 'batchedPutsPerCpuSec', 'writeAmplification', 'writeAmplificationWithDebt', 'batchedPutsPerCpuSecWithDebt']) add(k(m), fill[m]);
          for (const m of ['hotGetsPerSec', 'hotGetsPerCpuSec', 'coldGetsPerSec', 'coldGetsPerCpuSec', 'coldFirstGetsPerSec', 'coldFirstGetsPerCpuSec', 'scanEntriesPerSec']) add(k(m), read[m]);
          add(k('fillPeakRssBytes'), fill.peakRssBytes);
          add(k('readPeakRssBytes'), read['peakRssBytes']);
        }
      }
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  // Raw samples first, so a report that fails to format loses nothing.
  await fsp.mkdir(path.dirname(out), { recursive: true });
  await fsp.writeFile(`${out}.json`, JSON.stringify(Object.fromEntries(samples), null, 1));
  const md: string[] = ['# Storage engine: before / after\n', 'Produced by (from the repository root):\n', codeBlock(commandLine(import.meta.url), 'sh')];
  const withOpts = (o: string | undefined): string => (o ? ` with RINGKV_STORAGE_OPTS \`${o}\`` : '');
  md.push(`A (before): \`${a}\`${withOpts(sideOpts.A)}; B (after): \`${b}\`${withOpts(sideOpts.B)}${withC ? `; C: \`${c ?? b}\`${withOpts(sideOpts.C)}` : ''}${withLeveldb ? '; L: LevelDB (classic-level)' : ''}. Machine: ${describeEnvironment()}. Run took ${((Date.now() - started) / 60_000).toFixed(1)} min.\n`);
  md.push(
    `${rounds} rounds, the sides alternating (order rotated every round), every phase in a fresh child process of that build ` +
      `(bench/storage_run.js: the same phases as bench/storage.ts, ringkv only). Medians over rounds; B / A > 1 is better for ` +
      'throughput, < 1 for amplification and RSS. The machine is shared: absolute numbers are noisy, the ratios count.\n',
  );
  if (coldOnly) md.push('--cold-only: one fill per engine (ringkv\'s by build A), then per round and side only the cold reads, on a fresh copy of that fill.\n');
  for (const set of sets) {
    md.push(`\n## ${set.name} x ${formatNumber(Math.round(set.fullCount * scale))}\n`);
    md.push(
      markdownTable(
        [
          'metric',
          'A (before)',
          'B (after)',
          'B / A',
          ...(withC ? ['C', 'C / A'] : []),
          ...(withLeveldb ? ['LevelDB', 'B / LevelDB'] : []),
          'samples A',
          'samples B',
          ...(withC ? ['samples C'] : []),
          ...(withLeveldb ? ['samples LevelDB'] : []),
        ],
        METRICS.flatMap((m) => {
          const sa = samples.get(`${set.valueBytes}|A|${m.key}`) ?? [];
          const sb = samples.get(`${set.valueBytes}|B|${m.key}`) ?? [];
          const sl = samples.get(`${set.valueBytes}|L|${m.key}`) ?? [];
          const sc = samples.get(`${set.valueBytes}|C|${m.key}`) ?? [];
          if (sa.length === 0 || sb.length === 0) return [];
          const med = (xs: number[]): number => (xs.length > 0 ? median(xs) : Number.NaN);
          return [
            [
              m.label,
              m.format(med(sa)),
              m.format(med(sb)),
              `${ratio(med(sb), med(sa)).toFixed(2)}x`,
              ...(withC ? [m.format(med(sc)), `${ratio(med(sc), med(sa)).toFixed(2)}x`] : []),
              ...(withLeveldb ? [m.format(med(sl)), `${ratio(med(sb), med(sl)).toFixed(2)}x`] : []),
              sa.map((v) => m.format(v)).join(' '),
              sb.map((v) => m.format(v)).join(' '),
              ...(withC ? [sc.map((v) => m.format(v)).join(' ')] : []),
              ...(withLeveldb ? [sl.map((v) => m.format(v)).join(' ')] : []),
            ],
          ];
        }),
      ),
    );
  }
  await fsp.mkdir(path.dirname(out), { recursive: true });
  await fsp.writeFile(out, md.join('\n'));
  log(`wrote ${out}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`storage_ab: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
