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
import type { Context } from './dvv.js';
import { NoQuorumError } from './fsm_errors.js';
import { planTargets, replicationOf, type BackgroundWork, type FsmStats, type FsmTimers } from './fsm_env.js';
import type { LocalReplica } from './local_replica.js';
import { decodeObject, type VersionedObject } from './object.js';
import { QuorumTally, resolveQuorum, type QuorumDecision, type QuorumSpec } from './quorum.js';
import { replicaPutBytesThen, type ReplicaTransport } from './replica_transport.js';
import type { Ring } from './ring.js';
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
 * stored object, not to be written into), or rejects (see header).
 */
export async function runPut(env: PutEnv, req: PutRequest): Promise<Buffer> {
  const start = env.timers.now();
  const deadline = start + req.timeoutMs;
  const plan = planTargets(env.ring, req.slot, env.isUp, req.sloppy);
  assert(plan.targets.some((x) => x.id === env.self && x.primary), 'put_fsm runs only on an up primary (route first)');
  // A bad W (e.g. more than N) is the client's error: thrown before anything is written.
  const resolved = resolveQuorum(req.w, replicationOf(env.ring, env.self));
  // Pending replicas (a join or leave in progress) that are up get the write too, and each raises
  // the quorum by one (Cassandra's blockFor): then W of the acks are on the current replicas AND
  // W on the target ones, so a read at R finds the write on either side of the switch.
  const allPending = env.pendingReplicas?.(req.slot) ?? NONE;
  const pending = allPending.length === 0 ? NONE : allPending.filter((id) => env.isUp(id) && !plan.targets.some((x) => x.id === id));
  const targets = pending.length === 0 ? plan.targets : [...plan.targets, ...pending.map((id) => ({ id, dc: env.ring.member(id)?.dc ?? '', primary: true }))];
  const need = pending.length === 0 ? resolved : { total: resolved.total + pending.length, perDc: resolved.perDc };
  const tally = new QuorumTally(targets, need, { op: 'write', sloppy: req.sloppy });
  for (const id of plan.down) tally.add(id, 'error');
  const early = tally.decide();
  if (early.kind === 'insufficient') {
    // Riak's insufficient_vnodes: not enough replicas reachable to ever meet W; write nothing.
    env.stats.writeNoQuorum++;
    throw new NoQuorumError('write', { got: 0, need: early.need, ...(early.dc === undefined ? {} : { dc: early.dc }) });
  }

  // The request is a WriteRequest as it is (value, expiresAtMs, context). The stored bytes are
  // fanned out as they are; the object is decoded only for a transport without the bytes form
  // or for a pending replica's hint (both rare), once.
  const write = env.local.coordinateWrite(req.key, req);
  const local = write instanceof Promise ? await write : write;
  await local.settled;
  const stored = local.bytes;
  let object: VersionedObject | undefined;
  const objectOf = (): VersionedObject => (object ??= decodeObject(stored));
  const missed = (id: string): void => {
    if (env.pendingMissed !== undefined) env.background.track(
      env.pendingMissed(id, req.key, objectOf()).then(
        () => undefined,
        (err: unknown) => env.log('warn', `put_fsm: no hint kept for pending replica ${id}: ${String(err)}`),
      ),
    );
  };
  if (allPending.length !== pending.length) for (const id of allPending) if (!env.isUp(id) && !plan.targets.some((x) => x.id === id)) missed(id);

  return new Promise<Buffer>((resolve, reject) => {
    let done = false;
    let cancelTimer: () => void = () => undefined;
    const settle = (d: QuorumDecision): void => {
      if (done) return;
      if (d.kind === 'enough') {
        done = true;
        cancelTimer();
        resolve(stored);
      } else if (d.kind === 'insufficient') {
        done = true;
        cancelTimer();
        env.stats.writeNoQuorum++;
        reject(new NoQuorumError('write', d));
      }
    };

    const onAnswer = (id: string, err: unknown): void => {
      if (err === undefined) {
        if (done) env.stats.lateAcks++;
        settle(tally.add(id, 'ok'));
        return;
      }
      if (done) env.stats.lateWriteErrors++;
      env.log('debug', `put_fsm: replica put to ${id} failed: ${String(err)}`);
      if (pending.includes(id)) missed(id);
      settle(tally.add(id, 'error'));
    };

    settle(tally.add(env.self, 'ok'));
    const remainingMs = deadline - env.timers.now();
    if (!done && remainingMs <= 0) settle(tally.insufficient());
    if (!done) cancelTimer = env.timers.after(remainingMs, () => settle(tally.insufficient()));

    for (const t of targets) {
      if (t.id === env.self || plan.down.includes(t.id)) continue;
      const hintFor = plan.hintFor.get(t.id);
      const opts = { timeoutMs: Math.max(1, deadline - env.timers.now()), ...(hintFor === undefined ? {} : { hintFor }) };
      // A callback per target, not a promise chain (replicaPutThen): every write fans out to N-1.
      env.background.begin();
      replicaPutBytesThen(env.transport, t.id, req.key, stored, objectOf, opts, (err) => {
        env.background.end();
        try {
          onAnswer(t.id, err);
        } catch (bug) {
          // Never into the transport's loop over a batch's callbacks (the other puts must settle).
          env.log('error', `put_fsm: answer of ${t.id} not handled: ${String(bug)}`);
        }
      });
    }
  });
}
