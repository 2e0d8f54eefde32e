/**
 * Hot spots of a V8 .cpuprofile (as written by `node --cpu-prof`), so a benchmark can name
 * where the code it measured spends its CPU. Pure over the parsed profile.
 *
 *   node bench/cpuprofile_top.js FILE.cpuprofile [N]
 *
 * Percentages are of busy samples: the '(idle)' node (event loop waiting) is left out.
 * `topSelfTime` ranks functions by the samples in which they were the running frame, with the
 * caller that accounts for most of them (a native like `writeBuffer` means little without it);
 * `topInclusiveTime` ranks functions of the project (paths containing /src/) by the samples in
 * which they were anywhere on the stack.
 */
import * as fs from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  samples?: number[];
  /** Microseconds of the monotonic clock (CLOCK_MONOTONIC on Linux, as process.hrtime). */
  startTime?: number;
  timeDeltas?: number[];
}

/**
 * Only samples taken within [fromUs, toUs] count. V8 stamps samples with the monotonic clock
 * that process.hrtime also reads on Linux, so another process can mark a window with
 * `process.hrtime.bigint() / 1000n`.
 */
export interface SampleWindow {
  fromUs: number;
  toUs: number;
}

export interface HotSpot {
  fn: string;
  location: string;
  percent: number;
  /** The caller with the most of these samples (self-time ranking only). */
  topCaller?: string;
}

const IDLE = '(idle)';

function frameName(n: CpuProfileNode): { fn: string; location: string } {
  const fn = n.callFrame.functionName || '(anonymous)';
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  let short = url;
  if (url.includes('/src/')) short = url.slice(url.lastIndexOf('/src/') + 1);
  else if (!url.startsWith('node:')) short = url.split('/').slice(-2).join('/');
  return { fn, location: short ? `${short}:${n.callFrame.lineNumber + 1}` : '' };
}

const keyOf = (f: { fn: string; location: string }): string => (f.location ? `${f.fn} (${f.location})` : f.fn);

function hitsPerNode(profile: CpuProfile, window?: SampleWindow): Map<number, number> {
  const hits = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) {
    let t = profile.startTime ?? 0;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas?.[i] ?? 0;
      if (window && (t < window.fromUs || t > window.toUs)) continue;
      const id = profile.samples[i]!;
      hits.set(id, (hits.get(id) ?? 0) + 1);
    }
  } else {
    for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  }
  return hits;
}

function busyTotal(profile: CpuProfile, hits: Map<number, number>): number {
  let total = 0;
  for (const n of profile.nodes) if (n.callFrame.functionName !== IDLE) total += hits.get(n.id) ?? 0;
  return total;
}

/** Functions by self time, highest first. */
export function topSelfTime(profile: CpuProfile, count: number, window?: SampleWindow): HotSpot[] {
  const hits = hitsPerNode(profile, window);
  const total = busyTotal(profile, hits);
  const parent = new Map<number, CpuProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const byFn = new Map<string, { f: { fn: string; location: string }; hits: number; callers: Map<string, number> }>();
  for (const n of profile.nodes) {
    const h = hits.get(n.id) ?? 0;
    if (h === 0 || n.callFrame.functionName === IDLE) continue;
    const f = frameName(n);
    const e = byFn.get(keyOf(f)) ?? { f, hits: 0, callers: new Map<string, number>() };
    e.hits += h;
    const p = parent.get(n.id);
    if (p) {
      const pk = keyOf(frameName(p));
      e.callers.set(pk, (e.callers.get(pk) ?? 0) + h);
    }
    byFn.set(keyOf(f), e);
  }
  return [...byFn.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, count)
    .map((e) => ({
      fn: e.f.fn,
      location: e.f.location,
      percent: total === 0 ? 0 : (100 * e.hits) / total,
      topCaller: [...e.callers].sort((a, b) => b[1] - a[1])[0]?.[0],
    }));
}

/** Project functions (under /src/) by inclusive time, highest first; recursion counted once. */
export function topInclusiveTime(profile: CpuProfile, count: number, window?: SampleWindow): HotSpot[] {
  const hits = hitsPerNode(profile, window);
  const total = busyTotal(profile, hits);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const inclusive = new Map<string, { f: { fn: string; location: string }; hits: number }>();
  const root = profile.nodes[0];
  if (!root) return [];
  // Iterative DFS carrying the set of project functions on the current stack.
  const stack: Array<{ id: number; onStack: Set<string> }> = [{ id: root.id, onStack: new Set() }];
  while (stack.length > 0) {
    const { id, onStack } = stack.pop()!;
    const n = byId.get(id);
    if (!n || n.callFrame.functionName === IDLE) continue;
    const f = frameName(n);
    let here = onStack;
    if (f.location.startsWith('src/') && !onStack.has(keyOf(f))) {
      here = new Set(onStack);
      here.add(keyOf(f));
      if (!inclusive.has(keyOf(f))) inclusive.set(keyOf(f), { f, hits: 0 });
    }
    const h = hits.get(id) ?? 0;
    if (h > 0) for (const k of here) inclusive.get(k)!.hits += h;
    for (const c of n.children ?? []) stack.push({ id: c, onStack: here });
  }
  return [...inclusive.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, count)
    .map((e) => ({ fn: e.f.fn, location: e.f.location, percent: total === 0 ? 0 : (100 * e.hits) / total }));
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/cpuprofile_top.js FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const n = Number(process.argv[3] ?? 25);
  const profile = readProfile(file);
  process.stdout.write('self time:\n');
  for (const h of topSelfTime(profile, n)) {
    process.stdout.write(`${h.percent.toFixed(1).padStart(5)}%  ${h.fn}  ${h.location}  <- ${h.topCaller ?? ''}\n`);
  }
  process.stdout.write('inclusive time (src/):\n');
  for (const h of topInclusiveTime(profile, n)) {
    process.stdout.write(`${h.percent.toFixed(1).padStart(5)}%  ${h.fn}  ${h.location}\n`);
  }
}
