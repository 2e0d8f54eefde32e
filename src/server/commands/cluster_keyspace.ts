/**
 * What the whole-keyspace commands (SCAN KEYS RANDOMKEY DBSIZE FLUSHALL, keys.ts) need of the
 * cluster beyond ClusterView: one replica's keys of a slot range, and flushing one node.
 * Implemented by src/cluster/cluster_service.ts (local calls for this node, the bus for others).
 * Declared here, not in cluster_view.ts, so the pinned ClusterView stays as it is; a view that
 * does not offer it (a test double) makes those commands act on the local keyspace as before.
 */
import type { ClusterView } from '../cluster_view.js';

/** One replica's scan of slots [slot of `cursor`, lastSlot] starting at `cursor` (scan_cursor.ts). */
export interface RangeScanRequest {
  /** Non-zero scan_cursor.ts position: where to start. */
  readonly cursor: bigint;
  /** Inclusive last slot of the range. */
  readonly lastSlot: number;
  /** Keys to examine before stopping at a group boundary (ignored with countOnly). */
  readonly count: number;
  /** Glob the returned (and counted) keys must match; undefined: all. */
  readonly pattern: Buffer | undefined;
  /** Examine keys but return and count none (SCAN TYPE other than string: the cursor still moves). */
  readonly matchNone: boolean;
  /** Walk the whole range and return only the number of live matching keys (DBSIZE). */
  readonly countOnly: boolean;
}

export interface RangeScanResult {
  /** Where to continue inside the range; 0n: the range is done. */
  readonly cursor: bigint;
  /** Stored keys examined (live or not). */
  readonly examined: number;
  /** Live matching keys seen (= keys.length unless countOnly). */
  readonly live: number;
  readonly keys: Buffer[];
}

export interface ClusterKeyspaceAccess {
  /** `node`'s own copy of the range (this node's keyspace, others over the bus). */
  scanRange(node: string, req: RangeScanRequest, timeoutMs: number): Promise<RangeScanResult>;
  /** FLUSHALL on `node` alone. */
  flushNode(node: string, timeoutMs: number): Promise<void>;
}

/** The cluster view with range scans, or undefined when the view does not offer them. */
export function clusterKeyspaceOf(view: ClusterView | undefined): (ClusterView & ClusterKeyspaceAccess) | undefined {
  if (view === undefined) return undefined;
  const v = view as ClusterView & Partial<ClusterKeyspaceAccess>;
  return typeof v.scanRange === 'function' && typeof v.flushNode === 'function' ? (v as ClusterView & ClusterKeyspaceAccess) : undefined;
}
