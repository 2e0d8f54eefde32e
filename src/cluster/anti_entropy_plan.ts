/**
 * The pure decisions of anti-entropy (anti_entropy.ts runs them): which slots two replicas
 * compare, which peers a node exchanges with, and, for one differing leaf, which objects cross
 * in which direction.
 */
import type { Ring } from '../coordinator/ring.js';
import { SLOT_COUNT } from '../server/key_layout.js';
import type { SlotMask } from './merkle.js';
import type { VersionedObject } from '../coordinator/object.js';
import { MAX_CLOCK_SUM, type LeafEntry } from './anti_entropy_codec.js';

/** The slots whose preference list holds both `self` and `peer` (what they both replicate). */
export function sharedSlots(ring: Ring, self: string, peer: string): SlotMask {
  const mask = new Uint8Array(SLOT_COUNT);
  for (let s = 0; s < SLOT_COUNT; s++) {
    const pref = ring.preflist(s);
    if (pref.includes(self) && pref.includes(peer)) mask[s] = 1;
  }
  return mask;
}

/** Every other node that shares at least one slot with `self`, sorted. */
export function replicaPeers(ring: Ring, self: string): string[] {
  const peers = new Set<string>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    const pref = ring.preflist(s);
    if (!pref.includes(self)) continue;
    for (const id of pref) if (id !== self) peers.add(id);
  }
  return [...peers].sort();
}

/** One of my stored objects in a leaf: its key, entry hash (merkle.ts entryHash), clock sum and encoding. */
export interface LocalEntry {
  readonly key: Buffer;
  readonly hash: bigint;
  readonly clockSum: number;
  readonly bytes: Buffer;
}

/** The sum of an object's causal-context counters: if one version dominates another, its sum is larger. */
export function clockSum(obj: VersionedObject): number {
  let n = 0;
  for (const c of obj.clock.values()) n += c;
  return Math.min(n, MAX_CLOCK_SUM);
}

/**
 * The responder's decision for one leaf, given its own entries and the initiator's listing:
 *  - send: my objects the initiator lacks, or holds in another version that cannot dominate mine
 *    (my clock sum is not below its: a dominating clock has a strictly larger sum). A version of
 *    mine that the initiator's may dominate is not sent: the initiator pushes its own, and if my
 *    merge of it is something else (the versions were concurrent), the push reply carries the
 *    merge back. So a stale replica's copy never crosses the wire for nothing;
 *  - want: keys the initiator holds that I lack or hold in another version.
 * Keys equal on both sides (same entry hash) cross no further. After the initiator merged what
 * was sent, it pushes back only the wanted keys whose merged version still differs from mine.
 */
export function compareLeaf(mine: readonly LocalEntry[], theirs: readonly LeafEntry[]): { send: LocalEntry[]; want: Buffer[] } {
  const theirHash = new Map<string, LeafEntry>();
  for (const e of theirs) theirHash.set(e.key.toString('latin1'), e);
  const myHash = new Map<string, bigint>();
  const send: LocalEntry[] = [];
  for (const e of mine) {
    const name = e.key.toString('latin1');
    myHash.set(name, e.hash);
    const theirs = theirHash.get(name);
    if (theirs === undefined || (theirs.hash !== e.hash && e.clockSum >= theirs.clockSum)) send.push(e);
  }
  const want: Buffer[] = [];
  for (const e of theirs) if (myHash.get(e.key.toString('latin1')) !== e.hash) want.push(e.key);
  return { send, want };
}
