/**
 * What the server's commands see of the cluster when the node runs in one (started with
 * `seeds`): the Coordinator for replicated reads and writes, the ring and the membership for
 * CLUSTER SLOTS/SHARDS/NODES/INFO/PREFLIST, and MEET. Absent (ServerContext.cluster undefined):
 * a lone node, whose commands work on the local keyspace exactly as before.
 * Implemented by src/cluster/cluster_service.ts; declared here so src/server does not depend on
 * the bus and gossip modules.
 */
import type { Coordinator } from '../coordinator/coordinator.js';
import type { VersionedObject } from '../coordinator/object.js';
import type { Ring } from '../coordinator/ring.js';

export interface ClusterMemberView {
  readonly id: string;
  readonly host: string;
  /** Client (RESP) port. */
  readonly port: number;
  readonly busPort: number;
  readonly dc: string;
  readonly rack: string;
  readonly weight: number;
  /** joining | up | leaving | left */
  readonly state: string;
  /** As this node's failure detector sees it. */
  readonly liveness: 'alive' | 'suspect' | 'down';
}

/** Elastic membership controls (src/cluster/stream_manager.ts, issue 6). */
export interface StreamControl {
  /** CLUSTER LEAVE; throws an Error whose message is the reply line when it cannot start. */
  leave(): void;
  /** CLUSTER FORGET id; throws like leave(). */
  forget(id: string): void;
  /** `stream_*` key:value lines for CLUSTER INFO / INFO. */
  infoLines(): string[];
}

/** Anti-entropy as the commands see it (src/cluster/anti_entropy.ts). */
export interface AntiEntropyControl {
  /** CLUSTER REPAIR: runs a round now; resolves when it is done with what it did. */
  repair(): Promise<Readonly<Record<string, number>>>;
  /** CLUSTER DIGEST: one hex string per slot of [first, last], "" for an empty slot. */
  digest(first: number, last: number): Promise<string[]>;
}

export interface ClusterView {
  /** This node's id (its ring member id, = the keyspace's node id). */
  readonly selfId: string;
  readonly coordinator: Coordinator;
  /** The ring for the current membership and replication-factor (memoized). */
  ring(): Ring;
  /** Every known member, this node included, sorted by id. */
  members(): ClusterMemberView[];
  isUp(id: string): boolean;
  /** CLUSTER MEET: resolves with the id of the node found at that bus address. */
  meet(host: string, busPort: number): Promise<string>;
  /** One replica's own copy of `key` (this node's from its keyspace, others' over the bus). */
  readReplica(id: string, key: Buffer, timeoutMs: number): Promise<VersionedObject>;
  /** Merkle anti-entropy; absent in test doubles. */
  readonly antiEntropy?: AntiEntropyControl | undefined;
  /** Joins, leaves, forgets with streaming; absent in test doubles. */
  readonly stream?: StreamControl | undefined;
  /**
   * Hinted handoff (CLUSTER PREFLIST): every up node's pending hints for `key`, as
   * [holder id, target id] pairs sorted; a node that does not answer within `timeoutMs` is left out.
   */
  pendingHints?(key: Buffer, timeoutMs: number): Promise<Array<[string, string]>>;
  /**
   * INFO `# Cluster` lines after `cluster_enabled:1` (src/cluster/cluster_info.ts; subsystems add
   * theirs through ClusterService.addInfoProvider). Absent in test doubles: the section then
   * shows `cluster_enabled:1` alone.
   */
  infoFields?(): ReadonlyArray<readonly [string, string | number]>;
}
