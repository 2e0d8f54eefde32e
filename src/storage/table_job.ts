/**
 * A table-building job: the CPU-heavy part of flush and compaction as a pure function (buffers
 * in, buffers out), so it can run in a worker thread while the main thread keeps serving. All
 * file reads and writes stay on the main thread, through the engine's FileSystem.
 */
import { compactStream, mergeSources, RunIterator, type EntrySource, type GcOptions } from './compaction_merge.js';
import { TableBufferIterator, TableBuilder, type TableBuildOptions, type TableMeta } from './table_format.js';

export interface BuildInput {
  /** 'run': entries back to back (a serialized memtable); 'table': a whole table file. */
  kind: 'run' | 'table';
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

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Runs a job. Throws FormatError when an input table is corrupt. */
export function runBuildJob(job: BuildJob): BuildResult {
  const sources: EntrySource[] = job.inputs.map((input) =>
    input.kind === 'run' ? new RunIterator(asBuffer(input.bytes)) : new TableBufferIterator(asBuffer(input.bytes)),
  );
  let entriesIn = 0;
  const counted = (function* () {
    for (const e of mergeSources(sources)) {
      entriesIn++;
      yield e;
    }
  })();
  const tables: BuiltTable[] = [];
  let builder: TableBuilder | undefined;
  let entriesOut = 0;
  for (const e of compactStream(counted, job.gc)) {
    if (e === null) {
      if (builder && builder.estimatedBytes >= job.targetFileBytes) {
        tables.push(builder.finish());
        builder = undefined;
      }
      continue;
    }
    builder ??= new TableBuilder(job.build);
    builder.add(e);
    entriesOut++;
  }
  if (builder && builder.entryCount > 0) tables.push(builder.finish());
  return { tables, entriesIn, entriesOut };
}
