/**
 * Cuts one compaction into key-range slices so its memory is bounded by a constant instead of
 * by the size of the levels it merges. Pure: index metadata in, user-key boundaries out.
 *
 * Why: a compaction's inputs are read into memory and handed to the table-building worker. An
 * L0 -> L1 compaction takes every L1 table (L0 tables span the whole key space) and, when
 * compaction is behind, L1 can be many times its target, so one job held 100+ MiB in and as
 * much out (measured: RSS 90 -> 374 MiB for one catch-up compaction of a 400 MiB data set).
 * Sliced, each job reads only the blocks of each input whose keys fall in its slice.
 *
 * A slice is (after, upTo]: user keys > after and <= upTo (undefined: unbounded). Boundaries are
 * user keys, so every version of a user key lands in one slice (the merge rules of
 * compaction_merge.ts need all versions of a key together).
 */
import { compareBytes } from './bytes.js';

/** One input table's index, as far as slicing needs it. */
export interface SliceInput {
  /** Block count. */
  count: number;
  /** Block b's last user key. */
  lastKey(b: number): Buffer;
  /** Block b's size on disk. */
  size(b: number): number;
}

export interface Slice {
  after: Buffer | undefined;
  upTo: Buffer | undefined;
}

/**
 * Slices of roughly sliceBytes of input each (at least one slice). Samples each table's block
 * boundaries about every sliceBytes / SAMPLES_PER_SLICE bytes, so the sort is over a few samples
 * per slice, not over every block.
 */
export function planSlices(inputs: SliceInput[], sliceBytes: number): Slice[] {
  const SAMPLES_PER_SLICE = 8;
  const step = Math.max(1, Math.floor(sliceBytes / SAMPLES_PER_SLICE));
  const samples: { key: Buffer; bytes: number }[] = [];
  for (const t of inputs) {
    let acc = 0;
    for (let b = 0; b < t.count; b++) {
      acc += t.size(b);
      if (acc >= step || b === t.count - 1) {
        samples.push({ key: t.lastKey(b), bytes: acc });
        acc = 0;
      }
    }
  }
  samples.sort((a, b) => compareBytes(a.key, b.key));
  const slices: Slice[] = [];
  let after: Buffer | undefined;
  let acc = 0;
  for (let i = 0; i < samples.length - 1; i++) {
    const s = samples[i]!;
    acc += s.bytes;
    // Cut only where the next sample has a larger key (a boundary strictly inside the range).
    if (acc >= sliceBytes && compareBytes(s.key, samples[i + 1]!.key) < 0) {
      slices.push({ after, upTo: s.key });
      after = s.key;
      acc = 0;
    }
  }
  slices.push({ after, upTo: undefined });
  return slices;
}

/** True when user key k lies in the slice. */
export function inSlice(slice: Slice, k: Uint8Array): boolean {
  return (slice.after === undefined || compareBytes(k, slice.after) > 0) && (slice.upTo === undefined || compareBytes(k, slice.upTo) <= 0);
}

/**
 * Moves each inner slice boundary down to the largest of `bounds` (ascending user keys: the
 * last keys of the grandparent tables, BuildJob.cutAfter) that is at or below it and above
 * the previous boundary, when there is one. A slice boundary also ends an output table, so
 * aligned, it ends the table where a grandparent table ends, as the size cuts do. The
 * boundary moves by less than one grandparent table's key span: slices stay about
 * sliceBytes. Boundaries with no bound in reach stay where they are.
 */
export function alignSlices(slices: Slice[], bounds: readonly Uint8Array[]): Slice[] {
  if (bounds.length === 0 || slices.length < 2) return slices;
  const out: Slice[] = [];
  let after: Buffer | undefined;
  for (const s of slices) {
    let upTo = s.upTo;
    if (upTo !== undefined) {
      // Largest bound <= upTo.
      let lo = 0;
      let hi = bounds.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareBytes(bounds[mid]!, upTo) <= 0) lo = mid + 1;
        else hi = mid;
      }
      const b = lo > 0 ? bounds[lo - 1]! : undefined;
      if (b !== undefined && (after === undefined || compareBytes(b, after) > 0)) upTo = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    }
    out.push({ after, upTo });
    after = upTo;
  }
  return out;
}
