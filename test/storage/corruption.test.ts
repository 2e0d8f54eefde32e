/**
 * Damaged files never produce a silent wrong read (issue 2, "How it is proven"):
 *   - the commit log truncated at every offset of its last records (and the torn part zeroed or
 *     filled with garbage instead): the engine opens, drops the torn record, reports exactly the
 *     bytes it dropped, holds exactly the writes before it, and keeps working;
 *   - a bit flipped in a record in the middle of the log: open refuses with ECORRUPT naming the
 *     file, unless repair is given, which skips exactly the damaged record;
 *   - bits flipped in a table (and tables truncated): every damage is detected, as ECORRUPT at
 *     open or at the read that touches it; each value read back is the right one, deleted keys
 *     stay deleted, and nothing throws anything but a StorageError (compaction included);
 *   - bits flipped in the manifest (and truncation): open refuses with ECORRUPT, with or without
 *     repair (repair does not rebuild a manifest); never a wrong read.
 *   - the same table damage opened with repair: a dropped table's key range is lost
 *     (lost_ranges.ts), so its keys answer ECORRUPT; never an older version, a resurrected
 *     delete, or a key silently missing (from a get or a scan).
 * Runs on the in-memory FaultFileSystem (damage is applied with poke() between opens). The log
 * record framing used here (crc:u32 length:u32 payload, little-endian) is the one documented in
 * src/storage/log.ts.
 */
import t, { type Test } from 'tap';
import { openEngine } from '../../src/storage/engine.js';
import { StorageError, type BatchOp, type KVEngine } from '../../src/storage/types.js';
import { FaultFileSystem, seededRandom } from './fault_fs.js';
import { KvModel, collect, renderEntries } from './kv_model.js';

const DIR = '/db';
const NOW_MS = 1_700_000_000_000;
const LOG_HEADER_BYTES = 8;
/** How many records at the end of the log are torn at every offset. */
const TORN_RECORDS = 4;

const options = (fs: FaultFileSystem, repair = false) => ({
  dir: DIR,
  fs,
  appendfsync: 'always' as const,
  memtableBytes: 1 << 20,
  blockBytes: 256,
  blockCacheBytes: 4096,
  tombstoneGraceMs: 1_000_000_000,
  now: () => NOW_MS,
  repair,
});

type Write = { kind: 'put'; key: Buffer; value: Buffer } | { kind: 'del'; key: Buffer } | { kind: 'batch'; ops: BatchOp[] };

/** The i-th write of the history: puts of varied sizes, deletes and batches. */
function historyWrite(i: number): Write {
  const key = Buffer.from(`key${i % 13}`);
  const value = Buffer.from(`value${i}-${'v'.repeat((i * 37) % 90)}`);
  if (i % 7 === 3) return { kind: 'del', key };
  if (i % 5 === 4) {
    return {
      kind: 'batch',
      ops: [
        { type: 'put', key, value },
        { type: 'put', key: Buffer.from(`batch${i}`), value: Buffer.from(`b${i}`) },
        { type: 'del', key: Buffer.from(`key${(i + 1) % 13}`) },
      ],
    };
  }
  return { kind: 'put', key, value };
}

function applyToModel(m: KvModel, w: Write): void {
  if (w.kind === 'put') m.put(w.key, w.value);
  else if (w.kind === 'del') m.del(w.key);
  else m.apply(w.ops);
}

function applyToEngine(e: KVEngine, w: Write): Promise<void> {
  if (w.kind === 'put') return e.put(w.key, w.value);
  if (w.kind === 'del') return e.delete(w.key);
  return e.write(w.ops);
}

function logFiles(fs: FaultFileSystem): string[] {
  return fs.listFiles(DIR).filter((f) => f.endsWith('.log'));
}

/** Record start offsets of a log, plus its length as the last boundary. */
function recordBoundaries(log: Buffer): number[] {
  const out = [0];
  let p = 0;
  while (p + LOG_HEADER_BYTES <= log.length) {
    const len = log.readUInt32LE(p + 4);
    p += LOG_HEADER_BYTES + len;
    if (p > log.length) break;
    out.push(p);
  }
  return out;
}

function isCorrupt(err: unknown): boolean {
  return err instanceof StorageError && err.code === 'ECORRUPT';
}

/**
 * Writes `count` writes (one log record each, 'always' and awaited one at a time) into a fresh
 * engine and returns the crash image with every write in the log (no table yet), the model
 * after each prefix, and the log file name.
 */
async function logOnlyImage(count: number): Promise<{ fs: FaultFileSystem; prefixes: string[]; logName: string }> {
  const fs = new FaultFileSystem();
  const engine = await openEngine(options(fs));
  const model = new KvModel();
  const prefixes = [''];
  for (let i = 0; i < count; i++) {
    const w = historyWrite(i);
    await applyToEngine(engine, w);
    applyToModel(model, w);
    prefixes.push(renderEntries(model.range(NOW_MS)).join(','));
  }
  const image = fs.powerLossImage();
  await engine.close();
  const logs = logFiles(image).filter((f) => image.peek(`${DIR}/${f}`).length > 0);
  if (logs.length !== 1) throw new Error(`expected one non-empty log, found ${logs.join(',')}`);
  return { fs: image, prefixes, logName: `${DIR}/${logs[0]}` };
}

async function stateOf(engine: KVEngine): Promise<string> {
  return renderEntries(await collect(engine)).join(',');
}

t.test('torn log tail at every offset of the last records: dropped, reported, never a wrong value', async (t) => {
  const COUNT = 40;
  const { fs, prefixes, logName } = await logOnlyImage(COUNT);
  const log = fs.peek(logName);
  const bounds = recordBoundaries(log);
  t.equal(bounds.length, COUNT + 1, 'one record per write, and the framing is as documented');
  t.equal(bounds[bounds.length - 1], log.length);
  const from = bounds[bounds.length - 1 - TORN_RECORDS]!;
  const problems: string[] = [];
  let cases = 0;
  for (let cut = from; cut <= log.length; cut++) {
    // Records wholly before the cut survive; the partial one is the torn tail.
    let whole = 0;
    while (whole + 1 < bounds.length && bounds[whole + 1]! <= cut) whole++;
    const torn = cut - bounds[whole]!;
    for (const tail of ['truncated', 'zeroed', 'garbage'] as const) {
      if (tail !== 'truncated' && cut === log.length) continue;
      const damaged = Buffer.from(log);
      let bytes: Buffer;
      if (tail === 'truncated') bytes = damaged.subarray(0, cut);
      else if (tail === 'zeroed') bytes = damaged.fill(0, cut);
      else {
        const r = seededRandom(cut);
        for (let i = cut; i < damaged.length; i++) damaged[i] = Math.floor(r() * 256);
        bytes = damaged;
      }
      const expectTorn = tail === 'truncated' ? torn : log.length - bounds[whole]!;
      const img = fs.clone();
      img.poke(logName, bytes);
      cases++;
      let engine: KVEngine | undefined;
      try {
        engine = await openEngine(options(img));
        const state = await stateOf(engine);
        if (state !== prefixes[whole]) problems.push(`cut ${cut} (${tail}): state is not the ${whole} whole records`);
        const reported = engine.stats().recoveredTornBytes;
        if (reported !== expectTorn) problems.push(`cut ${cut} (${tail}): reported ${reported} torn bytes, dropped ${expectTorn}`);
        // Appending after a dropped tail must not hide the new record behind the old garbage.
        await engine.put(Buffer.from('after'), Buffer.from('tail'));
        await engine.close();
        engine = undefined;
        const again = await openEngine(options(img.crash()));
        try {
          const v = await again.get(Buffer.from('after'));
          if (v?.toString() !== 'tail') problems.push(`cut ${cut} (${tail}): a write after recovery was lost on the next open`);
          const rest = renderEntries((await collect(again)).filter((e) => e.key.toString() !== 'after')).join(',');
          if (rest !== prefixes[whole]) problems.push(`cut ${cut} (${tail}): state changed on the second open`);
        } finally {
          await again.close();
        }
      } catch (err) {
        problems.push(`cut ${cut} (${tail}): ${String(err)}`);
      } finally {
        await engine?.close().catch(() => undefined);
      }
      if (problems.length > 10) break;
    }
  }
  t.same(problems, [], `${cases} torn tails over the last ${TORN_RECORDS} records`);
});

t.test('a bit flip in the middle of the log refuses to open (ECORRUPT) unless repair', async (t) => {
  const COUNT = 30;
  const { fs, prefixes, logName } = await logOnlyImage(COUNT);
  const log = fs.peek(logName);
  const bounds = recordBoundaries(log);
  const rand = seededRandom(42);
  const problems: string[] = [];
  let cases = 0;
  // Records 0 .. COUNT-3: at least two valid records follow the damaged one.
  for (let rec = 0; rec < COUNT - 2; rec++) {
    for (let k = 0; k < 4; k++) {
      const start = bounds[rec]!;
      const end = bounds[rec + 1]!;
      const pos = start + Math.floor(rand() * (end - start));
      const bit = 1 << Math.floor(rand() * 8);
      const damaged = Buffer.from(log);
      damaged[pos]! ^= bit;
      cases++;
      const img = fs.clone();
      img.poke(logName, damaged);
      try {
        const e = await openEngine(options(img));
        await e.close();
        problems.push(`record ${rec} byte ${pos - start}: opened without repair`);
      } catch (err) {
        if (!isCorrupt(err)) problems.push(`record ${rec} byte ${pos - start}: failed with ${String(err)}, want ECORRUPT`);
        else if (!String((err as Error).message).includes(logName.split('/').pop()!)) {
          problems.push(`record ${rec}: the ECORRUPT message does not name the log file: ${(err as Error).message}`);
        }
      }
      // Repair skips exactly the damaged record: the state is the history without write `rec`.
      const model = new KvModel();
      for (let i = 0; i < COUNT; i++) if (i !== rec) applyToModel(model, historyWrite(i));
      const want = renderEntries(model.range(NOW_MS)).join(',');
      try {
        const e = await openEngine(options(img.clone(), true));
        try {
          const got = await stateOf(e);
          if (got !== want) problems.push(`record ${rec} byte ${pos - start}: repair did not skip exactly that record`);
        } finally {
          await e.close();
        }
      } catch (err) {
        problems.push(`record ${rec} byte ${pos - start}: repair open failed: ${String(err)}`);
      }
      if (problems.length > 10) break;
    }
  }
  t.same(problems, [], `${cases} bit flips in middle records`);
  t.ok(prefixes.length > COUNT);
});

/**
 * Builds an engine whose data lives in tables (several levels, with overwrites and deletes so
 * older versions and tombstones exist) and returns the clean image plus the final model.
 */
async function tableImage(): Promise<{ fs: FaultFileSystem; model: KvModel; keys: Buffer[] }> {
  const fs = new FaultFileSystem();
  // No background compaction: the table layout (L0 tables over compacted lower levels) is then
  // the same on every run.
  const engine = await openEngine({ ...options(fs), memtableBytes: 4096, autoCompact: false });
  const model = new KvModel();
  const keys: Buffer[] = [];
  for (let i = 0; i < 300; i++) keys.push(Buffer.from(`t${String(i).padStart(4, '0')}`));
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if ((i + round) % 11 === 0) {
        await engine.delete(key);
        model.del(key);
      } else {
        const value = Buffer.from(`r${round}-${i}-${'z'.repeat(i % 50)}`);
        await engine.put(key, value);
        model.put(key, value);
      }
    }
    await engine.flush();
    if (round === 1) await engine.compactAll();
  }
  await engine.close();
  // clone(): the state after a clean close, made durable, so every table left is a live one.
  return { fs: fs.clone(), model, keys };
}

/**
 * Opens the damaged image and reads everything. Returns a problem (a wrong read, or an error
 * that is not a StorageError) or null. ECORRUPT at open or at a read is acceptable.
 */
async function checkNoWrongRead(img: FaultFileSystem, model: KvModel, keys: Buffer[], repair: boolean): Promise<{ problem: string | null; outcome: string }> {
  let engine: KVEngine;
  try {
    engine = await openEngine(options(img, repair));
  } catch (err) {
    if (isCorrupt(err)) return { problem: null, outcome: 'open ECORRUPT' };
    return { problem: `open threw ${String(err)}`, outcome: 'bad' };
  }
  let corruptReads = 0;
  try {
    for (const key of keys) {
      try {
        const v = await engine.get(key);
        const want = model.get(key, NOW_MS)?.value;
        if (v === undefined && want !== undefined) {
          // Neither a damaged table (lost range) nor a damaged manifest may make a key vanish.
          return { problem: `get ${key}: absent, want ${want.toString()}`, outcome: 'bad' };
        } else if (v !== undefined && (want === undefined || !v.equals(want))) {
          return { problem: `get ${key}: got ${v.toString()}, want ${want?.toString() ?? 'absent'}`, outcome: 'bad' };
        }
      } catch (err) {
        if (!isCorrupt(err)) return { problem: `get ${key} threw ${String(err)}`, outcome: 'bad' };
        corruptReads++;
      }
    }
    try {
      const got = await collect(engine);
      for (const e of got) {
        const want = model.get(e.key, NOW_MS)?.value;
        if (!want || !want.equals(e.value)) return { problem: `scan: ${e.key.toString()} = ${e.value.toString()}, want ${want?.toString() ?? 'absent'}`, outcome: 'bad' };
      }
      const wantCount = model.range(NOW_MS).length;
      if (got.length !== wantCount) return { problem: `scan returned ${got.length} entries, want ${wantCount}`, outcome: 'bad' };
    } catch (err) {
      if (!isCorrupt(err)) return { problem: `scan threw ${String(err)}`, outcome: 'bad' };
      corruptReads++;
    }
    try {
      await engine.compactAll();
    } catch (err) {
      if (!(err instanceof StorageError)) return { problem: `compactAll threw ${String(err)}`, outcome: 'bad' };
    }
  } finally {
    await engine.close().catch(() => undefined);
  }
  return { problem: null, outcome: corruptReads ? 'read ECORRUPT' : 'all reads right' };
}

/** Damaged copies of every live table: random bit flips (half near the end, where the filter,
 * index and footer are) and truncations. */
function tableDamages(fs: FaultFileSystem, flipsPerTable: number): Array<{ table: string; what: string; bytes: Buffer }> {
  const rand = seededRandom(7);
  const out: Array<{ table: string; what: string; bytes: Buffer }> = [];
  for (const table of fs.listFiles(DIR).filter((f) => f.endsWith('.sst'))) {
    const bytes = fs.peek(`${DIR}/${table}`);
    for (let k = 0; k < flipsPerTable; k++) {
      const pos = k % 2 === 0 ? Math.floor(rand() * bytes.length) : Math.max(0, bytes.length - 1 - Math.floor(rand() * 256));
      const d = Buffer.from(bytes);
      d[pos]! ^= 1 << Math.floor(rand() * 8);
      out.push({ table, what: `flip at ${pos}/${bytes.length}`, bytes: d });
    }
    for (const cut of [0, 10, Math.floor(bytes.length / 2), bytes.length - 1]) out.push({ table, what: `truncated to ${cut}`, bytes: bytes.subarray(0, cut) });
  }
  return out;
}

async function damagedTablesCheck(t: Test, repair: boolean): Promise<void> {
  const { fs, model, keys } = await tableImage();
  const tables = fs.listFiles(DIR).filter((f) => f.endsWith('.sst'));
  t.ok(tables.length >= 3, `tables on several levels: ${tables.join(', ')}`);
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  const damages = tableDamages(fs, 12);
  for (const damage of damages) {
    const img = fs.clone();
    img.poke(`${DIR}/${damage.table}`, damage.bytes);
    const { problem, outcome } = await checkNoWrongRead(img, model, keys, repair);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    if (problem) problems.push(`${damage.table} ${damage.what}: ${problem}`);
  }
  t.same(problems.slice(0, 10), [], `${damages.length} damaged tables (${problems.length} wrong), outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  if (!repair) {
    // Every byte of a table is under a checksum (blocks, filter, index, footer), and the reads
    // above touch every live block: without repair, every damage must be detected.
    t.equal(outcomes.get('all reads right') ?? 0, 0, 'no damage went undetected');
  }
}

t.test('bit flips and truncation in tables: ECORRUPT, never a wrong read', async (t) => {
  await damagedTablesCheck(t, false);
});

t.test('bit flips and truncation in tables, opened with repair: ECORRUPT or the right value, never a stale one', async (t) => {
  await damagedTablesCheck(t, true);
});

t.test('bit flips and truncation in the manifest: ECORRUPT (or repair), never a wrong read', async (t) => {
  const { fs, model, keys } = await tableImage();
  const file = `${DIR}/MANIFEST`;
  t.ok(await fs.exists(file), `manifest exists (files: ${fs.listFiles(DIR).join(', ')})`);
  const bytes = fs.peek(file);
  const rand = seededRandom(11);
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  let cases = 0;
  const damages: Array<{ what: string; bytes: Buffer }> = [];
  for (let pos = 0; pos < bytes.length; pos++) {
    const d = Buffer.from(bytes);
    d[pos]! ^= 1 << Math.floor(rand() * 8);
    damages.push({ what: `flip at ${pos}/${bytes.length}`, bytes: d });
  }
  for (const cut of [0, 5, 19, Math.floor(bytes.length / 2), bytes.length - 1]) damages.push({ what: `truncated to ${cut}`, bytes: bytes.subarray(0, cut) });
  for (const damage of damages) {
    for (const repair of [false, true]) {
      cases++;
      const img = fs.clone();
      img.poke(file, damage.bytes);
      const { problem, outcome } = await checkNoWrongRead(img, model, keys, repair);
      const k = `${repair ? 'repair' : 'no repair'}: ${outcome}`;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      if (problem) problems.push(`${damage.what}${repair ? ' (repair)' : ''}: ${problem}`);
      if (!repair && outcome !== 'open ECORRUPT') problems.push(`${damage.what}: opened a damaged manifest without repair (${outcome})`);
    }
  }
  t.same(problems.slice(0, 10), [], `${cases} damaged manifests, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
