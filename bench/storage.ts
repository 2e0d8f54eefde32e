/**
 * ringkv's storage engine against LevelDB (npm classic-level, what a Node user would pick
 * instead), side by side in one run (issue 2, "How it is measured").
 *
 *   node .build/NAME/bench/storage.js [--full] [--scale 0.2] [--rounds 5] [--out bench/results] [--name storage]
 *   node .build/NAME/bench/storage.js --memory-only [--memory-counts 10000,50000,200000] [--out bench/results]
 *
 * Data sets: N x 100-byte values and M x 4 KiB values, N = 1,000,000 and M = 200,000 with
 * --full; by default scaled by --scale (0.2: 200,000 and 40,000) because a full run takes too
 * long on the shared machine. Every round runs, per data set, both engines one after the other
 * (order rotated each round), each phase in a fresh child process (bench/storage_run.ts) so
 * peak RSS and bytes written are attributable:
 *   fill child: single awaited puts (first min(N, 20k) keys, own directory), durable single
 *     puts (fsync each), then the whole set in random order in batches of 100, a 2 s settle,
 *     close; bytes written (wchar of the process) / user bytes = write amplification, directory
 *     bytes / user bytes = space amplification;
 *   read child: random gets over a working set that fits the cache (hot: one warming pass, then
 *     whole passes timed until at least 100,000 gets; the first timed pass is also reported), range scans of 100 entries from random keys, then reopened with a 64 KiB cache and
 *     random gets (cold: the engine's cache is cold, the OS page cache is not; dropping it
 *     needs root; the first 10,000 gets after the reopen are reported alone, then the next
 *     100,000 are timed).
 * In the last round, "memory stays bounded": each engine reopens each data set with a block
 * cache at most 1/10 of the data, scans all of it and reads randomly; RSS (before and after a
 * forced GC) and live ArrayBuffer bytes are reported at each step.
 * Medians over rounds; ratios are ringkv / LevelDB (higher is better for throughput, lower for
 * amplification and RSS). Writes <out>/storage.md and <out>/storage.svg.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  median,
  ratio,
  relativeSpread,
  formatNumber,
  formatRatio,
  formatBytes,
  markdownTable,
  codeBlock,
  barChartSvg,
  lineChartSvg,
  describeEnvironment,
  commandLine,
  codeVersion,
  runChildJson,
} from './lib/index.js';

import { fillArgs, PHASE_CHILD_TIMEOUT_MS, readArgs } from './storage_phases.js';

const RUNNER = new URL('./storage_run.js', import.meta.url);
const ENGINES = ['ringkv', 'leveldb'] as const;
type EngineName = (typeof ENGINES)[number];
const ENGINE_LABEL: Record<EngineName, string> = { ringkv: 'ringkv', leveldb: 'LevelDB (classic-level)' };

const FULL_SMALL_COUNT = 1_000_000;
const FULL_LARGE_COUNT = 200_000;
const BOUND_READS = 10_000;
/** The bounded-memory run's cache is at most this fraction of the data set. */
const BOUND_CACHE_FRACTION_MAX = 0.1;
const BOUND_CACHE_BYTES_MAX = 8 * 1024 * 1024;
const CHILD_TIMEOUT_MS = PHASE_CHILD_TIMEOUT_MS;

/** Issue 2's targets. */
const TARGET_BATCHED_FILL = 1.0;
const TARGET_SINGLE_READS = 3.0;

interface Args {
  memoryOnly: boolean;
  /** --memory-only: data-set sizes (number of 4 KiB values), read with one fixed cache. */
  memoryCounts: number[];
  full: boolean;
  scale: number;
  rounds: number;
  out: string;
  /** Base name of the result files: <name>.md, <name>.svg, <name>-bound.svg. */
  name: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { memoryOnly: false, memoryCounts: [10_000, 50_000, 200_000], full: false, scale: 0.2, rounds: 5, out: 'bench/results', name: 'storage' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--full') args.full = true;
    else if (a === '--scale') args.scale = Number(next());
    else if (a === '--rounds') args.rounds = Number(next());
    else if (a === '--out') args.out = next();
    else if (a === '--name') args.name = next();
    else if (a === '--memory-only') args.memoryOnly = true;
    else if (a === '--memory-counts') args.memoryCounts = next().split(',').map(Number);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(args.scale > 0 && args.scale <= 1)) throw new Error('--scale must be in (0, 1]');
  if (!(args.rounds >= 1)) throw new Error('--rounds must be >= 1');
  return args;
}

interface DataSet {
  name: string;
  count: number;
  valueBytes: number;
}

interface FillResult {
  singlePutsPerSec: number;
  durablePutsPerSec: number;
  batchedPutsPerSec: number;
  /** Puts per second of process CPU time (all threads); absent in results of older builds. */
  batchedPutsPerCpuSec?: number;
  userBytes: number;
  bytesWritten: number;
  writeAmplification: number;
  diskBytes: number;
  spaceAmplification: number;
  peakRssBytes: number;
}

interface ReadResult {
  hotGetsPerSec: number;
  coldGetsPerSec: number;
  /** Gets per second of process CPU time (all threads). */
  hotGetsPerCpuSec?: number;
  /** The first timed pass alone (the hot figure of runs before 2026-12-02 15:00 UTC); absent in older builds. */
  hotFirstPassGetsPerSec?: number;
  coldGetsPerCpuSec?: number;
  /** The first gets after the reopen alone (the cold figure of runs before 2026-12-02 16:30 UTC); absent in older builds. */
  coldFirstGetsPerSec?: number;
  scanEntriesPerSec: number;
  peakRssBytes: number;
}

interface MemoryStep {
  step: string;
  rssBytes: number;
  rssAfterGcBytes: number;
  heapUsedBytes: number;
  arrayBuffersBytes: number;
}

interface BoundResult {
  cacheBytes: number;
  dataBytes: number;
  diskBytes: number;
  fullScanEntriesPerSec: number;
  getsPerSec: number;
  peakRssDuringScanBytes: number;
  steps: MemoryStep[];
  peakRssBytes: number;
}

type Metric = { label: string; unit: string; higherIsBetter: boolean; pick: (f: FillResult, r: ReadResult) => number; format: (v: number) => string; target?: number };

const METRICS: Metric[] = [
  { label: 'fill random, single awaited puts', unit: 'ops/s', higherIsBetter: true, pick: (f) => f.singlePutsPerSec, format: formatNumber },
  { label: 'fill random, batches of 100', unit: 'ops/s', higherIsBetter: true, pick: (f) => f.batchedPutsPerSec, format: formatNumber, target: TARGET_BATCHED_FILL },
  { label: 'durable single puts (fsync each)', unit: 'ops/s', higherIsBetter: true, pick: (f) => f.durablePutsPerSec, format: formatNumber },
  { label: 'read random, hot cache', unit: 'gets/s', higherIsBetter: true, pick: (_f, r) => r.hotGetsPerSec, format: formatNumber, target: TARGET_SINGLE_READS },
  { label: 'read random, hot cache, first timed pass only (the method before 2026-12-02)', unit: 'gets/s', higherIsBetter: true, pick: (_f, r) => r.hotFirstPassGetsPerSec ?? Number.NaN, format: formatNumber },
  { label: 'read random, cold cache', unit: 'gets/s', higherIsBetter: true, pick: (_f, r) => r.coldGetsPerSec, format: formatNumber, target: TARGET_SINGLE_READS },
  { label: 'read random, cold cache, first 10,000 gets after the reopen only (the method before 2026-12-02 16:30)', unit: 'gets/s', higherIsBetter: true, pick: (_f, r) => r.coldFirstGetsPerSec ?? Number.NaN, format: formatNumber },
  { label: 'batched fill per CPU-second (all threads)', unit: 'ops/CPU-s', higherIsBetter: true, pick: (f) => f.batchedPutsPerCpuSec ?? Number.NaN, format: formatNumber },
  { label: 'hot reads per CPU-second (all threads)', unit: 'gets/CPU-s', higherIsBetter: true, pick: (_f, r) => r.hotGetsPerCpuSec ?? Number.NaN, format: formatNumber },
  { label: 'cold reads per CPU-second (all threads)', unit: 'gets/CPU-s', higherIsBetter: true, pick: (_f, r) => r.coldGetsPerCpuSec ?? Number.NaN, format: formatNumber },
  { label: 'range scans (100 entries each)', unit: 'entries/s', higherIsBetter: true, pick: (_f, r) => r.scanEntriesPerSec, format: formatNumber },
  { label: 'write amplification (fill)', unit: 'x', higherIsBetter: false, pick: (f) => f.writeAmplification, format: (v) => v.toFixed(2) },
  { label: 'space amplification (after fill)', unit: 'x', higherIsBetter: false, pick: (f) => f.spaceAmplification, format: (v) => v.toFixed(2) },
  { label: 'peak RSS, fill process', unit: 'bytes', higherIsBetter: false, pick: (f) => f.peakRssBytes, format: formatBytes },
  { label: 'peak RSS, read process', unit: 'bytes', higherIsBetter: false, pick: (_f, r) => r.peakRssBytes, format: formatBytes },
];

function log(msg: string): void {
  process.stderr.write(`[storage bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function runRound(set: DataSet, engine: EngineName, dir: string): Promise<{ fill: FillResult; read: ReadResult }> {
  const fill = await runChildJson<FillResult>(RUNNER, fillArgs(engine, dir, set.count, set.valueBytes), { timeoutMs: CHILD_TIMEOUT_MS });
  // The hot working set fits the read cache: at most half of it in values.
  const read = await runChildJson<ReadResult>(RUNNER, readArgs(engine, dir, set.count, set.valueBytes), { timeoutMs: CHILD_TIMEOUT_MS });
  return { fill, read };
}

/** The cache of the --memory-only run: the same for every data-set size. */
const MEMORY_RUN_CACHE_BYTES = 2 * 1024 * 1024;
const MEMORY_RUN_VALUE_BYTES = 4096;

/**
 * --memory-only: fills each engine with data sets of growing size (4 KiB values, batched fill)
 * and reads each one fully and at random with the same small block cache, in a fresh process.
 * If memory is bounded by memtables + cache + per-table index, RSS after the reads does not
 * grow with the data size. Writes <out>/storage-memory.md and <out>/storage-memory.svg.
 */
async function memoryOnly(args: Args): Promise<void> {
  const environment = `${describeEnvironment()}. Engine code: ${codeVersion(['src/storage'])}`;
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-storage-memory-'));
  const runs: Array<{ engine: EngineName; count: number; result: BoundResult; fill: FillResult }> = [];
  const started = Date.now();
  try {
    for (const count of args.memoryCounts) {
      for (const engine of ENGINES) {
        const dir = path.join(root, `${engine}-${count}`);
        log(`memory: ${engine} ${formatNumber(count)} x 4 KiB: fill`);
        const fill = await runChildJson<FillResult>(RUNNER, ['fill', engine, dir, String(count), String(MEMORY_RUN_VALUE_BYTES), '10', '10'], {
          timeoutMs: CHILD_TIMEOUT_MS,
        });
        log(`memory: ${engine} ${formatNumber(count)} x 4 KiB: read with a ${formatBytes(MEMORY_RUN_CACHE_BYTES)} cache`);
        const result = await runChildJson<BoundResult>(
          RUNNER,
          ['bound', engine, dir, String(count), String(MEMORY_RUN_VALUE_BYTES), String(BOUND_READS), String(MEMORY_RUN_CACHE_BYTES)],
          { timeoutMs: CHILD_TIMEOUT_MS, nodeArgs: ['--expose-gc'] },
        );
        runs.push({ engine, count, result, fill });
        await fsp.rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  const md: string[] = [];
  md.push('# Storage engine: memory against data size\n');
  md.push('Produced by (from the repository root, after `npx tsc -p . --outDir .build/NAME`):\n');
  md.push(codeBlock(commandLine(import.meta.url), 'sh'));
  md.push(`Machine: ${environment}. Run took ${((Date.now() - started) / 60_000).toFixed(1)} min.\n`);
  md.push(
    `Each engine is filled (batches of 100, random order) with data sets of growing size, 4 KiB random values, then a fresh ` +
      `process (--expose-gc) opens it with a ${formatBytes(MEMORY_RUN_CACHE_BYTES)} block cache, scans all of it (20 slices) and ` +
      `does ${formatNumber(BOUND_READS)} random gets; background compaction runs as usual. "RSS after GC" is measured after a ` +
      "full collection of the main thread. If memory is bounded by memtables + block cache + per-table index, RSS does not grow " +
      'with the data. What RSS also holds: ringkv\'s worker threads and memory the allocator keeps after it was freed; LevelDB ' +
      'reads tables through mmap, so file pages it touched count in its RSS (the kernel can drop them).\n\n',
  );
  md.push(
    markdownTable(
      ['engine', 'data set', 'data / cache', 'RSS after GC: open', 'full scan', 'random reads', 'closed', 'peak RSS', 'V8 heap after reads', 'fill process peak RSS'],
      runs.map(({ engine, count, result, fill }) => {
        const at = (step: string) => result.steps.find((m) => m.step === step);
        return [
          ENGINE_LABEL[engine],
          `${formatNumber(count)} x 4 KiB (${formatBytes(result.dataBytes)})`,
          `${(result.dataBytes / result.cacheBytes).toFixed(0)}x`,
          formatBytes(at('open')?.rssAfterGcBytes ?? Number.NaN),
          formatBytes(at('full scan')?.rssAfterGcBytes ?? Number.NaN),
          formatBytes(at('random reads')?.rssAfterGcBytes ?? Number.NaN),
          formatBytes(at('closed')?.rssAfterGcBytes ?? Number.NaN),
          formatBytes(result.peakRssBytes),
          formatBytes(at('random reads')?.heapUsedBytes ?? Number.NaN),
          formatBytes(fill.peakRssBytes),
        ];
      }),
    ),
  );
  md.push('\nPlot: [storage-memory.svg](storage-memory.svg).\n');
  await fsp.mkdir(args.out, { recursive: true });
  await fsp.writeFile(path.join(args.out, 'storage-memory.md'), md.join('\n'));
  await fsp.writeFile(
    path.join(args.out, 'storage-memory.svg'),
    lineChartSvg({
      title: `Peak RSS of a reading process vs data size (${formatBytes(MEMORY_RUN_CACHE_BYTES)} block cache)`,
      subtitle: 'flat = bounded; also: RSS of the fill process',
      series: ENGINES.flatMap((engine) => [
        { name: `${engine} read`, points: runs.filter((r) => r.engine === engine).map((r) => [r.result.dataBytes / 2 ** 20, r.result.peakRssBytes / 2 ** 20] as const) },
        { name: `${engine} fill`, points: runs.filter((r) => r.engine === engine).map((r) => [r.result.dataBytes / 2 ** 20, r.fill.peakRssBytes / 2 ** 20] as const) },
      ]),
      xLabel: 'data set (MiB)',
      yLabel: 'peak RSS (MiB)',
      width: 1000,
    }),
  );
  log(`wrote ${path.join(args.out, 'storage-memory.md')}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.memoryOnly) {
    await memoryOnly(args);
    return;
  }
  const scale = args.full ? 1 : args.scale;
  const sets: DataSet[] = [
    { name: '100-byte values', count: Math.round(FULL_SMALL_COUNT * scale), valueBytes: 100 },
    { name: '4 KiB values', count: Math.round(FULL_LARGE_COUNT * scale), valueBytes: 4096 },
  ];
  const environment = `${describeEnvironment()}. Engine code: ${codeVersion(['src/storage'])}`;
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-storage-bench-'));
  const results = new Map<string, Map<EngineName, Array<{ fill: FillResult; read: ReadResult }>>>();
  const bounds: Array<{ set: DataSet; engine: EngineName; result: BoundResult }> = [];
  const started = Date.now();
  try {
    for (const set of sets) {
      const perEngine = new Map<EngineName, Array<{ fill: FillResult; read: ReadResult }>>(ENGINES.map((e) => [e, []]));
      results.set(set.name, perEngine);
      for (let round = 0; round < args.rounds; round++) {
        for (let k = 0; k < ENGINES.length; k++) {
          const engine = ENGINES[(k + round) % ENGINES.length]!;
          const dir = path.join(root, `${engine}-${set.valueBytes}-${round}`);
          log(`${set.name} x ${set.count}: round ${round + 1}/${args.rounds} ${engine}`);
          const r = await runRound(set, engine, dir);
          perEngine.get(engine)!.push(r);
          log(
            `  batched ${formatNumber(r.fill.batchedPutsPerSec)}/s single ${formatNumber(r.fill.singlePutsPerSec)}/s hot ${formatNumber(r.read.hotGetsPerSec)}/s cold ${formatNumber(r.read.coldGetsPerSec)}/s scan ${formatNumber(r.read.scanEntriesPerSec)}/s wamp ${r.fill.writeAmplification.toFixed(2)}`,
          );
          if (round === args.rounds - 1) {
            const userBytes = set.count * (set.valueBytes + 16);
            // One cache size for every data set, so RSS can be compared across data sizes.
            const cache = Math.min(BOUND_CACHE_BYTES_MAX, ...sets.map((x) => Math.floor(x.count * (x.valueBytes + 16) * BOUND_CACHE_FRACTION_MAX)));
            log(`  memory-bound run: ${engine}, cache ${formatBytes(cache)}, data ${formatBytes(userBytes)}`);
            const result = await runChildJson<BoundResult>(
              RUNNER,
              ['bound', engine, dir, String(set.count), String(set.valueBytes), String(BOUND_READS), String(cache)],
              { timeoutMs: CHILD_TIMEOUT_MS, nodeArgs: ['--expose-gc'] },
            );
            bounds.push({ set, engine, result });
          }
          await fsp.rm(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  const elapsedMin = (Date.now() - started) / 60_000;
  await writeResults(args, scale, sets, results, bounds, environment, elapsedMin);
}

async function writeResults(
  args: Args,
  scale: number,
  sets: DataSet[],
  results: Map<string, Map<EngineName, Array<{ fill: FillResult; read: ReadResult }>>>,
  bounds: Array<{ set: DataSet; engine: EngineName; result: BoundResult }>,
  environment: string,
  elapsedMin: number,
): Promise<void> {
  const md: string[] = [];
  md.push('# Storage engine: ringkv vs LevelDB\n');
  md.push('Produced by (from the repository root, after `npx tsc -p . --outDir .build/NAME`):\n');
  md.push(codeBlock(commandLine(import.meta.url), 'sh'));
  md.push(`Machine: ${environment}. Run took ${elapsedMin.toFixed(1)} min.\n`);
  if (scale < 1) {
    md.push(
      `**Scaled down:** these figures use ${sets.map((s) => `${formatNumber(s.count)} x ${s.name}`).join(' and ')} ` +
        `(scale ${scale} of the issue's 1,000,000 x 100 B and 200,000 x 4 KiB), because a full run takes too long on this ` +
        `shared machine. \`--full\` runs the full sizes.\n`,
    );
  }
  md.push(
    `${args.rounds} alternating rounds (engine order rotated each round), every phase in a fresh child process; the tables show ` +
      'medians over rounds and the ratio of medians ringkv / LevelDB. Both engines: 4 MiB memtable / write buffer, 4 KiB blocks, ' +
      '10 bloom bits per key, 2 MiB table files, random (incompressible) values, 16-byte keys in random order, no fsync per ' +
      "write except the durable row (ringkv `appendfsync always`, LevelDB `sync: true`). Single puts and gets are awaited one at a " +
      'time. Cold cache = reopened with a 64 KiB block cache; the OS page cache is not dropped (needs root); 100,000 gets are ' +
      'timed after the first 10,000 (which are reported in their own row). Write amplification = ' +
      'bytes the process wrote (`wchar` in /proc/self/io, all threads, logs + tables + manifest) during the batched fill, a 2 s ' +
      'settle and close, over user bytes (keys + values); space amplification = directory bytes after close / user bytes. The ' +
      'machine is shared with other engineers\' builds and tests: absolute numbers are noisy, the ratios are what count. ' +
      '"Per CPU-second" rows divide the operations by the CPU time (user + system) of the whole process over the same phase, ' +
      'every thread included (LevelDB\'s thread pool and compaction thread, ringkv\'s table worker): on a loaded machine a ' +
      'multi-threaded engine gets more scheduler share, so wall-clock ratios there say as much about the load as the engine.\n',
  );
  const chartCategories: string[] = [];
  const chartRing: number[] = [];
  const chartLevel: number[] = [];
  const targetLines: string[] = [];
  for (const set of sets) {
    const perEngine = results.get(set.name)!;
    const ring = perEngine.get('ringkv')!;
    const level = perEngine.get('leveldb')!;
    const rows: Array<Array<string | number>> = [];
    for (const m of METRICS) {
      const rv = ring.map((x) => m.pick(x.fill, x.read));
      const lv = level.map((x) => m.pick(x.fill, x.read));
      const rm = median(rv);
      const lm = median(lv);
      const q = ratio(rm, lm);
      let verdict = '';
      if (m.target !== undefined) verdict = q >= m.target ? `target >= ${m.target}x: met` : `target >= ${m.target}x: **not met**`;
      if (m.label.startsWith('write amplification')) verdict = q <= 1 ? 'target <= LevelDB: met' : 'target <= LevelDB: **not met**';
      rows.push([
        `${m.label} (${m.unit === 'bytes' ? 'RSS' : m.unit})`,
        m.format(rm),
        m.format(lm),
        formatRatio(q),
        `${(relativeSpread(rv) * 100).toFixed(0)}% / ${(relativeSpread(lv) * 100).toFixed(0)}%`,
        verdict,
      ]);
      if (m.unit !== 'x' && m.unit !== 'bytes') {
        chartCategories.push(`${m.label.replace(/ \(.*\)$/, '')} [${set.valueBytes === 100 ? '100 B' : '4 KiB'}]`);
        chartRing.push(rm);
        chartLevel.push(lm);
      }
      if (verdict) targetLines.push(`- ${set.name}, ${m.label}: ${formatRatio(q)} (${verdict.replace(/\*\*/g, '')})`);
    }
    md.push(`\n## ${formatNumber(set.count)} x ${set.name}\n`);
    md.push(markdownTable(['workload', 'ringkv', 'LevelDB', 'ringkv / LevelDB', 'spread (ringkv / LevelDB)', 'issue target'], rows));
    const f = ring[0]!.fill;
    md.push(`\nUser bytes per fill: ${formatBytes(f.userBytes)}. Spread = median absolute deviation over rounds, relative to the median.\n`);
  }
  md.push('\n## Targets (issue 2)\n');
  md.push(targetLines.join('\n') + '\n');
  if (bounds.length) {
    md.push('\n## Memory stays bounded\n');
    md.push(
      'Each data set of the last round, reopened by each engine with the same block cache (a tenth of the smallest data set, ' +
        `at most ${formatBytes(BOUND_CACHE_BYTES_MAX)}), then read in full (an ordered scan, in 20 slices) and at random ` +
        `(${formatNumber(BOUND_READS)} gets), in a process started with --expose-gc; background compaction runs as usual. After ` +
        'each step: RSS, then RSS after a full garbage collection of the main thread, and the V8 heap in use. "start" is the ' +
        "process baseline (Node and the benchmark's 4 MiB value pool). What RSS also holds: ringkv's table-building worker threads " +
        '(their heaps are not collected by the main thread\'s GC) and memory the allocator keeps after it was freed; LevelDB reads ' +
        'its tables through mmap (its default Env on 64-bit), so pages of the files it touched count in its RSS although the kernel ' +
        'can drop them. Bounded means: RSS does not grow with the size of the data set read.\n\n',
    );
    const rows: Array<Array<string | number>> = [];
    for (const { set, engine, result: b } of bounds) {
      rows.push([
        ENGINE_LABEL[engine],
        `${formatNumber(set.count)} x ${set.valueBytes} B`,
        formatBytes(b.cacheBytes),
        `${formatBytes(b.dataBytes)} (${(b.dataBytes / b.cacheBytes).toFixed(0)}x)`,
        b.steps.map((m) => `${m.step} ${formatBytes(m.rssBytes)} / ${formatBytes(m.rssAfterGcBytes)}`).join('; '),
        b.steps.map((m) => `${m.step} ${formatBytes(m.heapUsedBytes)}`).join('; '),
        formatBytes(b.peakRssDuringScanBytes),
        formatBytes(b.peakRssBytes),
      ]);
    }
    md.push(markdownTable(['engine', 'data set', 'block cache', 'data (/ cache)', 'RSS / RSS after GC, by step', 'V8 heap used by step', 'peak RSS during scan', 'peak RSS'], rows));
    const scans = bounds.map((b) => `${ENGINE_LABEL[b.engine]} ${b.set.valueBytes} B: scan ${formatNumber(b.result.fullScanEntriesPerSec)} entries/s, ${formatNumber(b.result.getsPerSec)} gets/s`);
    md.push(`\nThroughput in these runs (one round, not alternated): ${scans.join('; ')}.\n`);
  }
  md.push(
    `\nPlots: [${args.name}.svg](${args.name}.svg) (throughput, log scale)` +
      (bounds.length ? `, [${args.name}-bound.svg](${args.name}-bound.svg) (RSS after GC by step); memory against data size: [storage-memory.md](storage-memory.md).\n` : '.\n'),
  );
  await fsp.mkdir(args.out, { recursive: true });
  await fsp.writeFile(path.join(args.out, `${args.name}.md`), md.join('\n'));
  await fsp.writeFile(
    path.join(args.out, `${args.name}.svg`),
    barChartSvg({
      title: 'ringkv storage engine vs LevelDB (classic-level)',
      subtitle: `medians of ${args.rounds} alternating rounds${scale < 1 ? `, data sets scaled to ${scale}` : ''}; higher is better`,
      categories: chartCategories,
      series: [
        { name: 'ringkv', values: chartRing },
        { name: 'LevelDB', values: chartLevel },
      ],
      yLabel: 'operations (or entries) per second, log scale',
      logScale: true,
      width: 1100,
      height: 520,
    }),
  );
  if (bounds.length) {
    await fsp.writeFile(
      path.join(args.out, `${args.name}-bound.svg`),
      lineChartSvg({
        title: 'RSS after GC while reading data sets >= 10x the block cache',
        subtitle: 'steps: 0 start, 1 open, 2 full scan, 3 random reads, 4 closed',
        series: bounds.map((b) => ({
          name: `${b.engine} ${b.set.valueBytes} B (${formatBytes(b.result.dataBytes)} data, ${formatBytes(b.result.cacheBytes)} cache)`,
          points: b.result.steps.map((m, i) => [i, m.rssAfterGcBytes / 2 ** 20] as const),
        })),
        xLabel: 'step',
        yLabel: 'RSS after GC (MiB)',
        width: 1000,
      }),
    );
  }
  log(`wrote ${path.join(args.out, `${args.name}.md`)}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
