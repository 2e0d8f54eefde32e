/**
 * Request parsing speed: ringkv's RequestParser against npm redis-parser (used as a request
 * parser: a request is a RESP array of bulk strings, so it parses them with returnBuffers) on
 * pipelined frames, as a server reads them: the stream is cut into 64 KiB chunks at arbitrary
 * byte offsets, each chunk fed, and every complete command taken out as an array of Buffers.
 *
 *   node .build/<name>/bench/resp.js [--rounds 9] [--commands 200000] [--quick] [--out bench/results]
 *
 * Contenders run in alternating rounds (bench/lib/alternate.ts); the table reports the median
 * commands/s of each and the ratio ringkv / redis-parser. Writes resp.md and resp.svg.
 *
 * Second part, the encoder: replies of one pipelined batch through a ReplyBuffer (Reply objects
 * pushed, one take() per batch) against the way bench/bare_node_server.ts answers (a Buffer per
 * header, the value Buffer, CRLF, then one Buffer.concat per batch), same bytes out.
 * Writes resp-encoder.svg; both tables go into resp.md.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import RedisParser from 'redis-parser';
import { RequestParser, DEFAULT_PARSER_LIMITS } from '../src/resp/parser.js';
import { ReplyBuffer } from '../src/resp/encoder.js';
import * as R from '../src/resp/reply.js';
import {
  runAlternating,
  median,
  medians,
  relativeSpread,
  ratio,
  formatNumber,
  formatRatio,
  markdownTable,
  codeBlock,
  barChartSvg,
  describeEnvironment,
  commandLine,
  type Contender,
  flagValue,
} from './lib/index.js';

/** Socket read size the server sees under load (Node's default highWaterMark is 64 KiB). */
const CHUNK_BYTES = 64 * 1024;
const KEY_SPACE = 100_000;
const VALUE_BYTES_SMALL = 100;
const VALUE_BYTES_LARGE = 16 * 1024;

interface Options {
  rounds: number;
  commands: number;
  out: string;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => flagValue(argv, name);
  const quick = argv.includes('--quick');
  return {
    rounds: Number(get('--rounds') ?? (quick ? 3 : 9)),
    commands: Number(get('--commands') ?? (quick ? 20_000 : 200_000)),
    out: get('--out') ?? 'bench/results',
  };
}

function frame(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

interface Workload {
  name: string;
  chunks: Buffer[];
  commands: number;
  bytes: number;
}

/** A pipelined stream of `count` commands, cut into CHUNK_BYTES pieces (mid-frame, as TCP does). */
function workload(name: string, count: number, make: (i: number) => Buffer[]): Workload {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(frame(make(i)));
  const stream = Buffer.concat(frames);
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += CHUNK_BYTES) chunks.push(stream.subarray(off, off + CHUNK_BYTES));
  return { name, chunks, commands: count, bytes: stream.length };
}

const key = (i: number): Buffer => Buffer.from(`key:${String((i * 7919) % KEY_SPACE).padStart(6, '0')}`);

/** Parses the whole workload once with ringkv's parser; returns commands seen. */
function runRingkv(w: Workload): number {
  const parser = new RequestParser({ ...DEFAULT_PARSER_LIMITS });
  let n = 0;
  let argBytes = 0;
  for (const chunk of w.chunks) {
    parser.feed(chunk);
    for (let cmd = parser.next(); cmd !== undefined; cmd = parser.next()) {
      n++;
      argBytes += cmd[cmd.length - 1]!.length;
    }
  }
  assert.ok(argBytes > 0);
  return n;
}

function runRedisParser(w: Workload): number {
  let n = 0;
  let argBytes = 0;
  const parser = new RedisParser({
    returnBuffers: true,
    returnReply: (reply: Buffer[]) => {
      n++;
      argBytes += reply[reply.length - 1]!.length;
    },
    returnError: (err: Error) => {
      throw err;
    },
  });
  for (const chunk of w.chunks) parser.execute(chunk);
  assert.ok(argBytes > 0);
  return n;
}

interface RoundResult {
  /** Commands per wall-clock second. */
  wall: number;
  /** Commands per CPU second of this process (user + system): less sensitive to other load. */
  cpu: number;
}

/** One round: parse the workload repeatedly for at least `minMs`. */
function measure(w: Workload, run: (w: Workload) => number, minMs: number): RoundResult {
  let commands = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  do {
    const n = run(w);
    assert.equal(n, w.commands, 'parsed every command');
    commands += n;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  } while (elapsedMs < minMs);
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { wall: (commands / elapsedMs) * 1000, cpu: (commands / cpuMs) * 1000 };
}

// ---- encoder ------------------------------------------------------------------------------

const REPLY_BATCH = 1000;
const CRLF_BUF = Buffer.from('\r\n');
const OK_BUF = Buffer.from('+OK\r\n');

interface EncodeWorkload {
  name: string;
  /** Encodes `batches` batches; returns bytes produced. */
  ringkv(batches: number): number;
  bare(batches: number): number;
  repliesPerBatch: number;
}

const byteCount = (x: Buffer | Buffer[]): number => (Array.isArray(x) ? x.reduce((n, b) => n + b.length, 0) : x.length);

function encodeWorkloads(): EncodeWorkload[] {
  const rb = new ReplyBuffer(2);
  const values = Array.from({ length: REPLY_BATCH }, (_, i) => Buffer.alloc(VALUE_BYTES_SMALL, 97 + (i % 26)));
  const bigValues = Array.from({ length: 16 }, (_, i) => Buffer.alloc(VALUE_BYTES_LARGE, 97 + i));
  return [
    {
      name: `GET reply, ${VALUE_BYTES_SMALL} B value`,
      repliesPerBatch: REPLY_BATCH,
      ringkv(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          for (const v of values) rb.push(R.bulk(v));
          bytes += byteCount(rb.take());
        }
        return bytes;
      },
      bare(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          const out: Buffer[] = [];
          for (const v of values) out.push(Buffer.from(`$${v.length}\r\n`), v, CRLF_BUF);
          bytes += Buffer.concat(out).length;
        }
        return bytes;
      },
    },
    {
      name: 'SET reply (+OK)',
      repliesPerBatch: REPLY_BATCH,
      ringkv(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          for (let i = 0; i < REPLY_BATCH; i++) rb.push(R.OK);
          bytes += byteCount(rb.take());
        }
        return bytes;
      },
      bare(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          const out: Buffer[] = [];
          for (let i = 0; i < REPLY_BATCH; i++) out.push(OK_BUF);
          bytes += Buffer.concat(out).length;
        }
        return bytes;
      },
    },
    {
      name: 'INCR reply (integer)',
      repliesPerBatch: REPLY_BATCH,
      ringkv(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          for (let i = 0; i < REPLY_BATCH; i++) rb.push(R.integer(b * REPLY_BATCH + i));
          bytes += byteCount(rb.take());
        }
        return bytes;
      },
      bare(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          const out: Buffer[] = [];
          for (let i = 0; i < REPLY_BATCH; i++) out.push(Buffer.from(`:${b * REPLY_BATCH + i}\r\n`));
          bytes += Buffer.concat(out).length;
        }
        return bytes;
      },
    },
    {
      name: `GET reply, ${VALUE_BYTES_LARGE / 1024} KiB value`,
      repliesPerBatch: bigValues.length,
      ringkv(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          for (const v of bigValues) rb.push(R.bulk(v));
          bytes += byteCount(rb.take());
        }
        return bytes;
      },
      bare(batches) {
        let bytes = 0;
        for (let b = 0; b < batches; b++) {
          const out: Buffer[] = [];
          for (const v of bigValues) out.push(Buffer.from(`$${v.length}\r\n`), v, CRLF_BUF);
          bytes += Buffer.concat(out).length;
        }
        return bytes;
      },
    },
  ];
}

/** One round of an encoder contender: at least `minMs` of batches; replies per CPU second and wall second. */
function measureEncode(w: EncodeWorkload, which: 'ringkv' | 'bare', minMs: number): RoundResult {
  let replies = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  do {
    if (which === 'ringkv') w.ringkv(10);
    else w.bare(10);
    replies += 10 * w.repliesPerBatch;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  } while (elapsedMs < minMs);
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (replies / elapsedMs) * 1000, cpu: (replies / ((cpu.user + cpu.system) / 1000)) * 1000 };
}

async function encoderSection(rounds: number, minMs: number): Promise<{ table: string; svg: string }> {
  const workloads = encodeWorkloads();
  for (const w of workloads) assert.equal(w.ringkv(1), w.bare(1), `${w.name}: same bytes`);
  const rows: Array<Array<string | number>> = [];
  const ours: number[] = [];
  const bare: number[] = [];
  for (const w of workloads) {
    const cpu = new Map<string, number[]>([
      ['ringkv ReplyBuffer', []],
      ['bare-node concat', []],
    ]);
    const contender = (name: string, which: 'ringkv' | 'bare'): Contender => ({
      name,
      run: async () => {
        const r = measureEncode(w, which, minMs);
        cpu.get(name)!.push(r.cpu);
        return r.wall;
      },
    });
    const samples = await runAlternating([contender('ringkv ReplyBuffer', 'ringkv'), contender('bare-node concat', 'bare')], {
      rounds,
      warmupRounds: 2,
    });
    const med = medians(samples);
    const cpuA = median(cpu.get('ringkv ReplyBuffer')!.slice(2));
    const cpuB = median(cpu.get('bare-node concat')!.slice(2));
    ours.push(cpuA);
    bare.push(cpuB);
    rows.push([
      w.name,
      formatNumber(cpuA),
      formatNumber(cpuB),
      formatRatio(ratio(cpuA, cpuB)),
      formatRatio(ratio(med.get('ringkv ReplyBuffer')!, med.get('bare-node concat')!)),
    ]);
  }
  const table = markdownTable(['reply', 'ringkv replies/CPU-s', 'bare-node replies/CPU-s', 'ratio (CPU)', 'ratio (wall)'], rows);
  const svg = barChartSvg({
    title: 'Reply encoding (median replies per CPU second, higher is better)',
    subtitle: `ringkv ReplyBuffer vs bare-node Buffer.concat, batches of ${REPLY_BATCH}, ${rounds} alternating rounds`,
    categories: workloads.map((w) => w.name),
    series: [
      { name: 'ringkv ReplyBuffer', values: ours },
      { name: 'bare-node concat', values: bare },
    ],
    yLabel: 'replies/s',
    logScale: true,
  });
  return { table, svg };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const env = describeEnvironment();
  const small = Buffer.alloc(VALUE_BYTES_SMALL, 0x78);
  const large = Buffer.alloc(VALUE_BYTES_LARGE, 0x79);
  const workloads: Workload[] = [
    workload('GET (pipelined)', opts.commands, (i) => [Buffer.from('GET'), key(i)]),
    workload(`SET ${VALUE_BYTES_SMALL} B values (pipelined)`, opts.commands, (i) => [Buffer.from('SET'), key(i), small]),
    workload('GET/SET mix 1:1', opts.commands, (i) => (i % 2 === 0 ? [Buffer.from('GET'), key(i)] : [Buffer.from('SET'), key(i), small])),
    workload(`SET ${VALUE_BYTES_LARGE / 1024} KiB values`, Math.max(1000, opts.commands / 50), (i) => [Buffer.from('SET'), key(i), large]),
  ];
  const minMs = opts.commands >= 100_000 ? 400 : 150;
  const rows: Array<Array<string | number>> = [];
  const ringkvSeries: number[] = [];
  const redisSeries: number[] = [];
  for (const w of workloads) {
    // runAlternating records one number per run (wall cmd/s); CPU-time rates are kept aside.
    const cpuRates = new Map<string, number[]>([
      ['ringkv', []],
      ['redis-parser', []],
    ]);
    const contender = (name: string, run: (w: Workload) => number): Contender => ({
      name,
      run: async () => {
        const r = measure(w, run, minMs);
        cpuRates.get(name)!.push(r.cpu);
        return r.wall;
      },
    });
    const samples = await runAlternating([contender('ringkv', runRingkv), contender('redis-parser', runRedisParser)], {
      rounds: opts.rounds,
      warmupRounds: 2,
      onResult: (name, round, value) => process.stderr.write(`${w.name} ${name} round ${round}: ${formatNumber(value)} cmd/s\n`),
    });
    const med = medians(samples);
    const a = med.get('ringkv')!;
    const b = med.get('redis-parser')!;
    // Warm-up rounds are in cpuRates too: drop them (2 per contender).
    const cpuA = median(cpuRates.get('ringkv')!.slice(2));
    const cpuB = median(cpuRates.get('redis-parser')!.slice(2));
    ringkvSeries.push(cpuA);
    redisSeries.push(cpuB);
    rows.push([
      w.name,
      formatNumber(w.bytes / w.commands),
      formatNumber(cpuA),
      formatNumber(cpuB),
      formatRatio(ratio(cpuA, cpuB)),
      formatNumber(a),
      `${(relativeSpread(samples.get('ringkv')!) * 100).toFixed(1)}%`,
      formatNumber(b),
      `${(relativeSpread(samples.get('redis-parser')!) * 100).toFixed(1)}%`,
      formatRatio(ratio(a, b)),
    ]);
  }

  const encoder = await encoderSection(opts.rounds, minMs);
  const md = [
    '# RESP request parsing: ringkv RequestParser vs npm redis-parser',
    '',
    `${env}`,
    '',
    `Pipelined frames as a server reads them: ${formatNumber(opts.commands)} commands per workload (SET 16 KiB: fewer), ` +
      `cut into ${CHUNK_BYTES / 1024} KiB chunks at arbitrary offsets; every command taken out as an array of Buffers. ` +
      `redis-parser 3 is a reply parser used here as a request parser (returnBuffers). ${opts.rounds} alternating rounds ` +
      'after 2 warm-up rounds, each round parsing the workload repeatedly for at least ' +
      `${minMs} ms; medians; spread = median absolute deviation / median (wall). Each round is measured both in ` +
      'wall-clock time and in CPU time of the process (user + system, so GC threads count): on this shared machine ' +
      'the CPU-time ratio is the steadier one. Ratio > 1 means ringkv parses faster.',
    '',
    markdownTable(
      [
        'workload',
        'bytes/cmd',
        'ringkv cmd/CPU-s',
        'redis-parser cmd/CPU-s',
        'ratio (CPU)',
        'ringkv cmd/s (wall)',
        'spread',
        'redis-parser cmd/s (wall)',
        'spread',
        'ratio (wall)',
      ],
      rows,
    ),
    '',
    '## Reply encoding: ReplyBuffer vs the bare Node server\'s concat',
    '',
    `Replies of one pipelined batch (${REPLY_BATCH} replies; 16 for the 16 KiB values) encoded and taken as what one ` +
      'socket write would send. ringkv: Reply objects pushed into a ReplyBuffer (small replies copied into the shared ' +
      'slab, 16 KiB values passed through uncopied). bare-node: a header Buffer per reply, the value, CRLF, one ' +
      'Buffer.concat per batch, as bench/bare_node_server.ts does. Same bytes out (checked). Same rounds and medians as above.',
    '',
    encoder.table,
    '',
    'Command:',
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
  ];
  await fs.mkdir(opts.out, { recursive: true });
  await fs.writeFile(path.join(opts.out, 'resp.md'), md.join('\n'));
  await fs.writeFile(path.join(opts.out, 'resp-encoder.svg'), encoder.svg);
  await fs.writeFile(
    path.join(opts.out, 'resp.svg'),
    barChartSvg({
      title: 'RESP request parsing (median commands per CPU second, higher is better)',
      subtitle: `ringkv RequestParser vs redis-parser, ${opts.rounds} alternating rounds`,
      categories: workloads.map((w) => w.name),
      series: [
        { name: 'ringkv', values: ringkvSeries },
        { name: 'redis-parser', values: redisSeries },
      ],
      yLabel: 'commands/s',
      logScale: true,
    }),
  );
  process.stdout.write(md.join('\n') + '\n');
}

await main();
