/**
 * The requests of one bus connection awaiting a response, by request id: an open-addressing hash
 * table (linear probing, slot = id & mask) over one array that grows and never shrinks, and whose
 * slots are cleared as soon as an entry leaves.
 *
 * Why not a Map: the pending set of a busy connection changes with every request (one id in, one
 * out, sizes swinging between 0 and hundreds), and a Map's backing table is reallocated on growth,
 * on shrink and on compaction of its deleted entries. Each replaced table lives as long as the
 * connection used it, so it was promoted to the old generation, and a dead old-space table still
 * points at the request entries it held: the scavenger treats those pointers as roots, so every
 * entry it reached (the resolve/reject closures, the read or write state machine behind them)
 * was promoted too (heap sampling of objects that survived two scavenges, node 0 under GET -P1:
 * the Map's set/delete were 16% of the promoted bytes, the whole request path most of the rest).
 * Here the array is replaced only when it doubles, and a removed entry's slot holds undefined.
 *
 * Ids are the connection's request ids (consecutive, wrapping at MAX_REQUEST_ID), so id & mask
 * spreads the entries in flight over consecutive slots; the load factor is kept at most 1/2.
 */
import assert from 'node:assert';

/** What the table holds: anything with the request id it is filed under. */
export interface PendingEntry {
  readonly id: number;
}

/** Slots of a new table (a power of two). */
const INITIAL_SLOTS = 64;

export class PendingTable<T extends PendingEntry> {
  #slots: (T | undefined)[] = new Array<T | undefined>(INITIAL_SLOTS).fill(undefined);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(id: number): boolean {
    return this.#find(id) !== -1;
  }

  get(id: number): T | undefined {
    const i = this.#find(id);
    return i === -1 ? undefined : this.#slots[i];
  }

  /** Files `e` under e.id, which must not be in the table. */
  add(e: T): void {
    if ((this.#size + 1) * 2 > this.#slots.length) this.#grow();
    this.#insert(e);
    this.#size++;
  }

  /** Removes and returns the entry filed under `id` (undefined: none). */
  take(id: number): T | undefined {
    const i = this.#find(id);
    if (i === -1) return undefined;
    const e = this.#slots[i];
    this.#removeAt(i);
    return e;
  }

  /** The entries, in no particular order (a copy: the caller may take() while going through it). */
  entries(): T[] {
    const out: T[] = [];
    for (const e of this.#slots) if (e !== undefined) out.push(e);
    return out;
  }

  /** Empties the table (keeping its array). */
  clear(): void {
    this.#slots.fill(undefined);
    this.#size = 0;
  }

  #find(id: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const e = slots[i];
      if (e === undefined) return -1;
      if (e.id === id) return i;
    }
  }

  #insert(e: T): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let i = e.id & mask;
    while (slots[i] !== undefined) {
      if (slots[i]!.id === e.id) assert.fail(`request id ${e.id} is pending already`);
      i = (i + 1) & mask;
    }
    slots[i] = e;
  }

  /** Empties slot i and moves back the entries of its probe run that may no longer be found. */
  #removeAt(i: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    slots[i] = undefined;
    this.#size--;
    // Backward-shift deletion (no tombstones): an entry further in the run whose home slot is not
    // cyclically within (i, j] moves into the hole.
    let hole = i;
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const e = slots[j];
      if (e === undefined) return;
      const home = e.id & mask;
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (inRange) continue;
      slots[hole] = e;
      slots[j] = undefined;
      hole = j;
    }
  }

  #grow(): void {
    const old = this.#slots;
    this.#slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    this.#mask = this.#slots.length - 1;
    for (let i = 0; i < old.length; i++) {
      const e = old[i];
      if (e === undefined) continue;
      old[i] = undefined;
      this.#insert(e);
    }
  }
}
