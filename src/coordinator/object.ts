/**
 * ringkv's versioned object: what is stored and replicated per key (ARCHITECTURE.md sections 1, 4).
 *
 *   VersionedObject = clock (actor -> max counter seen, the object's causal context)
 *                   + siblings, each { value | tombstone, dot, writtenAtMs, expiresAtMs }
 *
 * Pure functions only: no I/O, no clock reads (callers pass `nowMs`, `writtenAtMs`).
 *
 * Invariants of every object these functions return (checkObjectInvariants tests them):
 *  - every sibling's dot is covered by the clock; dots are unique;
 *  - siblings are in canonical order: writtenAtMs ascending, then dot (actor, counter);
 *  - clock keys are in actor order, counters are integers >= 1; clockTimesMs has one entry per
 *    clock actor; siblings <= max-siblings and, under lww, exactly one sibling (or none).
 * Canonical order makes equal objects encode to equal bytes (Merkle trees hash the bytes).
 *
 * Decisions (documented here because clients see them):
 *  - max-siblings: past the cap the OLDEST siblings by (writtenAtMs, dot) are dropped and the
 *    newest max-siblings kept. A coordinator write always keeps the sibling it just minted,
 *    whatever its timestamp, so the newest write is never the one dropped. A dropped sibling's
 *    dot stays in the clock, so it is superseded everywhere, not resurrected by repair (unless
 *    pruning later drops that actor's entry: then, like any pruned dot, a false sibling).
 *  - conflict-policy lww: a coordinator write replaces every sibling it holds (the write it
 *    orders last wins there); replica sync first applies causality (a sibling the other side has
 *    seen and superseded is dropped) and then keeps the single newest of what is concurrent, by
 *    writtenAtMs, ties broken by dot. Concurrent writes lose data under lww by design.
 *  - vclock-max-entries: the clock is pruned oldest entry first (clockTimesMs: the writtenAtMs
 *    of the newest write that advanced each entry), never the actors of live siblings nor the
 *    writing/local actor. This may create false siblings, never lost writes (see dvv.pruneClock).
 *  - expiry follows Redis: a sibling with expiresAtMs = E is live while nowMs <= E.
 *
 * Merge is commutative and idempotent always (object.property.test.ts), and associative and
 * absorptive (merge(x, merge(x, y)) = merge(x, y)) while the max-siblings cap and clock pruning
 * do not bind: a truncation applied to a partial merge cannot know what a third replica will
 * supersede, and a pruned entry can let an old sibling back in as a false sibling. Both sides of
 * a sync store the same result, so a pair of replicas agrees after every exchange.
 */

import assert from 'node:assert';
import {
  compareDots,
  covers,
  dotKey,
  mergeContexts,
  pruneClock,
  sortByActor,
  type Context,
  type Dot,
} from './dvv.js';
import {
  MAX_ACTOR_BYTES,
  MAX_CLOCK_ENTRIES,
  MAX_COUNTER,
  MAX_SIBLINGS_LIMIT,
  MAX_SIBLING_VALUE_BYTES,
  MAX_TIME_MS,
} from './limits.js';

export type { Context, Dot } from './dvv.js';
export { descends, concurrent, covers, EMPTY_CONTEXT } from './dvv.js';
export { encodeContext, decodeContext } from './context_codec.js';
export { encodeObject, decodeObject } from './object_codec.js';
export { ContextError, CorruptObjectError } from './errors.js';

export interface Sibling {
  /** null = tombstone (a delete, kept so repair does not resurrect what it deleted). */
  readonly value: Buffer | null;
  readonly dot: Dot;
  readonly writtenAtMs: number;
  /** 0 = no expiry. */
  readonly expiresAtMs: number;
}

export interface VersionedObject {
  /** Causal context: actor -> max counter seen. */
  readonly clock: ReadonlyMap<string, number>;
  /** Canonical order: writtenAtMs, then dot. */
  readonly siblings: readonly Sibling[];
  /**
   * actor -> writtenAtMs of the newest write that advanced that clock entry; only used to pick
   * which entries to prune first. Missing (or missing entries) counts as 0, i.e. oldest.
   * Every object returned by this module has it, with one entry per clock actor.
   */
  readonly clockTimesMs?: ReadonlyMap<string, number>;
}

export interface WriteOptions {
  /** 1..MAX_SIBLINGS_LIMIT. */
  maxSiblings: number;
  conflictPolicy: 'siblings' | 'lww';
  /** 1..MAX_CLOCK_ENTRIES. */
  vclockMaxEntries: number;
  /**
   * The actor of the node applying a merge, if it mints dots for this key: its clock entry is
   * never pruned, so its counters never go back (a reused dot would be silently dominated).
   */
  localActor?: string;
}

/** The defaults of conf/ringkv.conf (max-siblings 100 as Riak, vclock-max-entries 50 as Riak small_vclock). */
export const DEFAULT_WRITE_OPTIONS: Readonly<WriteOptions> = Object.freeze({
  maxSiblings: 100,
  conflictPolicy: 'siblings',
  vclockMaxEntries: 50,
});

export interface NewSibling {
  value: Buffer | null;
  writtenAtMs: number;
  expiresAtMs: number;
  /**
   * Optional lowest counter to mint. Counters only need to grow per actor and key, so they may
   * jump. Passing writtenAtMs here makes counters survive the object being reaped: once a dead
   * object is dropped after gc grace, its clock is gone and the next write would restart at
   * counter 1, which a replica still holding the old tombstone (clock a:5) would take as seen
   * and silently drop (KV679 by reaping). With a time floor the new dot is above every old one.
   * Costs about 5 more bytes per dot. Absent: max(clock, ctx) + 1.
   */
  minCounter?: number;
}

export const EMPTY_OBJECT: VersionedObject = Object.freeze({
  clock: new Map<string, number>(),
  siblings: Object.freeze([]) as readonly Sibling[],
  clockTimesMs: new Map<string, number>(),
});

/** The causal context a client gets with a read: everything the object has seen. */
export function contextOf(obj: VersionedObject): Context {
  return obj.clock;
}

/** Canonical sibling order: oldest first by writtenAtMs, then by dot. */
export function compareSiblings(a: Sibling, b: Sibling): number {
  return a.writtenAtMs - b.writtenAtMs || compareDots(a.dot, b.dot);
}

/**
 * Coordinator write. Mints dot (actor, max(obj.clock[actor], ctx[actor]) + 1), drops every
 * sibling `ctx` covers, adds the new sibling, merges `ctx` into the clock, then applies the
 * conflict policy, the sibling cap and clock pruning. A plain write passes ctx = contextOf(obj)
 * and leaves exactly one sibling.
 */
export function applyWrite(
  obj: VersionedObject,
  ctx: Context,
  actor: string,
  s: NewSibling,
  opts: WriteOptions,
): VersionedObject {
  checkOptions(opts);
  assertActor(actor);
  assertTime(s.writtenAtMs, 'writtenAtMs');
  assertTime(s.expiresAtMs, 'expiresAtMs');
  if (s.minCounter !== undefined) assertTime(s.minCounter, 'minCounter');
  assert(s.value === null || s.value.length <= MAX_SIBLING_VALUE_BYTES, 'value exceeds MAX_SIBLING_VALUE_BYTES');

  const counter = Math.max(obj.clock.get(actor) ?? 0, ctx.get(actor) ?? 0, (s.minCounter ?? 1) - 1) + 1;
  assert(counter <= MAX_COUNTER, 'counter overflow');
  const minted: Sibling = {
    value: s.value,
    dot: { actor, counter },
    writtenAtMs: s.writtenAtMs,
    expiresAtMs: s.expiresAtMs,
  };

  let siblings: Sibling[] = [minted];
  if (opts.conflictPolicy !== 'lww') {
    const kept: Sibling[] = [];
    for (const x of obj.siblings) if (!covers(ctx, x.dot)) kept.push(x);
    // Empty on every plain write (ctx is the object's own clock): then no sorting.
    if (kept.length > 0) {
      kept.sort(compareSiblings);
      // The minted sibling always stays; the oldest of the others go first past the cap.
      const room = opts.maxSiblings - 1;
      siblings = kept.slice(Math.max(0, kept.length - room));
      siblings.push(minted);
      siblings.sort(compareSiblings);
    }
  }

  // mergeContexts(c, c) is a copy of c: skip its lookups on a plain write.
  const merged = ctx === obj.clock ? new Map(obj.clock) : mergeContexts(obj.clock, ctx);
  const isNew = !merged.has(actor);
  merged.set(actor, counter);
  const clock = isNew ? sortByActor(merged) : merged;
  const times = new Map<string, number>();
  for (const [a, n] of clock) {
    const old = obj.clockTimesMs?.get(a) ?? 0;
    const advanced = n > (obj.clock.get(a) ?? 0);
    times.set(a, advanced ? Math.max(old, s.writtenAtMs) : old);
  }
  return finish(clock, times, siblings, opts, actor);
}

/**
 * Replica sync. A sibling survives if both sides hold it, or if the other side has not seen its
 * dot; a sibling the other side has seen but no longer holds was superseded there. Clocks are
 * merged pointwise. Then the conflict policy, sibling cap and pruning apply (see header).
 */
export function mergeObjects(a: VersionedObject, b: VersionedObject, opts: WriteOptions): VersionedObject {
  checkOptions(opts);
  // Sibling sets are small (<= max-siblings): match dots by linear scan, no maps.
  const out: Sibling[] = [];
  for (const s of a.siblings) {
    const other = findDot(b.siblings, s.dot);
    if (other !== undefined) out.push(pickSameDot(s, other));
    else if (!covers(b.clock, s.dot)) out.push(s);
  }
  for (const s of b.siblings) {
    if (findDot(a.siblings, s.dot) === undefined && !covers(a.clock, s.dot)) out.push(s);
  }
  out.sort(compareSiblings);

  let siblings: Sibling[];
  if (opts.conflictPolicy === 'lww') siblings = out.slice(-1);
  else siblings = out.slice(Math.max(0, out.length - opts.maxSiblings));

  const clock = mergeContexts(a.clock, b.clock);
  const times = new Map<string, number>();
  for (const actor of clock.keys()) {
    times.set(actor, Math.max(a.clockTimesMs?.get(actor) ?? 0, b.clockTimesMs?.get(actor) ?? 0));
  }
  return finish(clock, times, siblings, opts, opts.localActor);
}

function findDot(siblings: readonly Sibling[], d: Dot): Sibling | undefined {
  for (const s of siblings) if (s.dot.counter === d.counter && s.dot.actor === d.actor) return s;
  return undefined;
}

function finish(
  clock: ReadonlyMap<string, number>,
  times: Map<string, number>,
  siblings: Sibling[],
  opts: WriteOptions,
  protect: string | undefined,
): VersionedObject {
  // Within the cap (nearly always) pruning is a no-op: skip building its keep set.
  if (clock.size <= opts.vclockMaxEntries) {
    return { clock, siblings: Object.freeze(siblings), clockTimesMs: sortByActor(times) };
  }
  const keep = new Set<string>();
  for (const s of siblings) keep.add(s.dot.actor);
  if (protect !== undefined) keep.add(protect);
  const pruned = pruneClock(clock, times, keep, opts.vclockMaxEntries);
  return {
    clock: pruned.clock,
    siblings: Object.freeze(siblings),
    clockTimesMs: sortByActor(pruned.timesMs),
  };
}

/**
 * Two copies of one dot are the same write and should be identical. If they are not (a bug or
 * corruption elsewhere), pick one deterministically so merge stays commutative.
 */
function pickSameDot(x: Sibling, y: Sibling): Sibling {
  if (x === y) return x;
  const c =
    x.writtenAtMs - y.writtenAtMs ||
    x.expiresAtMs - y.expiresAtMs ||
    (x.value === null ? (y.value === null ? 0 : -1) : y.value === null ? 1 : Buffer.compare(x.value, y.value));
  return c >= 0 ? x : y;
}

/** A sibling is live when it is a value (not a tombstone) that has not expired at nowMs. */
export function isLive(s: Sibling, nowMs: number): boolean {
  return s.value !== null && (s.expiresAtMs === 0 || nowMs <= s.expiresAtMs);
}

/** Live siblings in canonical order (writtenAtMs, then dot). */
export function liveSiblings(obj: VersionedObject, nowMs: number): Sibling[] {
  // A loop, not filter + closure: this runs on every read and write.
  const out: Sibling[] = [];
  for (const s of obj.siblings) if (isLive(s, nowMs)) out.push(s);
  return out;
}

/** Values of the live siblings, in canonical order. */
export function liveValues(obj: VersionedObject, nowMs: number): Buffer[] {
  return liveSiblings(obj, nowMs).map((s) => s.value as Buffer);
}

/** True when no live sibling remains: the object may be dropped once gc grace has passed. */
export function isDead(obj: VersionedObject, nowMs: number): boolean {
  return !obj.siblings.some((s) => isLive(s, nowMs));
}

/**
 * When the object as a whole stops being live: 0 if some value sibling never expires (or there is
 * no value sibling at all: the object is already dead, see isDead); else the latest expiry.
 */
export function objectExpiresAtMs(obj: VersionedObject): number {
  let latest = 0;
  for (const s of obj.siblings) {
    if (s.value === null) continue;
    if (s.expiresAtMs === 0) return 0;
    latest = Math.max(latest, s.expiresAtMs);
  }
  return latest;
}

/** Returns a description of the first broken invariant, or null. For tests and decode. */
export function checkObjectInvariants(obj: VersionedObject): string | null {
  let prev: string | undefined;
  for (const [actor, n] of obj.clock) {
    if (prev !== undefined && !(prev < actor)) return `clock actors not in order: ${prev}, ${actor}`;
    prev = actor;
    if (!Number.isSafeInteger(n) || n < 1) return `clock counter ${n} for ${actor} is not >= 1`;
  }
  if (obj.clock.size > MAX_CLOCK_ENTRIES) return `clock has ${obj.clock.size} entries`;
  if (obj.clockTimesMs !== undefined) {
    for (const a of obj.clockTimesMs.keys()) if (!obj.clock.has(a)) return `clock time for unknown actor ${a}`;
  }
  if (obj.siblings.length > MAX_SIBLINGS_LIMIT) return `${obj.siblings.length} siblings`;
  const seen = new Set<string>();
  for (let i = 0; i < obj.siblings.length; i++) {
    const s = obj.siblings[i] as Sibling;
    const k = dotKey(s.dot);
    if (seen.has(k)) return `duplicate dot ${k}`;
    seen.add(k);
    if (!covers(obj.clock, s.dot)) return `dot ${k} not covered by the clock`;
    if (i > 0 && compareSiblings(obj.siblings[i - 1] as Sibling, s) >= 0) return `siblings not in canonical order at ${i}`;
  }
  return null;
}

const BAD_MAX_SIBLINGS = `maxSiblings must be in 1..${MAX_SIBLINGS_LIMIT}`;
const BAD_VCLOCK_MAX = `vclockMaxEntries must be in 1..${MAX_CLOCK_ENTRIES}`;
const BAD_ACTOR = `actor must be 1..${MAX_ACTOR_BYTES} UTF-8 bytes`;

function checkOptions(opts: WriteOptions): void {
  assert(Number.isInteger(opts.maxSiblings) && opts.maxSiblings >= 1 && opts.maxSiblings <= MAX_SIBLINGS_LIMIT, BAD_MAX_SIBLINGS);
  assert(Number.isInteger(opts.vclockMaxEntries) && opts.vclockMaxEntries >= 1 && opts.vclockMaxEntries <= MAX_CLOCK_ENTRIES, BAD_VCLOCK_MAX);
  assert(opts.conflictPolicy === 'siblings' || opts.conflictPolicy === 'lww', 'bad conflictPolicy');
}

const LONE_SURROGATE = /\p{Cs}/u;

/** The last actor assertActor accepted: a node writes with one actor, checked once (strings are immutable). */
let lastValidActor: string | undefined;

function assertActor(actor: string): void {
  if (actor === lastValidActor) return;
  const n = Buffer.byteLength(actor, 'utf8');
  assert(n >= 1 && n <= MAX_ACTOR_BYTES, BAD_ACTOR);
  assert(!LONE_SURROGATE.test(actor), 'actor must be well-formed Unicode (it is stored as UTF-8)');
  lastValidActor = actor;
}

function assertTime(ms: number, what: string): void {
  if (!(Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIME_MS)) assert.fail(`${what} must be an integer in 0..2^53-1`);
}
