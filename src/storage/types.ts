/**
 * The storage engine's contract: what the server, coordinator and cluster may rely on.
 *
 * Keys and values are bytes. Keys are ordered bytewise (Buffer.compare). The server lays keys
 * out as (slot, key) so one slot range is one contiguous scan.
 *
 * Durability: a write's promise resolves only after its commit-log record is written and, with
 * `appendfsync: 'always'`, fsynced (group commit: concurrent writes share one write and one
 * fsync). With 'everysec' the log is fsynced about once a second; with 'no' never explicitly.
 * After any fsync or write error the engine is "failed": every later write rejects with
 * StorageError code 'EFAILED' (it never retries and pretends).
 */

export type FsyncPolicy = 'always' | 'everysec' | 'no';

export interface PutOptions {
  /** Absolute expiry time in ms since the epoch; the entry reads as absent from then on and
   * compaction turns it into a tombstone (dropped after the grace period). 0/undefined: none. */
  expiresAtMs?: number;
}

export type BatchOp =
  | { type: 'put'; key: Buffer; value: Buffer; expiresAtMs?: number }
  | { type: 'del'; key: Buffer };

export interface RangeOptions {
  /** Inclusive lower bound; omitted: from the first key. */
  gte?: Buffer;
  /** Exclusive upper bound; omitted: to the last key. */
  lt?: Buffer;
  /** Read from this snapshot; omitted: a snapshot taken when the iteration starts. */
  snapshot?: Snapshot;
  /** Stop after this many entries. */
  limit?: number;
}

export interface Entry {
  key: Buffer;
  value: Buffer;
  /** 0 when the entry does not expire. */
  expiresAtMs: number;
}

/** A consistent point-in-time view; release it when done so compaction may drop old versions. */
export interface Snapshot {
  readonly seq: bigint;
  release(): void;
}

export interface EngineStats {
  /** Bytes in the active and immutable memtables. */
  memtableBytes: number;
  /** Number of live tables per level (index = level). */
  tablesPerLevel: number[];
  /** Bytes of live tables per level. */
  bytesPerLevel: number[];
  /** Bytes handed to put/write by clients (keys + values). */
  userBytesWritten: number;
  /** Bytes written to the commit log. */
  logBytesWritten: number;
  /** Bytes written to tables by flushes and compactions. */
  tableBytesWritten: number;
  blockCacheBytes: number;
  blockCacheHits: number;
  blockCacheMisses: number;
  /** Block reads into the memory of an evicted block (block_cache.ts); engines without it omit it. */
  blockBuffersReused?: number;
  bloomChecks: number;
  bloomNegatives: number;
  flushes: number;
  compactions: number;
  pendingCompactionBytes: number;
  /** Set once the engine stopped accepting writes after an I/O error. */
  failed: string | null;
  /** Bytes dropped from a torn commit-log tail at the last open. */
  recoveredTornBytes: number;
  /**
   * Tables the last open with `repair` dropped (damaged, missing, or left out when the MANIFEST
   * was missing). Their key ranges are recorded as lost ranges (see lostRanges).
   */
  repairDroppedTables: number;
  /** Bytes of damaged commit-log records the last open with `repair` skipped (not a torn tail). */
  repairSkippedLogBytes: number;
  /**
   * Key ranges repair dropped and that are not cleared yet (persisted; see lost_ranges.ts):
   * reads there that might be stale answer ECORRUPT. Optional: engines without repair omit it.
   */
  lostRanges?: number;
}

export interface KVEngine {
  get(key: Buffer, snapshot?: Snapshot): Promise<Buffer | undefined>;
  /** Like get, with the entry's expiry; undefined when absent or expired. */
  getEntry(key: Buffer, snapshot?: Snapshot): Promise<Entry | undefined>;
  /**
   * Optional point read of the latest version without a promise, when memtables, bloom filters
   * and block cache (or a synchronous block read) can answer: the value, null when absent or
   * expired, undefined when the answer needs I/O (then use getEntry). The value is a read-only
   * VIEW into an immutable engine buffer (not copied; it may keep that buffer alive): copy what
   * you keep. Engines without it are read through getEntry. The engine keeps no reference to
   * `key` after the call returns (callers pass a reused scratch buffer: key_layout.ts lookupDataKey).
   */
  getSync?(key: Buffer): Buffer | null | undefined;
  put(key: Buffer, value: Buffer, options?: PutOptions): Promise<void>;
  delete(key: Buffer): Promise<void>;
  /** Applies every op or none, atomically with respect to crashes and readers. */
  write(ops: BatchOp[]): Promise<void>;
  snapshot(): Snapshot;
  /** Ordered iteration over live (not deleted, not expired) entries in [gte, lt). */
  range(options?: RangeOptions): AsyncIterableIterator<Entry>;
  /** Approximate bytes stored for keys in [gte, lt) (memtables + tables). */
  approximateSize(gte?: Buffer, lt?: Buffer): number;
  /** Approximate count of keys in [gte, lt). */
  approximateCount(gte?: Buffer, lt?: Buffer): number;
  /** Turns the memtable into a table now and waits for it. */
  flush(): Promise<void>;
  /** Compacts everything it can now and waits for it (tests and `DEBUG` use). */
  compactAll(): Promise<void>;
  stats(): EngineStats;
  /** Flushes the log (fsync), stops background work and closes files. Idempotent. */
  close(): Promise<void>;
}

export type StorageErrorCode =
  | 'EFAILED' // the engine stopped accepting writes after an I/O error
  | 'ECORRUPT' // a file failed a checksum or a format check
  | 'ECLOSED' // used after close()
  | 'ETOOLARGE' // a key or value over the configured limit
  | 'ELOCKED'; // the directory is in use by another engine

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'StorageError';
  }
}
