/**
 * Hinted handoff drain speed on a real 3-node cluster (N=2, W=2) on loopback (issue 5).
 *
 * One cluster for the whole run. For each contender (a hint-handoff-batch-keys and
 * hint-handoff-keys-per-second setting), in rotated order round after round:
 *   kill -9 node C, wait until A and B see it down, write --keys fresh keys through A
 *   (pipelined; about 2/3 of them have C as a replica and leave a hint on A or B),
 *   CONFIG SET the contender's batch size and rate on A and B, restart C, then poll INFO
 *   until hints_pending is 0 on both.
 * Reported per contender (medians over rounds): hints drained, time from C ready to the first
 * delivered hint (gossip noticing C + the bus reconnecting: not handoff's own cost), time from the
 * first delivered hint to the last, and that rate in hints/s.
 *
 *   npx tsc -p . --outDir .build/hints && node .build/hints/bench/handoff.js --keys 6000 --rounds 3
 * Writes bench/results/handoff.md and bench/results/handoff.svg.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { barChartSvg, codeBlock, commandLine, codeVersion, describeEnvironment, flagValue, markdownTable, median } from './lib/index.js';
import type { RingkvNode } from '../test/helpers/node_process.js';
import { LOOPBACK_HOST } from '../test/helpers/ports.js';
import { hintInfo, seesDown, startHandoffCluster } from '../test/helpers/handoff_cluster.js';

const POLL_MS = 20;
const WAIT_TIMEOUT_MS = 120_000;
const PIPELINE_CHUNK = 500;

interface Contender {
  readonly name: string;
  readonly batchKeys: number;
  readonly keysPerSecond: number;
}

const CONTENDERS: readonly Contender[] = [
  { name: 'batch 16, unlimited', batchKeys: 16, keysPerSecond: 0 },
  { name: 'batch 128, unlimited', batchKeys: 128, keysPerSecond: 0 },
  { name: 'batch 1024, unlimited', batchKeys: 1024, keysPerSecond: 0 },
  // Rate-limited: the bucket holds max(batch, rate) = 1000 keys, so ~4000 hints take >= 3 s.
  { name: 'batch 128, limit 1000/s', batchKeys: 128, keysPerSecond: 1000 },
];

interface Sample {
  hints: number;
  startMs: number;
  drainMs: number;
}

async function waitUntil(what: string, pred: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await pred())) {
    if (Date.now() - started > WAIT_TIMEOUT_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function hintField(c: Redis, name: string): Promise<number> {
  const v = (await hintInfo(c))[name];
  if (v === undefined) throw new Error(`INFO has no ${name}`);
  return v;
}

function client(port: number): Redis {
  const r = new Redis({ host: LOOPBACK_HOST, port, lazyConnect: false, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  return r;
}

async function runOnce(nodes: RingkvNode[], a: Redis, b: Redis, idC: string, c: Contender, round: number, keys: number): Promise<Sample> {
  const C = nodes[2]!;
  let retries = 0;
  await C.kill9();
  await waitUntil('A and B see C down', async () => (await seesDown(a, idC)) && (await seesDown(b, idC)));
  for (let i = 0; i < keys; i += PIPELINE_CHUNK) {
    const p = a.pipeline();
    for (let j = i; j < Math.min(keys, i + PIPELINE_CHUNK); j++) p.set(`r${round}:${c.batchKeys}:${c.keysPerSecond}:${j}`, 'x'.repeat(100));
    const res = (await p.exec()) ?? [];
    // On this shared, loaded machine a write may time out (NOQUORUM): write that key again.
    for (const [k, [err]] of res.entries()) {
      if (err === null) continue;
      retries++;
      await a.set(`r${round}:${c.batchKeys}:${c.keysPerSecond}:${i + k}`, 'x'.repeat(100));
    }
  }
  for (const x of [a, b]) {
    await x.call('CONFIG', 'SET', 'hint-handoff-batch-keys', String(c.batchKeys));
    await x.call('CONFIG', 'SET', 'hint-handoff-keys-per-second', String(c.keysPerSecond));
  }
  const hints = (await hintField(a, 'hints_pending')) + (await hintField(b, 'hints_pending'));
  const delivered0 = (await hintField(a, 'hints_delivered')) + (await hintField(b, 'hints_delivered'));
  await C.start();
  const ready = Date.now();
  let first = 0;
  await waitUntil('hints drained', async () => {
    if (first === 0 && (await hintField(a, 'hints_delivered')) + (await hintField(b, 'hints_delivered')) > delivered0) first = Date.now();
    return (await hintField(a, 'hints_pending')) === 0 && (await hintField(b, 'hints_pending')) === 0;
  });
  const end = Date.now();
  if (first === 0) first = end;
  if (retries > 0) process.stderr.write(`${retries} writes retried after NOQUORUM\n`);
  return { hints, startMs: first - ready, drainMs: Math.max(1, end - first) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const keys = Number(flagValue(argv, '--keys') ?? 6000);
  const rounds = Number(flagValue(argv, '--rounds') ?? 3);
  const nodes = await startHandoffCluster(null, { 'request-timeout-ms': 5000, appendfsync: 'everysec' });
  const a = client(nodes[0]!.port);
  const b = client(nodes[1]!.port);
  const samples = new Map<string, Sample[]>(CONTENDERS.map((c) => [c.name, []]));
  try {
    const cc = client(nodes[2]!.port);
    const idC = String(await cc.call('CLUSTER', 'MYID'));
    cc.disconnect();
    await waitUntil('membership', async () => String(await a.call('CLUSTER', 'INFO')).includes('cluster_known_nodes:3\r\n'));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < CONTENDERS.length; i++) {
        const c = CONTENDERS[(i + round) % CONTENDERS.length]!;
        const s = await runOnce(nodes, a, b, idC, c, round, keys);
        samples.get(c.name)!.push(s);
        process.stderr.write(`round ${round} ${c.name}: ${s.hints} hints, first after ${s.startMs} ms, drained in ${s.drainMs} ms (${Math.round((s.hints * 1000) / s.drainMs)}/s)\n`);
      }
    }
  } finally {
    a.disconnect();
    b.disconnect();
    await Promise.all(nodes.map((n) => n.dispose()));
  }

  const rows = CONTENDERS.map((c) => {
    const s = samples.get(c.name)!;
    const rate = median(s.map((x) => (x.hints * 1000) / x.drainMs));
    return { c, hints: median(s.map((x) => x.hints)), start: median(s.map((x) => x.startMs)), drain: median(s.map((x) => x.drainMs)), rate };
  });
  const base = rows.find((r) => r.c.batchKeys === 128 && r.c.keysPerSecond === 0)!.rate;
  const table = markdownTable(
    ['contender', 'hints (median)', 'C ready -> first delivered, ms', 'first -> last delivered, ms', 'hints/s', 'rate vs batch 128 unlimited'],
    rows.map((r) => [r.c.name, r.hints, Math.round(r.start), Math.round(r.drain), Math.round(r.rate), `${(r.rate / base).toFixed(2)}x`]),
  );
  const md = [
    '# Hinted handoff: drain speed (3 nodes, N=2, W=2, loopback)',
    '',
    `${rounds} rounds, contenders alternated (rotated order) on one cluster; ${keys} keys of 100 B written per run through node A while node C is down.`,
    'Medians per contender. "C ready -> first delivered" is gossip marking C alive plus the bus link leaving its reconnect backoff; the handoff rate is measured from the first delivered hint to the last.',
    'The limited contender shows the rate limit binding (a burst of 1000 hints, then 1000/s); the default setting (batch 128, 5000/s) does not bind at this size, so it is the unlimited batch-128 row.',
    '',
    table,
    `Machine: ${describeEnvironment()} (shared with other engineers: compare the ratios).`,
    '',
    `Code: ${codeVersion(['src/cluster'])}`,
    '',
    'Command:',
    '',
    codeBlock(commandLine(import.meta.url)),
  ].join('\n');
  const outDir = path.join(process.cwd(), 'bench', 'results');
  await fs.mkdir(outDir, { recursive: true });
  await fs.writeFile(path.join(outDir, 'handoff.md'), md);
  await fs.writeFile(
    path.join(outDir, 'handoff.svg'),
    barChartSvg({
      title: 'Hinted handoff drain rate (3 nodes, N=2)',
      subtitle: 'hints per second, median of rounds; higher is better',
      categories: rows.map((r) => r.c.name),
      series: [{ name: 'hints/s', values: rows.map((r) => r.rate) }],
      yLabel: 'hints/s',
    }),
  );
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
