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

export type WriteRoute =
  | { readonly kind: 'local' }
  | { readonly kind: 'forward'; readonly to: string }
  | { readonly kind: 'unavailable' };

export function writeCoordinator(ring: Ring, slot: number, self: string, isUp: (id: string) => boolean): WriteRoute {
  const pref = ring.preflist(slot);
  if (pref.includes(self) && isUp(self)) return { kind: 'local' };
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
  const dcOf = (id: string): string => ring.member(id)?.dc ?? '';
  if (!sloppy) {
    const pref = ring.preflist(slot);
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
