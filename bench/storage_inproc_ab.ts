/**
 * In-process A/B of two builds of the storage engine: both engines open in one process, phases
 * alternate (order swapped every round), so both see the same machine load. On the shared 2-core
 * box this is far steadier than comparing two benchmark runs. Medians over the rounds.
 *
 *   node .build/NAME/bench/storage_inproc_ab.js hot --a .build/A --b .build/B --dir-a DIR1 --dir-b DIR2 [--count 40000] [--rounds 40]
 *       hot 4 KiB gets on two copies of one filled directory (storage_run.js fill), after
 *       compaction settled: CPU and wall per get (only the main thread is busy)
 *   node .build/NAME/bench/storage_inproc_ab.js cold --a .build/A --b .build/B --dir-a DIR1 --dir-b DIR2 [--count 1000000] [--value-bytes 100] [--gets 5000] [--rounds 40]
 *       cold gets (64 KiB block cache, as bench/storage_run.ts) on two copies of one filled
 *       directory, after compaction settled; each round both read the same fresh random keys
 *   node .build/NAME/bench/storage_inproc_ab.js put --a .build/A --b .build/B [--rounds 10] [--ops 40000] [--in-flight 64]
 *       a get then a put per new key (what a SET does), 100-byte values, everysec, no flush:
 *       CPU and wall per get+put
 *   node .build/NAME/bench/storage_inproc_ab.js set --a .build/A --b .build/B [--rounds 8] [--ops 400000] [--keys 100000] [--clients 50] [--pipeline 16] [--memtable-bytes 64m] [--cache-bytes 128m]
 *       what the single-node server's SET -P16 asks of the engine (redis-benchmark -r 100000
 *       -d 100 -c 50 -P 16): per client a batch of 16 random keys (19 bytes, the keyspace's
 *       data-key shape), a getSync (get when it needs I/O) per key, then one write of the 16
 *       puts; everysec, the server's storage defaults (config/schema.ts: 64 MiB memtables,
 *       128 MiB block cache; a 64 MiB memtable holds ~370k such writes, so a phase of 400k
 *       has about one flush). A phase ends once flushes and compactions settled, so its CPU
 *       includes the table-build worker's (all threads)
 *   node .build/NAME/bench/storage_inproc_ab.js flushjob --a .build/A --b .build/B [--rounds 30] [--entries 367000] [--keys 100000] [--input rows|log]
 *       the table-build job of one flush (runBuildJob, in this thread) of the set phase's
 *       memtable (random keys of 19 bytes, 100 B values; 367k versions: a 64 MiB memtable),
 *       CPU per memtable entry. rows (default; builds from 3a946bb on): the job gets the
 *       memtable's survivorRows, as the engine hands it; log: its commit-log records, as before
 *       3a946bb (and as both builds still accept)
 *   node .build/NAME/bench/storage_inproc_ab.js latency --a .build/A --b .build/B [--rounds 4] [--seconds 4] [--in-flight 64]
 *       put latency percentiles with everysec, a fresh engine per phase
 */
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { flagValue, median } from './lib/index.js';

type Which = 'A' | 'B';
interface AbEngine {
  get(key: Buffer): Promise<Buffer | undefined>;
  getSync(key: Buffer): Buffer | null | undefined;
  write(ops: { type: 'put'; key: Buffer; value: Buffer }[]): Promise<void>;
  put(key: Buffer, value: Buffer): Promise<void>;
  close(): Promise<void>;
  backgroundState(): { flushing: boolean; compacting: boolean };
}
type Open = (options: Record<string, unknown>) => Promise<AbEngine>;

const HOT_KEYS_MAX = 8160;
const HOT_VALUE_BYTES = 4096;
/** The cold phase's block cache (bench/storage_run.ts COLD_CACHE_BYTES). */
const COLD_CACHE_BYTES = 64 * 1024;
const PUT_VALUE_BYTES = 100;
const SETTLE_POLL_MS = 100;
const EVERYSEC_NO_FLUSH = { appendfsync: 'everysec', memtableBytes: 1 << 30 };

/**
 * The next state of a 31-bit linear congruential generator (seed / 2^31 is uniform in [0, 1)).
 * Math.imul keeps the product exact: `(seed * 1103515245 + 12345) % 2^31` in doubles lost the
 * low bits past 2^53 and cycled after about 10,500 values (the set and flushjob modes touched
 * ~13,500 of their 100,000 keys until 2026-12-03).
 */
const nextSeed = (seed: number): number => (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;

const benchKey = (i: number): Buffer => Buffer.from(`k${String(i).padStart(15, '0')}`);

async function opener(build: string): Promise<Open> {
  const mod = (await import(path.resolve(build, 'src/storage/engine.js'))) as { openEngine: Open };
  return mod.openEngine;
}

/** The order of a round: A first in even rounds, B first in odd ones. */
const order = (round: number): Which[] => (round % 2 === 0 ? ['A', 'B'] : ['B', 'A']);

function cpuUs(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return c.user + c.system;
}

function report(label: string, samples: Record<Which, { cpu: number[]; wall: number[] }>): void {
  const a = median(samples.A.cpu);
  const b = median(samples.B.cpu);
  process.stdout.write(
    `${label}: A cpu ${a.toFixed(2)} us wall ${median(samples.A.wall).toFixed(2)} us | B cpu ${b.toFixed(2)} us wall ${median(samples.B.wall).toFixed(2)} us | B/A cpu ${(b / a).toFixed(3)}\n`,
  );
}

async function hot(open: Record<Which, Open>, argv: string[]): Promise<void> {
  const count = Number(flagValue(argv, '--count') ?? 40_000);
  const rounds = Number(flagValue(argv, '--rounds') ?? 40);
  const dirs: Record<Which, string | undefined> = { A: flagValue(argv, '--dir-a'), B: flagValue(argv, '--dir-b') };
  if (!dirs.A || !dirs.B) throw new Error('hot needs --dir-a and --dir-b (two copies of one filled directory)');
  const opts = (dir: string) => ({ dir, appendfsync: 'no', memtableBytes: 4 << 20, blockBytes: 4096, blockCacheBytes: 64 << 20, bloomBitsPerKey: 10, targetFileBytes: 2 << 20 });
  const engines = { A: await open.A(opts(dirs.A)), B: await open.B(opts(dirs.B)) };
  for (const e of Object.values(engines)) {
    while (e.backgroundState().compacting || e.backgroundState().flushing) await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
  }
  let seed = 99;
  const keys = Array.from({ length: Math.min(HOT_KEYS_MAX, count) }, () => {
    seed = nextSeed(seed);
    return benchKey(Math.floor((seed / 2147483648) * count));
  });
  for (const e of Object.values(engines)) for (const k of keys) await e.get(k); // warm the caches
  const samples = { A: { cpu: [] as number[], wall: [] as number[] }, B: { cpu: [] as number[], wall: [] as number[] } };
  for (let r = 0; r < rounds; r++) {
    for (const w of order(r)) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (const k of keys) {
        const v = await engines[w].get(k);
        if (!v || v.length !== HOT_VALUE_BYTES) throw new Error(`${w}: wrong value for ${k.toString()}`);
      }
      samples[w].cpu.push(cpuUs(c0) / keys.length);
      samples[w].wall.push(Number(process.hrtime.bigint() - t0) / 1000 / keys.length);
    }
  }
  await engines.A.close();
  await engines.B.close();
  report(`hot ${HOT_VALUE_BYTES} B gets, per get, ${rounds} rounds`, samples);
}

async function cold(open: Record<Which, Open>, argv: string[]): Promise<void> {
  const count = Number(flagValue(argv, '--count') ?? 1_000_000);
  const valueBytes = Number(flagValue(argv, '--value-bytes') ?? 100);
  const gets = Number(flagValue(argv, '--gets') ?? 5000);
  const rounds = Number(flagValue(argv, '--rounds') ?? 40);
  const dirs: Record<Which, string | undefined> = { A: flagValue(argv, '--dir-a'), B: flagValue(argv, '--dir-b') };
  if (!dirs.A || !dirs.B) throw new Error('cold needs --dir-a and --dir-b (two copies of one filled directory)');
  const opts = (dir: string) => ({ dir, appendfsync: 'no', memtableBytes: 4 << 20, blockBytes: 4096, blockCacheBytes: COLD_CACHE_BYTES, bloomBitsPerKey: 10, targetFileBytes: 2 << 20 });
  const engines = { A: await open.A(opts(dirs.A)), B: await open.B(opts(dirs.B)) };
  for (const e of Object.values(engines)) {
    while (e.backgroundState().compacting || e.backgroundState().flushing) await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
  }
  let seed = 99;
  const randomKeys = (): Buffer[] =>
    Array.from({ length: gets }, () => {
      seed = nextSeed(seed);
      return benchKey(Math.floor((seed / 2147483648) * count));
    });
  const samples = { A: { cpu: [] as number[], wall: [] as number[] }, B: { cpu: [] as number[], wall: [] as number[] } };
  // Round 0 warms both up (JIT) and is not counted.
  for (let r = -1; r < rounds; r++) {
    const keys = randomKeys();
    for (const w of order(r + 1)) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (const k of keys) {
        const v = await engines[w].get(k);
        if (!v || v.length !== valueBytes) throw new Error(`${w}: wrong value for ${k.toString()}`);
      }
      if (r < 0) continue;
      samples[w].cpu.push(cpuUs(c0) / keys.length);
      samples[w].wall.push(Number(process.hrtime.bigint() - t0) / 1000 / keys.length);
    }
  }
  await engines.A.close();
  await engines.B.close();
  report(`cold ${valueBytes} B gets (${COLD_CACHE_BYTES / 1024} KiB cache), per get, ${rounds} rounds of ${gets}`, samples);
}

async function put(open: Record<Which, Open>, argv: string[], root: string): Promise<void> {
  const rounds = Number(flagValue(argv, '--rounds') ?? 10);
  const ops = Number(flagValue(argv, '--ops') ?? 40_000);
  const inFlight = Number(flagValue(argv, '--in-flight') ?? 64);
  const engines = { A: await open.A({ dir: path.join(root, 'A'), ...EVERYSEC_NO_FLUSH }), B: await open.B({ dir: path.join(root, 'B'), ...EVERYSEC_NO_FLUSH }) };
  const value = Buffer.alloc(PUT_VALUE_BYTES, 7);
  let next = 0;
  const phase = async (e: AbEngine): Promise<{ cpu: number; wall: number }> => {
    let done = 0;
    const writer = async (): Promise<void> => {
      while (done < ops) {
        done++;
        const k = benchKey(next++);
        await e.get(k);
        await e.put(k, value);
      }
    };
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: inFlight }, writer));
    return { cpu: cpuUs(c0) / ops, wall: Number(process.hrtime.bigint() - t0) / 1000 / ops };
  };
  await phase(engines.A); // warm-up
  await phase(engines.B);
  const samples = { A: { cpu: [] as number[], wall: [] as number[] }, B: { cpu: [] as number[], wall: [] as number[] } };
  for (let r = 0; r < rounds; r++) {
    for (const w of order(r)) {
      const s = await phase(engines[w]);
      samples[w].cpu.push(s.cpu);
      samples[w].wall.push(s.wall);
    }
  }
  await engines.A.close();
  await engines.B.close();
  report(`get+put of ${PUT_VALUE_BYTES} B, ${inFlight} in flight, per key, ${rounds} rounds`, samples);
}

/** '64m', '4k' or a plain number of bytes. */
function byteSize(text: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(text);
  if (!m) throw new Error(`bad byte size ${text}`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
}

/** A data key as the keyspace builds it (key_layout.ts dataKey): namespace byte, 2-byte slot, user key. */
function serverKey(i: number): Buffer {
  const user = Buffer.from(`key:${String(i).padStart(12, '0')}`);
  const out = Buffer.allocUnsafe(3 + user.length);
  out[0] = 1;
  out.writeUInt16BE((i * 2654435761) % 16384, 1);
  user.copy(out, 3);
  return out;
}

/** CPU microseconds of this process's main thread so far (Linux /proc; clock ticks, so 10 ms steps). */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
}

async function settle(e: AbEngine): Promise<void> {
  while (e.backgroundState().compacting || e.backgroundState().flushing) await new Promise((r) => setTimeout(r, 5));
}

async function set(open: Record<Which, Open>, argv: string[], root: string): Promise<void> {
  const rounds = Number(flagValue(argv, '--rounds') ?? 8);
  const ops = Number(flagValue(argv, '--ops') ?? 400_000);
  const keyCount = Number(flagValue(argv, '--keys') ?? 100_000);
  const clients = Number(flagValue(argv, '--clients') ?? 50);
  const pipeline = Number(flagValue(argv, '--pipeline') ?? 16);
  const memtableBytes = byteSize(flagValue(argv, '--memtable-bytes') ?? '64m');
  const blockCacheBytes = byteSize(flagValue(argv, '--cache-bytes') ?? '128m');
  const everysec = { appendfsync: 'everysec', memtableBytes, blockCacheBytes };
  const engines = { A: await open.A({ dir: path.join(root, 'A'), ...everysec }), B: await open.B({ dir: path.join(root, 'B'), ...everysec }) };
  const value = Buffer.alloc(PUT_VALUE_BYTES, 7);
  // Built once: the server gets its keys from the parser, not from a string per request.
  const keys = Array.from({ length: keyCount }, (_, i) => serverKey(i));
  let seed = 7;
  const phase = async (e: AbEngine): Promise<{ cpu: number; wall: number; main: number }> => {
    let done = 0;
    const client = async (): Promise<void> => {
      while (done < ops) {
        const batch: { type: 'put'; key: Buffer; value: Buffer }[] = [];
        for (let i = 0; i < pipeline && done < ops; i++, done++) {
          seed = nextSeed(seed);
          const key = keys[Math.floor((seed / 2147483648) * keyCount)]!;
          if (e.getSync(key) === undefined) await e.get(key);
          batch.push({ type: 'put', key, value });
        }
        await e.write(batch);
      }
    };
    const c0 = process.cpuUsage();
    const m0 = mainThreadCpuUs();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: clients }, client));
    await settle(e);
    return { cpu: cpuUs(c0) / ops, wall: Number(process.hrtime.bigint() - t0) / 1000 / ops, main: (mainThreadCpuUs() - m0) / ops };
  };
  await phase(engines.A); // warm-up
  await phase(engines.B);
  const samples = { A: { cpu: [] as number[], wall: [] as number[] }, B: { cpu: [] as number[], wall: [] as number[] } };
  const main: Record<Which, number[]> = { A: [], B: [] };
  for (let r = 0; r < rounds; r++) {
    for (const w of order(r)) {
      const s = await phase(engines[w]);
      samples[w].cpu.push(s.cpu);
      samples[w].wall.push(s.wall);
      main[w].push(s.main);
      process.stdout.write(`round ${r + 1} ${w}: cpu ${s.cpu.toFixed(2)} us (main thread ${s.main.toFixed(2)}) wall ${s.wall.toFixed(2)} us per SET\n`);
    }
  }
  await engines.A.close();
  await engines.B.close();
  process.stdout.write(`main thread cpu per SET: A ${median(main.A).toFixed(2)} us | B ${median(main.B).toFixed(2)} us | B/A ${(median(main.B) / median(main.A)).toFixed(3)}\n`);
  report(`SET-like get+write of ${PUT_VALUE_BYTES} B, ${clients} clients x ${pipeline}, ${keyCount} keys, ${memtableBytes} B memtables, per SET incl. flush/compaction, ${rounds} rounds`, samples);
}

type RunBuildJob = (job: unknown) => { entriesOut: number };
interface FlushMemtable {
  applyRecords(buf: Buffer): void;
  survivorRows(snapshots: number[]): { bytes: Buffer; ints: Int32Array; floats: Float64Array };
}

async function flushjob(argv: string[]): Promise<void> {
  const rounds = Number(flagValue(argv, '--rounds') ?? 30);
  const entries = Number(flagValue(argv, '--entries') ?? 367_000);
  const keyCount = Number(flagValue(argv, '--keys') ?? 100_000);
  const input = flagValue(argv, '--input') ?? 'rows';
  const load = async (build: string) => {
    const job = (await import(path.resolve(build, 'src/storage/table_job.js'))) as { runBuildJob: RunBuildJob };
    const { Memtable } = (await import(path.resolve(build, 'src/storage/memtable.js'))) as { Memtable: new (logNumber: number) => FlushMemtable };
    const log = (await import(path.resolve(build, 'src/storage/log.js'))) as {
      recordLength(seq: number, ops: unknown[]): number;
      writeRecord(buf: Buffer, pos: number, seq: number, ops: unknown[]): number;
    };
    return { run: job.runBuildJob, log, Memtable };
  };
  const builds = { A: await load(flagValue(argv, '--a')!), B: await load(flagValue(argv, '--b')!) };
  // The memtable's records: groups of 16 puts, as the set phase's group commits write them.
  const value = Buffer.alloc(PUT_VALUE_BYTES, 7);
  let seed = 7;
  const groups: Buffer[] = [];
  for (let seq = 1; seq <= entries; seq += 16) {
    const ops = Array.from({ length: Math.min(16, entries - seq + 1) }, () => {
      seed = nextSeed(seed);
      return { kind: 1, key: serverKey(Math.floor((seed / 2147483648) * keyCount)), value, time: 0 };
    });
    const buf = Buffer.alloc(builds.A.log.recordLength(seq, ops));
    builds.A.log.writeRecord(buf, 0, seq, ops);
    groups.push(buf);
  }
  const records = Buffer.concat(groups);
  // Each build's memtable of those records (rows mode).
  const mems = { A: new builds.A.Memtable(1), B: new builds.B.Memtable(1) };
  for (const m of Object.values(mems)) for (const g of groups) m.applyRecords(g);
  const inputOf = (w: Which) => {
    if (input === 'log') return { kind: 'log', bytes: Buffer.from(records) };
    const rows = mems[w].survivorRows([]);
    return { kind: 'rows', bytes: rows.bytes, rowInts: rows.ints, rowFloats: rows.floats };
  };
  const job = (inp: unknown) => ({
    inputs: [inp],
    gc: { snapshots: [], bottom: false, nowMs: Date.now(), graceMs: 0 },
    build: { blockBytes: 4096, bloomBitsPerKey: 10, compression: 'none' },
    targetFileBytes: Number.MAX_SAFE_INTEGER,
  });
  const samples = { A: { cpu: [] as number[], wall: [] as number[] }, B: { cpu: [] as number[], wall: [] as number[] } };
  for (let r = -2; r < rounds; r++) {
    for (const w of order(r + 2)) {
      const inp = inputOf(w);
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const out = builds[w].run(job(inp));
      if (out.entriesOut === 0) throw new Error(`${w}: nothing built`);
      if (r < 0) continue;
      samples[w].cpu.push(cpuUs(c0) / entries);
      samples[w].wall.push(Number(process.hrtime.bigint() - t0) / 1000 / entries);
    }
  }
  report(`flush job (${input}) of a memtable of ${entries} log entries (${keyCount} keys, ${PUT_VALUE_BYTES} B values), per entry, ${rounds} rounds`, samples);
}

async function latency(open: Record<Which, Open>, argv: string[], root: string): Promise<void> {
  const rounds = Number(flagValue(argv, '--rounds') ?? 4);
  const seconds = Number(flagValue(argv, '--seconds') ?? 4);
  const inFlight = Number(flagValue(argv, '--in-flight') ?? 64);
  const value = Buffer.alloc(PUT_VALUE_BYTES, 7);
  let next = 0;
  for (let r = 0; r < rounds; r++) {
    for (const w of order(r)) {
      const dir = path.join(root, `${w}-${r}`);
      const e = await open[w]({ dir, ...EVERYSEC_NO_FLUSH });
      const lat: number[] = [];
      const end = Date.now() + seconds * 1000;
      const writer = async (): Promise<void> => {
        while (Date.now() < end) {
          const t0 = process.hrtime.bigint();
          await e.put(benchKey(next++), value);
          lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, writer));
      await e.close();
      await fsp.rm(dir, { recursive: true, force: true });
      lat.sort((x, y) => x - y);
      const q = (p: number): string => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
      process.stdout.write(`round ${r + 1} ${w}: ${Math.round(lat.length / seconds)} puts/s, latency ms p50 ${q(0.5)} p99 ${q(0.99)} p99.9 ${q(0.999)} max ${lat[lat.length - 1]!.toFixed(1)}\n`);
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const mode = argv[0];
  const a = flagValue(argv, '--a');
  const b = flagValue(argv, '--b');
  if (!a || !b || !mode || !['hot', 'cold', 'put', 'set', 'flushjob', 'latency'].includes(mode)) throw new Error('usage: hot|cold|put|set|flushjob|latency --a BUILD --b BUILD [options]; see the header');
  const open = { A: await opener(a), B: await opener(b) };
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-inproc-ab-'));
  try {
    if (mode === 'hot') await hot(open, argv);
    else if (mode === 'cold') await cold(open, argv);
    else if (mode === 'put') await put(open, argv, root);
    else if (mode === 'set') await set(open, argv, root);
    else if (mode === 'flushjob') await flushjob(argv);
    else await latency(open, argv, root);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`storage_inproc_ab: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
