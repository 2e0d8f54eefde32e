/**
 * A table-building job: the CPU-heavy part of flush and compaction as a pure function (buffers
 * in, buffers out), so it can run in a worker thread while the main thread keeps serving. All
 * file reads and writes stay on the main thread, through the engine's FileSystem.
 */
import { equalBytes } from './bytes.js';
import { collectVersions, MergingSource, RunIterator, type EntrySource, type GcOptions } from './compaction_merge.js';
import type { InternalEntry } from './internal_entry.js';
import { parseLog } from './log.js';
import { TableBufferIterator, TableBuilder, type TableBuildOptions, type TableMeta } from './table_format.js';

export interface BuildInput {
  /**
   * 'run': entries back to back, sorted (a serialized memtable); 'log': commit-log records
   * (a memtable's writes, in seq order; decoded and sorted here); 'table': a whole table file.
   */
  kind: 'run' | 'log' | 'table';
  bytes: Uint8Array;
}

export interface BuildJob {
  inputs: BuildInput[];
  gc: GcOptions;
  build: TableBuildOptions;
  /** Start a new output table past this many bytes (at a user-key boundary). */
  targetFileBytes: number;
}

export interface BuiltTable {
  bytes: Uint8Array;
  meta: TableMeta;
}

export interface BuildResult {
  tables: BuiltTable[];
  entriesIn: number;
  entriesOut: number;
}

class ArraySource implements EntrySource {
  private i = 0;
  current: InternalEntry | undefined;
  constructor(private readonly entries: InternalEntry[]) {
    this.current = entries[0];
  }
  next(): void {
    this.current = this.entries[++this.i];
  }
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Decodes a memtable's log records and sorts the entries into internal order. Keys are sorted
 * as latin1 strings (one char per byte: string order is bytewise order), which V8 compares
 * natively: measured 3-4x faster than a byte-loop comparator on 30k-entry memtables.
 */
function sortedLogEntries(buf: Buffer): InternalEntry[] {
  const entries = parseLog(buf, 'memtable records', false).batches.flatMap((b) => b.entries);
  const keyed = entries.map((e) => ({ s: e.key.toString('latin1'), e }));
  keyed.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : b.e.seq - a.e.seq));
  return keyed.map((x) => x.e);
}

/** Runs a job. Throws FormatError when an input table is corrupt. */
export function runBuildJob(job: BuildJob): BuildResult {
  const sources: EntrySource[] = job.inputs.map((input) => {
    const buf = asBuffer(input.bytes);
    if (input.kind === 'run') return new RunIterator(buf);
    if (input.kind === 'table') return new TableBufferIterator(buf);
    return new ArraySource(sortedLogEntries(buf));
  });
  const merged: EntrySource = sources.length === 1 ? sources[0]! : new MergingSource(sources);
  const tables: BuiltTable[] = [];
  let builder: TableBuilder | undefined;
  let entriesIn = 0;
  let entriesOut = 0;
  let group: InternalEntry[] = [];
  const emitGroup = (): void => {
    for (const e of collectVersions(group, job.gc)) {
      builder ??= new TableBuilder(job.build);
      builder.add(e);
      entriesOut++;
    }
    group = [];
    // Cut output files only between user keys.
    if (builder && builder.estimatedBytes >= job.targetFileBytes) {
      tables.push(builder.finish());
      builder = undefined;
    }
  };
  for (;;) {
    const e = merged.current;
    if (!e) break;
    merged.next();
    entriesIn++;
    if (group.length > 0 && !equalBytes(group[0]!.key, e.key)) emitGroup();
    group.push(e);
  }
  if (group.length > 0) emitGroup();
  if (builder && builder.entryCount > 0) tables.push(builder.finish());
  return { tables, entriesIn, entriesOut };
}
