/**
 * A hook on the keyspace's data writes (Keyspace.setWriteObserver), for state derived from the
 * stored objects that must follow every write without a rescan: anti-entropy's Merkle leaves
 * (src/cluster/merkle_store.ts).
 *
 * Contract, per data write of one engine key (under that key's lock, so calls for one key never
 * interleave):
 *   willWrite(engineKey)                  synchronously, just before the engine write is issued
 *   didWrite(engineKey, before, after, ok) once the engine write settled (ok false: it failed,
 *                                          and the stored state of the key is unknown)
 * `before` is the stored encoding the write replaced (undefined: none), `after` what it stored
 * (undefined: the key was removed from the engine, Keyspace.dropStored) and its engine expiry
 * (ms, 0 none). FLUSHALL removes everything: flushed() after it is done.
 * Callbacks must be cheap and must not throw (they run on the write path).
 */
export interface WriteObserver {
  willWrite(engineKey: Buffer): void;
  didWrite(engineKey: Buffer, before: Buffer | undefined, after: Buffer | undefined, afterExpiresAtMs: number, ok: boolean): void;
  flushed(): void;
}
