/**
 * The replica side's merge queue: the replica puts a node receives (REPLICA_PUT_BATCH entries
 * and lone REPLICA_PUTs, from every peer) are merged in rounds, one round at a time. A round is
 * what was queued when the previous round settled, each key at most once, merged with one call
 * of `merge` (Coordinator.onReplicaPutBatch: one engine write).
 *
 *   batches arrive ─▶ queue ─▶ round r (distinct keys) ─▶ merge ─▶ settled ─▶ round r + 1 ...
 *                                 └─ a key already in round r ─▶ carried to round r + 1
 *
 * Why: Keyspace.mergeObjectsBatch merges a batch on its bytes only when it can take every key's
 * lock at once and no key is given twice; otherwise the WHOLE batch is merged the general way
 * (decode, merge and encode per entry, a lock promise per key). Merged as they arrived, 13-23%
 * of a replica's batches at SET -P 16 fell back so: a batch came while the previous batch's
 * engine write still held one of its keys (a coordinator sends a hot key in consecutive
 * batches), or held a key twice. A round starts only when the previous one settled, so no key
 * of it is held by an earlier round, and it gives no key twice.
 *
 * Order: merges commute (version vectors), so a key carried to a later round ends stored as it
 * would have. Latency: the engine commits one group at a time anyway (engine.ts writerLoop), so
 * a round waiting for the previous one waits about as long as its write would have queued.
 * A round starts on the microtask after the put that finds none running, so the batches of one
 * socket read (handled in one synchronous stretch) are one round.
 *
 * Results: each put resolves with one result per item, in order: undefined (merged, durable) or
 * that item's error; a merge that rejects fails every item of its round.
 */
import type { ReplicaPutItem } from '../coordinator/coordinator.js';
import { hashKey } from '../storage/memtable.js';

/** Most items one round merges (one engine write; Keyspace WRITE_BATCH_BYTES_MAX is per merge too). */
export const REPLICA_ROUND_ITEMS_MAX = 2048;
/** Most key + object bytes one round merges (the first put of a round is taken whole, whatever its size). */
export const REPLICA_ROUND_BYTES_MAX = 4 * 1024 * 1024;

/** Merges items (one result per item, in order: undefined or the item's error). */
export type ReplicaMerge = (items: readonly ReplicaPutItem[]) => Promise<readonly unknown[]>;

/** The item bytes a round counts against REPLICA_ROUND_BYTES_MAX. */
type Sized = ReplicaPutItem & { readonly encoded?: Buffer };

/** One queued put (a batch or a lone put): its items, their results, how many are not settled. */
class QueuedPut {
  readonly results: unknown[];
  left: number;
  constructor(
    readonly items: readonly ReplicaPutItem[],
    readonly resolve: (results: readonly unknown[]) => void,
  ) {
    this.results = new Array<unknown>(items.length);
    this.left = items.length;
  }
}

/** Items of puts, as parallel arrays (item j is item at[j] of puts[j]). */
interface ItemList {
  puts: QueuedPut[];
  at: number[];
}

const emptyList = (): ItemList => ({ puts: [], at: [] });

/** Slots of a new RoundKeys table (a power of two; twice REPLICA_ROUND_ITEMS_MAX keeps it at most half full). */
const ROUND_KEYS_SLOTS_INITIAL = 4096;

/**
 * The key hashes of the round being built: an open-addressing table (linear probing) whose slots
 * are stamped with the round they were filled in, so a new round starts with one increment, no
 * clearing and no allocation (a Set per round grew its table several times for a round of a few
 * hundred items: every replica put went through it). Grows past half full (a round takes its
 * first put whole, however many items it has).
 */
class RoundKeys {
  #hashes = new Int32Array(ROUND_KEYS_SLOTS_INITIAL);
  #stamps = new Int32Array(ROUND_KEYS_SLOTS_INITIAL);
  #round = 0;
  #count = 0;

  /** Forgets every hash (a new round). */
  reset(): void {
    this.#count = 0;
    if (this.#round === 0x7fffffff) {
      // Stamps of 2^31 rounds ago would look current: start the stamps over.
      this.#stamps.fill(0);
      this.#round = 0;
    }
    this.#round++;
  }

  /** Adds the int32 `hash`; false when the round has it already. */
  add(hash: number): boolean {
    const h = hash | 0;
    if ((this.#count + 1) * 2 > this.#hashes.length) this.#grow();
    const hashes = this.#hashes;
    const stamps = this.#stamps;
    const round = this.#round;
    const mask = hashes.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      if (stamps[i] !== round) {
        stamps[i] = round;
        hashes[i] = h;
        this.#count++;
        return true;
      }
      if (hashes[i] === h) return false;
    }
  }

  #grow(): void {
    const oldHashes = this.#hashes;
    const oldStamps = this.#stamps;
    const round = this.#round;
    this.#hashes = new Int32Array(oldHashes.length * 2);
    this.#stamps = new Int32Array(oldHashes.length * 2);
    this.#count = 0;
    for (let i = 0; i < oldHashes.length; i++) if (oldStamps[i] === round) this.add(oldHashes[i]!);
  }
}

export class ReplicaPutRounds {
  readonly #merge: ReplicaMerge;
  /** Puts not yet taken by a round, in arrival order. */
  #queue: QueuedPut[] = [];
  /** Items a round left for the next one (their key was in it already). */
  #carried: ItemList = emptyList();
  /** A round is running or about to start. */
  #busy = false;
  /** Rounds merged, and items carried to a later round (for tests). */
  readonly stats = { rounds: 0, carried: 0 };
  /** Keys of the round being built, by hash: a colliding hash of another key only carries an item one round. */
  readonly #keys = new RoundKeys();

  constructor(merge: ReplicaMerge) {
    this.#merge = merge;
  }

  /** Queues one put's items; resolves with their results (see the header). */
  put(items: readonly ReplicaPutItem[]): Promise<readonly unknown[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.#queue.push(new QueuedPut(items, resolve));
      if (this.#busy) return;
      this.#busy = true;
      queueMicrotask(() => this.#startRound());
    });
  }

  #startRound(): void {
    const round = emptyList();
    const items: ReplicaPutItem[] = [];
    const carried = this.#carried;
    this.#carried = emptyList();
    this.#keys.reset();
    for (let j = 0; j < carried.puts.length; j++) this.#take(round, items, carried.puts[j] as QueuedPut, carried.at[j] as number);
    let bytes = 0;
    let n = 0;
    for (; n < this.#queue.length; n++) {
      const put = this.#queue[n] as QueuedPut;
      let size = 0;
      for (const item of put.items as readonly Sized[]) size += item.key.length + (item.encoded?.length ?? 0);
      if (items.length > 0 && (items.length + put.items.length > REPLICA_ROUND_ITEMS_MAX || bytes + size > REPLICA_ROUND_BYTES_MAX)) break;
      bytes += size;
      for (let i = 0; i < put.items.length; i++) this.#take(round, items, put, i);
    }
    this.#queue = n === this.#queue.length ? [] : this.#queue.slice(n);
    this.stats.rounds++;
    let merged: Promise<readonly unknown[]>;
    try {
      merged = this.#merge(items);
    } catch (err) {
      merged = Promise.reject(err);
    }
    merged.then(
      (results) => this.#settle(round, (j) => results[j]),
      (err: unknown) => this.#settle(round, () => err),
    );
  }

  /** Item i of `put` joins the round being built, or the next one when its key is in it already. */
  #take(round: ItemList, items: ReplicaPutItem[], put: QueuedPut, i: number): void {
    const item = put.items[i] as ReplicaPutItem;
    if (!this.#keys.add(hashKey(item.key, 0, item.key.length))) {
      this.#carried.puts.push(put);
      this.#carried.at.push(i);
      this.stats.carried++;
      return;
    }
    round.puts.push(put);
    round.at.push(i);
    items.push(item);
  }

  #settle(round: ItemList, resultOf: (j: number) => unknown): void {
    for (let j = 0; j < round.puts.length; j++) {
      const put = round.puts[j] as QueuedPut;
      put.results[round.at[j] as number] = resultOf(j);
      if (--put.left === 0) put.resolve(put.results);
    }
    if (this.#queue.length > 0 || this.#carried.puts.length > 0) this.#startRound();
    else this.#busy = false;
  }
}
