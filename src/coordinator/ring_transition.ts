/**
 * Ring transitions (issue 6): PURE. Given the ring before and after a membership change, which
 * slots each node gains and loses, where a gainer streams a slot from, and who takes a write
 * while the change is in progress. No I/O: src/cluster/stream_manager.ts acts on it.
 *
 *   current ring  (owners: up + leaving)   who holds the data now; reads go here
 *   target  ring  (owners: up + joining)   the ring once every join and leave is done
 *
 *   slot s: current [A, B, C]  target [A, B, D]     D joins, C is pushed out of s
 *     gained: D  (streams s from a current replica: A, B or C)
 *     lost:   C  (drops s only after D is `up`, i.e. D confirmed it holds s)
 *     pending replicas for writes: [D]  (Cassandra's pending ranges)
 *
 * Writes during a transition go to the current replicas AND the pending ones, and need
 * W + (pending replicas that are up) acknowledgements among them (Cassandra's blockFor): then at
 * least W of the acks are on the current set and, since at most N - W of the N + P targets can be
 * missing, at least W are on the target set too, so a read at R (R + W > N) finds the write on
 * either side of the switch. Reads use the current ring until the gainer turns `up`.
 *
 * Moves: with consistent hashing a single join changes only the slots whose preference list
 * gains the new node (about N/(n+1) of them, 1/(n+1) of the primaries), and each such slot
 * loses exactly one old replica; a leave changes only the slots of the leaving node
 * (ring_transition.test.ts checks both).
 */

import assert from 'node:assert';
import type { Ring } from './ring.js';
import { SLOT_COUNT } from './slot.js';

/** One slot whose preference list differs between the two rings. */
export interface SlotMove {
  readonly slot: number;
  /** In the target preflist, not in the current one: they stream the slot in. */
  readonly gained: readonly string[];
  /** In the current preflist, not in the target one: they drop the slot once gainers are up. */
  readonly lost: readonly string[];
  /** The current replicas, to stream from (any of them; the gainer picks a live one). */
  readonly sources: readonly string[];
}

/** Counts of a transition, to compare with the ideal 1/(n+1). */
export interface TransitionStats {
  /** Slots whose preference list changes at all. */
  readonly slotsChanged: number;
  /** Slots whose primary (first replica) changes. */
  readonly primariesChanged: number;
  /** (slot, replica) pairs that move: the number of slot copies streamed. */
  readonly replicaMoves: number;
}

export class RingTransition {
  /** Changed slots only, in slot order. */
  readonly moves: readonly SlotMove[];
  readonly stats: TransitionStats;
  readonly #bySlot: ReadonlyMap<number, SlotMove>;

  constructor(
    readonly current: Ring,
    readonly target: Ring,
  ) {
    assert(current.n === target.n, 'both rings must have the same replication');
    const moves: SlotMove[] = [];
    let primariesChanged = 0;
    let replicaMoves = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const a = current.preflist(s);
      const b = target.preflist(s);
      if (a === b) continue; // the ring shares equal preflists, so identity is the fast path
      if (a[0] !== b[0]) primariesChanged++;
      const gained = b.filter((id) => !a.includes(id));
      const lost = a.filter((id) => !b.includes(id));
      if (gained.length === 0 && lost.length === 0) continue; // order only: nothing to move
      replicaMoves += gained.length;
      moves.push({ slot: s, gained, lost, sources: a });
    }
    this.moves = moves;
    this.#bySlot = new Map(moves.map((m) => [m.slot, m]));
    this.stats = { slotsChanged: moves.length, primariesChanged, replicaMoves };
  }

  /** True when the two rings place every slot on the same nodes. */
  get idle(): boolean {
    return this.moves.length === 0;
  }

  /** The move of one slot, or undefined when it does not change. */
  move(slot: number): SlotMove | undefined {
    return this.#bySlot.get(slot);
  }

  /**
   * Replicas a write to `slot` must reach besides the current preflist (target-only members).
   * Empty for a slot that does not move.
   */
  pendingReplicas(slot: number): readonly string[] {
    return this.#bySlot.get(slot)?.gained ?? [];
  }

  /** Slots `node` streams in, with their sources, in slot order. */
  gainedBy(node: string): SlotMove[] {
    return this.moves.filter((m) => m.gained.includes(node));
  }

  /** Slots `node` gives up once the transition completes, in slot order. */
  lostBy(node: string): number[] {
    return this.moves.filter((m) => m.lost.includes(node)).map((m) => m.slot);
  }
}

/** Runs of consecutive slots: [first, last] inclusive, for range scans (keys are slot-ordered). */
export interface SlotRun {
  readonly first: number;
  readonly last: number;
}

/** Groups ascending slots into maximal runs of consecutive slots, each at most `maxSlots` long. */
export function slotRuns(slots: readonly number[], maxSlots: number = SLOT_COUNT): SlotRun[] {
  assert(Number.isInteger(maxSlots) && maxSlots >= 1);
  const out: SlotRun[] = [];
  let first = -1;
  let last = -1;
  for (const s of slots) {
    assert(s > last, 'slots must be ascending and distinct');
    if (first >= 0 && s === last + 1 && s - first < maxSlots) {
      last = s;
      continue;
    }
    if (first >= 0) out.push({ first, last });
    first = s;
    last = s;
  }
  if (first >= 0) out.push({ first, last });
  return out;
}

/**
 * Slots `node` held under `before` and does not hold under `after` (what it may drop once the
 * change has settled), ascending.
 */
export function slotsLost(before: Ring, after: Ring, node: string): number[] {
  const out: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    const a = before.preflist(s);
    if (a.includes(node) && !after.preflist(s).includes(node)) out.push(s);
  }
  return out;
}
