/**
 * Lost ranges: what `repair` records when it drops data, so reads never silently fall through
 * to older versions (or to "absent") for keys whose newest versions were in the dropped data.
 *
 * A lost range is [smallestKey, largestKey] (largestKey null: no upper bound) plus maxSeq, the
 * highest sequence number the dropped data may have held. It is kept in the MANIFEST until an
 * operator clears it (Engine.clearLostRanges), so a restart does not forget it.
 *
 * The rule (pure, decided here; the engine applies it):
 *  - A point read of a key inside a lost range is answered only when the version it finds is
 *    NEWER than maxSeq (written after the loss, so newer than anything the dropped data held).
 *    Otherwise the answer (an older value, a tombstone, or nothing) may be stale: ECORRUPT.
 *    Writing the key again heals it for point reads (read repair from a replica does exactly
 *    that).
 *  - A range scan cannot tell a missing key from a lost one, so it fails with ECORRUPT when it
 *    reaches the first lost range inside its bounds (it would otherwise silently skip keys or
 *    return stale ones); scans that stop (limit) or end before it are unaffected.
 *  - Compaction never drops tombstones (even past the grace period) whose key range touches a
 *    lost range: a tombstone that heals a key must keep shadowing the stale versions below it.
 * This is how replicated stores treat a damaged local copy (Cassandra's scrub + repair, a
 * Pebble/CockroachDB replica marked for rebuild): refuse to serve what may be stale, and let
 * the replicas rewrite it; never serve an older version as if it were current.
 */
import { compareBytes } from './bytes.js';

export interface LostRange {
  smallestKey: Buffer;
  /** null: no upper bound (every key from smallestKey on). */
  largestKey: Buffer | null;
  /** Versions with a sequence number <= this may be shadowed by the lost data. */
  maxSeq: number;
}

/** Whether key lies in r. */
export function inLostRange(r: LostRange, key: Uint8Array): boolean {
  return compareBytes(key, r.smallestKey) >= 0 && (r.largestKey === null || compareBytes(key, r.largestKey) <= 0);
}

/**
 * The lost range that makes a point read of key untrustworthy, given the sequence number of the
 * newest version found (undefined: nothing found), or undefined when the read may be answered.
 */
export function lostRangeFor(ranges: readonly LostRange[], key: Uint8Array, foundSeq: number | undefined): LostRange | undefined {
  for (const r of ranges) {
    if (!inLostRange(r, key)) continue;
    if (foundSeq === undefined || foundSeq <= r.maxSeq) return r;
  }
  return undefined;
}

/**
 * The first key position at which a scan of [gte, lt) enters a lost range (the range's start,
 * or gte when the scan starts inside one), or undefined when no lost range overlaps the scan.
 */
export function firstLostKeyInScan(ranges: readonly LostRange[], gte: Buffer | undefined, lt: Buffer | undefined): Buffer | undefined {
  let first: Buffer | undefined;
  for (const r of ranges) {
    if (lt && compareBytes(r.smallestKey, lt) >= 0) continue; // starts at or after the end
    if (gte && r.largestKey !== null && compareBytes(r.largestKey, gte) < 0) continue; // ends before the start
    const start = gte && compareBytes(gte, r.smallestKey) > 0 ? gte : r.smallestKey;
    if (!first || compareBytes(start, first) < 0) first = start;
  }
  return first;
}

/** Whether any lost range overlaps [smallest, largest] (both inclusive). */
export function overlapsLostRange(ranges: readonly LostRange[], smallest: Uint8Array, largest: Uint8Array): boolean {
  return ranges.some((r) => compareBytes(largest, r.smallestKey) >= 0 && (r.largestKey === null || compareBytes(smallest, r.largestKey) <= 0));
}

/** A short description for logs and errors. */
export function describeLostRange(r: LostRange): string {
  const hex = (b: Buffer): string => (b.length > 32 ? `${b.subarray(0, 32).toString('hex')}...` : b.toString('hex'));
  return `[${hex(r.smallestKey)}, ${r.largestKey === null ? 'end' : hex(r.largestKey)}] (versions up to seq ${r.maxSeq})`;
}
