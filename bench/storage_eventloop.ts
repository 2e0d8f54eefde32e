/**
 * Event-loop delay of the storage engine while flushes and compactions run under write load,
 * with table building in the worker thread (offload: true, the default) and inline on the event
 * loop (offload: false), side by side in alternating rounds, each run in a fresh child process.
 * Also: peak RSS with a data set many times the block cache (memory stays bounded), write and
 * space amplification of the leveled compaction, and the block-codec measurement behind the
 * default `compression: 'none'`.
 *
 *   npx tsc -p . --outDir .build/storage
 *   node .build/storage/bench/storage_eventloop.js [--mib 64] [--rounds 3] [--cache-mib 4] [--out bench/results]
 *
 * Writes bench/results/storage-eventloop.md and bench/results/storage-eventloop.svg.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { openEngine } from '../src/storage/engine.js';
import { TableBufferIterator, TableBuilder, type Compression } from '../src/storage/table_format.js';
import { KIND_PUT } from '../src/storage/internal_entry.js';
import { commandLine, flagValue } from './lib/index.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
/** Puts in flight at once (like many clients of one node). */
const WRITERS_IN_FLIGHT = 64;
/** Event-loop lateness sampler period. */
const SAMPLE_MS = 5;
/** After the writes: wait for background work to finish, at most this long. */
const SETTLE_MS_MAX = 60_000;
const READS = 20_000;

interface RunResult {
  variant: string;
  mib: number;
  putsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  busyP99Ms: number;
  busySamples: number;
  peakRssMiB: number;
  readRssMiB: number;
  writeAmp: number;
  tableWriteAmp: number;
  spaceAmp: number;
  flushes: number;
  compactions: number;
  tablesPerLevel: number[];
  getsPerSec: number;
  gcTotalMs: number;
  gcMaxMs: number;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function randomKey(): Buffer {
  return Buffer.from(randomBytes(KEY_BYTES / 2).toString('hex'));
}

async function child(variant: string, mib: number, cacheMiB: number, rate: number): Promise<RunResult> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-eventloop-'));
  try {
    // 'nobg': the write path alone, memtable never full (no flush, no compaction): the
    // reference for what the machine, the load generator and the write path cost by themselves.
    const engine = await openEngine({
      dir,
      offload: variant !== 'inline',
      blockCacheBytes: cacheMiB * 1024 * 1024,
      ...(variant === 'nobg' ? { memtableBytes: 4 * 1024 * 1024 * 1024, autoCompact: false } : {}),
    });
    const gcs: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push(e.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    let peakRss = 0;
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
    const h = monitorEventLoopDelay({ resolution: 1 });
    const busy: number[] = [];
    let last = performance.now();
    const sampler = setInterval(() => {
      const now = performance.now();
      const late = now - last - SAMPLE_MS;
      last = now;
      const b = engine.backgroundState();
      if (b.flushing || b.compacting) busy.push(Math.max(0, late));
    }, SAMPLE_MS);
    const value = randomBytes(VALUE_BYTES);
    const target = mib * 1024 * 1024;
    const keys: Buffer[] = [];
    let written = 0;
    h.enable();
    const t0 = performance.now();
    let issued = 0;
    const writer = async (): Promise<void> => {
      while (written < target) {
        // --rate: a token bucket over all writers (puts per second), 0 = as fast as possible.
        while (rate > 0 && issued >= (rate * (performance.now() - t0)) / 1000) await new Promise((r) => setTimeout(r, 2));
        issued++;
        written += KEY_BYTES + VALUE_BYTES;
        const key = randomKey();
        if (keys.length < 100_000) keys.push(key);
        await engine.put(key, value);
      }
    };
    await Promise.all(Array.from({ length: WRITERS_IN_FLIGHT }, writer));
    const writeSecs = (performance.now() - t0) / 1000;
    const settleStart = performance.now();
    for (;;) {
      const b = engine.backgroundState();
      if ((!b.flushing && !b.compacting && b.immutables === 0) || performance.now() - settleStart > SETTLE_MS_MAX) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    h.disable();
    gcObserver.disconnect();
    clearInterval(sampler);
    const st = engine.stats();
    const stored = st.bytesPerLevel.reduce((a, b) => a + b, 0);
    const puts = Math.round(written / (KEY_BYTES + VALUE_BYTES));
    // Random reads over a data set much larger than the block cache.
    let readPeak = 0;
    const t1 = performance.now();
    for (let i = 0; i < READS; i++) {
      await engine.get(keys[Math.floor(Math.random() * keys.length)]!);
      if (i % 1000 === 0) readPeak = Math.max(readPeak, process.memoryUsage.rss());
    }
    const getsPerSec = READS / ((performance.now() - t1) / 1000);
    clearInterval(rssTimer);
    await engine.close();
    busy.sort((a, b) => a - b);
    return {
      variant,
      mib,
      putsPerSec: puts / writeSecs,
      p50Ms: h.percentile(50) / 1e6,
      p99Ms: h.percentile(99) / 1e6,
      maxMs: h.max / 1e6,
      busyP99Ms: percentile(busy, 99),
      busySamples: busy.length,
      peakRssMiB: peakRss / 1048576,
      readRssMiB: readPeak / 1048576,
      writeAmp: (st.logBytesWritten + st.tableBytesWritten) / st.userBytesWritten,
      tableWriteAmp: st.tableBytesWritten / st.userBytesWritten,
      spaceAmp: stored / st.userBytesWritten,
      flushes: st.flushes,
      compactions: st.compactions,
      tablesPerLevel: st.tablesPerLevel,
      getsPerSec,
      gcTotalMs: gcs.reduce((a, b) => a + b, 0),
      gcMaxMs: gcs.reduce((a, b) => Math.max(a, b), 0),
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function runChild(variant: string, mib: number, cacheMiB: number, rate: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const cp = fork(fileURLToPath(import.meta.url), ['--child', variant, '--mib', String(mib), '--cache-mib', String(cacheMiB), '--rate', String(rate)], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let out = '';
    cp.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    cp.on('error', reject);
    cp.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child ${variant} exited with ${code}`));
      resolve(JSON.parse(out) as RunResult);
    });
  });
}

/** Block-codec measurement: table size, build time and full decode time, none vs deflate. */
function codecFigures(): { data: string; codec: Compression; ratio: number; buildMs: number; decodeMs: number }[] {
  const out: { data: string; codec: Compression; ratio: number; buildMs: number; decodeMs: number }[] = [];
  const n = 20_000;
  const keys = Array.from({ length: n }, (_, i) => Buffer.from(`slot${String(i % 16384).padStart(5, '0')}:user:${String(i).padStart(8, '0')}`)).sort(Buffer.compare);
  const datasets: [string, (i: number) => Buffer][] = [
    ['random bytes (100 B)', () => randomBytes(100)],
    ['JSON-like text (~100 B)', (i) => Buffer.from(JSON.stringify({ id: i, name: `user ${i}`, email: `user${i}@example.com`, tags: ['a', 'b'], n: i * 7 }))],
  ];
  for (const [label, gen] of datasets) {
    const values = keys.map((_, i) => gen(i));
    let rawSize = 0;
    for (const codec of ['none', 'deflate'] as const) {
      let best = { buildMs: Infinity, decodeMs: Infinity, size: 0 };
      for (let rep = 0; rep < 3; rep++) {
        const t0 = performance.now();
        const b = new TableBuilder({ blockBytes: 4096, bloomBitsPerKey: 10, compression: codec });
        keys.forEach((key, i) => b.add({ key, seq: n - i, kind: KIND_PUT, time: 0, value: values[i]! }));
        const { bytes } = b.finish();
        const buildMs = performance.now() - t0;
        const t1 = performance.now();
        let entries = 0;
        for (const it = new TableBufferIterator(bytes); it.current; it.next()) entries++;
        if (entries !== n) throw new Error('table lost entries');
        const decodeMs = performance.now() - t1;
        best = { buildMs: Math.min(best.buildMs, buildMs), decodeMs: Math.min(best.decodeMs, decodeMs), size: bytes.length };
      }
      if (codec === 'none') rawSize = best.size;
      out.push({ data: label, codec, ratio: best.size / rawSize, buildMs: best.buildMs, decodeMs: best.decodeMs });
    }
  }
  return out;
}

function codecVerdict(c: { data: string; codec: Compression; ratio: number; buildMs: number; decodeMs: number }[]): string {
  const get = (data: string, codec: Compression) => c.find((x) => x.data.startsWith(data) && x.codec === codec)!;
  const rn = get('random', 'none');
  const rd = get('random', 'deflate');
  const tn = get('JSON', 'none');
  const td = get('JSON', 'deflate');
  return (
    `Default \`compression: 'none'\`. Measured: deflate (zlib level 1) makes the random-value table ${rd.ratio.toFixed(2)}x the size ` +
    `(the keys compress, the values do not) at ${(rd.buildMs / rn.buildMs).toFixed(1)}x the build time and ${(rd.decodeMs / rn.decodeMs).toFixed(1)}x the decode time; ` +
    `text-like values shrink to ${td.ratio.toFixed(2)}x at ${(td.decodeMs / tn.decodeMs).toFixed(1)}x the decode time. Client values in ringkv are opaque bytes ` +
    `(the benchmarks use random ones), and every block-cache miss and every compaction pays the decode on the CPU the event loop shares, so the default stays 'none'; ` +
    `deployments whose values are text should set \`compression: 'deflate'\` (smaller tables also hold more data per byte of block cache).`
  );
}

function svg(results: RunResult[]): string {
  const variants = ['worker', 'inline', 'nobg'];
  const colors = ['#3b7dd8', '#d8743b', '#8a8a8a'];
  const metrics: [string, (r: RunResult) => number][] = [
    ['p99 (ms)', (r) => r.p99Ms],
    ['p99 while flushing/compacting (ms)', (r) => r.busyP99Ms],
    ['max (ms)', (r) => r.maxMs],
  ];
  const W = 660;
  const H = 300;
  const maxV = Math.max(25, ...metrics.flatMap(([, f]) => variants.map((v) => median(results.filter((r) => r.variant === v).map(f)))));
  const scale = (x: number): number => (Math.log10(1 + x) / Math.log10(1 + maxV)) * (H - 80); // log scale
  let bars = '';
  metrics.forEach(([label, f], mi) => {
    variants.forEach((v, vi) => {
      const val = median(results.filter((r) => r.variant === v).map(f));
      const x = 60 + mi * 190 + vi * 55;
      const h = scale(val);
      bars += `<rect x="${x}" y="${H - 40 - h}" width="48" height="${h}" fill="${colors[vi]}"/>`;
      bars += `<text x="${x + 30}" y="${H - 45 - h}" font-size="11" text-anchor="middle">${val.toFixed(1)}</text>`;
    });
    bars += `<text x="${60 + mi * 190 + 80}" y="${H - 22}" font-size="11" text-anchor="middle">${label}</text>`;
  });
  const y20 = H - 40 - scale(20);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<text x="${W / 2}" y="18" font-size="14" text-anchor="middle">Event-loop delay under write load, medians, log scale (blue: worker offload, orange: inline, grey: no flush/compaction)</text>
<line x1="50" x2="${W - 10}" y1="${y20}" y2="${y20}" stroke="#c00" stroke-dasharray="4 3"/><text x="${W - 12}" y="${y20 - 4}" font-size="10" text-anchor="end" fill="#c00">20 ms target</text>
<line x1="50" x2="${W - 10}" y1="${H - 40}" y2="${H - 40}" stroke="#333"/>
${bars}
</svg>
`;
}

async function main(): Promise<void> {
  const ci = process.argv.indexOf('--child');
  if (ci >= 0) {
    const res = await child(process.argv[ci + 1]!, arg('mib', 64), arg('cache-mib', 4), arg('rate', 0));
    process.stdout.write(JSON.stringify(res));
    return;
  }
  const mib = arg('mib', 64);
  const rounds = arg('rounds', 3);
  const cacheMiB = arg('cache-mib', 4);
  const rate = arg('rate', 0);
  const memory = arg('memory', rate > 0 ? 0 : 1) === 1;
  const started = new Date();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const results: RunResult[] = [];
  for (let r = 0; r < rounds; r++) {
    const variants = ['worker', 'inline', 'nobg'];
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    for (const v of order) {
      const res = await runChild(v, mib, cacheMiB, rate);
      process.stderr.write(`round ${r + 1} ${v}: ${JSON.stringify(res)}\n`);
      results.push(res);
    }
  }
  // Memory: the same run at a third and at twice the size (worker variant).
  const memRuns: RunResult[] = [];
  for (const m of memory ? [Math.max(8, Math.round(mib / 3)), mib * 2] : []) {
    const res = await runChild('worker', m, cacheMiB, rate);
    process.stderr.write(`memory ${m} MiB: ${JSON.stringify(res)}\n`);
    memRuns.push(res);
  }
  const codec = codecFigures();
  const med = (v: string, f: (r: RunResult) => number): number => median(results.filter((r) => r.variant === v).map(f));
  const row = (label: string, f: (r: RunResult) => number, digits = 1): string => {
    const a = med('worker', f);
    const b = med('inline', f);
    const c = med('nobg', f);
    return `| ${label} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${(a / b).toFixed(2)}x | ${c.toFixed(digits)} |`;
  };
  const memorySection = !memory
    ? ''
    : `## Memory stays bounded as the data grows

Worker variant, block cache ${cacheMiB} MiB, user data from ${memRuns[0]!.mib} MiB to ${memRuns[1]!.mib} MiB (${Math.round((memRuns[1]!.mib) / cacheMiB)}x the cache). By design, what grows with the data is only the per-table index and bloom filter (about 1.3 bytes per key for the filter plus one index entry per 4 KiB block); memtables (at most 1 + 2 immutable x 4 MiB), the block cache and the compaction buffers (one L0 -> L1 compaction: the L0 tables plus the overlapping L1, or one table plus about ratio tables of the next level) do not. RSS also includes two worker-thread heaps and memory the allocator keeps after large transient buffers; see the figures.

| user data (MiB) | x cache | peak RSS during writes (MiB) | peak RSS during random reads (MiB) | tables per level |
| ---: | ---: | ---: | ---: | :--- |
${[...memRuns, ...results.filter((r) => r.variant === 'worker').slice(0, 1)].sort((a, b) => a.mib - b.mib).map((r) => `| ${r.mib} | ${(r.mib / cacheMiB).toFixed(0)} | ${r.peakRssMiB.toFixed(0)} | ${r.readRssMiB.toFixed(0)} | ${r.tablesPerLevel.join('/')} |`).join('\n')}

`;
  const md = `# Storage engine: event-loop delay during flush and compaction

Produced by (from the repository root):

\`\`\`sh
npx tsc -p . --outDir .build/NAME
${commandLine(import.meta.url)}
\`\`\`

Machine: ${started.toISOString()}, Node ${process.version}, ${os.type()} ${os.release()}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, load average at start ${load}. The machine is shared with six other engineers' builds and tests: absolute figures are noisy; compare the columns (same run, alternating order).

Workload: ${rate > 0 ? `puts at a steady ${rate} per second (up to ${WRITERS_IN_FLIGHT} in flight)` : `${WRITERS_IN_FLIGHT} puts in flight at all times (as fast as the engine takes them)`} (random ${KEY_BYTES}-byte keys, ${VALUE_BYTES}-byte random values, \`appendfsync everysec\`) until ${mib} MiB of user data are written, then wait until flushes and compactions finish; defaults otherwise (4 MiB memtable, leveled compaction, L0 trigger 4, 10 MiB L1, ratio 10), block cache ${cacheMiB} MiB. Event-loop delay: \`perf_hooks.monitorEventLoopDelay\` (1 ms resolution) over the whole write phase; "while flushing/compacting" is a ${SAMPLE_MS} ms timer's lateness sampled only while a flush or compaction is running. Each run in a fresh child process; ${rounds} rounds, medians, the order of the three variants rotated every round. The reference column runs the same write load with a memtable that never fills (no flush, no compaction): the delay the machine, the load generator, the write path and the garbage collector cause by themselves.

| metric (median of ${rounds}) | worker offload (default) | inline (offload: false) | worker / inline | reference: no flush or compaction |
| :--- | ---: | ---: | ---: | ---: |
${row('event-loop delay p50 (ms)', (r) => r.p50Ms, 2)}
${row('event-loop delay p99 (ms)', (r) => r.p99Ms, 2)}
${row('event-loop delay max (ms)', (r) => r.maxMs, 1)}
${row('timer lateness p99 while flushing/compacting (ms)', (r) => r.busyP99Ms, 2)}
${row('puts/s', (r) => r.putsPerSec, 0)}
${row('flushes', (r) => r.flushes, 0)}
${row('compactions', (r) => r.compactions, 0)}
${row('write amplification: (log + table bytes) / user bytes', (r) => r.writeAmp, 2)}
${row('table write amplification: table bytes / user bytes', (r) => r.tableWriteAmp, 2)}
${row('space amplification: live table bytes / user bytes', (r) => r.spaceAmp, 2)}
${row('peak RSS during writes (MiB)', (r) => r.peakRssMiB, 0)}
${row('GC pause total during writes (ms)', (r) => r.gcTotalMs, 0)}
${row('GC pause max (ms)', (r) => r.gcMaxMs, 1)}
${row('random gets/s afterwards (awaited, one at a time)', (r) => r.getsPerSec, 0)}

Target: p99 under 20 ms while flush and compaction run. Worker offload median p99: **${med('worker', (r) => r.p99Ms).toFixed(2)} ms** (${med('worker', (r) => r.p99Ms) < 20 ? 'met' : 'NOT met'}); while flushing/compacting: ${med('worker', (r) => r.busyP99Ms).toFixed(2)} ms.

All runs:

| variant | MiB | puts/s | p99 ms | max ms | busy p99 ms | busy samples | GC total / max ms | peak RSS MiB | write amp | space amp | tables per level |
| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |
${results.map((r) => `| ${r.variant} | ${r.mib} | ${r.putsPerSec.toFixed(0)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(1)} | ${r.busyP99Ms.toFixed(2)} | ${r.busySamples} | ${r.gcTotalMs.toFixed(0)} / ${r.gcMaxMs.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} | ${r.writeAmp.toFixed(2)} | ${r.spaceAmp.toFixed(2)} | ${r.tablesPerLevel.join('/')} |`).join('\n')}

${memorySection}## Leveled compaction: why

Measured above: table write amplification (flush + compaction bytes over user bytes) and space amplification for random-key fills. Leveled compaction (LevelDB/RocksDB style) keeps space amplification near 1.1x (about 90% of the data sits in the last level, and each key has one live version per level at most) and a point read touches at most one table per level below L0, at the cost of a write amplification of roughly (ratio + 1) per level the data passes through. Size-tiered compaction would write less (each byte is rewritten about once per tier) but needs up to 2x space during a big merge and leaves several overlapping runs per tier, so a miss checks more bloom filters and a range scan merges more runs. The issue asks that both amplifications stay bounded; ringkv nodes hold Merkle-scanned ranges and serve SCAN, so read and space bounds were chosen over the lowest write amplification. (Size-tiered was not implemented, so there is no side-by-side figure for it.)

## Block codec

One table built from 20,000 sorted keys (\`slotNNNNN:user:NNNNNNNN\`) with 4 KiB blocks, best of 3; "size" is the table size relative to no compression; decode = reading every entry back (checksums, decompression, entry decoding), the CPU that block-cache misses and compactions pay.

| values | codec | size vs none | build ms | decode ms (whole table) |
| :--- | :--- | ---: | ---: | ---: |
${codec.map((c) => `| ${c.data} | ${c.codec} | ${c.ratio.toFixed(2)} | ${c.buildMs.toFixed(1)} | ${c.decodeMs.toFixed(1)} |`).join('\n')}

${codecVerdict(codec)}
`;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Compiled to .build/NAME/bench/: the repository root is three levels up from that folder.
  const root = path.resolve(here, '..', '..', '..');
  const outDir = flagValue(process.argv, '--out') ?? path.join(root, 'bench', 'results');
  await fsp.mkdir(outDir, { recursive: true });
  const base = rate > 0 ? `storage-eventloop-rate${rate}` : 'storage-eventloop';
  await fsp.writeFile(path.join(outDir, `${base}.md`), md);
  await fsp.writeFile(path.join(outDir, `${base}.svg`), svg(results));
  process.stderr.write(`wrote ${path.join(outDir, `${base}.md`)}\n`);
}

await main();
