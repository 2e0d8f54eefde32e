/**
 * The write path's async shell on the coordinating replica (Riak's put_fsm around the pure
 * QuorumTally; ARCHITECTURE.md section 3). The caller (coordinator.ts) has already routed the
 * request here: this node is an up primary of the key's slot.
 *
 *   plan targets (primaries; fallbacks with hints under sloppy quorum)
 *     -> fail fast if W cannot be met even if every target acks (nothing written)
 *     -> write locally: mint the dot, store (counts as the first ack)
 *     -> send the stored bytes to every other target, in parallel
 *     -> reply at W acks                      -> the stored object's bytes
 *        or when W can no longer be met       -> NoQuorumError
 *        or at the deadline                   -> NoQuorumError (acks so far)
 *   Acks after the reply are counted (stats.lateAcks), never acted on.
 *
 * A NOQUORUM write is indeterminate, as the message says: the local copy and any acked copies
 * stay, and anti-entropy or a later write spreads or supersedes them.
 */

import assert from 'node:assert';
import type { DeadlineEntry, DeadlineQueue } from './deadline_queue.js';
import type { Context } from './dvv.js';
import { NoQuorumError } from './fsm_errors.js';
import { planTargets, replicationOf, settleMapped, type BackgroundWork, type FsmStats, type FsmTimers, type TargetPlan } from './fsm_env.js';
import type { LocalReplica } from './local_replica.js';
import { decodeObject, type VersionedObject } from './object.js';
import { QuorumTally, resolveQuorum, type QuorumDecision, type QuorumSpec, type QuorumTarget } from './quorum.js';
import { replicaPutBytesThen, type ReplicaPutListener, type ReplicaPutOptions, type ReplicaTransport } from './replica_transport.js';
import type { Ring } from './ring.js';
import type { StoredWrite } from '../server/keyspace.js';
import type { LogFn } from '../server/logger.js';

export interface PutRequest {
  readonly key: Buffer;
  readonly slot: number;
  /** null: a delete (tombstone). */
  readonly value: Buffer | null;
  readonly expiresAtMs: number;
  /** Supersede exactly this context (SETCTX/DELCTX); absent: what this replica has seen. */
  readonly context?: Context;
  readonly w: QuorumSpec;
  readonly sloppy: boolean;
  readonly timeoutMs: number;
}

export interface PutEnv {
  readonly self: string;
  readonly ring: Ring;
  readonly isUp: (id: string) => boolean;
  readonly local: LocalReplica;
  readonly transport: ReplicaTransport;
  readonly timers: FsmTimers;
  /** The coordinator's request deadlines (one timer for all requests). */
  readonly deadlines: DeadlineQueue;
  readonly stats: FsmStats;
  readonly background: BackgroundWork;
  readonly log: LogFn;
  /**
   * Ring transitions (ring_transition.ts): replicas of the slot in the target ring that are not
   * in the current one. Absent or empty: no transition touches the slot.
   */
  readonly pendingReplicas?: (slot: number) => readonly string[];
  /**
   * A pending replica did not get the write (it is down, or its put failed): the caller keeps the
   * stored object for it durably (a hint, handed off when it is back), so a node that is down
   * while it joins still receives every write made to the slots it already streamed.
   */
  readonly pendingMissed?: (id: string, key: Buffer, object: VersionedObject) => Promise<unknown>;
}

/** No pending replicas (no ring transition touches the slot: the usual case, no array per write). */
const NONE: readonly string[] = Object.freeze([]);

/**
 * Runs one coordinated write; resolves with the bytes stored here (encodeObject's encoding of the
 * stored object, not to be written into), or rejects (see header). Everything, the checks made
 * before anything is written included, reports through the returned promise.
 */
export function runPut(env: PutEnv, req: PutRequest): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => new PutFsm(env, req, resolve as (r: unknown) => void, reject, undefined).start());
}

/**
 * How a caller takes a write's outcome as the value of the write's own promise (SET: its reply):
 * `stored` gets runPut's stored bytes, `failed` every error runPut would reject with. A throw of
 * either rejects the promise with it.
 */
export interface WriteOutcome<T> {
  readonly stored: (bytes: Buffer) => T;
  readonly failed: (err: unknown) => T;
}

/**
 * runPut(...).then(as.stored, as.failed) as one promise: the write's own resolves with the
 * outcome as mapped, where a continuation would make a second promise and a microtask (every SET
 * of a cluster).
 */
export function runPutAs<T>(env: PutEnv, req: PutRequest, as: WriteOutcome<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      new PutFsm(env, req, resolve as (r: unknown) => void, reject, as as WriteOutcome<unknown>).start();
    } catch (err) {
      // The checks made before anything is written (a bad W, W out of reach): runPut rejects with them.
      resolve(as.failed(err));
    }
  });
}

/**
 * One write's state, as one object (fields and methods, no closures per step): the request, the
 * tally, what was stored, and its place in the deadline queue.
 */
class PutFsm implements DeadlineEntry, ReplicaPutListener {
  deadlineAtMs = 0;
  deadlineSlot = -1;
  /** The request has replied (or given up); later answers are only counted. */
  #done = false;
  #deadline = 0;
  #plan: TargetPlan | undefined;
  #targets: readonly QuorumTarget[] = NONE_TARGETS;
  /** Pending replicas (ring transition) that are up and get the write too; usually NONE. */
  #pending: readonly string[] = NONE;
  /** Down pending replicas known at the start: each gets a hint once the write is stored. */
  #missedPending: readonly string[] = NONE;
  #tally: QuorumTally | undefined;
  #stored: Buffer = EMPTY;
  #object: VersionedObject | undefined;

  /**
   * resolve/reject: the write's promise. With `as` (runPutAs) there is no reject: the promise
   * resolves with the outcome as mapped (#succeed, #fail).
   */
  constructor(
    private readonly env: PutEnv,
    private readonly req: PutRequest,
    private readonly resolve: (r: unknown) => void,
    private readonly reject: (err: unknown) => void,
    private readonly as: WriteOutcome<unknown> | undefined,
  ) {}

  #succeed(stored: Buffer): void {
    const as = this.as;
    if (as === undefined) this.resolve(stored);
    else settleMapped(this.resolve, this.reject, as.stored, stored, undefined);
  }

  #fail(err: unknown): void {
    const as = this.as;
    if (as === undefined) this.reject(err);
    else settleMapped(this.resolve, this.reject, as.failed, err, undefined);
  }

  /** Plans, checks W, writes locally (synchronously when the keyspace can). Throws go to the promise. */
  start(): void {
    const { env, req } = this;
    this.#deadline = env.timers.now() + req.timeoutMs;
    const plan = planTargets(env.ring, req.slot, env.isUp, req.sloppy);
    this.#plan = plan;
    let selfPrimary = false;
    for (let i = 0; i < plan.targets.length; i++) if (plan.targets[i]!.id === env.self && plan.targets[i]!.primary) selfPrimary = true;
    if (!selfPrimary) assert.fail('put_fsm runs only on an up primary (route first)');
    // A bad W (e.g. more than N) is the client's error: thrown before anything is written.
    const resolved = resolveQuorum(req.w, replicationOf(env.ring, env.self));
    // Pending replicas (a join or leave in progress) that are up get the write too, and each raises
    // the quorum by one (Cassandra's blockFor): then W of the acks are on the current replicas AND
    // W on the target ones, so a read at R finds the write on either side of the switch.
    const allPending = env.pendingReplicas?.(req.slot) ?? NONE;
    const pending = allPending.length === 0 ? NONE : allPending.filter((id) => env.isUp(id) && !plan.targets.some((x) => x.id === id));
    this.#pending = pending;
    this.#targets = pending.length === 0 ? plan.targets : [...plan.targets, ...pending.map((id) => ({ id, dc: env.ring.member(id)?.dc ?? '', primary: true }))];
    const need = pending.length === 0 ? resolved : { total: resolved.total + pending.length, perDc: resolved.perDc };
    const tally = new QuorumTally(this.#targets, need, req.sloppy ? WRITE_SLOPPY : WRITE_STRICT);
    this.#tally = tally;
    for (let i = 0; i < plan.down.length; i++) tally.add(plan.down[i]!, 'error');
    const early = tally.decide();
    if (early.kind === 'insufficient') {
      // Riak's insufficient_vnodes: not enough replicas reachable to ever meet W; write nothing.
      env.stats.writeNoQuorum++;
      throw new NoQuorumError('write', { got: 0, need: early.need, ...(early.dc === undefined ? {} : { dc: early.dc }) });
    }
    if (allPending.length !== pending.length) {
      this.#missedPending = allPending.filter((id) => !env.isUp(id) && !plan.targets.some((x) => x.id === id));
    }

    // The request is a WriteRequest as it is (value, expiresAtMs, context). The stored bytes are
    // fanned out as they are; the object is decoded only for a transport without the bytes form
    // or for a pending replica's hint (both rare), once.
    const write = env.local.coordinateWrite(req.key, req);
    if (write instanceof Promise) {
      write.then(
        (w) => this.#written(w),
        (err: unknown) => this.#fail(err),
      );
    } else {
      this.#written(write);
    }
  }

  #written(local: StoredWrite): void {
    this.#stored = local.bytes;
    whenDurable(local.settled, this);
  }

  /** The objectOf() of the fan-out: the stored bytes decoded, once. */
  readonly #objectOf = (): VersionedObject => (this.#object ??= decodeObject(this.#stored));

  #missed(id: string): void {
    const env = this.env;
    if (env.pendingMissed !== undefined) env.background.track(
      env.pendingMissed(id, this.req.key, this.#objectOf()).then(
        () => undefined,
        (err: unknown) => env.log('warn', `put_fsm: no hint kept for pending replica ${id}: ${String(err)}`),
      ),
    );
  }

  /** The local write failed (before any replica was asked): the request fails with its error. */
  storeFailed(err: unknown): void {
    this.#fail(err);
  }

  /** The local write is durable: it counts as the first ack; fan the stored bytes out. */
  durable(): void {
    const { env, req } = this;
    const plan = this.#plan!;
    for (let i = 0; i < this.#missedPending.length; i++) this.#missed(this.#missedPending[i]!);
    this.#settle(this.#tally!.add(env.self, 'ok'));
    const remainingMs = this.#deadline - env.timers.now();
    if (!this.#done && remainingMs <= 0) this.#settle(this.#tally!.insufficient());
    if (!this.#done) env.deadlines.add(this, this.#deadline);

    let plain: ReplicaPutOptions | undefined;
    const targets = this.#targets;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      if (t.id === env.self || (plan.down.length > 0 && plan.down.includes(t.id))) continue;
      const hintFor = plan.hintFor.size === 0 ? undefined : plan.hintFor.get(t.id);
      const timeoutMs = Math.max(1, this.#deadline - env.timers.now());
      const opts = hintFor === undefined ? (plain ??= { timeoutMs }) : { timeoutMs, hintFor };
      // This fsm is the callback (replicaPutDone), not a promise chain or a closure per target:
      // every write fans out to N-1.
      env.background.begin();
      replicaPutBytesThen(env.transport, t.id, req.key, this.#stored, this.#objectOf, opts, this);
    }
  }

  /** A replica put of the fan-out ended (undefined: durable there). */
  replicaPutDone(node: string, err: unknown): void {
    this.env.background.end();
    try {
      this.#onAnswer(node, err);
    } catch (bug) {
      // Never into the transport's loop over a batch's callbacks (the other puts must settle).
      this.env.log('error', `put_fsm: answer of ${node} not handled: ${String(bug)}`);
    }
  }

  onDeadline(): void {
    this.#settle(this.#tally!.insufficient());
  }

  #settle(d: QuorumDecision): void {
    if (this.#done) return;
    if (d.kind === 'enough') {
      this.#done = true;
      this.env.deadlines.remove(this);
      this.#succeed(this.#stored);
    } else if (d.kind === 'insufficient') {
      this.#done = true;
      this.env.deadlines.remove(this);
      this.env.stats.writeNoQuorum++;
      this.#fail(new NoQuorumError('write', d));
    }
  }

  #onAnswer(id: string, err: unknown): void {
    const env = this.env;
    if (err === undefined) {
      if (this.#done) env.stats.lateAcks++;
      this.#settle(this.#tally!.add(id, 'ok'));
      return;
    }
    if (this.#done) env.stats.lateWriteErrors++;
    env.log('debug', `put_fsm: replica put to ${id} failed: ${String(err)}`);
    if (this.#pending.includes(id)) this.#missed(id);
    this.#settle(this.#tally!.add(id, 'error'));
  }
}

const EMPTY = Buffer.alloc(0);
const NONE_TARGETS: readonly QuorumTarget[] = Object.freeze([]);
const WRITE_SLOPPY = Object.freeze({ op: 'write', sloppy: true } as const);
const WRITE_STRICT = Object.freeze({ op: 'write', sloppy: false } as const);

/**
 * The writes of one engine batch share its `settled` promise (Keyspace.writeStored), and they are
 * queued in one synchronous stretch: one continuation on that promise runs all of them, in order,
 * instead of one continuation (and one derived promise) per write.
 */
let lastSettled: Promise<void> | undefined;
let lastWaiters: PutFsm[] = [];

function whenDurable(settled: Promise<void>, fsm: PutFsm): void {
  if (settled === lastSettled) {
    lastWaiters.push(fsm);
    return;
  }
  const waiters: PutFsm[] = [fsm];
  lastSettled = settled;
  lastWaiters = waiters;
  settled.then(
    () => {
      if (lastSettled === settled) lastSettled = undefined;
      for (let i = 0; i < waiters.length; i++) runWaiter(waiters[i]!, undefined, false);
    },
    (err: unknown) => {
      if (lastSettled === settled) lastSettled = undefined;
      for (let i = 0; i < waiters.length; i++) runWaiter(waiters[i]!, err, true);
    },
  );
}

/** One waiter of a batch; a throw (a bug) must not keep the batch's other writes from going on. */
function runWaiter(w: PutFsm, err: unknown, failed: boolean): void {
  try {
    if (failed) w.storeFailed(err);
    else w.durable();
  } catch (bug) {
    w.storeFailed(bug);
  }
}
