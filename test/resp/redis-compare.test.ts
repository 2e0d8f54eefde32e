/**
 * The codec against a real redis-server, byte for byte. Each input goes to Redis on a fresh
 * connection; the same input goes through our RequestParser, the commands it yields are
 * answered by a tiny PING/ECHO model through our encoder (and a protocol error by its reply),
 * and the bytes, and whether the connection closes, must match what Redis sent.
 * Also: double replies (ZSCORE) in RESP2 and RESP3 against our %.17g, and every reply kind that
 * Redis can be made to send (via EVAL) against our encoder.
 * Skipped when redis-server is not installed.
 */
import t from 'tap';
import fc from 'fast-check';
import type * as net from 'node:net';
import { redisServerPath, startRedisServer } from '../helpers/redis_server.js';
import { connectRaw, collect, exchange, respCommand } from '../helpers/raw_client.js';
import { RequestParser, ProtocolError, DEFAULT_PARSER_LIMITS, UNAUTHENTICATED_LIMITS, type ParserLimits } from '../../src/resp/parser.js';
import { ReplyBuffer, encodeReply } from '../../src/resp/encoder.js';
import * as R from '../../src/resp/reply.js';
import type { Reply } from '../../src/resp/reply.js';

/** Redis's default proto-max-bulk-len and limits, as our parser is configured for the comparison. */
const REDIS_LIMITS: ParserLimits = DEFAULT_PARSER_LIMITS;
/** How long to wait for more bytes once the expected ones arrived (or for nothing, if none). */
const QUIET_MS = 400;

interface Expected {
  data: Buffer;
  closed: boolean;
}

/** What a server built on our codec answers, for inputs that only use PING and ECHO. */
function ours(input: Buffer, limits: ParserLimits): Expected {
  const parser = new RequestParser(limits);
  const out = new ReplyBuffer(2);
  parser.feed(input);
  try {
    for (let cmd = parser.next(); cmd !== undefined; cmd = parser.next()) {
      const name = cmd[0]!.toString('latin1').toLowerCase();
      if (name === 'ping' && cmd.length === 1) out.push(R.simple('PONG'));
      else if (name === 'ping' && cmd.length === 2) out.push(R.bulk(cmd[1]!));
      else if (name === 'echo' && cmd.length === 2) out.push(R.bulk(cmd[1]!));
      else throw new Error(`test input uses a command the model does not answer: ${name}`);
    }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    const taken = out.take();
    return { data: Buffer.concat([...(Array.isArray(taken) ? taken : [taken]), err.reply]), closed: true };
  }
  const taken = out.take();
  return { data: Array.isArray(taken) ? Buffer.concat(taken) : taken, closed: false };
}

const PING = '*1\r\n$4\r\nPING\r\n';
const ECHO = (s: string): string => `*2\r\n$4\r\nECHO\r\n$${Buffer.byteLength(s, 'latin1')}\r\n${s}\r\n`;

/** Inputs from ../shared/TESTING.md "Bad input" and Redis's tests/unit/protocol.tcl, and more. */
const INPUTS: Array<[string, string]> = [
  ['empty query', '\r\n' + PING],
  ['negative multibulk length', '*-10\r\n' + PING],
  ['*0', '*0\r\n' + PING],
  ['*-1', '*-1\r\n' + PING],
  ['out of range multibulk length', '*3000000000\r\n'],
  ['wrong multibulk payload header', '*3\r\n$4\r\nECHO\r\n$1\r\nx\r\nfooz\r\n'],
  ['negative multibulk payload length', '*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$-10\r\n'],
  ['out of range multibulk payload length', '*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$2000000000\r\n'],
  ['non-number multibulk payload length', '*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$blabla\r\n'],
  ['multibulk not followed by bulk arguments', '*1\r\nfoo\r\n'],
  ['unbalanced quotes', 'echo """test-key""" test-value\r\nping\r\n'],
  ['$+3', '*2\r\n$4\r\nECHO\r\n$+3\r\nfoo\r\n'],
  ['$03', '*2\r\n$4\r\nECHO\r\n$03\r\nfoo\r\n'],
  ['$1e3', '*2\r\n$4\r\nECHO\r\n$1e3\r\n'],
  ['$-0', '*2\r\n$4\r\nECHO\r\n$-0\r\n'],
  ['*+1', '*+1\r\n' + PING],
  ['*01', '*01\r\n' + PING],
  ['*-0', '*-0\r\n'],
  ['*-9223372036854775809', '*-9223372036854775809\r\n'],
  ['*-9223372036854775808 no-op', '*-9223372036854775808\r\n' + PING],
  ['$536870913 over proto-max-bulk-len', '*2\r\n$4\r\nECHO\r\n$536870913\r\n'],
  ['CR-only after the count', '*1\r$4\r\nPING\r\n'],
  ['CR-only inline', 'PING\rPING\r\n'],
  ['CR CR LF inline', 'PING\r\r\n' + PING],
  ['CR where $ belongs', '*2\r\n\r\n'],
  ['high byte where $ belongs', '*2\r\n$4\r\nECHO\r\n\xe9\r\n'],
  ['bulk data not followed by CRLF', '*2\r\n$4\r\nECHO\r\n$2\r\nabXY' + PING],
  ['bulk data followed by CR CR', '*1\r\n$4\r\nPING\r\r' + PING],
  ['NUL inside bulk', ECHO('a\0b')],
  ['binary bulk', ECHO('\0\r\n\xff\xfe$*\r\n')],
  ['NUL in inline hides the newline', 'ECHO a\0b\r\n' + PING],
  ['NUL after * hides the CR', '*\0\r\n' + PING],
  ['NUL after $ hides the CR', '*2\r\n$4\r\nECHO\r\n$\0\r\n' + PING],
  ['inline escapes', 'ECHO "a\\x41\\n\\r\\t\\b\\a\\\\\\"\\q"\r\n'],
  ['inline single quotes', "ECHO 'it\\'s \\n'\r\n"],
  ['inline empty arg', 'ECHO ""\r\n'],
  ['inline quote mid-token', 'ECHO ab"c d"\r\n'],
  ['inline closing quote then char', 'ECHO "ab"c\r\n'],
  ['inline \\v inside a token', 'ECHO a\x0bb\r\n'],
  ['inline \\v before a token', 'ECHO \x0bb\r\n'],
  ['inline blank lines', '\n  \r\n\t\r\nPING\r\n'],
  ['pipeline of many', (PING + ECHO('x')).repeat(200)],
  // Exactly one byte past 64 KiB so Redis has read everything when it answers (no RST).
  ['too big inline request', '\0' + 'A'.repeat(64 * 1024)],
  ['too big inline request (no NUL)', 'A'.repeat(64 * 1024 + 1)],
  ['too big mbulk count string', '*' + '1'.repeat(64 * 1024)],
  ['too big bulk count string', '*1\r\n$' + '1'.repeat(64 * 1024)],
];

const skip = redisServerPath() === undefined ? 'redis-server is not installed' : false;

t.test('protocol inputs: our parser + encoder answer exactly like redis-server', { skip }, async (t) => {
  const redis = await startRedisServer(t);
  const results = await Promise.all(
    INPUTS.map(async ([name, text]) => {
      const input = Buffer.from(text, 'latin1');
      const want = ours(input, REDIS_LIMITS);
      const got = await exchange(redis.port, input, { minBytes: want.data.length, quietMs: QUIET_MS, maxWaitMs: 10_000, expectClose: want.closed });
      return { name, want, got };
    }),
  );
  for (const { name, want, got } of results) {
    t.equal(got.data.toString('latin1'), want.data.toString('latin1'), `${name}: reply bytes`);
    t.equal(got.closed, want.closed, `${name}: connection ${want.closed ? 'closed' : 'kept'}`);
  }
});

t.test('unauthenticated limits match redis-server with requirepass', { skip }, async (t) => {
  const redis = await startRedisServer(t, ['--requirepass', 'secret']);
  const limits: ParserLimits = { ...REDIS_LIMITS, unauthenticated: UNAUTHENTICATED_LIMITS };
  const cases: Array<[string, string]> = [
    ['11 args', '*11\r\n'],
    ['huge count is still invalid', '*3000000000\r\n'],
    ['16385-byte bulk', '*2\r\n$4\r\nECHO\r\n$16385\r\n'],
    ['huge bulk is still invalid', '*2\r\n$4\r\nECHO\r\n$2000000000\r\n'],
  ];
  for (const [name, text] of cases) {
    const input = Buffer.from(text, 'latin1');
    const want = ours(input, limits);
    const got = await exchange(redis.port, input, { minBytes: want.data.length, quietMs: QUIET_MS, maxWaitMs: 10_000, expectClose: want.closed });
    t.equal(got.data.toString('latin1'), want.data.toString('latin1'), name);
    t.equal(got.closed, true, `${name}: closed`);
  }
});

/** One connection: send, wait for `minBytes` (then a quiet period), return what came. */
async function roundTrip(socket: net.Socket, payload: Buffer, minBytes: number): Promise<Buffer> {
  const done = collect(socket, { minBytes, quietMs: 100, maxWaitMs: 15_000 });
  socket.write(payload);
  return (await done).data;
}

function enc(replies: readonly Reply[], protocol: 2 | 3): Buffer {
  return Buffer.concat(replies.map((r) => encodeReply(r, protocol)));
}

t.test('double replies (ZSCORE) match redis-server in RESP2 and RESP3', { skip }, async (t) => {
  const redis = await startRedisServer(t);
  // No -0: Redis stores a -0 score as 0 (formatDouble(-0) is checked against printf elsewhere).
  const doubles = [
    0, 1, -1, 3.14, 0.1, 1 / 3, 1e16, 1e17, 1e-5, 1e-4, 1e300, 5e-324, 1.7976931348623157e308, 1234567890123456.25,
    1234567890123456.75, 1e23, 2.5, 123456789.125, Infinity, -Infinity,
    ...fc.sample(fc.double({ noNaN: true, noDefaultInfinity: true }), { numRuns: 300, seed: 7 }),
    ...fc.sample(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { numRuns: 100, seed: 8 }),
  ].map((d) => (Object.is(d, -0) ? 0 : d));
  const members = doubles.map((_, i) => `m${i}`);
  const score = (d: number): string => (d === Infinity ? '+inf' : d === -Infinity ? '-inf' : Object.is(d, -0) ? '-0' : String(d));
  for (const protocol of [2, 3] as const) {
    const socket = await connectRaw(redis.port);
    t.teardown(() => socket.destroy());
    socket.on('error', () => undefined);
    const hello = await roundTrip(socket, respCommand('HELLO', String(protocol)), 1);
    t.ok(hello.length > 0, `HELLO ${protocol}`);
    const key = `z${protocol}`;
    const setup = Buffer.concat(doubles.map((d, i) => respCommand('ZADD', key, score(d), members[i]!)));
    const added = enc(doubles.map(() => R.integer(1)), protocol);
    const setupReply = await roundTrip(socket, setup, added.length);
    t.equal(setupReply.toString(), added.toString(), 'ZADDs');
    const want = enc(doubles.map((d) => R.double(d)), protocol);
    const got = await roundTrip(socket, Buffer.concat(members.map((m) => respCommand('ZSCORE', key, m))), want.length);
    t.equal(got.toString('latin1'), want.toString('latin1'), `${doubles.length} ZSCOREs in RESP${protocol}`);
    socket.destroy();
  }
});

t.test('every reply kind matches what redis-server sends (via EVAL) in RESP2 and RESP3', { skip }, async (t) => {
  const redis = await startRedisServer(t);
  const cases: Array<[string, Reply]> = [
    ["return redis.status_reply('FOO')", R.simple('FOO')],
    ["return redis.error_reply('ERR x\\r\\ny')", R.error('ERR x\r\ny')],
    ['return 42', R.integer(42)],
    ['return -9007199254740991', R.integer(-9007199254740991)],
    ["return 'abc'", R.bulk('abc')],
    ['return false', R.NIL],
    ['return true', R.integer(1)],
    ["return {1,'a',{2},{}}", R.array([R.integer(1), R.bulk('a'), R.array([R.integer(2)]), R.EMPTY_ARRAY])],
    ['redis.setresp(3); return {double=3.14}', R.double(3.14)],
    ['redis.setresp(3); return {double=1/0}', R.double(Infinity)],
    ['redis.setresp(3); return {double=-1/0}', R.double(-Infinity)],
    ['redis.setresp(3); return {map={a=1}}', R.map([[R.bulk('a'), R.integer(1)]])],
    ['redis.setresp(3); return {set={a=true}}', R.set([R.bulk('a')])],
    ["redis.setresp(3); return {verbatim_string={format='txt', string='hi'}}", R.verbatim('hi')],
    ['redis.setresp(3); return true', R.bool(true)],
    ['redis.setresp(3); return false', R.bool(false)],
    ["redis.setresp(3); return redis.call('GET','missing')", R.NIL],
  ];
  for (const protocol of [2, 3] as const) {
    const socket = await connectRaw(redis.port);
    t.teardown(() => socket.destroy());
    socket.on('error', () => undefined);
    await roundTrip(socket, respCommand('HELLO', String(protocol)), 1);
    const replies = [...cases.map(([, reply]) => reply), R.NIL_ARRAY, R.NIL];
    const want = enc(replies, protocol);
    const payload = Buffer.concat([
      ...cases.map(([script]) => respCommand('EVAL', script, '0')),
      respCommand('LPOP', 'missing', '2'),
      respCommand('GET', 'missing'),
    ]);
    const got = await roundTrip(socket, payload, want.length);
    t.equal(got.toString('latin1'), want.toString('latin1'), `RESP${protocol}`);
    socket.destroy();
  }
});
