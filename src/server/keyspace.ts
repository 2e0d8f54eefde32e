/**
 * The node's keyspace: Redis keys stored as versioned objects (ARCHITECTURE.md sections 1, 4, 6)
 * in the storage engine, so a lone node is simply a cluster of one.
 *
 * Layout: see key_layout.ts ([namespace][slot u16][user key] -> encodeObject(object)).
 *
 * Reads decode the object and see only live siblings (values not expired at `now`).
 *
 * Writes are read-modify-write on the object, serialized per key by a KeyLock (FIFO, so two
 * writers of one key never interleave across their awaits; different keys never wait for each
 * other). A write mints a dot with this node's actor (`<nodeId>.<epoch>`, identity.ts) and
 * supersedes what its context covers: the context of the local object for plain writes (SET,
 * DEL, INCR, ...: "overwrite everything this node has seen"), the client's for SETCTX/DELCTX.
 * Deletes write tombstone siblings.
 *
 * Engine expiry (what compaction reclaims), decided by `engineExpiresAtMs`:
 *  - some value sibling has no TTL: never;
 *  - values all have TTLs: latest expiry + gc grace;
 *  - tombstones only: the newest tombstone's writtenAtMs + gc grace (the same on every replica).
 * Keeping dead objects for the grace period is what stops anti-entropy or read repair from
 * resurrecting a value from a replica that missed the delete or the overwrite (Cassandra's
 * gc_grace rule); on a lone node it only costs disk for that long.
 *
 * Counting (DBSIZE, INFO keyspace): exact and O(1) per call via LiveKeyCounter, seeded by one
 * scan of a snapshot taken at open. The scan runs in the background (open does not wait for it;
 * DBSIZE and INFO keyspace do). Writes during the scan: a key behind the scan's position was
 * counted in its snapshot state, so its write is a normal before/after delta; a key ahead of it
 * is counted by its first write's result alone and skipped when the scan reaches it (counting
 * the stale snapshot state would also track a stale TTL). So the count is exact when the scan
 * ends. If more keys carry a TTL than the counter tracks (live_count.ts, a memory bound), counts
 * come from a full scan instead, reused for DBSIZE_SCAN_CACHE_MS and adjusted by the writes made
 * meanwhile: then they may miss TTL expiries of the last few seconds (documented, approximate).
 *
 * FLUSHALL takes the keyspace exclusively: it waits for in-flight writes and holds new ones back.
 */
import assert from 'node:assert';
import * as path from 'node:path';
import {
  applyWrite,
  contextOf,
  decodeObject,
  EMPTY_OBJECT,
  encodeObject,
  isLive,
  liveSiblings,
  mergeObjects,
  objectExpiresAtMs,
  type Context,
  type Sibling,
  type VersionedObject,
  type WriteOptions,
} from '../coordinator/object.js';
import { reportsChanges } from '../config/config.js';
import { MAX_CLOCK_ENTRIES, MAX_SIBLINGS_LIMIT, MAX_TIME_MS } from '../coordinator/limits.js';
import { plainMergeResult } from '../coordinator/object_plain_merge.js';
import { plainValueView, plainWriteBytes, type PlainWriteResult } from '../coordinator/object_plain_write.js';
import { sameObject } from '../coordinator/object_same.js';
import { openEngine } from '../storage/engine.js';
import { nodeFileSystem, type FileSystem } from '../storage/fs.js';
import { KEY_BYTES_HARD_MAX, VALUE_BYTES_HARD_MAX } from '../storage/limits.js';
import { COPY_THRESHOLD_BYTES } from '../resp/encoder.js';
import { StorageError, type BatchOp, type EngineStats, type Entry, type FsyncPolicy, type KVEngine, type Snapshot } from '../storage/types.js';
import { loadIdentity, markStopped, type Identity } from './identity.js';
import { DATA_KEY_PREFIX_BYTES, dataBounds, dataKey, dataKeyOfRange, keyArgName, keyRangeName, lookupDataKey, lookupDataKeyOfRange, slotOf, slotRangeBounds, SLOT_COUNT, userKeyOf } from './key_layout.js';
import { KeyLock, type Release } from './key_lock.js';
import { PutBatch, QueuedPut, type WriteListener } from './put_batch.js';
import { DEAD, LiveKeyCounter, type Liveness } from './live_count.js';
import type { LogFn } from './logger.js';
import { cursorAt, cursorLowerBound } from './scan_cursor.js';
import type { ConfigView } from './types.js';
import type { WriteObserver } from './write_observer.js';

/** Subdirectory of `dir` holding the storage engine's files. */
export const ENGINE_DIR_NAME = 'engine';
/** How long a scan-based count (used only when the counter is inexact) is reused. */
export const DBSIZE_SCAN_CACHE_MS = 5000;
/** Keys deleted per engine batch by FLUSHALL. */
export const FLUSH_BATCH_KEYS = 1000;
/** RANDOMKEY picks uniformly among up to this many live keys found from a random slot. */
export const RANDOMKEY_SAMPLE_KEYS = 16;

/** Largest engine batch writeValue builds from the puts of one synchronous stretch (key + value bytes). */
export const WRITE_BATCH_BYTES_MAX = 256 * 1024;
/**
 * A writeValue batch with this many puts when the stretch that opened it ends is committed then;
 * a smaller one waits for the end of the event loop's phase (Keyspace#endOfStretch).
 */
export const BATCH_PUTS_COMMIT_NOW = 8;

/**
 * GET (valuesSync) answers with a view of the engine's value below this size: the encoder copies
 * such a reply into its slab; from COPY_THRESHOLD_BYTES on it passes the Buffer to the socket.
 */
export const VALUE_VIEW_MAX_BYTES = COPY_THRESHOLD_BYTES;

/**
 * What a coordinated write stored (Keyspace.writeStored): the bytes, to fan out to the other
 * replicas as they are, and when the write is durable.
 */
export interface StoredWrite {
  /** The stored encoding (encodeObject's canonical bytes of the object). Never to be written into. */
  readonly bytes: Buffer;
  /**
   * Resolves once the write is durable here; rejects with the Keyspace's typed error (TOOLARGE,
   * ...) when it failed. Shared by the writes of one engine batch (see #batchPut).
   */
  readonly settled: Promise<void>;
}

/**
 * One incoming object of mergeObjectsBatch: `object`, or only `encoded` (then it must decode:
 * the caller checked it, e.g. with object_plain_write.ts isPlainObjectBytes), or both (`encoded`
 * is what `object` was decoded from).
 */
export type MergeEntry =
  | { readonly key: Buffer; readonly object: VersionedObject; readonly encoded?: Buffer }
  | { readonly key: Buffer; readonly object?: undefined; readonly encoded: Buffer };

/** Liveness of a key holding a value with no expiry: the usual state before and after a SET. */
/** The config keys of the write limits the keyspace keeps (#readLimits). */
const LIMIT_KEYS: ReadonlySet<string> = new Set(['max-key-bytes', 'max-value-bytes', 'gc-grace-seconds']);

const LIVE_NO_EXPIRY: Liveness = Object.freeze({ live: true, expiresAtMs: 0 });

/** The liveness of a key holding a value that expires at `expiresAtMs` (0: never). */
function liveUntil(expiresAtMs: number): Liveness {
  return expiresAtMs === 0 ? LIVE_NO_EXPIRY : { live: true, expiresAtMs };
}

export type KeyspaceErrorCode = 'TOOLARGE' | 'CORRUPT' | 'CLOSED';

/**
 * An operating error a command turns into an error reply. `message` is the whole reply line,
 * starting with its Redis-style prefix (`TOOLARGE ...`).
 */
export class KeyspaceError extends Error {
  readonly code: KeyspaceErrorCode;
  constructor(code: KeyspaceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'KeyspaceError';
  }
}

/** What a key looks like at one instant. */
export interface KeyView {
  readonly object: VersionedObject;
  /** Live siblings (values not expired), canonical order. */
  readonly live: readonly Sibling[];
  /** Live values, canonical order (the GET order). */
  readonly values: readonly Buffer[];
  /** When the key as a whole expires (latest live expiry); 0: never (or not live). */
  readonly expiresAtMs: number;
}

/** A write a read-modify-write callback asks for. */
export interface WriteRequest {
  /** null writes a tombstone. */
  readonly value: Buffer | null;
  /** Absolute ms; 0: no expiry. */
  readonly expiresAtMs: number;
  /** Supersede exactly this context; default: everything the local object has seen. */
  readonly context?: Context;
}

export interface Mutation<T> {
  readonly result: T;
  readonly write?: WriteRequest;
}

export interface KeyspaceOpenOptions {
  dir: string;
  config: ConfigView;
  now: () => number;
  log: LogFn;
  fs?: FileSystem;
  /** Test seam: the engine to use instead of the LSM in `<dir>/engine`. */
  engine?: KVEngine;
  /** Cap on keys with a TTL tracked by the exact counter (live_count.ts). */
  maxTrackedExpiringKeys?: number;
}

export interface ScanResult {
  readonly cursor: bigint;
  readonly keys: Buffer[];
}

export class Keyspace {
  readonly identity: Identity;
  readonly #engine: KVEngine;
  readonly #config: ConfigView;
  readonly #now: () => number;
  readonly #log: LogFn;
  readonly #locks = new KeyLock();
  readonly #counter: LiveKeyCounter;
  /** Writes in flight (between lock acquisition and release); FLUSHALL waits for 0. */
  #inflight = 0;
  #drained: (() => void) | undefined;
  /** Set while FLUSHALL runs: new writes wait for it. */
  #barrier: Promise<void> | undefined;
  #closed = false;
  readonly #dir: string;
  readonly #fs: FileSystem;
  #scanCount: { atMs: number; keys: number; expires: number } | undefined;
  /** Settles when the initial count of the stored data is done. */
  #countReady: Promise<void> = Promise.resolve();
  /** While the initial count runs: the last engine key it counted, and keys written ahead of it. */
  #countPosition: Buffer | undefined;
  #writtenAhead: Set<string> | undefined;
  /** writeValue puts waiting for the end of this synchronous stretch (see #batchPut). */
  #putBatch: PutBatch | undefined;
  /** Told about every data write (write_observer.ts): anti-entropy's Merkle leaves. */
  #observer: WriteObserver | undefined;
  #actorBytes: Buffer | undefined;
  /** #writeNow's argument to plainWriteBytes, reused (it keeps no reference to it). */
  readonly #plainWrite: { value: Buffer | null; writtenAtMs: number; expiresAtMs: number } = { value: null, writtenAtMs: 0, expiresAtMs: 0 };
  /**
   * The write limits every write reads (max-key-bytes clamped to the engine's cap,
   * max-value-bytes, gc-grace-seconds in ms), copied from the config by #readLimits. Kept while
   * #limitsCurrent: a config that reports its changes (Config.onChange) clears it when one of
   * LIMIT_KEYS changes, so CONFIG SET applies to the next write; any other config is read on
   * every call. (Three config lookups per SET were ~1.5% of a pipelined SET's CPU.)
   */
  #maxKeyBytes = 0;
  #maxValueBytes = 0;
  #graceMsValue = 0;
  #limitsCurrent = false;
  readonly #watchesConfig: boolean;
  readonly #unwatchConfig: (() => void) | undefined;

  private constructor(identity: Identity, engine: KVEngine, options: KeyspaceOpenOptions, fs: FileSystem) {
    this.identity = identity;
    this.#dir = options.dir;
    this.#fs = fs;
    this.#engine = engine;
    this.#config = options.config;
    this.#now = options.now;
    this.#log = options.log;
    this.#counter = new LiveKeyCounter(options.maxTrackedExpiringKeys);
    const config = options.config;
    this.#watchesConfig = reportsChanges(config);
    this.#unwatchConfig = reportsChanges(config)
      ? config.onChange((key) => {
          if (LIMIT_KEYS.has(key)) this.#limitsCurrent = false;
        })
      : undefined;
  }

  static async open(options: KeyspaceOpenOptions): Promise<Keyspace> {
    const fs = options.fs ?? nodeFileSystem;
    const engineDir = path.join(options.dir, ENGINE_DIR_NAME);
    await fs.mkdir(options.dir);
    const dataPresent = options.engine !== undefined || (await fs.exists(engineDir));
    const config = options.config;
    // The engine first: its directory lock keeps a second process off this data (and off the
    // identity file, which records that a process runs with it).
    const engine =
      options.engine ??
      (await openEngine({
        dir: engineDir,
        appendfsync: config.getString('appendfsync') as FsyncPolicy,
        memtableBytes: config.getNumber('memtable-bytes'),
        blockCacheBytes: config.getNumber('block-cache-bytes'),
        bloomBitsPerKey: config.getNumber('bloom-bits-per-key'),
        tombstoneGraceMs: config.getNumber('gc-grace-seconds') * 1000,
        // The engine's hard caps: keys are checked against max-key-bytes here, and an object
        // holds up to max-siblings values, so its bytes may exceed max-value-bytes.
        maxKeyBytes: KEY_BYTES_HARD_MAX,
        maxValueBytes: VALUE_BYTES_HARD_MAX,
        now: options.now,
        log: options.log,
      }));
    // Storage repair may have dropped tables or log records: the local objects may have gone
    // backwards, so minting dots from them would reuse counters (KV679) exactly as after a crash.
    const st = engine.stats();
    const dataLoss =
      st.repairDroppedTables > 0 || st.repairSkippedLogBytes > 0
        ? `storage repair dropped ${st.repairDroppedTables} tables and ${st.repairSkippedLogBytes} log bytes`
        : undefined;
    let identity: Identity;
    try {
      identity = await loadIdentity({ dir: options.dir, dataPresent, dataLoss, nowMs: options.now(), fs, log: (level, msg) => options.log(level, msg) });
    } catch (err) {
      await engine.close();
      throw err;
    }
    const ks = new Keyspace(identity, engine, options, fs);
    ks.#startCounting();
    return ks;
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }

  /** The actor name this node mints dots with. */
  get actor(): string {
    return this.identity.actor;
  }

  /** Keys whose write lock is held or awaited right now (tests, stats). */
  get lockedKeys(): number {
    return this.#locks.heldKeys;
  }

  get engine(): KVEngine {
    return this.#engine;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatchConfig?.();
    await this.#countReady;
    await this.#waitDrained();
    await this.#engine.close();
    // Only after everything is durable: the next open may keep this actor epoch.
    await markStopped(this.#dir, this.identity, this.#fs);
  }

  engineStats(): EngineStats {
    return this.#engine.stats();
  }

  /** Installs (or removes) the observer of data writes; see write_observer.ts for the contract. */
  setWriteObserver(observer: WriteObserver | undefined): void {
    this.#observer = observer;
  }

  // ---- limits and options ------------------------------------------------------------------

  /** Throws TOOLARGE for a key (or key length) over max-key-bytes. */
  checkKey(key: Buffer | number): void {
    const length = typeof key === 'number' ? key : key.length;
    if (!this.#limitsCurrent) this.#readLimits();
    const max = this.#maxKeyBytes;
    if (length > max) {
      throw new KeyspaceError('TOOLARGE', `TOOLARGE key is ${length} bytes, over max-key-bytes (${max})`);
    }
  }

  checkValue(value: Buffer | number): void {
    const length = typeof value === 'number' ? value : value.length;
    if (!this.#limitsCurrent) this.#readLimits();
    const max = this.#maxValueBytes;
    if (length > max) {
      throw new KeyspaceError('TOOLARGE', `TOOLARGE value is ${length} bytes, over max-value-bytes (${max})`);
    }
  }

  /** Write options from the running config, clamped to what the object model supports. */
  writeOptions(): WriteOptions {
    const policy = this.#config.getString('conflict-policy');
    return {
      maxSiblings: Math.min(this.#config.getNumber('max-siblings'), MAX_SIBLINGS_LIMIT),
      conflictPolicy: policy === 'lww' ? 'lww' : 'siblings',
      vclockMaxEntries: Math.min(this.#config.getNumber('vclock-max-entries'), MAX_CLOCK_ENTRIES),
      localActor: this.actor,
    };
  }

  #graceMs(): number {
    if (!this.#limitsCurrent) this.#readLimits();
    return this.#graceMsValue;
  }

  #readLimits(): void {
    const config = this.#config;
    this.#maxKeyBytes = Math.min(config.getNumber('max-key-bytes'), KEY_BYTES_HARD_MAX - DATA_KEY_PREFIX_BYTES);
    this.#maxValueBytes = config.getNumber('max-value-bytes');
    this.#graceMsValue = config.getNumber('gc-grace-seconds') * 1000;
    this.#limitsCurrent = this.#watchesConfig;
  }

  // ---- reads -------------------------------------------------------------------------------

  /** The stored object (EMPTY_OBJECT when absent), dead siblings included. */
  readObject(key: Buffer): Promise<VersionedObject> {
    return this.#engine.getEntry(dataKey(key)).then((e) => this.#decode(key, e?.value));
  }

  /** The key's live state at now (or `nowMs`). One promise: this is every GET. */
  view(key: Buffer, nowMs: number = this.#now()): Promise<KeyView> {
    return this.#engine.getEntry(dataKey(key)).then((e) => viewOf(this.#decode(key, e?.value), nowMs));
  }

  /**
   * view() without a promise, when the engine can answer from memory (memtables, bloom filters,
   * block cache: KVEngine.getSync); undefined when the read needs I/O (then call view()). Reads
   * the same committed state as view(). This is every GET of a hot key.
   */
  viewSync(key: Buffer, nowMs: number = this.#now()): KeyView | undefined {
    const stored = this.#engine.getSync?.(lookupDataKey(key));
    if (stored === undefined) return undefined;
    return viewOf(this.#decode(key, stored ?? undefined), nowMs);
  }

  /**
   * viewSync(key).values (GET's answer) without building the view: this node's own one-sibling
   * objects (object_plain_write.ts plainValueView) give their value without being decoded; any
   * other object is decoded as viewSync does. READ-ONLY: a value below
   * VALUE_VIEW_MAX_BYTES may be a view of the engine's immutable memory (getSync), which the
   * reply encoder copies into its slab; a larger one is copied here, since the encoder hands it
   * to the socket as it is and a slow client would otherwise pin the engine buffer behind it.
   * undefined when the read needs I/O (then call view()).
   */
  valuesSync(key: Buffer, nowMs: number = this.#now()): readonly Buffer[] | undefined {
    const stored = this.#engine.getSync?.(lookupDataKey(key));
    if (stored === undefined) return undefined;
    if (stored === null) return NO_VALUES;
    const value = plainValueView(stored, this.#actorUtf8(), nowMs);
    if (value === null) return NO_VALUES;
    if (value !== undefined) return [value.length < VALUE_VIEW_MAX_BYTES ? value : Buffer.from(value)];
    return viewOf(this.#decode(key, stored), nowMs).values;
  }

  /**
   * valuesSync of the key buf[start, end) (a request's key as offsets, RawCommand): the same
   * answer, with no Buffer made for the key.
   */
  valuesSyncOfRange(buf: Buffer, start: number, end: number, nowMs: number = this.#now()): readonly Buffer[] | undefined {
    const stored = this.#engine.getSync?.(lookupDataKeyOfRange(buf, start, end));
    if (stored === undefined) return undefined;
    if (stored === null) return NO_VALUES;
    const value = plainValueView(stored, this.#actorUtf8(), nowMs);
    if (value === null) return NO_VALUES;
    if (value !== undefined) return [value.length < VALUE_VIEW_MAX_BYTES ? value : Buffer.from(value)];
    return viewOf(this.#decode(buf.subarray(start, end), stored), nowMs).values;
  }

  // ---- writes ------------------------------------------------------------------------------

  /**
   * writeObject for the plain SET: the same write (supersedes everything this node has seen,
   * under the key's lock, counted and observed the same way) with no async frame on the hot
   * path: when the key's lock is free and the engine answers the read from memory, the read,
   * the merge and the engine write are issued synchronously, and the promise returned is the
   * one of the whole batch of puts this one joins (see #batchPut): no promise, closure or
   * continuation of its own. Otherwise it is writeObject. Throws synchronously for a key or
   * value over the limits (TOOLARGE).
   */
  writeValue(key: Buffer, w: WriteRequest): Promise<void> {
    const put = this.#writeNow(key, 0, key.length, w.value, w.expiresAtMs, w.context);
    return put === undefined ? this.writeObject(key, w).then(ignore) : put.settled;
  }

  /**
   * writeValue's fast path for a plain `SET key value` (no expiry) whose key is the bytes
   * buf[start, end) of a request (RawCommand), told by callback: `listenerOf(batch)` (called with
   * the batch the put joined) is listened to on the batch and no promise is made (put_batch.ts).
   * Returns the batch, or undefined when the fast path does not apply (nothing done: call
   * writeValue with the key as a Buffer). `listenerOf` returns undefined when its listener is on
   * that batch already (the SETs of one batch share one). Throws TOOLARGE as writeValue does.
   */
  writePlainOfRangeTo(buf: Buffer, start: number, end: number, value: Buffer, listenerOf: (batch: PutBatch) => WriteListener | undefined): PutBatch | undefined {
    const put = this.#writeNow(buf, start, end, value, 0, undefined);
    if (put === undefined) return undefined;
    const listener = listenerOf(put.batch);
    if (listener !== undefined) put.batch.listen(listener);
    return put.batch;
  }

  /**
   * writeObject for a coordinated write (LocalReplica.coordinateWrite): the same write, done as
   * writeValue does it (batched with the other puts of this synchronous stretch, the usual shape
   * rewritten on its bytes), handing back the bytes it stores instead of the object: a
   * coordinator fans those bytes out as they are, with no decode or encode. Synchronous (the
   * bytes and the batch's promise) when writeValue's fast path applies; otherwise a promise of the
   * same, settled once the write is durable. Throws synchronously for a key or value over the
   * limits (TOOLARGE), as writeValue does.
   */
  writeStored(key: Buffer, w: WriteRequest): StoredWrite | Promise<StoredWrite> {
    return this.#writeNow(key, 0, key.length, w.value, w.expiresAtMs, w.context) ?? this.mutateStored(key, () => ({ result: undefined, write: w })).then(storedWriteOf);
  }

  /**
   * writeValue's fast path: the put queued in this stretch's batch (its lock held until the batch
   * settles), or undefined when the key's lock is taken or the read needs I/O (nothing done: the
   * caller takes the general path, writeObject / mutateStored).
   */
  #writeNow(
    keyBuf: Buffer,
    keyStart: number,
    keyEnd: number,
    value: Buffer | null,
    valueExpiresAtMs: number,
    context: Context | undefined,
  ): QueuedPut | undefined {
    this.checkKey(keyEnd - keyStart);
    const whole = keyStart === 0 && keyEnd === keyBuf.length;
    const ek = whole ? dataKey(keyBuf) : dataKeyOfRange(keyBuf, keyStart, keyEnd);
    const lockName = whole ? keyArgName(keyBuf) : keyRangeName(keyBuf, keyStart, keyEnd);
    if (!this.#tryTake(lockName)) return undefined;
    let old: Buffer | null | undefined;
    let bytes: Buffer;
    let expiresAtMs: number;
    let beforeLive: Liveness;
    let afterLive: Liveness;
    const now = this.#now();
    try {
      old = this.#engine.getSync?.(ek);
      if (old === undefined) {
        this.#give(lockName);
        return undefined;
      }
      if (value !== null) this.checkValue(value);
      // The usual shape (this node's own object, one sibling) is rewritten on its bytes
      // (object_plain_write.ts: the same bytes as decode + applyWrite + encode); any other
      // shape, an explicit context, or a corrupt object takes the general path.
      let fast: PlainWriteResult | undefined;
      if (context === undefined) {
        const pw = this.#plainWrite;
        pw.value = value;
        pw.writtenAtMs = now;
        pw.expiresAtMs = valueExpiresAtMs;
        fast = plainWriteBytes(old ?? undefined, this.#actorUtf8(), pw);
        pw.value = null;
      }
      if (fast !== undefined) {
        bytes = fast.bytes;
        beforeLive = fast.beforeLive ? liveUntil(fast.beforeExpiresAtMs) : DEAD;
        afterLive = value !== null && (valueExpiresAtMs === 0 || now <= valueExpiresAtMs) ? liveUntil(valueExpiresAtMs) : DEAD;
        expiresAtMs = plainEngineExpiresAtMs(value !== null, now, valueExpiresAtMs, this.#graceMs());
      } else {
        const before = this.#decode(whole ? keyBuf : keyBuf.subarray(keyStart, keyEnd), old ?? undefined);
        beforeLive = objectLiveness(before, now);
        const next = this.#applyWrite(before, context === undefined ? { value, expiresAtMs: valueExpiresAtMs } : { value, expiresAtMs: valueExpiresAtMs, context }, now);
        afterLive = objectLiveness(next, now);
        bytes = encodeObject(next);
        expiresAtMs = engineExpiresAtMs(next, now, this.#graceMs());
      }
    } catch (err) {
      this.#give(lockName);
      throw err;
    }
    this.#observer?.willWrite(ek);
    return this.#batchPut(ek, lockName, old ?? undefined, bytes, expiresAtMs, beforeLive, afterLive, now);
  }

  /** The actor's UTF-8 bytes, encoded once (the actor is fixed for the life of the keyspace). */
  #actorUtf8(): Buffer {
    if (this.#actorBytes === undefined) this.#actorBytes = Buffer.from(this.actor, 'utf8');
    return this.#actorBytes;
  }

  /**
   * Queues one put of writeValue for the engine and returns it, carrying its batch's promise.
   * Puts queued in one synchronous stretch (the SETs of a pipelined batch), or in one phase of
   * the event loop when each stretch brings only a few (one SET per read at -P 1: see
   * #endOfStretch), go to the engine as ONE write: one pending entry, one settlement and one log
   * record instead of one each per SET. A batch only joins puts on different keys (each holds its key's lock until
   * settled), so it changes no per-key order; the engine applies a batch atomically, so its puts
   * succeed or fail together, and no put in it can be refused alone: keys are within
   * max-key-bytes and a put over WRITE_BATCH_BYTES_MAX (far below the engine's value cap) is a
   * batch by itself.
   */
  #batchPut(
    ek: Buffer,
    lockName: string,
    replaced: Buffer | undefined,
    bytes: Buffer,
    expiresAtMs: number,
    before: Liveness,
    after: Liveness,
    nowMs: number,
  ): QueuedPut {
    const size = ek.length + bytes.length;
    const alone = size > WRITE_BATCH_BYTES_MAX;
    const batch = alone ? new PutBatch() : this.#openBatch(size);
    const put = new QueuedPut(ek, bytes, expiresAtMs, lockName, replaced, before, after, nowMs, batch);
    batch.add(put, size);
    if (alone) this.#settleWhen(this.#engine.put(ek, bytes, { expiresAtMs }), batch);
    return put;
  }

  /** The batch of this stretch with room for `size` more bytes (a full one is committed first). */
  #openBatch(size: number): PutBatch {
    let batch = this.#putBatch;
    if (batch !== undefined && batch.bytes + size > WRITE_BATCH_BYTES_MAX) {
      this.#commitPutBatch();
      batch = undefined;
    }
    if (batch === undefined) {
      batch = new PutBatch();
      this.#putBatch = batch;
      // Looked at once the synchronous stretch that opened it ended (a microtask never runs
      // inside one; a batch opened later in the stretch is that stretch's too). A reaction on
      // a settled promise, not queueMicrotask: Node makes an AsyncResource and a bound function
      // for every queueMicrotask call (~85 B per SET in the sampling heap profile).
      void SETTLED.then(this.#endOfStretch);
    }
    return batch;
  }

  /**
   * The stretch that opened the open batch ended. A batch of a pipeline (BATCH_PUTS_COMMIT_NOW
   * puts or more) is committed now. A smaller one (a read of one SET: -P 1) stays open until
   * the event loop's current phase ended (setImmediate): the other clients' reads of that poll
   * phase join it, so one engine write, log record and settlement serve them all instead of one
   * each (the engine's writer groups their log appends anyway, not the work per write before
   * them). The commit still runs in the loop turn of the reads (the check phase follows the
   * poll phase): a reply waits for that phase's other reads only.
   */
  readonly #endOfStretch = (): void => {
    const batch = this.#putBatch;
    if (batch === undefined) return;
    if (batch.puts.length >= BATCH_PUTS_COMMIT_NOW) this.#commitPutBatch();
    else setImmediate(this.#commitOpenBatch);
  };

  /** #commitPutBatch as one function for every batch's setImmediate. */
  readonly #commitOpenBatch = (): void => this.#commitPutBatch();

  #commitPutBatch(): void {
    const batch = this.#putBatch;
    if (batch === undefined) return;
    this.#putBatch = undefined;
    this.#settleWhen(this.#engine.write(batch.puts), batch);
  }

  /** Settles every put of `batch`, then the batch's promise, once `write` settled. */
  #settleWhen(write: Promise<void>, batch: PutBatch): void {
    const settle = (err?: unknown): void => {
      for (const put of batch.puts) {
        try {
          this.#settlePut(put, err === undefined);
        } catch (e) {
          this.#log('error', `keyspace: write completion failed: ${String(e)}`);
        }
      }
      batch.settle(err === undefined ? undefined : storeError(err), this.#onListenerError);
    };
    write.then(() => settle(), settle);
  }

  /** PutBatch.settle's handler of a listener's throw (a bug: listeners answer errors themselves). */
  readonly #onListenerError = (err: unknown): void => this.#log('error', `keyspace: write listener failed: ${String(err)}`);

  /** A queued put's write settled: tell the observer, count it (when stored), free its key. */
  #settlePut(put: QueuedPut, ok: boolean): void {
    try {
      this.#observer?.didWrite(put.key, put.replaced, put.value, put.expiresAtMs, ok);
      if (ok) this.#counted(put.key, put.before, put.after, put.nowMs);
    } finally {
      this.#give(put.lockName);
    }
  }

  /**
   * Read-modify-write of one key under its lock. `fn` sees the key's view at `now` and may ask
   * for a write; it must not await (the decision is made on what was read).
   */
  async mutate<T>(key: Buffer, fn: (view: KeyView, nowMs: number) => Mutation<T>): Promise<T> {
    return (await this.mutateStored(key, fn)).result;
  }

  /**
   * Like mutate, and also returns the object the write stored and its stored bytes (undefined
   * when `fn` asked for no write).
   */
  async mutateStored<T>(
    key: Buffer,
    fn: (view: KeyView, nowMs: number) => Mutation<T>,
  ): Promise<{ result: T; stored: VersionedObject | undefined; bytes: Buffer | undefined }> {
    this.checkKey(key);
    // Hot path (every SET): an uncontended key is locked without a promise turn.
    const release = this.#tryEnter(key) ?? (await this.#enter([key]));
    try {
      const now = this.#now();
      const ek = dataKey(key);
      // Memory first (no promise turn), the engine's async read only when that needs I/O.
      const inMemory = this.#engine.getSync?.(ek);
      const old = inMemory === undefined ? (await this.#engine.getEntry(ek))?.value : (inMemory ?? undefined);
      const before = viewOf(this.#decode(key, old), now);
      const m = fn(before, now);
      if (m.write === undefined) return { result: m.result, stored: undefined, bytes: undefined };
      const next = this.#applyWrite(before.object, m.write, now);
      const bytes = encodeObject(next);
      const expiresAtMs = engineExpiresAtMs(next, now, this.#graceMs());
      const obs = this.#observer;
      obs?.willWrite(ek);
      let ok = false;
      try {
        await this.#engine.put(ek, bytes, { expiresAtMs });
        ok = true;
      } catch (err) {
        throw storeError(err);
      } finally {
        obs?.didWrite(ek, old, bytes, expiresAtMs, ok);
      }
      this.#counted(ek, livenessOf(before), objectLiveness(next, now), now);
      return { result: m.result, stored: next, bytes };
    } finally {
      release();
    }
  }

  /** An unconditional write (a coordinated SET/DEL/SETCTX); returns the stored object. */
  async writeObject(key: Buffer, w: WriteRequest): Promise<VersionedObject> {
    const { stored } = await this.mutateStored(key, () => ({ result: undefined, write: w }));
    assert(stored !== undefined, 'a write stores an object');
    return stored;
  }

  /**
   * One atomic engine write of `ops` with the write observer told around it (willWrite before,
   * didWrite after with `replaced[j]`, the stored bytes op j replaces, and whether it landed).
   */
  async #writeObserved(ops: { type: 'put'; key: Buffer; value: Buffer; expiresAtMs: number }[], replaced: readonly (Buffer | undefined)[]): Promise<void> {
    const obs = this.#observer;
    for (const op of ops) obs?.willWrite(op.key);
    let ok = false;
    try {
      await this.#store(() => this.#engine.write(ops));
      ok = true;
    } finally {
      if (obs !== undefined) for (const [j, op] of ops.entries()) obs.didWrite(op.key, replaced[j], op.value, op.expiresAtMs, ok);
    }
  }

  /**
   * Read-modify-write of several keys at once, atomically on this node: one lock set (sorted,
   * no deadlock) and one engine batch. `fn` gets the views in the order of `keys` (a repeated
   * key gets the same view) and returns at most one write per distinct key.
   */
  async mutateMany<T>(
    keys: readonly Buffer[],
    fn: (views: readonly KeyView[], nowMs: number) => { result: T; writes: ReadonlyMap<number, WriteRequest> },
  ): Promise<T> {
    for (const k of keys) this.checkKey(k);
    const release = await this.#enter(keys);
    try {
      const now = this.#now();
      const eks = keys.map((k) => dataKey(k));
      const olds = await Promise.all(eks.map((ek) => this.#engine.get(ek)));
      const views = keys.map((k, i) => viewOf(this.#decode(k, olds[i]), now));
      const { result, writes } = fn(views, now);
      if (writes.size > 0) {
        const ops: { type: 'put'; key: Buffer; value: Buffer; expiresAtMs: number }[] = [];
        const changes: [Buffer, Liveness, Liveness][] = [];
        const replaced: (Buffer | undefined)[] = [];
        const seen = new Set<string>();
        for (const [i, w] of writes) {
          const ek = eks[i];
          const before = views[i];
          assert(ek !== undefined && before !== undefined, 'write index out of range');
          const name = ek.toString('latin1');
          assert(!seen.has(name), 'two writes for one key in a batch');
          seen.add(name);
          const next = this.#applyWrite(before.object, w, now);
          ops.push({ type: 'put', key: ek, value: encodeObject(next), expiresAtMs: engineExpiresAtMs(next, now, this.#graceMs()) });
          changes.push([ek, livenessOf(before), objectLiveness(next, now)]);
          replaced.push(olds[i]);
        }
        await this.#writeObserved(ops, replaced);
        for (const [ek, b, a] of changes) this.#counted(ek, b, a, now);
      }
      return result;
    } finally {
      release();
    }
  }

  /**
   * Merges an object received from another replica (replica sync, read repair, handoff) into
   * the local one and stores the result; returns what is stored.
   */
  async mergeObject(key: Buffer, incoming: VersionedObject): Promise<VersionedObject> {
    this.checkKey(key);
    const release = await this.#enter([key]);
    try {
      const now = this.#now();
      const ek = dataKey(key);
      const old = await this.#engine.get(ek);
      const before = this.#decode(key, old);
      const next = mergeObjects(before, incoming, this.writeOptions());
      if (next.siblings.length === 0 && next.clock.size === 0) return next;
      const bytes = encodeObject(next);
      const expiresAtMs = engineExpiresAtMs(next, now, this.#graceMs());
      const obs = this.#observer;
      obs?.willWrite(ek);
      let ok = false;
      try {
        await this.#store(() => this.#engine.put(ek, bytes, { expiresAtMs }));
        ok = true;
      } finally {
        obs?.didWrite(ek, old, bytes, expiresAtMs, ok);
      }
      this.#counted(ek, objectLiveness(before, now), objectLiveness(next, now), now);
      return next;
    } finally {
      release();
    }
  }

  /**
   * mergeObject for many keys at once (slot streaming, cluster/stream_merge.ts): one lock set
   * (sorted, so no deadlock with other multi-key writers), reads from memory where the engine
   * can answer (getSync) and the engine's read otherwise, one atomic engine batch. Per key the
   * stored result is exactly mergeObject's: a client write to a key of the batch waits for the
   * key's lock, so it is applied before or after the merge and never lost. A key whose merged
   * encoding equals what is stored is not rewritten (a chunk streamed again after a resume).
   * Several objects for one key are merged together first. `encoded`, when given, is an
   * encoding of `object` as received (it decoded to `object`): when the merge leaves the object
   * as it came (the key was absent here, a joiner's usual case) those bytes are stored as they
   * are instead of encoding the object again. Returns the keys rewritten.
   */
  async mergeObjectsBatch(entries: readonly MergeEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    for (const e of entries) this.checkKey(e.key);
    const fast = this.#mergeBatchNow(entries);
    if (fast !== undefined) return fast;
    // Distinct keys in arrival order, several objects for one key merged into one first.
    const opts = this.writeOptions();
    const byName = new Map<string, { key: Buffer; ek: Buffer; incoming: VersionedObject; encoded: Buffer | undefined }>();
    for (const e of entries) {
      const name = e.key.toString('latin1');
      const seen = byName.get(name);
      const object = e.object ?? decodeObject(e.encoded as Buffer);
      if (seen === undefined) byName.set(name, { key: e.key, ek: dataKey(e.key), incoming: object, encoded: e.encoded });
      else {
        seen.incoming = mergeObjects(seen.incoming, object, opts);
        seen.encoded = undefined;
      }
    }
    const items = [...byName.values()];
    const release = await this.#enter(items.map((x) => x.key));
    try {
      const now = this.#now();
      const grace = this.#graceMs();
      const olds: (Buffer | undefined)[] = new Array<Buffer | undefined>(items.length);
      const misses: number[] = [];
      for (const [i, x] of items.entries()) {
        const inMemory = this.#engine.getSync?.(x.ek);
        if (inMemory === undefined) misses.push(i);
        else olds[i] = inMemory ?? undefined;
      }
      await Promise.all(misses.map(async (i) => (olds[i] = await this.#engine.get((items[i] as (typeof items)[number]).ek))));
      const ops: { type: 'put'; key: Buffer; value: Buffer; expiresAtMs: number }[] = [];
      const changes: { ek: Buffer; old: Buffer | undefined; before: Liveness; after: Liveness }[] = [];
      for (const [i, x] of items.entries()) {
        const old = olds[i];
        const before = this.#decode(x.key, old);
        const next = mergeObjects(before, x.incoming, opts);
        if (next.siblings.length === 0 && next.clock.size === 0) continue;
        const bytes = x.encoded !== undefined && sameObject(next, x.incoming) ? x.encoded : encodeObject(next);
        if (old !== undefined && old.equals(bytes)) continue;
        ops.push({ type: 'put', key: x.ek, value: bytes, expiresAtMs: engineExpiresAtMs(next, now, grace) });
        changes.push({ ek: x.ek, old, before: objectLiveness(before, now), after: objectLiveness(next, now) });
      }
      if (ops.length === 0) return 0;
      await this.#writeObserved(ops, changes.map((c) => c.old));
      for (const c of changes) this.#counted(c.ek, c.before, c.after, now);
      return ops.length;
    } finally {
      release();
    }
  }

  /**
   * mergeObjectsBatch without decoding, merging or awaiting a lock, for a batch of the usual
   * replica puts (object_plain_merge.ts: each incoming object supersedes what is stored, so the
   * merge stores the incoming bytes as they are, exactly what the general path stores): the
   * batch's promise, or undefined with nothing held or done (the general path decides) unless
   * every entry came with its bytes and is accepted there, every key's lock is free now (so a
   * key given twice declines) and every stored object is in memory. The same engine write, write
   * hook and counting as the general path.
   */
  #mergeBatchNow(entries: readonly MergeEntry[]): Promise<number> | undefined {
    if (this.#barrier !== undefined || this.#closed) return undefined;
    const n = entries.length;
    const names: string[] = [];
    const ops: { type: 'put'; key: Buffer; value: Buffer; expiresAtMs: number }[] = [];
    const replaced: (Buffer | undefined)[] = [];
    const changes: Liveness[] = [];
    const now = this.#now();
    const grace = this.#graceMs();
    for (let i = 0; i < n; i++) {
      const e = entries[i] as MergeEntry;
      const incoming = e.encoded;
      if (incoming === undefined) break;
      const name = e.key.toString('latin1');
      if (!this.#tryTake(name)) break;
      names.push(name);
      const ek = dataKey(e.key);
      const old = this.#engine.getSync?.(ek);
      if (old === undefined) break;
      const m = plainMergeResult(old ?? undefined, incoming);
      if (m === undefined) break;
      const before = m.beforeValue && (m.beforeExpiresAtMs === 0 || now <= m.beforeExpiresAtMs) ? liveUntil(m.beforeExpiresAtMs) : DEAD;
      const after = m.afterValue && (m.afterExpiresAtMs === 0 || now <= m.afterExpiresAtMs) ? liveUntil(m.afterExpiresAtMs) : DEAD;
      ops.push({ type: 'put', key: ek, value: incoming, expiresAtMs: plainEngineExpiresAtMs(m.afterValue, m.afterWrittenAtMs, m.afterExpiresAtMs, grace) });
      replaced.push(old ?? undefined);
      changes.push(before, after);
    }
    if (ops.length < n) {
      for (const name of names) this.#give(name);
      return undefined;
    }
    return this.#writeMerged(ops, replaced, changes, names, now);
  }

  /** #mergeBatchNow's write: the engine batch, then counting (`changes`: before, after per op), then the locks freed. */
  async #writeMerged(
    ops: { type: 'put'; key: Buffer; value: Buffer; expiresAtMs: number }[],
    replaced: readonly (Buffer | undefined)[],
    changes: readonly Liveness[],
    names: readonly string[],
    now: number,
  ): Promise<number> {
    try {
      await this.#writeObserved(ops, replaced);
      for (let j = 0; j < ops.length; j++) this.#counted((ops[j] as (typeof ops)[number]).key, changes[2 * j] as Liveness, changes[2 * j + 1] as Liveness, now);
      return ops.length;
    } finally {
      for (const name of names) this.#give(name);
    }
  }

  /**
   * Removes this node's stored copy of `key` (an engine delete, not a tombstone): a replica that
   * no longer owns the key's slot after a ring change drops it (cluster/stream_manager.ts). Only
   * for data another replica holds; the key's liveness is uncounted as for any write.
   */
  async dropStored(key: Buffer): Promise<void> {
    const release = await this.#enter([key]);
    try {
      const now = this.#now();
      const ek = dataKey(key);
      const bytes = await this.#engine.get(ek);
      if (bytes === undefined) return;
      const obs = this.#observer;
      obs?.willWrite(ek);
      let ok = false;
      try {
        await this.#engine.delete(ek);
        ok = true;
      } finally {
        obs?.didWrite(ek, bytes, undefined, 0, ok);
      }
      this.#counted(ek, objectLiveness(this.#decode(key, bytes), now), DEAD, now);
    } finally {
      release();
    }
  }

  /** Removes every key (FLUSHALL). Engine deletes, not tombstones: this is a local reset. */
  async flushAll(): Promise<void> {
    while (this.#barrier !== undefined) await this.#barrier;
    let open!: () => void;
    this.#barrier = new Promise<void>((resolve) => (open = resolve));
    try {
      await this.#countReady;
      await this.#waitDrained();
      const { gte, lt } = dataBounds();
      for (;;) {
        const ops: { type: 'del'; key: Buffer }[] = [];
        for await (const e of this.#engine.range({ gte, lt, limit: FLUSH_BATCH_KEYS })) ops.push({ type: 'del', key: e.key });
        if (ops.length === 0) break;
        await this.#engine.write(ops);
      }
      this.#counter.reset();
      this.#scanCount = undefined;
      this.#observer?.flushed();
    } finally {
      this.#barrier = undefined;
      open();
    }
  }

  // ---- whole-keyspace reads ----------------------------------------------------------------

  async dbsize(): Promise<number> {
    return (await this.keyspaceInfo()).keys;
  }

  /** INFO keyspace: live keys and live keys with a TTL. */
  async keyspaceInfo(): Promise<{ keys: number; expires: number }> {
    await this.#countReady;
    const now = this.#now();
    if (this.#counter.exact) return { keys: this.#counter.keys(now), expires: this.#counter.expires(now) };
    const cached = this.#scanCount;
    if (cached !== undefined && now - cached.atMs < DBSIZE_SCAN_CACHE_MS) return { keys: cached.keys, expires: cached.expires };
    let keys = 0;
    let expires = 0;
    for await (const e of this.#engine.range(dataBounds())) {
      const l = objectLiveness(this.#decode(userKeyOf(e.key), e.value), now);
      if (l.live) {
        keys++;
        if (l.expiresAtMs > 0) expires++;
      }
    }
    this.#scanCount = { atMs: now, keys, expires };
    return { keys, expires };
  }

  /**
   * One SCAN step from `cursor` (scan_cursor.ts): examines about `count` stored keys and returns
   * the live ones that pass `filter`, and the cursor to continue from (0n: done).
   */
  async scan(cursor: bigint, count: number, filter?: (key: Buffer) => boolean): Promise<ScanResult> {
    const gte = cursorLowerBound(cursor);
    if (gte === undefined) return { cursor: 0n, keys: [] };
    const now = this.#now();
    const keys: Buffer[] = [];
    let examined = 0;
    let lastGroup: bigint | undefined;
    for await (const e of this.#engine.range({ gte, lt: dataBounds().lt })) {
      const group = cursorAt(e.key);
      if (examined >= count && group !== lastGroup) return { cursor: group, keys };
      examined++;
      lastGroup = group;
      const key = Buffer.from(userKeyOf(e.key));
      if (filter !== undefined && !filter(key)) continue;
      if (this.#entryLive(e, now)) keys.push(key);
    }
    return { cursor: 0n, keys };
  }

  /** Every live key passing `filter` (KEYS). */
  async keys(filter?: (key: Buffer) => boolean): Promise<Buffer[]> {
    const now = this.#now();
    const out: Buffer[] = [];
    for await (const e of this.#engine.range(dataBounds())) {
      const key = Buffer.from(userKeyOf(e.key));
      if (filter !== undefined && !filter(key)) continue;
      if (this.#entryLive(e, now)) out.push(key);
    }
    return out;
  }

  /** A random live key, or undefined when there is none (RANDOMKEY). */
  async randomKey(random: () => number = Math.random): Promise<Buffer | undefined> {
    const now = this.#now();
    const startSlot = Math.floor(random() * SLOT_COUNT);
    const found: Buffer[] = [];
    const passes = [slotRangeBounds(startSlot, SLOT_COUNT - 1), ...(startSlot > 0 ? [slotRangeBounds(0, startSlot - 1)] : [])];
    for (const bounds of passes) {
      for await (const e of this.#engine.range(bounds)) {
        if (!this.#entryLive(e, now)) continue;
        found.push(Buffer.from(userKeyOf(e.key)));
        if (found.length >= RANDOMKEY_SAMPLE_KEYS) break;
      }
      if (found.length > 0) break;
    }
    if (found.length === 0) return undefined;
    return found[Math.floor(random() * found.length)];
  }

  /** Live keys stored in one slot (CLUSTER COUNTKEYSINSLOT). */
  async countKeysInSlot(slot: number): Promise<number> {
    const now = this.#now();
    let n = 0;
    for await (const e of this.#engine.range(slotRangeBounds(slot))) if (this.#entryLive(e, now)) n++;
    return n;
  }

  /**
   * Every stored object of slots [firstSlot, lastSlot] in (slot, key) order, dead ones (tombstones,
   * expired values within gc grace) included: what replica sync, streaming and Merkle trees need.
   * `bytes` is the stored encoding (canonical: equal objects have equal bytes). Objects that do
   * not decode are logged and skipped.
   */
  async *storedObjects(
    firstSlot = 0,
    lastSlot: number = SLOT_COUNT - 1,
  ): AsyncGenerator<{ key: Buffer; slot: number; object: VersionedObject; bytes: Buffer }> {
    for await (const e of this.#engine.range(slotRangeBounds(firstSlot, lastSlot))) {
      let object: VersionedObject;
      try {
        object = decodeObject(e.value);
      } catch (err) {
        this.#log('error', `keyspace: corrupt object at slot ${slotOf(e.key)} skipped: ${String(err)}`);
        continue;
      }
      yield { key: Buffer.from(userKeyOf(e.key)), slot: slotOf(e.key), object, bytes: e.value };
    }
  }

  /** Up to `count` live keys of one slot (CLUSTER GETKEYSINSLOT). */
  async keysInSlot(slot: number, count: number): Promise<Buffer[]> {
    const now = this.#now();
    const out: Buffer[] = [];
    if (count <= 0) return out;
    for await (const e of this.#engine.range(slotRangeBounds(slot))) {
      if (!this.#entryLive(e, now)) continue;
      out.push(Buffer.from(userKeyOf(e.key)));
      if (out.length >= count) break;
    }
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------

  #applyWrite(obj: VersionedObject, w: WriteRequest, now: number): VersionedObject {
    if (w.value !== null) this.checkValue(w.value);
    return applyWrite(obj, w.context ?? contextOf(obj), this.actor, { value: w.value, writtenAtMs: now, expiresAtMs: w.expiresAtMs }, this.writeOptions());
  }

  /** Runs an engine write, turning the engine's size refusal into a TOOLARGE reply. */
  async #store(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      throw storeError(err);
    }
  }

  #decode(key: Buffer, bytes: Buffer | undefined): VersionedObject {
    if (bytes === undefined) return EMPTY_OBJECT;
    try {
      return decodeObject(bytes);
    } catch (err) {
      this.#log('error', `keyspace: stored object of key ${JSON.stringify(key.toString('latin1').slice(0, 64))} is corrupt: ${String(err)}`);
      throw new KeyspaceError('CORRUPT', `ERR stored value of this key is corrupt`, { cause: err });
    }
  }

  #entryLive(e: Entry, now: number): boolean {
    try {
      return liveSiblings(decodeObject(e.value), now).length > 0;
    } catch (err) {
      this.#log('error', `keyspace: corrupt object at slot ${slotOf(e.key)}: ${String(err)}`);
      return false;
    }
  }

  /**
   * #enter for one key without awaiting: the release when no FLUSHALL runs and the key's lock
   * is free, undefined otherwise (then #enter decides: wait, or throw CLOSED).
   */
  #tryEnter(key: Buffer): Release | undefined {
    const name = key.toString('latin1');
    return this.#tryTake(name) ? () => this.#give(name) : undefined;
  }

  /** #tryEnter by lock name with no release function: true when taken (then #give it once). */
  #tryTake(lockName: string): boolean {
    if (this.#barrier !== undefined || this.#closed) return false;
    if (!this.#locks.tryTake(lockName)) return false;
    this.#inflight++;
    return true;
  }

  /** Releases what #tryTake took. */
  #give(lockName: string): void {
    this.#locks.release(lockName);
    this.#leave();
  }

  /** Waits out FLUSHALL, then takes the key locks and counts the write as in flight. */
  async #enter(keys: readonly Buffer[]): Promise<Release> {
    while (this.#barrier !== undefined) await this.#barrier;
    if (this.#closed) throw new KeyspaceError('CLOSED', 'ERR the keyspace is closed');
    this.#inflight++;
    let release: Release;
    try {
      release =
        keys.length === 1 ? await this.#locks.acquire(keys[0]!.toString('latin1')) : await this.#locks.acquireMany(keys.map((k) => k.toString('latin1')));
    } catch (err) {
      this.#leave();
      throw err;
    }
    return () => {
      release();
      this.#leave();
    };
  }

  #leave(): void {
    this.#inflight--;
    if (this.#inflight === 0 && this.#drained !== undefined) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }

  #waitDrained(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.#drained;
      this.#drained = () => {
        prev?.();
        resolve();
      };
    });
  }

  /** Records a write in the counter, coordinating with the initial count (see the header). */
  #counted(ek: Buffer, before: Liveness, after: Liveness, now: number): void {
    const cached = this.#scanCount;
    if (cached !== undefined) {
      cached.keys += Number(after.live) - Number(before.live);
      cached.expires += Number(after.live && after.expiresAtMs > 0) - Number(before.live && before.expiresAtMs > 0);
    }
    const ahead = this.#writtenAhead;
    // The usual write (no TTL after it, no key with a TTL tracked, no initial count running)
    // changes only the count: the key's name is not needed.
    if (ahead === undefined && this.#counter.countWithoutName(before, after)) return;
    const name = ek.toString('latin1');
    if (ahead !== undefined && (this.#countPosition === undefined || Buffer.compare(ek, this.#countPosition) > 0)) {
      // Not counted by the scan yet, and the scan will skip it: this write's result is its count.
      if (!ahead.has(name)) {
        ahead.add(name);
        this.#counter.onWrite(name, DEAD, after, now);
        return;
      }
    }
    this.#counter.onWrite(name, before, after, now);
  }

  /** Starts the initial count on a snapshot taken now, before any write can happen. */
  #startCounting(): void {
    const snapshot = this.#engine.snapshot();
    this.#writtenAhead = new Set();
    this.#countPosition = undefined;
    this.#countReady = this.#loadCounts(snapshot)
      .catch((err: unknown) => {
        this.#log('error', `keyspace: counting the stored keys failed, DBSIZE falls back to scans: ${String(err)}`);
        this.#counter.markInexact();
      })
      .finally(() => {
        snapshot.release();
        this.#writtenAhead = undefined;
        this.#countPosition = undefined;
      });
  }

  async #loadCounts(snapshot: Snapshot): Promise<void> {
    const started = this.#now();
    let n = 0;
    for await (const e of this.#engine.range({ ...dataBounds(), snapshot })) {
      if (this.#closed) return;
      this.#countPosition = e.key;
      const name = e.key.toString('latin1');
      if (this.#writtenAhead?.has(name) === true) continue;
      let obj: VersionedObject;
      try {
        obj = decodeObject(e.value);
      } catch (err) {
        this.#log('error', `keyspace: corrupt object at slot ${slotOf(e.key)} skipped while counting: ${String(err)}`);
        continue;
      }
      const now = this.#now();
      this.#counter.onLoad(name, objectLiveness(obj, now));
      n++;
    }
    const now = this.#now();
    this.#log(
      'info',
      `keyspace: node ${this.nodeId} actor epoch ${this.identity.epoch}: counted ${n} stored objects, ${this.#counter.keys(now)} live keys, in ${now - started} ms`,
    );
  }
}

function ignore(): void {}

const SETTLED: Promise<void> = Promise.resolve();

/** mutateStored's answer for a write as a StoredWrite (durable by then). */
function storedWriteOf(m: { readonly bytes: Buffer | undefined }): StoredWrite {
  assert(m.bytes !== undefined, 'a write stores bytes');
  return { bytes: m.bytes, settled: SETTLED };
}

const NO_VALUES: readonly Buffer[] = Object.freeze([]);

/** The engine's size refusal as a TOOLARGE reply; any other error unchanged. */
function storeError(err: unknown): unknown {
  if (err instanceof StorageError && err.code === 'ETOOLARGE') {
    return new KeyspaceError('TOOLARGE', `TOOLARGE the stored object (all sibling values) is over the storage limit: ${err.message}`, { cause: err });
  }
  return err;
}

/** The key's live state at `nowMs` (pure). */
export function viewOf(object: VersionedObject, nowMs: number): KeyView {
  const live = liveSiblings(object, nowMs);
  if (live.length === 0) return { object, live, values: [], expiresAtMs: 0 };
  let expiresAtMs = 0;
  for (const s of live) {
    if (s.expiresAtMs === 0) {
      expiresAtMs = 0;
      break;
    }
    expiresAtMs = Math.max(expiresAtMs, s.expiresAtMs);
  }
  return { object, live, values: live.map((s) => s.value as Buffer), expiresAtMs };
}

function livenessOf(v: KeyView): Liveness {
  return v.live.length === 0 ? DEAD : { live: true, expiresAtMs: v.expiresAtMs };
}

/** livenessOf(viewOf(obj, nowMs)) without building the view's arrays (every write counts its result). */
function objectLiveness(obj: VersionedObject, nowMs: number): Liveness {
  let live = false;
  let forever = false;
  let expiresAtMs = 0;
  for (const s of obj.siblings) {
    if (!isLive(s, nowMs)) continue;
    live = true;
    if (s.expiresAtMs === 0) forever = true;
    else expiresAtMs = Math.max(expiresAtMs, s.expiresAtMs);
  }
  if (!live) return DEAD;
  return { live: true, expiresAtMs: forever ? 0 : expiresAtMs };
}

/**
 * engineExpiresAtMs of an object holding one sibling written at `writtenAtMs` (a value when
 * `isValue`, else a tombstone) with expiry `valueExpiresAtMs` (0: none): what a plain write leaves.
 */
export function plainEngineExpiresAtMs(isValue: boolean, writtenAtMs: number, valueExpiresAtMs: number, graceMs: number): number {
  if (!isValue) return Math.min(writtenAtMs + graceMs, MAX_TIME_MS);
  return valueExpiresAtMs > 0 ? Math.min(valueExpiresAtMs + graceMs + 1, MAX_TIME_MS) : 0;
}

/** When the engine may drop the stored object (pure; see the header for why grace is added). */
export function engineExpiresAtMs(obj: VersionedObject, nowMs: number, graceMs: number): number {
  const valueExpiry = objectExpiresAtMs(obj);
  // +1: a value is live while now <= its expiry; the engine hides an entry once now reaches it.
  if (valueExpiry > 0) return Math.min(valueExpiry + graceMs + 1, MAX_TIME_MS);
  if (obj.siblings.some((s) => s.value !== null)) return 0;
  // Tombstones only: the grace runs from the delete's own time (the newest tombstone's
  // writtenAtMs, carried in the object), not from when this replica stored it, so every replica
  // drops the object at the same moment. Counting from the local store time would let a replica
  // that dropped it get it back by anti-entropy from one that had not yet, restarting its grace:
  // the tombstone would bounce between replicas forever.
  let deletedAtMs = 0;
  for (const s of obj.siblings) deletedAtMs = Math.max(deletedAtMs, s.writtenAtMs);
  return Math.min((obj.siblings.length > 0 ? deletedAtMs : nowMs) + graceMs, MAX_TIME_MS);
}

