// GETCTX / SETCTX / DELCTX on one node: sibling creation from stale contexts, resolution, and
// how the other commands treat a key with siblings (strings.ts header).
import t from 'tap';
import { openFixture } from './keyspace_fixture.js';

const SIBLINGS2 = { error: 'SIBLINGS key has 2 concurrent values; read them with GETCTX and resolve with SETCTX' };

t.test('GETCTX on a missing and a plain key', async (t) => {
  const fx = await openFixture(t);
  const [ctx0, vals0] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  t.type(ctx0, 'string');
  t.same(vals0, []);
  await fx.run('SET', 'k', 'v1');
  const [ctx1, vals1] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  t.same(vals1, ['v1']);
  t.not(ctx1, ctx0, 'the context changes with a write');
  t.match(ctx1, /^[A-Za-z0-9_-]+$/, 'a printable token');
  t.equal(await fx.run('SETCTX', 'k', ctx1, 'v2'), 'OK');
  t.equal(await fx.run('GET', 'k'), 'v2', 'a current context supersedes: one value');
});

t.test('stale contexts make siblings; a context covering both resolves them', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'base');
  const [ctxA] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  const [ctxB] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  // Two clients read the same version and write concurrently.
  t.equal(await fx.run('SETCTX', 'k', ctxA, 'from-A'), 'OK');
  t.equal(await fx.run('SETCTX', 'k', ctxB, 'from-B'), 'OK');
  t.same(await fx.run('GET', 'k'), ['from-A', 'from-B'], 'GET returns both siblings, oldest first');
  t.same(await fx.run('MGET', 'k', 'none'), [['from-A', 'from-B'], null]);
  t.equal(await fx.run('EXISTS', 'k'), 1);
  t.equal(await fx.run('TYPE', 'k'), 'string');
  t.equal(await fx.run('DBSIZE'), 1);

  // Commands that need one value refuse, and leave the key alone.
  t.same(await fx.run('INCR', 'k'), SIBLINGS2);
  t.same(await fx.run('APPEND', 'k', 'x'), SIBLINGS2);
  t.same(await fx.run('STRLEN', 'k'), SIBLINGS2);
  t.same(await fx.run('GETRANGE', 'k', '0', '1'), SIBLINGS2);
  t.same(await fx.run('SETRANGE', 'k', '0', 'x'), SIBLINGS2);
  t.same(await fx.run('EXPIRE', 'k', '100'), SIBLINGS2);
  t.same(await fx.run('GETEX', 'k', 'EX', '100'), SIBLINGS2);
  t.same(await fx.run('GETEX', 'k'), ['from-A', 'from-B'], 'GETEX without options is a read');
  t.equal(await fx.run('PERSIST', 'k'), 0, 'no TTL: nothing to persist');
  t.equal(await fx.run('TTL', 'k'), -1);
  t.same(await fx.run('GET', 'k'), ['from-A', 'from-B'], 'unchanged');

  // Resolve: read both with their context, write the merge.
  const [ctxBoth, vals] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  t.same(vals, ['from-A', 'from-B']);
  t.equal(await fx.run('SETCTX', 'k', ctxBoth, 'merged', 'EX', '100'), 'OK');
  t.equal(await fx.run('GET', 'k'), 'merged');
  t.equal(await fx.run('TTL', 'k'), 100);
  const obj = await fx.ks.readObject(Buffer.from('k'));
  t.equal(obj.siblings.length, 1, 'the superseded siblings are gone from storage');
});

t.test('a stale SETCTX next to a newer SET keeps both; SET collapses siblings', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v1');
  const [old] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.run('SET', 'k', 'v2');
  await fx.run('SETCTX', 'k', old, 'v3');
  t.same(await fx.run('GET', 'k'), ['v2', 'v3'], 'v1 superseded, v2 concurrent with v3');
  t.same(await fx.run('SET', 'k', 'v4', 'GET'), ['v2', 'v3'], 'SET GET returns both siblings');
  t.equal(await fx.run('GET', 'k'), 'v4', 'and SET collapsed them');
});

t.test('SET ... GET and GETDEL return every sibling; DEL removes them all', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v1');
  const [ctx] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.run('SETCTX', 'k', ctx, 'a');
  await fx.run('SETCTX', 'k', ctx, 'b');
  t.same(await fx.run('SET', 'k', 'one', 'GET'), ['a', 'b']);
  t.equal(await fx.run('GET', 'k'), 'one', 'a plain SET supersedes everything this node has seen');
  await fx.run('SETCTX', 'k', ctx, 'c');
  t.same(await fx.run('GETDEL', 'k'), ['one', 'c']);
  t.equal(await fx.run('GET', 'k'), null);
  await fx.run('SETCTX', 'k', ctx, 'd');
  await fx.run('SETCTX', 'k', ctx, 'e');
  t.equal(await fx.run('DEL', 'k'), 1);
  t.equal(await fx.run('EXISTS', 'k'), 0);
  t.equal(await fx.run('DBSIZE'), 0);
});

t.test('DELCTX deletes what the context covers, nothing more', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v1');
  const [ctx1] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.run('SETCTX', 'k', ctx1, 'a');
  await fx.run('SETCTX', 'k', ctx1, 'b');
  t.same(await fx.run('GET', 'k'), ['a', 'b']);
  // A context read before "b" was written covers only "a".
  const obj = await fx.ks.readObject(Buffer.from('k'));
  t.equal(obj.siblings.length, 2);
  t.equal(await fx.run('DELCTX', 'k', ctx1), 0, 'ctx1 covers neither a nor b');
  t.same(await fx.run('GET', 'k'), ['a', 'b']);
  const [ctxAll] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.run('SETCTX', 'k', ctx1, 'c');
  t.same(await fx.run('GET', 'k'), ['a', 'b', 'c']);
  t.equal(await fx.run('DELCTX', 'k', ctxAll), 2, 'deletes a and b');
  t.equal(await fx.run('GET', 'k'), 'c', 'c was written after the context was read');
  const [ctxC] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  t.equal(await fx.run('DELCTX', 'k', ctxC), 1);
  t.equal(await fx.run('GET', 'k'), null);
  t.equal(await fx.run('DBSIZE'), 0);
});

t.test('bad tokens and arguments', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v');
  const [ctx] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  for (const bad of ['not base64!', '@@@', 'AAAA', ctx + 'x', 'A'.repeat(70_000)]) {
    const r = await fx.run('SETCTX', 'k', bad, 'v2');
    t.match(r, { error: /^ERR invalid context: / }, `SETCTX with ${bad.slice(0, 20)}`);
    t.match(await fx.run('DELCTX', 'k', bad), { error: /^ERR invalid context: / });
  }
  t.equal(await fx.run('GET', 'k'), 'v', 'nothing written');
  t.same(await fx.run('SETCTX', 'k', ctx, 'v', 'EX'), { error: 'ERR syntax error' });
  t.same(await fx.run('SETCTX', 'k', ctx, 'v', 'NX'), { error: 'ERR syntax error' });
  t.same(await fx.run('SETCTX', 'k', ctx, 'v', 'EX', '1', 'PX', '1'), { error: 'ERR syntax error' });
  t.same(await fx.run('SETCTX', 'k', ctx, 'v', 'EX', '0'), { error: "ERR invalid expire time in 'setctx' command" });
  t.same(await fx.run('SETCTX', 'k', ctx, 'v', 'PX', 'x'), { error: 'ERR value is not an integer or out of range' });
  t.equal(await fx.run('SETCTX', 'k', ctx, 'v', 'px', '2500'), 'OK');
  t.equal(await fx.run('PTTL', 'k'), 2500);
  t.same(await fx.run('SETCTX', 'k', ctx), { error: "ERR wrong number of arguments for 'setctx' command" });
});

t.test('conflict-policy lww: no siblings', async (t) => {
  const fx = await openFixture(t, { config: { 'conflict-policy': 'lww' } });
  await fx.run('SET', 'k', 'base');
  const [ctx] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  await fx.run('SETCTX', 'k', ctx, 'a');
  await fx.run('SETCTX', 'k', ctx, 'b');
  t.equal(await fx.run('GET', 'k'), 'b', 'the last write wins');
});

t.test('max-siblings bounds the siblings of a key', async (t) => {
  const fx = await openFixture(t, { config: { 'max-siblings': 3 } });
  await fx.run('SET', 'k', 'base');
  const [ctx] = (await fx.run('GETCTX', 'k')) as [string, string[]];
  for (let i = 0; i < 6; i++) {
    fx.clock.advance(1);
    await fx.run('SETCTX', 'k', ctx, `v${i}`);
  }
  t.same(await fx.run('GET', 'k'), ['v3', 'v4', 'v5'], 'the newest max-siblings are kept');
});
