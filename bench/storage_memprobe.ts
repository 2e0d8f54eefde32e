/**
 * Where a storage engine process's memory goes: opens an existing ringkv directory with a small
 * block cache, waits for background compaction to finish (at most SETTLE_MS_MAX), scans it all
 * and reads at random, printing after each step RSS (before / after a full GC of the main
 * thread), V8 heap, external and ArrayBuffer bytes, thread count and the levels; at the end RSS
 * by mapping kind from /proc/self/smaps (file-backed, brk [heap], anonymous).
 *
 *   node --expose-gc .build/NAME/bench/storage_memprobe.js DIR COUNT CACHE_BYTES [inline]
 *
 * `inline`: table building on the main thread (offload: false), to tell worker-thread memory
 * from the rest. Run under MALLOC_ARENA_MAX=2 to see how much is glibc per-thread arenas.
 * Anonymous mappings are split by size: glibc arenas of other threads live in 64 MiB
 * reservations ("arena-sized"), the rest is V8 pages, the brk heap's neighbours and stacks.
 *
 * DIR is filled beforehand, e.g. `node .build/NAME/bench/storage_run.js fill ringkv DIR 100000 4096 1 1`
 * (keys "k" + 15 digits, 0 <= i < COUNT). Diagnostic output, not a results table.
 */
import { readFileSync } from 'node:fs';
import { openEngine, type Engine } from '../src/storage/engine.js';

const SETTLE_MS_MAX = 60_000;
const RANDOM_READS = 10_000;
const MIB = 1024 * 1024;
/** glibc's HEAP_MAX_SIZE on 64-bit: the reservation of one non-main malloc arena. */
const ARENA_BYTES = 64 * MIB;

const mib = (n: number): string => (n / MIB).toFixed(1);

function step(name: string, e?: Engine): void {
  const before = process.memoryUsage().rss;
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const threads = /Threads:\s*(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  let line = `${name.padEnd(14)} rss ${mib(before)} -> ${mib(m.rss)} MiB, heapUsed ${mib(m.heapUsed)}, external ${mib(m.external)}, arrayBuffers ${mib(m.arrayBuffers)}, threads ${threads}`;
  if (e) line += `, cache ${mib(e.stats().blockCacheBytes)}, tables ${e.stats().tablesPerLevel.join('/')}, background ${JSON.stringify(e.backgroundState())}`;
  process.stdout.write(`${line}\n`);
}

function rssByMappingKind(): string {
  const kinds = new Map<string, number>();
  let kind = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? '';
      const lo = parseInt(line.slice(0, line.indexOf('-')), 16);
      const hi = parseInt(line.slice(line.indexOf('-') + 1, line.indexOf(' ')), 16);
      // glibc reserves each non-main arena as a 64 MiB aligned region (HEAP_MAX_SIZE); its used
      // part and the PROT_NONE rest show up as two mappings that sum to 64 MiB.
      const arenaPart = hi - lo <= ARENA_BYTES && lo % ARENA_BYTES === 0;
      kind = name.startsWith('/') ? 'file-backed' : name === '' ? (arenaPart ? 'anonymous arena-sized' : 'anonymous other') : name;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kinds.set(kind, (kinds.get(kind) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...kinds].filter(([, b]) => b >= MIB).map(([k, b]) => `${k} ${mib(b)} MiB`).join(', ');
}

async function main(): Promise<void> {
  const [dir, countArg, cacheArg, mode] = process.argv.slice(2);
  if (!dir || !countArg || !cacheArg) throw new Error('usage: storage_memprobe.js DIR COUNT CACHE_BYTES');
  const count = Number(countArg);
  const key = (i: number): Buffer => Buffer.from(`k${String(i).padStart(15, '0')}`);
  step('start');
  const e = await openEngine({ dir, appendfsync: 'no', blockCacheBytes: Number(cacheArg), offload: mode !== 'inline' });
  step('open', e);
  const settleStart = Date.now();
  for (;;) {
    const b = e.backgroundState();
    if ((!b.compacting && !b.flushing) || Date.now() - settleStart > SETTLE_MS_MAX) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  step('compacted', e);
  let n = 0;
  for await (const entry of e.range({})) if (entry) n++;
  step(`scanned ${n}`, e);
  for (let i = 0; i < RANDOM_READS; i++) await e.get(key(Math.floor(Math.random() * count)));
  step('random reads', e);
  await e.close();
  step('closed');
  process.stdout.write(`RSS by mapping: ${rssByMappingKind()}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}, ${mode === 'inline' ? 'inline' : 'worker'}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`storage_memprobe: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
