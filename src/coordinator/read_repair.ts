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
  let merged = EMPTY_OBJECT;
  for (const obj of answers.values()) if (obj !== null) merged = mergeObjects(merged, obj, opts);
  const empty = merged.clock.size === 0 && merged.siblings.length === 0;
  const stale: string[] = [];
  for (const [id, obj] of answers) {
    if (obj === null ? !empty : needsRepair(obj, merged)) stale.push(id);
  }
  return { merged, stale };
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
