/**
 * The facade the server's commands call for replicated reads and writes, and the handler of
 * what other nodes ask of this one (ARCHITECTURE.md section 3). One per node.
 *
 * Injected: this node's id, the ring (a function: the current view, e.g. RingProvider), the
 * liveness view (failure detector), the local Keyspace, the ReplicaTransport, and a settings
 * getter read at the start of every request (never cached), so CONFIG SET of read-quorum,
 * write-quorum, sloppy-quorum or the timeout applies to the next request; replication-factor
 * is the ring's `n` (the ring provider rebuilds the ring when it changes).
 *
 * Writes:  put(key) on any node
 *            this node an up primary of the slot -> put_fsm here
 *            else forward to the first up primary; if that one is unreachable (the request
 *            certainly did not arrive) the next, and so on; none -> CLUSTERDOWN.
 *          A forwarded write arriving at a node that is not a primary in its own view (views
 *          differ during gossip) is forwarded again, at most MAX_FORWARD_HOPS times in all.
 * Reads:   get(key) on any node -> get_fsm here (reads need no dot, so no forwarding).
 * Incoming: onReplicaPut (merge; a hinted copy goes to `onHint`, which keeps it as a durable hint
 *          for handoff to its primary, else it is merged like any copy), onReplicaGet (includes
 *          the hinted copies, `hintedCopy`), onForwardWrite.
 */

import assert from 'node:assert';
import type { Context } from './dvv.js';
import { NoQuorumError, UnavailableError } from './fsm_errors.js';
import { DeadlineQueue } from './deadline_queue.js';
import { BackgroundWork, FsmStats, REAL_TIMERS, replicationOf, type FsmTimers } from './fsm_env.js';
import { MAX_READ_REPAIRS_IN_FLIGHT, runGet, runGetValue, runGetValueAs, type GetRequest, type ReadFanout, type ReadOutcome, type ReadValue } from './get_fsm.js';
import { LocalReplica } from './local_replica.js';
import { decodeObject, encodeObject, type VersionedObject, type WriteOptions } from './object.js';
import { runPut, runPutAs, type PutRequest } from './put_fsm.js';
import { resolveQuorum, type QuorumSpec } from './quorum.js';
import { ReplicaUnreachableError, type ReplicaTransport, type WriteRequestWire, type WriteResult } from './replica_transport.js';
import type { Ring } from './ring.js';
import { writeCoordinator } from './route.js';
import { keySlot } from './slot.js';
import type { Keyspace } from '../server/keyspace.js';
import type { LogFn } from '../server/logger.js';

/** How many times one write may be forwarded between nodes before it fails (ring views differ). */
export const MAX_FORWARD_HOPS = 2;

/**
 * Extra time a forwarding node waits past the budget it gave the remote coordinator, so the
 * remote's own NOQUORUM reply (sent at its deadline) arrives before the forwarder times out.
 */
export const FORWARD_REPLY_GRACE_MS = 250;

/** Longest request timeout accepted, ms (a day: beyond that a setting is a mistake). */
export const MAX_REQUEST_TIMEOUT_MS = 86_400_000;

/** Read from the running config at the start of every request. */
export interface CoordinatorSettings {
  /** `read-quorum` (number or one|quorum|all|local_*|each_quorum, parsed). */
  readonly readQuorum: QuorumSpec;
  /** `write-quorum`. */
  readonly writeQuorum: QuorumSpec;
  /** `sloppy-quorum`: fallbacks stand in for down primaries and their answers count. */
  readonly sloppyQuorum: boolean;
  /** Reads: a replica's notfound counts toward R (Riak 2's default, true). */
  readonly notfoundOk: boolean;
  /** Per-request deadline, ms, 1..MAX_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs: number;
  /** `read-fanout`: which replicas a read asks first (get_fsm.ts ReadFanout); absent: 'all'. */
  readonly readFanout?: ReadFanout;
}

export interface CoordinatorOptions {
  /** This node's id: its ring member id. */
  readonly self: string;
  readonly ring: () => Ring;
  /** Liveness as this node's failure detector sees it (the ring does not change when down). */
  readonly isUp: (id: string) => boolean;
  readonly keyspace: Keyspace;
  readonly transport: ReplicaTransport;
  readonly settings: () => CoordinatorSettings;
  readonly log?: LogFn;
  readonly timers?: FsmTimers;
  /** Cap on read repairs in flight on this node; default MAX_READ_REPAIRS_IN_FLIGHT. */
  readonly maxReadRepairsInFlight?: number;
  /** Target-only replicas of a slot while the ring changes (stream_manager.ts); writes reach them too. */
  readonly pendingReplicas?: (slot: number) => readonly string[];
  /** A pending replica missed a write (put_fsm PutEnv.pendingMissed): keep it as a durable hint. */
  readonly pendingMissed?: (id: string, key: Buffer, object: VersionedObject) => Promise<unknown>;
  /**
   * Hinted handoff (handoff_service.ts): called with a hinted copy (this node as a fallback for
   * `forNode`) before the put is acknowledged; a rejection fails the put. Resolving true means
   * the copy is kept durably as a hint ONLY: it is not merged into the keyspace, so a fallback
   * never keeps a stray copy of a slot it does not replicate (one that could outlive the
   * primaries' tombstone and come back through a later sloppy read). Anything else: the copy is
   * merged into the keyspace as before (hinted-handoff no).
   */
  readonly onHint?: (forNode: string, key: Buffer, object: VersionedObject) => boolean | void | Promise<boolean | void>;
  /**
   * This node's hinted copies of `key`, merged (undefined, synchronously: none held, the usual
   * case): replica reads of this node include them, so a fallback answers for what it holds.
   */
  readonly hintedCopy?: (key: Buffer) => Promise<VersionedObject | undefined> | undefined;
}

/**
 * One replica put of a REPLICA_PUT_BATCH, decoded. `encoded`: the bytes `object` was decoded
 * from (stored as they are when the merge leaves it unchanged). A put for this node's own store
 * may come with its bytes only, when they are known to decode (object_plain_write.ts
 * isPlainObjectBytes): the store decodes them only if it needs the object.
 */
export type ReplicaPutItem =
  | { readonly key: Buffer; readonly object: VersionedObject; readonly encoded?: Buffer; readonly hintFor?: string }
  | { readonly key: Buffer; readonly object?: undefined; readonly encoded: Buffer; readonly hintFor?: undefined };

const ignore = (): void => undefined;

/** No per-call overrides (the usual call; callOptionsFor's answer for a connection without CLIENT QUORUM). */
export const NO_CALL_OPTIONS: CallOptions = Object.freeze({});

/** A client write: a value or a delete, with expiry and optionally the context it supersedes. */
export interface PutInput {
  readonly value: Buffer | null;
  /** Absolute ms; 0: no expiry. */
  readonly expiresAtMs: number;
  /** SETCTX/DELCTX; absent: supersede what the coordinating replica has seen (plain SET). */
  readonly context?: Context;
}

/** How writeAs's caller takes the outcome: `stored` gets write()'s result, `failed` its error (put_fsm.ts WriteOutcome). */
export interface CoordinatedWriteOutcome<T> {
  readonly stored: (r: Buffer | WriteResult) => T;
  readonly failed: (err: unknown) => T;
}

/** Per-call overrides (CLIENT QUORUM); absent fields: the settings'. */
export interface CallOptions {
  readonly r?: QuorumSpec;
  readonly w?: QuorumSpec;
  readonly timeoutMs?: number;
}

export class Coordinator {
  readonly self: string;
  readonly stats = new FsmStats();
  readonly #o: CoordinatorOptions;
  readonly #local: LocalReplica;
  readonly #background = new BackgroundWork();
  readonly #repairs: { inflight: number; readonly max: number };
  readonly #timers: FsmTimers;
  readonly #deadlines: DeadlineQueue;
  readonly #log: LogFn;

  constructor(options: CoordinatorOptions) {
    this.self = options.self;
    this.#o = options;
    this.#local = new LocalReplica(options.keyspace, options.hintedCopy);
    this.#timers = options.timers ?? REAL_TIMERS;
    this.#deadlines = new DeadlineQueue(this.#timers);
    this.#log = options.log ?? (() => undefined);
    const max = options.maxReadRepairsInFlight ?? MAX_READ_REPAIRS_IN_FLIGHT;
    assert(Number.isInteger(max) && max >= 0, 'maxReadRepairsInFlight must be an integer >= 0');
    this.#repairs = { inflight: 0, max };
  }

  /**
   * The replicated object for `key` (EMPTY_OBJECT: not found). Rejects NoQuorumError, QuorumError,
   * KeyspaceError (TOOLARGE key). Not an async function: the read's own promise is the answer
   * (every GET of a cluster comes through here).
   */
  get(key: Buffer, opts: CallOptions = NO_CALL_OPTIONS): Promise<VersionedObject> {
    try {
      return runGet(this.#env(), this.#getRequest(key, opts, undefined));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * get() for GET: the live value of `key` at `nowMs` when the replicas answered this node's own
   * stored bytes (a view of them, or null: none live; get_fsm.ts ReadValue), with no object
   * decoded; else get()'s merged object. Rejects as get() does.
   */
  getValue(key: Buffer, nowMs: number, opts: CallOptions = NO_CALL_OPTIONS): Promise<ReadValue> {
    try {
      return runGetValue(this.#env(), this.#getRequest(key, opts, nowMs));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * getValue(...).then(as.value, as.failed) as one promise (GET's reply: every GET of a cluster,
   * see get_fsm.ts runGetValueAs). Rejects only with what `as` throws.
   */
  getValueAs<T>(key: Buffer, nowMs: number, opts: CallOptions, as: ReadOutcome<T>): Promise<T> {
    try {
      return runGetValueAs(this.#env(), this.#getRequest(key, opts, nowMs), as);
    } catch (err) {
      return failedAs(as, err);
    }
  }

  /** A read's request from the settings read now and the call's overrides (counts the read). */
  #getRequest(key: Buffer, opts: CallOptions, valueAtMs: number | undefined): GetRequest {
    this.#o.keyspace.checkKey(key);
    const s = this.#o.settings();
    this.stats.gets++;
    return {
      key,
      slot: keySlot(key),
      r: opts.r ?? s.readQuorum,
      sloppy: s.sloppyQuorum,
      notfoundOk: s.notfoundOk,
      timeoutMs: timeoutOf(opts.timeoutMs ?? s.requestTimeoutMs),
      fanout: s.readFanout ?? 'all',
      // One shape for both kinds of read (undefined: get()'s).
      valueAtMs,
    };
  }

  /**
   * Writes `input` and resolves with the object as stored by the coordinating replica.
   * Rejects NoQuorumError, UnavailableError, QuorumError, KeyspaceError (TOOLARGE, ...).
   */
  async put(key: Buffer, input: PutInput, opts: CallOptions = NO_CALL_OPTIONS): Promise<VersionedObject> {
    return objectOf(await this.write(key, input, opts));
  }

  /**
   * put() for a caller that needs only that the write succeeded (SET): resolves with the result
   * as it came, the stored bytes when this node coordinated (no decode per write), the remote
   * coordinator's object when forwarded. Rejects as put() does, except that a key or value over
   * the limits (TOOLARGE) is thrown synchronously.
   */
  write(key: Buffer, input: PutInput, opts: CallOptions = NO_CALL_OPTIONS): Promise<Buffer | WriteResult> {
    return this.#clientWrite(key, input, opts, undefined) as Promise<Buffer | WriteResult>;
  }

  /**
   * write(...).then(as.stored, as.failed) as one promise when this node coordinates (SET's reply:
   * every SET of a cluster, see put_fsm.ts runPutAs). Throws as write() does (TOOLARGE); what
   * write() rejects with goes to as.failed; rejects only with what `as` throws.
   */
  writeAs<T>(key: Buffer, input: PutInput, opts: CallOptions, as: CoordinatedWriteOutcome<T>): Promise<T> {
    return this.#clientWrite(key, input, opts, as as CoordinatedWriteOutcome<unknown>) as Promise<T>;
  }

  #clientWrite(key: Buffer, input: PutInput, opts: CallOptions, as: CoordinatedWriteOutcome<unknown> | undefined): Promise<unknown> {
    this.#o.keyspace.checkKey(key);
    if (input.value !== null) this.#o.keyspace.checkValue(input.value);
    const s = this.#o.settings();
    const w = opts.w ?? s.writeQuorum;
    const timeoutMs = timeoutOf(opts.timeoutMs ?? s.requestTimeoutMs);
    // Two literals, not a spread of the optional context: this is every SET of a cluster.
    const req: WriteRequestWire =
      input.context === undefined
        ? { key, value: input.value, expiresAtMs: input.expiresAtMs, w, timeoutMs, hops: 0 }
        : { key, value: input.value, expiresAtMs: input.expiresAtMs, context: input.context, w, timeoutMs, hops: 0 };
    return this.#write(req, s, as);
  }

  /** Another node forwarded a client write here to coordinate. */
  async onForwardWrite(req: WriteRequestWire): Promise<WriteResult> {
    return objectOf(await this.#forwarded(req));
  }

  /** onForwardWrite's answer encoded (encodeObject), as the bus sends it: the stored bytes when coordinated here. */
  async onForwardWriteEncoded(req: WriteRequestWire): Promise<Buffer> {
    const r = await this.#forwarded(req);
    return Buffer.isBuffer(r) ? r : encodeObject(r);
  }

  #forwarded(req: WriteRequestWire): Promise<Buffer | WriteResult> {
    this.#o.keyspace.checkKey(req.key);
    if (req.value !== null) this.#o.keyspace.checkValue(req.value);
    return this.#write(req, this.#o.settings(), undefined) as Promise<Buffer | WriteResult>;
  }

  /** Another replica sent its object for `key` (write fan-out, read repair, handoff). */
  async onReplicaPut(key: Buffer, object: VersionedObject, opts: { readonly hintFor?: string } = {}): Promise<void> {
    if (opts.hintFor !== undefined) {
      this.stats.hintedPutsReceived++;
      if ((await this.#o.onHint?.(opts.hintFor, key, object)) === true) return;
    }
    await this.#local.merge(key, object);
  }

  /**
   * Several replica puts from one peer (REPLICA_PUT_BATCH): the copies that are not hints are
   * merged with ONE engine write (LocalReplica.mergeBatch, atomic on this node); hinted copies go
   * through onReplicaPut one by one. Resolves with one result per item, in order: undefined
   * (merged, durable) or the error that item failed with (a failed batch write fails each of its
   * items; a key over the limits fails only itself).
   */
  onReplicaPutBatch(items: readonly ReplicaPutItem[]): Promise<(unknown | undefined)[]> {
    // The usual batch (every replica put round): no hinted copy and every key within the limits,
    // merged as it is: no index arrays, copy of the items or waiting on an empty Promise.all.
    try {
      for (let i = 0; i < items.length; i++) {
        const it = items[i]!;
        if (it.hintFor !== undefined) return this.#mixedPutBatch(items);
        this.#o.keyspace.checkKey(it.key);
      }
    } catch {
      // A key over the limits fails only itself: the item by item way.
      return this.#mixedPutBatch(items);
    }
    return this.#local.mergeBatch(items).then(
      () => new Array<unknown | undefined>(items.length),
      (err: unknown) => new Array<unknown | undefined>(items.length).fill(err),
    );
  }

  /** onReplicaPutBatch with hinted copies or keys over the limits among the items. */
  async #mixedPutBatch(items: readonly ReplicaPutItem[]): Promise<(unknown | undefined)[]> {
    const results: (unknown | undefined)[] = new Array<unknown | undefined>(items.length);
    const plain: number[] = [];
    const hinted: Promise<void>[] = [];
    for (const [i, it] of items.entries()) {
      if (it.hintFor !== undefined) {
        hinted.push(this.onReplicaPut(it.key, it.object, { hintFor: it.hintFor }).then(ignore, (err: unknown) => void (results[i] = err)));
        continue;
      }
      try {
        this.#o.keyspace.checkKey(it.key);
        plain.push(i);
      } catch (err) {
        results[i] = err;
      }
    }
    if (plain.length > 0) {
      try {
        await this.#local.mergeBatch(plain.map((i) => items[i]!));
      } catch (err) {
        for (const i of plain) results[i] = err;
      }
    }
    await Promise.all(hinted);
    return results;
  }

  /** Another node asks for this replica's object (EMPTY_OBJECT when absent). */
  onReplicaGet(key: Buffer): Promise<VersionedObject> {
    return this.#local.read(key);
  }

  /**
   * onReplicaGet's answer already encoded (encodeObject), without a promise when the store
   * answers from memory: the stored bytes as they are (LocalReplica.readEncodedNow).
   */
  onReplicaGetEncoded(key: Buffer): Buffer | Promise<Buffer> {
    const r = this.#local.readEncodedNow(key);
    return Buffer.isBuffer(r) ? r : r.then(encodeObject);
  }

  /** Fan-outs, late read answers and read repairs of this node in flight right now. */
  get backgroundInflight(): number {
    return this.#background.inflight;
  }

  /** Resolves when no fan-out, late read answer or read repair of this node is in flight. */
  whenIdle(): Promise<void> {
    return this.#background.idle();
  }

  /**
   * Coordinates here (resolves with the stored bytes) or forwards (with the remote's object);
   * with `as`, the outcome as `as` maps it (writeAs). Not an async function: a write coordinated
   * here is put_fsm's one promise (every SET of a cluster); a throw before it (a bad W, no
   * primary up) is a rejection all the same.
   */
  #write(req: WriteRequestWire, s: CoordinatorSettings, as: CoordinatedWriteOutcome<unknown> | undefined): Promise<unknown> {
    try {
      const ring = this.#o.ring();
      const slot = keySlot(req.key);
      const w = req.w ?? s.writeQuorum;
      // Validate W against this ring before anything moves (QuorumError: the client's mistake).
      const need = resolveQuorum(w, replicationOf(ring, this.self));
      const route = writeCoordinator(ring, slot, this.self, this.#o.isUp);
      if (route.kind === 'local') {
        this.stats.puts++;
        const put: PutRequest = {
          key: req.key,
          slot,
          value: req.value,
          expiresAtMs: req.expiresAtMs,
          context: req.context,
          w,
          sloppy: s.sloppyQuorum,
          timeoutMs: req.timeoutMs,
        };
        return as === undefined ? runPut(this.#writeEnv(ring), put) : runPutAs(this.#writeEnv(ring), put, as);
      }
      if (route.kind === 'unavailable') throw new UnavailableError(`no primary replica of slot ${slot} is up`);
      if (req.hops >= MAX_FORWARD_HOPS) {
        throw new UnavailableError(`write for slot ${slot} forwarded ${req.hops} times without reaching a primary (ring views differ)`);
      }
      const forwarded = this.#forward(req, ring, slot, w, need.total);
      return as === undefined ? forwarded : forwarded.then((r) => as.stored(r), (err: unknown) => as.failed(err));
    } catch (err) {
      return as === undefined ? Promise.reject(err) : failedAs(as, err);
    }
  }

  /** Forwards a write this node cannot coordinate to the first reachable primary of its slot. */
  async #forward(req: WriteRequestWire, ring: Ring, slot: number, w: QuorumSpec, needTotal: number): Promise<Buffer | WriteResult> {
    const start = this.#timers.now();
    const candidates = ring.preflist(slot).filter((id) => id !== this.self && this.#o.isUp(id));
    for (const to of candidates) {
      const left = req.timeoutMs - (this.#timers.now() - start);
      if (left <= 0) break;
      this.stats.forwards++;
      try {
        return await this.#o.transport.forwardWrite(to, { ...req, w, timeoutMs: left, hops: req.hops + 1 }, { timeoutMs: left + FORWARD_REPLY_GRACE_MS });
      } catch (err) {
        if (err instanceof ReplicaUnreachableError) {
          this.stats.forwardRetries++;
          this.#log('debug', `coordinator: forward of a slot ${slot} write to ${to} failed, trying the next primary: ${err.message}`);
          continue;
        }
        if (err instanceof Error && !isTypedReply(err)) {
          // Timed out or lost after sending: the write may have happened there.
          this.stats.writeNoQuorum++;
          throw new NoQuorumError('write', { got: 0, need: needTotal });
        }
        throw err;
      }
    }
    throw new UnavailableError(`no primary replica of slot ${slot} is reachable`);
  }

  /** The env of the last request; reused while the ring and the merge options stay the same. */
  #lastEnv: ReturnType<Coordinator['buildEnv']> | undefined;

  #env(ring: Ring = this.#o.ring()): ReturnType<Coordinator['buildEnv']> {
    const wo = this.#o.keyspace.writeOptions();
    const last = this.#lastEnv;
    if (last !== undefined && last.ring === ring && sameWriteOptions(last.writeOptions, wo)) return last;
    const env = this.buildEnv(ring, wo);
    this.#lastEnv = env;
    return env;
  }

  /**
   * #env for a write: put_fsm takes no merge options (the keyspace applies its own), so the last
   * env serves while the ring is the same, without reading the merge options (three config reads
   * and an object per call, every SET of a cluster); a read re-checks them before using it.
   */
  #writeEnv(ring: Ring): ReturnType<Coordinator['buildEnv']> {
    const last = this.#lastEnv;
    return last !== undefined && last.ring === ring ? last : this.#env(ring);
  }

  /** What put_fsm and get_fsm get, one object per ring and merge options. */
  private buildEnv(ring: Ring, writeOptions: WriteOptions) {
    return {
      self: this.self,
      ring,
      isUp: this.#o.isUp,
      local: this.#local,
      transport: this.#o.transport,
      timers: this.#timers,
      deadlines: this.#deadlines,
      stats: this.stats,
      background: this.#background,
      log: this.#log,
      writeOptions,
      repairs: this.#repairs,
      ...(this.#o.pendingReplicas === undefined ? {} : { pendingReplicas: this.#o.pendingReplicas }),
      ...(this.#o.pendingMissed === undefined ? {} : { pendingMissed: this.#o.pendingMissed }),
    };
  }
}

function sameWriteOptions(a: WriteOptions, b: WriteOptions): boolean {
  return a.maxSiblings === b.maxSiblings && a.conflictPolicy === b.conflictPolicy && a.vclockMaxEntries === b.vclockMaxEntries && a.localActor === b.localActor;
}

/** Errors whose message is a reply line for the client, passed through a forward unchanged. */
function isTypedReply(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    code === 'NOQUORUM' ||
    code === 'CLUSTERDOWN' ||
    code === 'ERR_BAD_QUORUM' ||
    code === 'TOOLARGE' ||
    code === 'SIBLINGS' ||
    code === 'CORRUPT' ||
    code === 'CLOSED' ||
    code === 'ERR_BAD_CONTEXT'
  );
}

/** `as`'s answer to an error thrown before a request started, as its promise (a throw of `as` rejects it). */
function failedAs<T>(as: { failed(err: unknown): T }, err: unknown): Promise<T> {
  try {
    return Promise.resolve(as.failed(err));
  } catch (thrown) {
    return Promise.reject(thrown);
  }
}

/** A write's result as an object: stored bytes decoded (our own encoding: they decode). */
function objectOf(r: Buffer | WriteResult): WriteResult {
  return Buffer.isBuffer(r) ? decodeObject(r) : r;
}

/** Settings and overrides are validated where they enter (config schema, CLIENT QUORUM). */
function timeoutOf(ms: number): number {
  if (!(Number.isInteger(ms) && ms >= 1 && ms <= MAX_REQUEST_TIMEOUT_MS)) assert.fail(`request timeout must be an integer in 1..${MAX_REQUEST_TIMEOUT_MS} ms, got ${ms}`);
  return ms;
}
