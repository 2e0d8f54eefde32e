/**
 * Property tests of the request parser (fast-check, 121,000 cases in total):
 * 1. valid streams (multibulk with arbitrary binary args incl. NUL/CR/LF, inline with quoting,
 *    no-op frames, blank lines) split at random chunk boundaries parse back exactly;
 * 2. mutated valid streams and 3. raw bytes from a RESP-heavy alphabet: the streaming parser,
 *    fed whole or split at random boundaries, gives the same commands, the same error at the same
 *    point and the same buffered byte count as a plain whole-buffer model written from Redis's
 *    processMultibulkBuffer / processInlineBuffer; it throws nothing but ProtocolError, and
 *    after draining it never holds more than the limits allow;
 * 4. streams with 15-40 KB bulks fed in chunks from 1 byte to 20 KB round-trip exactly (the
 *    zero-copy pieces and the 16 KiB tail buffers for small chunks);
 * 5. nextRaw (the offsets form) mixed with next gives what next alone gives (10,000 cases).
 */
import t from 'tap';
import fc from 'fast-check';
import {
  RequestParser,
  ProtocolError,
  DEFAULT_PARSER_LIMITS,
  UNAUTHENTICATED_LIMITS,
  ARG_HEAP_OVERHEAD_BYTES,
  type ParserLimits,
} from '../../src/resp/parser.js';
import { splitInlineArgs } from '../../src/resp/inline-args.js';

/** RESP_FUZZ_SCALE=10 for a longer soak run by hand; npm test uses 1 (111,000 cases). */
const SCALE = Math.max(1, Number(process.env.RESP_FUZZ_SCALE ?? 1) || 1);
const RUNS_VALID = 30_000 * SCALE;
const RUNS_MUTATED = 40_000 * SCALE;
const RUNS_RAW = 40_000 * SCALE;
const RUNS_BIG = 1_000 * SCALE;

interface Outcome {
  commands: Buffer[][];
  error?: string;
}

// ---- the model: Redis's loop over one whole query buffer, written for clarity ----------------

/** string2ll with BigInt: exact, no fast path. */
function string2ll(bytes: Buffer): bigint | undefined {
  const s = bytes.toString('latin1');
  if (s.length === 0 || s.length > 20 || !/^(0|-?[1-9][0-9]*)$/.test(s)) return undefined;
  const v = BigInt(s);
  if (v > 9223372036854775807n || v < -9223372036854775808n) return undefined;
  return v;
}

type Line = { kind: 'line'; end: number } | { kind: 'pending' } | { kind: 'tooBig' };

/** strchr(buf + pos, terminator) with the 64 KiB rule: the terminator, unless a NUL hides it. */
function findLine(buf: Buffer, pos: number, terminator: number, max: number, needAfter: boolean): Line {
  for (let i = pos; i < buf.length; i++) {
    if (buf[i] === 0) break;
    if (buf[i] === terminator) {
      if (i - pos > max) return { kind: 'tooBig' };
      if (needAfter && i + 1 >= buf.length) return { kind: 'pending' };
      return { kind: 'line', end: i };
    }
  }
  return buf.length - pos > max ? { kind: 'tooBig' } : { kind: 'pending' };
}

function model(buf: Buffer, limits: ParserLimits): Outcome & { buffered: number } {
  const commands: Buffer[][] = [];
  const fail = (detail: string): Outcome & { buffered: number } => ({ commands, error: `ERR Protocol error: ${detail}`, buffered: 0 });
  const max = limits.maxInlineBytes;
  const unauth = limits.unauthenticated;
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] !== 0x2a) {
      const line = findLine(buf, pos, 0x0a, max, false);
      if (line.kind === 'tooBig') return fail('too big inline request');
      if (line.kind === 'pending') return { commands, buffered: buf.length - pos };
      const end = line.end > pos && buf[line.end - 1] === 0x0d ? line.end - 1 : line.end;
      const args = splitInlineArgs(buf, pos, end);
      if (args === undefined) return fail('unbalanced quotes in request');
      if (args.length > 0) commands.push(args);
      pos = line.end + 1;
      continue;
    }
    const countLine = findLine(buf, pos, 0x0d, max, true);
    if (countLine.kind === 'tooBig') return fail('too big mbulk count string');
    if (countLine.kind === 'pending') return { commands, buffered: buf.length - pos };
    const count = string2ll(buf.subarray(pos + 1, countLine.end));
    if (count === undefined || count > BigInt(limits.maxMultibulkLength)) return fail('invalid multibulk length');
    if (unauth && count > BigInt(unauth.maxMultibulkLength)) return fail('unauthenticated multibulk length');
    pos = countLine.end + 2;
    if (count <= 0n) continue;
    const args: Buffer[] = [];
    let argsBytes = 0;
    while (args.length < Number(count)) {
      const header = findLine(buf, pos, 0x0d, max, true);
      if (header.kind === 'tooBig') return fail('too big bulk count string');
      if (header.kind === 'pending') return { commands, buffered: argsBytes + args.length * ARG_HEAP_OVERHEAD_BYTES + buf.length - pos };
      if (buf[pos] !== 0x24) return fail(`expected '$', got '${String.fromCharCode(buf[pos]!).replace(/[\r\n]/, ' ')}'`);
      const length = string2ll(buf.subarray(pos + 1, header.end));
      if (length === undefined || length < 0n || length > BigInt(limits.maxBulkBytes)) return fail('invalid bulk length');
      if (unauth && length > BigInt(unauth.maxBulkBytes)) return fail('unauthenticated bulk length');
      pos = header.end + 2;
      const n = Number(length);
      if (pos + n + 2 > buf.length) return { commands, buffered: argsBytes + args.length * ARG_HEAP_OVERHEAD_BYTES + buf.length - pos };
      args.push(buf.subarray(pos, pos + n));
      argsBytes += n;
      pos += n + 2;
    }
    commands.push(args);
  }
  return { commands, buffered: 0 };
}

// ---- the streaming parser under test ----------------------------------------------------------

interface StreamResult extends Outcome {
  buffered: number;
  /** Largest bufferedBytes seen after draining. */
  maxBuffered: number;
}

function stream(bytes: Buffer, chunkSizes: readonly number[], limits: ParserLimits): StreamResult {
  const parser = new RequestParser(limits);
  const commands: Buffer[][] = [];
  let maxBuffered = 0;
  let offset = 0;
  let k = 0;
  while (offset < bytes.length) {
    const size = chunkSizes.length === 0 ? bytes.length : Math.max(1, chunkSizes[k++ % chunkSizes.length]!);
    // Copy each chunk: the test must not pass if the parser only works on one shared buffer.
    parser.feed(Buffer.from(bytes.subarray(offset, offset + size)));
    offset += size;
    try {
      for (let c = parser.next(); c !== undefined; c = parser.next()) {
        if (c.length === 0) throw new Error('empty command');
        commands.push(c);
      }
    } catch (err) {
      if (err instanceof ProtocolError) return { commands, error: err.message, buffered: parser.bufferedBytes, maxBuffered };
      throw err;
    }
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
  }
  return { commands, buffered: parser.bufferedBytes, maxBuffered };
}

/**
 * stream() as the connection reads: nextRaw first (its args() kept as the command), next()
 * when it declines; `rawEvery` picks which commands try nextRaw (a bit mask over the count).
 */
function streamRaw(bytes: Buffer, chunkSizes: readonly number[], limits: ParserLimits, rawEvery: number): Outcome {
  const parser = new RequestParser(limits);
  const commands: Buffer[][] = [];
  let offset = 0;
  let k = 0;
  while (offset < bytes.length) {
    const size = chunkSizes.length === 0 ? bytes.length : Math.max(1, chunkSizes[k++ % chunkSizes.length]!);
    parser.feed(Buffer.from(bytes.subarray(offset, offset + size)));
    offset += size;
    try {
      for (;;) {
        const tryRaw = ((rawEvery >>> (commands.length % 31)) & 1) === 1;
        const raw = tryRaw ? parser.nextRaw() : undefined;
        if (raw !== undefined) {
          if (raw.count === 0) throw new Error('empty raw command');
          const args = raw.args();
          for (let i = 0; i < raw.count; i++) if (!raw.view(i).equals(args[i]!)) throw new Error('view differs from args');
          commands.push(args);
          continue;
        }
        const c = parser.next();
        if (c === undefined) break;
        commands.push(c);
      }
    } catch (err) {
      if (err instanceof ProtocolError) return { commands, error: err.message };
      throw err;
    }
  }
  return { commands };
}

/** What the limits allow after draining (parser-limits.ts). */
const bufferBound = (l: ParserLimits): number =>
  (l.maxMultibulkLength - 1) * (l.maxBulkBytes + ARG_HEAP_OVERHEAD_BYTES) + Math.max(l.maxInlineBytes + 1, l.maxBulkBytes + 2);

const same = (a: Outcome, b: Outcome): boolean =>
  a.error === b.error &&
  a.commands.length === b.commands.length &&
  a.commands.every((c, i) => c.length === b.commands[i]!.length && c.every((arg, j) => arg.equals(b.commands[i]![j]!)));

const show = (o: Outcome): string =>
  JSON.stringify({ error: o.error, commands: o.commands.map((c) => c.map((a) => a.toString('latin1'))) });

// ---- generators --------------------------------------------------------------------------------

const multibulkArg = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 3, arbitrary: fc.array(fc.constantFrom(0, 13, 10, 36, 42, 48, 0x20, 0x22), { maxLength: 8 }).map((a) => Uint8Array.from(a)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 50, maxLength: 400 }) },
);

interface Frame {
  bytes: Buffer;
  /** The command it must parse to; undefined for no-ops. */
  command?: Buffer[];
}

const multibulkFrame: fc.Arbitrary<Frame> = fc.array(multibulkArg, { minLength: 1, maxLength: 6 }).map((args) => {
  const bufs = args.map((a) => Buffer.from(a));
  const parts = [Buffer.from(`*${bufs.length}\r\n`)];
  for (const b of bufs) parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  return { bytes: Buffer.concat(parts), command: bufs };
});

const PLAIN = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.-+$#@!';
const plainToken = fc
  .array(fc.oneof(fc.constantFrom(...PLAIN.split('').map((c) => c.charCodeAt(0))), fc.integer({ min: 0x80, max: 0xff })), { minLength: 1, maxLength: 10 })
  .map((bytes) => ({ wire: Buffer.from(bytes), value: Buffer.from(bytes) }));
/** Any bytes, double-quoted: controls, quotes and backslashes escaped as Redis's unescaping reads them. */
const doubleQuoted = fc.uint8Array({ maxLength: 12 }).map((bytes) => {
  let wire = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) wire += '\\' + String.fromCharCode(b);
    else if (b < 0x20 || b === 0x7f) wire += '\\x' + b.toString(16).padStart(2, '0');
    else wire += String.fromCharCode(b);
  }
  return { wire: Buffer.from(wire + '"', 'latin1'), value: Buffer.from(bytes) };
});
// A value ending in a backslash cannot be single-quoted (the closing quote would be escaped).
const singleQuoted = fc.array(fc.constantFrom(...'abc "\\xyz\''.split('')), { maxLength: 8 }).filter((c) => c[c.length - 1] !== '\\').map((chars) => {
  const value = chars.join('');
  return { wire: Buffer.from("'" + value.replace(/'/g, "\\'") + "'", 'latin1'), value: Buffer.from(value, 'latin1') };
});
const separator = fc.array(fc.constantFrom(' ', '\t', ' '), { minLength: 1, maxLength: 3 }).map((s) => s.join(''));

const inlineFrame: fc.Arbitrary<Frame> = fc
  .tuple(plainToken, fc.array(fc.tuple(separator, fc.oneof(plainToken, doubleQuoted, singleQuoted)), { maxLength: 5 }), fc.constantFrom('\r\n', '\n', ' \r\n'))
  .map(([first, rest, eol]) => {
    const parts = [first.wire];
    const command = [first.value];
    for (const [sep, token] of rest) {
      parts.push(Buffer.from(sep), token.wire);
      command.push(token.value);
    }
    parts.push(Buffer.from(eol));
    return { bytes: Buffer.concat(parts), command };
  });

const noopFrame: fc.Arbitrary<Frame> = fc.constantFrom('*0\r\n', '*-1\r\n', '*-10\r\n', '\r\n', '\n', '  \t\r\n').map((s) => ({ bytes: Buffer.from(s) }));

const validStream = fc.array(fc.oneof({ weight: 5, arbitrary: multibulkFrame }, { weight: 2, arbitrary: inlineFrame }, { weight: 1, arbitrary: noopFrame }), {
  minLength: 1,
  maxLength: 12,
});

const chunkSizes = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 });

const limitsArb: fc.Arbitrary<ParserLimits> = fc.constantFrom<ParserLimits>(
  DEFAULT_PARSER_LIMITS,
  { maxInlineBytes: 24, maxBulkBytes: 16, maxMultibulkLength: 4 },
  { maxInlineBytes: 8, maxBulkBytes: 3, maxMultibulkLength: 2 },
  { maxInlineBytes: 40, maxBulkBytes: 64, maxMultibulkLength: 16, unauthenticated: { maxMultibulkLength: 3, maxBulkBytes: 10 } },
  { ...DEFAULT_PARSER_LIMITS, unauthenticated: UNAUTHENTICATED_LIMITS },
);

/** Edits that push a valid stream into the error paths. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 13, 10, 36, 42, 45, 43, 48, 49, 57, 0x22, 0x27, 0x5c, 0x20, 0xff) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom('\0', '\r', '\n', '*', '$', '-1', '0', '99999999999', '"', "'", '\\x', '*3\r\n', '$-10\r\n', '$2000000000\r\n', '*+1\r\n', '$03\r\n') }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
);

type Edit = { kind: 'set'; at: number; byte: number } | { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number; length: number };

function applyEdits(bytes: Buffer, edits: readonly Edit[]): Buffer {
  let out = Buffer.from(bytes);
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % out.length;
    if (e.kind === 'set') {
      if (out.length > 0) out[at] = e.byte;
    } else if (e.kind === 'insert') {
      out = Buffer.concat([out.subarray(0, at), Buffer.from(e.text, 'latin1'), out.subarray(at)]);
    } else {
      out = Buffer.concat([out.subarray(0, at), out.subarray(at + e.length)]);
    }
  }
  return out;
}

const rawBytes = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(0x2a, 0x24, 0x0d, 0x0a, 0x30, 0x31, 0x32, 0x39, 0x2d, 0x20, 0x22, 0x27, 0x5c, 0x78, 0x61, 0x00) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    ),
    { maxLength: 120 },
  )
  .map((a) => Buffer.from(a));

// ---- properties ---------------------------------------------------------------------------------

t.test('valid streams round-trip exactly at any chunking', async (t) => {
  fc.assert(
    fc.property(validStream, chunkSizes, (frames, sizes) => {
      const bytes = Buffer.concat(frames.map((f) => f.bytes));
      const want: Outcome = { commands: frames.flatMap((f) => (f.command ? [f.command] : [])) };
      const got = stream(bytes, sizes, DEFAULT_PARSER_LIMITS);
      if (!same(got, want) || got.buffered !== 0) throw new Error(`got ${show(got)} buffered ${got.buffered}, want ${show(want)}`);
    }),
    { numRuns: RUNS_VALID },
  );
  t.pass(`${RUNS_VALID} valid streams`);
});

/** Checks one stream against the model, whole and re-split. */
function checkAgainstModel(bytes: Buffer, sizes: readonly number[], limits: ParserLimits): void {
  const want = model(bytes, limits);
  const whole = stream(bytes, [], limits);
  const split = stream(bytes, sizes, limits);
  for (const [name, got] of [['whole', whole], ['split', split]] as const) {
    if (!same(got, want) || got.buffered !== want.buffered) {
      throw new Error(`${name}: got ${show(got)} buffered ${got.buffered}, model ${show(want)} buffered ${want.buffered}`);
    }
    if (got.maxBuffered > bufferBound(limits)) throw new Error(`${name}: buffered ${got.maxBuffered} > bound ${bufferBound(limits)}`);
  }
}

t.test('mutated streams: same outcome as the model, whole or re-split', async (t) => {
  fc.assert(
    fc.property(validStream, fc.array(mutation, { minLength: 1, maxLength: 3 }), chunkSizes, limitsArb, (frames, edits, sizes, limits) => {
      checkAgainstModel(applyEdits(Buffer.concat(frames.map((f) => f.bytes)), edits), sizes, limits);
    }),
    { numRuns: RUNS_MUTATED },
  );
  t.pass(`${RUNS_MUTATED} mutated streams`);
});

t.test('raw bytes: only ProtocolError or need-more, same as the model, bounded buffering', async (t) => {
  fc.assert(
    fc.property(rawBytes, chunkSizes, limitsArb, (bytes, sizes, limits) => {
      checkAgainstModel(bytes, sizes, limits);
    }),
    { numRuns: RUNS_RAW },
  );
  t.pass(`${RUNS_RAW} raw byte streams`);
});

t.test('large bulks fed in small chunks round-trip (tail buffers, straddles)', async (t) => {
  const bigFrame: fc.Arbitrary<Frame> = fc
    .tuple(fc.integer({ min: 15_000, max: 40_000 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 8 }))
    .map(([length, seed, small]) => {
      const big = Buffer.alloc(length);
      for (let i = 0; i < length; i++) big[i] = (i * 131 + seed) & 0xff;
      const args = [Buffer.from('SET'), Buffer.from(small), big];
      const parts = [Buffer.from(`*3\r\n`)];
      for (const b of args) parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
      // Counterexamples print as this, not as 40 KB of bytes.
      return { bytes: Buffer.concat(parts), command: args, [fc.toStringMethod]: () => `bigFrame(${length}, ${seed}, [${small.join(',')}])` };
    });
  const sizes = fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 500, max: 20_000 })), { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(fc.array(fc.oneof(bigFrame, multibulkFrame, inlineFrame), { minLength: 1, maxLength: 4 }), sizes, (frames, chunking) => {
      const bytes = Buffer.concat(frames.map((f) => f.bytes));
      const want: Outcome = { commands: frames.flatMap((f) => (f.command ? [f.command] : [])) };
      const got = stream(bytes, chunking, DEFAULT_PARSER_LIMITS);
      if (!same(got, want) || got.buffered !== 0) throw new Error(`got ${show(got).slice(0, 300)}, want ${show(want).slice(0, 300)}`);
    }),
    { numRuns: RUNS_BIG },
  );
  t.pass(`${RUNS_BIG} streams with large bulks`);
});

t.test('nextRaw mixed with next gives the commands and errors next alone gives', async (t) => {
  const runs = 10_000 * SCALE;
  fc.assert(
    fc.property(validStream, fc.array(mutation, { maxLength: 2 }), chunkSizes, limitsArb, fc.integer(), (frames, edits, sizes, limits, mask) => {
      const bytes = applyEdits(Buffer.concat(frames.map((f) => f.bytes)), edits);
      for (const chunking of [[], sizes]) {
        const plain = stream(bytes, chunking, limits);
        const mixed = streamRaw(bytes, chunking, limits, mask);
        if (!same(plain, mixed)) throw new Error(`next: ${show(plain)}, nextRaw + next: ${show(mixed)}`);
      }
    }),
    { numRuns: runs },
  );
  t.pass(`${runs} streams`);
});

t.test('the model agrees with the table on a few known inputs (guards the model itself)', async (t) => {
  const m = (s: string): string => show(model(Buffer.from(s, 'latin1'), DEFAULT_PARSER_LIMITS));
  t.equal(m('*1\r\n$4\r\nPING\r\n'), show({ commands: [[Buffer.from('PING')]] }));
  t.equal(m('*1\r\n$+3\r\n'), show({ commands: [], error: 'ERR Protocol error: invalid bulk length' }));
  t.equal(m('*1\rX$4\r\nPING\r\n'), show({ commands: [[Buffer.from('PING')]] }));
  t.equal(m('*2\r\n\r\n'), show({ commands: [], error: "ERR Protocol error: expected '$', got ' '" }));
});
