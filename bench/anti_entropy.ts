/**
 * Anti-entropy cost (issue 5): N keys on 3 replicas (3 real node processes, N=3), a fraction of
 * them diverged on one replica (C): half missing there, half an older version (the others hold
 * a newer write that supersedes it). One CLUSTER REPAIR round must make the three equal; we
 * measure the bytes it put on the bus (requests + responses of the initiator's exchanges; with
 * `anti-entropy-interval-ms 0` nothing else runs) and its wall time, against
 *   - diverged bytes: key + encoded newest object of each diverged key, what an oracle that knew
 *     the differences would send (target: anti-entropy at most 3x this), and
 *   - full copy bytes: key + encoded object of every key of the range, what copying the whole
 *     range to C would send.
 * Two directions, alternated over rounds: REPAIR on C (it pulls what it lacks) and REPAIR on a
 * healthy replica A (it receives C's stale copies and pushes the newer ones back). After every
 * round the bench checks that CLUSTER DIGEST is equal on the three nodes; then it stops C,
 * re-creates the same divergence in C's data dir and restarts it.
 *
 * Data is loaded straight into the three data dirs through the storage engine (identical encoded
 * objects, as if replicated), so the run measures repair, not loading.
 *
 *   node .build/NAME/bench/anti_entropy.js [--keys 1000000] [--value-bytes 100] [--rounds 2]
 *        [--fractions 0.001,0.01] [--out bench/results]
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { applyWrite, EMPTY_OBJECT, encodeObject, type VersionedObject, type WriteOptions } from '../src/coordinator/object.js';
import { EMPTY_CONTEXT } from '../src/coordinator/dvv.js';
import { Config } from '../src/config/config.js';
import { dataKey } from '../src/server/key_layout.js';
import { Keyspace } from '../src/server/keyspace.js';
import { createNode, type RingkvNode } from '../test/helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../test/helpers/ports.js';
import { waitUntil as waitFor } from '../test/helpers/fault_cluster.js';
import { barChartSvg, codeBlock, codeVersion, commandLine, describeEnvironment, flagValue, formatBytes, markdownTable, median } from './lib/index.js';

const argv = process.argv.slice(2);
const KEYS = Number(flagValue(argv, '--keys') ?? 1_000_000);
const VALUE_BYTES = Number(flagValue(argv, '--value-bytes') ?? 100);
const ROUNDS = Number(flagValue(argv, '--rounds') ?? 2);
const FRACTIONS = (flagValue(argv, '--fractions') ?? '0.001,0.01').split(',').map(Number);
const OUT_DIR = flagValue(argv, '--out') ?? 'bench/results';
/** Engine writes per batch while loading. */
const LOAD_BATCH_KEYS = 2000;
/** How long a node with the full data set may take to start, ms. */
const NODE_READY_TIMEOUT_MS = 300_000;
const CONVERGE_TIMEOUT_MS = 120_000;

const WRITE_OPTS: WriteOptions = { maxSiblings: 100, conflictPolicy: 'siblings', vclockMaxEntries: 50, localActor: 'bench.1' };
const T0_MS = 1_700_000_000_000;

const keyOf = (i: number): Buffer => Buffer.from(`key:${i.toString().padStart(8, '0')}`);
const valueOf = (i: number, version: number): Buffer => {
  const b = Buffer.alloc(VALUE_BYTES, 0x61 + (i % 26));
  b.write(`v${version}:${i}:`, 0);
  return b;
};
const v1Of = (i: number): VersionedObject => applyWrite(EMPTY_OBJECT, EMPTY_CONTEXT, 'bench.1', { value: valueOf(i, 1), writtenAtMs: T0_MS, expiresAtMs: 0 }, WRITE_OPTS);
const v2Of = (i: number, v1: VersionedObject): VersionedObject =>
  applyWrite(v1, v1.clock, 'bench.2', { value: valueOf(i, 2), writtenAtMs: T0_MS + 1, expiresAtMs: 0 }, { ...WRITE_OPTS, localActor: 'bench.2' });

/** Deterministic spread of the diverged keys: every (1/fraction)-th key, offset per round. */
function divergedKeys(fraction: number, round: number): number[] {
  const step = Math.round(1 / fraction);
  const out: number[] = [];
  for (let i = (round * 7919) % step; i < KEYS; i += step) out.push(i);
  return out;
}

async function openStore(dir: string): Promise<Keyspace> {
  const config = Config.fromOverrides([['appendfsync', 'no']]);
  return Keyspace.open({ dir, config, now: Date.now, log: () => undefined });
}

/**
 * Writes every key's object into `dir`: v2 for the keys in `newer`, v1 for the others, nothing
 * for the keys in `missing`. Returns the bytes of all (key + object) written.
 */
async function load(dir: string, newer: ReadonlySet<number>, missing: ReadonlySet<number>): Promise<number> {
  const ks = await openStore(dir);
  let bytes = 0;
  try {
    let ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
    for (let i = 0; i < KEYS; i++) {
      if (missing.has(i)) continue;
      const v1 = v1Of(i);
      const obj = newer.has(i) ? v2Of(i, v1) : v1;
      const key = keyOf(i);
      const enc = encodeObject(obj);
      bytes += key.length + enc.length;
      ops.push({ type: 'put', key: dataKey(key), value: enc });
      if (ops.length >= LOAD_BATCH_KEYS) {
        await ks.engine.write(ops);
        ops = [];
      }
    }
    if (ops.length > 0) await ks.engine.write(ops);
  } finally {
    await ks.close();
  }
  return bytes;
}

/** Puts C's diverged keys back to their diverged state (stale v1 or missing). */
async function rediverge(dir: string, stale: readonly number[], missing: readonly number[]): Promise<void> {
  const ks = await openStore(dir);
  try {
    await ks.engine.write([
      ...stale.map((i) => ({ type: 'put' as const, key: dataKey(keyOf(i)), value: encodeObject(v1Of(i)) })),
      ...missing.map((i) => ({ type: 'del' as const, key: dataKey(keyOf(i)) })),
    ]);
  } finally {
    await ks.close();
  }
}

/** fault_cluster.ts's waitUntil, with a failing probe (a node still starting) counted as not yet. */
const waitUntil = (what: string, pred: () => Promise<boolean>, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> =>
  waitFor(what, () => pred().catch(() => false), timeoutMs);

const digest = async (c: Redis): Promise<string[]> => (await c.call('CLUSTER', 'DIGEST', 0, 16383)) as string[];
const differing = (a: readonly string[], b: readonly string[]): number => a.reduce((n, d, s) => n + (d === b[s] ? 0 : 1), 0);

interface Sample {
  fraction: number;
  direction: 'pull (REPAIR on C)' | 'push (REPAIR on A)';
  divergedKeys: number;
  divergedBytes: number;
  aeBytes: number;
  ms: number;
  leaves: number;
}

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-bench-ae-'));
  const nodes: RingkvNode[] = [];
  const clients: Redis[] = [];
  try {
    const maxFraction = Math.max(...FRACTIONS);
    const dirs = [0, 1, 2].map((i) => path.join(root, `n${i}`));
    // Load: the three replicas equal, every key that some round diverges at its newest version;
    // before each round C's copies of that round's keys are put back to stale or missing.
    const loadStarted = Date.now();
    const allNewer = new Set<number>();
    for (const f of FRACTIONS) for (let r = 0; r < ROUNDS * 2; r++) for (const i of divergedKeys(f, r)) allNewer.add(i);
    const fullCopyBytes = await load(dirs[0]!, allNewer, new Set());
    await load(dirs[1]!, allNewer, new Set());
    await load(dirs[2]!, allNewer, new Set());
    const loadMs = Date.now() - loadStarted;
    process.stderr.write(`loaded ${KEYS} keys x 3 in ${loadMs} ms (${formatBytes(fullCopyBytes)} a replica)\n`);

    const ports = await freePorts(3);
    const busPorts = await freePorts(3);
    const seeds = ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(',');
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await createNode(null, {
          port: ports[i]!,
          dir: dirs[i]!,
          readyTimeoutMs: NODE_READY_TIMEOUT_MS,
          config: {
            bind: LOOPBACK_HOST,
            'cluster-port': busPorts[i]!,
            seeds,
            'replication-factor': 3,
            vnodes: 64,
            'gossip-interval-ms': 200,
            'node-timeout-ms': 10_000,
            'anti-entropy-interval-ms': 0,
            appendfsync: 'no',
          },
        }),
      );
    }
    const connect = async (i: number): Promise<Redis> => {
      const c = new Redis({ host: LOOPBACK_HOST, port: ports[i]!, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, commandTimeout: 600_000 });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    const startAll = async (which: number[]): Promise<void> => {
      await Promise.all(which.map((i) => nodes[i]!.start()));
      for (const i of which) {
        clients[i]?.disconnect();
        clients[i] = await connect(i);
      }
      await waitUntil('three live members on every node', async () => {
        for (const c of clients) {
          const text = String(await c.call('CLUSTER', 'NODES'));
          if (text.split('\n').filter((l) => l.length > 0 && !l.split(' ')[2]!.includes('fail')).length !== 3) return false;
        }
        return true;
      });
      // Merkle trees built (DIGEST waits for every slot) before anything is timed.
      await Promise.all(clients.map(digest));
    };
    await startAll([0, 1, 2]);

    const samples: Sample[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const fraction of FRACTIONS) {
        for (const direction of ['pull (REPAIR on C)', 'push (REPAIR on A)'] as const) {
          const r = round * 2 + (direction.startsWith('pull') ? 0 : 1);
          const keys = divergedKeys(fraction, r);
          const stale = keys.filter((_, j) => j % 2 === 0);
          const missing = keys.filter((_, j) => j % 2 === 1);
          await nodes[2]!.stop();
          await rediverge(dirs[2]!, stale, missing);
          await startAll([2]);
          const before = await Promise.all(clients.map(digest));
          if (differing(before[0]!, before[2]!) === 0) throw new Error('C does not differ before the repair');
          let divergedBytes = 0;
          for (const i of keys) divergedBytes += keyOf(i).length + encodeObject(v2Of(i, v1Of(i))).length;
          const initiator = direction.startsWith('pull') ? clients[2]! : clients[0]!;
          const started = process.hrtime.bigint();
          const summary = String(await initiator.call('CLUSTER', 'REPAIR'));
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const f = new Map(summary.split(' ').map((kv) => kv.split('=') as [string, string]));
          if (f.get('errors') !== '0') throw new Error(`repair had errors: ${summary}`);
          const after = await Promise.all(clients.map(digest));
          if (differing(after[0]!, after[2]!) !== 0 || differing(after[0]!, after[1]!) !== 0) throw new Error(`replicas differ after REPAIR: ${summary}`);
          const aeBytes = Number(f.get('bytesSent')) + Number(f.get('bytesReceived'));
          samples.push({ fraction, direction, divergedKeys: keys.length, divergedBytes, aeBytes, ms, leaves: Number(f.get('differingLeaves')) });
          process.stderr.write(`round ${round} ${fraction * 100}% ${direction}: ${summary} (${(aeBytes / divergedBytes).toFixed(2)}x diverged bytes)\n`);
        }
      }
    }

    // ---- report ----
    const groups = new Map<string, Sample[]>();
    for (const s of samples) {
      const k = `${s.fraction}|${s.direction}`;
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    const rows: (string | number)[][] = [];
    const cats: string[] = [];
    const aeSeries: number[] = [];
    const divSeries: number[] = [];
    const fullSeries: number[] = [];
    for (const [k, ss] of groups) {
      const [fraction, direction] = k.split('|') as [string, string];
      const pct = `${Number(fraction) * 100}%`;
      const ae = median(ss.map((s) => s.aeBytes));
      const div = median(ss.map((s) => s.divergedBytes));
      const ms = median(ss.map((s) => s.ms));
      rows.push([
        pct,
        direction,
        ss[0]!.divergedKeys,
        formatBytes(div),
        formatBytes(ae),
        (ae / div).toFixed(2) + 'x',
        (ae / fullCopyBytes).toFixed(4) + 'x',
        ms.toFixed(0),
        ss.map((s) => (s.aeBytes / s.divergedBytes).toFixed(2)).join(', '),
      ]);
      cats.push(`${pct} ${direction.split(' ')[0]}`);
      aeSeries.push(ae / 1024);
      divSeries.push(div / 1024);
      fullSeries.push(fullCopyBytes / 1024);
    }
    const md = [
      '# Anti-entropy cost: bytes and time to converge',
      '',
      `${KEYS.toLocaleString('en-US')} keys (values ${VALUE_BYTES} B) on 3 replicas (3 node processes, N=3), a fraction diverged on one replica C ` +
        '(half missing there, half an older version). One `CLUSTER REPAIR` round; every round ends with CLUSTER DIGEST equal on all three nodes (checked). ' +
        `Medians of ${ROUNDS} rounds per cell; rounds alternate fractions and directions.`,
      '',
      '- **AE bytes**: payload bytes of the round on the cluster bus (requests + responses of the initiator\'s exchanges with both peers; frame headers not included).',
      '- **diverged bytes**: key + encoded newest object of each diverged key, what an oracle knowing the differences would send. Target: AE bytes at most 3x this.',
      `- **full copy**: key + encoded object of every key, ${formatBytes(fullCopyBytes)}: copying the whole range to C.`,
      '- **pull**: REPAIR on the diverged replica C (it receives the objects it lacks); **push**: REPAIR on a healthy replica A (it lists its versions, C asks for the ones it lacks or holds stale, A pushes them; C\'s stale copies are not sent because A\'s clock sums show they may be dominated).',
      '',
      markdownTable(['diverged', 'direction', 'keys', 'diverged bytes', 'AE bytes', 'AE / diverged', 'AE / full copy', 'time to converge ms', 'AE / diverged per round'], rows),
      '',
      `Loading the three data dirs took ${loadMs} ms (not part of the figures).`,
      '',
      '## How it was run',
      codeBlock(commandLine(import.meta.url)),
      '',
      `Code: ${codeVersion(['src/cluster', 'src/server/keyspace.ts'])}.`,
      '',
      describeEnvironment(),
      '',
    ].join('\n');
    await fs.mkdir(OUT_DIR, { recursive: true });
    await fs.writeFile(path.join(OUT_DIR, 'anti_entropy.md'), md);
    await fs.writeFile(
      path.join(OUT_DIR, 'anti_entropy.svg'),
      barChartSvg({
        title: `Anti-entropy bytes, ${KEYS.toLocaleString('en-US')} keys, one replica diverged`,
        subtitle: 'KiB on the bus for one CLUSTER REPAIR vs the diverged data and a full copy (log scale, lower is better)',
        categories: cats,
        series: [
          { name: 'anti-entropy', values: aeSeries },
          { name: 'diverged data', values: divSeries },
          { name: 'full copy', values: fullSeries },
        ],
        yLabel: 'KiB',
        logScale: true,
      }),
    );
    process.stdout.write(md);
  } finally {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.dispose().catch(() => undefined)));
    await fs.rm(root, { recursive: true, force: true });
  }
}

await main();
