/**
 * One node's membership stack, assembled: a ClusterBus on the cluster port, the MembershipTable
 * restored from what the node persisted, and a Gossiper on the bus with the seed list.
 *
 *   ClusterMembership.start(opts)
 *     bus.listen(cluster-port) ─▶ table = create(self incl. the real bus port, restored)
 *     ─▶ attachGossip(bus) ─▶ gossiper.start() ─▶ persist(table) at most once per persistEveryMs
 *   close(): gossiper.stop(), final persist, bus.close()
 *
 * Wiring (lead): in the node's startup, after the storage engine opens:
 *   const m = await ClusterMembership.start({ nodeId: identity.nodeId, host: announce ip,
 *     port: config port, busPort: config cluster-port || defaultBusPort(port), secret:
 *     config cluster-secret, seeds: parseSeeds(config seeds), gossipIntervalMs, nodeTimeoutMs,
 *     dc, rack, weight, state: 'up' (or 'joining' until streaming is done),
 *     persisted: <bytes read from the data dir or null>, persist: (b) => write them atomically,
 *     onChange: (cs) => rebuild the ring on joined/updated, fallbacks on down/alive/suspect });
 * register the coordinator's own bus handlers in `beforeListen` (types from message_types.ts) and
 * close() on SHUTDOWN. Persisted bytes that fail their checksum are logged and ignored:
 * membership is soft state that gossip rebuilds from the seeds.
 */
import { ClusterBus, type BusLimits } from './bus.js';
import type { LogFn } from './connection.js';
import { Gossiper, realClock, type GossipPeer } from './gossip.js';
import { attachGossip, busGossipTransport } from './gossip_bus.js';
import { deserializeMembership, MembershipTable, type MemberChange, type MemberRecord, type MemberState } from './membership.js';

/** Default pace of persisting the table after changes (it is soft state; the latest matters little). */
export const DEFAULT_PERSIST_EVERY_MS = 1_000;

export interface ClusterMembershipOptions {
  readonly nodeId: string;
  /** Address to bind the bus to and to advertise to peers. */
  readonly host: string;
  /** Client (RESP) port, advertised in gossip. */
  readonly port: number;
  /** Cluster bus port; 0 = any free port (tests). */
  readonly busPort: number;
  /** Address advertised to peers instead of `host` (cluster-announce-ip: NAT, a proxy). */
  readonly announceHost?: string;
  /** Bus port advertised to peers instead of the listening one (cluster-announce-bus-port); 0/absent: the listening port. */
  readonly announceBusPort?: number;
  readonly secret?: string;
  readonly dc?: string;
  readonly rack?: string;
  readonly weight?: number;
  readonly state?: MemberState;
  readonly seeds?: readonly GossipPeer[];
  readonly gossipIntervalMs: number;
  readonly nodeTimeoutMs: number;
  readonly probeTimeoutMs?: number;
  readonly busLimits?: Partial<BusLimits>;
  /** What persist() last wrote, or null on a fresh node. */
  readonly persisted?: Buffer | null;
  readonly persist?: (bytes: Buffer) => void;
  readonly persistEveryMs?: number;
  readonly log?: LogFn;
  readonly onChange?: (changes: readonly MemberChange[]) => void;
  /**
   * Registers other subsystems' bus handlers (coordinator, handoff, ...) before the bus listens,
   * so no peer request meets ERR_UNKNOWN_TYPE in the moment after startup.
   */
  readonly beforeListen?: (bus: ClusterBus) => void;
  /**
   * Runs after the bus listens and the table is restored, before the first gossip round (no
   * peer has heard from this node yet). Rejecting stops the start (the bus is closed): e.g. a
   * node removed from the cluster refuses to rejoin with its old data (rejoin_guard.ts).
   */
  readonly beforeGossip?: (bus: ClusterBus, table: MembershipTable) => Promise<void>;
}

export class ClusterMembership {
  readonly bus: ClusterBus;
  readonly table: MembershipTable;
  readonly gossiper: Gossiper;
  readonly #persist: ((bytes: Buffer) => void) | undefined;
  readonly #log: LogFn;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(bus: ClusterBus, table: MembershipTable, gossiper: Gossiper, opts: ClusterMembershipOptions) {
    this.bus = bus;
    this.table = table;
    this.gossiper = gossiper;
    this.#persist = opts.persist;
    this.#log = opts.log ?? (() => {});
  }

  static async start(opts: ClusterMembershipOptions): Promise<ClusterMembership> {
    const log = opts.log ?? (() => {});
    let restored: MemberRecord[] = [];
    if (opts.persisted) {
      try {
        restored = deserializeMembership(opts.persisted);
      } catch (e) {
        log('warn', `cluster: ignoring the persisted membership table (${(e as Error).message}); rejoining from the seeds`);
      }
    }
    const bus = new ClusterBus({ nodeId: opts.nodeId, host: opts.host, port: opts.busPort, secret: opts.secret, limits: opts.busLimits, log });
    opts.beforeListen?.(bus);
    await bus.listen();
    const table = MembershipTable.create(
      {
        id: opts.nodeId,
        host: opts.announceHost !== undefined && opts.announceHost.length > 0 ? opts.announceHost : opts.host,
        port: opts.port,
        busPort: opts.announceBusPort !== undefined && opts.announceBusPort > 0 ? opts.announceBusPort : bus.port,
        dc: opts.dc ?? 'dc1',
        rack: opts.rack ?? '',
        weight: opts.weight ?? 1,
        state: opts.state ?? 'up',
      },
      realClock.now(),
      { nodeTimeoutMs: opts.nodeTimeoutMs },
      restored,
    );
    if (opts.beforeGossip !== undefined) {
      try {
        await opts.beforeGossip(bus, table);
      } catch (e) {
        await bus.close();
        throw e;
      }
    }
    let self: ClusterMembership | null = null;
    const gossiper = new Gossiper({
      table,
      transport: busGossipTransport(bus),
      gossipIntervalMs: opts.gossipIntervalMs,
      probeTimeoutMs: opts.probeTimeoutMs,
      seeds: opts.seeds,
      log,
      onChange: (cs) => {
        if (self) self.#dirty = true;
        opts.onChange?.(cs);
      },
    });
    attachGossip(bus, gossiper);
    self = new ClusterMembership(bus, table, gossiper, opts);
    const m = self;
    if (m.#persist) {
      m.#dirty = true;
      m.#timer = setInterval(() => m.#flush(), opts.persistEveryMs ?? DEFAULT_PERSIST_EVERY_MS);
      m.#timer.unref();
    }
    gossiper.start();
    return m;
  }

  /** CLUSTER MEET: resolves with the id of the node at that bus address. */
  meet(host: string, busPort: number, timeoutMs?: number): Promise<string> {
    return this.gossiper.meet(host, busPort, timeoutMs);
  }

  /** Writes the table now if it changed (own state or weight changes must not wait for the timer). */
  flushNow(): void {
    this.#flush();
  }

  #flush(): void {
    if (!this.#dirty || !this.#persist) return;
    this.#dirty = false;
    try {
      this.#persist(this.table.serialize());
    } catch (e) {
      this.#dirty = true;
      this.#log('warn', `cluster: persisting the membership table failed: ${(e as Error).message}`);
    }
  }

  /** Stops gossip, writes the table one last time, closes the bus. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.gossiper.stop();
    if (this.#timer) clearInterval(this.#timer);
    this.#dirty = true;
    this.#flush();
    await this.bus.close();
  }
}
