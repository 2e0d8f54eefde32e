/**
 * The replica merge (mergeObjects) of the usual replica put decided on the bytes, without
 * decoding either side into a VersionedObject: a plain object (one clock entry, one sibling) of
 * a coordinator's actor arriving at a replica that holds nothing for the key, or holds a plain
 * object of the same actor that has not seen the incoming write.
 *
 * Contract: when `plainMergeResult(stored, incoming)` accepts (returns a record), the merge
 *
 *   mergeObjects(decodeObject(stored), decodeObject(incoming), opts)    (EMPTY_OBJECT when absent)
 *
 * is, for every valid `opts`, the incoming object itself, so `incoming` (its canonical encoding)
 * is exactly what the general path stores (Keyspace.mergeObjectsBatch: sameObject, then the bytes
 * as received). It declines (undefined) everything else: no incoming sibling or more than one,
 * other or several actors, a non-ASCII actor, stored bytes the incoming object does not supersede
 * (the same write again, an older one, a stored clock time ahead of the incoming one), and any
 * bytes decodeObject would reject. The caller then takes the general path, which decides as before.
 *
 * Why the result is `incoming`: let it be {A: cI, time tI; sibling (A, sI)} and the stored one
 * {A: cS, time tS; at most one sibling (A, sS <= cS)}, with cS < sI and tS <= tI. The incoming
 * sibling's dot is not covered by the stored clock (sI > cS), so it is kept; the stored sibling's
 * dot is covered by the incoming clock (sS <= cS < sI <= cI) and is not the incoming dot, so it is
 * dropped. The clock is max(cS, cI) = cI, its time max(tS, tI) = tI. One sibling and one clock
 * entry are within every max-siblings, lww and vclock-max-entries, so no option changes anything.
 * Against an absent key the merge with EMPTY_OBJECT keeps everything the incoming object has.
 *
 * object_plain_merge.test.ts checks the contract against the general path with fast-check.
 */
import { parsePlainObject } from './object_plain_write.js';

/** What an accepted merge stores (the incoming object's one sibling) and what it replaces. */
export interface PlainMerge {
  /** The replaced object has a value sibling (not a tombstone; false when absent). */
  beforeValue: boolean;
  /** That value's expiry (0: none); only when beforeValue. */
  beforeExpiresAtMs: number;
  /** The stored sibling is a value (else a tombstone). */
  afterValue: boolean;
  afterWrittenAtMs: number;
  /** 0: no expiry. */
  afterExpiresAtMs: number;
}

/** plainMergeResult's answer (module state: the decision is synchronous; no object per put). */
const result: PlainMerge = { beforeValue: false, beforeExpiresAtMs: 0, afterValue: false, afterWrittenAtMs: 0, afterExpiresAtMs: 0 };

/**
 * See the header. `stored` undefined: the key is absent here. The answer is one shared record,
 * overwritten by the next call: read it at once.
 */
export function plainMergeResult(stored: Buffer | undefined, incoming: Buffer): PlainMerge | undefined {
  const p = parsePlainObject(incoming, undefined, 0, 0);
  if (p === undefined || !p.hasSibling) return undefined;
  const actorStart = p.actorStart;
  const actorLen = p.actorLen;
  const timeMs = p.timeMs;
  const siblingCounter = p.siblingCounter;
  result.afterValue = p.liveValue;
  result.afterWrittenAtMs = p.writtenAtMs;
  result.afterExpiresAtMs = p.expiresAtMs;
  if (stored === undefined) {
    result.beforeValue = false;
    result.beforeExpiresAtMs = 0;
    return result;
  }
  const s = parsePlainObject(stored, incoming, actorStart, actorLen);
  if (s === undefined || s.counter >= siblingCounter || s.timeMs > timeMs) return undefined;
  result.beforeValue = s.liveValue;
  result.beforeExpiresAtMs = s.liveValue ? s.expiresAtMs : 0;
  return result;
}
