// Restart: data, TTLs, siblings and counts survive close + reopen; expired data is invisible
// after a restart too; the count is rebuilt from storage.
import t from 'tap';
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
  t.same(await fx.ks.keyspaceInfo(), { keys: 8, expires: 8 }, 'a write invalidates the cached scan');
  await fx.run('SET', 'forever', 'v');
  // The scan result is reused for DBSIZE_SCAN_CACHE_MS (1 s): move past it.
  fx.clock.advance(4500);
  t.same(await fx.ks.keyspaceInfo(), { keys: 5, expires: 4 });
  t.equal(await fx.run('DBSIZE'), 5);
});
