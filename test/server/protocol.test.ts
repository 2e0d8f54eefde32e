/**
 * Raw-socket protocol tests (../shared/TESTING.md "Bad input"): every malformed input gets the
 * exact `-ERR Protocol error: ...` reply real Redis 7 gives, that connection is closed, and a
 * client connected at the same time is still served. Where the case is Redis's, the same bytes
 * go to a live redis-server in the same test and the replies must be byte-identical (skipped
 * cleanly when redis-server is not installed). Where Redis silently resynchronises (CR-only
 * line ends, bulk data not followed by CRLF) ringkv does exactly what Redis does, so those
 * cases pin Redis's bytes too.
 */
import t, { type Test } from 'tap';
import type * as net from 'node:net';
import { startTarget, TARGET_KIND, type Target } from '../helpers/target.js';
import { startRedisServer, redisServerPath, type RedisServerHandle } from '../helpers/redis_server.js';
import { connectRaw, collect, exchange, respCommand, type Exchange } from '../helpers/raw_client.js';

const INLINE_BYTES_MAX = 64 * 1024;
const VALUE_BYTES_MAX = 1024 * 1024;
/** Redis's limits before AUTH: multibulk count 10, bulk length 16384. */
const UNAUTH_MULTIBULK_MAX = 10;
const UNAUTH_BULK_BYTES_MAX = 16 * 1024;
/** An untrusted length must not be allocated: RSS may not grow by this much after bad lengths. */
const RSS_GROWTH_BYTES_MAX = 64 * 1024 * 1024;

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
/** Silence after which a reply counts as complete (longer would only slow the suite). */
const QUIET_MS = 300;
const show = (buf: Buffer): string => JSON.stringify(buf.toString('latin1').slice(0, 200));

interface ProtocolCase {
  name: string;
  send: Buffer;
  /** Exact reply bytes (latin1), or a pattern for cases Redis leaves undefined. */
  reply: string | RegExp;
  closed: boolean;
  /** Redis 7 gives exactly the same bytes and close (checked against a live redis-server). */
  sameAsRedis: boolean;
}

const desyncPayload = b(('A'.repeat(1024) + '\n').repeat(70));

/** Protocol errors for an authenticated (or password-less) client. */
const CASES: ProtocolCase[] = [
  // Ignored by Redis: the connection stays usable, so a PING after it must be answered.
  { name: 'empty query', send: b('\r\nPING\r\n'), reply: '+PONG\r\n', closed: false, sameAsRedis: true },
  { name: 'blank inline line', send: b('   \r\nPING\r\n'), reply: '+PONG\r\n', closed: false, sameAsRedis: true },
  { name: '*-10 (negative multibulk length)', send: b('*-10\r\nPING\r\n'), reply: '+PONG\r\n', closed: false, sameAsRedis: true },
  { name: '*0', send: b('*0\r\nPING\r\n'), reply: '+PONG\r\n', closed: false, sameAsRedis: true },
  {
    name: '*3000000000 (out of range multibulk length)',
    send: b('*3000000000\r\n'),
    reply: '-ERR Protocol error: invalid multibulk length\r\n',
    closed: true,
    sameAsRedis: true,
  },
  { name: '*abc', send: b('*abc\r\n'), reply: '-ERR Protocol error: invalid multibulk length\r\n', closed: true, sameAsRedis: true },
  { name: '*+1', send: b('*+1\r\n$4\r\nPING\r\n'), reply: '-ERR Protocol error: invalid multibulk length\r\n', closed: true, sameAsRedis: true },
  { name: '* (empty count)', send: b('*\r\n'), reply: '-ERR Protocol error: invalid multibulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$-10 (negative bulk length)', send: b('*1\r\n$-10\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$2000000000', send: b('*1\r\n$2000000000\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$blabla', send: b('*1\r\n$blabla\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$+3 (signed length)', send: b('*1\r\n$+3\r\nfoo\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$03 (leading zero)', send: b('*1\r\n$03\r\nfoo\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$1e3 (exponent)', send: b('*1\r\n$1e3\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  { name: '$ (empty length)', send: b('*1\r\n$\r\n'), reply: '-ERR Protocol error: invalid bulk length\r\n', closed: true, sameAsRedis: true },
  {
    name: 'bulk over proto-max-bulk-len',
    send: b(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${VALUE_BYTES_MAX + 1}\r\n`),
    reply: '-ERR Protocol error: invalid bulk length\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'multibulk element that is not a bulk',
    send: b('*1\r\nfoo\r\n'),
    reply: "-ERR Protocol error: expected '$', got 'f'\r\n",
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'nested multibulk',
    send: b('*1\r\n*1\r\n'),
    reply: "-ERR Protocol error: expected '$', got '*'\r\n",
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'unbalanced double quote inline',
    send: b('SET "hello world\r\n'),
    reply: '-ERR Protocol error: unbalanced quotes in request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'unbalanced single quote inline',
    send: b("SET 'a\\' b\r\n"),
    reply: '-ERR Protocol error: unbalanced quotes in request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'closing quote not followed by a space',
    send: b('SET "a"b c\r\n'),
    reply: '-ERR Protocol error: unbalanced quotes in request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'inline request over 64 KB',
    send: b('x'.repeat(INLINE_BYTES_MAX + 4 * 1024)),
    reply: '-ERR Protocol error: too big inline request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'multibulk count line over 64 KB',
    send: b('*' + '1'.repeat(INLINE_BYTES_MAX + 4 * 1024)),
    reply: '-ERR Protocol error: too big mbulk count string\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'bulk count line over 64 KB',
    send: b('*1\r\n$' + '1'.repeat(INLINE_BYTES_MAX + 4 * 1024)),
    reply: '-ERR Protocol error: too big bulk count string\r\n',
    closed: true,
    sameAsRedis: true,
  },
  // Redis's "Protocol desync regression test" #1..#3: a NUL byte then a flood of lines.
  {
    name: 'NUL byte then a flood (desync #1)',
    send: Buffer.concat([b('\x00'), desyncPayload]),
    reply: '-ERR Protocol error: too big inline request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: '*NUL then a flood (desync #2)',
    send: Buffer.concat([b('*\x00'), desyncPayload]),
    reply: '-ERR Protocol error: too big mbulk count string\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: '$NUL then a flood (desync #3)',
    send: Buffer.concat([b('$\x00'), desyncPayload]),
    reply: '-ERR Protocol error: too big inline request\r\n',
    closed: true,
    sameAsRedis: true,
  },
  // Redis ends a header line at its first CR and then skips two bytes unchecked, and skips two
  // bytes after bulk data unchecked; ringkv's parser follows it byte for byte (src/resp/parser.ts).
  {
    name: 'bulk data not followed by CRLF',
    send: b('*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n'),
    reply: '+PONG\r\n+PONG\r\n',
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'bulk data followed by CR CR',
    send: b('*1\r\n$4\r\nPING\r\r*1\r\n$4\r\nPING\r\n'),
    reply: '+PONG\r\n+PONG\r\n',
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'CR-only line ending after a multibulk count',
    send: b('*1\r$4\r\nPING\r\n'),
    reply: "-ERR Protocol error: expected '$', got '4'\r\n",
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'CR-only line ending after a bulk length',
    send: b('*1\r\n$4\rXPING\r\n'),
    reply: '+PONG\r\n',
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'CR inside an inline line',
    send: b('PING\rPING\r\n'),
    reply: '$4\r\nPING\r\n',
    closed: false,
    sameAsRedis: true,
  },
];

/** Errors that are not protocol errors: the connection stays open. */
const COMMAND_ERROR_CASES: ProtocolCase[] = [
  {
    name: 'unknown command (inline)',
    send: b('nosuch a b\r\n'),
    reply: "-ERR unknown command 'nosuch', with args beginning with: 'a' 'b' \r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'unknown command (multibulk)',
    send: respCommand('FOOBAR', 'x'),
    reply: "-ERR unknown command 'FOOBAR', with args beginning with: 'x' \r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'empty command name',
    send: b('*1\r\n$0\r\n\r\n'),
    reply: "-ERR unknown command '', with args beginning with: \r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'wrong arity (get)',
    send: respCommand('get'),
    reply: "-ERR wrong number of arguments for 'get' command\r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'wrong arity (SET, inline)',
    send: b('SET onlykey\r\n'),
    reply: "-ERR wrong number of arguments for 'set' command\r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'wrong arity (CONFIG GET)',
    send: respCommand('CONFIG', 'GET'),
    reply: "-ERR wrong number of arguments for 'config|get' command\r\n",
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'inline quoting and escapes',
    send: b('ECHO "a\\x41\\n" \'b c\'\r\n'),
    reply: "-ERR wrong number of arguments for 'echo' command\r\n",
    closed: false,
    sameAsRedis: true,
  },
  { name: 'inline escapes decoded', send: b('ECHO "a\\x41\\n"\r\n'), reply: '$3\r\naA\n\r\n', closed: false, sameAsRedis: true },
  { name: 'LF-only inline line', send: b('PING\n'), reply: '+PONG\r\n', closed: false, sameAsRedis: true },
  {
    name: 'NUL bytes inside a bulk are data',
    send: respCommand('ECHO', b('a\x00b\r\nc')),
    reply: '$6\r\na\x00b\r\nc\r\n',
    closed: false,
    sameAsRedis: true,
  },
];

/** Before AUTH, on a node with requirepass: Redis's tighter limits. */
const UNAUTH_CASES: ProtocolCase[] = [
  {
    name: 'multibulk too long unauthenticated',
    send: b(`*${UNAUTH_MULTIBULK_MAX + 1}\r\n`),
    reply: '-ERR Protocol error: unauthenticated multibulk length\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'bulk too long unauthenticated',
    send: b(`*1\r\n$${UNAUTH_BULK_BYTES_MAX + 1}\r\n`),
    reply: '-ERR Protocol error: unauthenticated bulk length\r\n',
    closed: true,
    sameAsRedis: true,
  },
  {
    name: 'command before AUTH',
    send: respCommand('GET', 'a'),
    reply: '-NOAUTH Authentication required.\r\n',
    closed: false,
    sameAsRedis: true,
  },
  {
    name: 'within the unauthenticated limits',
    send: b(`*${UNAUTH_MULTIBULK_MAX}\r\n`),
    reply: '',
    closed: false,
    sameAsRedis: true,
  },
];

/** Sends a case on a fresh connection while another connection waits; checks both. */
async function runCase(t: Test, port: number, c: ProtocolCase, other: net.Socket): Promise<Exchange> {
  const got = await exchange(port, c.send, { quietMs: QUIET_MS, maxWaitMs: 8_000, minBytes: c.reply === '' ? 0 : 1, expectClose: c.closed });
  if (typeof c.reply === 'string') t.equal(got.data.toString('latin1'), c.reply, `${c.name}: exact reply`);
  else t.match(got.data.toString('latin1'), c.reply, `${c.name}: reply ${show(got.data)}`);
  t.equal(got.closed, c.closed, `${c.name}: connection ${c.closed ? 'closed' : 'kept open'}`);
  const served = collect(other, { quietMs: 50, maxWaitMs: 3_000 });
  other.write('PING\r\n');
  const pong = await served;
  t.equal(pong.data.toString('latin1'), '+PONG\r\n', `${c.name}: a concurrent client is still served`);
  return got;
}

/** The same case against the reference, started concurrently with ours to save wall time. */
function referenceExchange(redis: RedisServerHandle | undefined, c: ProtocolCase): Promise<Exchange> | undefined {
  if (!redis || !c.sameAsRedis) return undefined;
  return exchange(redis.port, c.send, { quietMs: QUIET_MS, maxWaitMs: 8_000, minBytes: c.reply === '' ? 0 : 1, expectClose: c.closed });
}

function compareWithRedis(t: Test, ref: Exchange, c: ProtocolCase, ours: Exchange): void {
  t.equal(show(ours.data), show(ref.data), `${c.name}: same bytes as redis-server`);
  t.equal(ours.closed, ref.closed, `${c.name}: same close as redis-server`);
}

async function openOther(t: Test, port: number, auth?: string): Promise<net.Socket> {
  const s = await connectRaw(port);
  s.on('error', () => undefined);
  t.teardown(() => {
    s.destroy();
  });
  if (auth !== undefined) {
    const r = collect(s, { quietMs: 50 });
    s.write(respCommand('AUTH', auth));
    t.equal((await r).data.toString(), '+OK\r\n');
  }
  return s;
}

async function maybeRedis(t: Test, extraArgs: string[]): Promise<RedisServerHandle | undefined> {
  if (!redisServerPath()) return undefined;
  return startRedisServer(t, extraArgs);
}

const noRedis = redisServerPath() ? false : 'redis-server not installed: no comparison with Redis';

t.test('bad input without a password', async (t) => {
  const target: Target = await startTarget(t, {
    config: TARGET_KIND === 'redis-server' ? { 'proto-max-bulk-len': VALUE_BYTES_MAX } : {},
  });
  const redis = await maybeRedis(t, ['--proto-max-bulk-len', String(VALUE_BYTES_MAX)]);
  const other = await openOther(t, target.port);
  const rssBefore = target.rssBytes();
  for (const c of [...CASES, ...COMMAND_ERROR_CASES]) {
    const skip = !c.sameAsRedis && TARGET_KIND === 'redis-server' ? 'Redis has no defined reply' : false;
    await t.test(c.name, { skip }, async (t) => {
      const ref = referenceExchange(redis, c);
      const ours = await runCase(t, target.port, c, other);
      if (c.sameAsRedis) {
        await t.test('same as redis-server', { skip: noRedis }, async (t) => compareWithRedis(t, (await ref)!, c, ours));
      }
    });
  }
  await t.test('no allocation sized by an untrusted length', async (t) => {
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connectRaw(target.port)));
    for (const s of sockets) {
      s.on('error', () => undefined);
      // Valid lengths just under the limits, promised but never sent.
      s.write(`*1000000\r\n$${VALUE_BYTES_MAX}\r\n`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const grown = target.rssBytes() - rssBefore;
    t.ok(grown < RSS_GROWTH_BYTES_MAX, `RSS grew ${grown} bytes after promised lengths`);
    for (const s of sockets) s.destroy();
  });
});

t.test('bad input before AUTH (requirepass)', async (t) => {
  const password = 'pw';
  const target = await startTarget(t, { config: { requirepass: password } });
  const redis = await maybeRedis(t, ['--requirepass', password]);
  const other = await openOther(t, target.port, password);
  for (const c of UNAUTH_CASES) {
    await t.test(c.name, async (t) => {
      const ref = referenceExchange(redis, c);
      const ours = await runCase(t, target.port, c, other);
      await t.test('same as redis-server', { skip: noRedis }, async (t) => compareWithRedis(t, (await ref)!, c, ours));
    });
  }
  await t.test('limits lift after AUTH', async (t) => {
    const big = Buffer.alloc(UNAUTH_BULK_BYTES_MAX * 4, 0x61);
    const got = await exchange(target.port, Buffer.concat([respCommand('AUTH', password), respCommand('ECHO', big)]), {
      minBytes: 5 + big.length,
      quietMs: 300,
    });
    t.equal(got.data.length, 5 + `$${big.length}\r\n`.length + big.length + 2);
    t.ok(got.data.subarray(0, 5).equals(b('+OK\r\n')));
    t.equal(got.closed, false);
  });
});

t.test('RESP3 replies after HELLO 3', async (t) => {
  const target = await startTarget(t);
  const send = Buffer.concat([
    respCommand('HELLO', '3'),
    respCommand('GET', 'resp3:none'),
    respCommand('SET', 'resp3:k', 'v'),
    respCommand('MGET', 'resp3:k', 'resp3:none'),
    respCommand('CONFIG', 'GET', 'maxclients'),
    respCommand('EXISTS', 'resp3:k'),
    respCommand('HELLO', '2'),
    respCommand('GET', 'resp3:none'),
  ]);
  const got = await exchange(target.port, send, { quietMs: 400 });
  const text = got.data.toString('latin1');
  t.match(
    text,
    /^%7\r\n\$6\r\nserver\r\n\$\d+\r\n[^\r]+\r\n\$7\r\nversion\r\n\$\d+\r\n[^\r]+\r\n\$5\r\nproto\r\n:3\r\n\$2\r\nid\r\n:\d+\r\n\$4\r\nmode\r\n\$10\r\nstandalone\r\n\$4\r\nrole\r\n\$6\r\nmaster\r\n\$7\r\nmodules\r\n\*0\r\n/,
    'HELLO 3 map',
  );
  const after = text.replace(/^%7\r\n(?:[^\r]*\r\n){24}\*0\r\n/, '');
  t.match(
    after,
    /^_\r\n\+OK\r\n\*2\r\n\$1\r\nv\r\n_\r\n%1\r\n\$10\r\nmaxclients\r\n\$5\r\n10000\r\n:1\r\n\*14\r\n(?:[^\r]*\r\n){25}\$-1\r\n$/,
    'RESP3 null, map; then RESP2 again after HELLO 2',
  );
  const bad = await exchange(target.port, respCommand('HELLO', '4'));
  t.equal(bad.data.toString(), '-NOPROTO unsupported protocol version\r\n');
});
