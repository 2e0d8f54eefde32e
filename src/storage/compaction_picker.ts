/**
 * Which compaction to run next: a pure function of the levels' metadata (LevelDB-style leveled
 * compaction). No I/O, no clock; table-tested in test/storage/compaction_picker.test.ts.
 *
 *  - L0 holds whole flushed memtables; its tables overlap each other. Its score is
 *    tableCount / l0Trigger.
 *  - Ln (n >= 1) holds non-overlapping tables; its score is bytes / maxBytes(n), with
 *    maxBytes(n) = levelBaseBytes * levelRatio^(n-1) (ratio 10: write amplification about
 *    ratio per level, space amplification about 1.1x since 90% of the data is in the last level).
 *  - The level with the highest score >= 1 is compacted into the next one. L0: its oldest tables
 *    (as many as fit maxInputBytes, at least one). Ln: one table plus every table of L(n+1) it
 *    overlaps. Which table (PickerConfig.pick): 'round-robin', the first after the level's
 *    compact pointer (LevelDB); or 'min-overlap', the one whose overlap with L(n+1) is the
 *    smallest relative to its own size (RocksDB's kMinOverlappingRatio): the least rewritten
 *    per byte moved down.
 *  - A table that overlaps nothing in the next level is moved by a manifest edit, not rewritten.
 *  - `bottom`: no deeper level overlaps the key range, so tombstones may be dropped.
 *
 * Why leveled and not size-tiered: see bench/results/storage-eventloop.md (figures) — leveled keeps
 * space amplification near 1.1x and point reads at one table per level, at the price of a higher
 * write amplification; the issue asks that both stay bounded.
 */

export interface PickerTable {
  fileNumber: number;
  size: number;
  smallestKey: Buffer;
  largestKey: Buffer;
  tombstones: number;
}

export interface PickerConfig {
  /** L0 table count that triggers an L0 -> L1 compaction. */
  l0Trigger: number;
  /** Target size of L1 in bytes. */
  levelBaseBytes: number;
  /** Each level is this many times larger than the one above. */
  levelRatio: number;
  /** Upper bound on input bytes taken from L0 in one compaction (bounds memory). */
  maxInputBytes: number;
  /** How the table of an Ln (n >= 1) compaction is chosen (see the header). Default 'round-robin'. */
  pick?: 'round-robin' | 'min-overlap';
}

export interface CompactionPlan {
  level: number;
  outputLevel: number;
  /** Tables taken from `level`. */
  inputs: PickerTable[];
  /** Tables of `outputLevel` overlapping the inputs. */
  overlaps: PickerTable[];
  /** Nothing deeper overlaps the key range. */
  bottom: boolean;
  /** Inputs can be moved to outputLevel without rewriting. */
  trivialMove: boolean;
  score: number;
}

export function levelMaxBytes(level: number, c: PickerConfig): number {
  return c.levelBaseBytes * Math.pow(c.levelRatio, level - 1);
}

function overlaps(t: PickerTable, smallest: Buffer, largest: Buffer): boolean {
  return Buffer.compare(t.largestKey, smallest) >= 0 && Buffer.compare(t.smallestKey, largest) <= 0;
}

/** The key span of a non-empty set of tables: the smallest first key and the largest last key. */
export function keyRange(tables: readonly { readonly smallestKey: Buffer; readonly largestKey: Buffer }[]): { smallest: Buffer; largest: Buffer } {
  let smallest = tables[0]!.smallestKey;
  let largest = tables[0]!.largestKey;
  for (const t of tables) {
    if (Buffer.compare(t.smallestKey, smallest) < 0) smallest = t.smallestKey;
    if (Buffer.compare(t.largestKey, largest) > 0) largest = t.largestKey;
  }
  return { smallest, largest };
}

/** Scores per level (the last level has none: it has nowhere to go). */
export function levelScores(levels: PickerTable[][], c: PickerConfig): number[] {
  const scores: number[] = [];
  for (let level = 0; level < levels.length - 1; level++) {
    const tables = levels[level]!;
    if (level === 0) scores.push(tables.length / c.l0Trigger);
    else scores.push(tables.reduce((s, t) => s + t.size, 0) / levelMaxBytes(level, c));
  }
  return scores;
}

/**
 * Completes a compaction of `inputs` (from `level`) into level+1: finds the overlapping tables
 * there and whether the output is the bottom.
 */
export function planCompaction(levels: PickerTable[][], level: number, inputs: PickerTable[], score: number): CompactionPlan {
  const outputLevel = level + 1;
  const { smallest, largest } = keyRange(inputs);
  const next = levels[outputLevel] ?? [];
  const over = next.filter((t) => overlaps(t, smallest, largest));
  const all = keyRange([...inputs, ...over]);
  let bottom = true;
  for (let l = outputLevel + 1; l < levels.length && bottom; l++) {
    if (levels[l]!.some((t) => overlaps(t, all.smallest, all.largest))) bottom = false;
  }
  const trivialMove = over.length === 0 && inputs.length === 1;
  return { level, outputLevel, inputs, overlaps: over, bottom, trivialMove, score };
}

/**
 * The compaction to run now, or undefined when every level is within its budget.
 * levels[0] is ordered newest first; levels[n >= 1] by smallest key.
 * compactPointers[n]: largest key of the last compaction at level n (round-robin position).
 */
export function pickCompaction(
  levels: PickerTable[][],
  c: PickerConfig,
  compactPointers: readonly (Buffer | undefined)[] = [],
): CompactionPlan | undefined {
  const scores = levelScores(levels, c);
  let best = -1;
  for (let l = 0; l < scores.length; l++) if (scores[l]! >= 1 && (best < 0 || scores[l]! > scores[best]!)) best = l;
  if (best < 0) return undefined;
  const tables = levels[best]!;
  if (best === 0) {
    // Oldest tables first (the end of the newest-first list), within the input budget.
    const inputs: PickerTable[] = [];
    let bytes = 0;
    for (let i = tables.length - 1; i >= 0; i--) {
      const t = tables[i]!;
      if (inputs.length > 0 && bytes + t.size > c.maxInputBytes) break;
      inputs.push(t);
      bytes += t.size;
    }
    return planCompaction(levels, 0, inputs, scores[0]!);
  }
  const pointer = compactPointers[best];
  // Round-robin start: the first table after the pointer (ties of min-overlap go to it too).
  let start = 0;
  if (pointer) {
    start = tables.findIndex((t) => Buffer.compare(t.smallestKey, pointer) > 0);
    if (start < 0) start = 0;
  }
  const pick = c.pick === 'min-overlap' ? tables[minOverlapIndex(tables, levels[best + 1] ?? [], start)]! : tables[start]!;
  return planCompaction(levels, best, [pick], scores[best]!);
}

/**
 * Index of the table of `tables` (sorted, non-overlapping) whose overlap with `next` (the level
 * below, sorted, non-overlapping) is the smallest per byte of the table; ties go to the first
 * at or after `start`, in round-robin order. One merge-like sweep over both levels.
 */
export function minOverlapIndex(tables: readonly PickerTable[], next: readonly PickerTable[], start: number): number {
  const ratios = new Float64Array(tables.length);
  let j = 0;
  for (let i = 0; i < tables.length; i++) {
    const t = tables[i]!;
    while (j < next.length && Buffer.compare(next[j]!.largestKey, t.smallestKey) < 0) j++;
    let bytes = 0;
    for (let k = j; k < next.length && Buffer.compare(next[k]!.smallestKey, t.largestKey) <= 0; k++) bytes += next[k]!.size;
    ratios[i] = bytes / Math.max(1, t.size);
  }
  let best = start;
  for (let n = 1; n < tables.length; n++) {
    const i = (start + n) % tables.length;
    if (ratios[i]! < ratios[best]!) best = i;
  }
  return best;
}
