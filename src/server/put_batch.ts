/**
 * The plain puts of one synchronous stretch (Keyspace.writeValue and its fast paths), written to
 * the engine as ONE write, and how their callers learn that the write settled.
 *
 * A batch settles once: `settle(err)` after the engine write did and every put was settled
 * (observer told, counted, lock released; Keyspace#settleWhen). Two ways to wait for it:
 *   - `settled`, a promise, made when first asked for (writeValue, writeStored: callers that
 *     await);
 *   - `listen(listener)`: the listener's writeSettled(err) is called synchronously inside
 *     settle, in the order the listeners came, with no promise, closure or microtask turn (the
 *     plain SET on a lone node: strings.ts, one listener per batch for all its SETs).
 * A batch nobody asked `settled` of makes no promise at all (every batch of plain SETs over RESP).
 * Asked after it settled, `settled` is a promise already settled the same way; a listener added
 * after it settled is called at once.
 */
import type { Liveness } from './live_count.js';

/** Told once when a batch's engine write settled: `err` undefined when it is stored (see PutBatch). */
export interface WriteListener {
  writeSettled(err: unknown): void;
}

/** What PutBatch.settle does with a listener's throw (listeners answer errors themselves: a throw is a bug). */
export type ListenerErrorFn = (err: unknown) => void;

const SETTLED: Promise<void> = Promise.resolve();

/**
 * One plain put waiting in a batch: the engine's put op and what settling it takes (observer,
 * counter, lock). One object per put; it is also writeStored's StoredWrite.
 */
export class QueuedPut {
  /** The put as the engine's batch op (the batch hands its puts to KVEngine.write as they are). */
  readonly type = 'put' as const;

  constructor(
    /** The engine key. */
    readonly key: Buffer,
    /** The stored bytes. */
    readonly value: Buffer,
    readonly expiresAtMs: number,
    /** The key's lock name (latin1 of the user key), held until the put settles. */
    readonly lockName: string,
    readonly replaced: Buffer | undefined,
    readonly before: Liveness,
    readonly after: Liveness,
    readonly nowMs: number,
    /** The batch this put joined. */
    readonly batch: PutBatch,
  ) {}

  /** The stored bytes again (value): StoredWrite.bytes. */
  get bytes(): Buffer {
    return this.value;
  }

  /** The promise of the batch this put joined (StoredWrite.settled). */
  get settled(): Promise<void> {
    return this.batch.settled;
  }
}

export class PutBatch {
  /** Its puts, in order: also the engine batch (each QueuedPut is a put BatchOp). */
  readonly puts: QueuedPut[] = [];
  /** Key + value bytes of its puts. */
  bytes = 0;
  #done = false;
  #error: unknown = undefined;
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  /** The first listener, and any later ones (one per batch is the usual case: no array). */
  #listener: WriteListener | undefined;
  #moreListeners: WriteListener[] | undefined;

  add(put: QueuedPut, bytes: number): void {
    this.puts.push(put);
    this.bytes += bytes;
  }

  /** Resolves once the batch is stored; rejects with settle's error. Made on the first call. */
  get settled(): Promise<void> {
    if (this.#promise === undefined) {
      if (this.#done) {
        this.#promise = this.#error === undefined ? SETTLED : Promise.reject(this.#error);
      } else {
        this.#promise = new Promise<void>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

  /** `listener.writeSettled` once the batch settled: inside settle, or now when it did already. */
  listen(listener: WriteListener): void {
    if (this.#done) {
      listener.writeSettled(this.#error);
      return;
    }
    if (this.#listener === undefined) this.#listener = listener;
    else (this.#moreListeners ??= []).push(listener);
  }

  /**
   * Settles the batch (once): its promise, if made, then each listener in order. A listener's
   * throw goes to `onListenerError` and the others are still called.
   */
  settle(err: unknown, onListenerError: ListenerErrorFn): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = err;
    if (err === undefined) this.#resolve?.();
    else this.#reject?.(err);
    const first = this.#listener;
    if (first === undefined) return;
    this.#listener = undefined;
    callListener(first, err, onListenerError);
    const more = this.#moreListeners;
    if (more === undefined) return;
    this.#moreListeners = undefined;
    for (const l of more) callListener(l, err, onListenerError);
  }
}

function callListener(listener: WriteListener, err: unknown, onListenerError: ListenerErrorFn): void {
  try {
    listener.writeSettled(err);
  } catch (e) {
    onListenerError(e);
  }
}
