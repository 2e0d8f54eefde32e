/**
 * Dotted version vector sets: the causal algebra under ringkv's versioned objects
 * (Almeida, Baquero, Goncalves, Preguica, Fonte, "Scalable and Accurate Causality Tracking for
 * Eventually Consistent Stores", 2014; Riak 2.x `dvvset`).
 *
 * An object keeps a clock (actor -> highest counter seen) and a set of siblings, each tagged with
 * the dot (actor, counter) that created it. The clock is a set of dots summarised per actor as a
 * contiguous prefix 1..n: every dot an actor mints for a key is one more than the highest it has
 * seen for that key, and every replica that sees a dot also sees the clock it was minted under,
 * so "seen" is always a prefix per actor and `covers` below is exact.
 *
 * Why dots and not plain version vectors: with a version vector per sibling keyed by node id,
 * two clients writing through one coordinator get vectors that descend one another and one write
 * silently replaces the other (or, with client ids, vectors grow without bound). A dot names the
 * one write that made a sibling, and the write's context says which dots it supersedes: a write
 * drops exactly the siblings its client had seen, and nothing else ("sibling explosion" fixed).
 *
 * Actors are opaque strings: the node id plus an epoch that changes when a node loses its data
 * (Riak KV679: a wiped node reusing its id would mint dots that others think they have seen).
 */

import assert from 'node:assert';

export interface Dot {
  readonly actor: string;
  readonly counter: number;
}

/** A causal context: actor -> highest counter seen. A clock and a client's context have this shape. */
export type Context = ReadonlyMap<string, number>;

export const EMPTY_CONTEXT: Context = new Map();

/** Deterministic actor order (UTF-16 code units), the same on every node. */
export function compareActors(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareDots(a: Dot, b: Dot): number {
  return compareActors(a.actor, b.actor) || a.counter - b.counter;
}

export function dotKey(d: Dot): string {
  return `${d.counter}@${d.actor}`;
}

/** True when `ctx` has seen `dot`. */
export function covers(ctx: Context, dot: Dot): boolean {
  return (ctx.get(dot.actor) ?? 0) >= dot.counter;
}

/** True when `a` has seen everything `b` has (a >= b pointwise). Reflexive. */
export function descends(a: Context, b: Context): boolean {
  for (const [actor, n] of b) {
    if ((a.get(actor) ?? 0) < n) return false;
  }
  return true;
}

/** True when neither context has seen all of the other. */
export function concurrent(a: Context, b: Context): boolean {
  return !descends(a, b) && !descends(b, a);
}

/** Pointwise maximum, keys in actor order; a fresh map the caller may change. */
export function mergeContexts(a: Context, b: Context): Map<string, number> {
  const out = new Map<string, number>(a);
  let added = false;
  for (const [actor, n] of b) {
    const had = out.get(actor);
    if (had === undefined) added = true;
    if ((had ?? 0) < n) out.set(actor, n);
  }
  return added ? sortByActor(out) : out;
}

/** The map with keys in actor order: `m` itself when already in order. */
export function sortByActor<V>(m: Map<string, V>): Map<string, V>;
export function sortByActor<V>(m: ReadonlyMap<string, V>): ReadonlyMap<string, V>;
export function sortByActor<V>(m: ReadonlyMap<string, V>): ReadonlyMap<string, V> {
  let prev: string | undefined;
  let sorted = true;
  for (const k of m.keys()) {
    if (prev !== undefined && !(prev < k)) {
      sorted = false;
      break;
    }
    prev = k;
  }
  if (sorted) return m;
  const keys = [...m.keys()].sort(compareActors);
  const out = new Map<string, V>();
  for (const k of keys) out.set(k, m.get(k) as V);
  return out;
}

export function contextsEqual(a: Context, b: Context): boolean {
  if (a.size !== b.size) return false;
  for (const [actor, n] of a) if (b.get(actor) !== n) return false;
  return true;
}

/**
 * Drops clock entries past `maxEntries`, oldest first by `timesMs` (ties by actor), never an
 * actor in `keep` (actors of live siblings, and the local actor whose counters must never go
 * back). So the result may exceed `maxEntries` by the protected actors.
 *
 * What pruning costs: a replica that forgot actor X can no longer tell that an old sibling from X
 * was superseded, so merging with a replica that still holds it brings it back as a false
 * sibling. It never loses a write: forgetting a dot only makes `covers` answer false more often.
 * Returns the inputs themselves when nothing is pruned.
 */
export function pruneClock(
  clock: ReadonlyMap<string, number>,
  timesMs: ReadonlyMap<string, number>,
  keep: ReadonlySet<string>,
  maxEntries: number,
): { clock: ReadonlyMap<string, number>; timesMs: ReadonlyMap<string, number> } {
  assert(Number.isInteger(maxEntries) && maxEntries >= 1, 'maxEntries must be a positive integer');
  if (clock.size <= maxEntries) return { clock, timesMs };
  const candidates = [...clock.keys()]
    .filter((a) => !keep.has(a))
    .sort((x, y) => (timesMs.get(x) ?? 0) - (timesMs.get(y) ?? 0) || compareActors(x, y));
  let excess = clock.size - maxEntries;
  const drop = new Set<string>();
  for (const a of candidates) {
    if (excess <= 0) break;
    drop.add(a);
    excess--;
  }
  const c = new Map<string, number>();
  const t = new Map<string, number>();
  for (const [a, n] of clock) {
    if (drop.has(a)) continue;
    c.set(a, n);
    const ts = timesMs.get(a);
    if (ts !== undefined) t.set(a, ts);
  }
  return { clock: c, timesMs: t };
}
