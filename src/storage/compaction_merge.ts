/**
 * The pure core of flush and compaction: merge sorted sources into internal order and decide,
 * per user key, which versions survive. No I/O; runs in the worker thread.
 *
 * Rules, for the versions of one user key, newest first, with the live snapshots S1 < S2 < ...:
 *  1. Snapshots cut the sequence space into stripes: (.., S1], (S1, S2], ..., (Sn, +inf). A
 *     reader at any point of a stripe sees the newest version in that stripe, so exactly that
 *     one is kept per stripe and older versions in the same stripe (shadowed) are dropped.
 *  2. A kept value whose expiry has passed (expiresAt <= now) reads as absent for every
 *     reader, so it is rewritten as a tombstone stamped with its expiry time (the value bytes
 *     go away now; the tombstone keeps shadowing older versions below it).
 *  3. Only when the output is the bottom of the tree for this key range (no table in a deeper
 *     level overlaps it), tombstones that are the OLDEST kept version and older than the grace
 *     period (time + grace <= now) are dropped: nothing below them can be resurrected. A
 *     tombstone with an older kept version under it stays (the snapshot stripe needs it).
 */
import { equalBytes } from './bytes.js';
import { compareInternal, KIND_DELETE, KIND_PUT, type InternalEntry } from './internal_entry.js';
import { ByteReader } from './varint.js';
import { decodeEntry } from './internal_entry.js';

export interface EntrySource {
  current: InternalEntry | undefined;
  /**
   * The checked data block (raw, trailer included) whose only entry is `current`, when the
   * source reads table blocks; a table builder may copy it as is (TableBuilder.add).
   */
  currentBlock?: Buffer | undefined;
  next(): void;
}

export interface GcOptions {
  /** Sequence numbers of live snapshots, ascending. */
  snapshots: number[];
  /** The output is the deepest data for its key range. */
  bottom: boolean;
  nowMs: number;
  graceMs: number;
}

/** Iterates a sorted run of encoded entries (internal_entry.ts encoding, back to back). */
export class RunIterator implements EntrySource {
  private readonly r: ByteReader;
  current: InternalEntry | undefined;
  constructor(buf: Buffer) {
    this.r = new ByteReader(buf);
    this.next();
  }
  next(): void {
    this.current = this.r.remaining > 0 ? decodeEntry(this.r) : undefined;
  }
}

/** Merges sources into internal order (key asc, seq desc). Sources are few: a linear scan. */
export class MergingSource implements EntrySource {
  current: InternalEntry | undefined;
  currentBlock: Buffer | undefined;
  private best: EntrySource | undefined;
  constructor(private readonly sources: EntrySource[]) {
    this.pick();
  }
  private pick(): void {
    let best: EntrySource | undefined;
    for (const s of this.sources) {
      const c = s.current;
      if (!c) continue;
      if (!best || compareInternal(c.key, c.seq, best.current!.key, best.current!.seq) < 0) best = s;
    }
    this.best = best;
    this.current = best?.current;
    this.currentBlock = best?.currentBlock;
  }
  next(): void {
    if (!this.best) return;
    this.best.next();
    this.pick();
  }
}

/** Generator form of MergingSource. */
export function* mergeSources(sources: EntrySource[]): Generator<InternalEntry> {
  for (;;) {
    let best: EntrySource | undefined;
    for (const s of sources) {
      const c = s.current;
      if (!c) continue;
      if (!best || compareInternal(c.key, c.seq, best.current!.key, best.current!.seq) < 0) best = s;
    }
    if (!best) return;
    const e = best.current!;
    best.next();
    yield e;
  }
}

/** Stripe of seq: index of the first snapshot >= seq, or snapshots.length when above all. */
export function stripeOf(snapshots: readonly number[], seq: number): number {
  let lo = 0;
  let hi = snapshots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (snapshots[mid]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Applies the rules above to the versions of ONE user key (newest first); returns survivors. */
export function collectVersions(versions: InternalEntry[], opts: GcOptions): InternalEntry[] {
  const kept: InternalEntry[] = [];
  let lastStripe = -1;
  for (const v of versions) {
    const stripe = stripeOf(opts.snapshots, v.seq);
    if (stripe === lastStripe) continue;
    lastStripe = stripe;
    if (v.kind === KIND_PUT && v.time > 0 && v.time <= opts.nowMs) {
      kept.push({ key: v.key, seq: v.seq, kind: KIND_DELETE, time: v.time, value: EMPTY });
    } else {
      kept.push(v);
    }
  }
  if (opts.bottom) {
    for (;;) {
      const last = kept[kept.length - 1];
      if (!last || last.kind !== KIND_DELETE || last.time + opts.graceMs > opts.nowMs) break;
      kept.pop();
    }
  }
  return kept;
}

const EMPTY = Buffer.alloc(0);

/**
 * Streams the survivors of a merged input, one user key at a time; `onKeyEnd` is called after
 * each user key's survivors (the table builder cuts files only there).
 */
export function* compactStream(merged: Iterable<InternalEntry>, opts: GcOptions): Generator<InternalEntry | null> {
  let group: InternalEntry[] = [];
  for (const e of merged) {
    if (group.length > 0 && !equalBytes(group[0]!.key, e.key)) {
      yield* collectVersions(group, opts);
      yield null; // user-key boundary
      group = [];
    }
    group.push(e);
  }
  if (group.length > 0) {
    yield* collectVersions(group, opts);
    yield null;
  }
}
