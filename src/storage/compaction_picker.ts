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
 *    (as many as fit maxInputBytes, at least one). Ln: one table, the first after the level's
 *    compact pointer (round-robin over the key space), plus every table of L(n+1) it overlaps.
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

function keyRange(tables: PickerTable[]): { smallest: Buffer; largest: Buffer } {
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
  let pick = tables[0]!;
  if (pointer) pick = tables.find((t) => Buffer.compare(t.smallestKey, pointer) > 0) ?? tables[0]!;
  return planCompaction(levels, best, [pick], scores[best]!);
}
