/**
 * Issue 6's measurement: add a 4th node to a 3-node cluster holding data, under client load.
 * Real processes on loopback (test/helpers/node_process.ts), N=3 W=2 R=2.
 *
 *   load --mb of user data (4 KiB values; "a cluster holding 1 GB" = --mb 1024 of values, each
 *   stored N=3 times) through the 3 nodes with pipelined SETs, all three nodes at once
 *   per round (alternating, so before/during share the machine's noise):
 *     before: --window-ms of closed-loop client load (bench/lib/closed_loop.ts, 80% GET, 20% SET)
 *     during: start a fresh node with join-streaming yes and the same load until it is `up`
 *     cp: a plain `cp` + sync of a file as large as the bytes this round streamed, on the same
 *         disk as the nodes' data (the machine's physical limit for moving those bytes)
 *     then CLUSTER LEAVE the new node (it streams its slots back and stops) to return to 3 nodes
 *
 * Reports: time to join, MB/s streamed vs cp, objects and bytes moved vs the ideal N/(n+1)
 * share, client ops/s and p99 during the join as a ratio to before, the load average.
 * Writes bench/results/<name>.md + .svg.
 *
 *   node <build>/bench/join.js [--mb 64] [--rounds 2] [--rate 0] [--window-ms 4000] [--clients 8] [--name join] [--out dir]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { startNode, startNodes, type RingkvNode } from '../test/helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../test/helpers/ports.js';
import { elasticConfig, N } from '../test/cluster/elastic_harness.js';
import { closedLoop, type LoadResult } from './lib/closed_loop.js';
import { barChartSvg, codeBlock, codeVersion, commandLine, describeEnvironment, flagValue, formatRatio, markdownTable, median, percentile } from './lib/index.js';

const argv = process.argv.slice(2);
const MB = Number(flagValue(argv, '--mb') ?? 64);
const ROUNDS = Number(flagValue(argv, '--rounds') ?? 2);
const RATE = flagValue(argv, '--rate') ?? '0';
const WINDOW_MS = Number(flagValue(argv, '--window-ms') ?? 4000);
const CLIENTS = Number(flagValue(argv, '--clients') ?? 8);
const VALUE_BYTES = 4096;
const OUT_DIR = path.resolve(flagValue(argv, '--out') ?? 'bench/results');
/** Base name of the results files. */
const NAME = flagValue(argv, '--name') ?? 'join';

/** The tests' cluster config (N=3 R=2 W=2) with the bench's timing: default vnodes, slower gossip under load. */
function config(busPort: number, seeds: string, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return elasticConfig(busPort, seeds, {
    vnodes: 256,
    'gossip-interval-ms': 200,
    'node-timeout-ms': 3000,
    'request-timeout-ms': 10000,
    appendfsync: 'everysec',
    'stream-max-bytes-per-sec': RATE,
    ...extra,
  });
}

const connect = async (port: number): Promise<Redis> => {
  const c = new Redis({ host: LOOPBACK_HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
};

async function info(c: Redis): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of String(await c.call('CLUSTER', 'INFO')).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Closed-loop load on `clients` until `until` settles: 80% GET, 20% SET of 4 KiB on random keys. */
function load(clients: readonly Redis[], keys: number, until: Promise<unknown>): Promise<LoadResult> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  return closedLoop(
    CLIENTS,
    (loop, i) => {
      const c = clients[(i + loop) % clients.length] as Redis;
      const k = `bk:${Math.floor(Math.random() * keys)}`;
      return Math.random() < 0.2 ? c.set(k, value) : c.get(k);
    },
    until,
  );
}

/** MB/s of `cp src dst && sync` for a file of `bytes` in `dir` (written and synced first). */
function copyMbps(dir: string, bytes: number): number {
  const tmp = fs.mkdtempSync(path.join(dir, 'ringkv-join-cp-'));
  try {
    const src = path.join(tmp, 'src');
    const chunk = Buffer.alloc(1024 * 1024, 0x63);
    const fd = fs.openSync(src, 'w');
    for (let w = 0; w < bytes; w += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - w));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const t0 = performance.now();
    execFileSync('cp', [src, path.join(tmp, 'dst')]);
    execFileSync('sync');
    return bytes / 1e6 / ((performance.now() - t0) / 1000);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Pipelined SETs of `bk:0..keys-1`, the three nodes loaded at once, PIPELINE_KEYS per round trip. */
async function loadData(clients: readonly Redis[], keys: number): Promise<void> {
  const PIPELINE_KEYS = 256;
  const value = Buffer.alloc(VALUE_BYTES, 0x62);
  let nextKey = 0;
  await Promise.all(
    clients.map(async (c) => {
      for (let i = nextKey; i < keys; i = nextKey) {
        nextKey = Math.min(keys, i + PIPELINE_KEYS);
        const p = c.pipeline();
        for (let j = i; j < nextKey; j++) p.set(`bk:${j}`, value);
        const res = await p.exec();
        for (const [err] of res ?? []) if (err) throw err;
      }
    }),
  );
}

async function main(): Promise<void> {
  const busPorts = await freePorts(3 + ROUNDS);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const started: RingkvNode[] = [];
  try {
    const nodes = await startNodes(null, 3, (i, ports) => ({ config: config(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(',')) }));
    started.push(...nodes);
    const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
    const clients = await Promise.all(nodes.map((n) => connect(n.port)));
    for (;;) {
      const sizes = await Promise.all(clients.map(async (c) => String(await c.call('CLUSTER', 'NODES')).trim().split('\n').length));
      if (sizes.every((s) => s === 3)) break;
      await sleep(100);
    }
    const keys = Math.floor((MB * 1024 * 1024) / VALUE_BYTES);
    const loadStart = performance.now();
    await loadData(clients, keys);
    const loadMs = performance.now() - loadStart;
    process.stderr.write(`loaded ${keys} keys (${MB} MB) in ${(loadMs / 1000).toFixed(1)} s\n`);

    const rows: Array<Record<string, number>> = [];
    /** Writes the results of the rounds so far (after every round: a long run that is cut short keeps them). */
    const report = (): void => {
      const med = (k: string): number => median(rows.map((x) => x[k]!));
      const cp = med('cpMbps');
      const copyBytes = Math.round(med('bytes'));
      const table = markdownTable(
        ['round', 'join s', 'streaming s', 'MB streamed', 'MB/s', 'cp MB/s', 'objects moved / ideal', 'bytes moved / ideal', 'load avg', 'ops/s before', 'ops/s during', 'during/before', 'p99 ms before', 'p99 ms during', 'client errors'],
        rows.map((x) => [
          x.round!,
          (x.joinMs! / 1000).toFixed(1),
          (x.streamMs! / 1000).toFixed(1),
          (x.bytes! / 1e6).toFixed(1),
          x.mbps!.toFixed(1),
          x.cpMbps!.toFixed(0),
          `${x.objects} / ${x.idealObjects} = ${formatRatio(x.objects! / x.idealObjects!)}`,
          `${(x.bytes! / 1e6).toFixed(1)} / ${(x.idealBytes! / 1e6).toFixed(1)} MB = ${formatRatio(x.bytes! / x.idealBytes!)}`,
          x.loadAvg!.toFixed(1),
          x.beforeOps!.toFixed(0),
          x.duringOps!.toFixed(0),
          formatRatio(x.duringOps! / x.beforeOps!),
          x.beforeP99!.toFixed(1),
          x.duringP99!.toFixed(1),
          x.errors!,
        ]),
      );
      const md = [
        '# Join of a 4th node under load (issue 6)',
        '',
        `${describeEnvironment()}. Code: ${codeVersion(['src/cluster', 'src/coordinator'])}.`,
        '',
        codeBlock(commandLine(import.meta.url), 'sh'),
        `Data: ${keys} keys x ${VALUE_BYTES} B = ${MB} MB of user data (values; N=3: ${(MB * 3).toFixed(0)} MB of values stored across the 3 nodes), loaded in ${(loadMs / 1000).toFixed(1)} s. ` +
          `"A cluster holding 1 GB" is read as 1 GB of user data (--mb 1024), not 1 GB of stored copies. ` +
          `Load: ${CLIENTS} closed-loop clients, 80% GET / 20% SET of 4 KiB, R=2 W=2; stream-max-bytes-per-sec ${RATE} (0 = unlimited).`,
        '',
        table,
        '',
        `Medians: join ${(med('joinMs') / 1000).toFixed(1)} s; streaming ${med('mbps').toFixed(1)} MB/s vs plain \`cp\` of the same ${(copyBytes / 1e6).toFixed(1)} MB ${cp.toFixed(0)} MB/s ` +
          `(ratio ${formatRatio(med('mbps') / cp)}); objects moved / ideal N/(n+1) share ${formatRatio(med('objects') / med('idealObjects'))}, bytes ${formatRatio(med('bytes') / med('idealBytes'))}; ` +
          `1-minute load average during the join (median of samples) ${med('loadAvg').toFixed(1)}; ` +
          `client throughput during/before ${formatRatio(med('duringOps') / med('beforeOps'))}, p99 ${med('beforeP99').toFixed(1)} -> ${med('duringP99').toFixed(1)} ms.`,
        '',
        'Notes: "ideal" is the new node\'s share of object copies, keys x N / 4 (every key it becomes a replica of), and for bytes that many objects at the mean streamed size; writes during the join add a little. ' +
          'Streamed bytes are keys plus stored object encodings. The cp figure (`cp` of a synced file of the same size plus `sync`, on the disk of the nodes\' data, once per round right after the join) ' +
          'mostly reads from the page cache; the streaming figure includes the scan on the source, the bus, and the merge into the LSM engine (WAL + memtable) on the receiver, with client load running.',
        '',
      ].join('\n');
      fs.mkdirSync(OUT_DIR, { recursive: true });
      fs.writeFileSync(path.join(OUT_DIR, `${NAME}.md`), md);
      fs.writeFileSync(
        path.join(OUT_DIR, `${NAME}.svg`),
        barChartSvg({
          title: `Join of a 4th node: client load before vs during (medians of ${rows.length} rounds, ${MB} MB)`,
          subtitle: `stream ${med('mbps').toFixed(1)} MB/s vs cp ${cp.toFixed(0)} MB/s; objects moved/ideal ${formatRatio(med('objects') / med('idealObjects'))}`,
          categories: ['ops/s (x100)', 'p99 ms'],
          series: [
            { name: 'before (3 nodes)', values: [med('beforeOps') / 100, med('beforeP99')] },
            { name: 'during the join', values: [med('duringOps') / 100, med('duringP99')] },
          ],
        }),
      );
      process.stdout.write(md);
    };
    for (let r = 0; r < ROUNDS; r++) {
      const before = await load(clients, keys, sleep(WINDOW_MS));
      const joinStart = performance.now();
      let joinedAt = 0;
      let streamStart = 0;
      let last = new Map<string, string>();
      const loadAvg: number[] = [];
      const joined = (async () => {
        const d = await startNode(null, { config: config(busPorts[3 + r]!, seeds, { 'join-streaming': 'yes' }) });
        started.push(d);
        const dc = await connect(d.port);
        for (;;) {
          last = await info(dc);
          if (streamStart === 0 && Number(last.get('stream_bytes_streamed')) > 0) streamStart = performance.now();
          loadAvg.push(os.loadavg()[0] as number);
          if (last.get('stream_state') === 'idle') break;
          await sleep(100);
        }
        joinedAt = performance.now();
        return { d, dc };
      })();
      const during = await load(clients, keys, joined);
      const { d, dc } = await joined;
      const bytes = Number(last.get('stream_bytes_streamed'));
      const objects = Number(last.get('stream_keys_streamed'));
      const streamMs = joinedAt - (streamStart || joinStart);
      const cp = copyMbps(path.dirname(d.dir), bytes);
      rows.push({
        round: r + 1,
        joinMs: joinedAt - joinStart,
        streamMs,
        bytes,
        objects,
        idealObjects: (keys * N) / 4,
        // Ideal bytes: the ideal object copies at this join's mean streamed bytes per object.
        idealBytes: ((keys * N) / 4) * (bytes / objects),
        mbps: bytes / 1e6 / (streamMs / 1000),
        cpMbps: cp,
        loadAvg: median(loadAvg),
        beforeOps: (before.ops * 1000) / before.elapsedMs,
        duringOps: (during.ops * 1000) / during.elapsedMs,
        beforeP99: percentile(before.latenciesMs, 99),
        duringP99: percentile(during.latenciesMs, 99),
        errors: before.errors + during.errors,
      });
      process.stderr.write(`round ${r + 1}: ${JSON.stringify(rows[rows.length - 1])}\n`);
      report();
      // Back to 3 nodes: the joined node leaves (streams its slots back) and stops.
      await dc.call('CLUSTER', 'LEAVE');
      dc.disconnect();
      for (let i = 0; d.running && i < 600; i++) await sleep(200);
      for (;;) {
        const infos = await Promise.all(clients.map(info));
        if (infos.every((x) => x.get('stream_ring_slots_moving') === '0' && x.get('stream_slots_remaining') === '0')) break;
        await sleep(200);
      }
      await sleep(3000); // drops of the returned slots
    }
    for (const c of clients) c.disconnect();
  } finally {
    await Promise.all(started.map((n) => n.dispose()));
  }
}

await main();
