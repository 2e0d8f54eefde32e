/**
 * ringkv's LSM storage engine: commit log -> memtable -> sorted tables, leveled compaction.
 *
 *   write:  validate -> queue -> group commit (one append, one fsync with 'always' for every
 *           write queued meanwhile) -> memtable -> resolve. A full memtable becomes immutable
 *           (a fresh log starts with it) and is flushed to an L0 table in the background;
 *           at most maxImmutables wait, after which writers wait (backpressure).
 *   read:   memtable -> immutables (newest first) -> L0 tables newest first -> one table per
 *           level; bloom filter before any block read; blocks through the byte-bounded cache.
 *   files:  NNNNNN.log (commit logs), NNNNNN.sst (tables), MANIFEST (live tables, atomic
 *           replace), LOCK (owner pid). Every file operation goes through options.fs.
 *   CPU:    building table bytes (merge, bloom, compression, checksums) runs in a worker thread
 *           (worker_pool.ts) as a pure function; file I/O stays here, on the main thread.
 *
 * Failure model: any write/fsync error on the log, a table or the manifest puts the engine in
 * the failed state: every later write rejects with EFAILED (never retry-and-pretend). Reads go on.
 * Recovery: manifest -> open tables -> replay logs (torn tail dropped and reported; damage in
 * the middle -> ECORRUPT unless repair) -> flush the replayed data -> delete orphans.
 * Repair: a damaged table is dropped and a damaged log record is skipped; what was dropped is
 * reported in stats() (repairDroppedTables, repairSkippedLogBytes) so the server takes a new
 * actor epoch (identity.ts). A dropped table's key range is recorded in the MANIFEST as a lost
 * range (lost_ranges.ts): reads there that could see an OLDER version (or a deleted key, or
 * nothing) in its place answer ECORRUPT instead, until the key is written again (e.g. by read
 * repair from a replica) or an operator clears the range (clearLostRanges). A MANIFEST lost
 * with repair loses every table: the whole key space becomes one lost range. A skipped log
 * record cannot be placed in a key range (its bytes are damaged) and is only reported.
 */
import assert from 'node:assert';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { nodeFileSystem, type FileSystem } from './fs.js';
import {
  StorageError,
  type BatchOp,
  type EngineStats,
  type Entry,
  type FsyncPolicy,
  type KVEngine,
  type PutOptions,
  type RangeOptions,
  type Snapshot,
} from './types.js';
import { BlockCache } from './block_cache.js';
import { BloomKey } from './bloom.js';
import { keyRange, planCompaction, pickCompaction, type CompactionPlan, type PickerConfig } from './compaction_picker.js';
import { acquireDirLock } from './dir_lock.js';
import { isDeadAt, KIND_DELETE, KIND_PUT, type InternalEntry } from './internal_entry.js';
import { KEY_BYTES_HARD_MAX, LOG_FILE_BYTES_MAX, LOG_RECORD_BYTES_MAX, VALUE_BYTES_HARD_MAX } from './limits.js';
import { logFileName, LogWriter, parseLog, recordLength, writeRecord, type LogOp } from './log.js';
import { LEVELS, MANIFEST_TMP_FILE, readManifest, writeManifest, type ManifestTable } from './manifest.js';
import { hashKey, Memtable } from './memtable.js';
import { LevelIterator, mergeLive, type InternalIterator } from './merge_iterator.js';
import { blockLastKey, blockSizeAt, tableFileName, type Compression, type TableBuildOptions, type TableIndex } from './table_format.js';
import type { BuildInput, BuildResult } from './table_job.js';
import { alignSlices, planSlices, type SliceInput } from './compaction_slices.js';
import { asCorrupt, NEEDS_IO, TableReader, type ReadStats } from './table_reader.js';
import { LevelKeys } from './level_keys.js';
import { compareBytes, copyBytes } from './bytes.js';
import { FormatError } from './varint.js';
import { describeLostRange, firstLostKeyInScan, lostRangeFor, overlapsLostRange, type LostRange } from './lost_ranges.js';
import { releaseTableBytes, runJob } from './worker_pool.js';

export type { FsyncPolicy } from './types.js';

export interface EngineOptions {
  dir: string;
  /** Default nodeFileSystem. */
  fs?: FileSystem;
  /** Default 'everysec'. */
  appendfsync?: FsyncPolicy;
  /** Memtable size that triggers a flush. Default 4 MiB. */
  memtableBytes?: number;
  /** Data block size before compression. Default 4 KiB. */
  blockBytes?: number;
  /** Block cache bound. Default 32 MiB. */
  blockCacheBytes?: number;
  /** Bloom filter bits per key. Default 10 (about 1% false positives). */
  bloomBitsPerKey?: number;
  /** Block compression. Default 'none' (measured: bench/results/storage-eventloop.md, "Block codec"). */
  compression?: Compression;
  /** Tombstones (and expired entries) older than this are dropped at the bottom level. Default 10 days. */
  tombstoneGraceMs?: number;
  /** Open despite damaged log records or tables: drop what is damaged, report it. */
  repair?: boolean;
  /** Default 16 KiB (hard cap 64 KiB). */
  maxKeyBytes?: number;
  /** Default 16 MiB (hard cap 64 MiB). */
  maxValueBytes?: number;
  /** Clock (ms since epoch) for expiry and tombstone grace. Default Date.now. */
  now?: () => number;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /** L0 table count that triggers compaction. Default 4. */
  l0CompactionTrigger?: number;
  /** L0 table count at which flushes (and then writes) wait for compaction. Default 12. */
  l0StopTrigger?: number;
  /** L1 target size. Default 10 MiB. */
  levelBaseBytes?: number;
  /** Size ratio between levels. Default 10. */
  levelRatio?: number;
  /** Compaction output tables are cut past this size. Default 2 MiB. */
  targetFileBytes?: number;
  /**
   * Which table an Ln (n >= 1) compaction takes (compaction_picker.ts): 'round-robin'
   * (LevelDB) or 'min-overlap' (the least overlap with the level below per byte). Default
   * 'min-overlap' (measured: bench/results/storage-perf-notes.md "Session 7").
   */
  compactionPick?: 'round-robin' | 'min-overlap';
  /** Immutable memtables allowed to wait for flush before writers wait. Default 2. */
  maxImmutables?: number;
  /** Run table building in a worker thread. Default true. */
  offload?: boolean;
  /**
   * Table reads (point-read block misses and scan read-ahead, at most 256 KiB) are done
   * synchronously when the FileSystem offers readSync: a page-cache hit costs microseconds
   * instead of a thread-pool round trip (measured: scans over many tables went from one
   * round trip per block span to none), but a read that goes to a slow disk blocks the event
   * loop for its duration. Default true; set false on slow disks.
   */
  syncReads?: boolean;
  /** Run compactions automatically in the background. Default true. */
  autoCompact?: boolean;
  /**
   * A compaction is cut into key-range slices of about this many input bytes, each built by
   * one job holding only its slice in memory (compaction_slices.ts). Default 8 MiB.
   */
  compactionSliceBytes?: number;
}

const DEFAULTS = {
  appendfsync: 'everysec' as FsyncPolicy,
  memtableBytes: 4 * 1024 * 1024,
  blockBytes: 4 * 1024,
  blockCacheBytes: 32 * 1024 * 1024,
  bloomBitsPerKey: 10,
  compression: 'none' as Compression,
  tombstoneGraceMs: 10 * 24 * 3600 * 1000,
  maxKeyBytes: 16 * 1024,
  maxValueBytes: 16 * 1024 * 1024,
  l0CompactionTrigger: 4,
  l0StopTrigger: 12,
  levelBaseBytes: 10 * 1024 * 1024,
  levelRatio: 10,
  targetFileBytes: 2 * 1024 * 1024,
  compactionPick: 'min-overlap' as 'round-robin' | 'min-overlap',
  maxImmutables: 2,
  compactionSliceBytes: 8 * 1024 * 1024,
};

/** Bytes of queued writes committed by one group (one append, one fsync). */
const GROUP_COMMIT_BYTES_MAX = 4 * 1024 * 1024;
/** A group commit's reused buffer starts this large (GROUP_COMMIT_BYTES_MAX at most). */
const GROUP_BUFFER_BYTES_INITIAL = 64 * 1024;
/** everysec: how often the log is fsynced. */
const EVERYSEC_INTERVAL_MS = 1000;
/** Upper bound on input bytes of one L0 compaction (bounds compaction memory). */
const COMPACTION_INPUT_BYTES_MAX = 64 * 1024 * 1024;
/** Appends to table files are cut into chunks of this size. */
const TABLE_WRITE_CHUNK_BYTES = 1024 * 1024;
/**
 * The acknowledgement shared by the writes queued while the writer was busy: one promise per
 * batch of queued writes, not per write (a promise, its resolving functions and the executor
 * closure per write were most of what the write path allocated, KNOWN_ISSUES "perf-server").
 * It resolves once every write that joined it is committed (usually all in one group) and
 * rejects as soon as one of them fails (a failure stops every later write anyway).
 */
class Ack {
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private rejectFn!: (err: Error) => void;
  /** Writes that joined and are not committed yet. */
  waiting = 0;
  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.rejectFn = reject;
    });
  }
  committed(): void {
    if (--this.waiting === 0) this.resolve();
  }
  reject(err: Error): void {
    this.rejectFn(err);
  }
}

interface PendingWrite {
  ops: LogOp[] | null; // null: a request to rotate the memtable (flush())
  bytes: number;
  ack: Ack;
}

/** A live table: manifest metadata plus the open reader; refcounted by versions. */
class TableHandle {
  refs = 0;
  obsolete = false;
  constructor(
    public meta: ManifestTable,
    readonly reader: TableReader,
  ) {}
}

/** An immutable set of live tables per level; readers pin the one they started with. */
class Version {
  refs = 1;
  /** keys[l]: level l's largest keys for point reads (levelCandidate); unused for L0. */
  readonly keys: LevelKeys[];
  constructor(
    readonly levels: TableHandle[][],
    private readonly onDrop: (t: TableHandle) => void,
  ) {
    for (const level of levels) for (const t of level) t.refs++;
    this.keys = levels.map((level, l) => new LevelKeys(l === 0 ? [] : level.map((t) => t.meta.largestKey)));
  }
  ref(): void {
    this.refs++;
  }
  unref(): void {
    assert(this.refs > 0, 'version unref below zero');
    if (--this.refs > 0) return;
    for (const level of this.levels) for (const t of level) if (--t.refs === 0) this.onDrop(t);
  }
}

interface VersionEdit {
  remove: number[];
  add: ManifestTable[];
  addHandles: TableHandle[];
  logNumber?: number;
  lastSeq?: number;
}

function sortLevels(levels: TableHandle[][]): void {
  levels[0]!.sort((a, b) => b.meta.largestSeq - a.meta.largestSeq);
  for (let l = 1; l < levels.length; l++) levels[l]!.sort((a, b) => Buffer.compare(a.meta.smallestKey, b.meta.smallestKey));
}

function sliceInputOf(idx: TableIndex): SliceInput {
  return { count: idx.count, lastKey: (b) => blockLastKey(idx, b), size: (b) => blockSizeAt(idx, b) };
}

function parseFileNumber(name: string, ext: string): number | undefined {
  if (!name.endsWith(ext)) return undefined;
  const stem = name.slice(0, -ext.length);
  if (!/^\d+$/.test(stem)) return undefined;
  const n = Number(stem);
  return Number.isSafeInteger(n) ? n : undefined;
}

export class Engine implements KVEngine {
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly policy: FsyncPolicy;
  private readonly o: typeof DEFAULTS & { repair: boolean; offload: boolean; autoCompact: boolean; syncReads: boolean };
  private readonly now: () => number;
  private readonly logFn: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  private readonly cache: BlockCache;
  private readonly readStats: ReadStats = { bloomChecks: 0, bloomNegatives: 0 };

  private mem!: Memtable;
  private imms: Memtable[] = [];
  private log!: LogWriter;
  private liveLogs: number[] = [];
  private current!: Version;
  private nextFileNumber = 1;
  private lastSeq = 0; // highest seq assigned
  private visibleSeq = 0; // highest seq applied to the memtable (readers see up to here)
  private flushedSeq = 0; // highest seq stored in tables (manifest lastSeq)
  private manifestLogNumber = 0;
  /** Ranges repair dropped (lost_ranges.ts); persisted in the MANIFEST. Usually empty. */
  private lostRanges: LostRange[] = [];

  private pending: PendingWrite[] = [];
  /**
   * Where a group commit writes its records (grown up to GROUP_COMMIT_BYTES_MAX; a larger
   * group gets a buffer of its own). Reused: the log write and the memtable's copy are done
   * with it before the next group.
   */
  private groupBuf = Buffer.allocUnsafeSlow(GROUP_BUFFER_BYTES_INITIAL);
  /** The Ack writes queued now join; closed (undefined) when the writer takes one of them. */
  private openAck: Ack | undefined;
  private writerRunning = false;
  private syncRequested = false;
  /** An everysec fsync of the log in flight (startEverysecSync). */
  private everysecSync: Promise<void> | undefined;
  private failedReason: string | null = null;
  private failedCause: unknown;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private stopBackground = false;
  private flushRunning = false;
  private compactionRunning = false;
  private compactionChain: Promise<unknown> = Promise.resolve();
  private manifestChain: Promise<unknown> = Promise.resolve();
  private compactionBroken: string | null = null;
  private readonly compactPointers: (Buffer | undefined)[] = [];
  private waiters: (() => void)[] = [];
  private readonly snapshots = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private releaseLock: (() => Promise<void>) | undefined;

  private counters = {
    userBytesWritten: 0,
    logBytesWritten: 0,
    tableBytesWritten: 0,
    flushes: 0,
    compactions: 0,
    recoveredTornBytes: 0,
    repairDroppedTables: 0,
    repairSkippedLogBytes: 0,
  };

  /** Use openEngine(). */
  constructor(options: EngineOptions) {
    this.fs = options.fs ?? nodeFileSystem;
    this.dir = options.dir;
    this.policy = options.appendfsync ?? DEFAULTS.appendfsync;
    this.now = options.now ?? Date.now;
    this.logFn = options.log ?? (() => undefined);
    this.o = {
      ...DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      repair: options.repair ?? false,
      offload: options.offload ?? true,
      autoCompact: options.autoCompact ?? true,
      syncReads: options.syncReads ?? true,
    } as typeof this.o;
    this.o.maxKeyBytes = Math.min(this.o.maxKeyBytes, KEY_BYTES_HARD_MAX);
    this.o.maxValueBytes = Math.min(this.o.maxValueBytes, VALUE_BYTES_HARD_MAX);
    assert(this.o.memtableBytes > 0 && this.o.blockBytes > 0 && this.o.bloomBitsPerKey > 0, 'bad engine sizes');
    assert(['always', 'everysec', 'no'].includes(this.policy), `bad appendfsync ${this.policy}`);
    this.cache = new BlockCache(this.o.blockCacheBytes);
  }

  // ---------------------------------------------------------------- open / recovery

  /** @internal called by openEngine. */
  async open(): Promise<void> {
    await this.fs.mkdir(this.dir);
    this.releaseLock = await acquireDirLock(this.fs, this.dir);
    try {
      await this.recover();
    } catch (err) {
      await this.abandon();
      throw err;
    }
    if (this.policy === 'everysec') {
      this.timer = setInterval(() => {
        if (this.log.dirty && !this.failedReason) {
          this.syncRequested = true;
          this.kickWriter();
        }
      }, EVERYSEC_INTERVAL_MS);
      this.timer.unref();
    }
    this.kickCompaction();
  }

  private async abandon(): Promise<void> {
    this.closed = true;
    this.stopBackground = true;
    if (this.current) {
      for (const level of this.current.levels) for (const t of level) await t.reader.close().catch(() => undefined);
    }
    await this.releaseLock?.();
  }

  private async recover(): Promise<void> {
    const names = await this.fs.readdir(this.dir);
    let manifest = await readManifest(this.fs, this.dir);
    const manifestLost = !manifest;
    let maxNumber = 0;
    for (const n of names) {
      const num = parseFileNumber(n, '.log') ?? parseFileNumber(n, '.sst');
      if (num !== undefined) maxNumber = Math.max(maxNumber, num);
    }
    if (!manifest) {
      const dataFiles = names.filter((n) => n.endsWith('.sst') || n.endsWith('.log'));
      if (dataFiles.length > 0 && !this.o.repair) {
        throw new StorageError('ECORRUPT', `${this.dir}: MANIFEST is missing but data files exist (${dataFiles.slice(0, 3).join(', ')}...); open with repair to start over from the logs`);
      }
      // With repair, every table on disk becomes an orphan below and is deleted: count it as dropped.
      const tables = dataFiles.filter((n) => n.endsWith('.sst'));
      if (tables.length > 0) {
        this.counters.repairDroppedTables += tables.length;
        this.logFn('error', `repair: MANIFEST is missing: dropping ${tables.length} tables, starting over from the logs`);
      }
      manifest = { nextFileNumber: 1, lastSeq: 0, logNumber: 0, tables: [] };
    }
    this.nextFileNumber = Math.max(manifest.nextFileNumber, maxNumber + 1);
    this.lostRanges = [...(manifest.lostRanges ?? [])];
    this.flushedSeq = manifest.lastSeq;
    this.manifestLogNumber = manifest.logNumber;

    // Tables.
    const levels: TableHandle[][] = Array.from({ length: LEVELS }, () => []);
    let droppedTables = false;
    for (const t of manifest.tables) {
      try {
        const reader = await TableReader.open(this.fs, this.dir, t.fileNumber, this.cache, this.o.syncReads);
        if (reader.fileSize !== t.size) {
          await reader.close();
          throw new StorageError('ECORRUPT', `${tableFileName(t.fileNumber)}: size ${reader.fileSize} differs from the manifest's ${t.size}`);
        }
        levels[t.level]!.push(new TableHandle(t, reader));
      } catch (err) {
        const e = asCorrupt(err, tableFileName(t.fileNumber));
        const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
        if (!(e instanceof StorageError) && !missing) throw e;
        const msg = missing ? `${tableFileName(t.fileNumber)} listed in MANIFEST is missing` : (e as Error).message;
        if (!this.o.repair) {
          for (const level of levels) for (const h of level) await h.reader.close().catch(() => undefined);
          throw missing ? new StorageError('ECORRUPT', msg, { cause: e }) : e;
        }
        this.logFn('error', `repair: dropping table: ${msg}`);
        this.counters.repairDroppedTables++;
        droppedTables = true;
        const lost: LostRange = { smallestKey: t.smallestKey, largestKey: t.largestKey, maxSeq: t.largestSeq };
        this.lostRanges.push(lost);
        this.logFn('error', `repair: key range ${describeLostRange(lost)} is lost: reads there answer ECORRUPT until rewritten`);
      }
    }
    sortLevels(levels);
    this.current = new Version(levels, (t) => this.dropTable(t));

    // Commit logs.
    const logs = names
      .map((n) => parseFileNumber(n, '.log'))
      .filter((n): n is number => n !== undefined && n >= manifest.logNumber)
      .sort((a, b) => a - b);
    const mem = new Memtable(0);
    for (const num of logs) {
      const name = logFileName(num);
      const buf = await this.readLogFile(path.join(this.dir, name), name);
      const parsed = parseLog(buf, name, this.o.repair);
      for (const s of parsed.skipped) {
        this.logFn('error', `repair: ${name}: dropped ${s.bytes} damaged bytes at offset ${s.offset}`);
        this.counters.repairSkippedLogBytes += s.bytes;
      }
      if (parsed.tornBytes > 0) {
        this.counters.recoveredTornBytes += parsed.tornBytes;
        this.logFn('warn', `${name}: dropped a torn tail of ${parsed.tornBytes} bytes at offset ${parsed.validBytes}`);
      }
      for (const b of parsed.batches) {
        for (const e of b.entries) if (e.seq > manifest.lastSeq && e.seq > mem.maxSeq) mem.add(e);
      }
    }
    this.lastSeq = Math.max(manifest.lastSeq, mem.maxSeq);
    this.visibleSeq = this.lastSeq;
    if (manifestLost && this.counters.repairDroppedTables > 0) {
      // Every table is gone and their sequence numbers with them: nothing that exists now is
      // known to be newer than what they held.
      const lost: LostRange = { smallestKey: EMPTY, largestKey: null, maxSeq: this.lastSeq };
      this.lostRanges.push(lost);
      this.logFn('error', `repair: key range ${describeLostRange(lost)} is lost: reads there answer ECORRUPT until rewritten`);
    }
    if (this.counters.repairDroppedTables > 0 || this.counters.repairSkippedLogBytes > 0) {
      this.logFn(
        'warn',
        `repair: lost data at open: ${this.counters.repairDroppedTables} tables dropped, ${this.counters.repairSkippedLogBytes} log bytes skipped; keys there may read older versions`,
      );
    }

    // Orphans: tables not in the manifest, obsolete logs, a half-written manifest.
    const live = new Set(manifest.tables.map((t) => t.fileNumber));
    for (const n of names) {
      const sst = parseFileNumber(n, '.sst');
      const log = parseFileNumber(n, '.log');
      const orphan = (sst !== undefined && !live.has(sst)) || (log !== undefined && log < manifest.logNumber) || n === MANIFEST_TMP_FILE;
      if (orphan) {
        this.logFn('info', `removing orphan file ${n}`);
        await this.fs.unlink(path.join(this.dir, n));
      }
    }

    // Flush what the logs held, then start a fresh log.
    const newLog = this.nextFileNumber++;
    const added: TableHandle[] = [];
    if (!mem.empty) {
      const result = await this.buildFromMemtable(mem);
      added.push(...(await this.writeTables(result, 0)));
      this.counters.flushes++;
    }
    if (!mem.empty || logs.length > 0 || droppedTables || manifest.logNumber !== newLog) {
      await this.installVersion({ remove: [], add: added.map((h) => h.meta), addHandles: added, logNumber: newLog, lastSeq: this.lastSeq });
    }
    for (const num of logs) await this.fs.unlink(path.join(this.dir, logFileName(num)));
    this.mem = new Memtable(newLog);
    this.log = await this.openLog(newLog);
  }

  private async readLogFile(file: string, name: string): Promise<Buffer> {
    const h = await this.fs.open(file, 'read');
    try {
      const size = await h.size();
      if (size > LOG_FILE_BYTES_MAX) throw new StorageError('ECORRUPT', `commit log ${name}: ${size} bytes exceeds the log file limit`);
      const buf = Buffer.alloc(size);
      let done = 0;
      while (done < size) {
        const n = await h.read(buf, done, size - done, done);
        if (n <= 0) break;
        done += n;
      }
      return buf.subarray(0, done);
    } finally {
      await h.close();
    }
  }

  private async openLog(num: number): Promise<LogWriter> {
    const handle = await this.fs.open(path.join(this.dir, logFileName(num)), 'write');
    // The new name must be durable before records in it are acknowledged as durable.
    await this.fs.syncDir(this.dir);
    this.liveLogs.push(num);
    return new LogWriter(num, handle);
  }

  // ---------------------------------------------------------------- write path

  private checkWritable(): void {
    if (this.closed) throw new StorageError('ECLOSED', 'engine is closed');
    if (this.failedReason) throw new StorageError('EFAILED', `engine stopped accepting writes: ${this.failedReason}`, { cause: this.failedCause });
  }

  private validate(key: Buffer, value: Buffer | undefined): void {
    assert(Buffer.isBuffer(key), 'key must be a Buffer');
    if (key.length > this.o.maxKeyBytes) throw new StorageError('ETOOLARGE', `key of ${key.length} bytes exceeds maxKeyBytes ${this.o.maxKeyBytes}`);
    if (value !== undefined) {
      assert(Buffer.isBuffer(value), 'value must be a Buffer');
      if (value.length > this.o.maxValueBytes) throw new StorageError('ETOOLARGE', `value of ${value.length} bytes exceeds maxValueBytes ${this.o.maxValueBytes}`);
    }
  }

  put(key: Buffer, value: Buffer, options?: PutOptions): Promise<void> {
    try {
      this.checkWritable();
      const op = this.putOp(key, value, options?.expiresAtMs);
      return this.queue([op], key.length + value.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: Buffer): Promise<void> {
    try {
      this.checkWritable();
      return this.queue([this.deleteOp(key, this.now())], key.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  write(ops: BatchOp[]): Promise<void> {
    try {
      this.checkWritable();
      const logOps: LogOp[] = [];
      let userBytes = 0;
      const nowMs = this.now();
      for (const op of ops) {
        const logOp = op.type === 'put' ? this.putOp(op.key, op.value, op.expiresAtMs) : this.deleteOp(op.key, nowMs);
        logOps.push(logOp);
        userBytes += logOp.key.length + logOp.value.length;
      }
      return this.queue(logOps, userBytes);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A validated put as a log op. */
  private putOp(key: Buffer, value: Buffer, expiresAtMs: number | undefined): LogOp {
    this.validate(key, value);
    const exp = expiresAtMs ?? 0;
    assert(Number.isSafeInteger(exp) && exp >= 0, 'expiresAtMs must be a non-negative integer');
    return { kind: KIND_PUT, key, value, time: exp };
  }

  /** A validated delete as a log op (a tombstone stamped nowMs). */
  private deleteOp(key: Buffer, nowMs: number): LogOp {
    this.validate(key, undefined);
    return { kind: KIND_DELETE, key, value: EMPTY, time: Math.max(0, Math.floor(nowMs)) };
  }

  /** Queues one record of logOps for the next group commit; resolves once it is committed. */
  private queue(logOps: LogOp[], userBytes: number): Promise<void> {
    if (logOps.length === 0) return Promise.resolve();
    const bytes = recordLength(this.lastSeq + 1, logOps);
    if (bytes > LOG_RECORD_BYTES_MAX) throw new StorageError('ETOOLARGE', `batch of ${bytes} bytes exceeds the log record limit ${LOG_RECORD_BYTES_MAX}`);
    this.counters.userBytesWritten += userBytes;
    const ack = (this.openAck ??= new Ack());
    ack.waiting++;
    this.pending.push({ ops: logOps, bytes, ack });
    this.kickWriter();
    return ack.promise;
  }

  /**
   * Starts the writer on the next microtask, not now: writes issued in the same synchronous
   * stretch (Promise.all of many puts) then form one group even when the append is synchronous.
   */
  private kickWriter(): void {
    if (this.writerRunning) return;
    this.writerRunning = true;
    queueMicrotask(() => void this.writerLoop());
  }

  private async writerLoop(): Promise<void> {
    try {
      while (!this.failedReason) {
        const first = this.pending[0];
        if (first) {
          if (first.ops === null) {
            this.pending.shift();
            if (!this.mem.empty) await this.rotate();
            first.ack.committed();
          } else {
            await this.commitGroup();
            // With a synchronous append nothing above waits for I/O: yield to the event loop
            // so timers and sockets run between groups (writes queued meanwhile form the next
            // group). Without this a steady stream of writes would starve everything else.
            await yieldToLoop();
          }
          continue;
        }
        if (this.syncRequested) {
          this.syncRequested = false;
          if (this.log.dirty && !this.everysecSync) this.startEverysecSync();
          continue;
        }
        break;
      }
    } catch (err) {
      this.fail('commit log write or fsync failed', err);
    } finally {
      this.writerRunning = false;
      if (this.failedReason) this.rejectPending();
      this.notify();
    }
  }

  /**
   * everysec: fsyncs the log in the background; group commits go on meanwhile (appends that
   * land during it are left dirty for the next one). Awaiting it inline stopped every group
   * commit for the length of the fdatasync, 4-152 ms once a second on this machine (KNOWN_ISSUES
   * "perf-server", fourth pass). Started only by the writer loop, between groups, so never while
   * a rotation closes the log; rotate() and close() wait for it before they sync and close.
   */
  private startEverysecSync(): void {
    this.everysecSync = this.log
      .sync()
      .catch((err: unknown) => this.fail('commit log fsync failed', err))
      .finally(() => {
        this.everysecSync = undefined;
      });
  }

  private rejectPending(): void {
    const all = this.pending;
    this.pending = [];
    this.openAck = undefined;
    for (const p of all) p.ack.reject(new StorageError('EFAILED', `engine stopped accepting writes: ${this.failedReason}`, { cause: this.failedCause }));
  }

  /** Takes queued writes, appends them as one write (+ one fsync), applies them. */
  private async commitGroup(): Promise<void> {
    if (this.mem.bytes >= this.o.memtableBytes) await this.rotate();
    // Writes queued from now on join a new Ack: this one's writes are being taken.
    this.openAck = undefined;
    let total = 0;
    // A group never overshoots the memtable budget by more than one write.
    const cap = Math.min(GROUP_COMMIT_BYTES_MAX, this.o.memtableBytes);
    let n = 0;
    for (; n < this.pending.length; n++) {
      const p = this.pending[n]!;
      if (p.ops === null || (n > 0 && total + p.bytes > cap)) break;
      total += p.bytes + 16; // seq varints may grow a little past the estimate
    }
    const group = this.pending.splice(0, n);
    // Written into a buffer reused from group to group (applyRecords copies the records).
    if (total > this.groupBuf.length && total <= GROUP_COMMIT_BYTES_MAX) this.groupBuf = Buffer.allocUnsafeSlow(total);
    const buf = total <= this.groupBuf.length ? this.groupBuf : Buffer.allocUnsafeSlow(total);
    let pos = 0;
    let seq = this.lastSeq;
    for (const p of group) {
      pos = writeRecord(buf, pos, seq + 1, p.ops!);
      seq += p.ops!.length;
    }
    this.lastSeq = seq;
    const records = buf.subarray(0, pos);
    try {
      await this.log.append(records);
      this.counters.logBytesWritten += records.length;
      if (this.policy === 'always') await this.log.sync();
    } catch (err) {
      this.fail('commit log write or fsync failed', err);
      for (const p of group) p.ack.reject(new StorageError('EFAILED', `write not durable: ${this.failedReason}`, { cause: err }));
      return;
    }
    this.mem.applyRecords(records);
    this.visibleSeq = seq;
    for (const p of group) p.ack.committed();
  }

  /** Makes the memtable immutable and starts a new log (waits when too many are pending). */
  private async rotate(): Promise<void> {
    while (this.imms.length >= this.o.maxImmutables && !this.failedReason) await this.waitProgress();
    if (this.failedReason) throw new StorageError('EFAILED', this.failedReason);
    const old = this.log;
    await this.everysecSync;
    await old.sync();
    await old.close();
    const num = this.nextFileNumber++;
    this.log = await this.openLog(num);
    this.imms.push(this.mem);
    this.mem = new Memtable(num);
    this.kickFlush();
  }

  private fail(reason: string, cause: unknown): void {
    if (this.failedReason) return;
    this.failedReason = `${reason}: ${cause instanceof Error ? cause.message : String(cause)}`;
    this.failedCause = cause;
    this.logFn('error', `storage engine failed, refusing writes from now on: ${this.failedReason}`);
    this.rejectPending();
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private waitProgress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  // ---------------------------------------------------------------- flush

  private kickFlush(): void {
    if (this.flushRunning || this.stopBackground || this.imms.length === 0) return;
    this.flushRunning = true;
    void this.flushLoop();
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.imms.length > 0 && !this.failedReason && !this.stopBackground) {
        while (this.current.levels[0]!.length >= this.o.l0StopTrigger && !this.failedReason && !this.stopBackground && this.canCompact()) {
          this.kickCompaction();
          await this.waitProgress();
        }
        if (this.failedReason || this.stopBackground) break;
        const imm = this.imms[0]!;
        const result = await this.buildFromMemtable(imm);
        const handles = await this.writeTables(result, 0);
        const logNumber = this.imms[1]?.logNumber ?? this.mem.logNumber;
        await this.installVersion({ remove: [], add: handles.map((h) => h.meta), addHandles: handles, logNumber, lastSeq: imm.maxSeq });
        this.imms.shift();
        this.counters.flushes++;
        await this.deleteObsoleteLogs();
        this.notify();
        this.kickCompaction();
      }
    } catch (err) {
      this.fail('flush failed', err);
    } finally {
      this.flushRunning = false;
      this.notify();
    }
  }

  private async deleteObsoleteLogs(): Promise<void> {
    const keep: number[] = [];
    for (const num of this.liveLogs) {
      if (num < this.manifestLogNumber) {
        await this.fs.unlink(path.join(this.dir, logFileName(num))).catch((err: Error) => this.logFn('warn', `cannot delete ${logFileName(num)}: ${err.message}`));
      } else {
        keep.push(num);
      }
    }
    this.liveLogs = keep;
  }

  /**
   * Builds a memtable's table: the worker picks the versions that survive (Memtable.flushInput,
   * survivorRows: rows pointing into the memtable's shared memory, where it reads keys and
   * values in place), then sorts and writes them. This thread only posts the job.
   */
  private async buildFromMemtable(mem: Memtable): Promise<BuildResult> {
    const gc = this.gcOptions(false);
    // A snapshot taken later is above every version of mem: it sees the newest, which every
    // stripe keeps.
    return runJob(
      {
        inputs: [{ kind: 'memtable', bytes: new Uint8Array(0), memtable: mem.flushInput(gc.snapshots) }],
        gc,
        build: this.buildOptions(),
        targetFileBytes: Number.MAX_SAFE_INTEGER,
      },
      'flush',
      this.o.offload,
    );
  }

  private buildOptions(): TableBuildOptions {
    return { blockBytes: this.o.blockBytes, bloomBitsPerKey: this.o.bloomBitsPerKey, compression: this.o.compression };
  }

  private gcOptions(bottom: boolean): { snapshots: number[]; bottom: boolean; nowMs: number; graceMs: number } {
    const snapshots = [...this.snapshots.keys()].sort((a, b) => a - b);
    return { snapshots, bottom, nowMs: this.now(), graceMs: this.o.tombstoneGraceMs };
  }

  /** Writes built tables (fsynced, directory fsynced) and opens them. */
  private async writeTables(result: BuildResult, level: number): Promise<TableHandle[]> {
    const handles: TableHandle[] = [];
    try {
      for (const t of result.tables) {
        const num = this.nextFileNumber++;
        const file = path.join(this.dir, tableFileName(num));
        const h = await this.fs.open(file, 'write');
        try {
          for (const part of t.parts) {
            const bytes = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
            for (let off = 0; off < bytes.length; off += TABLE_WRITE_CHUNK_BYTES) {
              await h.append(bytes.subarray(off, Math.min(bytes.length, off + TABLE_WRITE_CHUNK_BYTES)));
            }
          }
          await h.sync();
        } finally {
          await h.close();
        }
        this.counters.tableBytesWritten += t.size;
        const reader = await TableReader.open(this.fs, this.dir, num, this.cache, this.o.syncReads);
        handles.push(new TableHandle({ ...t.meta, level, fileNumber: num }, reader));
      }
      if (handles.length > 0) await this.fs.syncDir(this.dir);
      releaseTableBytes(result, this.o.offload);
    } catch (err) {
      for (const h of handles) await h.reader.close().catch(() => undefined);
      throw err;
    }
    return handles;
  }

  /** Applies an edit: new manifest on disk first, then the in-memory version. Serialized. */
  private installVersion(edit: VersionEdit): Promise<void> {
    const run = async (): Promise<void> => {
      const levels = this.current.levels.map((l) => l.filter((t) => !edit.remove.includes(t.meta.fileNumber)));
      const removed = this.current.levels.flat().filter((t) => edit.remove.includes(t.meta.fileNumber));
      for (const h of edit.addHandles) levels[h.meta.level]!.push(h);
      sortLevels(levels);
      const logNumber = edit.logNumber ?? this.manifestLogNumber;
      const lastSeq = Math.max(this.flushedSeq, edit.lastSeq ?? 0);
      await writeManifest(this.fs, this.dir, {
        nextFileNumber: this.nextFileNumber,
        lastSeq,
        logNumber,
        tables: levels.flat().map((t) => t.meta),
        lostRanges: this.lostRanges,
      });
      this.manifestLogNumber = logNumber;
      this.flushedSeq = lastSeq;
      for (const t of removed) if (!edit.addHandles.includes(t)) t.obsolete = true;
      const old = this.current;
      this.current = new Version(levels, (t) => this.dropTable(t));
      old.unref();
    };
    const p = this.manifestChain.then(run);
    this.manifestChain = p.catch(() => undefined);
    return p;
  }

  private dropTable(t: TableHandle): void {
    this.cache.evictTable(t.meta.fileNumber, t.reader.index.count);
    void t.reader.close().catch(() => undefined);
    if (t.obsolete) {
      void this.fs.unlink(path.join(this.dir, tableFileName(t.meta.fileNumber))).catch((err: Error) => this.logFn('warn', `cannot delete ${tableFileName(t.meta.fileNumber)}: ${err.message}`));
    }
  }

  // ---------------------------------------------------------------- compaction

  private pickerConfig(): PickerConfig {
    return {
      l0Trigger: this.o.l0CompactionTrigger,
      levelBaseBytes: this.o.levelBaseBytes,
      levelRatio: this.o.levelRatio,
      maxInputBytes: COMPACTION_INPUT_BYTES_MAX,
      pick: this.o.compactionPick,
    };
  }

  private canCompact(): boolean {
    return this.o.autoCompact && this.compactionBroken === null;
  }

  private levelMeta(): ManifestTable[][] {
    return this.current.levels.map((l) => l.map((t) => t.meta));
  }

  private kickCompaction(): void {
    if (this.compactionRunning || this.stopBackground || this.failedReason || !this.canCompact()) return;
    if (!pickCompaction(this.levelMeta(), this.pickerConfig(), this.compactPointers)) return;
    this.compactionRunning = true;
    void this.withCompactionLock(async () => {
      try {
        for (;;) {
          if (this.stopBackground || this.failedReason || !this.canCompact()) break;
          const plan = pickCompaction(this.levelMeta(), this.pickerConfig(), this.compactPointers);
          if (!plan) break;
          await this.runCompaction(plan);
          this.notify();
        }
      } catch (err) {
        this.compactionError(err);
      } finally {
        this.compactionRunning = false;
        this.notify();
      }
    });
  }

  private compactionError(err: unknown): void {
    if (err instanceof StorageError && err.code === 'ECORRUPT') {
      // A damaged input table: stop compacting (reads of the damaged block report ECORRUPT);
      // writes go on. The operator repairs with `repair: true`.
      this.compactionBroken = err.message;
      this.logFn('error', `compaction stopped: ${err.message}`);
    } else {
      this.fail('compaction failed', err);
    }
  }

  private withCompactionLock<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.compactionChain.then(fn);
    this.compactionChain = p.catch(() => undefined);
    return p;
  }

  private async runCompaction(plan: CompactionPlan): Promise<void> {
    const byNumber = new Map(this.current.levels.flat().map((t) => [t.meta.fileNumber, t]));
    const inputs = [...plan.inputs, ...plan.overlaps].map((t) => byNumber.get(t.fileNumber)!);
    if (plan.inputs.length > 0) this.compactPointers[plan.level] = plan.inputs[plan.inputs.length - 1]!.largestKey;
    if (plan.trivialMove && plan.outputLevel !== plan.level) {
      // Same file, same handle, new level: only the manifest changes.
      const t = inputs[0]!;
      t.meta = { ...t.meta, level: plan.outputLevel };
      await this.installMove(t, plan.outputLevel);
      return;
    }
    // In key-range slices, each job holding only its slice's blocks (compaction_slices.ts);
    // the outputs of all slices are installed together, atomically.
    // Output tables end where grandparent tables end (BuildJob.cutAfter), and so do slices.
    const cutAfter = this.grandparentBounds(plan, inputs);
    const slices = alignSlices(planSlices(inputs.map((t) => sliceInputOf(t.reader.index)), this.o.compactionSliceBytes), cutAfter);
    const handles: TableHandle[] = [];
    try {
      for (const slice of slices) {
        const parts: BuildInput[] = [];
        for (const t of inputs) {
          const span = t.reader.sliceBlocks(slice);
          if (!span) continue;
          const { bytes, sizes } = await t.reader.readBlocksRaw(span.from, span.to);
          parts.push({ kind: 'blocks', bytes, blockSizes: sizes });
        }
        if (parts.length === 0) continue;
        let result: BuildResult;
        try {
          result = await runJob(
            {
              inputs: parts,
              gc: this.gcOptions(plan.bottom && !this.touchesLostRange(inputs)),
              build: this.buildOptions(),
              targetFileBytes: this.o.targetFileBytes,
              cutAfter,
              slice: { after: slice.after && new Uint8Array(slice.after), upTo: slice.upTo && new Uint8Array(slice.upTo) },
            },
            'compact',
            this.o.offload,
          );
        } catch (err) {
          throw asCorrupt(err, `compaction of tables ${inputs.map((t) => tableFileName(t.meta.fileNumber)).join(', ')}`);
        }
        handles.push(...(await this.writeTables(result, plan.outputLevel)));
      }
      await this.installVersion({ remove: inputs.map((t) => t.meta.fileNumber), add: handles.map((h) => h.meta), addHandles: handles });
      const sum = (ts: { size: number }[]): number => ts.reduce((s, t) => s + t.size, 0);
      this.logFn(
        'debug',
        `compacted L${plan.level}->L${plan.outputLevel}: ${plan.inputs.length} tables ${sum(plan.inputs)} B + ${plan.overlaps.length} tables ${sum(plan.overlaps)} B -> ${handles.length} tables ${sum(handles.map((h) => h.meta))} B; L0 now ${this.current.levels[0]!.length} tables`,
      );
    } catch (err) {
      // Outputs not installed: close them; their files are orphans, removed at the next open.
      if (!handles.some((h) => h.refs > 0)) for (const h of handles) await h.reader.close().catch(() => undefined);
      throw err;
    }
    this.counters.compactions++;
  }

  /**
   * Largest keys of the tables one level below the output level that end inside the
   * compaction's key range, ascending (BuildJob.cutAfter: outputs are cut where they end).
   */
  private grandparentBounds(plan: CompactionPlan, inputs: TableHandle[]): Uint8Array[] {
    const below = this.current.levels[plan.outputLevel + 1];
    if (!below || below.length === 0 || inputs.length === 0) return [];
    const { smallest: lo, largest: hi } = keyRange(inputs.map((t) => t.meta));
    const bounds: Uint8Array[] = [];
    for (const t of below) {
      const k = t.meta.largestKey;
      if (compareBytes(k, lo) >= 0 && compareBytes(k, hi) < 0) bounds.push(new Uint8Array(k));
    }
    return bounds;
  }

  /** Whether the key span of these tables overlaps a lost range (its tombstones must stay). */
  private touchesLostRange(tables: TableHandle[]): boolean {
    if (this.lostRanges.length === 0 || tables.length === 0) return false;
    const { smallest, largest } = keyRange(tables.map((t) => t.meta));
    return overlapsLostRange(this.lostRanges, smallest, largest);
  }

  /**
   * Forgets every lost range (operator action, after the ranges were rebuilt from replicas or
   * their loss is accepted): reads there are answered from what is left again. Returns how
   * many ranges were cleared. The MANIFEST is rewritten before this resolves.
   */
  async clearLostRanges(): Promise<number> {
    this.checkWritable();
    const n = this.lostRanges.length;
    if (n === 0) return 0;
    await this.withCompactionLock(async () => {
      this.lostRanges = [];
      await this.installVersion({ remove: [], add: [], addHandles: [] });
    });
    this.logFn('warn', `repair: ${n} lost key ranges cleared; reads there may return older versions`);
    return n;
  }

  private installMove(t: TableHandle, level: number): Promise<void> {
    // t.meta already carries the new level; re-sorting and writing the manifest is enough.
    const run = async (): Promise<void> => {
      const levels = this.current.levels.map((l) => l.filter((x) => x !== t));
      levels[level]!.push(t);
      sortLevels(levels);
      await writeManifest(this.fs, this.dir, {
        nextFileNumber: this.nextFileNumber,
        lastSeq: this.flushedSeq,
        logNumber: this.manifestLogNumber,
        tables: levels.flat().map((x) => x.meta),
        lostRanges: this.lostRanges,
      });
      const old = this.current;
      this.current = new Version(levels, (x) => this.dropTable(x));
      old.unref();
    };
    const p = this.manifestChain.then(run);
    this.manifestChain = p.catch(() => undefined);
    return p;
  }

  // ---------------------------------------------------------------- reads

  private checkOpen(): void {
    if (this.closed) throw new StorageError('ECLOSED', 'engine is closed');
  }

  get(key: Buffer, snapshot?: Snapshot): Promise<Buffer | undefined> {
    try {
      this.checkOpen();
      const seq = snapshot ? Number(snapshot.seq) : this.visibleSeq;
      const found = this.lookupSync(key, seq, true);
      if (found !== NEEDS_IO) return Promise.resolve(this.liveValue(this.trusted(key, found)));
      return this.lookup(key, seq).then((e) => this.liveValue(this.trusted(key, e)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Point read. When the memtables, bloom filters and block cache (or a synchronous block
   * read, see syncReads) can answer, the lookup runs without a single await; otherwise it
   * continues asynchronously.
   */
  getEntry(key: Buffer, snapshot?: Snapshot): Promise<Entry | undefined> {
    try {
      this.checkOpen();
      const seq = snapshot ? Number(snapshot.seq) : this.visibleSeq;
      const found = this.lookupSync(key, seq, true);
      if (found !== NEEDS_IO) return Promise.resolve(this.toEntry(key, this.trusted(key, found)));
      return this.lookup(key, seq).then((e) => this.toEntry(key, this.trusted(key, e)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** KVEngine.getSync: lookupSync at the visible sequence, the value uncopied (a view). */
  getSync(key: Buffer): Buffer | null | undefined {
    this.checkOpen();
    if (this.lostRanges.length === 0) {
      // The memtables without an entry record (Memtable.rowHashed): what lookupSync's memLookup
      // and isDeadAt below answer, from the row itself.
      const seq = this.visibleSeq;
      const hash = hashKey(key, 0, key.length);
      let mem = this.mem;
      let r = mem.rowHashed(key, hash, seq);
      for (let i = this.imms.length - 1; r < 0 && i >= 0; i--) {
        mem = this.imms[i]!;
        r = mem.rowHashed(key, hash, seq);
      }
      if (r >= 0) return mem.rowDeadAt(r, this.now()) ? null : mem.rowValue(r);
      const inTables = this.tablesLookupSync(key, seq, false);
      if (inTables === NEEDS_IO) return undefined;
      if (!inTables || isDeadAt(inTables, this.now())) return null;
      return inTables.value;
    }
    const found = this.lookupSync(key, this.visibleSeq, false);
    if (found === NEEDS_IO) return undefined;
    // A read the lost-range rule refuses: getEntry answers it (with ECORRUPT).
    if (this.lostRanges.length > 0 && lostRangeFor(this.lostRanges, key, found?.seq)) return undefined;
    if (!found || isDeadAt(found, this.now())) return null;
    return found.value;
  }

  /** found, unless a lost range (lost_ranges.ts) makes it untrustworthy: then ECORRUPT. */
  private trusted(key: Buffer, found: InternalEntry | undefined): InternalEntry | undefined {
    if (this.lostRanges.length === 0) return found;
    const lost = lostRangeFor(this.lostRanges, key, found?.seq);
    if (lost) throw new StorageError('ECORRUPT', `${this.dir}: key ${key.toString('hex')} is in a range lost by repair ${describeLostRange(lost)}; write it again or clear the lost ranges`);
    return found;
  }

  /**
   * The caller's key is returned as the entry's key (not copied: the caller owns it). The value
   * is copied: it is a view into a memtable or a cached block, which a caller must not be able
   * to change.
   */
  private toEntry(key: Buffer, found: InternalEntry | undefined): Entry | undefined {
    if (!found || isDeadAt(found, this.now())) return undefined;
    return { key, value: copyBytes(found.value), expiresAtMs: found.time };
  }

  private liveValue(found: InternalEntry | undefined): Buffer | undefined {
    if (!found || isDeadAt(found, this.now())) return undefined;
    return copyBytes(found.value);
  }

  /**
   * lookup() without awaiting, or NEEDS_IO when some table would need an async read.
   * transient: the caller copies the value before anything else runs (TableReader.getCached).
   */
  private lookupSync(key: Buffer, seq: number, transient: boolean): InternalEntry | undefined | typeof NEEDS_IO {
    const m = this.memLookup(key, seq);
    if (m) return m;
    return this.tablesLookupSync(key, seq, transient);
  }

  /** lookupSync's part below the memtables: the tables whose blocks are cached, or NEEDS_IO. */
  private tablesLookupSync(key: Buffer, seq: number, transient: boolean): InternalEntry | undefined | typeof NEEDS_IO {
    // No await below: the version cannot change under us, no pin needed.
    const version = this.current;
    let hashed: BloomKey | undefined; // once for every filter consulted
    for (const t of version.levels[0]!) {
      if (!l0MayHold(t, key, seq)) continue;
      const e = t.reader.getCached(key, seq, this.readStats, (hashed ??= new BloomKey(key)), transient);
      if (e) return e;
    }
    for (let l = 1; l < version.levels.length; l++) {
      const t = this.levelCandidate(version, l, key);
      if (!t) continue;
      const e = t.reader.getCached(key, seq, this.readStats, (hashed ??= new BloomKey(key)), transient);
      if (e) return e;
    }
    return undefined;
  }

  /** The newest memtable entry for key at seq: the active memtable, then immutables newest first. */
  private memLookup(key: Buffer, seq: number): InternalEntry | undefined {
    const hash = hashKey(key, 0, key.length);
    const m = this.mem.getHashed(key, hash, seq);
    if (m) return m;
    for (let i = this.imms.length - 1; i >= 0; i--) {
      const e = this.imms[i]!.getHashed(key, hash, seq);
      if (e) return e;
    }
    return undefined;
  }

  /** The table of level l (sorted, non-overlapping, l >= 1) whose range may hold key. */
  private levelCandidate(version: Version, l: number, key: Buffer): TableHandle | undefined {
    const t = version.levels[l]![version.keys[l]!.firstAtOrAbove(key)];
    return t && compareBytes(key, t.meta.smallestKey) >= 0 ? t : undefined;
  }

  private async lookup(key: Buffer, seq: number): Promise<InternalEntry | undefined> {
    const m = this.memLookup(key, seq);
    if (m) return m;
    const version = this.current;
    version.ref();
    const hashed = new BloomKey(key);
    try {
      // Tables newest first: L0 (overlapping, newest first), then one candidate per level.
      // A table answers from bloom filter + block cache without awaiting when it can.
      for (const t of version.levels[0]!) {
        if (!l0MayHold(t, key, seq)) continue;
        let e = t.reader.getCached(key, seq, this.readStats, hashed, false);
        if (e === NEEDS_IO) e = await t.reader.get(key, seq, this.readStats, hashed);
        if (e) return e;
      }
      for (let l = 1; l < version.levels.length; l++) {
        const t = this.levelCandidate(version, l, key);
        if (!t) continue;
        let e = t.reader.getCached(key, seq, this.readStats, hashed, false);
        if (e === NEEDS_IO) e = await t.reader.get(key, seq, this.readStats, hashed);
        if (e) return e;
      }
      return undefined;
    } finally {
      version.unref();
    }
  }

  snapshot(): Snapshot {
    this.checkOpen();
    const seq = this.visibleSeq;
    this.snapshots.set(seq, (this.snapshots.get(seq) ?? 0) + 1);
    let released = false;
    return {
      seq: BigInt(seq),
      release: () => {
        if (released) return;
        released = true;
        const n = (this.snapshots.get(seq) ?? 1) - 1;
        if (n <= 0) this.snapshots.delete(seq);
        else this.snapshots.set(seq, n);
      },
    };
  }

  range(options: RangeOptions = {}): AsyncIterableIterator<Entry> {
    this.checkOpen();
    return this.rangeGen(options);
  }

  private async *rangeGen(options: RangeOptions): AsyncGenerator<Entry> {
    const seq = options.snapshot ? Number(options.snapshot.seq) : this.visibleSeq;
    const { gte, lt } = options;
    const version = this.current;
    version.ref();
    try {
      const children: InternalIterator[] = [this.mem.iterator(gte)];
      for (const imm of this.imms) children.push(imm.iterator(gte));
      const inRange = (t: TableHandle): boolean =>
        (!gte || Buffer.compare(t.meta.largestKey, gte) >= 0) && (!lt || Buffer.compare(t.meta.smallestKey, lt) < 0);
      for (const t of version.levels[0]!) {
        if (!inRange(t)) continue;
        const it = t.reader.iterator(gte);
        await it.init();
        children.push(it);
      }
      for (let l = 1; l < version.levels.length; l++) {
        const tables = version.levels[l]!.filter(inRange);
        if (tables.length === 0) continue;
        const it = new LevelIterator(tables.map((t) => ({ reader: t.reader, largestKey: t.meta.largestKey })), gte);
        await it.init();
        children.push(it);
      }
      const limit = options.limit ?? Number.POSITIVE_INFINITY;
      const entries = mergeLive(children, { snapshotSeq: seq, lt, limit, now: this.now });
      const lostAt = this.lostRanges.length > 0 ? firstLostKeyInScan(this.lostRanges, gte, lt) : undefined;
      if (!lostAt) {
        yield* entries;
        return;
      }
      // A scan cannot tell a lost key from a missing one: stop with ECORRUPT where it enters a
      // lost range (an entry at or past its start, or the end of the scan before the limit).
      let n = 0;
      for await (const e of entries) {
        if (compareBytes(e.key, lostAt) >= 0) break;
        n++;
        yield e;
      }
      if (n < limit) throw new StorageError('ECORRUPT', `${this.dir}: range scan reached key ${lostAt.toString('hex')}, in a range lost by repair; clear the lost ranges to scan what is left`);
    } finally {
      version.unref();
    }
  }

  approximateSize(gte?: Buffer, lt?: Buffer): number {
    this.checkOpen();
    let bytes = 0;
    for (const m of [this.mem, ...this.imms]) bytes += m.countRange(gte, lt).bytes;
    for (const level of this.current.levels) for (const t of level) bytes += t.reader.estimateRange(gte, lt).bytes;
    return bytes;
  }

  approximateCount(gte?: Buffer, lt?: Buffer): number {
    this.checkOpen();
    let n = 0;
    for (const m of [this.mem, ...this.imms]) n += m.countRange(gte, lt).keys;
    for (const level of this.current.levels) for (const t of level) n += t.reader.estimateRange(gte, lt).entries;
    return n;
  }

  // ---------------------------------------------------------------- maintenance

  async flush(): Promise<void> {
    this.checkWritable();
    const ack = new Ack();
    ack.waiting = 1;
    this.pending.push({ ops: null, bytes: 0, ack });
    this.kickWriter();
    await ack.promise;
    while ((this.imms.length > 0 || this.flushRunning) && !this.failedReason) {
      this.kickFlush();
      await this.waitProgress();
    }
    if (this.failedReason) throw new StorageError('EFAILED', this.failedReason, { cause: this.failedCause });
  }

  async compactAll(): Promise<void> {
    await this.flush();
    await this.withCompactionLock(async () => {
      if (this.compactionBroken) throw new StorageError('ECORRUPT', this.compactionBroken);
      const levels = (): ManifestTable[][] => this.levelMeta();
      let deepest = 1;
      levels().forEach((l, i) => {
        if (l.length > 0) deepest = Math.max(deepest, i);
      });
      try {
        for (let level = 0; level < deepest; level++) {
          while (levels()[level]!.length > 0) {
            this.checkWritable();
            const tables = levels()[level]!;
            let inputs: ManifestTable[];
            if (level === 0) {
              inputs = [];
              let bytes = 0;
              for (let i = tables.length - 1; i >= 0; i--) {
                if (inputs.length > 0 && bytes + tables[i]!.size > COMPACTION_INPUT_BYTES_MAX) break;
                inputs.push(tables[i]!);
                bytes += tables[i]!.size;
              }
            } else {
              inputs = [tables[0]!];
            }
            await this.runCompaction(planCompaction(levels(), level, inputs, 0));
          }
        }
        // The bottom level: rewrite tables holding tombstones so expired ones are dropped.
        for (const t of levels()[deepest]!.filter((x) => x.tombstones > 0)) {
          this.checkWritable();
          await this.runCompaction({ level: deepest, outputLevel: deepest, inputs: [t], overlaps: [], bottom: true, trivialMove: false, score: 0 });
        }
      } catch (err) {
        this.compactionError(err);
        throw err;
      }
    });
    this.notify();
  }

  stats(): EngineStats {
    const levels = this.current.levels;
    let pending = 0;
    const cfg = this.pickerConfig();
    levels.forEach((l, i) => {
      const bytes = l.reduce((s, t) => s + t.meta.size, 0);
      if (i === 0 && l.length >= cfg.l0Trigger) pending += bytes;
      else if (i > 0 && i < levels.length - 1) pending += Math.max(0, bytes - cfg.levelBaseBytes * Math.pow(cfg.levelRatio, i - 1));
    });
    return {
      memtableBytes: this.mem.bytes + this.imms.reduce((s, m) => s + m.bytes, 0),
      tablesPerLevel: levels.map((l) => l.length),
      bytesPerLevel: levels.map((l) => l.reduce((s, t) => s + t.meta.size, 0)),
      userBytesWritten: this.counters.userBytesWritten,
      logBytesWritten: this.counters.logBytesWritten,
      tableBytesWritten: this.counters.tableBytesWritten,
      blockCacheBytes: this.cache.bytes,
      blockCacheHits: this.cache.hits,
      blockCacheMisses: this.cache.misses,
      blockBuffersReused: this.cache.buffersReused,
      bloomChecks: this.readStats.bloomChecks,
      bloomNegatives: this.readStats.bloomNegatives,
      flushes: this.counters.flushes,
      compactions: this.counters.compactions,
      pendingCompactionBytes: pending,
      failed: this.failedReason,
      recoveredTornBytes: this.counters.recoveredTornBytes,
      repairDroppedTables: this.counters.repairDroppedTables,
      repairSkippedLogBytes: this.counters.repairSkippedLogBytes,
      lostRanges: this.lostRanges.length,
    };
  }

  /** Whether a flush or a compaction is running now (benchmarks and metrics). */
  backgroundState(): { flushing: boolean; compacting: boolean; immutables: number } {
    return { flushing: this.flushRunning, compacting: this.compactionRunning, immutables: this.imms.length };
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.writerRunning || this.pending.length > 0) {
      this.kickWriter();
      await this.waitProgress();
    }
    await this.everysecSync;
    if (!this.failedReason && this.log.dirty) {
      try {
        await this.log.sync();
      } catch (err) {
        this.fail('commit log fsync at close failed', err);
      }
    }
    this.stopBackground = true;
    while (this.flushRunning || this.compactionRunning) await this.waitProgress();
    await this.compactionChain;
    await this.manifestChain;
    await this.log.close().catch(() => undefined);
    this.current.unref();
    await this.releaseLock?.();
  }
}

const EMPTY = Buffer.alloc(0);

/** Opens (creating if needed) the engine in options.dir and recovers it. */
export async function openEngine(options: EngineOptions): Promise<Engine> {
  const engine = new Engine(options);
  await engine.open();
  return engine;
}

export { FormatError };

/** Whether an L0 table (ranges overlap in L0) may hold a version of key visible at seq. */
function l0MayHold(t: TableHandle, key: Buffer, seq: number): boolean {
  return (
    compareBytes(key, t.meta.smallestKey) >= 0 &&
    compareBytes(key, t.meta.largestKey) <= 0 &&
    t.meta.smallestSeq <= seq
  );
}
