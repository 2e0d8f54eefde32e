/**
 * Per-key mutual exclusion for read-modify-write on the keyspace.
 *
 * Contract: `acquire(k)` resolves with a release function once every earlier holder of `k` has
 * released; holders of one key run strictly one after another in arrival order (FIFO), while
 * holders of different keys never wait for each other. `acquireMany` takes several keys in a
 * canonical (sorted, de-duplicated) order so two multi-key writers cannot deadlock.
 *
 * Memory: one map entry per key that currently has a holder or waiter; the entry is removed when
 * the last holder releases, so an idle keyspace costs nothing here.
 */
import assert from 'node:assert';

export type Release = () => void;

/**
 * A held key's waiters in arrival order (the head is the current holder's successor); null
 * while nobody waits, so the uncontended case (every plain SET) allocates no queue.
 */
type Waiters = (() => void)[] | null;

export class KeyLock {
  private readonly held = new Map<string, Waiters>();
  /** Keys whose entry holds a waiter queue (an array, possibly emptied): while 0, release is one delete. */
  private queues = 0;

  /** Number of keys currently held (tests and stats). */
  get heldKeys(): number {
    return this.held.size;
  }

  acquire(key: string): Promise<Release> {
    if (!this.held.has(key)) {
      this.held.set(key, null);
      return Promise.resolve(this.releaser(key));
    }
    return new Promise<Release>((resolve) => {
      const waiters = this.held.get(key);
      const wake = (): void => resolve(this.releaser(key));
      if (waiters === null || waiters === undefined) {
        this.held.set(key, [wake]);
        this.queues++;
      } else {
        waiters.push(wake);
      }
    });
  }

  /**
   * The uncontended fast path: the release function when `key` has no holder (taken now, with
   * no promise and no microtask turn), undefined when someone holds it (then use acquire).
   */
  tryAcquire(key: string): Release | undefined {
    return this.tryTake(key) ? this.releaser(key) : undefined;
  }

  /**
   * tryAcquire without a release function (no closure per call, for the plain SET): true when
   * `key` was free and is now held; the caller must call release(key) exactly once.
   */
  tryTake(key: string): boolean {
    const held = this.held;
    if (this.queues === 0) {
      // No key has waiters, so every entry is null and set() changes no entry's value: one map
      // operation, and the size tells whether the key was free.
      const size = held.size;
      held.set(key, null);
      return held.size !== size;
    }
    if (held.has(key)) return false;
    held.set(key, null);
    return true;
  }

  /** Releases a key taken with tryTake: the next waiter (if any) gets it, else it is free. */
  release(key: string): void {
    if (this.queues === 0) {
      // No key has waiters (every plain SET): one map operation instead of a get and a delete.
      // (if + fail, not assert(held, ...): node's assert takes rest arguments, an array per SET)
      if (!this.held.delete(key)) assert.fail('released a key lock that is not held');
      return;
    }
    const waiters = this.held.get(key);
    assert(waiters !== undefined, 'released a key lock that is not held');
    const next = waiters === null ? undefined : waiters.shift();
    if (next !== undefined) {
      next();
      return;
    }
    if (waiters !== null) this.queues--;
    this.held.delete(key);
  }

  /** Acquires all keys (duplicates allowed) in sorted order; the release frees them all. */
  async acquireMany(keys: readonly string[]): Promise<Release> {
    const unique = [...new Set(keys)].sort();
    const releases: Release[] = [];
    for (const key of unique) releases.push(await this.acquire(key));
    return () => {
      for (let i = releases.length - 1; i >= 0; i--) releases[i]!();
    };
  }

  private releaser(key: string): Release {
    let released = false;
    return () => {
      assert(!released, `key lock released twice`);
      released = true;
      this.release(key);
    };
  }
}
