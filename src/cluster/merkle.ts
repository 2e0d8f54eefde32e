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
 * Hashes. entryHash(key, bytes) is a 64-bit hash (see hashEntry) of the key and the object's canonical encoding
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
import * as os from 'node:os';
import { SLOT_COUNT } from '../server/key_layout.js';

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

/**
 * The hash behind leaves and entries: two 32-bit MurmurHash3 lanes (x86_32's body; the second
 * lane with the constants of x86_128's second pair and its own seed) over 4-byte little-endian
 * words, a zero-padded tail word per segment, mixed together at the end as x86_128 does. Written
 * in JavaScript because it runs on every write of every replica (twice: old and new object), and
 * a call into the native xxhash addon cost about 2 us each (keyBucket 2.2 us, entryHash 1.6 us
 * for a 150-byte object measured in process), more than the rest of the Merkle hook; this one
 * allocates nothing and returns its 64 bits as two u32 (hashLo, hashHi) instead of a BigInt.
 * Not collision resistant (neither was XOR over xxh3): anti-entropy needs accidental differences
 * found, not an adversary stopped. Every node of a cluster must run the same function: nodes
 * that disagree would see every leaf differ (repair would still converge, slowly).
 */
const LANE_A_SEED = 0x9747b28c;
const LANE_B_SEED = 0x5bd1e995;
const A_C1 = 0xcc9e2d51;
const A_C2 = 0x1b873593;
const B_C1 = 0x38b34ae5;
const B_C2 = 0xa1e38b93;
/** The lanes between segments of one hash (module state: a hash is synchronous). */
let laneA = 0;
let laneB = 0;
/**
 * The last hash's low and high 32 bits (valid until the next hash call), as int32: the same bits
 * as the u32 halves, kept signed because a module variable holding a number over 2^31 - 1 is a
 * heap number, one allocated per store (up to six per write). Readers that need the u32 take >>> 0.
 */
let hashLo = 0;
let hashHi = 0;

/**
 * Whole buffers of this many bytes are hashed from an aligned copy read a word at a time (one
 * Int32Array load instead of four byte loads and three shifts per word: 190 -> 140 ns for 150
 * bytes); a key (shorter) or a segment of a buffer is read byte by byte. Little-endian hosts
 * only: the words must be the little-endian ones the byte loop builds.
 */
const WORD_COPY_BYTES_MIN = 32;
const WORD_COPY_BYTES_MAX = 4096;
const WORD_COPY = os.endianness() === 'LE';
const wordCopyBuffer = new ArrayBuffer(WORD_COPY_BYTES_MAX);
const wordCopyBytes = new Uint8Array(wordCopyBuffer);
const wordCopyWords = new Int32Array(wordCopyBuffer);

/**
 * Mixes the bytes of one segment into laneA / laneB; its tail (1-3 bytes) as one zero-padded
 * word. The lanes are locals inside the loop (module variables cost a load and a store per
 * word, and this loop is most of every write's Merkle cost).
 */
function mixBytes(buf: Uint8Array, start = 0, end = buf.length): void {
  let a = laneA;
  let b = laneB;
  const len = end - start;
  const blocks = start + (len & ~3);
  if (WORD_COPY && start === 0 && end === buf.length && len >= WORD_COPY_BYTES_MIN && len <= WORD_COPY_BYTES_MAX) {
    wordCopyBytes.set(buf);
    const words = wordCopyWords;
    for (let w = 0, n = len >>> 2; w < n; w++) {
      const k = words[w]!;
      let x = Math.imul(k, A_C1);
      x = Math.imul((x << 15) | (x >>> 17), A_C2);
      a ^= x;
      a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
      let y = Math.imul(k, B_C1);
      y = Math.imul((y << 17) | (y >>> 15), B_C2);
      b ^= y;
      b = (Math.imul((b << 15) | (b >>> 17), 5) + 0x0bcaa747) | 0;
    }
  } else {
    for (let i = start; i < blocks; i += 4) {
      const k = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
      let x = Math.imul(k, A_C1);
      x = Math.imul((x << 15) | (x >>> 17), A_C2);
      a ^= x;
      a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
      let y = Math.imul(k, B_C1);
      y = Math.imul((y << 17) | (y >>> 15), B_C2);
      b ^= y;
      b = (Math.imul((b << 15) | (b >>> 17), 5) + 0x0bcaa747) | 0;
    }
  }
  laneA = a;
  laneB = b;
  const tail = len & 3;
  if (tail === 0) return;
  let k = buf[blocks]!;
  if (tail >= 2) k |= buf[blocks + 1]! << 8;
  if (tail === 3) k |= buf[blocks + 2]! << 16;
  mixWord(k);
}

/** Mixes one word (mixBytes' step). */
function mixWord(k: number): void {
  let x = Math.imul(k, A_C1);
  x = Math.imul((x << 15) | (x >>> 17), A_C2);
  const a = laneA ^ x;
  laneA = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
  let y = Math.imul(k, B_C1);
  y = Math.imul((y << 17) | (y >>> 15), B_C2);
  const b = laneB ^ y;
  laneB = (Math.imul((b << 15) | (b >>> 17), 5) + 0x0bcaa747) | 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Ends a hash: mixes in `len` and sets hashLo / hashHi. */
function finishHash(len: number): void {
  let a = laneA ^ len;
  let b = laneB ^ len;
  a = (a + b) | 0;
  b = (b + a) | 0;
  a = fmix32(a);
  b = fmix32(b);
  a = (a + b) | 0;
  b = (b + a) | 0;
  hashLo = a;
  hashHi = b;
}

/** The lanes after an entry hash's key part (u32 keyLength | key), for hashing several objects of one key. */
let keyLaneA = 0;
let keyLaneB = 0;

/** Hashes an entry's key part (the key: key[start, end)) and keeps its lanes in keyLaneA / keyLaneB (see hashObject). */
function hashKeyPart(key: Uint8Array, start = 0, end = key.length): void {
  laneA = LANE_A_SEED;
  laneB = LANE_B_SEED;
  mixWord(end - start);
  mixBytes(key, start, end);
  keyLaneA = laneA;
  keyLaneB = laneB;
}

/** Sets hashLo / hashHi to the entry hash of the key last given to hashKeyPart and `bytes`. */
function hashObject(bytes: Uint8Array): void {
  laneA = keyLaneA;
  laneB = keyLaneB;
  mixBytes(bytes);
  finishHash(bytes.length);
}

/** Sets hashLo / hashHi to the 64-bit hash of u32 keyLength | key | bytes (segments padded apart). */
function hashEntry(key: Uint8Array, bytes: Uint8Array): void {
  hashKeyPart(key);
  hashObject(bytes);
}

/** The leaf bucket of a key within its slot (independent of the slot, which hash tags fix). */
export function keyBucket(key: Buffer): number {
  return keyBucketOfRange(key, 0, key.length);
}

/** keyBucket of the key buf[start, end) (no view made). */
function keyBucketOfRange(buf: Uint8Array, start: number, end: number): number {
  laneA = LANE_A_SEED;
  laneB = LANE_B_SEED;
  mixBytes(buf, start, end);
  finishHash(end - start);
  return hashHi & (LEAVES_PER_SLOT - 1);
}

export function leafIndex(slot: number, bucket: number): number {
  return slot * LEAVES_PER_SLOT + bucket;
}

export function slotOfLeaf(leaf: number): number {
  return Math.floor(leaf / LEAVES_PER_SLOT);
}

/** The 64-bit hash of one stored object (its key and its canonical encoding, object_codec.ts). */
export function entryHash(key: Buffer, bytes: Buffer): bigint {
  hashEntry(key, bytes);
  return (BigInt(hashHi >>> 0) << 32n) | BigInt(hashLo >>> 0);
}

/** Where the low and high halves of a BigUint64Array cell sit in its Uint32Array view. */
const WORD_LO = os.endianness() === 'LE' ? 0 : 1;
const WORD_HI = 1 - WORD_LO;

/** XORs the last hash into cell `cell` of a BigUint64Array seen as u32 words (no BigInt made). */
function xorLastHash(words: Uint32Array, cell: number): void {
  xorHash(words, cell, hashLo, hashHi);
}

/** XORs the 64-bit value (hi, lo) into cell `cell` of a BigUint64Array seen as u32 words. */
function xorHash(words: Uint32Array, cell: number, lo: number, hi: number): void {
  const l = 2 * cell + WORD_LO;
  const h = 2 * cell + WORD_HI;
  words[l] = (words[l] as number) ^ lo;
  words[h] = (words[h] as number) ^ hi;
}

/** XORs an entry's hash into cell `cell` of `words` = new Uint32Array(aBigUint64Array.buffer). */
export function xorEntryHash(key: Buffer, bytes: Buffer, words: Uint32Array, cell: number): void {
  hashEntry(key, bytes);
  xorLastHash(words, cell);
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
  /** The same cells as u32 words, for the write path's XORs (BigInt arithmetic allocates). */
  readonly #leafWords = new Uint32Array(this.leaves.buffer);
  readonly #slotWords = new Uint32Array(this.slots.buffer);

  slotHash(slot: number): bigint {
    return this.slots[slot] as bigint;
  }

  leafHash(leaf: number): bigint {
    return this.leaves[leaf] as bigint;
  }

  slotCount(slot: number): number {
    return this.counts[slot] as number;
  }

  /** Adds or removes (the same XOR: the tree is order-free) one entry of a slot, its leaf already known. */
  #toggleEntry(slot: number, leaf: number, key: Buffer, bytes: Buffer): void {
    xorEntryHash(key, bytes, this.#leafWords, leaf);
    xorLastHash(this.#slotWords, slot);
  }

  add(slot: number, key: Buffer, bytes: Buffer): void {
    this.#toggleEntry(slot, leafIndex(slot, keyBucket(key)), key, bytes);
    this.counts[slot] = (this.counts[slot] as number) + 1;
  }

  /**
   * A write of `key`: removes its old entry (if any) and adds the new one (if any); one bucket
   * hash, and the key part of the two entry hashes mixed once. The key is key[keyStart, end)
   * (an engine key without its prefix: merkle_store.ts, no view made per write).
   */
  replace(slot: number, key: Buffer, before: Buffer | undefined, after: Buffer | undefined, keyStart = 0): void {
    if (before === undefined && after === undefined) return;
    const leaf = leafIndex(slot, keyBucketOfRange(key, keyStart, key.length));
    hashKeyPart(key, keyStart, key.length);
    // Both entry hashes XORed together first, then into the leaf and the slot once each.
    let lo = 0;
    let hi = 0;
    if (before !== undefined) {
      hashObject(before);
      lo = hashLo;
      hi = hashHi;
    }
    if (after !== undefined) {
      hashObject(after);
      lo ^= hashLo;
      hi ^= hashHi;
    }
    xorHash(this.#leafWords, leaf, lo, hi);
    xorHash(this.#slotWords, slot, lo, hi);
    this.counts[slot] = (this.counts[slot] as number) + (after !== undefined ? 1 : 0) - (before !== undefined ? 1 : 0);
  }

  remove(slot: number, key: Buffer, bytes: Buffer): void {
    this.#toggleEntry(slot, leafIndex(slot, keyBucket(key)), key, bytes);
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
