/**
 * What the versioned keyspace costs on top of the storage engine: SET and GET through the
 * command handlers (per-key lock, read-modify-write of a versioned object, dot minting, object
 * encode/decode, liveness, counting) against the engine's own put and get of the same keys and
 * 100-byte values, side by side in one process, alternating rounds, medians and ratios.
 *
 *   node .build/NAME/bench/keyspace.js [--keys 20000] [--rounds 5] [--concurrency 50] [--out bench/results]
 *
 * Both sides use a fresh engine directory per round with appendfsync everysec. The ratio
 * keyspace/engine is the share of the engine's throughput the keyspace keeps (1.0 = free); a
 * SET is one engine get plus one put, so about 0.5x of a bare put is the floor to expect.
 * Writes <out>/keyspace.md and <out>/keyspace.svg.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { barChartSvg, commandLine, describeEnvironment, formatNumber, formatRatio, markdownTable, median, runAlternating, timeMs } from './lib/index.js';
import { openEngine } from '../src/storage/engine.js';
import { Keyspace } from '../src/server/keyspace.js';
import { stringCommands } from '../src/server/commands/strings.js';
import type { ClientState, CommandSpec, ConfigView, ServerContext } from '../src/server/types.js';

const { values: opts } = parseArgs({
  options: {
    keys: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '50' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const KEYS = Number(opts.keys);
const ROUNDS = Number(opts.rounds);
const CONCURRENCY = Number(opts.concurrency);
const VALUE = Buffer.alloc(100, 'x');

const CONFIG_VALUES: Record<string, string | number> = {
  'max-key-bytes': 1024,
  'max-value-bytes': 1024 * 1024,
  appendfsync: 'everysec',
  'memtable-bytes': 64 * 1024 * 1024,
  'block-cache-bytes': 128 * 1024 * 1024,
  'bloom-bits-per-key': 10,
  'gc-grace-seconds': 864000,
  'conflict-policy': 'siblings',
  'max-siblings': 100,
  'vclock-max-entries': 50,
};
const config: ConfigView = {
  getString: (k) => String(CONFIG_VALUES[k]),
  getNumber: (k) => Number(CONFIG_VALUES[k]),
  getBool: () => false,
};

const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`key:${String(i).padStart(12, '0')}`));

/** Runs `op` over every key with CONCURRENCY workers; returns ops/s. */
async function drive(op: (key: Buffer) => Promise<unknown>): Promise<number> {
  let next = 0;
  const ms = await timeMs(async () => {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < keys.length) await op(keys[next++]!);
      }),
    );
  });
  return (keys.length * 1000) / ms;
}

const handler = (name: string): NonNullable<CommandSpec['handler']> => stringCommands.find((s) => s.name === name)!.handler!;
const SET = handler('set');
const GET = handler('get');
const client = { id: 0 } as unknown as ClientState;

const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-bench-keyspace-'));
const results = new Map<string, number[]>();
const record = (name: string, v: number): void => {
  results.set(name, [...(results.get(name) ?? []), v]);
};

try {
  await runAlternating(
    [
      {
        name: 'engine',
        async run(round) {
          const engine = await openEngine({ dir: path.join(root, `engine-${round}`), appendfsync: 'everysec' });
          record('engine put', await drive((k) => engine.put(k, VALUE)));
          record('engine get', await drive((k) => engine.get(k)));
          await engine.close();
          return 0;
        },
      },
      {
        name: 'keyspace',
        async run(round) {
          const ks = await Keyspace.open({ dir: path.join(root, `ks-${round}`), config, now: Date.now, log: () => undefined });
          const server: ServerContext = { config, keyspace: ks, now: Date.now };
          const ctx = { client, server };
          const set = Buffer.from('SET');
          const get = Buffer.from('GET');
          record('keyspace SET', await drive((k) => Promise.resolve(SET(ctx, [set, k, VALUE]))));
          record('keyspace GET', await drive((k) => Promise.resolve(GET(ctx, [get, k]))));
          await ks.close();
          return 0;
        },
      },
    ],
    { rounds: ROUNDS, warmupRounds: 1 },
  );
} finally {
  await fsp.rm(root, { recursive: true, force: true });
}

const med = (name: string): number => median(results.get(name) ?? []);
/** Median over rounds of the per-round ratio b/a (each round ran both back to back). */
const ratioMed = (a: string, b: string): number => {
  const as = results.get(a) ?? [];
  const bs = results.get(b) ?? [];
  return median(as.map((x, i) => (bs[i] ?? NaN) / x));
};
const rows = [
  ['write (engine put vs SET)', med('engine put'), med('keyspace SET'), ratioMed('engine put', 'keyspace SET')],
  ['read (engine get vs GET)', med('engine get'), med('keyspace GET'), ratioMed('engine get', 'keyspace GET')],
] as const;
const table = markdownTable(
  ['operation', 'engine ops/s', 'keyspace ops/s', 'keyspace / engine (median of per-round ratios)'],
  rows.map(([op, a, b, r]) => [op, formatNumber(a), formatNumber(b), formatRatio(r)]),
);
const md = [
  '# Keyspace overhead over the storage engine',
  '',
  `${KEYS} keys, 100-byte values, ${CONCURRENCY} concurrent callers, ${ROUNDS} rounds (+1 warm-up) alternating, medians.`,
  `A keyspace SET is a read-modify-write of a versioned object (engine get + put); GET decodes it.`,
  '',
  table,
  `Environment: ${describeEnvironment()}`,
  '',
  `Command: \`${commandLine(import.meta.url)}\``,
  '',
].join('\n');
const svg = barChartSvg({
  title: 'Keyspace (versioned objects) vs bare storage engine',
  subtitle: 'ops/s, medians of alternating rounds; higher is better',
  categories: ['write', 'read'],
  series: [
    { name: 'engine put/get', values: [rows[0][1], rows[1][1]] },
    { name: 'keyspace SET/GET', values: [rows[0][2], rows[1][2]] },
  ],
  yLabel: 'ops/s',
});
await fsp.mkdir(opts.out, { recursive: true });
await fsp.writeFile(path.join(opts.out, 'keyspace.md'), md);
await fsp.writeFile(path.join(opts.out, 'keyspace.svg'), svg);
process.stdout.write(md);
