// Restart: data, TTLs, siblings and counts survive close + reopen; expired data is invisible
// after a restart too; the count is rebuilt from storage.
import t from 'tap';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import type { KVEngine, RangeOptions } from '../../src/storage/types.js';
import { Keyspace } from '../../src/server/keyspace.js';
import { openFixture } from './keyspace_fixture.js';

t.test('data intact after close and reopen', async (t) => {
  const fx = await openFixture(t);
  const n = 500;
  for (let i = 0; i < n; i += 100) {
    await fx.run('MSET', ...Array.from({ length: 100 }, (_, j) => [`k${i + j}`, `value-${i + j}`]).flat());
  }
  await fx.run('SET', 'ttl', 'v', 'EX', '100');
  await fx.run('SET', 'short', 'v', 'PX', '50');
  await fx.run('SET', 'gone', 'v');
  await fx.run('DEL', 'gone');
  await fx.run('INCRBY', 'counter', '41');
  await fx.run('SET', 'sib', 'base');
  const [ctx] = (await fx.run('GETCTX', 'sib')) as [string, string[]];
  await fx.run('SETCTX', 'sib', ctx, 'x');
  await fx.run('SETCTX', 'sib', ctx, 'y');
  const info = await fx.ks.keyspaceInfo();
  t.same(info, { keys: n + 4, expires: 2 });

  await fx.reopen();
  t.same(await fx.ks.keyspaceInfo(), info, 'counts rebuilt from storage');
  for (const i of [0, 1, 99, 250, 499]) t.equal(await fx.run('GET', `k${i}`), `value-${i}`);
  t.equal(await fx.run('TTL', 'ttl'), 100);
  t.equal(await fx.run('GET', 'gone'), null, 'the delete survived');
  t.equal(await fx.run('INCR', 'counter'), 42);
  t.same(await fx.run('GET', 'sib'), ['x', 'y'], 'siblings survived');
  const [ctx2] = (await fx.run('GETCTX', 'sib')) as [string, string[]];
  await fx.run('SETCTX', 'sib', ctx2, 'resolved');
  t.equal(await fx.run('GET', 'sib'), 'resolved', 'a context read after restart still resolves');

  fx.clock.advance(60);
  await fx.reopen();
  t.equal(await fx.run('GET', 'short'), null, 'expired while down');
  t.same(await fx.ks.keyspaceInfo(), { keys: n + 3, expires: 1 });
  t.equal((await fx.run('KEYS', '*') as string[]).length, n + 3);
});

t.test('writes after reopen continue the same versions (no reused dots)', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v1');
  const [ctx] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.reopen();
  await fx.run('SET', 'k', 'v2');
  // The old context covers only v1: a SETCTX with it is concurrent with v2.
  await fx.run('SETCTX', 'k', ctx, 'v3');
  t.same(await fx.run('GET', 'k'), ['v2', 'v3']);
});

t.test('past the tracked-expiry cap, counts fall back to an exact scan', async (t) => {
  const fx = await openFixture(t, { maxTrackedExpiringKeys: 3 });
  for (let i = 0; i < 8; i++) await fx.run('SET', `t${i}`, 'v', 'PX', String(1000 * (i + 1)));
  await fx.run('SET', 'forever', 'v');
  t.same(await fx.ks.keyspaceInfo(), { keys: 9, expires: 8 });
  await fx.run('DEL', 'forever');
  t.same(await fx.ks.keyspaceInfo(), { keys: 8, expires: 8 }, 'writes adjust the cached scan');
  await fx.run('SET', 'forever', 'v');
  await fx.run('PERSIST', 't7');
  t.same(await fx.ks.keyspaceInfo(), { keys: 9, expires: 7 });
  await fx.run('EXPIRE', 't7', '8');
  // The scan result is reused for DBSIZE_SCAN_CACHE_MS (5 s): move past it.
  fx.clock.advance(5001);
  // t0..t4 (1..5 s) have expired; t5..t7 and forever remain.
  t.same(await fx.ks.keyspaceInfo(), { keys: 4, expires: 3 });
  t.equal(await fx.run('DBSIZE'), 4);
});

t.test('writes racing the background count at open keep the count exact', async (t) => {
  const fx = await openFixture(t);
  const n = 2000;
  for (let i = 0; i < n; i += 500) {
    await fx.run('MSET', ...Array.from({ length: 500 }, (_, j) => [`k${i + j}`, 'v']).flat());
  }
  for (let i = 0; i < 100; i++) await fx.run('SET', `t${i}`, 'v', 'EX', '100');
  await fx.ks.close();
  for (let round = 0; round < 3; round++) {
    // An engine whose scans yield to the event loop between entries, so the count at open is
    // still running while the writes below happen.
    const engine = await openEngine({ dir: path.join(fx.dir, 'engine'), appendfsync: 'no' });
    let slowScans = 0;
    const slow: KVEngine = {
      get: (k, snap) => engine.get(k, snap),
      getEntry: (k, snap) => engine.getEntry(k, snap),
      put: (k, v, o) => engine.put(k, v, o),
      delete: (k) => engine.delete(k),
      write: (ops) => engine.write(ops),
      snapshot: () => engine.snapshot(),
      approximateSize: (a, b) => engine.approximateSize(a, b),
      approximateCount: (a, b) => engine.approximateCount(a, b),
      flush: () => engine.flush(),
      compactAll: () => engine.compactAll(),
      stats: () => engine.stats(),
      close: () => engine.close(),
      range: (options?: RangeOptions) => {
      const inner = engine.range(options);
      slowScans++;
      return (async function* () {
        for await (const e of inner) {
          await new Promise((r) => setImmediate(r));
          yield e;
        }
      })();
      },
    };
    fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => undefined, engine: slow });
    // Delete stored keys, overwrite others, add new ones, all over the key order.
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      ops.push(fx.run('DEL', `k${(i * 37 + round) % n}`));
      ops.push(fx.run('SET', `k${(i * 53 + 7 * round) % n}`, 'w'));
      ops.push(fx.run('SET', `new${round}:${i}`, 'v'));
      ops.push(fx.run('SET', `ttl${round}:${i}`, 'v', 'EX', '100'));
    }
    // Stored keys whose TTL changes while the count runs: the count must follow the new TTLs.
    if (round === 0) {
      for (let i = 0; i < 50; i++) ops.push(fx.run('PERSIST', `t${i}`));
      for (let i = 50; i < 100; i++) ops.push(fx.run('EXPIRE', `t${i}`, '100000'));
    }
    await Promise.all(ops);
    t.equal(slowScans, 1, 'only the count scanned so far');
    const keys = ((await fx.run('KEYS', '*')) as string[]).length;
    t.equal(await fx.run('DBSIZE'), keys, `round ${round}: DBSIZE equals the keys stored (${keys})`);
    t.equal((await fx.ks.keyspaceInfo()).expires, 50 + 60, "this round's new TTL keys and t50..t99");
    // Past the old TTLs (100 s) but not the new ones: nothing of t* may be uncounted.
    fx.clock.advance(200_000);
    const keysLater = ((await fx.run('KEYS', '*')) as string[]).length;
    t.equal(await fx.run('DBSIZE'), keysLater, `round ${round}: still exact after the old TTLs passed (${keysLater})`);
    t.same(await fx.ks.keyspaceInfo(), { keys: keysLater, expires: 50 });
    await fx.ks.close();
  }
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => undefined });
});

t.test('storedObjects lists every stored object of a slot range, dead ones included', async (t) => {
  const fx = await openFixture(t);
  await fx.run('MSET', '{a}1', 'v', '{a}2', 'v', '{b}1', 'v');
  await fx.run('DEL', '{a}2');
  const slotA = (await fx.run('CLUSTER', 'KEYSLOT', '{a}')) as number;
  const slotB = (await fx.run('CLUSTER', 'KEYSLOT', '{b}')) as number;
  const inA: string[] = [];
  for await (const o of fx.ks.storedObjects(slotA, slotA)) {
    t.equal(o.slot, slotA);
    inA.push(`${o.key.toString()}:${o.object.siblings[0]!.value === null ? 'tombstone' : 'value'}`);
  }
  t.same(inA, ['{a}1:value', '{a}2:tombstone']);
  const all: string[] = [];
  for await (const o of fx.ks.storedObjects()) all.push(o.key.toString());
  t.same(all.sort(), ['{a}1', '{a}2', '{b}1']);
  t.ok(slotA !== slotB);
});

t.test('writeObject and mutateStored return exactly what is stored', async (t) => {
  const fx = await openFixture(t);
  const k = Buffer.from('k');
  const stored = await fx.ks.writeObject(k, { value: Buffer.from('v1'), expiresAtMs: 0 });
  t.same(await fx.ks.readObject(k), stored);
  t.equal(stored.siblings[0]!.dot.actor, fx.ks.actor);
  const none = await fx.ks.mutateStored(k, () => ({ result: 7 }));
  t.same(none, { result: 7, stored: undefined });
  const r = await fx.ks.mutateStored(k, (view) => ({ result: view.values.length, write: { value: null, expiresAtMs: 0 } }));
  t.equal(r.result, 1);
  t.same(await fx.ks.readObject(k), r.stored);
  t.equal(await fx.run('EXISTS', 'k'), 0);
});
