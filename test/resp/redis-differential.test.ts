/**
 * Random protocol garbage against a real redis-server: streams of PING/ECHO requests
 * (multibulk and inline) with random byte edits are sent to Redis, and the replies must agree
 * with what our RequestParser says about the same bytes: the same number of replies (one per
 * command parsed), PING/ECHO answers with the same content, and, when our parser reports a
 * ProtocolError, Redis's last reply is exactly that error and Redis closes the connection.
 * This checks the parser's model of Redis (which the fuzz test uses) against Redis itself.
 * Skipped when redis-server is not installed.
 */
import t from 'tap';
import fc from 'fast-check';
import RedisParser from 'redis-parser';
import { redisServerPath, startRedisServer } from '../helpers/redis_server.js';
import { connectRaw } from '../helpers/raw_client.js';
import { RequestParser, ProtocolError, DEFAULT_PARSER_LIMITS } from '../../src/resp/parser.js';

/** Fixed by default so a run is reproducible; RESP_DIFF_SEED / RESP_DIFF_CASES explore more by hand. */
const SEED = Number(process.env.RESP_DIFF_SEED ?? 20261201);
const CASES = Number(process.env.RESP_DIFF_CASES ?? 150);
const CONCURRENCY = 10;
/** Quiet time after the expected replies before deciding nothing more comes. */
const QUIET_MS = 250;
const SENTINEL = '*2\r\n$4\r\nECHO\r\n$8\r\nSENTINEL\r\n';

interface Prediction {
  commands: Buffer[][];
  error?: string;
}

function predict(bytes: Buffer): Prediction {
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  parser.feed(bytes);
  const commands: Buffer[][] = [];
  try {
    for (let c = parser.next(); c !== undefined; c = parser.next()) commands.push(c);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { commands, error: err.message };
  }
  return { commands };
}

/** The reply Redis gives to a command we can predict exactly, else undefined. */
function knownReply(cmd: readonly Buffer[]): string | undefined {
  const name = cmd[0]!.toString('latin1').toLowerCase();
  if (name === 'ping' && cmd.length === 1) return 'PONG';
  if ((name === 'ping' || name === 'echo') && cmd.length === 2) return cmd[1]!.toString('latin1');
  return undefined;
}

const arg = fc.oneof(
  fc.constantFrom('a', 'hello', '', 'x y', '"q"', "it's", '\\n', '*1', '$3'),
  fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a).toString('latin1')),
);
const multibulk = fc.tuple(fc.constantFrom('PING', 'ECHO', 'ping', 'echo'), fc.array(arg, { maxLength: 2 })).map(([name, args]) => {
  const all = [name, ...args];
  return `*${all.length}\r\n` + all.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
});
const inline = fc
  .tuple(fc.constantFrom('PING', 'ECHO', 'echo'), fc.array(fc.constantFrom('a', '"b c"', "'d'", '"\\x41"', 'e'), { maxLength: 2 }), fc.constantFrom('\r\n', '\n'))
  .map(([name, args, eol]) => [name, ...args].join(' ') + eol);
const stream = fc.array(fc.oneof({ weight: 3, arbitrary: multibulk }, { weight: 1, arbitrary: inline }), { minLength: 1, maxLength: 5 }).map((f) => f.join(''));

type Edit = { kind: 'set'; at: number; byte: number } | { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 13, 10, 36, 42, 45, 43, 48, 49, 57, 0x22, 0x27, 0x5c, 0x20, 0xe9, 0x61) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom('\0', '\r', '\n', '*', '$', '-1', '0', '"', "'", '*3\r\n', '$-10\r\n', '$2000000000\r\n', '*+1\r\n', '$03\r\n', '*0\r\n', '*-1\r\n') }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
);

function applyEdits(text: string, edits: readonly Edit[]): Buffer {
  let out = Buffer.from(text, 'latin1');
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % out.length;
    if (e.kind === 'set') out[at] = e.byte;
    else if (e.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from(e.text, 'latin1'), out.subarray(at)]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
  }
  return out;
}

interface Observed {
  replies: Array<Buffer | Error | unknown>;
  closed: boolean;
}

/** Sends `bytes` to Redis; collects replies until the connection closes or `expected` replies came and then silence. */
async function observe(port: number, bytes: Buffer, expected: number, expectClose: boolean): Promise<Observed> {
  const socket = await connectRaw(port);
  socket.on('error', () => undefined);
  const replies: Array<Buffer | Error | unknown> = [];
  const parser = new RedisParser({
    returnBuffers: true,
    returnReply: (r: unknown) => replies.push(r),
    returnError: (e: Error) => replies.push(e),
  });
  socket.on('data', (d: Buffer) => parser.execute(d));
  const done = new Promise<boolean>((resolve) => {
    let quiet: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(quiet);
      clearInterval(poll);
      clearTimeout(give);
      resolve(closed);
    };
    socket.once('close', () => finish(true));
    // Waiting for a close: only the close (or the overall limit) ends it. Else: expected replies, then quiet.
    const poll = setInterval(() => {
      if (!expectClose && replies.length >= expected && quiet === undefined) quiet = setTimeout(() => finish(false), QUIET_MS);
    }, 20);
    const give = setTimeout(() => finish(false), 10_000);
  });
  socket.write(bytes);
  const closed = await done;
  socket.destroy();
  return { replies, closed };
}

t.test('random broken request streams: Redis agrees with our parser', { skip: redisServerPath() === undefined ? 'redis-server is not installed' : false }, async (t) => {
  const redis = await startRedisServer(t);
  const inputs = fc.sample(fc.tuple(stream, fc.array(edit, { maxLength: 3 })), { numRuns: CASES, seed: SEED });
  let mismatches = 0;
  let withError = 0;
  for (let i = 0; i < inputs.length; i += CONCURRENCY) {
    const batch = inputs.slice(i, i + CONCURRENCY);
    const results = await Promise.all(
      batch.map(async ([text, edits]) => {
        const bytes = Buffer.concat([applyEdits(text, edits), Buffer.from(SENTINEL)]);
        const want = predict(bytes);
        const expected = want.commands.length + (want.error === undefined ? 0 : 1);
        const got = await observe(redis.port, bytes, expected, want.error !== undefined);
        return { bytes, want, got };
      }),
    );
    for (const { bytes, want, got } of results) {
      if (want.error !== undefined) withError++;
      const problems: string[] = [];
      const expected = want.commands.length + (want.error === undefined ? 0 : 1);
      if (got.replies.length !== expected) problems.push(`${got.replies.length} replies, expected ${expected}`);
      want.commands.forEach((cmd, k) => {
        const reply = got.replies[k];
        const known = knownReply(cmd);
        if (known !== undefined && !(Buffer.isBuffer(reply) && reply.toString('latin1') === known)) {
          problems.push(`reply ${k} to ${JSON.stringify(cmd.map((a) => a.toString('latin1')))} was ${String(reply)}`);
        }
      });
      if (want.error !== undefined) {
        const last = got.replies[got.replies.length - 1];
        // redis-parser decodes the error line as UTF-8: a raw byte >= 0x80 (from `expected '$',
        // got 'X'`) arrives as U+FFFD. redis-compare.test.ts checks that byte exactly.
        const wantText = want.error.replace(/[\x80-\xff]/g, '\ufffd');
        if (!(last instanceof Error) || last.message !== wantText) problems.push(`last reply ${String(last)}, expected ${want.error}`);
        if (!got.closed) problems.push('Redis did not close');
      } else if (got.closed) {
        problems.push('Redis closed');
      }
      if (problems.length > 0) {
        mismatches++;
        t.fail(`seed ${SEED}: ${JSON.stringify(bytes.toString('latin1'))}: ${problems.join('; ')}`);
      }
    }
  }
  t.equal(mismatches, 0, `${inputs.length} streams (seed ${SEED}), ${withError} ending in a protocol error`);
});
