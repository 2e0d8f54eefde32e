/**
 * The receiver's share of slot streaming, in one process: merging streamed pages of stored
 * objects into a keyspace (real LSM engine, appendfsync everysec, the Merkle write observer a
 * cluster node installs), as slot streaming did before (a read + put per key under its lock,
 * MERGE_PARALLELISM = 32 at a time) against one engine batch per page (stream_merge.ts), at a
 * few page sizes. Alternating rounds, a fresh keyspace per run, medians and ratios.
 *
 *   node <build>/bench/stream_merge.js [--mb 32] [--rounds 5] [--out bench/results]
 *
 * Writes <out>/stream_merge.md and .svg.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { mergeStreamPage } from '../src/cluster/stream_merge.js';
import type { StreamEntry } from '../src/cluster/stream_codec.js';
import { MerkleStore } from '../src/cluster/merkle_store.js';
import { applyWrite, contextOf, decodeObject, EMPTY_OBJECT, encodeObject } from '../src/coordinator/object.js';
import { Keyspace } from '../src/server/keyspace.js';
import { barChartSvg, codeBlock, commandLine, describeEnvironment, formatRatio, markdownTable, median, runAlternating, timeMs } from './lib/index.js';
import { TestConfig } from '../test/server/keyspace_fixture.js';

const { values: opts } = parseArgs({
  options: {
    mb: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const MB = Number(opts.mb);
const ROUNDS = Number(opts.rounds);
const VALUE_BYTES = 4096;
/** What the old receiver merged at once (stream_manager.ts MERGE_PARALLELISM before 525442e). */
const OLD_PARALLELISM = 32;

// The keyspace's config: the test fixture's defaults with a server's durability and sizes.
const config = new TestConfig({
  appendfsync: 'everysec',
  'memtable-bytes': 64 * 1024 * 1024,
  'block-cache-bytes': 128 * 1024 * 1024,
});

// The streamed objects: one write each by a source actor, as a joiner receives them.
const count = Math.floor((MB * 1024 * 1024) / VALUE_BYTES);
const value = Buffer.alloc(VALUE_BYTES, 0x62);
const entries: StreamEntry[] = Array.from({ length: count }, (_, i) => ({
  key: Buffer.from(`bk:${i}`),
  object: encodeObject(applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'src.1', { value, writtenAtMs: 1_700_000_000_000 + i, expiresAtMs: 0 }, {
    maxSiblings: 100,
    conflictPolicy: 'siblings',
    vclockMaxEntries: 50,
    localActor: 'src.1',
  })),
}));
const totalBytes = entries.reduce((a, e) => a + e.key.length + e.object.length, 0);

/** Entries cut into pages of about `pageBytes`. */
function pages(pageBytes: number): StreamEntry[][] {
  const out: StreamEntry[][] = [];
  let cur: StreamEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    cur.push(e);
    bytes += e.key.length + e.object.length;
    if (bytes >= pageBytes) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-bench-stream-merge-'));
let runNo = 0;
/** MB/s of merging every page with `mergePage` into a fresh keyspace. */
async function run(pageBytes: number, mergePage: (ks: Keyspace, page: StreamEntry[]) => Promise<void>): Promise<number> {
  const dir = path.join(root, `run${runNo++}`);
  const ks = await Keyspace.open({ dir, config, now: Date.now, log: () => undefined });
  ks.setWriteObserver(new MerkleStore(ks.engine, Date.now));
  try {
    const ps = pages(pageBytes);
    const ms = await timeMs(async () => {
      for (const p of ps) await mergePage(ks, p);
    });
    return totalBytes / 1e6 / (ms / 1000);
  } finally {
    await ks.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const perKey = async (ks: Keyspace, page: StreamEntry[]): Promise<void> => {
  for (let i = 0; i < page.length; i += OLD_PARALLELISM) {
    await Promise.all(page.slice(i, i + OLD_PARALLELISM).map((e) => ks.mergeObject(e.key, decodeObject(e.object))));
  }
};
const batch = (ks: Keyspace, page: StreamEntry[]): Promise<void> => mergeStreamPage(ks, page);

const MiB = 1024 * 1024;
const contenders = [
  { name: 'per-key, 1 MiB pages (before)', run: () => run(MiB, perKey) },
  { name: 'batch, 1 MiB pages', run: () => run(MiB, batch) },
  { name: 'batch, 4 MiB pages', run: () => run(4 * MiB, batch) },
];
try {
  const samples = await runAlternating(contenders, {
    rounds: ROUNDS,
    warmupRounds: 1,
    onResult: (name, round, v) => process.stderr.write(`${name} round ${round + 1}: ${v.toFixed(1)} MB/s\n`),
  });
  const base = median(samples.get(contenders[0]!.name)!);
  const rows = contenders.map((c) => {
    const s = samples.get(c.name)!;
    return [c.name, s.map((v) => v.toFixed(1)).join(', '), median(s).toFixed(1), formatRatio(median(s) / base)];
  });
  const md = [
    '# Receiver merge of streamed pages (issue 6)',
    '',
    `${describeEnvironment()}.`,
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
    `${count} objects of one ${VALUE_BYTES}-byte value (${(totalBytes / 1e6).toFixed(1)} MB as streamed: keys + object encodings) merged into an empty keyspace ` +
      `(a joiner's usual case), real engine with appendfsync everysec and the Merkle write observer; ${ROUNDS} measured rounds after one warm-up, contenders alternating.`,
    '',
    markdownTable(['receiver', 'MB/s per round', 'median MB/s', 'vs before'], rows),
    '',
  ].join('\n');
  fs.mkdirSync(opts.out!, { recursive: true });
  fs.writeFileSync(path.join(opts.out!, 'stream_merge.md'), md);
  fs.writeFileSync(
    path.join(opts.out!, 'stream_merge.svg'),
    barChartSvg({
      title: 'Merging streamed pages on the receiver (median MB/s)',
      subtitle: `${(totalBytes / 1e6).toFixed(0)} MB, ${ROUNDS} alternating rounds`,
      categories: ['MB/s'],
      series: contenders.map((c) => ({ name: c.name, values: [median(samples.get(c.name)!)] })),
    }),
  );
  process.stdout.write(md);
} finally {
  await fsp.rm(root, { recursive: true, force: true });
}
