/**
 * Table tests of the request parser: valid multibulk and inline requests, and every bad input
 * of ../shared/TESTING.md with Redis 7.0's exact error text (the expectations were checked
 * against a real redis-server 7.0.15; redis-compare.test.ts re-checks them live).
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  RequestParser,
  ProtocolError,
  DEFAULT_PARSER_LIMITS,
  UNAUTHENTICATED_LIMITS,
  ARG_HEAP_OVERHEAD_BYTES,
  type ParserLimits,
} from '../../src/resp/parser.js';
import { parseRedisInt } from '../../src/resp/redis-int.js';
import { splitInlineArgs } from '../../src/resp/inline-args.js';

interface Outcome {
  /** Commands, each argument as a latin1 string (so binary bytes show exactly). */
  commands: string[][];
  /** The ProtocolError message, if parsing stopped with one. */
  error?: string;
  /** Bytes still held when parsing stopped without error (waiting for more). */
  buffered: number;
}

function run(input: string | Buffer | (string | Buffer)[], limits: ParserLimits = DEFAULT_PARSER_LIMITS): Outcome {
  const parser = new RequestParser(limits);
  const chunks = Array.isArray(input) ? input : [input];
  const commands: string[][] = [];
  for (const chunk of chunks) {
    parser.feed(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    try {
      for (let cmd = parser.next(); cmd !== undefined; cmd = parser.next()) commands.push(cmd.map((a) => a.toString('latin1')));
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return { commands, error: err.message, buffered: parser.bufferedBytes };
    }
  }
  return { commands, buffered: parser.bufferedBytes };
}

const P = 'ERR Protocol error: ';
const PING = '*1\r\n$4\r\nPING\r\n';

t.test('valid requests', async (t) => {
  const cases: Array<[string, string | string[], string[][], number?]> = [
    ['multibulk', '*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n', [['GET', 'key']]],
    ['pipeline', PING + PING + '*2\r\n$4\r\nECHO\r\n$0\r\n\r\n', [['PING'], ['PING'], ['ECHO', '']]],
    ['binary bulk with NUL and CRLF', '*2\r\n$4\r\nECHO\r\n$5\r\na\0\r\nb\r\n', [['ECHO', 'a\0\r\nb']]],
    ['*0 is a no-op', '*0\r\n' + PING, [['PING']]],
    ['*-1 is a no-op', '*-1\r\n' + PING, [['PING']]],
    ['*-10 is a no-op', '*-10\r\n' + PING, [['PING']]],
    ['*-9223372036854775808 is a no-op', '*-9223372036854775808\r\n' + PING, [['PING']]],
    ['header CR followed by any byte', '*1\rX$4\r\nPING\r\n', [['PING']]],
    ['bulk data followed by any two bytes (Redis skips them unchecked)', '*1\r\n$4\r\nPINGXY' + PING, [['PING'], ['PING']]],
    ['bulk data followed by CR CR', '*1\r\n$4\r\nPING\r\r', [['PING']]],
    ['bulk data without its two trailing bytes yet', '*1\r\n$4\r\nPING\r', [], 5],
    ['inline', 'SET k v\r\nGET k\n', [['SET', 'k', 'v'], ['GET', 'k']]],
    ['inline blank lines are skipped', '\r\n\n  \r\n\t\r\nPING\r\n', [['PING']]],
    ['inline CR only is whitespace', 'PING\rPING\r\n', [['PING', 'PING']]],
    ['inline CR CR LF', 'PING\r\r\n', [['PING']]],
    ['inline without newline waits', 'PING\r', [], 5],
    ['inline double quotes', 'ECHO "a b\\x41\\x4a\\n\\r\\t\\b\\a\\\\\\"\\z"\r\n', [['ECHO', 'a bAJ\n\r\t\b\x07\\"z']]],
    ['inline \\x with one hex digit is literal x', 'ECHO "\\x4"\r\n', [['ECHO', 'x4']]],
    ['inline single quotes', "ECHO 'a\\'b\\n'\r\n", [['ECHO', "a'b\\n"]]],
    ['inline empty quoted args', 'ECHO "" \'\'\r\n', [['ECHO', '', '']]],
    ['inline quote inside a token', 'ECHO ab"c d"\r\n', [['ECHO', 'abc d']]],
    ['inline \\v inside a token is data', 'ECHO a\x0bb\r\n', [['ECHO', 'a\x0bb']]],
    ['inline \\v and \\f are blanks before a token', '\x0b\x0cECHO \x0bx\r\n', [['ECHO', 'x']]],
    ['inline closing quote then tab', 'ECHO "a"\tb\r\n', [['ECHO', 'a', 'b']]],
    ['inline high bytes', 'ECHO \xe9\xff\r\n', [['ECHO', '\xe9\xff']]],
    ['split across chunks', ['*2\r', '\n$3\r\nG', 'ET\r\n$', '1\r\nk', '\r', '\n'], [['GET', 'k']]],
    ['inline split across chunks', ['EC', 'HO "x', 'y"\r', '\n'], [['ECHO', 'xy']]],
  ];
  for (const [name, input, commands, buffered] of cases) {
    const out = run(input);
    t.same(out, { commands, buffered: buffered ?? 0 }, name);
  }
});

t.test('bad input gets Redis 7 error texts', async (t) => {
  const cases: Array<[string, string, string, string[][]?]> = [
    ['*3000000000', '*3000000000\r\n', 'invalid multibulk length'],
    ['multibulk over maxMultibulkLength', `*${1024 * 1024 + 1}\r\n`, 'invalid multibulk length'],
    ['*9223372036854775807', '*9223372036854775807\r\n', 'invalid multibulk length'],
    ['*-9223372036854775809', '*-9223372036854775809\r\n', 'invalid multibulk length'],
    ['*+1', '*+1\r\n' + PING, 'invalid multibulk length'],
    ['*01', '*01\r\n' + PING, 'invalid multibulk length'],
    ['*-0', '*-0\r\n', 'invalid multibulk length'],
    ['* empty', '*\r\n', 'invalid multibulk length'],
    ['*1e3', '*1e3\r\n', 'invalid multibulk length'],
    ['* space', '* 1\r\n', 'invalid multibulk length'],
    ['$-10', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n', 'invalid bulk length'],
    ['$-1 in a request', '*1\r\n$-1\r\n', 'invalid bulk length'],
    ['$-0', '*1\r\n$-0\r\n', 'invalid bulk length'],
    ['$2000000000', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n', 'invalid bulk length'],
    ['$536870913 over proto-max-bulk-len', '*1\r\n$536870913\r\n', 'invalid bulk length'],
    ['$blabla', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n', 'invalid bulk length'],
    ['$+3', '*1\r\n$+3\r\nfoo\r\n', 'invalid bulk length'],
    ['$03', '*1\r\n$03\r\nfoo\r\n', 'invalid bulk length'],
    ['$1e3', '*1\r\n$1e3\r\n', 'invalid bulk length'],
    ['$ empty', '*1\r\n$\r\n', 'invalid bulk length'],
    ['$ 21 digits', '*1\r\n$000000000000000000003\r\n', 'invalid bulk length'],
    ['wrong payload header', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n', "expected '$', got 'f'"],
    ['multibulk not followed by bulks', '*1\r\nfoo\r\n', "expected '$', got 'f'"],
    ['CR-only after count', '*1\r$4\r\nPING\r\n', "expected '$', got '4'"],
    ['CR where $ belongs', '*2\r\n\r\n', "expected '$', got ' '"],
    ['high byte where $ belongs', '*2\r\n$4\r\nECHO\r\n\xe9\r\n', "expected '$', got '\xe9'"],
    ['unbalanced double quote', 'set """test-key""" test-value\r\nping\r\n', 'unbalanced quotes in request'],
    ['closing quote followed by a char', 'ECHO "ab"c\r\n', 'unbalanced quotes in request'],
    ['unterminated double quote', 'ECHO "abc\r\n', 'unbalanced quotes in request'],
    ['unterminated single quote', "ECHO 'abc\r\n", 'unbalanced quotes in request'],
    ['backslash at the end of a quote', 'ECHO "abc\\\r\n', 'unbalanced quotes in request'],
    ['commands before the error still come out', PING + '*1\r\n$x\r\n', 'invalid bulk length', [['PING']]],
  ];
  for (const [name, input, detail, commands] of cases) {
    t.same(run(input), { commands: commands ?? [], error: P + detail, buffered: 0 }, name);
  }
});

t.test('error replies are exact bytes, the raw byte included', async (t) => {
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  parser.feed(Buffer.from('*2\r\n$4\r\nECHO\r\n\xe9\r\n', 'latin1'));
  const err = t.throws(() => parser.next()) as ProtocolError;
  t.ok(err instanceof ProtocolError);
  t.equal(err.code, 'ERR_RESP_PROTOCOL');
  t.same(err.reply, Buffer.from("-ERR Protocol error: expected '$', got '\xe9'\r\n", 'latin1'));
  t.equal(t.throws(() => parser.next()), err, 'the same error again');
  parser.feed(Buffer.from(PING));
  t.throws(() => parser.next(), err, 'input after an error is ignored');
  t.equal(parser.bufferedBytes, 0, 'buffers dropped after an error');
});

t.test('too big lines (64 KiB)', async (t) => {
  const big = 'a'.repeat(64 * 1024 + 1);
  t.same(run(big), { commands: [], error: P + 'too big inline request', buffered: 0 });
  t.same(run(['a'.repeat(64 * 1024)]), { commands: [], buffered: 64 * 1024 }, 'exactly 64 KiB waits');
  t.same(run(big + '\r\n'), { commands: [], error: P + 'too big inline request', buffered: 0 }, 'with its newline');
  t.same(run('ECHO ' + 'b'.repeat(64 * 1024 - 5) + '\n'), { commands: [['ECHO', 'b'.repeat(64 * 1024 - 5)]], buffered: 0 });
  t.same(run('*' + '1'.repeat(64 * 1024)), { commands: [], error: P + 'too big mbulk count string', buffered: 0 });
  t.same(run('*1\r\n$' + '1'.repeat(64 * 1024)), { commands: [], error: P + 'too big bulk count string', buffered: 0 });
  t.same(run('*1\r\n' + 'x'.repeat(64 * 1024 + 1)), { commands: [], error: P + 'too big bulk count string', buffered: 0 });
  // Fed one byte at a time: same result, and linear time (a quadratic join would take seconds).
  const started = Date.now();
  const bytes = Buffer.from(big);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) pieces.push(bytes.subarray(i, i + 1));
  t.same(run(pieces), { commands: [], error: P + 'too big inline request', buffered: 0 });
  t.ok(Date.now() - started < 5000, 'byte-at-a-time feeding stays fast');
});

t.test('NUL bytes: legal in bulks, hide the line end in headers and inline (as strchr does)', async (t) => {
  t.same(run('*1\r\n$4\r\nPI\0G\r\n'), { commands: [['PI\0G']], buffered: 0 });
  t.same(run('PING a\0b\r\nPING\r\n'), { commands: [], buffered: 16 }, 'inline with NUL waits');
  t.same(run('\0' + 'payload'.repeat(10000)), { commands: [], error: P + 'too big inline request', buffered: 0 });
  t.same(run('*\0\r\n'), { commands: [], buffered: 4 });
  t.same(run('*\0' + 'A'.repeat(70000) + '\r\n'), { commands: [], error: P + 'too big mbulk count string', buffered: 0 });
  t.same(run('*1\r\n$\0\r\n'), { commands: [], buffered: 4 });
  t.same(run(['*1\r\n$1\0\r\n', 'x'.repeat(70000)]), { commands: [], error: P + 'too big bulk count string', buffered: 0 });
  t.same(run('$\0\r\n'), { commands: [], buffered: 4 }, '$ starts an inline request');
});

t.test('unauthenticated limits', async (t) => {
  const limits: ParserLimits = { ...DEFAULT_PARSER_LIMITS, unauthenticated: UNAUTHENTICATED_LIMITS };
  t.same(run('*11\r\n', limits), { commands: [], error: P + 'unauthenticated multibulk length', buffered: 0 });
  t.same(run('*3000000000\r\n', limits), { commands: [], error: P + 'invalid multibulk length', buffered: 0 }, 'general limit first');
  t.same(run('*1\r\n$16385\r\n', limits), { commands: [], error: P + 'unauthenticated bulk length', buffered: 0 });
  t.same(run('*1\r\n$2000000000\r\n', limits), { commands: [], error: P + 'invalid bulk length', buffered: 0 });
  const ten = '*10\r\n' + '$1\r\na\r\n'.repeat(9) + `$16384\r\n${'x'.repeat(16384)}\r\n`;
  t.equal(run(ten, limits).commands.length, 1, '10 args and 16384 bytes pass');
  // setLimits applies from the next header.
  const parser = new RequestParser(limits);
  parser.feed(Buffer.from('*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*12\r\n'));
  t.same(parser.next()?.map(String), ['AUTH', 'pw']);
  parser.setLimits(DEFAULT_PARSER_LIMITS);
  t.equal(parser.next(), undefined, 'the 12-arg header is now allowed');
});

t.test('ringkv-sized limits', async (t) => {
  const limits: ParserLimits = { maxInlineBytes: 100, maxBulkBytes: 10, maxMultibulkLength: 3 };
  t.same(run('*4\r\n', limits), { commands: [], error: P + 'invalid multibulk length', buffered: 0 });
  t.same(run('*1\r\n$11\r\n', limits), { commands: [], error: P + 'invalid bulk length', buffered: 0 });
  t.same(run('*1\r\n$10\r\n0123456789\r\n', limits), { commands: [['0123456789']], buffered: 0 });
  t.same(run('a'.repeat(101), limits), { commands: [], error: P + 'too big inline request', buffered: 0 });
  t.same(run('a'.repeat(100) + '\n', limits), { commands: [['a'.repeat(100)]], buffered: 0 });
});

t.test('bulks spanning chunks are joined, bulks inside one chunk are zero-copy', async (t) => {
  const value = Buffer.alloc(100_000, 0x61);
  value[0] = 0;
  value[99_999] = 13;
  const frame = Buffer.concat([Buffer.from(`*2\r\n$3\r\nSET\r\n$${value.length}\r\n`), value, Buffer.from('\r\n' + PING)]);
  for (const size of [1, 7, 4096, 65536, frame.length]) {
    const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
    const got: Buffer[][] = [];
    let maxBuffered = 0;
    for (let i = 0; i < frame.length; i += size) {
      parser.feed(frame.subarray(i, i + size));
      for (let c = parser.next(); c; c = parser.next()) got.push(c);
      maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
    }
    t.ok(maxBuffered <= value.length + 256, `holds at most the bulk in progress (${maxBuffered})`);
    t.equal(got.length, 2, `chunk size ${size}`);
    t.ok(got[0]![1]!.equals(value), `value intact at chunk size ${size}`);
    t.same(got[1]!.map(String), ['PING']);
  }
  const chunk = Buffer.from('*1\r\n$5\r\nhello\r\n');
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  parser.feed(chunk);
  const arg = parser.next()![0]!;
  t.equal(arg.buffer, chunk.buffer, 'argument shares the chunk memory');
  t.equal(arg.byteOffset, chunk.byteOffset + 8);
});

t.test('bufferedBytes counts each held argument with its heap overhead', async (t) => {
  const out = run('*4\r\n$0\r\n\r\n$0\r\n\r\n$3\r\nabc\r\n$5\r\nxy');
  t.same(out, { commands: [], buffered: 3 * ARG_HEAP_OVERHEAD_BYTES + 3 + 2 });
});

t.test('a bulk trickled a byte at a time is held compactly', async (t) => {
  // Without coalescing, every 1-byte chunk would stay alive as its own Buffer (~100 bytes of
  // heap per byte of data). gc is exposed at run time so the heap can be measured.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const size = 200_000;
  const frame = Buffer.concat([Buffer.from(`*2\r\n$4\r\nECHO\r\n$${size}\r\n`), Buffer.alloc(size, 0x61), Buffer.from('\r\n' + PING)]);
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  const headerBytes = frame.length - size - 2 - PING.length;
  parser.feed(frame.subarray(0, headerBytes));
  t.equal(parser.next(), undefined);
  gc();
  const before = process.memoryUsage().heapUsed;
  // Feed all but the last data byte one byte at a time (each a fresh Buffer, as a socket gives).
  for (let i = headerBytes; i < headerBytes + size - 1; i++) parser.feed(Buffer.from(frame.subarray(i, i + 1)));
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 4 * 1024 * 1024, `heap grew ${grown} bytes for ${size} bytes of data`);
  t.equal(parser.next(), undefined);
  // The last byte together with the rest, split mid-CRLF across two chunks.
  parser.feed(frame.subarray(headerBytes + size - 1, headerBytes + size + 1));
  parser.feed(frame.subarray(headerBytes + size + 1));
  const echo = parser.next()!;
  t.equal(echo[1]!.length, size);
  t.ok(echo[1]!.equals(Buffer.alloc(size, 0x61)));
  t.same(parser.next()?.map(String), ['PING']);
});

t.test('bulks in small chunks around the 16 KiB tail buffer size come out intact', async (t) => {
  // Small chunks of bulk data are copied into 16 KiB tail buffers; a chunk may end the bulk
  // and start the next command while straddling two tail buffers.
  let checked = 0;
  for (let length = 16_370; length <= 16_400; length += 3) {
    const value = Buffer.alloc(length);
    for (let i = 0; i < length; i++) value[i] = (i * 31) & 0xff;
    const frame = Buffer.concat([Buffer.from(`*2\r\n$4\r\nECHO\r\n$${length}\r\n`), value, Buffer.from('\r\n' + PING + 'PING x\r\n')]);
    for (const size of [3, 1000, 4097, 16_383]) {
      const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
      const got: Buffer[][] = [];
      for (let i = 0; i < frame.length; i += size) {
        parser.feed(frame.subarray(i, i + size));
        for (let c = parser.next(); c; c = parser.next()) got.push(c);
      }
      const ok = got.length === 3 && got[0]![1]!.equals(value) && got[1]!.join() === 'PING' && got[2]!.join() === 'PING,x';
      if (!ok) t.fail(`length ${length}, chunk size ${size}: ${got.map((c) => c.length).join(',')}`);
      checked++;
    }
  }
  t.equal(checked, 44);
  // Exactly the straddle: header alone, then 1000-byte chunks; the chunk at data offset 16000
  // ends the bulk (at 16200) and fills the first tail buffer (at 16384) before the rest.
  const length = 16_198;
  const value = Buffer.alloc(length, 0x62);
  const header = Buffer.from(`*2\r\n$4\r\nECHO\r\n$${length}\r\n`);
  const rest = Buffer.concat([value, Buffer.from('\r\n' + PING.repeat(300))]);
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  parser.feed(header);
  t.equal(parser.next(), undefined);
  const got: string[] = [];
  for (let i = 0; i < rest.length; i += 1000) {
    parser.feed(rest.subarray(i, i + 1000));
    for (let c = parser.next(); c; c = parser.next()) got.push(c[0]!.toString() + (c[1] ? `:${c[1].length}` : ''));
  }
  t.same(got, [`ECHO:${length}`, ...Array<string>(300).fill('PING')]);
});

t.test('an argument handed out is never overwritten by later input', async (t) => {
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  parser.feed(Buffer.from('*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$'));
  const first = parser.next()!;
  for (let i = 0; i < 200; i++) parser.feed(Buffer.from(i === 0 ? '1\r\nc\r\n*1\r\n$' : `1\r\n${i % 10}\r\n*1\r\n$`));
  const later: string[] = [];
  for (let c = parser.next(); c; c = parser.next()) later.push(c[0]!.toString());
  t.same(first.map(String), ['a', 'b']);
  t.equal(later.length, 200);
});

t.test('parseRedisInt is string2ll', async (t) => {
  const ok: Array<[string, number]> = [
    ['0', 0],
    ['1', 1],
    ['-1', -1],
    ['123', 123],
  ];
  for (const [s, v] of ok) t.equal(parseRedisInt(Buffer.from(s), 0, s.length), v, s);
  // Beyond 2^53 the value is rounded; string2ll's range check itself is exact.
  t.ok(Math.abs(parseRedisInt(Buffer.from('9223372036854775807'), 0, 19)! / 2 ** 63 - 1) < 1e-15, 'INT64_MAX');
  t.ok(Math.abs(parseRedisInt(Buffer.from('-9223372036854775808'), 0, 20)! / 2 ** 63 + 1) < 1e-15, 'INT64_MIN');
  for (const s of ['', '-', '+1', '01', '-0', '00', '1e3', ' 1', '1 ', '9223372036854775808', '-9223372036854775809', '99999999999999999999', '1.0', '0x10']) {
    t.equal(parseRedisInt(Buffer.from(s), 0, s.length), undefined, JSON.stringify(s));
  }
  t.equal(parseRedisInt(Buffer.from('x12y'), 1, 3), 12, 'range inside a buffer');
});

t.test('splitInlineArgs is sdssplitargs', async (t) => {
  const split = (s: string): string[] | undefined => splitInlineArgs(Buffer.from(s, 'latin1'), 0, s.length)?.map((b) => b.toString('latin1'));
  t.same(split(''), []);
  t.same(split('   '), []);
  t.same(split('a b  c'), ['a', 'b', 'c']);
  t.same(split('"\\x00\\xfF"'), ['\0\xff']);
  t.same(split('"\\xzz"'), ['xzz']);
  t.same(split("'\\x41'"), ['\\x41']);
  t.same(split('"a\\"b"'), ['a"b']);
  t.same(split("'a\"b'"), ['a"b']);
  t.same(split('"a\'b"'), ["a'b"]);
  t.equal(split('"a"b'), undefined);
  t.equal(split("'a'b"), undefined);
  t.equal(split('"a'), undefined);
  t.equal(split("'a"), undefined);
  t.equal(split('"a\\"'), undefined);
});
