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
import { NoQuorumError } from './fsm_errors.js';
import { isAbsent, planTargets, replicationOf, type BackgroundWork, type FsmStats, type FsmTimers } from './fsm_env.js';
import { EMPTY_OBJECT_BYTES, type LocalReplica } from './local_replica.js';
import { EMPTY_OBJECT, type VersionedObject, type WriteOptions } from './object.js';
import { QuorumTally, resolveQuorum, type QuorumSpec, type QuorumTarget } from './quorum.js';
import { reconcile, type Reconciled } from './read_repair.js';
import { decodeReplicaAnswer, replicaGetThen, type ReplicaTransport } from './replica_transport.js';
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
}

export interface GetEnv {
  readonly self: string;
  readonly ring: Ring;
  readonly isUp: (id: string) => boolean;
  readonly local: LocalReplica;
  readonly transport: ReplicaTransport;
  readonly timers: FsmTimers;
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
 * Runs one read; resolves with the merged object (EMPTY_OBJECT: not found), or rejects. Throws
 * synchronously for a bad R (QuorumError) before anything is asked: not an async function, so a
 * read is the one promise below (Coordinator.get turns the throw into a rejection).
 */
export function runGet(env: GetEnv, req: GetRequest): Promise<VersionedObject> {
  const start = env.timers.now();
  const deadline = start + req.timeoutMs;
  const plan = planTargets(env.ring, req.slot, env.isUp, req.sloppy);
  const need = resolveQuorum(req.r, replicationOf(env.ring, env.self));
  const tally = new QuorumTally(plan.targets, need, { op: 'read', sloppy: req.sloppy, notfoundOk: req.notfoundOk });
  /** id -> its object, or null for notfound; in arrival order (reconcile lists stale ones so). */
  const answers = new Map<string, VersionedObject | null>();
  for (const id of plan.down) tally.add(id, 'error');
  const live = plan.down.length === 0 ? plan.targets : plan.targets.filter((x) => !plan.down.includes(x.id));
  const quorumFirst = req.fanout === 'quorum' && need.perDc.size === 0 && need.total < live.length;
  const order = quorumFirst ? quorumOrder(live, env.self) : live;

  return new Promise<VersionedObject>((resolve, reject) => {
    let replied = false;
    let finished = false;
    let cancelTimer: () => void = () => undefined;
    let asked = 0;
    let answered = 0;
    /** True while a loop of ask() runs: a synchronous answer must not finish the read early. */
    let sending = false;
    /** How far the running ask loop goes (raised by answers that arrive synchronously within it). */
    let pendingUpTo = 0;
    /**
     * This node's own answer when it came from its stored bytes (readStoredNow): the bytes
     * (EMPTY_OBJECT_BYTES for absent) and their object. A remote answer with the same bytes is
     * the same object (decoding is a function of the bytes).
     */
    let localBytes: Buffer | undefined;
    let localObject: VersionedObject | undefined;
    /** The reply's reconcile and the number of answers it saw (reused by read repair when no more came). */
    let replyMerge: { readonly size: number; readonly rec: Reconciled } | undefined;

    const reply = (): void => {
      if (replied) return;
      const d = tally.decide();
      if (d.kind === 'pending') return;
      replied = true;
      if (d.kind === 'enough') {
        if (!d.found) {
          resolve(EMPTY_OBJECT);
        } else {
          const rec = reconcile(answers, env.writeOptions);
          replyMerge = { size: answers.size, rec };
          resolve(rec.merged);
          // The first answers disagree: the replicas not asked yet are likely stale as well.
          if (rec.stale.length > 0) askUpTo(order.length);
        }
      } else if (d.kind === 'notfound') {
        resolve(EMPTY_OBJECT);
      } else {
        env.stats.readNoQuorum++;
        reject(new NoQuorumError('read', d));
      }
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      cancelTimer();
      if (!replied) {
        replied = true;
        env.stats.readNoQuorum++;
        reject(new NoQuorumError('read', tally.insufficient()));
      }
      repair(env, req, plan.hintFor, answers, replyMerge !== undefined && replyMerge.size === answers.size ? replyMerge.rec : undefined);
    };
    /** Every asked replica answered: done, or (no decision yet) ask the rest. */
    const check = (): void => {
      if (finished || sending || answered < asked) return;
      if (!replied && asked < order.length) askUpTo(order.length);
      else finish();
    };
    const onAnswer = (id: string, obj: VersionedObject | undefined): void => {
      if (finished) return; // past the deadline: neither counted nor repaired
      answered++;
      if (replied) env.stats.lateReadAnswers++;
      if (obj === undefined) {
        tally.add(id, 'error');
        // A replacement for a failed replica while the answer is still open.
        if (!replied && asked < order.length) askUpTo(asked + 1);
      } else {
        const absent = isAbsent(obj);
        answers.set(id, absent ? null : obj);
        tally.add(id, absent ? 'notfound' : 'ok');
      }
      reply();
      check();
    };
    const failed = (id: string, err: unknown): void => {
      env.log('debug', `get_fsm: replica get from ${id} failed: ${String(err)}`);
      onAnswer(id, undefined);
    };
    const ask = (id: string): void => {
      asked++;
      if (id !== env.self) {
        env.background.begin();
        if (env.transport.replicaGetBytesNotify !== undefined) {
          // The answer as bytes: equal to this node's stored bytes (replicas in sync, the usual
          // read) it is this node's object, already decoded; only a differing answer is decoded.
          env.transport.replicaGetBytesNotify(id, req.key, { timeoutMs: Math.max(1, deadline - env.timers.now()) }, (bytes, err) => {
            env.background.end();
            try {
              if (bytes === undefined) {
                failed(id, err);
                return;
              }
              let obj: VersionedObject;
              if (localObject !== undefined && bytes.equals(localBytes!)) {
                env.stats.readAnswersSameBytes++;
                obj = localObject;
              } else {
                try {
                  obj = decodeReplicaAnswer(id, bytes);
                } catch (bad) {
                  failed(id, bad);
                  return;
                }
              }
              onAnswer(id, obj);
            } catch (bug) {
              env.log('error', `get_fsm: answer of ${id} not handled: ${String(bug)}`);
            }
          });
          return;
        }
        // A callback, not a promise chain (replicaGetThen): one per remote read of every GET.
        replicaGetThen(env.transport, id, req.key, { timeoutMs: Math.max(1, deadline - env.timers.now()) }, (obj, err) => {
          env.background.end();
          try {
            if (obj === undefined) failed(id, err);
            else onAnswer(id, obj);
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
        } else {
          got = env.local.decodeStored(req.key, stored);
          if (!(got instanceof Promise)) {
            localBytes = stored ?? EMPTY_OBJECT_BYTES;
            localObject = got;
          }
        }
      } catch (err) {
        got = Promise.reject(err);
      }
      if (!(got instanceof Promise)) {
        onAnswer(id, got);
        return;
      }
      env.background.track(
        got.then(
          (obj) => onAnswer(id, obj),
          (err: unknown) => failed(id, err),
        ),
      );
    };
    const askUpTo = (n: number): void => {
      if (sending) {
        // Called from a synchronous answer inside the loop below: that loop goes on to n.
        pendingUpTo = Math.max(pendingUpTo, n);
        return;
      }
      sending = true;
      pendingUpTo = n;
      while (!finished && asked < Math.min(pendingUpTo, order.length)) ask(order[asked]!.id);
      sending = false;
      check();
    };

    reply();
    if (order.length === 0) {
      finish();
      return;
    }
    if (quorumFirst) {
      const hedgeMs = Math.min(deadline, start + req.timeoutMs * READ_HEDGE_FRACTION) - env.timers.now();
      cancelTimer = env.timers.after(hedgeMs, () => {
        if (finished) return;
        cancelTimer = env.timers.after(deadline - env.timers.now(), finish);
        if (!replied) askUpTo(order.length);
      });
      askUpTo(need.total);
    } else {
      cancelTimer = env.timers.after(deadline - env.timers.now(), finish);
      askUpTo(order.length);
    }
  });
}

/** 'quorum' reads: this node first (a local read), then the other targets from a rotating start. */
function quorumOrder(live: readonly QuorumTarget[], self: string): QuorumTarget[] {
  const out: QuorumTarget[] = [];
  const others: QuorumTarget[] = [];
  for (const x of live) (x.id === self ? out : others).push(x);
  const k = others.length === 0 ? 0 : rotation++ % others.length;
  rotation %= 1 << 30;
  for (let i = 0; i < others.length; i++) out.push(others[(k + i) % others.length]!);
  return out;
}

/** Sends the merge of everything seen to the replicas whose answers lacked something. */
function repair(
  env: GetEnv,
  req: GetRequest,
  hintFor: ReadonlyMap<string, string>,
  answers: ReadonlyMap<string, VersionedObject | null>,
  /** The reply's reconcile of these same answers, when no answer came after it (reconcile once). */
  known: Reconciled | undefined,
): void {
  if (answers.size < 2) return;
  const { merged, stale } = known ?? reconcile(answers, env.writeOptions);
  const targets = [...stale];
  for (const [id, obj] of answers) {
    if (obj !== null && !stale.includes(id) && !sameClockTimes(obj, merged)) targets.push(id);
  }
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
