/**
 * Model-based property test of the storage engine: random sequences of put / delete / batch /
 * flush / compactAll / close+reopen / clock ticks (expiring puts) / snapshots, run against the
 * engine on an in-memory file system and against a plain Map (KvModel). After every step, every
 * key ever written reads the same from both (get and getEntry, so deleted keys are checked for
 * resurrection), a full scan equals the model, and a scan over random bounds (with a random
 * limit) equals the model's sorted slice. Open snapshots keep reading the state they were taken
 * at, across flushes and compactions.
 *
 * The memtable and blocks are tiny so flushes, multi-block tables and compactions happen after a
 * few writes. Reproduce a failure with FC_SEED=<seed> (and FC_PATH=<path>) from the report.
 */
import t from 'tap';
import fc from 'fast-check';
import { openEngine } from '../../src/storage/engine.js';
import type { BatchOp, KVEngine, Snapshot } from '../../src/storage/types.js';
import { FaultFileSystem } from './fault_fs.js';
import { KvModel, collect, diffEngine, renderEntries } from './kv_model.js';

const DIR = '/db';
const RUNS = Number(process.env.FC_RUNS ?? 100);
const MAX_STEPS = 80;
const MEMTABLE_BYTES = 1024;
const BLOCK_BYTES = 256;
const START_MS = 1_700_000_000_000;

const keyArb = fc
  .array(fc.constantFrom(0x00, 0x01, 0x61, 0x62, 0xff), { minLength: 1, maxLength: 3 })
  .map((bytes) => Buffer.from(bytes));
const valueArb = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 600 }) },
).map((v) => Buffer.from(v));
/** 0: no expiry; otherwise ms from now. */
const ttlArb = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }) });

const batchOpArb = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb, ttl: ttlArb }),
  fc.record({ type: fc.constant('del' as const), key: keyArb }),
);

const opArb = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('put' as const), key: keyArb, value: valueArb, ttl: ttlArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('del' as const), key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('batch' as const), ops: fc.array(batchOpArb, { minLength: 0, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 4000 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'snapshot' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('concurrent' as const),
      ops: fc.array(batchOpArb, { minLength: 2, maxLength: 8 }),
      alsoFlush: fc.boolean(),
      alsoCompact: fc.boolean(),
    }),
  },
);

const scanArb = fc.record({
  gte: fc.option(keyArb, { nil: undefined }),
  lt: fc.option(keyArb, { nil: undefined }),
  limit: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
});

const stepArb = fc.record({ op: opArb, scan: scanArb });
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

const configArb = fc.record({
  tombstoneGraceMs: fc.constantFrom(0, 1000, 1_000_000_000),
  bloomBitsPerKey: fc.constantFrom(1, 10),
  compression: fc.constantFrom('none' as const, 'deflate' as const),
  /** With the optional synchronous FileHandle calls (engine fast paths) or without. */
  syncMethods: fc.boolean(),
});

/** Totals over all runs, to show the property exercised flushes, compactions and reopens. */
const totals = { steps: 0, autoFlushes: 0, compactions: 0, reopens: 0, snapshots: 0, maxTablesPerRun: 0 };

function addStats(engine: KVEngine): void {
  const s = engine.stats();
  totals.autoFlushes += s.flushes;
  totals.compactions += s.compactions;
  totals.maxTablesPerRun = Math.max(totals.maxTablesPerRun, s.tablesPerLevel.reduce((a, b) => a + b, 0));
}

interface OpenSnapshot {
  snap: Snapshot;
  model: KvModel;
}

type Config = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

async function runSequence(config: Config, steps: Step[]): Promise<void> {
  let nowMs = START_MS;
  const fs = new FaultFileSystem({ syncMethods: config.syncMethods });
  const options = {
    dir: DIR,
    fs,
    appendfsync: 'no' as const,
    memtableBytes: MEMTABLE_BYTES,
    blockBytes: BLOCK_BYTES,
    blockCacheBytes: 4096,
    // Small slices: most compactions run as several key-range jobs (compaction_slices.ts).
    compactionSliceBytes: 1024,
    bloomBitsPerKey: config.bloomBitsPerKey,
    compression: config.compression,
    tombstoneGraceMs: config.tombstoneGraceMs,
    now: () => nowMs,
  };
  let engine: KVEngine = await openEngine(options);
  const model = new KvModel();
  const written = new Map<string, Buffer>();
  let snapshots: OpenSnapshot[] = [];
  const releaseAll = () => {
    for (const s of snapshots) s.snap.release();
    snapshots = [];
  };
  try {
    for (let i = 0; i < steps.length; i++) {
      const { op, scan } = steps[i]!;
      totals.steps++;
      const where = `step ${i} ${op.t}`;
      switch (op.t) {
        case 'put': {
          const expiresAtMs = op.ttl ? nowMs + op.ttl : 0;
          await engine.put(op.key, op.value, expiresAtMs ? { expiresAtMs } : undefined);
          model.put(op.key, op.value, expiresAtMs);
          written.set(op.key.toString('hex'), op.key);
          break;
        }
        case 'del':
          await engine.delete(op.key);
          model.del(op.key);
          written.set(op.key.toString('hex'), op.key);
          break;
        case 'batch': {
          const ops: BatchOp[] = op.ops.map((b) =>
            b.type === 'put'
              ? { type: 'put', key: b.key, value: b.value, ...(b.ttl ? { expiresAtMs: nowMs + b.ttl } : {}) }
              : { type: 'del', key: b.key },
          );
          await engine.write(ops);
          model.apply(ops);
          for (const b of ops) written.set(b.key.toString('hex'), b.key);
          break;
        }
        case 'concurrent': {
          // Writes issued without waiting (one group commit), with a flush and a compaction
          // racing them; the engine orders writes by call order, as the model does.
          const pending: Promise<void>[] = [];
          for (const b of op.ops) {
            if (b.type === 'put') {
              const expiresAtMs = b.ttl ? nowMs + b.ttl : 0;
              pending.push(engine.put(b.key, b.value, expiresAtMs ? { expiresAtMs } : undefined));
              model.put(b.key, b.value, expiresAtMs);
            } else {
              pending.push(engine.delete(b.key));
              model.del(b.key);
            }
            written.set(b.key.toString('hex'), b.key);
            if (op.alsoFlush && pending.length === 1) pending.push(engine.flush());
            if (op.alsoCompact && pending.length === 2) pending.push(engine.compactAll());
          }
          await Promise.all(pending);
          break;
        }
        case 'flush':
          await engine.flush();
          break;
        case 'compact':
          await engine.compactAll();
          break;
        case 'reopen':
          releaseAll();
          addStats(engine);
          totals.reopens++;
          await engine.close();
          engine = await openEngine(options);
          break;
        case 'tick':
          // Expiry is judged at read time; a snapshot taken earlier would mix two clocks.
          releaseAll();
          nowMs += op.ms;
          break;
        case 'snapshot':
          snapshots.push({ snap: engine.snapshot(), model: model.clone() });
          totals.snapshots++;
          break;
      }
      const problems = await diffEngine(engine, model, nowMs, written.values());
      if (problems.length) throw new Error(`${where}: ${problems.join('; ')}`);
      const got = renderEntries(await collect(engine, scan));
      const want = renderEntries(model.range(nowMs, scan.gte, scan.lt, scan.limit));
      if (got.join(',') !== want.join(',')) {
        throw new Error(`${where}: range ${scan.gte?.toString('hex')}..${scan.lt?.toString('hex')} limit ${scan.limit}: got [${got}] want [${want}]`);
      }
      for (const s of snapshots) {
        const g = renderEntries(await collect(engine, { snapshot: s.snap }));
        const w = renderEntries(s.model.range(nowMs));
        if (g.join(',') !== w.join(',')) throw new Error(`${where}: snapshot ${s.snap.seq} scan: got [${g}] want [${w}]`);
        for (const key of written.values()) {
          const gv = await engine.get(key, s.snap);
          const wv = s.model.get(key, nowMs)?.value;
          if ((gv === undefined) !== (wv === undefined) || (gv && wv && !gv.equals(wv))) {
            throw new Error(`${where}: snapshot ${s.snap.seq} get ${key.toString('hex')}: got ${gv?.toString('hex')} want ${wv?.toString('hex')}`);
          }
        }
      }
    }
  } finally {
    releaseAll();
    addStats(engine);
    await engine.close();
  }
}

t.test('engine agrees with a Map model over random operation sequences', async (t) => {
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
  const path = process.env.FC_PATH;
  let flushes = 0;
  let compactions = 0;
  await fc.assert(
    fc.asyncProperty(configArb, fc.array(stepArb, { minLength: 1, maxLength: MAX_STEPS, size: 'max' }), async (config, steps) => {
      await runSequence(config, steps);
    }),
    { numRuns: RUNS, ...(seed === undefined ? {} : { seed }), ...(path === undefined ? {} : { path }) },
  );
  t.ok(
    totals.autoFlushes >= RUNS && totals.compactions >= RUNS / 4 && totals.reopens >= RUNS / 2,
    `the runs flushed and compacted: ${JSON.stringify(totals)}`,
  );
  // The tiny memtable must really have made the engine flush and compact on its own, or the
  // property above only exercised the memtable.
  const fs = new FaultFileSystem();
  const engine = await openEngine({ dir: DIR, fs, appendfsync: 'no', memtableBytes: MEMTABLE_BYTES, blockBytes: BLOCK_BYTES });
  try {
    for (let i = 0; i < 400; i++) await engine.put(Buffer.from(`k${i % 97}`), Buffer.alloc(40, i));
    const s = engine.stats();
    flushes = s.flushes;
    compactions = s.compactions;
  } finally {
    await engine.close();
  }
  t.ok(flushes >= 5, `a small memtable flushes on its own (${flushes} flushes)`);
  t.ok(compactions >= 1, `and compacts on its own (${compactions} compactions)`);
});
