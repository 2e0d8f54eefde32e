/**
 * The fields of INFO's `# Cluster` section on a node that runs in a cluster (issue 4), and the
 * hook other cluster subsystems use to add theirs.
 *
 *   INFO cluster
 *     cluster_enabled:1                     (0 on a lone node: src/server/info.ts prints only that)
 *     cluster_node_id, members (total, by state, by liveness), ring (fingerprint, version, size),
 *     N/R/W, sloppy quorum, coordinator counters, bus counters     <- coreClusterInfoFields()
 *     ...fields of each registered provider, in registration order  <- ClusterInfoProviders
 *
 * HOOK for other subsystems (hints, anti-entropy, streaming): build a `ClusterInfoProvider`
 * returning your `[name, value]` pairs (names prefixed with your subsystem, e.g. `hints_pending`,
 * `antientropy_rounds`) and register it once at startup with
 * `clusterService.addInfoProvider(provider)` (cluster_service.ts). The provider is called on every
 * INFO, so it must be cheap and must not throw; a name already printed is a programmer error.
 *
 * Pure: a snapshot in, lines out, so it is tested without sockets.
 */
import assert from 'node:assert';
import type { FsmStats } from '../coordinator/fsm_env.js';
import type { Ring } from '../coordinator/ring.js';
import type { ClusterMemberView } from '../server/cluster_view.js';
import type { BusStats } from './connection.js';

/** One `name:value` line of an INFO section. */
export type InfoField = readonly [name: string, value: string | number];

/** A subsystem's INFO cluster fields; called on every INFO, must be cheap and not throw. */
export type ClusterInfoProvider = () => readonly InfoField[];

/** Member states (ARCHITECTURE.md section 5), each counted even when zero. */
export const MEMBER_STATES = ['joining', 'up', 'leaving', 'left'] as const;
/** Failure-detector verdicts, each counted even when zero. */
export const MEMBER_LIVENESS = ['alive', 'suspect', 'down'] as const;

export interface ClusterInfoInput {
  readonly selfId: string;
  readonly members: readonly ClusterMemberView[];
  readonly ring: Ring;
  /** Rings this node has built since it started (RingProvider.version): grows on every change. */
  readonly ringVersion: number;
  /** replication-factor, read-quorum, write-quorum as configured (names or numbers). */
  readonly n: number;
  readonly r: string;
  readonly w: string;
  readonly sloppyQuorum: boolean;
  readonly coordinator: Readonly<FsmStats>;
  readonly bus: Readonly<BusStats>;
}

/** The core fields, in a fixed order (see the header). */
export function coreClusterInfoFields(s: ClusterInfoInput): InfoField[] {
  const fields: InfoField[] = [
    ['cluster_enabled', 1],
    ['cluster_node_id', s.selfId],
    ['cluster_members_total', s.members.length],
  ];
  for (const state of MEMBER_STATES) fields.push([`cluster_members_${state}`, s.members.filter((m) => m.state === state).length]);
  // This node never suspects itself, whatever a stale table row says.
  const liveness = (m: ClusterMemberView): string => (m.id === s.selfId ? 'alive' : m.liveness);
  for (const l of MEMBER_LIVENESS) fields.push([`cluster_members_${l}`, s.members.filter((m) => liveness(m) === l).length]);
  const c = s.coordinator;
  const b = s.bus;
  fields.push(
    ['cluster_ring_fingerprint', s.ring.fingerprint],
    ['cluster_ring_version', s.ringVersion],
    ['cluster_ring_members', s.ring.members.length],
    ['cluster_replication_factor', s.n],
    ['cluster_read_quorum', s.r],
    ['cluster_write_quorum', s.w],
    ['cluster_sloppy_quorum', s.sloppyQuorum ? 'yes' : 'no'],
    ['cluster_coordinated_gets', c.gets],
    ['cluster_coordinated_puts', c.puts],
    ['cluster_forwards', c.forwards],
    ['cluster_forward_retries', c.forwardRetries],
    ['cluster_read_noquorum', c.readNoQuorum],
    ['cluster_write_noquorum', c.writeNoQuorum],
    ['cluster_late_acks', c.lateAcks],
    ['cluster_late_write_errors', c.lateWriteErrors],
    ['cluster_read_repairs_sent', c.readRepairsSent],
    ['cluster_read_repairs_done', c.readRepairsDone],
    ['cluster_read_repairs_skipped', c.readRepairsSkipped],
    ['cluster_hinted_puts_received', c.hintedPutsReceived],
    ['cluster_bus_frames_in', b.framesIn],
    ['cluster_bus_frames_out', b.framesOut],
    ['cluster_bus_request_timeouts', b.requestTimeouts],
    ['cluster_bus_handshake_failures', b.handshakeFailures],
    ['cluster_bus_overload_rejections', b.overloadRejections],
  );
  return fields;
}

/** The registered providers of a node (one per subsystem), called in registration order. */
export class ClusterInfoProviders {
  readonly #providers: ClusterInfoProvider[] = [];

  add(p: ClusterInfoProvider): void {
    this.#providers.push(p);
  }

  /** `core` followed by every provider's fields; asserts that no name repeats. */
  fields(core: readonly InfoField[]): InfoField[] {
    const out = [...core];
    for (const p of this.#providers) for (const f of p()) out.push(f);
    const names = new Set(out.map(([n]) => n));
    assert(names.size === out.length, 'two INFO cluster fields share a name');
    return out;
  }
}
