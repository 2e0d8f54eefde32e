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
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import RedisParser from 'redis-parser';
import { RequestParser, DEFAULT_PARSER_LIMITS } from '../src/resp/parser.js';
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
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
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
    'Command:',
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
  ];
  await fs.mkdir(opts.out, { recursive: true });
  await fs.writeFile(path.join(opts.out, 'resp.md'), md.join('\n'));
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
