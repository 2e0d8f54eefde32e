// A deterministic in-process cluster for gossip: virtual time (a priority queue of events), a
// seeded PRNG, and a network of Gossipers talking through an injected transport. No sockets, no
// real timers: the same seed gives the same run, event for event.
//
// Faults: kill (events to and from the node vanish: a blackhole), pause/resume (the node's events
// wait until it resumes, as with SIGSTOP: timers fire late, requests queue up), cut/heal links.
import { ClusterError } from '../../src/cluster/errors.js';
import { Gossiper, type GossipClock, type GossipPeer, type GossipTransport } from '../../src/cluster/gossip.js';
import { deserializeMembership, MembershipTable, type MemberChange, type MemberInfo } from '../../src/cluster/membership.js';
import type { GossipMessageType } from '../../src/cluster/message_types.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimEvent {
  time: number;
  seq: number;
  owner: string | null;
  fn: () => void;
  cancelled: boolean;
}

export class Scheduler {
  now = 0;
  #seq = 0;
  readonly #heap: SimEvent[] = [];
  /** Owner -> 'dead' | resume time; consulted when an owner's event comes due. */
  readonly ownerState = new Map<string, 'dead' | number>();
  events = 0;

  at(time: number, fn: () => void, owner: string | null): SimEvent {
    const e: SimEvent = { time: Math.max(time, this.now), seq: this.#seq++, owner, fn, cancelled: false };
    this.#push(e);
    return e;
  }

  #push(e: SimEvent): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  #pop(): SimEvent | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  /** Runs events up to `until` (or until `stop()` holds after an event), settling promises between events. */
  async runUntil(until: number, stop?: () => boolean): Promise<boolean> {
    for (;;) {
      const e = this.#heap[0];
      if (!e || e.time > until) {
        this.now = Math.max(this.now, until);
        return false;
      }
      this.#pop();
      if (e.cancelled) continue;
      if (e.owner !== null) {
        const st = this.ownerState.get(e.owner);
        if (st === 'dead') continue;
        if (typeof st === 'number' && st > e.time) {
          // Paused owner: the event waits for the resume, keeping its order.
          e.time = st;
          e.seq = this.#seq++;
          this.#push(e);
          continue;
        }
      }
      this.now = e.time;
      this.events++;
      e.fn();
      // Let every promise continuation triggered by this event run before the next event.
      await new Promise<void>((r) => setImmediate(r));
      if (stop?.()) return true;
    }
  }
}

function less(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export interface SimOptions {
  readonly seed: number;
  readonly gossipIntervalMs: number;
  readonly nodeTimeoutMs: number;
  readonly probeTimeoutMs?: number;
  /** One-way latency: base + random() x jitter. */
  readonly latencyMs?: number;
  readonly jitterMs?: number;
}

export interface ChangeLog {
  readonly at: number;
  readonly observer: string;
  readonly change: MemberChange;
}

export class SimNode {
  gossiper!: Gossiper;
  persisted: Buffer | null = null;
  dead = false;
  constructor(
    readonly info: MemberInfo,
    readonly seeds: readonly GossipPeer[],
  ) {}
  get id(): string {
    return this.info.id;
  }
  get addr(): string {
    return `${this.info.host}:${this.info.busPort}`;
  }
}

export class SimCluster {
  readonly sched = new Scheduler();
  readonly random: () => number;
  readonly nodes: SimNode[] = [];
  readonly byAddr = new Map<string, SimNode>();
  readonly changes: ChangeLog[] = [];
  readonly #cut = new Set<string>();
  messages = 0;

  constructor(readonly opts: SimOptions) {
    this.random = mulberry32(opts.seed);
  }

  static address(i: number): { host: string; busPort: number } {
    return { host: `10.0.${i >> 8}.${i & 255}`, busPort: 17000 };
  }

  /** Adds node i (id n<i>) with the given seed indexes and starts it. */
  add(i: number, seedIdx: readonly number[]): SimNode {
    const a = SimCluster.address(i);
    const info: MemberInfo = { id: `n${i}`, host: a.host, port: 7000, busPort: a.busPort, dc: 'dc1', rack: `r${i % 3}`, weight: 1, state: 'up' };
    const node = new SimNode(info, seedIdx.map((s) => SimCluster.address(s)));
    this.nodes.push(node);
    this.byAddr.set(node.addr, node);
    this.#boot(node);
    return node;
  }

  #boot(node: SimNode): void {
    const restored = node.persisted ? deserializeMembership(node.persisted) : [];
    const table = MembershipTable.create(node.info, this.sched.now, { nodeTimeoutMs: this.opts.nodeTimeoutMs }, restored);
    const clock: GossipClock = {
      now: () => this.sched.now,
      setTimeout: (fn, ms) => this.sched.at(this.sched.now + ms, fn, node.id),
      clearTimeout: (h) => {
        (h as SimEvent).cancelled = true;
      },
    };
    node.gossiper = new Gossiper({
      table,
      transport: this.#transport(node),
      gossipIntervalMs: this.opts.gossipIntervalMs,
      probeTimeoutMs: this.opts.probeTimeoutMs,
      seeds: node.seeds,
      clock,
      random: this.random,
      onChange: (cs) => {
        for (const c of cs) this.changes.push({ at: this.sched.now, observer: node.id, change: c });
        node.persisted = table.serialize();
      },
    });
    node.dead = false;
    this.sched.ownerState.delete(node.id);
    node.gossiper.start();
  }

  #latency(): number {
    return (this.opts.latencyMs ?? 1) + this.random() * (this.opts.jitterMs ?? 2);
  }

  #transport(from: SimNode): GossipTransport {
    return {
      request: (to: GossipPeer, type: GossipMessageType, payload: Buffer, timeoutMs: number): Promise<Buffer> =>
        new Promise<Buffer>((resolve, reject) => {
          this.messages++;
          let done = false;
          const timer = this.sched.at(
            this.sched.now + timeoutMs,
            () => {
              if (done) return;
              done = true;
              reject(new ClusterError('ERR_BUS_TIMEOUT', `sim: no answer from ${to.host}:${to.busPort}`));
            },
            from.id,
          );
          const fail = (err: ClusterError): void => {
            this.sched.at(
              this.sched.now + this.#latency(),
              () => {
                if (done) return;
                done = true;
                timer.cancelled = true;
                reject(err);
              },
              from.id,
            );
          };
          const dest = this.byAddr.get(`${to.host}:${to.busPort}`);
          if (!dest) return fail(new ClusterError('ERR_PEER_UNREACHABLE', 'sim: no such address'));
          if (dest === from) return fail(new ClusterError('ERR_SELF_CONNECTION', 'sim: self'));
          if (to.id !== undefined && to.id !== dest.id) return fail(new ClusterError('ERR_PEER_ID_MISMATCH', 'sim: other id'));
          if (this.isCut(from.id, dest.id)) return; // blackhole: the timeout answers
          this.sched.at(
            this.sched.now + this.#latency(),
            () => {
              dest.gossiper.handle(type, Buffer.from(payload)).then(
                (reply) => {
                  if (this.isCut(from.id, dest.id) || dest.dead) return;
                  this.sched.at(
                    this.sched.now + this.#latency(),
                    () => {
                      if (done) return;
                      done = true;
                      timer.cancelled = true;
                      resolve(reply);
                    },
                    from.id,
                  );
                },
                () => fail(new ClusterError('ERR_REMOTE', 'sim: handler failed')),
              );
            },
            dest.id,
          );
        }),
    };
  }

  isCut(a: string, b: string): boolean {
    return this.#cut.has(`${a}|${b}`) || this.#cut.has(`${b}|${a}`);
  }

  cut(a: string, b: string): void {
    this.#cut.add(`${a}|${b}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  kill(node: SimNode): void {
    node.dead = true;
    node.gossiper.stop();
    this.sched.ownerState.set(node.id, 'dead');
  }

  /** Restarts a killed node from its persisted table (a new incarnation). */
  restart(node: SimNode): void {
    this.#boot(node);
  }

  /** The node stops running for `ms` from now (SIGSTOP ... SIGCONT). */
  pause(node: SimNode, ms: number): void {
    this.sched.ownerState.set(node.id, this.sched.now + ms);
  }

  live(): SimNode[] {
    return this.nodes.filter((n) => !n.dead);
  }

  /** Every live node knows every node and sees every live node alive. */
  converged(expected = this.nodes.length): boolean {
    const live = this.live();
    for (const n of live) {
      const t = n.gossiper.table;
      if (t.size !== expected) return false;
      for (const other of live) {
        const m = t.get(other.id);
        if (!m || m.liveness !== 'alive') return false;
      }
    }
    return true;
  }

  round(): number {
    return Math.round(this.sched.now / this.opts.gossipIntervalMs);
  }

  async runUntil(ms: number, stop?: () => boolean): Promise<boolean> {
    return this.sched.runUntil(ms, stop);
  }
}
