/**
 * CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT over the whole cluster (issue 4): the slot's keys as
 * its replicas hold them, merged.
 *
 *   replicas of the slot that this node sees up (its preference list; this node reads locally)
 *     each: pages of its live keys of the slot, in key order (SCAN_RANGE, cluster_keyspace.ts)
 *   k-way merge of the sorted pages: each distinct key once
 *     COUNTKEYSINSLOT -> how many distinct keys;  GETKEYSINSLOT slot n -> the first n, in order
 *
 * Memory is bounded by one page per replica (SLOT_KEYS_PAGE_COUNT keys), whatever the slot holds.
 * A key counts when it is live on at least one replica that answered: like DBSIZE, this is what
 * the replicas hold now, not a quorum read (a key whose delete has not reached every replica yet
 * is still counted). A replica that fails is dropped from the merge; the answer comes from the
 * others, and only when none answers the command fails (CLUSTERDOWN).
 */
import { UnavailableError } from '../../coordinator/fsm_errors.js';
import type { ClusterView } from '../cluster_view.js';
import type { ClusterKeyspaceAccess, RangeScanResult } from './cluster_keyspace.js';
import { slotStartCursor } from './cluster_scan_plan.js';

/** Keys examined per page asked of one replica. */
export const SLOT_KEYS_PAGE_COUNT = 1_000;

type Cluster = ClusterView & ClusterKeyspaceAccess;

/** One replica's live keys of one slot, page by page, in key order. */
class ReplicaSlotKeys {
  #page: Buffer[] = [];
  #i = 0;
  /** Where the next page starts; 0n: no more pages. */
  #cursor: bigint;
  failed = false;

  constructor(
    private readonly c: Cluster,
    readonly node: string,
    private readonly slot: number,
    private readonly timeoutMs: number,
  ) {
    this.#cursor = slotStartCursor(slot);
  }

  /** The smallest key not yet taken; undefined when the replica has no more (or failed). */
  async head(): Promise<Buffer | undefined> {
    while (this.#i >= this.#page.length) {
      if (this.#cursor === 0n || this.failed) return undefined;
      let r: RangeScanResult;
      try {
        r = await this.c.scanRange(
          this.node,
          { cursor: this.#cursor, lastSlot: this.slot, count: SLOT_KEYS_PAGE_COUNT, pattern: undefined, matchNone: false, countOnly: false },
          this.timeoutMs,
        );
      } catch {
        this.failed = true;
        return undefined;
      }
      // A page must move forward, or a misbehaving replica would loop forever.
      if (r.cursor !== 0n && r.cursor <= this.#cursor) {
        this.failed = true;
        return undefined;
      }
      this.#cursor = r.cursor;
      this.#page = r.keys;
      this.#i = 0;
    }
    return this.#page[this.#i];
  }

  take(): void {
    this.#i++;
  }
}

export interface SlotKeysResult {
  /** Distinct keys seen (all of them, or up to the limit). */
  readonly count: number;
  /** The first `limit` keys in key order (empty when keys were not asked for). */
  readonly keys: Buffer[];
}

/**
 * Merges the slot's keys from its up replicas: counts distinct live keys and keeps the first
 * `keep` of them; stops after `limit` distinct keys (Infinity: count them all).
 */
export async function clusterSlotKeys(c: Cluster, slot: number, opts: { keep: number; limit: number; timeoutMs: number }): Promise<SlotKeysResult> {
  const ring = c.ring();
  const replicas = ring.preflist(slot).filter((id) => c.isUp(id));
  if (replicas.length === 0) throw new UnavailableError(`no replica of slot ${slot} is up`);
  const streams = replicas.map((id) => new ReplicaSlotKeys(c, id, slot, opts.timeoutMs));
  const keys: Buffer[] = [];
  let count = 0;
  while (count < opts.limit) {
    const heads = await Promise.all(streams.map((s) => s.head()));
    let min: Buffer | undefined;
    for (const h of heads) if (h !== undefined && (min === undefined || Buffer.compare(h, min) < 0)) min = h;
    if (min === undefined) break;
    count++;
    if (keys.length < opts.keep) keys.push(min);
    for (const [i, h] of heads.entries()) if (h !== undefined && h.equals(min)) streams[i]!.take();
  }
  if (streams.every((s) => s.failed)) throw new UnavailableError(`no replica of slot ${slot} answered (${replicas.join(', ')})`);
  return { count, keys };
}
