/**
 * Whether a merge left an object as it came (pure): `b` has `a`'s siblings (the same Sibling
 * references, in the same order, which is what mergeObjects returns for the siblings it keeps)
 * and equal clock and clock times. True means any encoding that decodes to `a` is also an
 * encoding of `b`, so a receiver may store bytes it was sent instead of encoding `b` again
 * (Keyspace.mergeObjectsBatch, slot streaming). False only costs that encoding.
 */
import type { VersionedObject } from './object.js';

export function sameObject(a: VersionedObject, b: VersionedObject): boolean {
  if (a === b) return true;
  if (a.siblings.length !== b.siblings.length || a.clock.size !== b.clock.size) return false;
  for (let i = 0; i < a.siblings.length; i++) if (a.siblings[i] !== b.siblings[i]) return false;
  for (const [actor, n] of a.clock) if (b.clock.get(actor) !== n) return false;
  const at = a.clockTimesMs;
  const bt = b.clockTimesMs;
  if ((at?.size ?? 0) !== (bt?.size ?? 0)) return false;
  if (at !== undefined) for (const [actor, ms] of at) if (bt?.get(actor) !== ms) return false;
  return true;
}
