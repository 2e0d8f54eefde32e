/**
 * An exact, maintained count of live keys (DBSIZE, INFO keyspace `keys=`) and of live keys with a
 * TTL (`expires=`), without scanning the data set on every call.
 *
 * The keyspace reads every key's object before it writes it, so each write reports the key's
 * liveness just before and just after it, both at the write's time `now`. TTL expiry needs no
 * write, so keys with a TTL are tracked: `expiring` maps each counted key with a TTL to its
 * expiry, and a min-heap orders those expiries; `settle(now)` pops the ones that passed and
 * uncounts them. Heap entries made stale by a later write (new TTL, PERSIST, DEL) are skipped by
 * comparing with `expiring` (lazy deletion) and compacted when they outnumber the live ones.
 *
 * Invariant: a key is counted iff it was live at its last write and its expiry, if any, has not
 * been settled; `expiring` holds exactly the counted keys that have an expiry. It is exact as
 * long as the clock does not go backwards past settled expiries.
 *
 * Memory: one map entry per live key with a TTL. Past `maxTrackedExpiringKeys` the counter gives
 * up being exact (`exact` turns false) and the keyspace falls back to counting by a scan.
 */
export interface Liveness {
  readonly live: boolean;
  /** Absolute expiry in ms of the key as a whole; 0: never. Meaningful only when live. */
  readonly expiresAtMs: number;
}

export const DEAD: Liveness = Object.freeze({ live: false, expiresAtMs: 0 });

/** Default cap on tracked expiring keys (a map entry and a heap entry, about 150 bytes each
 * with a short key: about 40 MB at the cap). */
export const MAX_TRACKED_EXPIRING_KEYS_DEFAULT = 250_000;
/** Heap compaction: rebuild when stale entries exceed live ones by this factor plus slack. */
const HEAP_STALE_FACTOR = 2;
const HEAP_STALE_SLACK = 1024;

export class LiveKeyCounter {
  private count = 0;
  private readonly expiring = new Map<string, number>();
  private heap: { at: number; key: string }[] = [];
  private overflowed = false;

  constructor(private readonly maxTrackedExpiringKeys: number = MAX_TRACKED_EXPIRING_KEYS_DEFAULT) {}

  /** False once more expiring keys existed than the cap allows: the numbers are no longer exact. */
  get exact(): boolean {
    return !this.overflowed;
  }

  /** Records one write of `key`; `before` and `after` are evaluated at `nowMs`. */
  onWrite(key: string, before: Liveness, after: Liveness, nowMs: number): void {
    this.settleKey(key, nowMs);
    if (before.live) this.count--;
    this.expiring.delete(key);
    if (after.live) {
      this.count++;
      if (after.expiresAtMs > 0) this.track(key, after.expiresAtMs);
    }
  }

  /**
   * onWrite for a write whose outcome does not depend on the key's name: the key has no expiry
   * after it and no key with an expiry is tracked (so settleKey and the delete find nothing).
   * Returns false, changing nothing, for any other write (then call onWrite).
   */
  countWithoutName(before: Liveness, after: Liveness): boolean {
    if (this.expiring.size !== 0 || (after.live && after.expiresAtMs > 0)) return false;
    if (before.live) this.count--;
    if (after.live) this.count++;
    return true;
  }

  /** Counts a key found live while loading (no earlier state). */
  onLoad(key: string, liveness: Liveness): void {
    if (!liveness.live) return;
    this.count++;
    if (liveness.expiresAtMs > 0) this.track(key, liveness.expiresAtMs);
  }

  /** Live keys at `nowMs`. */
  keys(nowMs: number): number {
    this.settle(nowMs);
    return this.count;
  }

  /** Live keys with a TTL at `nowMs`. */
  expires(nowMs: number): number {
    this.settle(nowMs);
    return this.expiring.size;
  }

  /** Gives up exactness (the keyspace then counts by scanning). */
  markInexact(): void {
    this.overflowed = true;
  }

  reset(): void {
    this.count = 0;
    this.expiring.clear();
    this.heap = [];
    this.overflowed = false;
  }

  /** Uncounts every tracked key whose expiry is before `nowMs` (a key is live while now <= expiry). */
  settle(nowMs: number): void {
    while (this.heap.length > 0 && this.heap[0]!.at < nowMs) {
      const top = this.pop();
      if (this.expiring.get(top.key) === top.at) {
        this.expiring.delete(top.key);
        this.count--;
      }
    }
  }

  private settleKey(key: string, nowMs: number): void {
    const at = this.expiring.get(key);
    if (at !== undefined && at < nowMs) {
      this.expiring.delete(key);
      this.count--;
    }
  }

  private track(key: string, at: number): void {
    if (this.expiring.size >= this.maxTrackedExpiringKeys) {
      // Keep counting the key, but its expiry can no longer be followed: inexact from here on.
      this.overflowed = true;
      return;
    }
    this.expiring.set(key, at);
    this.push({ at, key });
    if (this.heap.length > HEAP_STALE_FACTOR * this.expiring.size + HEAP_STALE_SLACK) this.rebuildHeap();
  }

  private rebuildHeap(): void {
    this.heap = [...this.expiring].map(([key, at]) => ({ at, key }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private push(item: { at: number; key: string }): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= h[i]!.at) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): { at: number; key: string } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const h = this.heap;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
}
