/**
 * A table-building job: the CPU-heavy part of flush and compaction as a pure function (buffers
 * in, buffers out), so it can run in a worker thread while the main thread keeps serving. All
 * file reads and writes stay on the main thread, through the engine's FileSystem.
 */
import { compareBytes, equalBytes } from './bytes.js';
import { collectVersions, MergingSource, RunIterator, type EntrySource, type GcOptions } from './compaction_merge.js';
import type { InternalEntry } from './internal_entry.js';
import { survivorRowsOf, type SurvivorInput } from './memtable.js';
import { SortedLogSource } from './sorted_log.js';
import { BlockSpanIterator, TableBufferIterator, TableBuilder, type TableBuildOptions, type TableMeta } from './table_format.js';
import type { Slice } from './compaction_slices.js';

export interface BuildInput {
  /**
   * 'run': entries back to back, sorted (a serialized memtable); 'rows': a memtable's
   * surviving versions as rows over `bytes` (rowInts, rowFloats: sorted_log.ts EntryRows;
   * sorted here unless already in internal order, as a memtable hands them); 'memtable': a
   * memtable's flushInput, whose survivors are picked here (Memtable.survivorRows) and go on
   * as 'rows'; 'log': commit-log records this process encoded (a memtable's writes, in seq
   * order; decoded without checksum verification, and sorted here: sorted_log.ts); 'table': a
   * whole table file; 'blocks': consecutive data blocks of one table (a compaction slice),
   * block b being blockSizes[b] bytes.
   */
  kind: 'run' | 'rows' | 'memtable' | 'log' | 'table' | 'blocks';
  bytes: Uint8Array;
  blockSizes?: number[];
  rowInts?: Int32Array;
  rowFloats?: Float64Array;
  /**
   * 'rows' only: the buffers the rows point into (EntryRows.bufs), in place of bytes: a
   * memtable's shared memory, read where it is (never transferred, never written).
   */
  rowBufs?: readonly Uint8Array[];
  /** 'memtable' only (bytes empty). */
  memtable?: SurvivorInput;
}

export interface BuildJob {
  inputs: BuildInput[];
  gc: GcOptions;
  build: TableBuildOptions;
  /** Start a new output table past this many bytes (at a user-key boundary). */
  targetFileBytes: number;
  /**
   * Largest keys of the tables of the level below the output level (the grandparents),
   * ascending. An output table of at least half targetFileBytes is also cut where the keys
   * pass one of them, so output tables end where grandparent tables end: a later compaction of
   * one output table then takes whole grandparent tables, not one partly overlapped table at
   * each end (measured with the slices aligned the same way, compaction_slices.ts alignSlices:
   * write amplification of a 200k x 4 KiB random fill 0.90x; storage-perf-notes.md "Session 7").
   */
  cutAfter?: Uint8Array[];
  /** Keep only user keys in this slice (compaction_slices.ts); inputs may hold more. */
  slice?: { after: Uint8Array | undefined; upTo: Uint8Array | undefined };
}

/**
 * A built table as consecutive parts (TableBuilder.finishParts): the file is their
 * concatenation. Each part views an ArrayBuffer of its own table (transferable); the data-block
 * parts are pooled slabs (slab_pool.ts) that go back to the worker once written.
 */
export interface BuiltTable {
  parts: Uint8Array[];
  /** File size: the parts' total length. */
  size: number;
  meta: TableMeta;
}

/** The whole file of a built table as one buffer (a copy; tests and tools). */
export function builtTableBytes(t: BuiltTable): Buffer {
  return Buffer.concat(t.parts, t.size);
}

export interface BuildResult {
  tables: BuiltTable[];
  entriesIn: number;
  entriesOut: number;
  /** Input blocks copied to the output as they were (TableBuilder.add). */
  blocksCopied: number;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A sorted source restricted to the user keys of a slice. */
class SliceSource implements EntrySource {
  current: InternalEntry | undefined;
  currentBlock: Buffer | undefined;
  constructor(
    private readonly inner: EntrySource,
    private readonly slice: Slice,
  ) {
    while (inner.current && slice.after && compareBytes(inner.current.key, slice.after) <= 0) inner.next();
    this.take();
  }
  private take(): void {
    const e = this.inner.current;
    const past = e !== undefined && this.slice.upTo !== undefined && compareBytes(e.key, this.slice.upTo) > 0;
    this.current = past ? undefined : e;
    this.currentBlock = past ? undefined : this.inner.currentBlock;
  }
  next(): void {
    if (!this.current) return;
    this.inner.next();
    this.take();
  }
}

/** Runs a job. Throws FormatError when an input table is corrupt. */
export function runBuildJob(job: BuildJob): BuildResult {
  const slice: Slice | undefined = job.slice && {
    after: job.slice.after && asBuffer(job.slice.after),
    upTo: job.slice.upTo && asBuffer(job.slice.upTo),
  };
  const sources: EntrySource[] = job.inputs.map((input) => {
    const buf = asBuffer(input.bytes);
    let source: EntrySource;
    if (input.kind === 'run') source = new RunIterator(buf);
    else if (input.kind === 'table') source = new TableBufferIterator(buf);
    else if (input.kind === 'blocks') source = new BlockSpanIterator(buf, input.blockSizes ?? []);
    else if (input.kind === 'memtable') source = new SortedLogSource(survivorRowsOf(input.memtable!));
    else if (input.kind === 'rows') source = new SortedLogSource({ bytes: buf, bufs: input.rowBufs, ints: input.rowInts ?? new Int32Array(0), floats: input.rowFloats ?? new Float64Array(0) });
    else source = new SortedLogSource([buf]);
    return slice ? new SliceSource(source, slice) : source;
  });
  const merged: EntrySource = sources.length === 1 ? sources[0]! : new MergingSource(sources);
  const tables: BuiltTable[] = [];
  let builder: TableBuilder | undefined;
  let entriesIn = 0;
  let entriesOut = 0;
  let blocksCopied = 0;
  const bounds = job.cutAfter ?? [];
  let nextBound = 0;
  const alignedCutBytes = job.targetFileBytes / 2;
  let group: InternalEntry[] = [];
  // The raw single-entry block of each version in group, when its source has one.
  let groupBlocks: (Buffer | undefined)[] = [];
  const cut = (b: TableBuilder): void => {
    blocksCopied += b.copiedBlocks;
    tables.push(b.finishParts());
  };
  const emitGroup = (): void => {
    for (const e of collectVersions(group, job.gc)) {
      builder ??= new TableBuilder(job.build);
      // A survivor that is an input version unchanged may keep that version's block.
      builder.add(e, groupBlocks[group.indexOf(e)]);
      entriesOut++;
    }
    group = [];
    groupBlocks = [];
    // Cut output files only between user keys.
    if (builder && builder.estimatedBytes >= job.targetFileBytes) {
      cut(builder);
      builder = undefined;
    }
  };
  for (;;) {
    const e = merged.current;
    if (!e) break;
    const block = merged.currentBlock;
    merged.next();
    entriesIn++;
    if (group.length > 0 && !equalBytes(group[0]!.key, e.key)) emitGroup();
    if (group.length === 0 && nextBound < bounds.length && compareBytes(e.key, bounds[nextBound]!) > 0) {
      // e is the first user key past a grandparent table's end.
      while (nextBound < bounds.length && compareBytes(e.key, bounds[nextBound]!) > 0) nextBound++;
      if (builder && builder.estimatedBytes >= alignedCutBytes) {
        cut(builder);
        builder = undefined;
      }
    }
    group.push(e);
    groupBlocks.push(block);
  }
  if (group.length > 0) emitGroup();
  if (builder && builder.entryCount > 0) cut(builder);
  return { tables, entriesIn, entriesOut, blocksCopied };
}
