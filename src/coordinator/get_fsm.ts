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
import type { LocalReplica } from './local_replica.js';
import { EMPTY_OBJECT, type VersionedObject, type WriteOptions } from './object.js';
import { QuorumTally, resolveQuorum, type QuorumSpec } from './quorum.js';
import { reconcile } from './read_repair.js';
import type { ReplicaTransport } from './replica_transport.js';
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

/** Runs one read; resolves with the merged object (EMPTY_OBJECT: not found), or rejects. */
export async function runGet(env: GetEnv, req: GetRequest): Promise<VersionedObject> {
  const deadline = env.timers.now() + req.timeoutMs;
  const plan = planTargets(env.ring, req.slot, env.isUp, req.sloppy);
  const need = resolveQuorum(req.r, replicationOf(env.ring, env.self));
  const tally = new QuorumTally(plan.targets, need, { op: 'read', sloppy: req.sloppy, notfoundOk: req.notfoundOk });
  /** id -> its object, or null for notfound; in arrival order (reconcile lists stale ones so). */
  const answers = new Map<string, VersionedObject | null>();
  for (const id of plan.down) tally.add(id, 'error');

  return new Promise<VersionedObject>((resolve, reject) => {
    let replied = false;
    let finished = false;
    let cancelTimer: () => void = () => undefined;

    const reply = (): void => {
      if (replied) return;
      const d = tally.decide();
      if (d.kind === 'pending') return;
      replied = true;
      if (d.kind === 'enough') {
        resolve(d.found ? reconcile(answers, env.writeOptions).merged : EMPTY_OBJECT);
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
      repair(env, req, plan.hintFor, answers);
    };
    const onAnswer = (id: string, obj: VersionedObject | undefined): void => {
      if (finished) return; // past the deadline: neither counted nor repaired
      if (replied) env.stats.lateReadAnswers++;
      if (obj === undefined) {
        tally.add(id, 'error');
      } else {
        const absent = isAbsent(obj);
        answers.set(id, absent ? null : obj);
        tally.add(id, absent ? 'notfound' : 'ok');
      }
      reply();
      if (tally.allAnswered()) finish();
    };

    reply();
    if (tally.allAnswered()) {
      finish();
      return;
    }
    cancelTimer = env.timers.after(deadline - env.timers.now(), finish);
    for (const t of plan.targets) {
      if (plan.down.includes(t.id)) continue;
      const asked =
        t.id === env.self ? env.local.read(req.key) : env.transport.replicaGet(t.id, req.key, { timeoutMs: Math.max(1, deadline - env.timers.now()) });
      env.background.track(
        asked.then(
          (obj) => onAnswer(t.id, obj),
          (err: unknown) => {
            env.log('debug', `get_fsm: replica get from ${t.id} failed: ${String(err)}`);
            onAnswer(t.id, undefined);
          },
        ),
      );
    }
  });
}

/** Sends the merge of everything seen to the replicas whose answers lacked something. */
function repair(
  env: GetEnv,
  req: GetRequest,
  hintFor: ReadonlyMap<string, string>,
  answers: ReadonlyMap<string, VersionedObject | null>,
): void {
  if (answers.size < 2) return;
  const { merged, stale } = reconcile(answers, env.writeOptions);
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
