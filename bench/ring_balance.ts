/**
 * Ring balance versus vnodes: how evenly 16384 slots spread over 3, 10 and 100 equal nodes, and
 * how much moves when one node joins. Placement is deterministic given node ids, so each point
 * is measured over several id schemes (the spread across them is the real variation).
 *
 *   npx tsc -p . --outDir .build/NAME && node .build/NAME/bench/ring_balance.js [--out bench/results]
 *
 * Writes ring_balance.md (tables) and ring_balance.svg (worst max/mean primaries vs vnodes).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { buildRing, DEFAULT_VNODES, type RingMember } from '../src/coordinator/ring.js';
import { SLOT_COUNT } from '../src/coordinator/slot.js';
import { codeBlock, commandLine, describeEnvironment, lineChartSvg, markdownTable, median } from './lib/index.js';

const VNODES = [16, 32, 64, 128, 256, 512];
const SIZES = [3, 10, 100];
const ID_SCHEMES: Array<(i: number) => string> = [
  (i) => `node${i + 1}`,
  (i) => `10.0.0.${i + 1}:7001`,
  (i) => `127.0.0.1:${7001 + i}`,
  (i) => `host-${String(i).padStart(3, '0')}`,
  (i) => `${(i * 2654435761 >>> 0).toString(16).padStart(40, '0')}`,
  (i) => `n${i}`,
  (i) => `ringkv-${i}.example.net`,
  (i) => `rack${i % 3}-node${i}`,
];
const N = 3;

function members(k: number, id: (i: number) => string): RingMember[] {
  return Array.from({ length: k }, (_, i) => ({ id: id(i), weight: 1, dc: 'dc1', rack: '', state: 'up' }));
}

interface Point { maxP: number; maxR: number; minP: number; ms: number }

function measure(k: number, vnodes: number, id: (i: number) => string): Point {
  const t0 = performance.now();
  const ring = buildRing(members(k, id), { vnodes, n: N });
  const ms = performance.now() - t0;
  const own = [...ring.ownership().values()];
  const mean = SLOT_COUNT / k;
  return {
    maxP: Math.max(...own.map((o) => o.primary)) / mean,
    minP: Math.min(...own.map((o) => o.primary)) / mean,
    maxR: Math.max(...own.map((o) => o.replica)) / (mean * Math.min(N, k)),
    ms,
  };
}

function joinMoves(k: number, vnodes: number, id: (i: number) => string): { primary: number; replica: number; foreign: number } {
  const before = members(k, id);
  const a = buildRing(before, { vnodes, n: N });
  const added = members(k + 1, id)[k]!;
  const b = buildRing([...before, added], { vnodes, n: N });
  let primary = 0;
  let replica = 0;
  let foreign = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    const p = a.preflist(s);
    const q = b.preflist(s);
    if (p[0] !== q[0]) primary++;
    if (p.join() !== q.join() && !q.includes(added.id)) foreign++;
    replica += q.filter((x) => !p.includes(x)).length;
  }
  return { primary: primary / SLOT_COUNT, replica: replica / (SLOT_COUNT * N), foreign };
}

async function main(): Promise<void> {
  const outIdx = process.argv.indexOf('--out');
  const out = outIdx > 0 ? process.argv[outIdx + 1]! : 'bench/results';
  const env = describeEnvironment();
  const rows: string[][] = [];
  const series = SIZES.map((k) => ({ name: `${k} nodes`, points: [] as Array<[number, number]> }));
  for (const vnodes of VNODES) {
    SIZES.forEach((k, si) => {
      const pts = ID_SCHEMES.map((id) => measure(k, vnodes, id));
      const worstP = Math.max(...pts.map((p) => p.maxP));
      series[si]!.points.push([vnodes, worstP]);
      rows.push([
        String(vnodes), String(k),
        median(pts.map((p) => p.maxP)).toFixed(3), worstP.toFixed(3),
        median(pts.map((p) => p.maxR)).toFixed(3), Math.max(...pts.map((p) => p.maxR)).toFixed(3),
        Math.min(...pts.map((p) => p.minP)).toFixed(3),
        median(pts.map((p) => p.ms)).toFixed(0),
      ]);
    });
  }
  const joinRows: string[][] = [];
  for (const k of SIZES) {
    const m = ID_SCHEMES.map((id) => joinMoves(k, DEFAULT_VNODES, id));
    joinRows.push([
      `${k} -> ${k + 1}`, (100 / (k + 1)).toFixed(2),
      `${(Math.min(...m.map((x) => x.primary)) * 100).toFixed(2)} .. ${(Math.max(...m.map((x) => x.primary)) * 100).toFixed(2)}`,
      `${(Math.min(...m.map((x) => x.replica)) * 100).toFixed(2)} .. ${(Math.max(...m.map((x) => x.replica)) * 100).toFixed(2)}`,
      String(Math.max(...m.map((x) => x.foreign))),
    ]);
  }
  const md = [
    '# Ring balance versus vnodes',
    '',
    `Placement of 16384 slots, N=${N}, equal weights, no racks; each cell over ${ID_SCHEMES.length} node-id schemes (placement is deterministic given ids). Default vnodes: ${DEFAULT_VNODES}.`,
    '"max/mean" is the most loaded node over the mean; "replicas" counts every slot a node holds a replica of.',
    '',
    env,
    '',
    codeBlock(commandLine(import.meta.url), 'sh'),
    markdownTable(['vnodes', 'nodes', 'primaries max/mean (median)', 'primaries max/mean (worst)', 'replicas max/mean (median)', 'replicas max/mean (worst)', 'primaries min/mean (worst)', 'build ms (median)'], rows),
    '',
    `## One node joins (vnodes ${DEFAULT_VNODES})`,
    '',
    'Share of slots whose primary changed, share of replica placements that moved, and slots whose preference list changed without gaining the new node (should be 0).',
    '',
    markdownTable(['nodes', 'ideal 1/(n+1) %', 'primaries moved % (range)', 'replicas moved % (range)', 'changed without the new node'], joinRows),
  ].join('\n');
  await fsp.mkdir(out, { recursive: true });
  await fsp.writeFile(path.join(out, 'ring_balance.md'), md);
  await fsp.writeFile(
    path.join(out, 'ring_balance.svg'),
    lineChartSvg({
      title: 'Ring balance: worst max/mean primaries per node vs vnodes',
      subtitle: `16384 slots, worst over ${ID_SCHEMES.length} id schemes`,
      series,
      xLabel: 'vnodes per node',
      yLabel: 'max/mean slots',
      referenceY: { value: 1.25, label: '1.25' },
    }),
  );
  process.stdout.write(md + '\n');
}

await main();
