/**
 * Who does what for a slot, given the ring and who is up: the coordinator of a write, and the
 * replicas a request is sent to (ARCHITECTURE.md sections 3 and 5). Pure; the shell supplies
 * `isUp` from the failure detector.
 *
 * Writes are coordinated by a primary replica, because the coordinator mints the dot from its
 * own clock entry for the key: the node itself when it is an up primary, else the first up
 * primary in preference-list order. The node receiving the request forwards to it.
 * A fallback never coordinates, even under sloppy quorum: once its hinted copy is handed off
 * and deleted it no longer knows its own counter for the key and would mint a dot the
 * primaries have already seen, which they would silently drop (Riak's KV679 again). With no
 * primary up, writes are unavailable; with at least one, fallbacks still take the missing
 * replicas' copies as hints (requestTargets).
 */

import type { QuorumTarget } from './quorum.js';
import type { Ring } from './ring.js';
import { SLOT_COUNT } from './slot.js';

export type WriteRoute =
  | { readonly kind: 'local' }
  | { readonly kind: 'forward'; readonly to: string }
  | { readonly kind: 'unavailable' };

/** The route of nearly every write: one shared object. */
const LOCAL: WriteRoute = Object.freeze({ kind: 'local' });

export function writeCoordinator(ring: Ring, slot: number, self: string, isUp: (id: string) => boolean): WriteRoute {
  const pref = ring.preflist(slot);
  if (pref.includes(self) && isUp(self)) return LOCAL;
  const primary = pref.find(isUp);
  if (primary === undefined) return { kind: 'unavailable' };
  return { kind: 'forward', to: primary };
}

export interface RequestTargets {
  /** The replicas to ask: feed them to a QuorumTally. */
  readonly targets: readonly QuorumTarget[];
  /**
   * Targets known to be down when the request starts (only without sloppy quorum, where a
   * down primary is not replaced): the shell records an 'error' for each at once.
   */
  readonly down: readonly string[];
}

/**
 * With sloppy quorum: the up primaries and one fallback per down primary (Riak's annotated
 * preflist); fewer targets when not enough nodes are up. Without: all primaries, down ones
 * listed in `down`.
 */
export function requestTargets(ring: Ring, slot: number, isUp: (id: string) => boolean, sloppy: boolean): RequestTargets {
  // Fast path, the healthy case: every primary up. Then both modes ask exactly the primaries
  // (no fallback stands in for anyone), which is fixed per ring and slot: built once, shared.
  const pref = ring.preflist(slot);
  let allUp = true;
  for (const id of pref) {
    if (!isUp(id)) {
      allUp = false;
      break;
    }
  }
  if (allUp) return primaryTargets(ring, slot, pref);
  const dcOf = (id: string): string => ring.member(id)?.dc ?? '';
  if (!sloppy) {
    return {
      targets: pref.map((id) => ({ id, dc: dcOf(id), primary: true })),
      down: pref.filter((id) => !isUp(id)),
    };
  }
  return {
    targets: ring.annotatedPreflist(slot, isUp).map((e) => ({ id: e.id, dc: dcOf(e.id), primary: e.role === 'primary' })),
    down: [],
  };
}

const NO_DOWN: readonly string[] = Object.freeze([]);

/** A ring's primary RequestTargets: by slot, and one per distinct preflist that the slots share. */
interface PrimaryTargetsOfRing {
  readonly bySlot: Array<RequestTargets | undefined>;
  readonly byPreflist: Map<readonly string[], RequestTargets>;
}

/** Per ring (rings are immutable). */
const primaryTargetsCache = new WeakMap<Ring, PrimaryTargetsOfRing>();

/**
 * The RequestTargets of a slot whose primaries are all up (`pref` = its preflist): one per ring
 * and distinct preflist (Ring interns its preflists: a 3-node ring at N=3 has at most 6), shared
 * by every slot with that preflist. One set of target objects per slot (16384) left each request
 * reading its slot's targets from memory nothing else touched: cache misses in planTargets and in
 * QuorumTally's id scan on every answer (~14% of node 0's main thread at SET -P16). The targets
 * array is not frozen (its entries are): V8 reads the elements of a frozen array through a slower
 * path (an id scan of 3 frozen targets took ~2.5x the time of a plain array's in Node 20).
 */
export function primaryTargets(ring: Ring, slot: number, pref: readonly string[]): RequestTargets {
  let cache = primaryTargetsCache.get(ring);
  if (cache === undefined) {
    // Every slot's place made at once: an array filled at scattered indices turns into a
    // dictionary, whose reads are hash lookups.
    cache = { bySlot: new Array<RequestTargets | undefined>(SLOT_COUNT).fill(undefined), byPreflist: new Map() };
    primaryTargetsCache.set(ring, cache);
  }
  let t = cache.bySlot[slot];
  if (t === undefined) {
    t = cache.byPreflist.get(pref);
    if (t === undefined) {
      const targets: readonly QuorumTarget[] = pref.map((id) => Object.freeze({ id, dc: ring.member(id)?.dc ?? '', primary: true }));
      t = Object.freeze({ targets, down: NO_DOWN });
      cache.byPreflist.set(pref, t);
    }
    cache.bySlot[slot] = t;
  }
  return t;
}
