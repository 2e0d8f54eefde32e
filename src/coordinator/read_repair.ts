/**
 * The read path's pure part: merge the replicas' answers into the object the client gets, and
 * say which replicas should be sent that object (read repair, ARCHITECTURE.md section 3).
 *
 * A replica needs repair when it lacks something the merged object has: its clock does not
 * descend the merged clock, or its set of sibling dots differs (it holds a sibling the merge
 * superseded or truncated, or misses one). A replica that answered notfound needs repair
 * unless the merged object is empty. Replicas that did not answer are not listed: the shell
 * only repairs what it saw (anti-entropy covers the rest).
 */

import { descends } from './dvv.js';
import { EMPTY_OBJECT, mergeObjects, type VersionedObject, type WriteOptions } from './object.js';

export interface Reconciled {
  /** The merge of every answer (EMPTY_OBJECT when all said notfound). */
  readonly merged: VersionedObject;
  /** Replicas to send `merged` to, in the order the answers were given. */
  readonly stale: readonly string[];
}

/** `answers`: replica id -> its object, or null for notfound. */
export function reconcile(answers: ReadonlyMap<string, VersionedObject | null>, opts: WriteOptions): Reconciled {
  return reconcileLists([...answers.keys()], [...answers.values()], opts);
}

/** No replica to repair (the usual read's answer; shared, never written to). */
const NONE_STALE: readonly string[] = Object.freeze([]);

/**
 * reconcile() of the answers as two lists in answer order: `ids[i]` answered `objs[i]` (null:
 * notfound), for i < count.
 */
export function reconcileLists(ids: readonly string[], objs: readonly (VersionedObject | null)[], opts: WriteOptions, count: number = ids.length): Reconciled {
  // The usual read: every replica holds the same version. Then the merge is that version as it
  // is (when merging could not prune or truncate it), and no merge is computed.
  let first: VersionedObject | undefined;
  let allSame = true;
  /** Every answer is the very same object (a read whose remote answers were this node's bytes). */
  let identical = true;
  for (let i = 0; i < count; i++) {
    const obj = objs[i] ?? null;
    if (obj === null) {
      identical = false;
      continue;
    }
    if (first === undefined) first = obj;
    else if (obj !== first) {
      identical = false;
      if (!sameContent(first, obj)) {
        allSame = false;
        break;
      }
    }
  }
  // needsRepair(x, x) is false for any x: no replica of an all-identical read is stale.
  if (first !== undefined && identical && mergeKeepsAsIs(first, opts)) return { merged: first, stale: NONE_STALE };
  let merged = EMPTY_OBJECT;
  if (first !== undefined && allSame && mergeKeepsAsIs(first, opts)) merged = first;
  else for (let i = 0; i < count; i++) {
    const obj = objs[i] ?? null;
    if (obj !== null) merged = mergeObjects(merged, obj, opts);
  }
  const empty = merged.clock.size === 0 && merged.siblings.length === 0;
  const stale: string[] = [];
  for (let i = 0; i < count; i++) {
    const obj = objs[i] ?? null;
    if (obj === null ? !empty : needsRepair(obj, merged)) stale.push(ids[i]!);
  }
  return { merged, stale };
}

/** Merging `obj` with itself returns it unchanged: within max-siblings (1 under lww) and vclock-max-entries. */
function mergeKeepsAsIs(obj: VersionedObject, opts: WriteOptions): boolean {
  const maxSiblings = opts.conflictPolicy === 'lww' ? 1 : opts.maxSiblings;
  return obj.siblings.length <= maxSiblings && obj.clock.size <= opts.vclockMaxEntries;
}

/**
 * The same stored version: equal clocks, clock times and siblings (dot, times, value), siblings
 * compared in order (objects keep them in canonical order; a different order only means the
 * caller merges instead).
 */
export function sameContent(a: VersionedObject, b: VersionedObject): boolean {
  if (a === b) return true;
  if (a.clock.size !== b.clock.size || a.siblings.length !== b.siblings.length) return false;
  for (const [actor, n] of a.clock) {
    if (b.clock.get(actor) !== n) return false;
    if ((a.clockTimesMs?.get(actor) ?? 0) !== (b.clockTimesMs?.get(actor) ?? 0)) return false;
  }
  if ((a.clockTimesMs?.size ?? 0) !== (b.clockTimesMs?.size ?? 0)) return false;
  for (let i = 0; i < a.siblings.length; i++) {
    const x = a.siblings[i]!;
    const y = b.siblings[i]!;
    if (x.dot.actor !== y.dot.actor || x.dot.counter !== y.dot.counter || x.writtenAtMs !== y.writtenAtMs || x.expiresAtMs !== y.expiresAtMs) return false;
    if (x.value === null ? y.value !== null : y.value === null || !x.value.equals(y.value)) return false;
  }
  return true;
}

/** True when `replica` lacks something `merged` has. */
export function needsRepair(replica: VersionedObject, merged: VersionedObject): boolean {
  if (!descends(replica.clock, merged.clock)) return true;
  if (replica.siblings.length !== merged.siblings.length) return true;
  for (const s of merged.siblings) {
    if (!replica.siblings.some((r) => r.dot.counter === s.dot.counter && r.dot.actor === s.dot.actor)) return true;
  }
  return false;
}
