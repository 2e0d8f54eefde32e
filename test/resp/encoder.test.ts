/**
 * The encoder's exact bytes for every reply kind in RESP2 and RESP3, the ReplyBuffer's batching
 * contract (take resets, taken bytes never change, big bulks are passed through uncopied), and
 * %.17g double formatting (expected strings produced by C printf via Python's '%.17g').
 */
import t from 'tap';
import fc from 'fast-check';
import RedisParser from 'redis-parser';
import { encodeReply, ReplyBuffer, COPY_THRESHOLD_BYTES, REPLY_SLAB_BYTES } from '../../src/resp/encoder.js';
import { formatDouble } from '../../src/resp/double-format.js';
import * as R from '../../src/resp/reply.js';
import type { Reply } from '../../src/resp/reply.js';

const enc = (reply: Reply, protocol: 2 | 3): string => encodeReply(reply, protocol).toString('latin1');

t.test('every kind, RESP2 and RESP3', async (t) => {
  const cases: Array<[string, Reply, string, string]> = [
    ['simple', R.OK, '+OK\r\n', '+OK\r\n'],
    ['simple with CRLF', R.simple('a\r\nb\nc'), '+a  b c\r\n', '+a  b c\r\n'],
    ['error', R.error('ERR syntax error'), '-ERR syntax error\r\n', '-ERR syntax error\r\n'],
    ['error with CRLF', R.error('ERR bad\r\nthing'), '-ERR bad  thing\r\n', '-ERR bad  thing\r\n'],
    ['integer 0', R.integer(0), ':0\r\n', ':0\r\n'],
    ['integer negative', R.integer(-42), ':-42\r\n', ':-42\r\n'],
    ['integer large', R.integer(9007199254740991), ':9007199254740991\r\n', ':9007199254740991\r\n'],
    ['integer bigint max', R.integer(9223372036854775807n), ':9223372036854775807\r\n', ':9223372036854775807\r\n'],
    ['integer bigint min', R.integer(-9223372036854775808n), ':-9223372036854775808\r\n', ':-9223372036854775808\r\n'],
    ['integer unsafe number', R.integer(2 ** 60), ':1152921504606846976\r\n', ':1152921504606846976\r\n'],
    ['bulk string', R.bulk('hello'), '$5\r\nhello\r\n', '$5\r\nhello\r\n'],
    ['bulk utf8 string', R.bulk('é'), '$2\r\n\xc3\xa9\r\n', '$2\r\n\xc3\xa9\r\n'],
    ['bulk empty', R.bulk(''), '$0\r\n\r\n', '$0\r\n\r\n'],
    ['bulk binary', R.bulk(Buffer.from([0, 13, 10, 255])), '$4\r\n\x00\r\n\xff\r\n', '$4\r\n\x00\r\n\xff\r\n'],
    ['null', R.NIL, '$-1\r\n', '_\r\n'],
    ['nullArray', R.NIL_ARRAY, '*-1\r\n', '_\r\n'],
    ['empty array', R.EMPTY_ARRAY, '*0\r\n', '*0\r\n'],
    [
      'nested array',
      R.array([R.integer(1), R.array([R.bulk('a'), R.NIL]), R.error('ERR x')]),
      '*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n',
      '*3\r\n:1\r\n*2\r\n$1\r\na\r\n_\r\n-ERR x\r\n',
    ],
    [
      'map',
      R.map([
        [R.bulk('k1'), R.integer(1)],
        [R.bulk('k2'), R.bulk('v')],
      ]),
      '*4\r\n$2\r\nk1\r\n:1\r\n$2\r\nk2\r\n$1\r\nv\r\n',
      '%2\r\n$2\r\nk1\r\n:1\r\n$2\r\nk2\r\n$1\r\nv\r\n',
    ],
    ['empty map', R.map([]), '*0\r\n', '%0\r\n'],
    ['set', R.set([R.bulk('a'), R.bulk('b')]), '*2\r\n$1\r\na\r\n$1\r\nb\r\n', '~2\r\n$1\r\na\r\n$1\r\nb\r\n'],
    ['double', R.double(3.14), '$18\r\n3.1400000000000001\r\n', ',3.1400000000000001\r\n'],
    ['double integral', R.double(10), '$2\r\n10\r\n', ',10\r\n'],
    ['double inf', R.double(Infinity), '$3\r\ninf\r\n', ',inf\r\n'],
    ['double -inf', R.double(-Infinity), '$4\r\n-inf\r\n', ',-inf\r\n'],
    ['double nan', R.double(NaN), '$3\r\nnan\r\n', ',nan\r\n'],
    ['bool true', R.bool(true), ':1\r\n', '#t\r\n'],
    ['bool false', R.bool(false), ':0\r\n', '#f\r\n'],
    ['verbatim txt', R.verbatim('Some string'), '$11\r\nSome string\r\n', '=15\r\ntxt:Some string\r\n'],
    ['verbatim mkd', R.verbatim('# é', 'mkd'), '$4\r\n# \xc3\xa9\r\n', '=8\r\nmkd:# \xc3\xa9\r\n'],
    ['bulks helper', R.bulks(['x', Buffer.from('yz')]), '*2\r\n$1\r\nx\r\n$2\r\nyz\r\n', '*2\r\n$1\r\nx\r\n$2\r\nyz\r\n'],
    ['bulkOrNil undefined', R.bulkOrNil(undefined), '$-1\r\n', '_\r\n'],
  ];
  for (const [name, reply, resp2, resp3] of cases) {
    t.equal(enc(reply, 2), resp2, `${name} RESP2`);
    t.equal(enc(reply, 3), resp3, `${name} RESP3`);
  }
});

t.test('integer replies of non-integers are programmer errors and leave no partial bytes', async (t) => {
  t.throws(() => encodeReply(R.integer(1.5), 2));
  t.throws(() => encodeReply(R.array([R.bulk('a'), R.integer(NaN)]), 2));
  t.equal(enc(R.OK, 2), '+OK\r\n', 'next encoding is clean');
});

t.test('formatDouble matches C printf %.17g', async (t) => {
  // Left: the double (as JS source); right: Python 3 '%.17g' % x (glibc-compatible, ties to even).
  const table: Array<[number, string]> = [
    [3.14, '3.1400000000000001'],
    [-3.14, '-3.1400000000000001'],
    [0.1, '0.10000000000000001'],
    [1 / 3, '0.33333333333333331'],
    [1e300, '1.0000000000000001e+300'],
    [1e-300, '1e-300'],
    [5e-324, '4.9406564584124654e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [1234567890123456.25, '1234567890123456.2'], // exact tie: to even (JS would say .3)
    [1234567890123456.75, '1234567890123456.8'],
    [1e16, '10000000000000000'],
    [1e17, '1e+17'],
    [123456789012345680000, '1.2345678901234568e+20'],
    [0.0001, '0.0001'],
    [0.00001, '1.0000000000000001e-05'],
    [2.5, '2.5'],
    [100, '100'],
    [-0.5, '-0.5'],
    [1e23, '9.9999999999999992e+22'],
    [0.30000000000000004, '0.30000000000000004'],
    [0, '0'],
    [-0, '-0'],
  ];
  for (const [x, want] of table) t.equal(formatDouble(x), want, `%.17g of ${x}`);
  t.equal(formatDouble(NaN), 'nan');
  const negativeNaN = new DataView(new Uint8Array([0xff, 0xf8, 0, 0, 0, 0, 0, 0]).buffer).getFloat64(0);
  t.equal(formatDouble(negativeNaN), '-nan', 'sign bit of NaN printed as glibc does');
});

t.test('formatDouble: 17 significant digits always read back as the same double', async (t) => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
      const text = formatDouble(x);
      return Object.is(Number(text), x) && /^-?\d(\.\d*[1-9])?(e[+-]\d{2,3})?$|^-?\d+(\.\d*[1-9])?$/.test(text);
    }),
    { numRuns: 20_000 },
  );
});

t.test('ReplyBuffer batches, resets on take, never rewrites taken bytes', async (t) => {
  const rb = new ReplyBuffer(2);
  t.equal(rb.byteLength, 0);
  t.same(rb.take(), Buffer.alloc(0), 'nothing pending');
  rb.push(R.OK);
  rb.push(R.integer(7));
  t.equal(rb.byteLength, 9);
  const first = rb.take();
  t.ok(Buffer.isBuffer(first), 'one segment');
  t.equal((first as Buffer).toString(), '+OK\r\n:7\r\n');
  t.equal(rb.byteLength, 0, 'take resets');
  // Fill past several shared slabs; the first taken buffer must be unchanged.
  const count = 20_000;
  let want = '';
  for (let i = 0; i < count; i++) {
    rb.push(R.bulk(`value-${i}`));
    want += `$${`value-${i}`.length}\r\nvalue-${i}\r\n`;
  }
  t.ok(want.length > 3 * REPLY_SLAB_BYTES, 'crosses slabs');
  t.equal(rb.byteLength, want.length);
  t.equal((first as Buffer).toString(), '+OK\r\n:7\r\n', 'taken bytes not overwritten');
  const many = rb.take();
  t.ok(Array.isArray(many), 'one segment per slab');
  t.equal((Array.isArray(many) ? Buffer.concat(many) : many).toString(), want);
  t.equal(rb.byteLength, 0);
});

t.test('ReplyBuffers sharing the slab never see each other\'s bytes', async (t) => {
  const a = new ReplyBuffer(2);
  const b = new ReplyBuffer(3);
  const takenA: Buffer[] = [];
  const takenB: Buffer[] = [];
  const wantA: string[] = [];
  const wantB: string[] = [];
  const flat = (x: Buffer | Buffer[]): Buffer => (Array.isArray(x) ? Buffer.concat(x) : x);
  for (let round = 0; round < 300; round++) {
    let batchA = '';
    let batchB = '';
    for (let i = 0; i < 20; i++) {
      // Interleaved pushes: each switch starts a new segment.
      a.push(R.integer(round * 100 + i));
      batchA += `:${round * 100 + i}\r\n`;
      b.push(R.NIL);
      b.push(R.bulk('x'.repeat(i * 10)));
      batchB += `_\r\n$${i * 10}\r\n${'x'.repeat(i * 10)}\r\n`;
    }
    // Take in different orders; earlier takes must stay intact.
    if (round % 2 === 0) {
      takenA.push(flat(a.take()));
      takenB.push(flat(b.take()));
    } else {
      takenB.push(flat(b.take()));
      takenA.push(flat(a.take()));
    }
    wantA.push(batchA);
    wantB.push(batchB);
  }
  t.same(takenA.map(String), wantA);
  t.same(takenB.map(String), wantB);
  t.equal(encodeReply(R.OK, 2).toString(), '+OK\r\n', 'one-off encoding in between');
});

t.test('ReplyBuffer passes big bulk Buffers through without copying', async (t) => {
  const rb = new ReplyBuffer(3);
  const big = Buffer.alloc(COPY_THRESHOLD_BYTES + 10, 0x61);
  rb.push(R.simple('before'));
  rb.push(R.bulk(big));
  rb.push(R.simple('after'));
  t.equal(rb.byteLength, 9 + (`$${big.length}\r\n`.length + big.length + 2) + 8);
  const out = rb.take();
  t.ok(Array.isArray(out), 'several segments');
  const parts = out as Buffer[];
  t.ok(parts.includes(big), 'the very same Buffer object is a segment');
  t.equal(Buffer.concat(parts).toString(), `+before\r\n$${big.length}\r\n${big.toString()}\r\n+after\r\n`);
  // Small Buffers are copied (the caller may reuse them).
  const small = Buffer.from('abc');
  rb.push(R.bulk(small));
  small[0] = 0x7a;
  t.equal((rb.take() as Buffer).toString(), '$3\r\nabc\r\n');
});

t.test('ReplyBuffer switches protocol between pushes', async (t) => {
  const rb = new ReplyBuffer();
  rb.push(R.NIL);
  rb.protocol = 3;
  rb.push(R.NIL);
  t.equal((rb.take() as Buffer).toString(), '$-1\r\n_\r\n');
});

t.test('strings of any unicode encode as UTF-8, short and long, lines sanitized', async (t) => {
  const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme-ascii', maxLength: 80 }));
  fc.assert(
    fc.property(text, fc.constantFrom<2 | 3>(2, 3), (s, protocol) => {
      const utf8 = Buffer.from(s, 'utf8');
      const line = Buffer.from(s.replace(/[\r\n]/g, ' '), 'utf8');
      const bulkWant = Buffer.concat([Buffer.from(`$${utf8.length}\r\n`), utf8, Buffer.from('\r\n')]);
      const simpleWant = Buffer.concat([Buffer.from('+'), line, Buffer.from('\r\n')]);
      const errorWant = Buffer.concat([Buffer.from('-'), line, Buffer.from('\r\n')]);
      const verbatimWant =
        protocol === 3 ? Buffer.concat([Buffer.from(`=${utf8.length + 4}\r\ntxt:`), utf8, Buffer.from('\r\n')]) : bulkWant;
      return (
        encodeReply(R.bulk(s), protocol).equals(bulkWant) &&
        encodeReply(R.simple(s), protocol).equals(simpleWant) &&
        encodeReply(R.error(s), protocol).equals(errorWant) &&
        encodeReply(R.verbatim(s), protocol).equals(verbatimWant)
      );
    }),
    { numRuns: 5_000 },
  );
  t.pass('5000 strings');
});

/** Random reply trees in the RESP2 subset that redis-parser understands. */
const replyArb: fc.Arbitrary<Reply> = fc.letrec((tie) => ({
  reply: fc.oneof<fc.Arbitrary<Reply>[]>(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ unit: 'grapheme-ascii' }).filter((s) => !/[\r\n]/.test(s)).map(R.simple),
    fc.string().map(R.bulk),
    fc.uint8Array({ maxLength: 300 }).map((a) => R.bulk(Buffer.from(a))),
    fc.uint8Array({ minLength: COPY_THRESHOLD_BYTES, maxLength: COPY_THRESHOLD_BYTES + 5 }).map((a) => R.bulk(Buffer.from(a))),
    fc.maxSafeInteger().map(R.integer),
    fc.constant(R.NIL),
    fc.array(tie('reply') as fc.Arbitrary<Reply>, { maxLength: 5 }).map(R.array),
  ),
})).reply;

/** What redis-parser (returnBuffers) should give for a reply. */
function expected(reply: Reply): unknown {
  switch (reply.kind) {
    case 'simple':
      return Buffer.from(reply.value);
    case 'bulk':
      return Buffer.from(reply.value);
    case 'integer':
      return Number(reply.value);
    case 'null':
      return null;
    case 'array':
      return reply.items.map(expected);
    default:
      throw new Error(`not generated: ${reply.kind}`);
  }
}

t.test('RESP2 output parses back with npm redis-parser, split anywhere', async (t) => {
  fc.assert(
    fc.property(fc.array(replyArb, { minLength: 1, maxLength: 8 }), fc.nat(), (replies, splitSeed) => {
      const rb = new ReplyBuffer(2);
      for (const r of replies) rb.push(r);
      const out = rb.take();
      const bytes = Array.isArray(out) ? Buffer.concat(out) : out;
      const got: unknown[] = [];
      const parser = new RedisParser({
        returnBuffers: true,
        returnReply: (r: unknown) => got.push(r),
        returnError: (e: Error) => got.push(e),
      });
      const split = bytes.length === 0 ? 0 : splitSeed % bytes.length;
      parser.execute(bytes.subarray(0, split));
      parser.execute(bytes.subarray(split));
      t.same(got, replies.map(expected));
      return got.length === replies.length;
    }),
    { numRuns: 500 },
  );
});
