/**
 * What the request state machines (put_fsm, get_fsm) share: a timer source, counters, the
 * background-work tracker, and the slot's target plan. Injected so a test or a simulation can
 * drive them; the defaults are Node's timers and a monotonic clock.
 */

import assert from 'node:assert';
import { performance } from 'node:perf_hooks';
import type { QuorumTarget, Replication } from './quorum.js';
import type { Ring } from './ring.js';
import { primaryTargets, requestTargets } from './route.js';
import { SLOT_COUNT } from './slot.js';

/** Time for deadlines: a monotonic clock in ms and a cancellable one-shot timer. */
export interface FsmTimers {
  now(): number;
  /** Calls `fn` after `ms`; the returned function cancels it (a no-op once fired). */
  after(ms: number, fn: () => void): () => void;
}

/**
 * Settles an fsm's promise with an outcome's mapping of its result or error (runPutAs,
 * runGetValueAs) as a continuation .then(map) would: resolved with map(a, b), rejected with
 * what the mapping throws.
 */
export function settleMapped<A, B>(resolve: (r: unknown) => void, reject: (err: unknown) => void, map: (a: A, b: B) => unknown, a: A, b: B): void {
  try {
    resolve(map(a, b));
  } catch (err) {
    reject(err);
  }
}

export const REAL_TIMERS: FsmTimers = {
  now: () => performance.now(),
  after(ms, fn) {
    const h = setTimeout(fn, Math.max(0, ms));
    // A pending request deadline must not keep a process alive that is otherwise done.
    h.unref();
    return () => clearTimeout(h);
  },
};

/**
 * Counters of the request paths (for INFO / /metrics). Monotonic; read, never reset here.
 * "late" = an answer that arrived after the request had already replied (or given up).
 */
export class FsmStats {
  gets = 0;
  puts = 0;
  /** Forward attempts of writes to another coordinator (retries included). */
  forwards = 0;
  /** Forward attempts that could not reach the node and went on to the next primary. */
  forwardRetries = 0;
  readNoQuorum = 0;
  writeNoQuorum = 0;
  /** Replica acks of writes that came after the reply (counted, otherwise ignored). */
  lateAcks = 0;
  /** Replica write failures after the reply. */
  lateWriteErrors = 0;
  /** Read answers that came after the reply (still used for read repair). */
  lateReadAnswers = 0;
  /** Remote read answers byte-identical to this node's own stored object (taken as it, not decoded). */
  readAnswersSameBytes = 0;
  /** Read repairs sent, succeeded, failed, and skipped because too many were in flight. */
  readRepairsSent = 0;
  readRepairsDone = 0;
  readRepairErrors = 0;
  readRepairsSkipped = 0;
  /** Replica puts received as a sloppy-quorum fallback (hints). */
  hintedPutsReceived = 0;
}

/**
 * Work that outlives a request's reply (fan-out after W acks, read answers after R, read
 * repair). Tracked so shutdown and tests can wait for it, and so its count is bounded.
 */
export class BackgroundWork {
  #inflight = 0;
  #waiters: Array<() => void> = [];

  get inflight(): number {
    return this.#inflight;
  }

  /** Tracks `p` until it settles. `p` must not reject (callers catch and count first). */
  track(p: Promise<void>): void {
    this.#inflight++;
    // then(done, done), not finally(): one promise fewer per tracked piece of work (two per write).
    void p.then(this.#done, this.#done);
  }

  /** Starts a piece of work reported by callback instead of a promise; call end() once when it is over. */
  begin(): void {
    this.#inflight++;
  }

  end(): void {
    this.#done();
  }

  readonly #done = (): void => {
    this.#inflight--;
    assert(this.#inflight >= 0, 'background work count went negative');
    if (this.#inflight === 0 && this.#waiters.length > 0) {
      const ws = this.#waiters;
      this.#waiters = [];
      for (const w of ws) w();
    }
  };

  /** Resolves once no tracked work is in flight. */
  idle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** The replicas a request goes to, with hint destinations for sloppy-quorum fallbacks. */
export interface TargetPlan {
  readonly targets: readonly QuorumTarget[];
  /** Known down at the start (only without sloppy quorum): an 'error' each, never contacted. */
  readonly down: readonly string[];
  /** fallback id -> the primary it stands in for. */
  readonly hintFor: ReadonlyMap<string, string>;
}

const NO_HINTS: ReadonlyMap<string, string> = new Map();

/**
 * Per ring (rings are immutable): slot -> the plan of its primaries, all up (the healthy case,
 * every request), one plan per distinct targets array (route.ts primaryTargets shares those
 * between the slots of one preflist), so every slot's plan is one of a few objects in cache. The
 * last ring's record is kept beside the WeakMap: a request then finds its plan with an identity
 * check and an index, no map lookup (a plan per shared RequestTargets in a WeakMap of 16384 keys
 * cost ~2-4 us a request in process, more than the rest of planning). The array has a place for
 * every slot from the start: one filled at scattered slots became a dictionary, and each read of
 * it a hash lookup (a megamorphic keyed load on node 0).
 */
interface PlansOfRing {
  readonly ring: Ring;
  readonly plans: Array<TargetPlan | undefined>;
  readonly byTargets: Map<readonly QuorumTarget[], TargetPlan>;
}

const plansByRing = new WeakMap<Ring, PlansOfRing>();
let lastPlans: PlansOfRing | undefined;

function plansOf(ring: Ring): PlansOfRing {
  let last = lastPlans;
  if (last === undefined || last.ring !== ring) {
    last = plansByRing.get(ring);
    if (last === undefined) {
      last = { ring, plans: new Array<TargetPlan | undefined>(SLOT_COUNT).fill(undefined), byTargets: new Map() };
      plansByRing.set(ring, last);
    }
    lastPlans = last;
  }
  return last;
}

const NO_DOWN: readonly string[] = Object.freeze([]);

/**
 * route.requestTargets plus the fallbacks' hint destinations (from the annotated preflist). A
 * slot whose primary plan is known is checked against its targets (a plain array, the preflist's
 * ids in order), not against the ring's frozen preflist: see route.ts primaryTargets.
 */
export function planTargets(ring: Ring, slot: number, isUp: (id: string) => boolean, sloppy: boolean): TargetPlan {
  const ofRing = plansOf(ring);
  const known = ofRing.plans[slot];
  if (known !== undefined) {
    const ts = known.targets;
    let allUp = true;
    for (let i = 0; i < ts.length && allUp; i++) allUp = isUp(ts[i]!.id);
    if (allUp) return known;
  }
  const pref = ring.preflist(slot);
  let allUp = true;
  for (let i = 0; i < pref.length && allUp; i++) allUp = isUp(pref[i]!);
  if (allUp && pref.length > 0) {
    const targets = primaryTargets(ring, slot, pref).targets;
    let plan = ofRing.byTargets.get(targets);
    if (plan === undefined) {
      plan = Object.freeze({ targets, down: NO_DOWN, hintFor: NO_HINTS });
      ofRing.byTargets.set(targets, plan);
    }
    ofRing.plans[slot] = plan;
    return plan;
  }
  const { targets, down } = requestTargets(ring, slot, isUp, sloppy);
  const hintFor = new Map<string, string>();
  if (sloppy && targets.some((x) => !x.primary)) {
    for (const e of ring.annotatedPreflist(slot, isUp)) if (e.forId !== undefined) hintFor.set(e.id, e.forId);
  }
  return { targets, down, hintFor };
}

/** One shared { n } per replication factor (resolved twice per write). */
const replicationByN: Replication[] = [];

/** The replication a quorum spec resolves against, seen from node `self`. */
export function replicationOf(ring: Ring, self: string): Replication {
  if (ring.dcReplication === undefined) return (replicationByN[ring.n] ??= Object.freeze({ n: ring.n }));
  return { dcReplication: ring.dcReplication, localDc: ring.member(self)?.dc ?? '' };
}

/** An object no replica has anything for (a notfound answer). */
export function isAbsent(obj: { readonly clock: ReadonlyMap<string, number>; readonly siblings: readonly unknown[] }): boolean {
  return obj.clock.size === 0 && obj.siblings.length === 0;
}
