/**
 * Simulated power loss (FaultFileSystem) with appendfsync 'always'.
 *
 * A seeded random workload of puts, deletes and batches (single awaited writes and groups of
 * concurrent writes that share a group commit), with explicit flushes and compactions mixed in
 * and a memtable small enough that the engine flushes and compacts on its own, runs on a
 * FaultFileSystem. Before randomly chosen file-system mutations (log appends and syncs, table
 * writes, manifest writes and renames, directory syncs) the test takes the image a power loss at
 * that instant would leave, in two flavours: everything unsynced dropped, and a random prefix of
 * each file's unsynced appends kept. For every image (>= 1,000 in all):
 *   - the engine opens it (a crash never leaves a state the engine calls corrupt);
 *   - the recovered state equals the model after a prefix ops[0..k) of the issued writes, with
 *     k >= every acknowledged write: zero acknowledged writes lost, no holes, no resurrected
 *     deletes (the state is compared exactly, deleted keys included);
 *   - (every third image) the recovered engine keeps working: a new acknowledged write survives
 *     a second crash.
 * A second power loss inside recovery (replay, flush of the replayed log, manifest, cleanup) of
 * such an image must leave the same guarantees.
 * Then the fsync-error and disk-full paths: the failing write is not acknowledged, every later
 * write rejects with EFAILED, and what was acknowledged before survives.
 */
import t from 'tap';
import { openEngine } from '../../src/storage/engine.js';
import { StorageError, type BatchOp, type KVEngine } from '../../src/storage/types.js';
import { FaultFileSystem, seededRandom, type CrashMode, type Mutation } from './fault_fs.js';
import { KvModel, collect, renderEntries } from './kv_model.js';

const DIR = '/db';
const WORKLOADS = Number(process.env.POWERLOSS_WORKLOADS ?? 10);
const WRITES_PER_WORKLOAD = 260;
const CRASH_POINTS_MIN = 1000;
/** Chance of taking a crash image before a log mutation / any other mutation. */
const SAMPLE_LOG = 0.09;
const SAMPLE_OTHER = 0.45;
const NOW_MS = 1_700_000_000_000;

const engineOptions = (fs: FaultFileSystem) => ({
  dir: DIR,
  fs,
  appendfsync: 'always' as const,
  memtableBytes: 2048,
  blockBytes: 256,
  blockCacheBytes: 8192,
  // Small slices: crash points fall between the slices of one compaction too.
  compactionSliceBytes: 1024,
  tombstoneGraceMs: 0,
  now: () => NOW_MS,
});

type WriteOp = { kind: 'put'; key: Buffer; value: Buffer } | { kind: 'del'; key: Buffer } | { kind: 'batch'; ops: BatchOp[] };

interface CrashPoint {
  image: FaultFileSystem;
  mode: CrashMode;
  /** Writes issued (engine method called) before the image was taken. */
  issued: number;
  /** 1 + the highest index of a write acknowledged before the image was taken (0: none). */
  ackedFrontier: number;
  mutation: Mutation;
}

type Area = 'log' | 'table' | 'manifest' | 'dir' | 'other';

/** Which part of the engine's state a mutation touches (file names as in src/storage). */
function areaOf(m: Mutation): Area {
  if (m.kind === 'syncDir') return 'dir';
  if (/\.log\b/.test(m.file)) return 'log';
  if (/\.sst\b/.test(m.file)) return 'table';
  if (/MANIFEST/.test(m.file)) return 'manifest';
  return 'other';
}

function isLogMutation(m: Mutation): boolean {
  return areaOf(m) === 'log';
}

function randomWrite(rand: () => number, serial: number): WriteOp {
  const key = () => Buffer.from(`k${Math.floor(rand() * 60).toString().padStart(2, '0')}`);
  const value = () => Buffer.from(`v${serial}-${'x'.repeat(Math.floor(rand() * 80))}`);
  const r = rand();
  if (r < 0.6) return { kind: 'put', key: key(), value: value() };
  if (r < 0.8) return { kind: 'del', key: key() };
  const ops: BatchOp[] = [];
  const n = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) ops.push(rand() < 0.7 ? { type: 'put', key: key(), value: value() } : { type: 'del', key: key() });
  return { kind: 'batch', ops };
}

function applyToModel(model: KvModel, w: WriteOp): void {
  if (w.kind === 'put') model.put(w.key, w.value);
  else if (w.kind === 'del') model.del(w.key);
  else model.apply(w.ops);
}

function issue(engine: KVEngine, w: WriteOp): Promise<void> {
  if (w.kind === 'put') return engine.put(w.key, w.value);
  if (w.kind === 'del') return engine.delete(w.key);
  return engine.write(w.ops);
}

/** Runs one workload, returning its crash images and the model state after each prefix. */
async function runWorkload(seed: number): Promise<{ points: CrashPoint[]; prefixStates: string[]; flushes: number; compactions: number }> {
  const rand = seededRandom(seed);
  // Odd seeds: a file system without the optional synchronous calls (the engine's async path).
  const fs = new FaultFileSystem({ syncMethods: seed % 2 === 0 });
  const engine = await openEngine(engineOptions(fs));
  const model = new KvModel();
  const prefixStates: string[] = [renderEntries(model.range(NOW_MS)).join(',')];
  const points: CrashPoint[] = [];
  let issued = 0;
  let ackedFrontier = 0;
  fs.onMutation = (m) => {
    if (rand() >= (isLogMutation(m) ? SAMPLE_LOG : SAMPLE_OTHER)) return;
    const mode: CrashMode = rand() < 0.5 ? 'drop-unsynced' : 'keep-random-prefix';
    points.push({ image: fs.powerLossImage(mode, seededRandom(seed * 7919 + points.length)), mode, issued, ackedFrontier, mutation: m });
  };
  const background: Promise<void>[] = [];
  try {
    let serial = 0;
    while (serial < WRITES_PER_WORKLOAD) {
      const r = rand();
      if (r < 0.04) {
        await engine.flush();
        continue;
      }
      if (r < 0.07) {
        // A compaction running while the writes below go on.
        background.push(engine.compactAll());
        continue;
      }
      const group = r < 0.6 ? 1 : 2 + Math.floor(rand() * 6);
      const pending: Promise<void>[] = [];
      for (let g = 0; g < group && serial < WRITES_PER_WORKLOAD; g++, serial++) {
        const w = randomWrite(rand, serial);
        const index = issued;
        // The engine orders writes by call order; the model follows the same order.
        const p = issue(engine, w);
        issued++;
        applyToModel(model, w);
        prefixStates.push(renderEntries(model.range(NOW_MS)).join(','));
        pending.push(
          p.then(() => {
            ackedFrontier = Math.max(ackedFrontier, index + 1);
          }),
        );
      }
      await Promise.all(pending);
    }
    await Promise.all(background);
    const stats = engine.stats();
    return { points, prefixStates, flushes: stats.flushes, compactions: stats.compactions };
  } finally {
    fs.onMutation = undefined;
    await engine.close();
  }
}

/**
 * Opens a crash image and checks it against the prefixes; with continueAfter, also writes after
 * recovery and crashes again. Returns a problem or null.
 */
async function checkCrashPoint(p: CrashPoint, prefixStates: readonly string[], continueAfter: boolean): Promise<string | null> {
  const where = `crash (${p.mode}) before ${p.mutation.kind} ${p.mutation.file} with ${p.issued} issued, ${p.ackedFrontier} acked`;
  let engine: KVEngine;
  try {
    engine = await openEngine(engineOptions(p.image));
  } catch (err) {
    return `${where}: open failed: ${String(err)}`;
  }
  let k = -1;
  let state: string;
  try {
    state = renderEntries(await collect(engine)).join(',');
    for (let i = p.ackedFrontier; i <= p.issued; i++) {
      if (prefixStates[i] === state) {
        k = i;
        break;
      }
    }
    if (k < 0) {
      // Find the best explanation for the message: the longest prefix it equals, if any.
      const older = prefixStates.findIndex((s) => s === state);
      return `${where}: recovered state is no prefix in [${p.ackedFrontier}, ${p.issued}]${older >= 0 ? ` (it equals prefix ${older}: acknowledged writes lost)` : ' (holes or resurrected deletes)'}: ${state.slice(0, 300)}`;
    }
    if (!continueAfter) return null;
    // The recovered engine must keep working: a new acknowledged write survives another crash.
    await engine.put(Buffer.from('after-crash'), Buffer.from('yes'));
  } catch (err) {
    return `${where}: ${String(err)}`;
  } finally {
    await engine.close().catch(() => undefined);
  }
  const again = p.image.crash('keep-random-prefix', seededRandom(p.issued));
  let engine2: KVEngine;
  try {
    engine2 = await openEngine(engineOptions(again));
  } catch (err) {
    return `${where}: reopen after the second crash failed: ${String(err)}`;
  }
  try {
    const v = await engine2.get(Buffer.from('after-crash'));
    if (!v || v.toString() !== 'yes') return `${where}: a write acknowledged after recovery was lost in a second crash`;
    const rest = renderEntries((await collect(engine2)).filter((e) => e.key.toString() !== 'after-crash')).join(',');
    if (rest !== state) return `${where}: state changed across the second crash`;
  } finally {
    await engine2.close();
  }
  return null;
}

t.test(`power loss at >= ${CRASH_POINTS_MIN} random points: no acknowledged write lost, always a clean prefix`, async (t) => {
  let total = 0;
  const byArea: Record<Area, number> = { log: 0, table: 0, manifest: 0, dir: 0, other: 0 };
  let withPending = 0;
  let flushes = 0;
  let compactions = 0;
  const byMode = { 'drop-unsynced': 0, 'keep-random-prefix': 0 };
  const problems: string[] = [];
  for (let w = 0; w < WORKLOADS; w++) {
    const seed = 1000 + w;
    const run = await runWorkload(seed);
    flushes += run.flushes;
    compactions += run.compactions;
    for (const p of run.points) {
      total++;
      byMode[p.mode]++;
      byArea[areaOf(p.mutation)]++;
      if (p.issued > p.ackedFrontier) withPending++;
      // Every third point also checks the recovered engine keeps working across a second crash.
      const problem = await checkCrashPoint(p, run.prefixStates, total % 3 === 0);
      if (problem) problems.push(`seed ${seed}: ${problem}`);
    }
  }
  t.same(problems.slice(0, 10), [], `every crash point recovers a clean prefix (${problems.length} failed)`);
  t.ok(total >= CRASH_POINTS_MIN, `${total} crash points (drop-unsynced ${byMode['drop-unsynced']}, keep-random-prefix ${byMode['keep-random-prefix']})`);
  t.ok(byArea.table >= 100 && byArea.manifest >= 50 && byArea.dir >= 50 && byArea.log >= 200, `crash points by area: ${JSON.stringify(byArea)}`);
  t.ok(withPending >= 50, `${withPending} crash points with writes in flight`);
  t.ok(flushes >= WORKLOADS * 3 && compactions >= WORKLOADS, `workloads flushed ${flushes} and compacted ${compactions} times`);
});

t.test('power loss during recovery: a crash while the engine replays and flushes the log loses nothing either', async (t) => {
  const rand = seededRandom(4242);
  let crashedInRecovery = 0;
  let checked = 0;
  const problems: string[] = [];
  for (let w = 0; w < 3; w++) {
    const seed = 5000 + w;
    const run = await runWorkload(seed);
    // Points with unflushed log data make recovery do the most (replay, flush, manifest, cleanup).
    for (const p of run.points.filter((_, i) => i % 2 === 0)) {
      const first = p.image.clone();
      first.crashAfterOps(Math.floor(rand() * 30));
      let opened: KVEngine | undefined;
      try {
        opened = await openEngine(engineOptions(first));
      } catch {
        // the power went during the open
      }
      if (opened) await opened.close().catch(() => undefined);
      if (!first.hasCrashed) continue;
      crashedInRecovery++;
      const mode: CrashMode = rand() < 0.5 ? 'drop-unsynced' : 'keep-random-prefix';
      const second: CrashPoint = { ...p, image: first.crash(mode, seededRandom(checked)), mode };
      checked++;
      const problem = await checkCrashPoint(second, run.prefixStates, checked % 3 === 0);
      if (problem) problems.push(`seed ${seed}, crash during recovery: ${problem}`);
    }
  }
  t.same(problems.slice(0, 10), [], `every double crash recovers a clean prefix (${problems.length} failed)`);
  t.ok(crashedInRecovery >= 100, `${crashedInRecovery} crashes landed inside recovery`);
});

function isStorageError(err: unknown, code: string): boolean {
  return err instanceof StorageError && err.code === code;
}

t.test('an fsync error on the log: the write is not acknowledged, later writes get EFAILED, acked writes survive', async (t) => {
  for (const group of [1, 5]) {
    const fs = new FaultFileSystem();
    const engine = await openEngine(engineOptions(fs));
    for (let i = 0; i < 30; i++) await engine.put(Buffer.from(`acked${i}`), Buffer.from(`v${i}`));
    fs.failNextSync();
    const results = await Promise.allSettled(Array.from({ length: group }, (_, i) => engine.put(Buffer.from(`doomed${i}`), Buffer.from('x'))));
    t.ok(results.every((r) => r.status === 'rejected'), `all ${group} writes sharing the failed fsync are rejected`);
    t.ok(engine.stats().failed, `stats().failed is set: ${engine.stats().failed}`);
    for (const op of [
      () => engine.put(Buffer.from('later'), Buffer.from('x')),
      () => engine.delete(Buffer.from('acked1')),
      () => engine.write([{ type: 'put', key: Buffer.from('later2'), value: Buffer.from('y') }]),
    ]) {
      let error: unknown;
      await op().catch((e: unknown) => {
        error = e;
      });
      t.ok(isStorageError(error, 'EFAILED'), `later write rejects with EFAILED (got ${String(error)})`);
    }
    await engine.close().catch(() => undefined);
    const after = await openEngine(engineOptions(fs.crash()));
    try {
      for (let i = 0; i < 30; i++) t.equal((await after.get(Buffer.from(`acked${i}`)))?.toString(), `v${i}`);
      t.equal(await after.get(Buffer.from('later')), undefined, 'a rejected later write is not there');
      t.equal((await after.get(Buffer.from('acked1')))?.toString(), 'v1', 'a rejected delete did not happen');
    } finally {
      await after.close();
    }
  }
});

t.test('disk full in the middle of a log append: rejected, then EFAILED; the torn record is dropped on reopen', async (t) => {
  const fs = new FaultFileSystem();
  const engine = await openEngine(engineOptions(fs));
  for (let i = 0; i < 10; i++) await engine.put(Buffer.from(`acked${i}`), Buffer.from(`v${i}`));
  fs.failWritesAfterBytes(7);
  await t.rejects(engine.put(Buffer.from('big'), Buffer.alloc(100, 1)), 'the write that hit ENOSPC is rejected');
  await t.rejects(engine.put(Buffer.from('later'), Buffer.from('x')), { code: 'EFAILED' });
  await engine.close().catch(() => undefined);
  const after = await openEngine(engineOptions(fs.crash('keep-random-prefix', () => 0.999)));
  try {
    for (let i = 0; i < 10; i++) t.equal((await after.get(Buffer.from(`acked${i}`)))?.toString(), `v${i}`);
    t.equal(await after.get(Buffer.from('big')), undefined);
    t.ok(after.stats().recoveredTornBytes > 0, `torn tail reported: ${after.stats().recoveredTornBytes} bytes`);
    await after.put(Buffer.from('next'), Buffer.from('ok'));
  } finally {
    await after.close();
  }
  t.pass('reopened and wrote after the torn tail');
});

t.test('an fsync error while writing a table makes the engine stop acknowledging; nothing acked is lost', async (t) => {
  const fs = new FaultFileSystem();
  const engine = await openEngine(engineOptions(fs));
  let armed = true;
  fs.onMutation = (m) => {
    // The first file created that is not a log is a table (or manifest): fail its next sync.
    if (armed && m.kind === 'create' && !isLogMutation(m)) {
      armed = false;
      fs.failNextSync();
    }
  };
  const acked: number[] = [];
  let failedAt = -1;
  for (let i = 0; i < 400 && failedAt < 0; i++) {
    try {
      await engine.put(Buffer.from(`k${i}`), Buffer.alloc(50, i));
      acked.push(i);
    } catch {
      failedAt = i;
    }
    if (i % 20 === 19) await engine.flush().catch(() => undefined);
  }
  t.equal(armed, false, 'a table file was created');
  t.ok(failedAt >= 0, `writes were refused after the failed table fsync (stats.failed: ${engine.stats().failed})`);
  await t.rejects(engine.put(Buffer.from('later'), Buffer.from('x')), { code: 'EFAILED' }, 'and stay refused with EFAILED');
  await engine.close().catch(() => undefined);
  const after = await openEngine(engineOptions(fs.crash()));
  try {
    for (const i of acked) {
      const v = await after.get(Buffer.from(`k${i}`));
      if (!v || !v.equals(Buffer.alloc(50, i))) {
        t.fail(`acked k${i} lost`);
        return;
      }
    }
    t.pass(`${acked.length} acknowledged writes survived`);
  } finally {
    await after.close();
  }
});
