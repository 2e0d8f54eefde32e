/**
 * The Merkle hash tree anti-entropy compares (ARCHITECTURE.md section 5). Pure: no I/O, no
 * timers; merkle_store.ts keeps one of these up to date on a node, anti_entropy.ts exchanges it.
 *
 * Shape. The key space of one node is cut into LEAF_COUNT = 16384 slots x 64 buckets leaves;
 * a stored object (key, encoded bytes) falls in leaf (slot(key), keyBucket(key)). Over the leaves
 * sits a fixed tree of fanout 4 and depth 10:
 *
 *   level 0            root                                 1 node
 *   level 1..7         4^level nodes; a level-7 node is exactly one slot (64 leaves)
 *   level 8..9         sub-slot nodes (16 and 4 leaves)
 *   level 10           the leaves (slot * 64 + bucket)    2^20 nodes
 *
 * Hashes. entryHash(key, bytes) is a 64-bit xxh3 of the key and the object's canonical encoding
 * (equal objects encode to equal bytes, object_codec.ts). A leaf's hash is the XOR of the entry
 * hashes in it, and every tree node's hash is the XOR of the leaves under it (restricted to the
 * slots of a mask: the slots two replicas share). XOR makes the tree order-free and lets a write
 * update its leaf in O(1) (remove the old entry hash, add the new one) with no rehash of the
 * path; any node's hash is computed on demand from per-slot and per-leaf XORs in O(span/64).
 * The price is that XOR is not collision resistant against an adversary; anti-entropy only needs
 * accidental differences found, and two distinct changes cancel with probability 2^-64.
 *
 * Descent (the exchange, and diffTrees here): compare the roots; for each differing node, compare
 * its four children; recurse down to the leaves. A single differing leaf costs 4 hashes a level.
 */
import assert from 'node:assert';
import xxhash from 'xxhash-addon';
import { SLOT_COUNT } from '../server/key_layout.js';

const { XXHash3, XXHash64 } = xxhash;

/** Leaves per slot, as bits: 64 buckets, so about one key a leaf at 1M keys a node. */
export const SLOT_LEAF_BITS = 6;
export const LEAVES_PER_SLOT = 1 << SLOT_LEAF_BITS;
export const LEAF_COUNT = SLOT_COUNT * LEAVES_PER_SLOT;
/** Children per tree node, as bits (fanout 4: the fewest hashes sent per differing leaf). */
export const FANOUT_BITS = 2;
export const FANOUT = 1 << FANOUT_BITS;
/** Level of the leaves (the root is level 0): LEAF_COUNT = FANOUT^LEAF_LEVEL. */
export const LEAF_LEVEL = 10;
/** The level whose nodes are exactly one slot each. */
export const SLOT_LEVEL = LEAF_LEVEL - SLOT_LEAF_BITS / FANOUT_BITS;
assert(FANOUT ** LEAF_LEVEL === LEAF_COUNT && FANOUT ** SLOT_LEVEL === SLOT_COUNT, 'tree shape does not cover the leaves');

/** Which of the slots take part in a comparison: 1 = shared by both replicas. */
export type SlotMask = Uint8Array;

/** Sorted disjoint inclusive slot ranges: the wire form of a SlotMask. */
export type SlotRanges = ReadonlyArray<readonly [number, number]>;

/** A mask from ranges; every range must lie within [0, SLOT_COUNT). */
export function maskOf(ranges: SlotRanges): SlotMask {
  const mask = new Uint8Array(SLOT_COUNT);
  for (const [a, b] of ranges) {
    assert(a >= 0 && b < SLOT_COUNT && a <= b, `bad slot range ${a}-${b}`);
    mask.fill(1, a, b + 1);
  }
  return mask;
}

/** The maximal runs of set slots of a mask. */
export function rangesOf(mask: SlotMask): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  for (let s = 0; s <= SLOT_COUNT; s++) {
    const on = s < SLOT_COUNT && mask[s] === 1;
    if (on && start < 0) start = s;
    else if (!on && start >= 0) {
      out.push([start, s - 1]);
      start = -1;
    }
  }
  return out;
}

/** The leaf bucket of a key within its slot (independent of the slot, which hash tags fix). */
export function keyBucket(key: Buffer): number {
  return XXHash64.hash(key).readUInt8(7) & (LEAVES_PER_SLOT - 1);
}

export function leafIndex(slot: number, bucket: number): number {
  return slot * LEAVES_PER_SLOT + bucket;
}

export function slotOfLeaf(leaf: number): number {
  return Math.floor(leaf / LEAVES_PER_SLOT);
}

/** Entries up to this size are hashed in one native call from a copy in a scratch buffer. */
export const ENTRY_HASH_SCRATCH_BYTES = 64 * 1024;
const entryHasher = new XXHash3(Buffer.alloc(8));
const lengthScratch = Buffer.alloc(4);
const entryScratch = Buffer.alloc(ENTRY_HASH_SCRATCH_BYTES);

/**
 * The 64-bit hash of one stored object: xxh3 (seed 0) of u32 keyLength | key | encoded object.
 * This runs on every write (twice: old and new object), so a small entry is copied into a
 * scratch buffer and hashed in one native call; a large one is streamed (same value: xxh3's
 * streaming and one-shot forms agree).
 */
export function entryHash(key: Buffer, bytes: Buffer): bigint {
  const n = 4 + key.length + bytes.length;
  if (n <= ENTRY_HASH_SCRATCH_BYTES) {
    entryScratch.writeUInt32BE(key.length, 0);
    key.copy(entryScratch, 4);
    bytes.copy(entryScratch, 4 + key.length);
    return XXHash3.hash(entryScratch.subarray(0, n)).readBigUInt64BE(0);
  }
  return entryHashStreamed(key, bytes);
}

/** entryHash by the streaming interface (large entries; tests check both forms agree). */
export function entryHashStreamed(key: Buffer, bytes: Buffer): bigint {
  entryHasher.reset();
  lengthScratch.writeUInt32BE(key.length, 0);
  entryHasher.update(lengthScratch);
  entryHasher.update(key);
  entryHasher.update(bytes);
  return entryHasher.digest().readBigUInt64BE(0);
}

/** What a tree is computed from: the XOR of each slot and of each leaf, and slot entry counts. */
export interface LeafHashes {
  slotHash(slot: number): bigint;
  leafHash(leaf: number): bigint;
  slotCount(slot: number): number;
}

/**
 * Per-leaf and per-slot XORs and per-slot entry counts of one node, updated entry by entry.
 * The state is exactly determined by the multiset of (slot, key, bytes) applied: add and remove
 * commute, so any order of updates reaching the same data gives the same hashes.
 */
export class MerkleLeaves implements LeafHashes {
  readonly leaves = new BigUint64Array(LEAF_COUNT);
  readonly slots = new BigUint64Array(SLOT_COUNT);
  /** Signed: a store may remove an entry from a slot it has not scanned yet (merkle_store.ts). */
  readonly counts = new Int32Array(SLOT_COUNT);

  slotHash(slot: number): bigint {
    return this.slots[slot] as bigint;
  }

  leafHash(leaf: number): bigint {
    return this.leaves[leaf] as bigint;
  }

  slotCount(slot: number): number {
    return this.counts[slot] as number;
  }

  /** XORs `hash` into a leaf (adding and removing an entry are the same operation). */
  toggle(slot: number, bucket: number, hash: bigint): void {
    const leaf = leafIndex(slot, bucket);
    this.leaves[leaf] = (this.leaves[leaf] as bigint) ^ hash;
    this.slots[slot] = (this.slots[slot] as bigint) ^ hash;
  }

  add(slot: number, key: Buffer, bytes: Buffer): void {
    this.toggle(slot, keyBucket(key), entryHash(key, bytes));
    this.counts[slot] = (this.counts[slot] as number) + 1;
  }

  /** A write of `key`: removes its old entry (if any) and adds the new one (if any); one bucket hash. */
  replace(slot: number, key: Buffer, before: Buffer | undefined, after: Buffer | undefined): void {
    if (before === undefined && after === undefined) return;
    const bucket = keyBucket(key);
    let h = 0n;
    if (before !== undefined) h ^= entryHash(key, before);
    if (after !== undefined) h ^= entryHash(key, after);
    this.toggle(slot, bucket, h);
    this.counts[slot] = (this.counts[slot] as number) + (after !== undefined ? 1 : 0) - (before !== undefined ? 1 : 0);
  }

  remove(slot: number, key: Buffer, bytes: Buffer): void {
    this.toggle(slot, keyBucket(key), entryHash(key, bytes));
    this.counts[slot] = (this.counts[slot] as number) - 1;
  }

  /** Replaces one slot's state (a rebuild from a range scan). */
  setSlot(slot: number, leaves: BigUint64Array, count: number): void {
    assert(leaves.length === LEAVES_PER_SLOT, 'a slot has LEAVES_PER_SLOT leaves');
    let x = 0n;
    for (let b = 0; b < LEAVES_PER_SLOT; b++) {
      const h = leaves[b] as bigint;
      this.leaves[leafIndex(slot, b)] = h;
      x ^= h;
    }
    this.slots[slot] = x;
    this.counts[slot] = count;
  }

  clear(): void {
    this.leaves.fill(0n);
    this.slots.fill(0n);
    this.counts.fill(0);
  }
}

/** Nodes at `level` (4^level). */
export function levelWidth(level: number): number {
  return FANOUT ** level;
}

/** The hash of tree node (level, index) over the slots of `mask`. */
export function nodeHash(src: LeafHashes, mask: SlotMask, level: number, index: number): bigint {
  assert(level >= 0 && level <= LEAF_LEVEL && index >= 0 && index < levelWidth(level), `no tree node ${level}/${index}`);
  if (level <= SLOT_LEVEL) {
    const span = levelWidth(SLOT_LEVEL - level);
    let x = 0n;
    for (let s = index * span, end = s + span; s < end; s++) if (mask[s] === 1) x ^= src.slotHash(s);
    return x;
  }
  const span = levelWidth(LEAF_LEVEL - level);
  const first = index * span;
  if (mask[slotOfLeaf(first)] !== 1) return 0n;
  let x = 0n;
  for (let l = first, end = first + span; l < end; l++) x ^= src.leafHash(l);
  return x;
}

/** The FANOUT children of each parent, in order: the hashes a descent step compares. */
export function childHashes(src: LeafHashes, mask: SlotMask, parentLevel: number, parents: readonly number[]): bigint[] {
  assert(parentLevel >= 0 && parentLevel < LEAF_LEVEL, `no children below level ${parentLevel}`);
  const out: bigint[] = [];
  for (const p of parents) for (let c = 0; c < FANOUT; c++) out.push(nodeHash(src, mask, parentLevel + 1, p * FANOUT + c));
  return out;
}

/** The children (at parentLevel + 1) whose hashes differ between the two lists of childHashes. */
export function differingChildren(parents: readonly number[], mine: readonly bigint[], theirs: readonly bigint[]): number[] {
  assert(mine.length === parents.length * FANOUT && theirs.length === mine.length, 'child hash lists do not match the parents');
  const out: number[] = [];
  for (let i = 0; i < mine.length; i++) {
    if (mine[i] !== theirs[i]) out.push((parents[Math.floor(i / FANOUT)] as number) * FANOUT + (i % FANOUT));
  }
  return out;
}

/**
 * The leaves where two trees differ over `mask`, found by descending only into differing
 * subtrees (the exchange's algorithm with both trees at hand; used by tests and the bench model).
 */
export function diffTrees(a: LeafHashes, b: LeafHashes, mask: SlotMask): number[] {
  if (nodeHash(a, mask, 0, 0) === nodeHash(b, mask, 0, 0)) return [];
  let frontier = [0];
  for (let level = 0; level < LEAF_LEVEL && frontier.length > 0; level++) {
    frontier = differingChildren(frontier, childHashes(a, mask, level, frontier), childHashes(b, mask, level, frontier));
  }
  return frontier;
}

/**
 * CLUSTER DIGEST's string for one slot: "" when the slot holds nothing, else 16 hex digits of the
 * slot's XOR and 8 of its entry count, so equal strings mean equal stored objects (up to 2^-64).
 */
export function slotDigest(src: LeafHashes, slot: number): string {
  const n = src.slotCount(slot);
  if (n <= 0) return '';
  return src.slotHash(slot).toString(16).padStart(16, '0') + n.toString(16).padStart(8, '0');
}
