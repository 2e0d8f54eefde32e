/**
 * Cluster bus request throughput: ringkv's ClusterBus (handshake-authenticated connection,
 * request ids, per-request timers, limits checked before allocating) against a bare ceiling: the
 * same frame layout over a plain Node TCP socket with a minimal parser and a pending-request Map,
 * no limits, no timers, no handshake. The ratio is the cost of the bus's machinery. Both run in
 * this one process (client and server share the event loop), over 127.0.0.1.
 *
 *   node .build/<name>/bench/cluster_bus.js [--rounds 7] [--quick] [--out bench/results]
 *
 * Workloads: a window of W requests kept in flight on one connection, payload P bytes, echoed.
 * Also reports the size of a gossip SYNC message (binary codec) against JSON of the same records.
 * Writes cluster_bus.md and cluster_bus.svg.
 */
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { ClusterBus } from '../src/cluster/bus.js';
import { encodeFrameHeader } from '../src/cluster/frame.js';
import { encodeSync } from '../src/cluster/gossip_codec.js';
import type { MemberRecord } from '../src/cluster/membership.js';
import {
  barChartSvg,
  codeBlock,
  codeVersion,
  commandLine,
  describeEnvironment,
  formatBytes,
  formatNumber,
  formatRatio,
  markdownTable,
  median,
  medians,
  ratio,
  relativeSpread,
  runAlternating,
  type Contender,
  flagValue,
} from './lib/index.js';

const HOST = '127.0.0.1';
const ECHO = 0x10;

interface Options {
  rounds: number;
  minMs: number;
  out: string;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => flagValue(argv, name);
  const quick = argv.includes('--quick');
  return {
    rounds: Number(get('--rounds') ?? (quick ? 3 : 7)),
    minMs: quick ? 200 : 500,
    out: get('--out') ?? 'bench/results',
  };
}

/** Something that sends one request and resolves with the echo. */
type Requester = (payload: Buffer) => Promise<Buffer>;

/** Keeps `window` requests in flight for at least minMs; returns requests per second. */
async function drive(request: Requester, payload: Buffer, window: number, minMs: number): Promise<{ wall: number; cpu: number }> {
  let done = 0;
  let stop = false;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const timer = setTimeout(() => (stop = true), minMs);
  const lane = async (): Promise<void> => {
    while (!stop) {
      const r = await request(payload);
      if (r.length !== payload.length) throw new Error('bad echo');
      done++;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const c = process.cpuUsage(cpu0);
  return { wall: (done / ms) * 1000, cpu: (done / ((c.user + c.system) / 1000)) * 1000 };
}

/** The ceiling: same frames, minimal code. */
async function bareEcho(): Promise<{ request: Requester; close: () => Promise<void> }> {
  const parse = (onFrame: (type: number, id: number, payload: Buffer) => void): ((chunk: Buffer) => void) => {
    let buf: Buffer = Buffer.alloc(0);
    return (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let off = 0;
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (buf.length - off < 4 + len) break;
        onFrame(buf[off + 4]!, buf.readUInt32BE(off + 5), buf.subarray(off + 9, off + 4 + len));
        off += 4 + len;
      }
      buf = buf.subarray(off);
    };
  };
  const server = net.createServer({ noDelay: true }, (s) => {
    s.on('data', parse((type, id, payload) => {
      s.cork();
      s.write(encodeFrameHeader(0x05, id, payload.length));
      s.write(payload);
      s.uncork();
      void type;
    }));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const sock = net.connect({ host: HOST, port, noDelay: true });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const pending = new Map<number, (b: Buffer) => void>();
  let next = 1;
  sock.on('data', parse((_t, id, payload) => {
    const p = pending.get(id);
    pending.delete(id);
    p?.(payload);
  }));
  return {
    request: (payload) =>
      new Promise<Buffer>((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        sock.cork();
        sock.write(encodeFrameHeader(ECHO, id, payload.length));
        sock.write(payload);
        sock.uncork();
      }),
    close: async () => {
      sock.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function ringkvEcho(): Promise<{ request: Requester; close: () => Promise<void> }> {
  const server = new ClusterBus({ nodeId: 'bench-server', host: HOST, port: 0, secret: 'bench' });
  server.handle(ECHO, (p) => p);
  await server.listen();
  const client = new ClusterBus({ nodeId: 'bench-client', host: HOST, port: 0, secret: 'bench' });
  const peer = { host: HOST, port: server.port };
  await client.request(peer, ECHO, Buffer.alloc(1), 5000);
  return {
    request: (payload) => client.request(peer, ECHO, payload, 10_000),
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

function syncSizes(): Array<Array<string | number>> {
  const rows: Array<Array<string | number>> = [];
  for (const n of [3, 10, 100, 1000]) {
    const records: MemberRecord[] = Array.from({ length: n }, (_, i) => ({
      id: `${i.toString(16).padStart(8, '0')}${'c0ffee'.repeat(5)}00`.slice(0, 40),
      host: `10.0.${i >> 8}.${i & 255}`,
      port: 7001,
      busPort: 17001,
      dc: 'dc1',
      rack: `rack${i % 3}`,
      weight: 1,
      state: 'up',
      incarnation: 3,
      heartbeat: 123_456 + i,
      suspectedAt: null,
    }));
    const bin = encodeSync({ senderId: records[0]!.id, records }).length;
    const json = Buffer.byteLength(JSON.stringify({ senderId: records[0]!.id, records }));
    rows.push([n, formatBytes(bin), formatBytes(json), formatRatio(json / bin)]);
  }
  return rows;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const env = describeEnvironment();
  const workloads = [
    { name: '1 in flight, 100 B', window: 1, bytes: 100 },
    { name: '64 in flight, 100 B', window: 64, bytes: 100 },
    { name: '64 in flight, 4 KiB', window: 64, bytes: 4096 },
  ];
  const bus = await ringkvEcho();
  const bare = await bareEcho();
  const rows: Array<Array<string | number>> = [];
  const busSeries: number[] = [];
  const bareSeries: number[] = [];
  for (const w of workloads) {
    const payload = Buffer.alloc(w.bytes, 0x61);
    const cpu = new Map<string, number[]>([
      ['ringkv bus', []],
      ['bare framing', []],
    ]);
    const contender = (name: string, r: Requester): Contender => ({
      name,
      run: async () => {
        const x = await drive(r, payload, w.window, opts.minMs);
        cpu.get(name)!.push(x.cpu);
        return x.wall;
      },
    });
    const samples = await runAlternating([contender('ringkv bus', bus.request), contender('bare framing', bare.request)], {
      rounds: opts.rounds,
      warmupRounds: 1,
      onResult: (name, round, v) => process.stderr.write(`${w.name} ${name} round ${round}: ${formatNumber(v)} req/s\n`),
    });
    const med = medians(samples);
    const a = med.get('ringkv bus')!;
    const b = med.get('bare framing')!;
    const cpuA = median(cpu.get('ringkv bus')!.slice(1));
    const cpuB = median(cpu.get('bare framing')!.slice(1));
    busSeries.push(a);
    bareSeries.push(b);
    rows.push([
      w.name,
      formatNumber(a),
      `${(relativeSpread(samples.get('ringkv bus')!) * 100).toFixed(1)}%`,
      formatNumber(b),
      `${(relativeSpread(samples.get('bare framing')!) * 100).toFixed(1)}%`,
      formatRatio(ratio(a, b)),
      formatRatio(ratio(cpuA, cpuB)),
    ]);
  }
  await bus.close();
  await bare.close();

  const md = [
    '# Cluster bus: ringkv ClusterBus vs bare framing over TCP',
    '',
    env,
    '',
    `Code: ${codeVersion(['src/cluster/bus.ts', 'src/cluster/connection.ts', 'src/cluster/frame.ts', 'src/cluster/gossip_codec.ts'])}`,
    '',
    'Request/response echo on one connection over 127.0.0.1, client and server in one process (they share the event ' +
      'loop, so absolute numbers are about half of what two processes would do). "bare framing" is the same frame ' +
      'layout with a minimal parser and a pending Map: no handshake, limits, timers or backpressure, the ceiling of ' +
      `the runtime. ${opts.rounds} alternating rounds after 1 warm-up round, each at least ${opts.minMs} ms; medians; ` +
      'spread = median absolute deviation / median. Ratio < 1 is the cost of the bus (per-request timer, id map, ' +
      'limit checks, stats). The CPU ratio divides requests per CPU second of the process.',
    '',
    markdownTable(['workload', 'ringkv bus req/s', 'spread', 'bare req/s', 'spread', 'ratio (wall)', 'ratio (CPU)'], rows),
    '',
    '## Gossip SYNC message size (binary codec vs JSON of the same records)',
    '',
    '40-character node ids, IPv4 hosts, rack names; a SYNC carries the whole table (push-pull).',
    '',
    markdownTable(['members', 'binary', 'JSON', 'JSON / binary'], syncSizes()),
    '',
    'Command:',
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
  ];
  await fs.mkdir(opts.out, { recursive: true });
  await fs.writeFile(path.join(opts.out, 'cluster_bus.md'), md.join('\n'));
  await fs.writeFile(
    path.join(opts.out, 'cluster_bus.svg'),
    barChartSvg({
      title: 'Cluster bus request throughput (median requests/s, higher is better)',
      subtitle: `ringkv ClusterBus vs bare framing, one connection, ${opts.rounds} alternating rounds`,
      categories: workloads.map((w) => w.name),
      series: [
        { name: 'ringkv bus', values: busSeries },
        { name: 'bare framing', values: bareSeries },
      ],
      yLabel: 'requests/s',
    }),
  );
  process.stdout.write(md.join('\n') + '\n');
}

await main();
