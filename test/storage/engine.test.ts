import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import { nodeFileSystem, type FileSystem, type FileHandle } from '../../src/storage/fs.js';
import { StorageError } from '../../src/storage/types.js';
import { collect, k, tempDir, v } from './helpers.js';

const small = { memtableBytes: 16 * 1024, blockBytes: 512, levelBaseBytes: 64 * 1024, targetFileBytes: 16 * 1024 };

/** nodeFileSystem whose handles' sync() runs `sync(file, realSync)` instead (fsync counting and faults). */
function syncHooked(sync: (file: string, realSync: () => Promise<void>) => Promise<void>): FileSystem {
  return {
    ...nodeFileSystem,
    async open(file, mode) {
      const h = await nodeFileSystem.open(file, mode);
      const hooked: FileHandle = {
        read: (b, o, l, p) => h.read(b, o, l, p),
        append: (d) => h.append(d),
        sync: () => sync(file, () => h.sync()),
        size: () => h.size(),
        close: () => h.close(),
      };
      return hooked;
    },
  };
}

t.test('put, get, overwrite, delete, reopen', async (t) => {
  const dir = await tempDir(t);
  let e = await openEngine({ dir, ...small });
  await e.put(k(1), v(1));
  await e.put(k(2), v(2));
  await e.put(k(1), v(11));
  await e.delete(k(2));
  t.same(await e.get(k(1)), v(11));
  t.equal(await e.get(k(2)), undefined);
  t.equal(await e.get(k(3)), undefined);
  await e.close();
  await e.close(); // idempotent
  await t.rejects(e.get(k(1)), { code: 'ECLOSED' });
  await t.rejects(e.put(k(1), v(1)), { code: 'ECLOSED' });
  e = await openEngine({ dir, ...small });
  t.same(await e.get(k(1)), v(11));
  t.equal(await e.get(k(2)), undefined);
  await e.close();
});

t.test('many writes flush to tables, survive reopen and compaction; range is ordered', async (t) => {
  const dir = await tempDir(t);
  let e = await openEngine({ dir, ...small });
  const N = 3000;
  const model = new Map<string, Buffer>();
  for (let round = 0; round < 3; round++) {
    const ps: Promise<void>[] = [];
    for (let i = round; i < N; i += 1 + round) {
      const val = v(i * 10 + round, 40);
      model.set(k(i).toString(), val);
      ps.push(e.put(k(i), val));
    }
    await Promise.all(ps);
  }
  for (let i = 0; i < N; i += 7) {
    model.delete(k(i).toString());
    await e.delete(k(i));
  }
  await e.flush();
  t.ok(e.stats().flushes > 3, 'several flushes happened');
  const check = async (label: string): Promise<void> => {
    const all = await collect(e.range());
    const expected = [...model.entries()].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    t.equal(all.length, expected.length, `${label}: count`);
    let ok = true;
    for (let i = 0; i < all.length; i++) {
      if (all[i]!.key.toString() !== expected[i]![0] || !all[i]!.value.equals(expected[i]![1])) ok = false;
    }
    t.ok(ok, `${label}: range equals the model`);
    let gets = true;
    for (let i = 0; i < N; i += 13) {
      const got = await e.get(k(i));
      const want = model.get(k(i).toString());
      if (!(got === undefined ? want === undefined : want !== undefined && got.equals(want))) gets = false;
    }
    t.ok(gets, `${label}: gets equal the model`);
  };
  await check('after flush');
  await e.close();
  e = await openEngine({ dir, ...small });
  await check('after reopen');
  await e.compactAll();
  const st = e.stats();
  t.equal(st.tablesPerLevel[0], 0, 'L0 empty after compactAll');
  t.ok(st.compactions > 0);
  await check('after compactAll');
  // Bounded range with limit.
  const part = await collect(e.range({ gte: k(100), lt: k(200), limit: 10 }));
  t.equal(part.length, 10);
  t.ok(part.every((x) => Buffer.compare(x.key, k(100)) >= 0 && Buffer.compare(x.key, k(200)) < 0));
  t.ok(e.approximateCount() > N / 2 && e.approximateCount() < N * 3, `approximateCount ${e.approximateCount()}`);
  t.ok(e.approximateSize(k(0), k(N)) > 0);
  await e.close();
  const files = await fsp.readdir(dir);
  t.notOk(files.includes('LOCK'), 'lock released on close');
});

t.test('atomic batches and snapshots', async (t) => {
  const dir = await tempDir(t);
  const e = await openEngine({ dir, ...small });
  await e.write([
    { type: 'put', key: k(1), value: v(1) },
    { type: 'put', key: k(2), value: v(2) },
    { type: 'del', key: k(3) },
  ]);
  const snap = e.snapshot();
  await e.write([
    { type: 'put', key: k(1), value: v(100) },
    { type: 'del', key: k(2) },
    { type: 'put', key: k(3), value: v(3) },
  ]);
  t.same(await e.get(k(1), snap), v(1));
  t.same(await e.get(k(2), snap), v(2));
  t.equal(await e.get(k(3), snap), undefined);
  t.same(await e.get(k(1)), v(100));
  // The snapshot survives a flush and a full compaction.
  for (let i = 10; i < 1000; i++) await e.put(k(i), v(i, 64));
  await e.compactAll();
  t.same(await e.get(k(1), snap), v(1));
  t.same(await e.get(k(2), snap), v(2));
  const viaSnap = await collect(e.range({ snapshot: snap, lt: k(10) }));
  t.same(viaSnap.map((x) => x.key.toString()), [k(1), k(2)].map(String));
  snap.release();
  await e.compactAll();
  t.equal(await e.get(k(2)), undefined);
  t.same(await e.get(k(3)), v(3));
  await e.close();
});

t.test('range from a consistent snapshot while writes go on', async (t) => {
  const dir = await tempDir(t);
  const e = await openEngine({ dir, ...small });
  for (let i = 0; i < 500; i++) await e.put(k(i), v(i));
  const seen: string[] = [];
  let i = 0;
  for await (const x of e.range()) {
    seen.push(x.key.toString());
    // Writes during iteration (incl. new keys inside the range) must not show up.
    if (i++ % 50 === 0) await e.put(k(i * 2 + 1, 9), v(0));
    if (i % 100 === 0) await e.delete(k(i));
  }
  t.equal(seen.length, 500);
  await e.close();
});

t.test('expiry: entries read as absent once now >= expiresAtMs, and compaction drops them', async (t) => {
  const dir = await tempDir(t);
  let now = 1_000_000;
  const e = await openEngine({ dir, ...small, now: () => now, tombstoneGraceMs: 1000 });
  await e.put(k(1), v(1), { expiresAtMs: 1_000_500 });
  await e.put(k(2), v(2));
  t.same(await e.get(k(1)), v(1));
  t.equal((await e.getEntry(k(1)))?.expiresAtMs, 1_000_500);
  now = 1_000_500;
  t.equal(await e.get(k(1)), undefined);
  t.same((await collect(e.range())).map((x) => x.key.toString()), [k(2).toString()]);
  await e.delete(k(2));
  now = 1_010_000;
  await e.compactAll();
  t.equal(await e.get(k(1)), undefined);
  const st = e.stats();
  t.equal(st.bytesPerLevel.reduce((a, b) => a + b, 0), 0, 'expired entry and old tombstone gone from the bottom');
  await e.close();
});

t.test('limits, lock, and failed state after an fsync error', async (t) => {
  const dir = await tempDir(t);
  const e = await openEngine({ dir, maxKeyBytes: 8, maxValueBytes: 16 });
  await t.rejects(e.put(Buffer.alloc(9), v(1, 1)), { code: 'ETOOLARGE' });
  await t.rejects(e.put(k(1, 1), Buffer.alloc(17)), { code: 'ETOOLARGE' });
  await t.rejects(openEngine({ dir }), { code: 'ELOCKED' });
  await e.close();
  // A LOCK left by a dead process is taken over.
  await fsp.writeFile(path.join(dir, 'LOCK'), '999999999\n');
  const e2 = await openEngine({ dir });
  await e2.close();

  let failSync = false;
  const faulty = syncHooked(async (file, realSync) => {
    if (failSync && file.endsWith('.log')) throw new Error('EIO: injected fsync failure');
    return realSync();
  });
  const dir2 = await tempDir(t);
  const logs: string[] = [];
  const f = await openEngine({ dir: dir2, fs: faulty, appendfsync: 'always', log: (_l, m) => logs.push(m) });
  await f.put(k(1), v(1));
  failSync = true;
  // Writes queued together share one acknowledgement: all of them reject.
  const [err, ...others] = await Promise.all([f.put(k(2), v(2)), f.put(k(4), v(4)), f.write([{ type: 'del', key: k(1) }])].map((p) => p.catch((x: unknown) => x)));
  t.ok(err instanceof StorageError && err.code === 'EFAILED', 'the write whose fsync failed rejects');
  t.ok(others.every((x) => x instanceof StorageError && x.code === 'EFAILED'), 'so do the writes of its group');
  failSync = false;
  await t.rejects(f.put(k(3), v(3)), { code: 'EFAILED' }, 'later writes reject too (no retry)');
  t.match(f.stats().failed, /injected fsync failure/);
  t.equal(await f.get(k(2)), undefined, 'the failed write is not visible');
  t.same(await f.get(k(1)), v(1), 'reads go on');
  t.ok(logs.some((m) => m.includes('refusing writes')));
  await f.close();
});

t.test('group commit: concurrent writes share appends and fsyncs', async (t) => {
  const dir = await tempDir(t);
  let syncs = 0;
  const counting = syncHooked((file, realSync) => {
    if (file.endsWith('.log')) syncs++;
    return realSync();
  });
  const e = await openEngine({ dir, fs: counting, appendfsync: 'always' });
  const before = syncs;
  await Promise.all(Array.from({ length: 200 }, (_, i) => e.put(k(i), v(i))));
  const used = syncs - before;
  t.ok(used >= 1 && used < 50, `200 concurrent puts used ${used} fsyncs`);
  // Writes queued while a group is being committed go in a later group: each is visible (and
  // durable) when its own promise resolves, never before.
  let invisible = 0;
  await Promise.all(
    Array.from({ length: 300 }, async (_, i) => {
      if (i % 3 === 0) await Promise.resolve(); // some join while the first group is taken
      await e.put(k(1000 + i), v(i));
      if (!(await e.get(k(1000 + i)))?.equals(v(i))) invisible++;
    }),
  );
  t.equal(invisible, 0, 'every acknowledged write is visible');
  await e.close();
  const r = await openEngine({ dir });
  t.same(await r.get(k(199)), v(199));
  await r.close();
});

t.test('everysec: the log is fsynced in the background, writes go on meanwhile; a failed fsync stops writes', async (t) => {
  const dir = await tempDir(t);
  let logSyncs = 0;
  let block = true;
  let release: ((fail: boolean) => void) | undefined;
  const slow = syncHooked(async (file, realSync) => {
    if (file.endsWith('.log') && block) {
      logSyncs++;
      const fail = await new Promise<boolean>((resolve) => (release = resolve));
      if (fail) throw new Error('EIO: injected fsync failure');
    }
    return realSync();
  });
  const e = await openEngine({ dir, fs: slow, appendfsync: 'everysec' });
  await e.put(k(1), v(1));
  const deadline = Date.now() + 5000;
  while (logSyncs === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(logSyncs, 1, 'the once-a-second fsync started');
  // It hangs until released: writes are committed meanwhile.
  await e.put(k(2), v(2));
  t.same(await e.get(k(2)), v(2), 'a write during the fsync is committed');
  block = false;
  release!(true);
  await new Promise((r) => setTimeout(r, 20));
  await t.rejects(e.put(k(3), v(3)), { code: 'EFAILED' }, 'after the failed fsync writes stop');
  t.match(e.stats().failed, /injected fsync failure/);
  await e.close();
});

t.test('recovery: torn tail reported, mid-log damage refused unless repair, orphans removed', async (t) => {
  const dir = await tempDir(t);
  let e = await openEngine({ dir, appendfsync: 'always' });
  for (let i = 0; i < 20; i++) await e.put(k(i), v(i));
  await e.close();
  const logs = (await fsp.readdir(dir)).filter((n) => n.endsWith('.log'));
  t.equal(logs.length, 1);
  const logFile = path.join(dir, logs[0]!);
  const full = await fsp.readFile(logFile);
  // Torn tail: cut the last record in half.
  await fsp.writeFile(logFile, full.subarray(0, full.length - 20));
  const messages: string[] = [];
  e = await openEngine({ dir, log: (_l, m) => messages.push(m) });
  t.ok(e.stats().recoveredTornBytes > 0, 'torn bytes reported in stats');
  t.ok(messages.some((m) => m.includes('torn tail')), 'and in the log');
  t.same(await e.get(k(18)), v(18));
  t.equal(await e.get(k(19)), undefined, 'the torn record is dropped');
  for (let i = 20; i < 40; i++) await e.put(k(i), v(i));
  await e.close();
  // Damage in the middle of the (new) log.
  const log2 = (await fsp.readdir(dir)).filter((n) => n.endsWith('.log'))[0]!;
  const buf = await fsp.readFile(path.join(dir, log2));
  buf[40]! ^= 0xff;
  await fsp.writeFile(path.join(dir, log2), buf);
  const err = await openEngine({ dir }).catch((x: unknown) => x);
  t.ok(err instanceof StorageError && err.code === 'ECORRUPT', 'refuses to open');
  t.match((err as Error).message, new RegExp(`${log2.replace('.', '\\.')}.*offset \\d+`));
  t.notOk((await fsp.readdir(dir)).includes('LOCK'), 'a failed open releases the lock');
  // Orphans: a stray table and a half-written manifest are removed on the next open.
  await fsp.writeFile(path.join(dir, '999999.sst'), 'junk');
  await fsp.writeFile(path.join(dir, 'MANIFEST.tmp'), 'junk');
  messages.length = 0;
  e = await openEngine({ dir, repair: true, log: (_l, m) => messages.push(m) });
  t.ok(messages.some((m) => m.includes('repair')), 'repair reports what it dropped');
  t.same(await e.get(k(0)), v(0), 'data before the damage survives');
  t.same(await e.get(k(39)), v(39), 'data after the damage survives');
  const files = await fsp.readdir(dir);
  t.notOk(files.includes('999999.sst'));
  t.notOk(files.includes('MANIFEST.tmp'));
  await e.close();
});

t.test('a steady stream of writes does not starve the event loop', async (t) => {
  const dir = await tempDir(t);
  const e = await openEngine({ dir, memtableBytes: 64 * 1024 * 1024 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = Date.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (n < 20000) await e.put(k(n++), v(1));
    }),
  );
  const elapsed = Date.now() - started;
  clearInterval(timer);
  await e.close();
  // A timer every 1 ms must have fired many times while 20k writes went through.
  t.ok(ticks >= Math.min(20, elapsed / 20), `${ticks} timer ticks in ${elapsed} ms of writes`);
});
