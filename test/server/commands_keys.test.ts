// Generic key commands through their handlers on a real engine; error texts as redis-server 7.0.15.
import t from 'tap';
import { openFixture } from './keyspace_fixture.js';

const SYNTAX = { error: 'ERR syntax error' };
const NOT_INT = { error: 'ERR value is not an integer or out of range' };

t.test('DEL UNLINK EXISTS TYPE', async (t) => {
  const fx = await openFixture(t);
  await fx.run('MSET', 'a', '1', 'b', '2', 'c', '3');
  t.equal(await fx.run('EXISTS', 'a', 'a', 'b', 'nope'), 3, 'a repeated key counts twice');
  t.equal(await fx.run('TYPE', 'a'), 'string');
  t.equal(await fx.run('TYPE', 'nope'), 'none');
  t.equal(await fx.run('DEL', 'a', 'a', 'nope'), 1, 'a repeated key is deleted once');
  t.equal(await fx.run('UNLINK', 'b', 'c'), 2);
  t.equal(await fx.run('DEL', 'b'), 0);
  t.equal(await fx.run('EXISTS', 'a', 'b', 'c'), 0);
  t.equal(await fx.run('DBSIZE'), 0);
  t.equal(await fx.run('GET', 'a'), null);
  // The delete is a tombstone: the stored object remembers what it superseded.
  const obj = await fx.ks.readObject(Buffer.from('a'));
  t.equal(obj.siblings.length, 1);
  t.equal(obj.siblings[0]!.value, null, 'a tombstone sibling');
  t.ok(obj.clock.size >= 1, 'with the causal history');
  t.equal(await fx.run('SET', 'a', 'again'), 'OK');
  t.equal(await fx.run('GET', 'a'), 'again');
});

t.test('EXPIRE family: options, results, past times delete', async (t) => {
  const fx = await openFixture(t);
  const now = fx.clock.ms;
  t.equal(await fx.run('EXPIRE', 'nokey', '10'), 0);
  await fx.run('SET', 'k', 'v');
  t.equal(await fx.run('EXPIRE', 'k', '100'), 1);
  t.equal(await fx.run('TTL', 'k'), 100);
  t.equal(await fx.run('GET', 'k'), 'v', 'EXPIRE keeps the value');
  t.equal(await fx.run('PEXPIRE', 'k', '1500'), 1);
  t.equal(await fx.run('PTTL', 'k'), 1500);
  t.equal(await fx.run('EXPIREAT', 'k', String(Math.floor(now / 1000) + 60)), 1);
  t.equal(await fx.run('EXPIRETIME', 'k'), Math.floor(now / 1000) + 60);
  t.equal(await fx.run('PEXPIREAT', 'k', String(now + 12345)), 1);
  t.equal(await fx.run('PEXPIRETIME', 'k'), now + 12345);
  t.equal(await fx.run('PERSIST', 'k'), 1);
  t.equal(await fx.run('PERSIST', 'k'), 0, 'no TTL to remove');
  t.equal(await fx.run('PERSIST', 'nokey'), 0);
  t.equal(await fx.run('TTL', 'k'), -1);
  t.equal(await fx.run('EXPIRETIME', 'k'), -1);
  t.equal(await fx.run('PTTL', 'nokey'), -2);
  t.equal(await fx.run('PEXPIRETIME', 'nokey'), -2);

  // NX XX GT LT (Redis: no TTL counts as infinite for GT/LT).
  t.equal(await fx.run('EXPIRE', 'k', '100', 'XX'), 0, 'XX without a TTL');
  t.equal(await fx.run('EXPIRE', 'k', '100', 'GT'), 0, 'GT against infinite');
  t.equal(await fx.run('EXPIRE', 'k', '100', 'LT'), 1, 'LT against infinite');
  t.equal(await fx.run('EXPIRE', 'k', '200', 'NX'), 0, 'NX with a TTL');
  t.equal(await fx.run('EXPIRE', 'k', '200', 'XX'), 1);
  t.equal(await fx.run('EXPIRE', 'k', '100', 'GT'), 0);
  t.equal(await fx.run('EXPIRE', 'k', '300', 'gt'), 1);
  t.equal(await fx.run('EXPIRE', 'k', '400', 'LT'), 0);
  t.equal(await fx.run('EXPIRE', 'k', '50', 'LT'), 1);
  t.equal(await fx.run('TTL', 'k'), 50);
  t.equal(await fx.run('EXPIRE', 'k', '50', 'nx', 'nx'), 0, 'repeated options are fine');
  t.same(await fx.run('EXPIRE', 'k', '10', 'NX', 'XX'), { error: 'ERR NX and XX, GT or LT options at the same time are not compatible' });
  t.same(await fx.run('EXPIRE', 'k', '10', 'GT', 'LT'), { error: 'ERR GT and LT options at the same time are not compatible' });
  t.same(await fx.run('EXPIRE', 'k', '10', 'foo'), { error: 'ERR Unsupported option foo' });
  t.same(await fx.run('EXPIRE', 'nokey', 'abc', 'foo'), { error: 'ERR Unsupported option foo' }, 'options are checked before the time');
  t.same(await fx.run('EXPIRE', 'k', 'abc'), NOT_INT);
  t.same(await fx.run('EXPIRE', 'k', '9223372036854775807'), { error: "ERR invalid expire time in 'expire' command" });
  t.same(await fx.run('PEXPIRE', 'k', '9223372036854775807'), { error: "ERR invalid expire time in 'pexpire' command" });
  t.same(await fx.run('EXPIREAT', 'k', '9223372036854775807'), { error: "ERR invalid expire time in 'expireat' command" });
  t.equal(await fx.run('TTL', 'k'), 50, 'rejected commands changed nothing');
  t.equal(await fx.run('PEXPIREAT', 'k', '9223372036854775807'), 1, 'PEXPIREAT LLONG_MAX is accepted as in Redis');
  t.equal(await fx.run('GET', 'k'), 'v');

  t.equal(await fx.run('EXPIRE', 'k', '-1'), 1, 'a negative TTL deletes the key');
  t.equal(await fx.run('EXISTS', 'k'), 0);
  await fx.run('SET', 'k', 'v');
  t.equal(await fx.run('PEXPIREAT', 'k', String(now)), 1, 'an absolute time equal to now deletes');
  t.equal(await fx.run('GET', 'k'), null);
  await fx.run('SET', 'k', 'v');
  t.equal(await fx.run('EXPIRE', 'k', '0'), 1);
  t.equal(await fx.run('DBSIZE'), 0);
});

t.test('TTL expiry through the injected clock, counts follow', async (t) => {
  const fx = await openFixture(t);
  for (let i = 0; i < 10; i++) await fx.run('SET', `k${i}`, 'v', 'PX', String(100 * (i + 1)));
  await fx.run('SET', 'forever', 'v');
  t.same(await fx.ks.keyspaceInfo(), { keys: 11, expires: 10 });
  fx.clock.advance(450);
  t.same(await fx.ks.keyspaceInfo(), { keys: 7, expires: 6 });
  t.equal(await fx.run('DBSIZE'), 7);
  t.equal((await fx.run('KEYS', 'k*') as string[]).length, 6);
  await fx.run('PERSIST', 'k9');
  t.same(await fx.ks.keyspaceInfo(), { keys: 7, expires: 5 });
  fx.clock.advance(10_000);
  t.same(await fx.ks.keyspaceInfo(), { keys: 2, expires: 0 });
  t.same(((await fx.run('KEYS', '*')) as string[]).sort(), ['forever', 'k9']);
});

t.test('KEYS with patterns', async (t) => {
  const fx = await openFixture(t);
  await fx.run('MSET', 'hello', '1', 'hallo', '2', 'hxllo', '3', 'hllo', '4', 'heeeello', '5', '', '6');
  const keys = async (p: string) => ((await fx.run('KEYS', p)) as string[]).sort();
  t.same(await keys('h?llo'), ['hallo', 'hello', 'hxllo']);
  t.same(await keys('h*llo'), ['hallo', 'heeeello', 'hello', 'hllo', 'hxllo']);
  t.same(await keys('h[ae]llo'), ['hallo', 'hello']);
  t.same(await keys('h[^e]llo'), ['hallo', 'hxllo']);
  t.same(await keys('h[a-b]llo'), ['hallo']);
  t.same(await keys('*'), ['', 'hallo', 'heeeello', 'hello', 'hllo', 'hxllo'], '"*" includes the empty key as in Redis');
  t.same(await keys('nomatch*'), []);
});

t.test('SCAN: full iteration, MATCH, COUNT, TYPE, cursor errors', async (t) => {
  const fx = await openFixture(t);
  const all = Array.from({ length: 300 }, (_, i) => `key:${i}`);
  for (let i = 0; i < all.length; i += 50) await fx.run('MSET', ...all.slice(i, i + 50).flatMap((k) => [k, 'v']));
  await fx.run('SET', 'other', 'v');
  const scanAll = async (...opts: string[]) => {
    const seen: string[] = [];
    let cursor = '0';
    let calls = 0;
    do {
      const r = (await fx.run('SCAN', cursor, ...opts)) as [string, string[]];
      cursor = r[0];
      seen.push(...r[1]);
      calls++;
    } while (cursor !== '0' && calls < 10_000);
    return { seen, calls };
  };
  const everything = await scanAll();
  t.same(everything.seen.slice().sort(), [...all, 'other'].sort(), 'every key exactly once');
  t.ok(everything.calls > 10, `COUNT 10 by default takes many calls (${everything.calls})`);
  const big = await scanAll('COUNT', '1000');
  t.equal(big.calls, 1);
  const matched = await scanAll('MATCH', 'key:1?', 'COUNT', '50');
  t.same(matched.seen.sort(), Array.from({ length: 10 }, (_, i) => `key:1${i}`).sort());
  const typed = await scanAll('TYPE', 'string', 'COUNT', '100');
  t.equal(typed.seen.length, 301);
  const none = await scanAll('TYPE', 'hash', 'COUNT', '100');
  t.same(none.seen, [], 'other types match nothing');
  const star = await scanAll('MATCH', '*', 'COUNT', '100');
  t.equal(star.seen.length, 301);

  t.same(await fx.run('SCAN', 'abc'), { error: 'ERR invalid cursor' });
  t.same(await fx.run('SCAN', '18446744073709551616'), { error: 'ERR invalid cursor' });
  t.same(await fx.run('SCAN', ' 1'), { error: 'ERR invalid cursor' });
  t.same(await fx.run('SCAN', '0', 'COUNT', '0'), SYNTAX);
  t.same(await fx.run('SCAN', '0', 'COUNT', '-1'), SYNTAX);
  t.same(await fx.run('SCAN', '0', 'COUNT', 'abc'), NOT_INT);
  t.same(await fx.run('SCAN', '0', 'MATCH'), SYNTAX);
  t.same(await fx.run('SCAN', '0', 'foo', 'bar'), SYNTAX);
  t.same(await fx.run('SCAN', '18446744073709551615'), ['0', []], 'a cursor past the end: done');
  t.same(await fx.run('SCAN', '-1'), ['0', []], 'strtoul wraps -1 to the largest cursor');
});

t.test('SCAN keeps its guarantee while keys change between calls', async (t) => {
  const fx = await openFixture(t);
  const stable = Array.from({ length: 200 }, (_, i) => `stable:${i}`);
  await fx.run('MSET', ...stable.flatMap((k) => [k, 'v']));
  const seen = new Set<string>();
  let cursor = '0';
  let round = 0;
  do {
    const r = (await fx.run('SCAN', cursor, 'COUNT', '7')) as [string, string[]];
    cursor = r[0];
    for (const k of r[1]) seen.add(k);
    // Churn between calls: add and delete other keys all over the slot space.
    await fx.run('SET', `churn:${round}`, 'v');
    if (round > 3) await fx.run('DEL', `churn:${round - 3}`);
    round++;
  } while (cursor !== '0' && round < 10_000);
  for (const k of stable) t.ok(seen.has(k), k) || t.fail(`missed ${k}`);
  t.ok(round < 10_000, 'terminated');
});

t.test('SCAN groups keys sharing a long prefix without looping', async (t) => {
  const fx = await openFixture(t);
  // Same hash tag: one slot; same 6-byte prefix: one cursor group.
  const keys = Array.from({ length: 40 }, (_, i) => `{tag}:same-prefix:${i}`);
  await fx.run('MSET', ...keys.flatMap((k) => [k, 'v']));
  const r = (await fx.run('SCAN', '0', 'COUNT', '5')) as [string, string[]];
  t.equal(r[0], '0', 'the whole group in one reply, then done');
  t.equal(r[1].length, 40);
});

t.test('RANDOMKEY and DBSIZE', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('RANDOMKEY'), null);
  t.equal(await fx.run('DBSIZE'), 0);
  await fx.run('MSET', 'a', '1', 'b', '2', 'c', '3');
  const picks = new Set<string>();
  for (let i = 0; i < 60; i++) picks.add((await fx.run('RANDOMKEY')) as string);
  t.ok([...picks].every((k) => ['a', 'b', 'c'].includes(k)));
  t.ok(picks.size >= 2, `RANDOMKEY varies (${[...picks].join(',')})`);
  await fx.run('SET', 'x', 'v', 'PX', '10');
  fx.clock.advance(11);
  await fx.run('DEL', 'a', 'b', 'c');
  t.equal(await fx.run('RANDOMKEY'), null, 'expired and deleted keys are never returned');
  t.equal(await fx.run('DBSIZE'), 0);
});

t.test('FLUSHALL', async (t) => {
  const fx = await openFixture(t);
  await fx.run('MSET', ...Array.from({ length: 2500 }, (_, i) => [`k${i}`, 'v']).flat());
  await fx.run('SET', 't', 'v', 'EX', '100');
  t.same(await fx.ks.keyspaceInfo(), { keys: 2501, expires: 1 });
  t.same(await fx.run('FLUSHALL', 'foo'), SYNTAX);
  t.same(await fx.run('FLUSHALL', 'ASYNC', 'SYNC'), SYNTAX);
  t.equal(await fx.run('DBSIZE'), 2501);
  // Writes racing with FLUSHALL run before or after it, never half-way.
  const racing = Promise.all([fx.run('INCR', 'counter'), fx.run('FLUSHALL', 'SYNC'), fx.run('SET', 'after', 'v')]);
  const [, flushed] = await racing;
  t.equal(flushed, 'OK');
  const left = ((await fx.run('KEYS', '*')) as string[]).sort();
  t.ok(left.every((k) => k === 'after' || k === 'counter'), `only racing writes may survive: ${left.join(',')}`);
  t.equal(await fx.run('DBSIZE'), left.length, 'the count matches the data');
  t.equal(await fx.run('FLUSHALL', 'async'), 'OK');
  t.equal(await fx.run('DBSIZE'), 0);
  t.same(await fx.run('KEYS', '*'), []);
  t.same(await fx.ks.keyspaceInfo(), { keys: 0, expires: 0 });
});
