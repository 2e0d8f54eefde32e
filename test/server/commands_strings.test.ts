// String commands through their handlers on a real engine: every option and error text, with
// expected replies taken from redis-server 7.0.15 where Redis has the case.
import t from 'tap';
import { openFixture } from './keyspace_fixture.js';

const SYNTAX = { error: 'ERR syntax error' };
const NOT_INT = { error: 'ERR value is not an integer or out of range' };
const badExpire = (cmd: string) => ({ error: `ERR invalid expire time in '${cmd}' command` });

t.test('GET / SET basics and binary safety', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('GET', 'k'), null);
  t.equal(await fx.run('SET', 'k', 'v'), 'OK');
  t.equal(await fx.run('GET', 'k'), 'v');
  const bin = Buffer.from([0, 1, 2, 0xff, 13, 10, 0]);
  t.equal(await fx.run('SET', bin, bin), 'OK');
  t.equal(await fx.run('GET', bin), bin.toString('latin1'));
  t.equal(await fx.run('SET', 'empty', ''), 'OK');
  t.equal(await fx.run('GET', 'empty'), '');
  t.equal(await fx.run('STRLEN', 'empty'), 0);
  t.same(await fx.run('GET'), { error: "ERR wrong number of arguments for 'get' command" });
});

t.test('SET options: NX XX GET KEEPTTL and syntax rules', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('SET', 'k', 'a', 'NX'), 'OK');
  t.equal(await fx.run('SET', 'k', 'b', 'NX'), null, 'NX on existing key: nil');
  t.equal(await fx.run('GET', 'k'), 'a');
  t.equal(await fx.run('SET', 'k', 'b', 'XX'), 'OK');
  t.equal(await fx.run('SET', 'nokey', 'b', 'XX'), null, 'XX on missing key: nil');
  t.equal(await fx.run('EXISTS', 'nokey'), 0);
  t.equal(await fx.run('SET', 'k', 'c', 'GET'), 'b', 'GET returns the old value');
  t.equal(await fx.run('SET', 'new', 'x', 'GET'), null);
  t.equal(await fx.run('GET', 'new'), 'x');
  t.equal(await fx.run('SET', 'k', 'd', 'NX', 'GET'), 'c', 'NX GET on existing: old value, no write');
  t.equal(await fx.run('GET', 'k'), 'c');
  t.equal(await fx.run('SET', 'k', 'e', 'xx', 'get'), 'c', 'options are case-insensitive');
  t.equal(await fx.run('SET', 'k', 'v', 'ex', '10', 'ex', '20'), 'OK', 'a repeated EX is accepted (the last wins)');
  t.equal(await fx.run('TTL', 'k'), 20);
  t.equal(await fx.run('SET', 'k', 'v', 'xx', 'xx'), 'OK');
  for (const bad of [
    ['NX', 'XX'],
    ['XX', 'NX'],
    ['EX', '10', 'PX', '10'],
    ['KEEPTTL', 'EX', '10'],
    ['EX', '10', 'KEEPTTL'],
    ['EX'],
    ['foo'],
    ['PERSIST'],
    ['PXAT', '1', 'EXAT', '1'],
  ]) {
    t.same(await fx.run('SET', 'k', 'v', ...bad), SYNTAX, `SET k v ${bad.join(' ')}`);
  }
});

t.test('SET expiry: EX PX EXAT PXAT KEEPTTL, invalid times', async (t) => {
  const fx = await openFixture(t);
  const now = fx.clock.ms;
  t.equal(await fx.run('SET', 'k', 'v', 'EX', '100'), 'OK');
  t.equal(await fx.run('TTL', 'k'), 100);
  t.equal(await fx.run('PTTL', 'k'), 100_000);
  t.equal(await fx.run('SET', 'k', 'v', 'PX', '1500'), 'OK');
  t.equal(await fx.run('PTTL', 'k'), 1500);
  t.equal(await fx.run('TTL', 'k'), 2, 'TTL rounds to the nearest second as Redis does');
  t.equal(await fx.run('SET', 'k', 'v', 'EXAT', String(Math.floor(now / 1000) + 50)), 'OK');
  t.equal(await fx.run('EXPIRETIME', 'k'), Math.floor(now / 1000) + 50);
  t.equal(await fx.run('SET', 'k', 'v', 'PXAT', String(now + 7000)), 'OK');
  t.equal(await fx.run('PEXPIRETIME', 'k'), now + 7000);
  t.equal(await fx.run('SET', 'k', 'w', 'KEEPTTL'), 'OK');
  t.equal(await fx.run('PTTL', 'k'), 7000, 'KEEPTTL keeps the expiry');
  t.equal(await fx.run('SET', 'k', 'x'), 'OK');
  t.equal(await fx.run('TTL', 'k'), -1, 'plain SET clears the TTL');
  t.equal(await fx.run('SET', 'k2', 'v', 'KEEPTTL'), 'OK', 'KEEPTTL on a new key');
  t.equal(await fx.run('TTL', 'k2'), -1);
  for (const [opt, val] of [['EX', '0'], ['EX', '-1'], ['PX', '0'], ['EXAT', '0'], ['PXAT', '-5'], ['EX', '9223372036854775807'], ['PX', '9223372036854775807'], ['EX', '9223372036854776']]) {
    t.same(await fx.run('SET', 'k', 'v', opt!, val!), badExpire('set'), `SET ${opt} ${val}`);
  }
  t.same(await fx.run('SET', 'k', 'v', 'EX', 'abc'), NOT_INT);
  t.same(await fx.run('SET', 'k', 'v', 'EX', '1.5'), NOT_INT);
  t.equal(await fx.run('GET', 'k'), 'x', 'rejected SETs changed nothing');
  t.equal(await fx.run('SET', 'far', 'v', 'EXAT', '9223372036854775'), 'OK', 'a huge absolute time is accepted as Redis does');
  t.equal(await fx.run('GET', 'far'), 'v');
  t.equal(await fx.run('SET', 'past', 'v', 'PXAT', String(now - 1)), 'OK');
  t.equal(await fx.run('GET', 'past'), null, 'an expiry in the past: the key is gone');
});

t.test('expiry with an injected clock', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v', 'PX', '1000');
  await fx.run('SET', 'keep', 'v');
  t.equal(await fx.run('DBSIZE'), 2);
  fx.clock.advance(1000);
  t.equal(await fx.run('GET', 'k'), 'v', 'live while now <= expiry');
  t.equal(await fx.run('PTTL', 'k'), 0);
  fx.clock.advance(1);
  t.equal(await fx.run('GET', 'k'), null, 'gone once now > expiry');
  t.equal(await fx.run('TTL', 'k'), -2);
  t.equal(await fx.run('EXISTS', 'k'), 0);
  t.equal(await fx.run('DBSIZE'), 1, 'the maintained count follows expiry');
  t.same(await fx.run('KEYS', '*'), ['keep']);
  t.equal(await fx.run('SET', 'k', 'again', 'NX'), 'OK', 'NX sees the expired key as absent');
  t.equal(await fx.run('DBSIZE'), 2);
});

t.test('SETNX SETEX PSETEX', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('SETNX', 'k', 'a'), 1);
  t.equal(await fx.run('SETNX', 'k', 'b'), 0);
  t.equal(await fx.run('GET', 'k'), 'a');
  t.equal(await fx.run('SETEX', 'k', '10', 'v'), 'OK');
  t.equal(await fx.run('TTL', 'k'), 10);
  t.equal(await fx.run('GET', 'k'), 'v');
  t.equal(await fx.run('PSETEX', 'k', '2500', 'w'), 'OK');
  t.equal(await fx.run('PTTL', 'k'), 2500);
  t.same(await fx.run('SETEX', 'k', '0', 'v'), badExpire('setex'));
  t.same(await fx.run('SETEX', 'k', '-5', 'v'), badExpire('setex'));
  t.same(await fx.run('SETEX', 'k', 'abc', 'v'), NOT_INT);
  t.same(await fx.run('PSETEX', 'k', '0', 'v'), badExpire('psetex'));
  t.same(await fx.run('SETEX', 'k', '10'), { error: "ERR wrong number of arguments for 'setex' command" });
});

t.test('GETDEL and GETEX', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'k', 'v');
  t.equal(await fx.run('GETDEL', 'k'), 'v');
  t.equal(await fx.run('GET', 'k'), null);
  t.equal(await fx.run('GETDEL', 'k'), null);
  t.equal(await fx.run('DBSIZE'), 0);

  await fx.run('SET', 'k', 'v');
  t.equal(await fx.run('GETEX', 'k'), 'v');
  t.equal(await fx.run('GETEX', 'k', 'EX', '100'), 'v');
  t.equal(await fx.run('TTL', 'k'), 100);
  t.equal(await fx.run('GETEX', 'k', 'PX', '5000'), 'v');
  t.equal(await fx.run('PTTL', 'k'), 5000);
  t.equal(await fx.run('GETEX', 'k', 'EXAT', String(Math.floor(fx.clock.ms / 1000) + 30)), 'v');
  t.equal(await fx.run('GETEX', 'k', 'PXAT', String(fx.clock.ms + 9000)), 'v');
  t.equal(await fx.run('PTTL', 'k'), 9000);
  t.equal(await fx.run('GETEX', 'k', 'PERSIST'), 'v');
  t.equal(await fx.run('TTL', 'k'), -1);
  t.equal(await fx.run('GETEX', 'k', 'persist', 'persist'), 'v', 'a repeated PERSIST is accepted');
  t.equal(await fx.run('GETEX', 'k', 'PXAT', String(fx.clock.ms - 1)), 'v', 'a past absolute time returns the value...');
  t.equal(await fx.run('GET', 'k'), null, '...and deletes the key');
  t.equal(await fx.run('GETEX', 'nokey', 'EX', '0'), null, 'a missing key answers nil before the time is checked');
  await fx.run('SET', 'k', 'v');
  t.same(await fx.run('GETEX', 'k', 'EX', '0'), badExpire('getex'));
  t.same(await fx.run('GETEX', 'k', 'EX', 'abc'), NOT_INT);
  for (const bad of [['PERSIST', 'EX', '10'], ['foo'], ['EX'], ['EX', '10', 'PX', '10'], ['NX'], ['GET'], ['KEEPTTL']]) {
    t.same(await fx.run('GETEX', 'k', ...bad), SYNTAX, `GETEX k ${bad.join(' ')}`);
  }
});

t.test('MGET MSET MSETNX', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('MSET', 'a', '1', 'b', '2', 'a', '3'), 'OK');
  t.same(await fx.run('MGET', 'a', 'b', 'c', 'a'), ['3', '2', null, '3'], 'the last occurrence of a repeated key wins');
  t.equal(await fx.run('DBSIZE'), 2);
  t.same(await fx.run('MSET', 'a', '1', 'b'), { error: "ERR wrong number of arguments for 'mset' command" });
  t.same(await fx.run('MSET', 'a'), { error: "ERR wrong number of arguments for 'mset' command" });
  t.equal(await fx.run('MSETNX', 'x', '1', 'a', '9'), 0, 'one existing key: nothing set');
  t.equal(await fx.run('EXISTS', 'x'), 0);
  t.equal(await fx.run('MSETNX', 'x', '1', 'y', '2'), 1);
  t.same(await fx.run('MGET', 'x', 'y'), ['1', '2']);
  await fx.run('SET', 't', 'v', 'EX', '100');
  await fx.run('MSET', 't', 'w');
  t.equal(await fx.run('TTL', 't'), -1, 'MSET clears TTLs like SET');
});

t.test('STRLEN and APPEND', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('STRLEN', 'k'), 0);
  t.equal(await fx.run('APPEND', 'k', 'Hello'), 5);
  t.equal(await fx.run('APPEND', 'k', ' World'), 11);
  t.equal(await fx.run('GET', 'k'), 'Hello World');
  t.equal(await fx.run('STRLEN', 'k'), 11);
  await fx.run('SET', 't', 'a', 'EX', '100');
  t.equal(await fx.run('APPEND', 't', 'b'), 2);
  t.equal(await fx.run('TTL', 't'), 100, 'APPEND keeps the TTL');
});

t.test('INCR family: values, parsing, overflow, TTL', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('INCR', 'n'), 1);
  t.equal(await fx.run('INCRBY', 'n', '41'), 42);
  t.equal(await fx.run('DECR', 'n'), 41);
  t.equal(await fx.run('DECRBY', 'n', '50'), -9);
  t.equal(await fx.run('GET', 'n'), '-9');
  t.equal(await fx.run('INCRBY', 'n', '-1'), -10);
  t.equal(await fx.run('DECRBY', 'n', '-10'), 0);
  await fx.run('SET', 'max', '9223372036854775807');
  t.same(await fx.run('INCR', 'max'), { error: 'ERR increment or decrement would overflow' });
  t.same(await fx.run('DECRBY', 'max', '-9223372036854775808'), { error: 'ERR decrement would overflow' });
  t.equal(await fx.run('DECR', 'max'), 9223372036854775806n);
  await fx.run('SET', 'min', '-9223372036854775808');
  t.same(await fx.run('DECR', 'min'), { error: 'ERR increment or decrement would overflow' });
  t.same(await fx.run('INCRBY', 'min', '-9223372036854775808'), { error: 'ERR increment or decrement would overflow' });
  t.equal(await fx.run('INCRBY', 'min', '9223372036854775807'), -1);
  t.same(await fx.run('DECRBY', 'n', '9223372036854775808'), NOT_INT, 'increment out of range');
  t.same(await fx.run('INCRBY', 'n', '1.5'), NOT_INT);
  t.same(await fx.run('INCRBY', 'n', '+5'), NOT_INT);
  t.same(await fx.run('INCRBY', 'n', '-0'), NOT_INT);
  for (const bad of ['01', ' 1', '+1', '-0', '', '1 ', 'abc', '1e3', '99999999999999999999']) {
    await fx.run('SET', 'z', bad);
    t.same(await fx.run('INCR', 'z'), NOT_INT, `INCR on ${JSON.stringify(bad)}`);
    t.equal(await fx.run('GET', 'z'), bad, 'value unchanged');
  }
  await fx.run('SET', 'z', '0');
  t.equal(await fx.run('INCR', 'z'), 1);
  await fx.run('SET', 'ttl', '5', 'EX', '100');
  t.equal(await fx.run('INCR', 'ttl'), 6);
  t.equal(await fx.run('TTL', 'ttl'), 100, 'INCR keeps the TTL');
});

t.test('100 concurrent INCRs on one key give +100; other keys are not serialized behind it', async (t) => {
  const fx = await openFixture(t);
  await fx.run('SET', 'c', '1000');
  const replies = await Promise.all(Array.from({ length: 100 }, () => fx.run('INCR', 'c')));
  t.equal(await fx.run('GET', 'c'), '1100');
  const sorted = (replies as number[]).slice().sort((a, b) => a - b);
  t.same(sorted, Array.from({ length: 100 }, (_, i) => 1001 + i), 'every INCR saw a distinct value');
  const mixed = await Promise.all([
    ...Array.from({ length: 50 }, (_, i) => fx.run('INCRBY', `k${i % 5}`, '2')),
    ...Array.from({ length: 50 }, () => fx.run('APPEND', 'log', 'x')),
  ]);
  t.equal(mixed.length, 100);
  for (let i = 0; i < 5; i++) t.equal(await fx.run('GET', `k${i}`), '20');
  t.equal(await fx.run('STRLEN', 'log'), 50);
  t.equal(fx.ks.lockedKeys, 0, 'no lock left behind');
});

t.test('size limits: TOOLARGE', async (t) => {
  const fx = await openFixture(t, { config: { 'max-key-bytes': 16, 'max-value-bytes': 32 } });
  const r = await fx.run('SET', 'k'.repeat(17), 'v');
  t.match(r, { error: /^TOOLARGE key is 17 bytes, over max-key-bytes \(16\)/ });
  t.match(await fx.run('SET', 'k', 'v'.repeat(33)), { error: /^TOOLARGE value is 33 bytes, over max-value-bytes \(32\)/ });
  t.equal(await fx.run('SET', 'k', 'v'.repeat(32)), 'OK');
  t.match(await fx.run('APPEND', 'k', 'x'), { error: /^TOOLARGE value is 33 bytes/ });
  t.equal(await fx.run('STRLEN', 'k'), 32);
  t.match(await fx.run('MSET', 'a', '1', 'b', 'v'.repeat(40)), { error: /^TOOLARGE/ });
  t.equal(await fx.run('EXISTS', 'a'), 0, 'MSET with one oversized value sets nothing');
  t.equal(await fx.run('GET', 'k'.repeat(17)), null, 'reads of long keys just miss');
  fx.config.values['max-value-bytes'] = 64;
  t.equal(await fx.run('APPEND', 'k', 'x'), 33, 'the limit is read at run time');
});

t.test('GETRANGE SUBSTR SETRANGE GETSET (redis-server 7.0.15 replies)', async (t) => {
  const fx = await openFixture(t, { config: { 'max-value-bytes': 1000 } });
  await fx.run('SET', 's', 'Hello');
  const cases: [string, string, string][] = [['0', '3', 'Hell'], ['-3', '-1', 'llo'], ['0', '-1', 'Hello'], ['10', '100', ''], ['-1', '-5', ''], ['-100', '2', 'Hel']];
  for (const [a, b, want] of cases) t.equal(await fx.run('GETRANGE', 's', a, b), want, `GETRANGE s ${a} ${b}`);
  t.equal(await fx.run('SUBSTR', 's', '1', '1'), 'e');
  t.equal(await fx.run('GETRANGE', 'nokey', '0', '1'), '');
  t.same(await fx.run('GETRANGE', 's', 'a', '1'), NOT_INT);
  t.equal(await fx.run('SETRANGE', 's', '6', 'World'), 11);
  t.equal(await fx.run('GET', 's'), 'Hello\0World', 'zero padded');
  t.equal(await fx.run('SETRANGE', 'new', '5', 'x'), 6);
  t.equal(await fx.run('GET', 'new'), '\0\0\0\0\0x');
  t.equal(await fx.run('SETRANGE', 'new2', '3', ''), 0);
  t.equal(await fx.run('EXISTS', 'new2'), 0, 'an empty patch on a missing key creates nothing');
  t.equal(await fx.run('SETRANGE', 's', '0', ''), 11);
  t.same(await fx.run('SETRANGE', 's', '-1', 'x'), { error: 'ERR offset is out of range' });
  t.match(await fx.run('SETRANGE', 's', '536870912', 'x'), { error: /^TOOLARGE value is 536870913 bytes/ }, 'checked before allocating');
  await fx.run('SET', 't', 'abc', 'EX', '100');
  t.equal(await fx.run('SETRANGE', 't', '1', 'X'), 3);
  t.equal(await fx.run('GET', 't'), 'aXc');
  t.equal(await fx.run('TTL', 't'), 100, 'SETRANGE keeps the TTL');
  t.equal(await fx.run('GETSET', 't', 'new'), 'aXc');
  t.equal(await fx.run('TTL', 't'), -1, 'GETSET clears the TTL');
  t.equal(await fx.run('GETSET', 'fresh', 'v'), null);
  t.equal(await fx.run('TOUCH', 't', 't', 'nokey'), 2);
  t.equal(await fx.run('FLUSHDB'), 'OK');
  t.same(await fx.run('FLUSHDB', 'x'), SYNTAX);
  t.equal(await fx.run('DBSIZE'), 0);
});
