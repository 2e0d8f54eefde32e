/**
 * One node's cluster, assembled (issue 4): the membership stack (ClusterMembership: bus + gossip
 * + table, cluster_node.ts), the ring for the current membership (RingProvider, rebuilt when the
 * membership or `replication-factor` changes), the Coordinator over the bus (BusReplicaTransport),
 * and the bus handlers that serve other nodes' replica calls from the local Keyspace.
 *
 *   startClusterService(config, keyspace, log, clientPort)
 *     membership = ClusterMembership.start(id = keyspace node id, bus on cluster-port, seeds, ...)
 *     coordinator = new Coordinator(self, ring: RingProvider(membership members, {vnodes, n}),
 *                                   isUp: liveness != down, transport: bus, settings: config)
 *     attachReplicaHandlers(bus, coordinator)
 *     attachClusterKeysHandlers(bus, keyspace)   (SCAN_RANGE / FLUSH_ALL: cluster-wide SCAN KEYS DBSIZE FLUSHALL)
 *   close(): membership.close() (gossip stops, table persisted, bus closed)
 *
 * Settings are read from the config on every request (settingsFromConfig), so CONFIG SET
 * read-quorum / write-quorum / sloppy-quorum / request-timeout-ms / replication-factor apply to
 * the next request. The node runs a cluster only when `seeds` is set (a lone node stays exactly
 * as before: no bus, local commands).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Coordinator } from '../coordinator/coordinator.js';
import { settingsFromConfig } from '../coordinator/coordinator_settings.js';
import type { VersionedObject } from '../coordinator/object.js';
import type { Ring, RingMember } from '../coordinator/ring.js';
import { freezeMembers, memoByVersion, RingProvider, ringOptionsFromConfig } from '../coordinator/ring_provider.js';
import type { Keyspace } from '../server/keyspace.js';
import type { ClusterMemberView, ClusterView } from '../server/cluster_view.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import { ClusterMembership } from './cluster_node.js';
import { BusReplicaTransport, attachReplicaHandlers } from './replica_transport.js';
import { attachClusterKeysHandlers, ClusterKeysTransport } from './cluster_keys_transport.js';
import type { ClusterKeyspaceAccess, RangeScanRequest, RangeScanResult } from '../server/commands/cluster_keyspace.js';
import { defaultBusPort, parseSeeds } from './seeds.js';
import { ClusterInfoProviders, coreClusterInfoFields, type ClusterInfoProvider, type InfoField } from './cluster_info.js';
import { HintStore } from './hint_store.js';
import { HandoffService, handoffSettingsFromConfig } from './handoff_service.js';
import { AntiEntropy } from './anti_entropy.js';
import { MerkleStore } from './merkle_store.js';
import { joinState, startStreamManager, streamOf } from './stream_service.js';
import { checkNotRemoved } from './rejoin_guard.js';
import type { StreamManager } from './stream_manager.js';
import { WeightWatcher } from './membership_weight.js';
import { preflightAutoJoin } from './join_auto.js';
import { saveStreamProgress } from './stream_manager.js';

/** The membership table persisted in the data dir (soft state: gossip rebuilds it). */
export const MEMBERSHIP_FILE_NAME = 'cluster-membership.bin';
/** Largest persisted table read back (4096 members x ~200 bytes fits easily). */
export const MAX_MEMBERSHIP_FILE_BYTES = 4 * 1024 * 1024;
/** Longest wait at shutdown for replica fan-outs and read repairs still in flight, ms. */
export const CLOSE_DRAIN_MS = 2_000;
/** How long CLUSTER MEET keeps trying an address, ms. */
export const MEET_TIMEOUT_MS = 5_000;

/** Whether this node's config asks for a cluster (a non-empty `seeds`). */
export function clusterConfigured(config: ConfigView): boolean {
  return config.getString('seeds').trim().length > 0;
}

/** The address peers reach this node at: the first `bind` address that names one host. */
export function announceHost(config: ConfigView): string {
  for (const a of config.getString('bind').split(/\s+/)) {
    const addr = a.startsWith('-') ? a.slice(1) : a;
    if (addr.length === 0 || addr === '*' || addr === '0.0.0.0' || addr === '::' || addr.includes(':')) continue;
    return addr;
  }
  return '127.0.0.1';
}

function readPersisted(file: string, log: LogFn): Buffer | null {
  try {
    const st = fs.statSync(file);
    if (st.size > MAX_MEMBERSHIP_FILE_BYTES) {
      log('warn', `cluster: ${file} is ${st.size} bytes, over ${MAX_MEMBERSHIP_FILE_BYTES}; ignoring it`);
      return null;
    }
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('warn', `cluster: cannot read ${file}: ${(err as Error).message}`);
    return null;
  }
}

/** Temp file + rename: a crash leaves the old table or the new one. */
function persistAtomically(file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

export class ClusterService implements ClusterView, ClusterKeyspaceAccess {
  readonly selfId: string;
  readonly coordinator: Coordinator;
  readonly membership: ClusterMembership;
  readonly #rings: RingProvider;
  readonly #transport: BusReplicaTransport;
  readonly #keyspace: Keyspace;
  readonly #keys: ClusterKeysTransport;
  readonly #config: ConfigView;
  readonly #infoProviders = new ClusterInfoProviders();
  /** Merkle anti-entropy with the other replicas (anti_entropy.ts); CLUSTER REPAIR / DIGEST. */
  readonly antiEntropy: AntiEntropy;
  /** Hinted handoff: this node's durable hints and their delivery (handoff_service.ts). */
  readonly handoff: HandoffService;
  /** CONFIG SET weight -> a streamed weight change (membership_weight.ts). */
  readonly #weight: WeightWatcher;

  private constructor(membership: ClusterMembership, keyspace: Keyspace, config: ConfigView, log: LogFn, hints: HintStore) {
    this.selfId = keyspace.nodeId;
    this.membership = membership;
    this.#keyspace = keyspace;
    this.#config = config;
    const table = membership.table;
    // The member row itself (it has host and busPort): no object per replica request.
    this.#transport = new BusReplicaTransport(membership.bus, (id) => table.get(id));
    this.#rings = new RingProvider(
      // Rebuilt only when a row changed (not per request: a copy and a sort of the table each).
      memoByVersion(
        () => table.rowsVersion,
        () => freezeMembers(table.members().map((m): RingMember => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, state: m.state }))),
      ),
      ringOptionsFromConfig(config),
    );
    this.coordinator = new Coordinator({
      self: this.selfId,
      ring: () => this.#rings.current(),
      isUp: (id) => this.isUp(id),
      keyspace,
      transport: this.#transport,
      settings: () => settingsFromConfig(config),
      pendingReplicas: (slot) => streamOf(membership)?.pendingReplicas(slot) ?? [],
      // A joining (or gaining) node that is down or failed a write gets it as a hint from this
      // coordinator, handed off when it is back (issue 6: writes while a joiner is down).
      pendingMissed: (id, key, object) => this.handoff.onHint(id, key, object),
      log,
      onHint: (forNode, key, object) => this.handoff.onHint(forNode, key, object),
      hintedCopy: (key) => hints.hintedCopy(key),
    });
    this.handoff = new HandoffService({
      selfId: this.selfId,
      store: hints,
      bus: membership.bus,
      addressOf: (id) => {
        const m = table.get(id);
        return m === undefined ? undefined : { host: m.host, busPort: m.busPort };
      },
      isUp: (id) => this.isUp(id),
      peers: () => table.members().filter((m) => m.id !== this.selfId && this.isUp(m.id)).map((m) => m.id),
      merge: (key, object) => keyspace.mergeObject(key, object),
      settings: () => handoffSettingsFromConfig(config),
      now: Date.now,
      log,
      isGone: (id) => table.get(id)?.state === 'left',
    });
    this.handoff.attach();
    this.#weight = new WeightWatcher({
      config,
      table,
      updateSelf: (change) => {
        membership.gossiper.updateSelf(change);
        membership.flushNow();
      },
      log,
    });
    attachReplicaHandlers(membership.bus, () => this.coordinator);
    this.#keys = new ClusterKeysTransport(
      membership.bus,
      (id) => {
        const m = table.get(id);
        return m === undefined ? undefined : { host: m.host, busPort: m.busPort };
      },
      this.selfId,
      keyspace,
      Date.now,
      () => this.handoff.flushed(),
    );
    attachClusterKeysHandlers(membership.bus, keyspace, Date.now, () => this.handoff.flushed());
    this.addInfoProvider(() => streamOf(membership)?.infoFields() ?? []);
    const merkle = new MerkleStore(keyspace.engine, Date.now);
    keyspace.setWriteObserver(merkle);
    this.antiEntropy = new AntiEntropy({
      bus: membership.bus,
      addressOf: (id) => {
        const m = table.get(id);
        return m === undefined ? undefined : { host: m.host, busPort: m.busPort };
      },
      selfId: this.selfId,
      keyspace,
      store: merkle,
      ring: () => this.#rings.current(),
      // The stream manager knows the target ring (a join or leave in progress); before it starts, the current ring.
      owns: (slot) => this.stream?.holdsSlot(slot) ?? this.#rings.current().preflist(slot).includes(this.selfId),
      isUp: (id) => this.isUp(id),
      config,
      log,
      now: Date.now,
    });
    this.antiEntropy.start();
    this.addInfoProvider(() => this.antiEntropy.infoFields());
  }

  /** `onLeft`: the node left the ring after CLUSTER LEAVE (the node shuts down). */
  static async start(opts: { config: ConfigView; keyspace: Keyspace; log: LogFn; dir: string; clientPort: number; onLeft?: () => void }): Promise<ClusterService> {
    const { config, keyspace, log } = opts;
    const file = path.join(opts.dir, MEMBERSHIP_FILE_NAME);
    const configuredBus = config.getNumber('cluster-port');
    const busPort = configuredBus !== 0 ? configuredBus : defaultBusPort(opts.clientPort);
    const secret = config.getString('cluster-secret');
    // Elastic membership (issue 6): a fresh node with join-streaming, or an interrupted join, enters as joining.
    const join = joinState(config, opts.dir, file, log);
    if (join.auto) {
      // `join-streaming auto` (join_auto.ts): stream only into a cluster that holds data; decided
      // before this node's first gossip, so a new cluster's nodes enter `up` directly.
      const seeds = parseSeeds(config.getString('seeds'));
      const announced = { host: config.getString('cluster-announce-ip') || announceHost(config), busPort: config.getNumber('cluster-announce-bus-port') || busPort };
      if ((await preflightAutoJoin({ nodeId: keyspace.nodeId, self: announced, bindHost: announceHost(config), ...(secret.length > 0 ? { secret } : {}), seeds, log })) === 'up') {
        join.progress.joining = false;
        saveStreamProgress(opts.dir, join.progress);
        join.state = 'up';
      }
    }
    // Hints first: they are counted from storage before any peer can send one.
    const hints = await HintStore.open(keyspace.engine, { now: Date.now, log, writeOptions: () => keyspace.writeOptions() });
    const membership = await ClusterMembership.start({
      nodeId: keyspace.nodeId,
      host: announceHost(config),
      port: opts.clientPort,
      busPort,
      announceHost: config.getString('cluster-announce-ip'),
      announceBusPort: config.getNumber('cluster-announce-bus-port'),
      ...(secret.length > 0 ? { secret } : {}),
      dc: config.getString('dc'),
      rack: config.getString('rack'),
      weight: config.getNumber('weight'),
      state: join.state,
      seeds: parseSeeds(config.getString('seeds')),
      gossipIntervalMs: config.getNumber('gossip-interval-ms'),
      nodeTimeoutMs: config.getNumber('node-timeout-ms'),
      persisted: readPersisted(file, log),
      persist: (bytes) => persistAtomically(file, bytes),
      log,
      // A node removed from the cluster (FORGET while it was down) refuses to rejoin with its old data.
      beforeGossip: (bus, table) => checkNotRemoved(bus, table, opts.dir, log),
    });
    startStreamManager({ membership, keyspace, config, log, dir: opts.dir, progress: join.progress, ...(opts.onLeft === undefined ? {} : { onLeft: opts.onLeft }) });
    log('info', `cluster: node ${keyspace.nodeId} bus listening on ${announceHost(config)}:${membership.bus.port}${secret.length > 0 ? ' (cluster-secret set)' : ''}`);
    const service = new ClusterService(membership, keyspace, config, log, hints);
    service.addInfoProvider(() => service.handoff.infoLines());
    service.handoff.start();
    return service;
  }

  /** Joins, leaves and forgets with streaming (stream_manager.ts). */
  get stream(): StreamManager | undefined {
    return streamOf(this.membership);
  }

  ring(): Ring {
    return this.#rings.current();
  }

  isUp(id: string): boolean {
    if (id === this.selfId) return true;
    const m = this.membership.table.get(id);
    return m !== undefined && m.liveness !== 'down';
  }

  members(): ClusterMemberView[] {
    return this.membership.table.members().map((m) => ({
      id: m.id,
      host: m.host,
      port: m.port,
      busPort: m.busPort,
      dc: m.dc,
      rack: m.rack,
      weight: m.weight,
      state: m.state,
      liveness: m.liveness,
    }));
  }

  readReplica(id: string, key: Buffer, timeoutMs: number): Promise<VersionedObject> {
    if (id === this.selfId) return this.#keyspace.readObject(key);
    return this.#transport.replicaGet(id, key, { timeoutMs });
  }

  pendingHints(key: Buffer, timeoutMs: number): Promise<Array<[string, string]>> {
    return this.handoff.pendingHintsFor(key, timeoutMs);
  }

  scanRange(node: string, req: RangeScanRequest, timeoutMs: number): Promise<RangeScanResult> {
    return this.#keys.scanRange(node, req, timeoutMs);
  }

  flushNode(node: string, timeoutMs: number): Promise<void> {
    return this.#keys.flushNode(node, timeoutMs);
  }

  /**
   * INFO `# Cluster` HOOK (cluster_info.ts): hints, anti-entropy and streaming register their
   * fields here once at startup, e.g. `service.addInfoProvider(() => [['hints_pending', n]])`.
   */
  addInfoProvider(provider: ClusterInfoProvider): void {
    this.#infoProviders.add(provider);
  }

  /** INFO cluster: the core fields, then every registered provider's. */
  infoFields(): InfoField[] {
    const c = this.#config;
    const core = coreClusterInfoFields({
      selfId: this.selfId,
      members: this.members(),
      ring: this.ring(),
      ringVersion: this.#rings.version,
      n: c.getNumber('replication-factor'),
      r: c.getString('read-quorum'),
      w: c.getString('write-quorum'),
      sloppyQuorum: c.getBool('sloppy-quorum'),
      coordinator: this.coordinator.stats,
      bus: this.membership.bus.stats,
    });
    return this.#infoProviders.fields(core);
  }

  meet(host: string, busPort: number): Promise<string> {
    return this.membership.meet(host, busPort, MEET_TIMEOUT_MS);
  }

  /** Advertises the client port actually listened on (config `port 0`). */
  setClientPort(port: number): void {
    if (this.membership.table.self().port !== port) this.membership.gossiper.updateSelf({ port });
  }

  /** Lets fan-outs in flight finish (at most CLOSE_DRAIN_MS), then stops gossip and the bus. */
  async close(): Promise<void> {
    this.#weight.close();
    await this.handoff.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.coordinator.whenIdle().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    await streamOf(this.membership)?.close();
    this.antiEntropy.close();
    await this.membership.close();
  }
}
