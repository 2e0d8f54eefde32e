/**
 * The read path's async shell (Riak's get_fsm around QuorumTally and read_repair.reconcile;
 * ARCHITECTURE.md section 3). Any node may coordinate a read.
 *
 *   ask every target (this node's own replica locally, the others through the transport)
 *     -> at R counted answers: reply with the merge of the answers so far
 *        (notfound_ok, as Riak 2: "I have nothing" counts toward R; an all-notfound quorum
 *        replies EMPTY_OBJECT; with notfoundOk = false the tally decides 'notfound' once
 *        the replicas agree the key is absent)
 *     -> R no longer reachable, or the deadline -> NoQuorumError
 *   then, in the background: keep collecting until every target answered or the deadline,
 *   reconcile everything seen, and send the merged object to each replica whose answer lacked
 *   something (read repair), at most MAX_READ_REPAIRS_IN_FLIGHT at once per node (beyond that
 *   a repair is skipped and counted: anti-entropy catches it later).
 *
 * Read repair also goes to a replica whose answer agrees with the merge on clock and siblings
 * but not on clockTimesMs (the pruning metadata, which read_repair.needsRepair ignores): a
 * write with a client context stamps its coordinator's time on the entries the context
 * advanced, so replicas can agree on everything else and still differ there. Repairing it
 * leaves the replicas byte-identical, which is what Merkle anti-entropy compares
 * (fsm_nothing_lost.property.test.ts checks identical bytes after convergence).
 */

import assert from 'node:assert';
import type { DeadlineEntry, DeadlineQueue } from './deadline_queue.js';
import { NoQuorumError } from './fsm_errors.js';
import { isAbsent, planTargets, replicationOf, settleMapped, type BackgroundWork, type FsmStats, type FsmTimers, type TargetPlan } from './fsm_env.js';
import { EMPTY_OBJECT_BYTES, type LocalReplica } from './local_replica.js';
import { decodeObject, EMPTY_OBJECT, type VersionedObject, type WriteOptions } from './object.js';
import { plainValueView } from './object_plain_write.js';
import { QuorumTally, resolveQuorum, type QuorumSpec, type QuorumTarget } from './quorum.js';
import { reconcileLists, type Reconciled } from './read_repair.js';
import { decodeReplicaAnswer, replicaGetThen, type ReplicaGetBytesListener, type ReplicaTransport } from './replica_transport.js';
import type { Ring } from './ring.js';
import type { LogFn } from '../server/logger.js';

/** Default cap on read repairs in flight per node (each holds one merged object in memory). */
export const MAX_READ_REPAIRS_IN_FLIGHT = 256;

export interface GetRequest {
  readonly key: Buffer;
  readonly slot: number;
  readonly r: QuorumSpec;
  readonly sloppy: boolean;
  readonly notfoundOk: boolean;
  readonly timeoutMs: number;
  /** Which replicas are asked first (default 'all'). */
  readonly fanout?: ReadFanout;
  /**
   * GET's read (runGetValue): the time its live value is taken at. When set, a read whose
   * counted answers were all this node's stored bytes, of this node's own plain shape (one clock
   * entry, its own actor, at most one sibling: object_plain_write.ts), resolves with that value
   * without decoding the object (replicas in sync: the usual read). See ReadValue.
   */
  readonly valueAtMs?: number;
}

/**
 * What runGetValue resolves with. A Buffer: the only live value, a READ-ONLY view of this node's
 * stored bytes (immutable engine memory, KVEngine.getSync); null: no live value (the object is a
 * tombstone or expired at valueAtMs); an object: the merged object, as runGet gives it (then the
 * caller takes its live values). The first two are exactly liveValues(runGet's object,
 * valueAtMs), for the same answers.
 */
export type ReadValue = Buffer | null | VersionedObject;

export interface GetEnv {
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
  /** Merge options (max-siblings, conflict policy, pruning) from the running config. */
  readonly writeOptions: WriteOptions;
  /** Shared per node: read repairs in flight, and the most allowed (MAX_READ_REPAIRS_IN_FLIGHT). */
  readonly repairs: { inflight: number; readonly max: number };
}

/**
 * Which replicas a read asks first. 'all': every target at once (Riak's get_fsm). 'quorum': R of
 * them (this node's own replica first, answered from memory without a promise when it can be,
 * then the others from a rotating start, so repeated reads of a key visit every replica), and
 * the rest only when needed: a replacement for each one that fails; all of them when the first
 * answers disagree (read repair then reaches every replica the key has), when the first wave
 * answered without a decision (notfound_ok off), or when no decision came within
 * READ_HEDGE_FRACTION of the request timeout (a replica that is slow but not known down).
 * Replicas never asked are brought up to date by a later read or by anti-entropy.
 */
export type ReadFanout = 'all' | 'quorum';

/** 'quorum' fan-out: share of the request timeout after which an undecided read asks every replica. */
export const READ_HEDGE_FRACTION = 0.5;

/** Start of the rotation over the other replicas for 'quorum' reads (module-wide, any order will do). */
let rotation = 0;

/**
 * Runs one read; resolves with the merged object (EMPTY_OBJECT: not found), or rejects (a bad R
 * too, before anything is asked). The read is this one promise; its steps are GetFsm's methods.
 */
export function runGet(env: GetEnv, req: GetRequest): Promise<VersionedObject> {
  assert(req.valueAtMs === undefined, 'runGet resolves with objects: valueAtMs is runGetValue\'s');
  // Without valueAtMs the fsm resolves with objects only (#reply).
  return new Promise<VersionedObject>((resolve, reject) => new GetFsm(env, req, resolve as (r: unknown) => void, reject, undefined).start());
}

/**
 * runGet for a caller that wants the live value at `req.valueAtMs` (GET): resolves with a
 * ReadValue. The decisions, read repair and errors are runGet's; only the decode of this
 * node's object is skipped when every counted answer was its stored bytes.
 */
export function runGetValue(env: GetEnv, req: GetRequest): Promise<ReadValue> {
  assert(req.valueAtMs !== undefined, 'runGetValue needs valueAtMs');
  return new Promise<ReadValue>((resolve, reject) => new GetFsm(env, req, resolve as (r: unknown) => void, reject, undefined).start());
}

/**
 * How a caller takes a read's outcome as the value of the read's own promise (GET: its reply):
 * `value` gets runGetValue's ReadValue and the request's valueAtMs, `failed` every error
 * runGetValue would reject with. A throw of either rejects the promise with it.
 */
export interface ReadOutcome<T> {
  readonly value: (r: ReadValue, atMs: number) => T;
  readonly failed: (err: unknown) => T;
}

/**
 * runGetValue(...).then(as.value, as.failed) as one promise: the read's own resolves with the
 * outcome as mapped, where a continuation would make a second promise and a microtask (every
 * GET of a cluster).
 */
export function runGetValueAs<T>(env: GetEnv, req: GetRequest, as: ReadOutcome<T>): Promise<T> {
  assert(req.valueAtMs !== undefined, 'runGetValueAs needs valueAtMs');
  return new Promise<T>((resolve, reject) => {
    try {
      new GetFsm(env, req, resolve as (r: unknown) => void, reject, as as ReadOutcome<unknown>).start();
    } catch (err) {
      // A bad R, thrown before anything is asked (runGetValue rejects with it).
      resolve(as.failed(err));
    }
  });
}

/**
 * One read's state, as one object (fields and methods, no closure per step): the tally, the
 * answers in arrival order, how far the asking went, and its place in the deadline queue.
 */
class GetFsm implements DeadlineEntry, ReplicaGetBytesListener {
  deadlineAtMs = 0;
  deadlineSlot = -1;
  #deadline = 0;
  /** 'quorum' fan-out: the deadline queued now is the hedge (ask the rest), not the request's. */
  #hedgePending = false;
  #plan: TargetPlan = EMPTY_PLAN;
  #tally: QuorumTally | undefined;
  #order: readonly QuorumTarget[] = NO_TARGETS;
  /**
   * Answers in arrival order (reconcile lists stale ones so): replica ids and their objects, null
   * for notfound; the first #count slots are used (arrays of the targets' count, made in start()).
   */
  #ids: string[] = NO_IDS;
  #objs: (VersionedObject | null)[] = NO_OBJS;
  #count = 0;
  #replied = false;
  #finished = false;
  #asked = 0;
  #answered = 0;
  /** True while a loop of ask() runs: a synchronous answer must not finish the read early. */
  #sending = false;
  /** How far the running ask loop goes (raised by answers that arrive synchronously within it). */
  #pendingUpTo = 0;
  /**
   * This node's own answer when it came from its stored bytes (readStoredNow): the bytes
   * (EMPTY_OBJECT_BYTES for absent) and their object. A remote answer with the same bytes is
   * the same object (decoding is a function of the bytes).
   */
  #localBytes: Buffer | undefined;
  #localObject: VersionedObject | undefined;
  /**
   * runGetValue: this node's answer was taken undecoded (#takePlain): #localBytes are of the
   * plain shape, its answers (this node's and every remote one with the same bytes) are
   * LOCAL_PLAIN in #objs until #materialize decodes them, and #localValue is its live value.
   */
  #localPlain = false;
  #localValue: Buffer | null = null;
  /** The reply's reconcile and the number of answers it saw (reused by read repair when no more came). */
  #replyRec: Reconciled | undefined;
  #replySize = 0;

  /** resolve/reject: the read's promise; `as` (runGetValueAs): how its outcome settles it (#succeed, #fail). */
  constructor(
    private readonly env: GetEnv,
    private readonly req: GetRequest,
    private readonly resolve: (r: unknown) => void,
    private readonly reject: (err: unknown) => void,
    private readonly as: ReadOutcome<unknown> | undefined,
  ) {}

  #succeed(r: ReadValue): void {
    const as = this.as;
    if (as === undefined) this.resolve(r);
    else settleMapped(this.resolve, this.reject, as.value, r, this.req.valueAtMs!);
  }

  #fail(err: unknown): void {
    const as = this.as;
    if (as === undefined) this.reject(err);
    else settleMapped(this.resolve, this.reject, as.failed, err, undefined);
  }

  start(): void {
    const { env, req } = this;
    const startMs = env.timers.now();
    this.#deadline = startMs + req.timeoutMs;
    const plan = planTargets(env.ring, req.slot, env.isUp, req.sloppy);
    this.#plan = plan;
    const need = resolveQuorum(req.r, replicationOf(env.ring, env.self));
    const tally = new QuorumTally(plan.targets, need, req.sloppy ? (req.notfoundOk ? READ_SLOPPY : READ_SLOPPY_NF) : req.notfoundOk ? READ_STRICT : READ_STRICT_NF);
    this.#tally = tally;
    for (let i = 0; i < plan.down.length; i++) tally.add(plan.down[i]!, 'error');
    const live = plan.down.length === 0 ? plan.targets : plan.targets.filter((x) => !plan.down.includes(x.id));
    const quorumFirst = req.fanout === 'quorum' && need.perDc.size === 0 && need.total < live.length;
    this.#order = quorumFirst ? quorumOrder(live, env.self) : live;
    this.#ids = new Array<string>(this.#order.length);
    this.#objs = new Array<VersionedObject | null>(this.#order.length);

    this.#reply();
    if (this.#order.length === 0) {
      this.#finish();
      return;
    }
    if (quorumFirst) {
      this.#hedgePending = true;
      env.deadlines.add(this, Math.min(this.#deadline, startMs + req.timeoutMs * READ_HEDGE_FRACTION));
      this.#askUpTo(need.total);
    } else {
      env.deadlines.add(this, this.#deadline);
      this.#askUpTo(this.#order.length);
    }
  }

  onDeadline(): void {
    if (this.#finished) return;
    if (this.#hedgePending) {
      // No decision within the hedge time: the request's own deadline from now on, and every
      // replica not asked yet is asked (a slow replica that is not known down).
      this.#hedgePending = false;
      this.env.deadlines.add(this, this.#deadline);
      if (!this.#replied) this.#askUpTo(this.#order.length);
      return;
    }
    this.#finish();
  }

  #reply(): void {
    if (this.#replied) return;
    const d = this.#tally!.decide();
    if (d.kind === 'pending') return;
    this.#replied = true;
    if (d.kind === 'enough') {
      if (!d.found) {
        this.#succeed(EMPTY_OBJECT);
      } else if (this.#allLocalPlain()) {
        // Every counted answer is this node's stored bytes: the merge is that object as it is
        // (#takePlain) and nothing is stale, so its live value is the reply.
        this.#succeed(this.#localValue);
      } else {
        this.#materialize();
        const rec = reconcileLists(this.#ids, this.#objs, this.env.writeOptions, this.#count);
        this.#replyRec = rec;
        this.#replySize = this.#count;
        this.#succeed(rec.merged);
        // The first answers disagree: the replicas not asked yet are likely stale as well.
        if (rec.stale.length > 0) this.#askUpTo(this.#order.length);
      }
    } else if (d.kind === 'notfound') {
      this.#succeed(EMPTY_OBJECT);
    } else {
      this.env.stats.readNoQuorum++;
      this.#fail(new NoQuorumError('read', d));
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.env.deadlines.remove(this);
    if (!this.#replied) {
      this.#replied = true;
      this.env.stats.readNoQuorum++;
      this.#fail(new NoQuorumError('read', this.#tally!.insufficient()));
    }
    // Every answer this node's own stored bytes: nothing to repair (repair() would find that).
    if (this.#allLocalPlain()) return;
    this.#materialize();
    const known = this.#replyRec !== undefined && this.#replySize === this.#count ? this.#replyRec : undefined;
    repair(this.env, this.req, this.#plan.hintFor, this.#ids, this.#objs, this.#count, known);
  }

  /** Every asked replica answered: done, or (no decision yet) ask the rest. */
  #check(): void {
    if (this.#finished || this.#sending || this.#answered < this.#asked) return;
    if (!this.#replied && this.#asked < this.#order.length) this.#askUpTo(this.#order.length);
    else this.#finish();
  }

  #onAnswer(id: string, obj: VersionedObject | undefined): void {
    if (this.#finished) return; // past the deadline: neither counted nor repaired
    this.#answered++;
    if (this.#replied) this.env.stats.lateReadAnswers++;
    if (obj === undefined) {
      this.#tally!.add(id, 'error');
      // A replacement for a failed replica while the answer is still open.
      if (!this.#replied && this.#asked < this.#order.length) this.#askUpTo(this.#asked + 1);
    } else {
      // LOCAL_PLAIN stands for an object of one clock entry: never absent.
      const absent = obj !== LOCAL_PLAIN && isAbsent(obj);
      let i = 0;
      while (i < this.#count && this.#ids[i] !== id) i++;
      if (i === this.#count) {
        // Each target is asked once, so at most order.length answers (asserted: the arrays are that long).
        if (!(i < this.#ids.length)) assert.fail(`get_fsm: answer ${i + 1} from ${id}, ${this.#ids.length} targets`);
        this.#ids[i] = id;
        this.#count++;
      }
      this.#objs[i] = absent ? null : obj;
      this.#tally!.add(id, absent ? 'notfound' : 'ok');
    }
    this.#reply();
    this.#check();
  }

  #failed(id: string, err: unknown): void {
    this.env.log('debug', `get_fsm: replica get from ${id} failed: ${String(err)}`);
    this.#onAnswer(id, undefined);
  }

  /** A remote read asked by #ask ended (the transport's listener form): bytes, or undefined and the error. */
  replicaGetBytesDone(node: string, bytes: Buffer | undefined, err: unknown): void {
    this.env.background.end();
    try {
      this.#onRemoteBytes(node, bytes, err);
    } catch (bug) {
      this.env.log('error', `get_fsm: answer of ${node} not handled: ${String(bug)}`);
    }
  }

  /** A remote replica's answer as bytes: this node's own object when they are its stored bytes. */
  #onRemoteBytes(id: string, bytes: Buffer | undefined, err: unknown): void {
    if (bytes === undefined) {
      this.#failed(id, err);
      return;
    }
    let obj: VersionedObject;
    if (this.#localBytes !== undefined && bytes.equals(this.#localBytes)) {
      this.env.stats.readAnswersSameBytes++;
      // #localBytes is set with #localObject, or undecoded (#localPlain) until #materialize.
      obj = this.#localObject ?? LOCAL_PLAIN;
    } else {
      try {
        obj = decodeReplicaAnswer(id, bytes);
      } catch (bad) {
        this.#failed(id, bad);
        return;
      }
    }
    this.#onAnswer(id, obj);
  }

  #ask(id: string): void {
    const { env, req } = this;
    this.#asked++;
    if (id !== env.self) {
      env.background.begin();
      const opts = { timeoutMs: Math.max(1, this.#deadline - env.timers.now()) };
      if (env.transport.replicaGetBytesNotify !== undefined) {
        // The answer as bytes: equal to this node's stored bytes (replicas in sync, the usual
        // read) it is this node's object, already decoded; only a differing answer is decoded.
        // This fsm is the callback (replicaGetBytesDone), not a closure per asked replica.
        env.transport.replicaGetBytesNotify(id, req.key, opts, this);
        return;
      }
      // A callback, not a promise chain (replicaGetThen): one per remote read of every GET.
      replicaGetThen(env.transport, id, req.key, opts, (obj, err) => {
        env.background.end();
        try {
          if (obj === undefined) this.#failed(id, err);
          else this.#onAnswer(id, obj);
        } catch (bug) {
          env.log('error', `get_fsm: answer of ${id} not handled: ${String(bug)}`);
        }
      });
      return;
    }
    let got: VersionedObject | Promise<VersionedObject>;
    try {
      const stored = env.local.readStoredNow(req.key);
      if (stored instanceof Promise) {
        got = stored;
      } else if (stored !== null && req.valueAtMs !== undefined && this.#takePlain(stored, req.valueAtMs)) {
        got = LOCAL_PLAIN;
      } else {
        got = env.local.decodeStored(req.key, stored);
        if (!(got instanceof Promise)) {
          this.#localBytes = stored ?? EMPTY_OBJECT_BYTES;
          this.#localObject = got;
        }
      }
    } catch (err) {
      got = Promise.reject(err);
    }
    if (!(got instanceof Promise)) {
      this.#onAnswer(id, got);
      return;
    }
    env.background.track(
      got.then(
        (obj) => this.#onAnswer(id, obj),
        (err: unknown) => this.#failed(id, err),
      ),
    );
  }

  /**
   * runGetValue: takes this node's stored bytes without decoding them when they are of its own
   * plain shape (plainValueView accepts exactly those, with every check decodeObject makes) and
   * the merge options keep such an object as it is when merged with itself (read_repair.ts
   * mergeKeepsAsIs: one sibling, one clock entry; config allows no less than 1 of either).
   */
  #takePlain(stored: Buffer, atMs: number): boolean {
    const wo = this.env.writeOptions;
    if (wo.maxSiblings < 1 || wo.vclockMaxEntries < 1) return false;
    const value = plainValueView(stored, this.env.local.actorUtf8, atMs);
    if (value === undefined) return false;
    this.#localBytes = stored;
    this.#localValue = value;
    this.#localPlain = true;
    return true;
  }

  /** Every counted answer so far is LOCAL_PLAIN (this node's undecoded bytes), and there is one. */
  #allLocalPlain(): boolean {
    if (!this.#localPlain || this.#localObject !== undefined || this.#count === 0) return false;
    for (let i = 0; i < this.#count; i++) if (this.#objs[i] !== LOCAL_PLAIN) return false;
    return true;
  }

  /** Decodes the undecoded local answer and puts its object in place of every LOCAL_PLAIN. */
  #materialize(): void {
    if (!this.#localPlain || this.#localObject !== undefined) return;
    // plainValueView accepted these bytes: they decode (object_plain_write.ts's contract).
    const obj = decodeObject(this.#localBytes!);
    this.#localObject = obj;
    for (let i = 0; i < this.#count; i++) if (this.#objs[i] === LOCAL_PLAIN) this.#objs[i] = obj;
  }

  #askUpTo(n: number): void {
    if (this.#sending) {
      // Called from a synchronous answer inside the loop below: that loop goes on to n.
      this.#pendingUpTo = Math.max(this.#pendingUpTo, n);
      return;
    }
    this.#sending = true;
    this.#pendingUpTo = n;
    const order = this.#order;
    while (!this.#finished && this.#asked < Math.min(this.#pendingUpTo, order.length)) this.#ask(order[this.#asked]!.id);
    this.#sending = false;
    this.#check();
  }
}

/**
 * Stands in #objs for this node's undecoded stored bytes (runGetValue's reads): never leaves the
 * fsm (#materialize replaces it before any merge, reply or repair sees an object).
 */
const LOCAL_PLAIN: VersionedObject = Object.freeze({ clock: new Map<string, number>(), siblings: Object.freeze([]) });

const NO_TARGETS: readonly QuorumTarget[] = Object.freeze([]);
const NO_IDS: string[] = [];
const NO_OBJS: (VersionedObject | null)[] = [];
const EMPTY_PLAN: TargetPlan = Object.freeze({ targets: NO_TARGETS, down: Object.freeze([]), hintFor: new Map<string, string>() });
const READ_SLOPPY = Object.freeze({ op: 'read', sloppy: true, notfoundOk: true } as const);
const READ_SLOPPY_NF = Object.freeze({ op: 'read', sloppy: true, notfoundOk: false } as const);
const READ_STRICT = Object.freeze({ op: 'read', sloppy: false, notfoundOk: true } as const);
const READ_STRICT_NF = Object.freeze({ op: 'read', sloppy: false, notfoundOk: false } as const);

/** 'quorum' reads: this node first (a local read), then the other targets from a rotating start. */
function quorumOrder(live: readonly QuorumTarget[], self: string): QuorumTarget[] {
  // One array of the final size (every GET of a cluster builds one): no side arrays or iterators.
  let selfAt = -1;
  for (let i = 0; i < live.length; i++) if (live[i]!.id === self) selfAt = i;
  const others = selfAt === -1 ? live.length : live.length - 1;
  const out = new Array<QuorumTarget>(live.length);
  let n = 0;
  if (selfAt !== -1) out[n++] = live[selfAt]!;
  const k = others === 0 ? 0 : rotation++ % others;
  rotation %= 1 << 30;
  for (let i = 0; i < others; i++) {
    // The ((k + i) % others)-th target other than this node, as an index into `live`.
    const m = (k + i) % others;
    out[n++] = live[selfAt !== -1 && m >= selfAt ? m + 1 : m]!;
  }
  return out;
}

/** Sends the merge of everything seen to the replicas whose answers lacked something. */
function repair(
  env: GetEnv,
  req: GetRequest,
  hintFor: ReadonlyMap<string, string>,
  /** The answers in arrival order, the first `count` of each: replica ids and their objects (null: notfound). */
  ids: readonly string[],
  objs: readonly (VersionedObject | null)[],
  count: number,
  /** The reply's reconcile of these same answers, when no answer came after it (reconcile once). */
  known: Reconciled | undefined,
): void {
  if (count < 2) return;
  const { merged, stale } = known ?? reconcileLists(ids, objs, env.writeOptions, count);
  // The usual read (every answer the same object, so nothing stale): no array built.
  let targets: string[] | undefined = stale.length === 0 ? undefined : [...stale];
  for (let i = 0; i < count; i++) {
    const obj = objs[i] ?? null;
    if (obj !== null && obj !== merged && !stale.includes(ids[i]!) && !sameClockTimes(obj, merged)) (targets ??= []).push(ids[i]!);
  }
  if (targets === undefined) return;
  for (const id of targets) {
    if (env.repairs.inflight >= env.repairs.max) {
      env.stats.readRepairsSkipped++;
      continue;
    }
    env.repairs.inflight++;
    env.stats.readRepairsSent++;
    const h = hintFor.get(id);
    // A repair gets a fresh budget: the request's deadline may be (nearly) spent by now.
    const timeoutMs = req.timeoutMs;
    const sent =
      id === env.self
        ? env.local.merge(req.key, merged).then(() => undefined)
        : env.transport.replicaPut(id, req.key, merged, { timeoutMs, ...(h === undefined ? {} : { hintFor: h }) });
    env.background.track(
      sent.then(
        () => {
          env.stats.readRepairsDone++;
        },
        (err: unknown) => {
          env.stats.readRepairErrors++;
          env.log('debug', `get_fsm: read repair of ${id} failed: ${String(err)}`);
        },
      ).finally(() => {
        env.repairs.inflight--;
        assert(env.repairs.inflight >= 0, 'read repair count went negative');
      }),
    );
  }
}

/** True when both objects carry the same clockTimesMs (a missing map or entry counts as 0). */
export function sameClockTimes(a: VersionedObject, b: VersionedObject): boolean {
  const ta = a.clockTimesMs;
  const tb = b.clockTimesMs;
  for (const actor of b.clock.keys()) if ((ta?.get(actor) ?? 0) !== (tb?.get(actor) ?? 0)) return false;
  for (const actor of a.clock.keys()) if ((ta?.get(actor) ?? 0) !== (tb?.get(actor) ?? 0)) return false;
  return true;
}
