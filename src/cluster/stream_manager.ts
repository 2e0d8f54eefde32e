/**
 * The async shell of elastic membership (issue 6): joins, leaves and forgets with data streaming,
 * around the pure ring_transition.ts / stream_plan.ts. One per node.
 *
 *   every tick (serialized; a tick never overlaps the previous one):
 *     current ring (up + leaving), target ring (up + joining) ─▶ RingTransition
 *     ├─ pendingReplicas(slot) for the write path: target-only replicas (refreshed per tick)
 *     ├─ current ring changed since the last tick:
 *     │    a member REMOVED (forget)  ─▶ tasks for slots we enter (removalGains)
 *     │    slots we were planned to lose and no longer hold ─▶ drop them after DROP grace
 *     ├─ we gain slots in the transition ─▶ tasks (after the settle delay when joining, so every
 *     │    coordinator has heard we are joining and sends us the writes meanwhile)
 *     ├─ run tasks: STREAM_SCAN chunks from a live current replica, merged with version vectors
 *     │    (stream_merge.ts: one page ahead, one engine batch per page), paced by
 *     │    stream-max-bytes-per-sec, position persisted per chunk (stream_progress.ts) so a
 *     │    restart of either side resumes where it stopped
 *     ├─ joining and every gained slot streamed ─▶ state `up` (gossiped: the new owner confirmed)
 *     ├─ every slot gained from a leaving member streamed ─▶ STREAM_CONFIRM to it
 *     └─ leaving and every gainer confirmed ─▶ state `left`, then onLeft() (the node stops)
 *
 * Safety argument (why no acknowledged write is lost): a write acknowledged before a gainer
 * starts scanning is in the scanned snapshot of some current replica or arrives as a pending
 * write; writes after it reach the gainer as pending-replica writes, which count toward the
 * raised quorum (put_fsm). Old replicas drop a slot only after the gainer is `up` plus a grace
 * of several gossip rounds in which coordinators still on the old view keep writing to both,
 * and only once no gainer of the slot is left: another joiner may still be streaming it from
 * them, with sources it planned before the current ring changed (sweepPlan). Should a source
 * still lack a slot (swept anyway, e.g. after a restart forgot what it owned, or not streamed
 * in yet), it refuses the scan (firstNotHeld, stream_source.ts) and the gainer asks its next source:
 * an empty answer would read as an empty slot, and the copy would be short.
 */
import assert from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Ring } from '../coordinator/ring.js';
import { RingTransition } from '../coordinator/ring_transition.js';
import type { Keyspace } from '../server/keyspace.js';
import type { LogFn } from '../server/logger.js';
import type { ClusterBus } from './bus.js';
import { targetWeightOf, weightPending, type MemberInfo, type MembershipTable } from './membership.js';
import { weightCommitReady } from './membership_weight.js';
import { realClock } from './gossip.js';
import {
  decodeStreamConfirm,
  decodeStreamScan,
  decodeStreamScanReply,
  encodeStreamConfirm,
  encodeStreamScan,
  StreamMessageType,
} from './stream_codec.js';
import { confirmTargets, leaveGainers, ownedSlots, planTasks, removalGains, sweepPlan, transitionGains } from './stream_plan.js';
import { slotRuns } from '../coordinator/ring_transition.js';
import { SLOT_COUNT } from '../coordinator/slot.js';
import {
  emptyProgress,
  MAX_STREAM_STATE_FILE_BYTES,
  parseProgress,
  serializeProgress,
  STREAM_STATE_FILE_NAME,
  type StreamProgress,
  type StreamTask,
} from './stream_progress.js';
import { mergeStreamPage, pageBytes, pullPages } from './stream_merge.js';
import { serveStreamScan, StreamScanRefusedError, type SlotHolding, type SlotNotHeld } from './stream_source.js';
import { decodeStreamViewReply, encodeStreamViewReply, gateOpen, JoinGateMessageType, membersToAsk, STREAM_VIEW_EVERY_MS, STREAM_VIEW_TIMEOUT_MS, type GateMember } from './join_gate.js';
import { chunkBytesFor, nextPaceMs } from './stream_throttle.js';

/** Gossip rounds a joining node waits before streaming, and old owners wait before dropping. */
export const SETTLE_GOSSIP_ROUNDS = 6;
/** Floor of that settle delay, ms. */
export const MIN_SETTLE_MS = 600;
/** Pause between ticks, ms. */
export const STREAM_TICK_MS = 100;
/** Deadline of one STREAM_SCAN / STREAM_CONFIRM request, ms. */
export const STREAM_REQUEST_TIMEOUT_MS = 15_000;
/** How long after a data-moving ring change strays are swept again, ms, and how often. */
export const STRAY_SWEEP_WINDOW_MS = 60_000;
export const STRAY_SWEEP_EVERY_MS = 3_000;
/** Tasks (slot runs) streamed concurrently (workers sharing one pace). */
export const STREAM_TASKS_IN_FLIGHT = 4;
/** Least time between two writes of the progress file, ms (it is also written at the end of each task). */
export const PROGRESS_PERSIST_EVERY_MS = 250;
/**
 * A member of a cluster that restarts sweeps the slots it holds in neither ring after this many
 * gossip rounds (at least RESTART_SWEEP_MIN_MS): slots that moved away while it was down (a node
 * joined, or it was a fallback) would otherwise stay as an extra copy. The delay lets gossip bring
 * its restored table up to date first, so it never drops a slot on a stale view.
 */
export const RESTART_SWEEP_GOSSIP_ROUNDS = 20;
export const RESTART_SWEEP_MIN_MS = 3_000;
/**
 * How long the write path reuses the transition before it rebuilds the rings to compare, ms: a
 * write does not pay two ring lookups. Safe because a STREAM_VIEW answer always rebuilds it (a
 * gainer scans only after the answer, so every write after the answer uses a view at least as
 * new), and writes before it are on the current replicas the gainer then scans.
 */
export const LIVE_TRANSITION_REUSE_MS = 20;
/** Least time between two STREAM_CONFIRMs to one leaving node, ms. */
export const CONFIRM_EVERY_MS = 1_000;

export type StreamPhase = 'idle' | 'joining' | 'streaming' | 'leaving' | 'left';

/** What CLUSTER INFO and INFO report (issue 6: slots and bytes moved and remaining). */
export interface StreamInfo {
  readonly phase: StreamPhase;
  /** Slots still to stream into this node (tasks not done plus gains not yet planned). */
  readonly slotsRemaining: number;
  readonly slotsStreamed: number;
  readonly bytesStreamed: number;
  readonly keysStreamed: number;
  /** bytes per streamed slot so far x slots remaining (0 before the first slot completes). */
  readonly bytesRemainingEstimate: number;
  readonly slotsDropped: number;
  readonly keysDropped: number;
  /** STREAM_SCANs this node refused since it started: slots it does not hold in full (stream_source.ts). */
  readonly scansRefused: number;
  /** Slots whose preflist differs between the current and the target ring (cluster-wide). */
  readonly ringSlotsMoving: number;
}

export interface StreamManagerOptions {
  readonly selfId: string;
  readonly table: MembershipTable;
  readonly updateSelf: (change: Partial<Omit<MemberInfo, 'id'>>) => void;
  readonly rings: { current(): Ring; target(): Ring };
  readonly isUp: (id: string) => boolean;
  readonly bus: ClusterBus;
  readonly keyspace: Keyspace;
  readonly maxBytesPerSec: () => number;
  readonly gossipIntervalMs: number;
  readonly dir: string;
  readonly progress: StreamProgress;
  readonly log: LogFn;
  /** The node left the ring (CLUSTER LEAVE done): stop it. */
  readonly onLeft: () => void;
}

export class StreamError extends Error {
  readonly code = 'ERR_STREAM';
}

/** Reads the persisted progress; a missing or damaged file is a fresh start (logged). */
export function loadStreamProgress(dir: string, log: LogFn): StreamProgress {
  const file = path.join(dir, STREAM_STATE_FILE_NAME);
  try {
    const st = fs.statSync(file);
    if (st.size > MAX_STREAM_STATE_FILE_BYTES) {
      log('warn', `stream: ${file} is ${st.size} bytes, over ${MAX_STREAM_STATE_FILE_BYTES}; streaming starts over`);
      return emptyProgress();
    }
    return parseProgress(fs.readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('warn', `stream: cannot use ${file} (${(err as Error).message}); streaming starts over`);
    return emptyProgress();
  }
}

/** Temp file + rename: a crash leaves the old progress or the new one. */
export function saveStreamProgress(dir: string, p: StreamProgress): void {
  const file = path.join(dir, STREAM_STATE_FILE_NAME);
  fs.writeFileSync(`${file}.tmp`, serializeProgress(p));
  fs.renameSync(`${file}.tmp`, file);
}

export class StreamManager implements SlotHolding {
  readonly #o: StreamManagerOptions;
  readonly #p: StreamProgress;
  readonly #settleMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  #transition: RingTransition | undefined;
  #lastCurrent: Ring | undefined;
  #joinStartedMs: number;
  /** Fingerprint of the target ring at the last tick, and since when (local ms) it has held. */
  #targetPrint = '';
  #targetSinceMs = 0;
  #leftAtMs: number | undefined;
  /** When the next sweep of slots this node no longer holds is due (local ms), if any. */
  #sweepAt: number | undefined;
  /** Slots this node was a current owner of at the last sweep (1), for stream_slots_dropped. */
  #owned: Uint8Array | undefined;
  /** Local time (ms) of the last ring change that moved data. */
  #lastMoveMs = 0;
  /** Leaving node: gainer id -> target fingerprint it confirmed. */
  readonly #confirmed = new Map<string, string>();
  readonly #lastConfirmSent = new Map<string, number>();
  /** Source index to try next per task (rotates on failures). */
  readonly #sourceTurn = new WeakMap<StreamTask, number>();
  #lastPersistMs = 0;
  /** Shared pace of the stream workers: no chunk is asked for before this local time (ms). */
  #paceAtMs = 0;
  /** The transition the write path uses (pendingReplicas, STREAM_VIEW): rebuilt when the live rings change. */
  #writeTransition: RingTransition | undefined;
  /** Local time (ms) #writeTransition was last checked against the live rings. */
  #writeCheckedMs = -Infinity;
  /** STREAM_VIEW reports: member id -> fingerprint of its live target ring (join_gate.ts). */
  readonly #viewReports = new Map<string, string>();
  /** Target fingerprint the gate last opened for (logged once per target). */
  #gateOpenedFor = '';
  #lastViewAskMs = -Infinity;
  #scansRefused = 0;

  constructor(o: StreamManagerOptions) {
    this.#o = o;
    this.#p = o.progress;
    this.#settleMs = Math.max(MIN_SETTLE_MS, SETTLE_GOSSIP_ROUNDS * o.gossipIntervalMs);
    this.#joinStartedMs = realClock.now();
    if (o.table.self().state !== 'joining') {
      // A start that is not a join may be a member's restart, with a restored table or without
      // one (killed before its membership file was written: join_auto's knownOwner case, seen in
      // CI as elastic_down_join's returning node keeping every slot it lost while down). Sweep
      // either way: see RESTART_SWEEP_GOSSIP_ROUNDS. A view that is still partial then only
      // holds more slots (fewer members), so nothing it owns is dropped; a new node has no data.
      this.#sweepAt = this.#joinStartedMs + Math.max(RESTART_SWEEP_MIN_MS, RESTART_SWEEP_GOSSIP_ROUNDS * o.gossipIntervalMs);
      this.#lastMoveMs = this.#joinStartedMs;
    }
    o.bus.handle(StreamMessageType.STREAM_SCAN, async (payload) => {
      try {
        return await serveStreamScan(o.keyspace, decodeStreamScan(payload), this);
      } catch (err) {
        if (err instanceof StreamScanRefusedError) this.#scansRefused++;
        throw err;
      }
    });
    o.bus.handle(StreamMessageType.STREAM_CONFIRM, (payload, from) => {
      this.#confirmed.set(from.id, decodeStreamConfirm(payload));
      return Buffer.alloc(0);
    });
    // A gainer asks which target ring this node's write path uses (join_gate.ts).
    o.bus.handle(JoinGateMessageType.STREAM_VIEW, () => encodeStreamViewReply(this.#liveTransition()?.target.fingerprint ?? ''));
  }

  start(): void {
    assert(this.#timer === null);
    const loop = (): void => {
      if (this.#closed) return;
      this.#running = this.#tick()
        .catch((err: unknown) => this.#o.log('warn', `stream: ${(err as Error).message}`))
        .finally(() => {
          this.#running = null;
          if (!this.#closed) this.#timer = setTimeout(loop, STREAM_TICK_MS);
        });
    };
    this.#timer = setTimeout(loop, 0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    this.#persist(true);
  }

  /** Target-only replicas a write to `slot` must also reach (as of the last tick). */
  pendingReplicas(slot: number): readonly string[] {
    // From the live rings, not the last tick's: a tick can take seconds while it streams, and a
    // joiner that this node told (STREAM_VIEW) it routes its writes must get them from then on.
    const now = realClock.now();
    const reuse = this.#writeTransition !== undefined && now - this.#writeCheckedMs < LIVE_TRANSITION_REUSE_MS;
    return ((reuse ? this.#writeTransition : this.#liveTransition()) ?? this.#transition)?.pendingReplicas(slot) ?? [];
  }

  /** The transition between the rings as they are now (undefined if a ring cannot be built). */
  #liveTransition(): RingTransition | undefined {
    let cur: Ring;
    let tgt: Ring;
    try {
      cur = this.#o.rings.current();
      tgt = this.#o.rings.target();
    } catch {
      return undefined;
    }
    this.#writeCheckedMs = realClock.now();
    return this.#transitionFor(cur, tgt);
  }

  /** One RingTransition per pair of rings, shared by the tick and the write path. */
  #transitionFor(cur: Ring, tgt: Ring): RingTransition {
    for (const tr of [this.#writeTransition, this.#transition]) if (tr !== undefined && tr.current === cur && tr.target === tgt) return (this.#writeTransition = tr);
    return (this.#writeTransition = new RingTransition(cur, tgt));
  }

  /** CLUSTER LEAVE: start decommissioning this node. Throws StreamError when it cannot. */
  leave(): void {
    const me = this.#o.table.self();
    if (me.state !== 'up') throw new StreamError(`ERR this node is ${me.state}, only an up node can leave`);
    const others = this.#o.table.members().filter((m) => m.id !== me.id && m.state === 'up' && this.#o.isUp(m.id));
    if (others.length === 0) throw new StreamError('ERR no other up node to hand this node\'s slots to');
    this.#confirmed.clear();
    // Persisted first: a restart from here on comes back `leaving` and goes on with the leave.
    this.#p.leaving = true;
    this.#persist(true);
    this.#o.updateSelf({ state: 'leaving' });
    this.#o.log('info', `stream: leaving the ring (slots go to the remaining nodes)`);
  }

  /**
   * CLUSTER FORGET: marks a dead member `left` for good; the survivors re-replicate its slots.
   * The record carries a newer incarnation than the dead node ever published, so it wins
   * everywhere gossip takes it.
   */
  forget(id: string): void {
    const t = this.#o.table;
    if (id === this.#o.selfId) throw new StreamError('ERR I tried hard but I can\'t forget myself...');
    const m = t.get(id);
    if (m === undefined) throw new StreamError(`ERR Unknown node ${id}`);
    if (m.state === 'left') return;
    if (m.liveness !== 'down') throw new StreamError(`ERR node ${id} is not down (it is ${m.liveness}); use CLUSTER LEAVE on it to remove a live node`);
    t.merge(
      [{ id: m.id, host: m.host, port: m.port, busPort: m.busPort, dc: m.dc, rack: m.rack, weight: m.weight, state: 'left', incarnation: m.incarnation + 1, heartbeat: 0, suspectedAt: null }],
      realClock.now(),
    );
    this.#o.log('info', `stream: forgot node ${id}; its slots re-replicate from the survivors`);
  }

  info(): StreamInfo {
    const p = this.#p;
    const me = this.#o.table.self();
    let remaining = 0;
    for (const t of p.tasks) remaining += t.last - t.first + 1;
    const tr = this.#transition;
    if (tr !== undefined) {
      const covered = this.#covered();
      for (const m of tr.gainedBy(this.#o.selfId)) if (m.sources.length > 0 && !p.streamed.has(m.slot) && !covered.has(m.slot)) remaining++;
    }
    const phase: StreamPhase =
      me.state === 'joining' ? 'joining' : me.state === 'leaving' ? 'leaving' : me.state === 'left' ? 'left' : remaining > 0 ? 'streaming' : 'idle';
    return {
      phase,
      slotsRemaining: remaining,
      slotsStreamed: p.slotsStreamed,
      bytesStreamed: p.bytesStreamed,
      keysStreamed: p.keysStreamed,
      bytesRemainingEstimate: p.slotsStreamed === 0 ? 0 : Math.round((p.bytesStreamed / p.slotsStreamed) * remaining),
      slotsDropped: p.slotsDropped,
      keysDropped: p.keysDropped,
      scansRefused: this.#scansRefused,
      // The rings as they are now, not as the last tick saw them: a change gossip brought since
      // (or a CONFIG SET weight) shows at once (`ringkv cluster wait` reads this).
      ringSlotsMoving: (this.#liveTransition() ?? tr)?.stats.slotsChanged ?? 0,
    };
  }

  /** `[name, value]` pairs for INFO's cluster section (cluster_info.ts provider) and CLUSTER INFO. */
  infoFields(): Array<readonly [string, string | number]> {
    const i = this.info();
    return [
      ['stream_state', i.phase],
      ['stream_slots_remaining', i.slotsRemaining],
      ['stream_slots_streamed', i.slotsStreamed],
      ['stream_bytes_streamed', i.bytesStreamed],
      ['stream_bytes_remaining_estimate', i.bytesRemainingEstimate],
      ['stream_keys_streamed', i.keysStreamed],
      ['stream_slots_dropped', i.slotsDropped],
      ['stream_keys_dropped', i.keysDropped],
      ['stream_scans_refused', i.scansRefused],
      ['stream_ring_slots_moving', i.ringSlotsMoving],
    ];
  }

  /** True when this node holds `slot` in the current or the target ring (anti-entropy accepts objects only for these). */
  holdsSlot(slot: number): boolean {
    const self = this.#o.selfId;
    return this.#o.rings.current().preflist(slot).includes(self) || this.#o.rings.target().preflist(slot).includes(self);
  }

  /**
   * The lowest slot of first..last this node cannot stream out whole, and why, or undefined
   * (SlotHolding: serveStreamScan stops a chunk before it, and checks again after the read):
   *  - a slot it swept (progress `dropped`, marked before the deletes; cleared once streamed in
   *    again for a ring it holds the slot in), or became a current replica of without streaming
   *    it in and does not hold in the target ring (marked the same way by the tick that saw the
   *    current ring change);
   *  - a slot a task of its own is still streaming in (a removal gain: a current owner without
   *    the data yet; removalGains lists such owners as sources too);
   *  - a slot it gains in the live transition and has not streamed yet;
   *  - a slot it entered the current preflist of after the ring its last tick planned from (a
   *    member removed: the removal gain is not a task yet) and has not streamed in.
   * A receiver asks its next source, or again later: a task waits rather than finishing short.
   */
  firstNotHeld(first: number, last: number): SlotNotHeld | undefined {
    const self = this.#o.selfId;
    const p = this.#p;
    // Slots a task of this node covers: the lowest of them in range bounds the search below.
    let task: SlotNotHeld | undefined;
    for (const t of p.tasks) {
      if (t.first > last || t.last < first) continue;
      const slot = Math.max(first, t.first);
      if (task === undefined || slot < task.slot) task = { slot, why: 'is still streaming in' };
    }
    const tr = this.#liveTransition() ?? this.#transition;
    const planned = this.#lastCurrent;
    const entered = tr !== undefined && planned !== undefined && tr.current !== planned;
    for (let s = first; s <= (task?.slot ?? last + 1) - 1; s++) {
      if (p.dropped.has(s)) return { slot: s, why: 'has no whole copy here (swept, or owned without being streamed in)' };
      if (p.streamed.has(s)) continue;
      if (tr?.pendingReplicas(s).includes(self)) return { slot: s, why: 'is gained and not streamed in yet' };
      if (entered && tr.current.preflist(s).includes(self) && !planned.preflist(s).includes(self)) return { slot: s, why: 'entered this node\'s preflist since its last tick' };
    }
    return task;
  }

  /** `key:value` lines for CLUSTER INFO. */
  infoLines(): string[] {
    return this.infoFields().map(([k, v]) => `${k}:${v}`);
  }

  #covered(): Set<number> {
    const s = new Set<number>();
    for (const t of this.#p.tasks) for (let x = t.first; x <= t.last; x++) s.add(x);
    return s;
  }

  async #tick(): Promise<void> {
    const self = this.#o.selfId;
    const now = realClock.now();
    const cur = this.#o.rings.current();
    const tgt = this.#o.rings.target();
    const prevTr = this.#transition;
    const tr = prevTr !== undefined && prevTr.current === cur && prevTr.target === tgt ? prevTr : this.#transitionFor(cur, tgt);
    this.#transition = tr;

    // The current ring moved: forget gains, streamed slots now owned.
    const last = this.#lastCurrent;
    this.#lastCurrent = cur;
    this.#owned ??= ownedSlots(cur, cur, self);
    let removal = false;
    if (last !== undefined && last !== cur) {
      // Slots this node became a current replica of, does not hold in the target ring and did
      // not stream in are not held in full: marked like swept ones. Two joins at once: the first
      // one, once up, is a current replica of slots the target ring gives the second one
      // instead; it never streamed them and drops them when the second is up. (A node entering
      // an empty cluster holds its slots in both rings: nothing marked. A removal gain is in
      // the target ring too: its task and the entered check cover it.)
      for (let s = 0; s < SLOT_COUNT; s++) {
        if (cur.preflist(s).includes(self) && !last.preflist(s).includes(self) && !tgt.preflist(s).includes(self) && !this.#p.streamed.has(s)) this.#p.dropped.add(s);
      }
      removal = last.members.some((m) => cur.member(m.id) === undefined);
      const covered = this.#covered();
      const gains = removalGains(last, cur, self).filter((g) => {
        if (this.#p.streamed.delete(g.slot)) return false;
        return !covered.has(g.slot);
      });
      if (gains.length > 0) {
        this.#p.tasks.push(...planTasks(gains, () => false));
        this.#o.log('info', `stream: ${gains.length} slots to re-replicate after a member left the ring`);
      }
      for (const slot of [...this.#p.streamed]) if (cur.preflist(slot).includes(self)) this.#p.streamed.delete(slot);
      this.#persist(true);
    }
    // After a change that moved data (a join, leave or forget, not the forming of a new cluster
    // of empty nodes), sweep what this node no longer holds in either ring once the change has
    // settled: coordinators still on the old view keep writing to both sides until then.
    const ringsChanged = (last !== undefined && last !== cur) || (prevTr !== undefined && prevTr.target !== tgt);
    if (ringsChanged && (removal || !tr.idle || (prevTr !== undefined && !prevTr.idle))) {
      this.#sweepAt = now + this.#settleMs * 2;
      this.#lastMoveMs = now;
    }
    else if (ringsChanged && this.#sweepAt === undefined) this.#owned = ownedSlots(cur, cur, self); // a cluster forming: nothing given up

    const me = this.#o.table.self();
    if (me.state === 'left') {
      if (this.#leftAtMs !== undefined && now - this.#leftAtMs >= this.#settleMs) {
        this.#closed = true;
        this.#o.onLeft();
      }
      return;
    }

    // Gains of the transition in progress. A joining node first waits until every live
    // coordinator has told it that it routes the joiner's writes to it (join_gate.ts), so the
    // writes made meanwhile reach it before it scans anything. Any node waits the settle delay
    // after the target ring changed (a leave, a weight change) for the same reason.
    if (tgt.fingerprint !== this.#targetPrint) {
      this.#targetPrint = tgt.fingerprint;
      this.#targetSinceMs = now;
    }
    const targetSettled = tr.idle || now - this.#targetSinceMs >= this.#settleMs;
    // A node with slots to gain (a joiner always) also waits for every live coordinator to use
    // the same target ring, so they all send it the writes of those slots (join_gate.ts).
    const gaining = me.state === 'joining' || transitionGains(tr, self).some((g) => g.sources.length > 0 && !this.#p.streamed.has(g.slot));
    const settled = targetSettled && (!gaining || (await this.#viewGateOpen(now, tgt.fingerprint)));
    if (settled) {
      const covered = this.#covered();
      // A gain without sources (no current owner: a brand-new cluster) has nothing to fetch.
      const gains = transitionGains(tr, self).filter((g) => g.sources.length > 0 && !this.#p.streamed.has(g.slot) && !covered.has(g.slot));
      const tasks = planTasks(gains, () => false);
      if (tasks.length > 0) {
        this.#p.tasks.push(...tasks);
        this.#o.log('info', `stream: ${tasks.reduce((a, t) => a + t.last - t.first + 1, 0)} slots to stream in, in ${tasks.length} tasks`);
        this.#persist(true);
      }
    }

    await this.#runTasks();
    if (this.#sweepAt !== undefined && now >= this.#sweepAt) {
      // Sweep again for a while: coordinators that were slow to see the change can still send
      // a read repair or a pending write here, and anti-entropy peers on an old view a push.
      this.#sweepAt = now - this.#lastMoveMs < STRAY_SWEEP_WINDOW_MS ? now + STRAY_SWEEP_EVERY_MS : undefined;
      await this.#sweep();
    }
    if (this.#closed) return;

    const done = this.#p.tasks.length === 0 && transitionGains(tr, self).every((g) => g.sources.length === 0 || this.#p.streamed.has(g.slot));
    if (me.state === 'joining' && settled && done) {
      this.#p.joining = false;
      this.#persist(true);
      this.#o.updateSelf({ state: 'up' });
      this.#o.log('info', `stream: join complete (${this.#p.slotsStreamed} slots, ${this.#p.bytesStreamed} bytes streamed); now up`);
    }
    if (done) await this.#sendConfirms(tr, realClock.now());
    // A weight change (membership_weight.ts) becomes current once its slots are streamed.
    if (settled && weightCommitReady(me, tr, done, (id) => this.#confirmed.get(id) === tgt.fingerprint)) {
      this.#o.updateSelf({ weight: targetWeightOf(me) });
      this.#confirmed.clear();
      this.#o.log('info', `stream: weight ${me.weight} -> ${targetWeightOf(me)} is current (its slots are streamed)`);
    }
    if (me.state === 'leaving') {
      const gainers = leaveGainers(tr, self);
      if (gainers.every((g) => this.#confirmed.get(g) === tgt.fingerprint)) {
        // Persisted first: this data dir never starts as a member again (rejoin_guard.ts).
        this.#p.leaving = false;
        this.#p.left = true;
        this.#persist(true);
        this.#o.updateSelf({ state: 'left' });
        this.#leftAtMs = realClock.now();
        this.#o.log('info', `stream: every new owner confirmed (${gainers.length} nodes); left the ring`);
      }
    }
  }

  /** True once every live coordinator's write path uses the target ring `fingerprint` (join_gate.ts). */
  async #viewGateOpen(now: number, fingerprint: string): Promise<boolean> {
    const self = this.#o.selfId;
    const view = (): GateMember[] => this.#o.table.members().map((m) => ({ id: m.id, state: m.state, down: !this.#o.isUp(m.id) }));
    if (gateOpen(view(), self, this.#viewReports, fingerprint)) return true;
    if (now - this.#lastViewAskMs < STREAM_VIEW_EVERY_MS) return false;
    this.#lastViewAskMs = now;
    await Promise.all(
      membersToAsk(view(), self, this.#viewReports, fingerprint).map(async (id) => {
        const m = this.#o.table.get(id);
        if (m === undefined) return;
        try {
          const reply = await this.#o.bus.request({ host: m.host, port: m.busPort, id }, JoinGateMessageType.STREAM_VIEW, Buffer.alloc(0), STREAM_VIEW_TIMEOUT_MS);
          this.#viewReports.set(id, decodeStreamViewReply(reply));
        } catch (err) {
          this.#o.log('debug', `stream: STREAM_VIEW to ${id} failed: ${(err as Error).message}`);
        }
      }),
    );
    // Re-checked on the table as it is after the awaits (a member may have come or gone).
    const open = gateOpen(view(), self, this.#viewReports, fingerprint);
    if (open && this.#gateOpenedFor !== fingerprint) {
      this.#gateOpenedFor = fingerprint;
      this.#o.log('info', `stream: every live coordinator uses target ring ${fingerprint}; streaming its gains starts`);
    }
    return open;
  }

  async #sendConfirms(tr: RingTransition, now: number): Promise<void> {
    const targets = confirmTargets(tr, this.#o.selfId, (id) => {
      const m = this.#o.table.get(id);
      return m !== undefined && (m.state === 'leaving' || weightPending(m));
    });
    for (const id of targets) {
      if (now - (this.#lastConfirmSent.get(id) ?? -Infinity) < CONFIRM_EVERY_MS) continue;
      this.#lastConfirmSent.set(id, now);
      try {
        await this.#call(id, StreamMessageType.STREAM_CONFIRM, encodeStreamConfirm(tr.target.fingerprint));
      } catch (err) {
        this.#o.log('debug', `stream: confirm to ${id} failed: ${(err as Error).message}`);
      }
    }
  }

  async #runTasks(): Promise<void> {
    // A pool of workers over the task queue: a join's moved slots come in hundreds of short
    // runs, and one at a time would be bound by round trips, not bytes. They share one pace
    // (#paceAtMs), so together they stay under stream-max-bytes-per-sec.
    const queue = [...this.#p.tasks];
    // Idle (the usual case): nothing to run and nothing to persist. Rewriting the progress file
    // on every tick cost a replica about a quarter of its CPU under client load (profile in
    // bench/results/cluster-perf-notes.md).
    if (queue.length === 0) return;
    const worker = async (): Promise<void> => {
      for (let task = queue.shift(); task !== undefined && !this.#closed; task = queue.shift()) {
        if (!(await this.#runTask(task))) continue; // no source reachable now: retried next tick
        const i = this.#p.tasks.indexOf(task);
        assert(i >= 0, 'a task runs only while queued');
        this.#p.tasks.splice(i, 1);
        for (let s = task.first; s <= task.last; s++) {
          this.#p.streamed.add(s);
          // Held in full again, unless its gain was withdrawn meanwhile (a sweep may have deleted part of it).
          if (this.holdsSlot(s)) this.#p.dropped.delete(s);
        }
        this.#p.slotsStreamed += task.last - task.first + 1;
        // Paced like chunk positions: a crash loses at most PROGRESS_PERSIST_EVERY_MS of
        // progress, which is streamed again (merging an object twice changes nothing).
        this.#persist(false);
      }
    };
    await Promise.all(Array.from({ length: STREAM_TASKS_IN_FLIGHT }, worker));
    this.#persist(true);
  }

  /**
   * Where a task may stream from: its planned sources first, then the members that are current
   * replicas of all its slots now. The current ring may have moved since the task was planned
   * (another joiner turned up; an old owner restarted and swept what it no longer holds): any
   * of them is safe to ask, since a source that lacks a slot refuses (firstNotHeld), and without the
   * later ones a task whose planned sources all refuse would wait for good.
   */
  #sourcesOf(task: StreamTask): string[] {
    const out = [...task.sources];
    let cur: Ring;
    try {
      cur = this.#o.rings.current();
    } catch {
      return out;
    }
    let common: readonly string[] = cur.preflist(task.first);
    for (let s = task.first + 1; s <= task.last && common.length > 0; s++) {
      const p = cur.preflist(s);
      common = common.filter((id) => p.includes(id));
    }
    for (const id of common) if (!out.includes(id)) out.push(id);
    return out;
  }

  /** Pulls one task to its end; false when no source answered (the position is kept). */
  async #runTask(task: StreamTask): Promise<boolean> {
    const candidates = this.#sourcesOf(task).filter((id) => id !== this.#o.selfId && this.#o.isUp(id));
    if (candidates.length === 0) {
      // Every source is down or gone: if none of them is a current owner any more, nothing can be fetched.
      if (task.sources.every((id) => this.#o.table.get(id)?.state === 'left')) return true;
      return false;
    }
    const turn = this.#sourceTurn.get(task) ?? 0;
    const source = candidates[turn % candidates.length] as string;
    // Pages are pulled one ahead and merged one batch each (stream_merge.ts).
    try {
      return await pullPages({
        from: task.next,
        closed: () => this.#closed,
        beforeFetch: async () => {
          const wait = this.#paceAtMs - realClock.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        },
        fetch: async (from) => {
          const rate = this.#o.maxBytesPerSec();
          const reply = decodeStreamScanReply(
            await this.#call(source, StreamMessageType.STREAM_SCAN, encodeStreamScan({ firstSlot: task.first, lastSlot: task.last, maxBytes: chunkBytesFor(rate), from })),
          );
          // Paced on arrival, so the page asked for next already waits for this one's bytes.
          this.#paceAtMs = nextPaceMs(this.#paceAtMs, realClock.now(), pageBytes(reply.entries), rate);
          return reply;
        },
        merge: (entries) => mergeStreamPage(this.#o.keyspace, entries),
        onPage: (reply, bytes) => {
          task.bytes += bytes;
          task.keys += reply.entries.length;
          this.#p.bytesStreamed += bytes;
          this.#p.keysStreamed += reply.entries.length;
          if (!reply.done) {
            task.next = reply.next;
            this.#persist(false);
          }
        },
      });
    } catch (err) {
      this.#o.log('info', `stream: slots ${task.first}-${task.last} from ${source} failed (${(err as Error).message}); will retry`);
      this.#sourceTurn.set(task, turn + 1);
      return false;
    }
  }

  /**
   * Drops the local copies of every slot this node holds in neither ring (see #tick), but keeps
   * a slot it was a current owner of while a gainer may still stream it from here (sweepPlan).
   */
  async #sweep(): Promise<void> {
    const tr = this.#transitionFor(this.#o.rings.current(), this.#o.rings.target());
    const plan = sweepPlan(tr, this.#o.selfId, this.#owned ?? ownedSlots(tr.current, tr.current, this.#o.selfId));
    let marked = false;
    for (const s of plan.drop) {
      if (this.#owned?.[s] === 1) this.#p.slotsDropped++; // an owner gave the slot up
      this.#p.streamed.delete(s);
      if (!this.#p.dropped.has(s)) {
        this.#p.dropped.add(s);
        marked = true;
      }
    }
    this.#owned = plan.owned;
    // Marked, on disk too, before the first delete: from here on a STREAM_SCAN of these slots is
    // refused, and one that was reading them is refused at its end (serveStreamScan).
    if (marked) this.#persist(true);
    for (const run of slotRuns(plan.drop)) {
      for await (const e of this.#o.keyspace.storedObjects(run.first, run.last)) {
        if (this.#closed) return;
        await this.#o.keyspace.dropStored(e.key);
        this.#p.keysDropped++;
      }
    }
    this.#persist(true);
  }

  #call(node: string, type: number, payload: Buffer): Promise<Buffer> {
    const m = this.#o.table.get(node);
    if (m === undefined) return Promise.reject(new StreamError(`node ${node} is not in the membership table`));
    return this.#o.bus.request({ host: m.host, port: m.busPort, id: node }, type, payload, STREAM_REQUEST_TIMEOUT_MS);
  }

  #persist(force: boolean): void {
    const now = realClock.now();
    if (!force && now - this.#lastPersistMs < PROGRESS_PERSIST_EVERY_MS) return;
    this.#lastPersistMs = now;
    try {
      saveStreamProgress(this.#o.dir, this.#p);
    } catch (err) {
      this.#o.log('warn', `stream: persisting progress failed: ${(err as Error).message}`);
    }
  }
}
