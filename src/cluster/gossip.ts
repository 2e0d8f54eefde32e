/**
 * Gossip: the thin async shell around MembershipTable (membership.ts). It owns the timer, talks
 * through an injected transport (the bus in production, an in-process network in simulation),
 * and reads time and randomness from injected sources, so a whole cluster can run
 * deterministically in one process (test/cluster/gossip_sim.test.ts).
 *
 * One round, every gossipIntervalMs (fixed rate):
 *
 *   tick: own heartbeat + 1
 *   findSuspects: alive members silent for nodeTimeoutMs -> suspect (+ claim)
 *   probe every suspect (at most MAX_CONCURRENT_PROBES at once):
 *       PING target ──────────────────────────────▶ target        (timeout probeTimeoutMs)
 *       PING_REQ helper_1..k ──▶ helper ── PING ──▶ target        (helpers: random alive members)
 *       any ack ─▶ alive (fresh timeout)
 *       no ack, >= 1 helper NACK (independent confirmation) ─▶ probeFailed ─▶ down
 *       no ack, no NACK (helpers unreachable too: maybe WE are cut off) ─▶ stays suspect, re-probed
 *       (a two-node cluster has no third party: there the direct probe alone decides)
 *   ping one random down member: an ack brings it back at once
 *   SYNC (push-pull) with one random live peer:
 *       we send all our records; it merges, replies with the records it holds newer; we merge
 *   alone (no peer known) or with probability 1/(peers+1): SYNC with a random seed as well,
 *   so fresh nodes find the cluster and split groups find each other again
 *
 * Late timers: if a round fires more than one interval late, this node was paused or starved;
 * the lateness is credited to every member (shiftTimeouts) instead of suspecting them all, and a
 * probe that took far longer than its timeouts allow concludes nothing. A paused node therefore
 * never marks others down for its own pause.
 *
 * Suspect vs down for callers: suspect is Redis's `fail?` (pfail), down is `fail`. A member can
 * stay suspect indefinitely when no witness answers (this node is cut off, or most of the cluster
 * died): no node marks the rest down for its own isolation. Request routing should treat suspect
 * like down (do not wait on it; use a fallback), while `down` is the confirmed verdict.
 *
 * Seeds and MEET: addresses (host, bus port) to SYNC with; a seed that is this node is skipped
 * (by address, or when the transport answers ERR_SELF_CONNECTION). meet() SYNCs with an address
 * until it answers and returns the node id found there.
 *
 * Wiring (lead): table = MembershipTable.create(...); gossiper = new Gossiper({table, transport:
 * busGossipTransport(bus), seeds, gossipIntervalMs: config gossip-interval-ms, ...});
 * attachGossip(bus, gossiper) before bus.listen(); gossiper.start(); onChange -> rebuild the ring
 * when 'joined'/'updated', update fallbacks on 'down'/'alive', persist table.serialize().
 * `seeds host:port` and `CLUSTER MEET host port` name client ports: convert to the bus port with
 * the cluster-port rule (port + 10000) unless the bus port is given.
 */
import assert from 'node:assert';
import type { LogFn } from './connection.js';
import { ClusterError, isClusterError } from './errors.js';
import {
  decodeAck,
  decodePing,
  decodePingReq,
  decodePingReqReply,
  decodeSync,
  encodeAck,
  encodePing,
  encodePingReq,
  encodePingReqReply,
  encodeSync,
  MAX_PING_REQ_TIMEOUT_MS,
} from './gossip_codec.js';
import { MessageType, type GossipMessageType } from './message_types.js';
import type { MemberChange, MemberRecord, MembershipTable, ProbeTarget } from './membership.js';

/** Where to reach a node's bus; `id`, when known, is checked by the transport. */
export interface GossipPeer {
  readonly host: string;
  readonly busPort: number;
  readonly id?: string;
}

export interface GossipTransport {
  /** Resolves with the response payload; rejects (ClusterError) on timeout or no connection. */
  request(to: GossipPeer, type: GossipMessageType, payload: Buffer, timeoutMs: number): Promise<Buffer>;
}

export type TimerHandle = unknown;

export interface GossipClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Production clock: monotonic milliseconds (performance.now), immune to wall-clock steps. */
export const realClock: GossipClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Default helpers asked to probe a suspect (SWIM's k). */
export const DEFAULT_INDIRECT_PROBES = 3;
/** Probes running at once; more suspects wait for the next round (an isolated node stays cheap). */
export const MAX_CONCURRENT_PROBES = 16;
/** A probe that took longer than this factor times its budget ran on late timers: inconclusive. */
export const LATE_PROBE_FACTOR = 1.5;

export interface GossipOptions {
  readonly table: MembershipTable;
  readonly transport: GossipTransport;
  readonly gossipIntervalMs: number;
  /**
   * Time a direct PING (and a helper's PING) may take; a PING_REQ gets twice this. Default
   * min(1000, nodeTimeoutMs / 2): a dead node is marked down about nodeTimeoutMs + 2 x this
   * after its last heartbeat.
   */
  readonly probeTimeoutMs?: number;
  /** Helpers per probe (k); default DEFAULT_INDIRECT_PROBES. */
  readonly indirectProbes?: number;
  /** Time a SYNC may take; default max(2 x gossipIntervalMs, probeTimeoutMs). */
  readonly syncTimeoutMs?: number;
  readonly seeds?: readonly GossipPeer[];
  readonly clock?: GossipClock;
  /** Uniform in [0, 1); default Math.random. */
  readonly random?: () => number;
  readonly log?: LogFn;
  readonly onChange?: (changes: readonly MemberChange[]) => void;
}

export interface GossipStats {
  rounds: number;
  syncsSent: number;
  syncFailures: number;
  syncsServed: number;
  probes: number;
  pingReqsSent: number;
  pingReqsServed: number;
  inconclusiveProbes: number;
  markedDown: number;
  markedAlive: number;
  refutations: number;
  lateRounds: number;
  badMessages: number;
}

export class Gossiper {
  readonly table: MembershipTable;
  readonly stats: GossipStats = {
    rounds: 0,
    syncsSent: 0,
    syncFailures: 0,
    syncsServed: 0,
    probes: 0,
    pingReqsSent: 0,
    pingReqsServed: 0,
    inconclusiveProbes: 0,
    markedDown: 0,
    markedAlive: 0,
    refutations: 0,
    lateRounds: 0,
    badMessages: 0,
  };
  readonly #transport: GossipTransport;
  readonly #clock: GossipClock;
  readonly #random: () => number;
  readonly #log: LogFn;
  readonly #onChange: (changes: readonly MemberChange[]) => void;
  readonly #intervalMs: number;
  readonly #probeTimeoutMs: number;
  readonly #k: number;
  readonly #syncTimeoutMs: number;
  readonly #seeds: GossipPeer[];
  readonly #selfSeeds = new Set<string>();
  readonly #probing = new Set<string>();
  #timer: TimerHandle | null = null;
  #expectedAtMs = 0;
  #running = false;

  constructor(opts: GossipOptions) {
    this.table = opts.table;
    this.#transport = opts.transport;
    this.#clock = opts.clock ?? realClock;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? (() => {});
    this.#onChange = opts.onChange ?? (() => {});
    this.#intervalMs = opts.gossipIntervalMs;
    assert(this.#intervalMs > 0, 'gossipIntervalMs must be positive');
    this.#probeTimeoutMs = opts.probeTimeoutMs ?? Math.max(1, Math.min(1000, Math.floor(opts.table.nodeTimeoutMs / 2)));
    assert(this.#probeTimeoutMs > 0 && this.#probeTimeoutMs * 2 <= MAX_PING_REQ_TIMEOUT_MS, 'probeTimeoutMs out of range');
    this.#k = opts.indirectProbes ?? DEFAULT_INDIRECT_PROBES;
    this.#syncTimeoutMs = opts.syncTimeoutMs ?? Math.max(2 * this.#intervalMs, this.#probeTimeoutMs);
    this.#seeds = [...(opts.seeds ?? [])];
  }

  /** Starts the rounds (the first after a random fraction of an interval, so nodes interleave). */
  start(): void {
    assert(!this.#running, 'start() twice');
    this.#running = true;
    this.#expectedAtMs = this.#clock.now() + Math.floor(this.#random() * this.#intervalMs);
    this.#arm();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  get running(): boolean {
    return this.#running;
  }

  #arm(): void {
    const delay = Math.max(0, this.#expectedAtMs - this.#clock.now());
    this.#timer = this.#clock.setTimeout(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = null;
    if (!this.#running) return;
    const now = this.#clock.now();
    const lateMs = now - this.#expectedAtMs;
    if (lateMs > this.#intervalMs) {
      // We did not run for lateMs: do not hold our own pause against the other members.
      this.stats.lateRounds++;
      this.table.shiftTimeouts(lateMs, now);
      this.#log('warn', `gossip: round ran ${lateMs} ms late (paused or starved); member timeouts extended`);
      this.#expectedAtMs = now;
    }
    void this.round();
    this.#expectedAtMs += this.#intervalMs;
    this.#arm();
  }

  /**
   * Changes this node's own info (state joining -> up -> leaving -> left, weight, addresses):
   * a new incarnation carries it to every node by gossip. Reported through onChange like any change.
   */
  updateSelf(change: Parameters<MembershipTable['updateSelf']>[0]): MemberChange {
    const c = this.table.updateSelf(change, this.#clock.now());
    this.#emit([c]);
    return c;
  }

  /** One round now. Resolves when its SYNC exchanges are done (probes run on in the background). */
  async round(): Promise<void> {
    const now = this.#clock.now();
    this.stats.rounds++;
    this.table.tick(now);
    const suspects = this.table.findSuspects(now);
    if (suspects.length > 0) {
      this.#emit(suspects.map((p) => ({ kind: 'suspect' as const, id: p.id, member: { ...this.table.get(p.id)! } })));
    }
    for (const m of this.table.members()) {
      if (this.#probing.size >= MAX_CONCURRENT_PROBES) break;
      if (m.liveness === 'suspect' && !this.#probing.has(m.id)) void this.#probe(this.table.probeTargetOf(m.id)!);
    }
    const down = this.table.members().filter((m) => m.liveness === 'down' && m.state !== 'left' && !this.#probing.has(m.id));
    if (down.length > 0 && this.#probing.size < MAX_CONCURRENT_PROBES) void this.#pingDown(this.#pick(down));

    const work: Array<Promise<void>> = [];
    const peers = this.#livePeers();
    if (peers.length > 0) {
      const p = this.#pick(peers);
      work.push(this.#sync({ host: p.host, busPort: p.busPort, id: p.id }));
    }
    const seeds = this.#seeds.filter((s) => !this.#isSelfAddress(s));
    if (seeds.length > 0 && (peers.length === 0 || this.#random() < 1 / (peers.length + 1))) {
      work.push(this.#sync(this.#pick(seeds)));
    }
    await Promise.all(work);
  }

  /**
   * Introduces this node to the node at host:busPort (CLUSTER MEET): SYNCs until it answers or
   * `timeoutMs` passes. Resolves with that node's id; rejects with the last ClusterError.
   */
  async meet(host: string, busPort: number, timeoutMs = 5_000): Promise<string> {
    const deadline = this.#clock.now() + timeoutMs;
    for (;;) {
      const left = deadline - this.#clock.now();
      try {
        const reply = await this.#transport.request({ host, busPort }, MessageType.GOSSIP_SYNC, this.#syncPayload(), Math.max(1, Math.min(this.#syncTimeoutMs, left)));
        const msg = decodeSync(reply);
        this.#emit(this.table.merge(msg.records, this.#clock.now()));
        return msg.senderId;
      } catch (e) {
        if (isClusterError(e, 'ERR_SELF_CONNECTION') || this.#clock.now() + this.#intervalMs >= deadline) throw e;
        await new Promise<void>((r) => this.#clock.setTimeout(r, this.#intervalMs));
      }
    }
  }

  /** Answers a gossip message from a peer (wire to the transport's incoming side). */
  async handle(type: GossipMessageType, payload: Buffer): Promise<Buffer> {
    try {
      switch (type) {
        case MessageType.GOSSIP_SYNC: {
          const msg = decodeSync(payload);
          this.stats.syncsServed++;
          this.#emit(this.table.merge(msg.records, this.#clock.now()));
          return encodeSync({ senderId: this.table.selfId, records: this.table.recordsNewerThan(msg.records) });
        }
        case MessageType.GOSSIP_PING: {
          const target = decodePing(payload);
          if (target !== this.table.selfId) throw new ClusterError('ERR_PEER_ID_MISMATCH', `this is ${this.table.selfId}, not ${target}`);
          return encodeAck(this.table.selfRecord());
        }
        case MessageType.GOSSIP_PING_REQ: {
          const req = decodePingReq(payload);
          this.stats.pingReqsServed++;
          const ack = await this.#ping({ id: req.targetId, host: req.host, busPort: req.busPort }, req.timeoutMs).catch(() => null);
          if (ack) this.#acked(ack);
          return encodePingReqReply(ack);
        }
      }
    } catch (e) {
      if (isClusterError(e, 'ERR_GOSSIP_DECODE')) this.stats.badMessages++;
      throw e;
    }
    throw new ClusterError('ERR_GOSSIP_DECODE', `not a gossip message type: ${String(type)}`);
  }

  #syncPayload(): Buffer {
    return encodeSync({ senderId: this.table.selfId, records: this.table.records() });
  }

  async #sync(peer: GossipPeer): Promise<void> {
    this.stats.syncsSent++;
    try {
      const reply = await this.#transport.request(peer, MessageType.GOSSIP_SYNC, this.#syncPayload(), this.#syncTimeoutMs);
      const msg = decodeSync(reply);
      this.#emit(this.table.merge(msg.records, this.#clock.now()));
    } catch (e) {
      this.stats.syncFailures++;
      if (isClusterError(e, 'ERR_SELF_CONNECTION')) this.#selfSeeds.add(`${peer.host}:${peer.busPort}`);
      else if (isClusterError(e, 'ERR_GOSSIP_DECODE')) this.stats.badMessages++;
      this.#log('debug', `gossip: SYNC with ${peer.id ?? ''}@${peer.host}:${peer.busPort} failed: ${String(e)}`);
    }
  }

  async #ping(target: { id: string; host: string; busPort: number }, timeoutMs: number): Promise<MemberRecord> {
    const reply = await this.#transport.request(target, MessageType.GOSSIP_PING, encodePing(target.id), timeoutMs);
    const rec = decodeAck(reply);
    if (rec.id !== target.id) throw new ClusterError('ERR_PEER_ID_MISMATCH', `${target.host}:${target.busPort} acked as ${rec.id}`);
    return rec;
  }

  /** First-hand evidence that a member runs: its record and a fresh timeout. */
  #acked(rec: MemberRecord): void {
    const now = this.#clock.now();
    const changes = this.table.merge([rec], now);
    const c = this.table.ackReceived(rec.id, now);
    if (c) changes.push(c);
    this.#emit(changes);
  }

  /**
   * Probes a suspect directly and through k helpers at once; resolves at the first ack, or when
   * every attempt has failed. See the header for what a failure means.
   */
  async #probe(target: ProbeTarget): Promise<void> {
    this.#probing.add(target.id);
    this.stats.probes++;
    const started = this.#clock.now();
    // Helpers: k random members we see alive (credible witnesses); if none is alive, suspects
    // (someone to ask). `others` = every member that could ever confirm.
    const others = this.table.members().filter((m) => m.id !== this.table.selfId && m.id !== target.id && m.state !== 'left');
    const alive = others.filter((m) => m.liveness === 'alive');
    const pool = alive.length > 0 ? alive : others.filter((m) => m.liveness === 'suspect');
    const helpers = pool
      .map((m) => ({ m, r: this.#random() }))
      .sort((a, b) => a.r - b.r)
      .slice(0, this.#k)
      .map((x) => x.m);
    try {
      const outcome = await new Promise<{ ack: MemberRecord | null; nacks: number }>((resolve) => {
        let pending = 1 + helpers.length;
        let nacks = 0;
        let done = false;
        const settle = (ack: MemberRecord | null, nack: boolean): void => {
          if (done) return;
          if (ack) {
            done = true;
            resolve({ ack, nacks });
            return;
          }
          if (nack) nacks++;
          if (--pending === 0) {
            done = true;
            resolve({ ack: null, nacks });
          }
        };
        this.#ping(target, this.#probeTimeoutMs).then(
          (rec) => settle(rec, false),
          () => settle(null, false),
        );
        const req = encodePingReq({ timeoutMs: this.#probeTimeoutMs, targetId: target.id, host: target.host, busPort: target.busPort });
        for (const h of helpers) {
          this.stats.pingReqsSent++;
          this.#transport.request({ host: h.host, busPort: h.busPort, id: h.id }, MessageType.GOSSIP_PING_REQ, req, 2 * this.#probeTimeoutMs).then(
            (reply) => {
              const ack = decodePingReqReply(reply);
              settle(ack && ack.id === target.id ? ack : null, ack === null);
            },
            () => settle(null, false),
          );
        }
      });
      if (outcome.ack) {
        this.#acked(outcome.ack);
        return;
      }
      const elapsed = this.#clock.now() - started;
      const budget = 2 * this.#probeTimeoutMs * LATE_PROBE_FACTOR + this.#intervalMs;
      if (elapsed > budget) {
        // Our own timers ran late (we were paused): the silence proves nothing. Re-probed next round.
        this.stats.inconclusiveProbes++;
        return;
      }
      if (outcome.nacks === 0 && others.length > 0) {
        // No other node confirmed: we may be the one cut off. Stay suspect; re-probe next round.
        this.stats.inconclusiveProbes++;
        return;
      }
      const c = this.table.probeFailed(target, this.#clock.now());
      if (c) this.#emit([c]);
    } finally {
      this.#probing.delete(target.id);
    }
  }

  async #pingDown(m: { id: string; host: string; busPort: number }): Promise<void> {
    this.#probing.add(m.id);
    try {
      const rec = await this.#ping(m, this.#probeTimeoutMs);
      this.#acked(rec);
    } catch {
      // Still down.
    } finally {
      this.#probing.delete(m.id);
    }
  }

  #livePeers(): Array<{ id: string; host: string; busPort: number }> {
    return this.table.members().filter((m) => m.id !== this.table.selfId && m.state !== 'left' && m.liveness !== 'down');
  }

  #isSelfAddress(s: GossipPeer): boolean {
    const me = this.table.self();
    return (s.host === me.host && s.busPort === me.busPort) || this.#selfSeeds.has(`${s.host}:${s.busPort}`);
  }

  #pick<T>(xs: readonly T[]): T {
    assert(xs.length > 0);
    return xs[Math.min(xs.length - 1, Math.floor(this.#random() * xs.length))]!;
  }

  #emit(changes: readonly MemberChange[]): void {
    if (changes.length === 0) return;
    for (const c of changes) {
      if (c.kind === 'down') this.stats.markedDown++;
      else if (c.kind === 'alive') this.stats.markedAlive++;
      else if (c.kind === 'refuted') this.stats.refutations++;
      if (c.kind !== 'updated' && c.kind !== 'suspect') this.#log('info', `gossip: ${c.id} ${c.kind} (incarnation ${c.member.incarnation})`);
    }
    this.#onChange(changes);
  }
}
