/**
 * Coalesces the replica puts a coordinator sends to one peer in one event-loop turn into one
 * REPLICA_PUT_BATCH request (replica_codec.ts), answered once with a status per entry.
 *
 * Why: a pipelined client batch of 16 SETs fans out 2 x 16 replica puts; one request each costs a
 * frame, a request id, a pending-map entry and an answer frame on both sides, and on the replica
 * one lock, one engine write and one promise chain per key. Batched, the replica merges the whole
 * batch with one engine write (Keyspace.mergeObjectsBatch via Coordinator.onReplicaPutBatch).
 *
 * When: entries queue per peer; the flush runs from process.nextTick scheduled by the first entry
 * of a turn, i.e. after the current synchronous stretch AND the promise continuations it queued
 * (Node drains the microtask queue before the next tick callback), which is where the put_fsm of
 * every write of one engine commit group fans out. A queue reaching REPLICA_PUT_BATCH_MAX_ENTRIES
 * or REPLICA_PUT_BATCH_MAX_BYTES is flushed at once. A batch of one goes as a plain REPLICA_PUT.
 *
 * Contract kept (coordinator/replica_transport.ts): every put settles at the latest about its own
 * timeoutMs after it was made: a batch's request timeout is the shortest remaining budget in it.
 * A batch that failed as a whole (unreachable, timeout, lost connection) rejects every entry with
 * that error (mapped once by `send`); a per-entry error comes back as that entry's own rejection.
 */
import assert from 'node:assert';
import { settleReplicaPut, type ReplicaPutCallback } from '../coordinator/replica_transport.js';
import type { ReplicaPutEntry } from './replica_codec.js';

/** Most puts one batch carries (far below MAX_WIRE_BATCH_ENTRIES). */
export const REPLICA_PUT_BATCH_MAX_ENTRIES = 512;
/** Most payload bytes queued for one peer before the batch is sent without waiting for the turn to end. */
export const REPLICA_PUT_BATCH_MAX_BYTES = 1024 * 1024;

/**
 * The puts queued for one peer, as parallel arrays (entry i is answered to dones[i]): no object
 * per put beyond its entry, which a write shares between its targets (every SET of a cluster
 * queues one put per other replica).
 */
interface PeerQueue {
  entries: ReplicaPutEntry[];
  dones: ReplicaPutCallback[];
  /** performance.now() deadline of the earliest put queued: the batch's request timeout. */
  deadline: number;
  bytes: number;
}

export interface BatchSender {
  /** Sends one put as a plain REPLICA_PUT (a batch of one); rejects with the mapped error. */
  single(node: string, entry: ReplicaPutEntry, timeoutMs: number): Promise<void>;
  /**
   * Optional: single() telling `done` (settleReplicaPut(done, node, err): once, never
   * synchronously, undefined or the mapped error) instead of a promise: at -P 1 nearly every
   * put is a batch of one, two per write.
   */
  singleNotify?(node: string, entry: ReplicaPutEntry, timeoutMs: number, done: ReplicaPutCallback): void;
  /**
   * Sends a batch; resolves with one result per entry, in order: undefined (merged) or the
   * entry's error. Rejects (mapped error) when the batch as a whole failed.
   */
  batch(node: string, entries: readonly ReplicaPutEntry[], timeoutMs: number): Promise<readonly (Error | undefined)[]>;
}

export class ReplicaPutBatcher {
  /**
   * One queue per peer ever sent to, kept (a flush takes its arrays and leaves it empty): a Map
   * entry added and deleted per peer and turn made the Map rebuild its table every few turns.
   */
  readonly #queues = new Map<string, PeerQueue>();
  #scheduled = false;
  /** Batches sent and entries they carried (for tests and INFO). */
  batchesSent = 0;
  batchedPuts = 0;

  constructor(
    private readonly sender: BatchSender,
    private readonly now: () => number = () => performance.now(),
  ) {}

  put(node: string, entry: ReplicaPutEntry, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.putNotify(node, entry, timeoutMs, (err) => (err === undefined ? resolve() : reject(err))));
  }

  /**
   * put() with a callback: no promise per put (a write fans out to every other replica). `done`
   * is a function or a listener told `replicaPutDone(node, err)` (settleReplicaPut), called once,
   * never synchronously, with undefined (merged there) or the put's error.
   */
  putNotify(node: string, entry: ReplicaPutEntry, timeoutMs: number, done: ReplicaPutCallback): void {
    const deadline = this.now() + timeoutMs;
    let q = this.#queues.get(node);
    if (q === undefined) {
      q = { entries: [], dones: [], deadline, bytes: 0 };
      this.#queues.set(node, q);
    } else if (q.entries.length === 0 || deadline < q.deadline) {
      q.deadline = deadline;
    }
    q.entries.push(entry);
    q.dones.push(done);
    q.bytes += entry.key.length + entry.objectBytes.length;
    if (q.entries.length >= REPLICA_PUT_BATCH_MAX_ENTRIES || q.bytes >= REPLICA_PUT_BATCH_MAX_BYTES) {
      this.#flushPeer(node, q);
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flushAll);
    }
  }

  readonly #flushAll = (): void => {
    this.#scheduled = false;
    for (const [node, q] of this.#queues) this.#flushPeer(node, q);
  };

  #flushPeer(node: string, q: PeerQueue): void {
    const { entries, dones } = q;
    if (entries.length === 0) return;
    // Detach before sending: puts made while this batch is in flight start the next one.
    q.entries = [];
    q.dones = [];
    q.bytes = 0;
    const timeoutMs = Math.max(1, Math.round(q.deadline - this.now()));
    if (entries.length === 1) {
      const done = dones[0]!;
      if (this.sender.singleNotify !== undefined) {
        this.sender.singleNotify(node, entries[0]!, timeoutMs, done);
        return;
      }
      this.sender.single(node, entries[0]!, timeoutMs).then(
        () => settleReplicaPut(done, node, undefined),
        (err: unknown) => settleReplicaPut(done, node, err ?? new Error('replica put failed')),
      );
      return;
    }
    this.batchesSent++;
    this.batchedPuts += entries.length;
    this.sender.batch(node, entries, timeoutMs).then(
      (results) => {
        assert(results.length === dones.length, 'one batch result per entry');
        for (let i = 0; i < dones.length; i++) settleReplicaPut(dones[i]!, node, results[i]);
      },
      (err: unknown) => {
        const e = err ?? new Error('replica put batch failed');
        for (let i = 0; i < dones.length; i++) settleReplicaPut(dones[i]!, node, e);
      },
    );
  }
}
