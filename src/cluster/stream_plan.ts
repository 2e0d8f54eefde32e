/**
 * What a node must stream, drop and confirm, decided from rings: PURE (stream_manager.ts is the
 * shell that acts on it). See ring_transition.ts for the vocabulary.
 *
 *  - Transition gains: slots this node is in the target preflist of and not the current one
 *    (it joins, or takes over from a leaving node): pulled from the current replicas.
 *  - Removal gains: when a member leaves the current ring WITHOUT a streamed transition
 *    (CLUSTER FORGET of a dead node), the survivors that enter a slot's preflist pull it from
 *    the slot's previous replicas, restoring N copies.
 *  - Drops: slots this node holds in neither the current nor the target ring (it lost them
 *    to a node that is now up, or streamed or took writes for them in a target that changed
 *    since, e.g. a second node joining at the same time).
 * Additions without streaming (a new cluster of empty nodes, `join-streaming no`) move nothing.
 */
import type { Ring } from '../coordinator/ring.js';
import type { RingTransition } from '../coordinator/ring_transition.js';
import { SLOT_COUNT } from '../coordinator/slot.js';
import type { StreamTask } from './stream_progress.js';

/** Longest run of slots in one task (a task is one resumable range scan). */
export const MAX_TASK_SLOTS = 512;

export interface SlotGain {
  readonly slot: number;
  readonly sources: readonly string[];
}

/** Transition gains of `self` not yet streamed. */
export function transitionGains(tr: RingTransition, self: string): SlotGain[] {
  return tr.gainedBy(self).map((m) => ({ slot: m.slot, sources: m.sources }));
}

/** Slots `self` enters in `cur` because members of `prev` are gone from it (not merely added). */
export function removalGains(prev: Ring, cur: Ring, self: string): SlotGain[] {
  const gone = prev.members.filter((m) => cur.member(m.id) === undefined).map((m) => m.id);
  if (gone.length === 0) return [];
  const out: SlotGain[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    const now = cur.preflist(s);
    if (!now.includes(self)) continue;
    const before = prev.preflist(s);
    if (before.includes(self)) continue;
    out.push({ slot: s, sources: [...before.filter((x) => x !== self), ...now.filter((x) => x !== self && !before.includes(x))] });
  }
  return out;
}

/** 1 for every slot `self` is a replica of in the current or the target ring, else 0. */
export function ownedSlots(cur: Ring, target: Ring, self: string): Uint8Array {
  const out = new Uint8Array(SLOT_COUNT);
  for (let s = 0; s < SLOT_COUNT; s++) if (cur.preflist(s).includes(self) || target.preflist(s).includes(self)) out[s] = 1;
  return out;
}

export interface SweepPlan {
  /** Slots to drop now, ascending. */
  readonly drop: number[];
  /** 1 for the slots still counted as this node's after the sweep: current ones plus kept ones. */
  readonly owned: Uint8Array;
}

/**
 * What a sweep drops: the slots `self` holds in neither ring of `tr`, except those it was a
 * current owner of (`wasOwner`, 1 per slot) while the slot is still moving. A gainer plans its
 * sources once, from the current replicas of that moment, and does not re-plan when the current
 * ring changes under it: with two joins at once, the first joiner turning `up` pushes an old
 * owner out of a slot the second is still streaming from it. Dropped then, the second joiner
 * read an empty slot and the key ended on N - 1 replicas (CI: elastic.test.ts, preloaded keys
 * with 2 holders). Kept until no gainer of the slot is left, the old owner stays a full source.
 */
export function sweepPlan(tr: RingTransition, self: string, wasOwner: Uint8Array): SweepPlan {
  const held = ownedSlots(tr.current, tr.target, self);
  const owned = ownedSlots(tr.current, tr.current, self);
  const drop: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (held[s] === 1) continue;
    if (wasOwner[s] === 1 && tr.pendingReplicas(s).length > 0) owned[s] = 1;
    else drop.push(s);
  }
  return { drop, owned };
}

/**
 * New tasks for the gains not covered yet: runs of consecutive slots, at most MAX_TASK_SLOTS
 * long, that share at least one source (a task's sources are the ones common to all its slots,
 * in the first slot's order, so any of them holds the whole run), in slot order. Fewer, longer
 * runs mean fewer round trips: with 256 vnodes the moved slots of a join come in short runs
 * whose old preflists differ in one member.
 */
export function planTasks(gains: readonly SlotGain[], covered: (slot: number) => boolean): StreamTask[] {
  const out: StreamTask[] = [];
  let cur: { first: number; last: number; sources: readonly string[] } | undefined;
  const flush = (): void => {
    if (cur !== undefined) out.push({ first: cur.first, last: cur.last, sources: cur.sources, next: Buffer.alloc(0), bytes: 0, keys: 0 });
    cur = undefined;
  };
  for (const g of gains) {
    if (covered(g.slot)) {
      flush();
      continue;
    }
    if (cur !== undefined && g.slot === cur.last + 1 && g.slot - cur.first < MAX_TASK_SLOTS) {
      const common = cur.sources.filter((id) => g.sources.includes(id));
      if (common.length > 0) {
        cur.last = g.slot;
        cur.sources = common;
        continue;
      }
    }
    flush();
    cur = { first: g.slot, last: g.slot, sources: g.sources };
  }
  flush();
  return out;
}

/**
 * Leaving members `self` must confirm to: those that lose a slot `self` gains in `tr` (call once
 * every such slot is streamed).
 */
export function confirmTargets(tr: RingTransition, self: string, isLeaving: (id: string) => boolean): string[] {
  const out = new Set<string>();
  for (const m of tr.gainedBy(self)) for (const id of m.lost) if (isLeaving(id)) out.add(id);
  return [...out].sort();
}

/** Members that must confirm to a leaving `self` before it may leave: the gainers of its slots. */
export function leaveGainers(tr: RingTransition, self: string): string[] {
  const out = new Set<string>();
  for (const m of tr.moves) if (m.lost.includes(self)) for (const id of m.gained) out.add(id);
  return [...out].sort();
}
