/**
 * One node's Merkle leaves (merkle.ts), kept equal to what its storage engine holds: built by
 * range scans of the data namespace and updated incrementally by the keyspace's write hook
 * (write_observer.ts), O(1) hash work per write (a key hash and one entry hash per object, XORs).
 *
 * A slot's leaves are trusted ("clean") only when all of these hold; otherwise ensureClean()
 * rebuilds it from a scan before anything reads its hashes:
 *  - it has been scanned since the store started (every slot starts dirty), and no write to it
 *    failed since (a failed engine write leaves the key's stored state unknown);
 *  - no stored object of it has reached its engine expiry (the engine hides an entry once `now`
 *    reaches its expiresAtMs, so the data changes with no write): nextExpiryMs per slot, the
 *    earliest engine expiry added to it, lowered by writes and reset by each scan.
 *
 * Consistent rebuild while writes go on. A chunk of slots is scanned from an engine snapshot
 * taken when none of its slots has a write in flight (willWrite..didWrite), so the snapshot holds
 * exactly the writes whose didWrite already ran. Writes that finish during the scan are applied
 * to the live leaves as usual; since XOR updates commute, their net effect on a leaf is
 * (leaf now XOR leaf at snapshot), which is added to the scanned value when the scan ends.
 * FLUSHALL (flushed()) empties everything and bumps an epoch; a scan that spans it is dropped.
 * Rebuilds run one at a time.
 */
import assert from 'node:assert';
import { DATA_KEY_PREFIX_BYTES, slotRangeBounds, SLOT_COUNT } from '../server/key_layout.js';
import type { WriteObserver } from '../server/write_observer.js';
import type { KVEngine } from '../storage/types.js';
import { keyBucket, LEAVES_PER_SLOT, leafIndex, MerkleLeaves, xorEntryHash } from './merkle.js';

/** Most slots scanned from one snapshot (a snapshot pins memtables; keep each scan short). */
export const REBUILD_CHUNK_SLOTS_MAX = 256;
/** Tries to find a one-slot chunk with no write in flight before waiting a timer tick instead. */
export const QUIET_SLOT_SPINS_MAX = 64;
/** Wait between tries when a slot stays busy, ms. */
export const QUIET_SLOT_WAIT_MS = 1;

export interface MerkleStoreStats {
  /** Slot rebuilds completed (each one range scan of one slot or a chunk of them). */
  rebuilds: number;
  /** Entries hashed by rebuild scans. */
  rebuildEntries: number;
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class MerkleStore implements WriteObserver {
  readonly leaves = new MerkleLeaves();
  readonly #engine: KVEngine;
  readonly #now: () => number;
  /** Writes issued and not yet settled, per slot. */
  readonly #inflight = new Int32Array(SLOT_COUNT);
  /** 1: must be rebuilt before use. */
  readonly #dirty = new Uint8Array(SLOT_COUNT).fill(1);
  /** Earliest engine expiry of an entry in the slot (Infinity: none known). */
  readonly #nextExpiryMs = new Float64Array(SLOT_COUNT).fill(Infinity);
  /** While a slot is being scanned: earliest expiry written meanwhile; 1 in #scanning. */
  readonly #scanExpiryMs = new Float64Array(SLOT_COUNT).fill(Infinity);
  readonly #scanning = new Uint8Array(SLOT_COUNT);
  #epoch = 0;
  #rebuildChain: Promise<void> = Promise.resolve();
  readonly stats: MerkleStoreStats = { rebuilds: 0, rebuildEntries: 0 };

  constructor(engine: KVEngine, now: () => number) {
    this.#engine = engine;
    this.#now = now;
  }

  // ---- the write hook (Keyspace.setWriteObserver) -----------------------------------------

  willWrite(engineKey: Buffer): void {
    const slot = engineKey.readUInt16BE(1);
    this.#inflight[slot] = (this.#inflight[slot] as number) + 1;
  }

  didWrite(engineKey: Buffer, before: Buffer | undefined, after: Buffer | undefined, afterExpiresAtMs: number, ok: boolean): void {
    const slot = engineKey.readUInt16BE(1);
    const inflight = this.#inflight[slot] as number;
    // if + fail, not assert(cond, msg): node's assert takes rest arguments, an array per write.
    if (inflight <= 0) assert.fail('didWrite without willWrite');
    this.#inflight[slot] = inflight - 1;
    if (!ok) {
      this.#dirty[slot] = 1;
      return;
    }
    this.leaves.replace(slot, engineKey, before, after, DATA_KEY_PREFIX_BYTES);
    if (afterExpiresAtMs > 0) {
      if (afterExpiresAtMs < (this.#nextExpiryMs[slot] as number)) this.#nextExpiryMs[slot] = afterExpiresAtMs;
      if (afterExpiresAtMs < (this.#scanExpiryMs[slot] as number)) this.#scanExpiryMs[slot] = afterExpiresAtMs;
    }
  }

  flushed(): void {
    this.#epoch++;
    this.leaves.clear();
    this.#dirty.fill(0);
    this.#nextExpiryMs.fill(Infinity);
  }

  // ---- rebuilds ------------------------------------------------------------------------------

  /** Whether a slot's hashes can be used as they are at `nowMs`. */
  isClean(slot: number, nowMs: number = this.#now()): boolean {
    return this.#dirty[slot] === 0 && (this.#nextExpiryMs[slot] as number) > nowMs;
  }

  /** Slots not yet clean (for INFO and tests). */
  dirtySlots(nowMs: number = this.#now()): number {
    let n = 0;
    for (let s = 0; s < SLOT_COUNT; s++) if (!this.isClean(s, nowMs)) n++;
    return n;
  }

  /**
   * Rebuilds every slot of `slots` (a SlotMask, or all) that is not clean, so its hashes match
   * the engine when this resolves (later writes keep them matching).
   */
  ensureClean(mask?: Uint8Array): Promise<void> {
    const run = this.#rebuildChain.then(() => this.#rebuildDirty(mask));
    this.#rebuildChain = run.catch(() => undefined);
    return run;
  }

  async #rebuildDirty(mask: Uint8Array | undefined): Promise<void> {
    const now = this.#now();
    let s = 0;
    while (s < SLOT_COUNT) {
      if ((mask !== undefined && mask[s] !== 1) || this.isClean(s, now)) {
        s++;
        continue;
      }
      let e = s;
      while (e + 1 < SLOT_COUNT && e + 1 - s < REBUILD_CHUNK_SLOTS_MAX && (mask === undefined || mask[e + 1] === 1) && !this.isClean(e + 1, now)) e++;
      await this.#rebuildRun(s, e);
      s = e + 1;
    }
  }

  /** Rebuilds slots [first, last], splitting the run while some slot of it has writes in flight. */
  async #rebuildRun(first: number, last: number): Promise<void> {
    for (let spins = 0; ; spins++) {
      if (!this.#busy(first, last)) return this.#scan(first, last);
      if (first < last) {
        const mid = first + Math.floor((last - first) / 2);
        await this.#rebuildRun(first, mid);
        await this.#rebuildRun(mid + 1, last);
        return;
      }
      await (spins < QUIET_SLOT_SPINS_MAX ? immediate() : sleep(QUIET_SLOT_WAIT_MS));
    }
  }

  #busy(first: number, last: number): boolean {
    for (let s = first; s <= last; s++) if (this.#inflight[s] !== 0) return true;
    return false;
  }

  /** Scans [first, last] from a snapshot taken now (no write in flight there: see the header). */
  async #scan(first: number, last: number): Promise<void> {
    const epoch = this.#epoch;
    const width = last - first + 1;
    const snapshot = this.#engine.snapshot();
    const startLeaves = this.leaves.leaves.slice(leafIndex(first, 0), leafIndex(last + 1, 0));
    const startCounts = this.leaves.counts.slice(first, last + 1);
    const scanned = new BigUint64Array(width * LEAVES_PER_SLOT);
    const scannedWords = new Uint32Array(scanned.buffer);
    const counts = new Uint32Array(width);
    const expiries = new Float64Array(width).fill(Infinity);
    for (let s = first; s <= last; s++) {
      this.#scanning[s] = 1;
      this.#scanExpiryMs[s] = Infinity;
      this.#dirty[s] = 0;
    }
    let entries = 0;
    try {
      for await (const e of this.#engine.range({ ...slotRangeBounds(first, last), snapshot })) {
        const i = e.key.readUInt16BE(1) - first;
        const key = e.key.subarray(DATA_KEY_PREFIX_BYTES);
        const l = i * LEAVES_PER_SLOT + keyBucket(key);
        xorEntryHash(key, e.value, scannedWords, l);
        counts[i] = (counts[i] as number) + 1;
        if (e.expiresAtMs > 0 && e.expiresAtMs < (expiries[i] as number)) expiries[i] = e.expiresAtMs;
        entries++;
      }
    } catch (err) {
      for (let s = first; s <= last; s++) this.#dirty[s] = 1;
      throw err;
    } finally {
      snapshot.release();
      for (let s = first; s <= last; s++) this.#scanning[s] = 0;
    }
    if (epoch !== this.#epoch) return; // FLUSHALL ran meanwhile: the store is already exact.
    const slotLeaves = new BigUint64Array(LEAVES_PER_SLOT);
    for (let i = 0; i < width; i++) {
      const slot = first + i;
      for (let b = 0; b < LEAVES_PER_SLOT; b++) {
        const l = i * LEAVES_PER_SLOT + b;
        const during = this.leaves.leafHash(leafIndex(slot, b)) ^ (startLeaves[l] as bigint);
        slotLeaves[b] = (scanned[l] as bigint) ^ during;
      }
      const count = (counts[i] as number) + (this.leaves.slotCount(slot) - (startCounts[i] as number));
      this.leaves.setSlot(slot, slotLeaves, count);
      this.#nextExpiryMs[slot] = Math.min(expiries[i] as number, this.#scanExpiryMs[slot] as number);
    }
    this.stats.rebuilds++;
    this.stats.rebuildEntries += entries;
  }
}
