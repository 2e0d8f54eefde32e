/**
 * SCAN / KEYS / RANDOMKEY / DBSIZE / FLUSHALL over the whole cluster (issue 4), used by keys.ts
 * when the node runs in a cluster.
 *
 *  - SCAN walks slots in order; each run of slots goes to one replica (cluster_scan_plan.ts),
 *    which scans its own copy from the cursor and stops at a group boundary, so the cursor
 *    (slot, 6-byte key prefix) stays valid whichever node receives the next call, and every key
 *    present for the whole scan is returned (exactly once when the membership is stable: each
 *    slot is asked of one replica). A replica that fails is skipped for the rest of the call and
 *    the next replica of the preference list answers the same slots.
 *  - KEYS is the full scan; DBSIZE the sum over slot runs of one replica's live count, so it is
 *    approximate: it counts what the chosen replicas hold (a write not yet on that replica is
 *    missed, a deleted key whose tombstone has not reached it is counted).
 *  - FLUSHALL flushes every node seen up, one by one: not atomic, and a node down at the time
 *    keeps its data (answered as an error naming it).
 * Work per SCAN call is bounded by COUNT and by MAX_SEGMENTS_PER_SCAN_CALL replica calls (a reply
 * may hold fewer than COUNT keys, as Redis allows).
 */
import { UnavailableError } from '../../coordinator/fsm_errors.js';
import type { ClusterView } from '../cluster_view.js';
import { SLOT_COUNT } from '../key_layout.js';
import type { ClusterKeyspaceAccess, RangeScanRequest } from './cluster_keyspace.js';
import { chooseReplica, cursorSlot, planSegment, slotStartCursor, type ScanSegment } from './cluster_scan_plan.js';

/** Most replica calls (slot runs) one SCAN call makes before answering with the cursor reached. */
export const MAX_SEGMENTS_PER_SCAN_CALL = 64;
/** COUNT of each step of KEYS and RANDOMKEY's walk. */
export const FULL_SCAN_STEP_COUNT = 10_000;
/** Keys RANDOMKEY picks among (the first run found from a random slot). */
export const RANDOMKEY_STEP_COUNT = 16;

type Cluster = ClusterView & ClusterKeyspaceAccess;

export interface ScanFilter {
  readonly pattern: Buffer | undefined;
  readonly matchNone: boolean;
}

/** One replica's answer for one slot run, falling over to the next replica when one fails. */
async function askSegment(
  c: Cluster,
  cursor: bigint,
  failed: Set<string>,
  req: (seg: ScanSegment) => RangeScanRequest,
  timeoutMs: number,
): Promise<{ seg: ScanSegment; result: Awaited<ReturnType<Cluster['scanRange']>> }> {
  const ring = c.ring();
  const slot = cursorSlot(cursor);
  for (;;) {
    const seg = planSegment(slot, (s) => ring.preflist(s), (p) => chooseReplica(p, c.selfId, (id) => c.isUp(id), failed));
    if (seg.node === undefined) throw new UnavailableError(`no replica of slot ${slot} answered the scan`);
    try {
      return { seg, result: await c.scanRange(seg.node, req(seg), timeoutMs) };
    } catch (err) {
      if (seg.node === c.selfId) throw err;
      failed.add(seg.node);
    }
  }
}

/** One SCAN step from `cursor` (0n: start); the reply's cursor 0n means done. */
export async function clusterScan(
  c: Cluster,
  cursor: bigint,
  count: number,
  filter: ScanFilter,
  timeoutMs: number,
): Promise<{ cursor: bigint; keys: Buffer[] }> {
  let at = cursor === 0n ? slotStartCursor(0) : cursor;
  if (cursorSlot(at) >= SLOT_COUNT) return { cursor: 0n, keys: [] };
  const keys: Buffer[] = [];
  const failed = new Set<string>();
  let examined = 0;
  for (let calls = 0; examined < count && calls < MAX_SEGMENTS_PER_SCAN_CALL; calls++) {
    const from = at;
    const budget = count - examined;
    const { seg, result } = await askSegment(
      c,
      from,
      failed,
      (s) => ({ cursor: from, lastSlot: s.lastSlot, count: budget, pattern: filter.pattern, matchNone: filter.matchNone, countOnly: false }),
      timeoutMs,
    );
    for (const k of result.keys) keys.push(k);
    examined += result.examined;
    if (result.cursor !== 0n) {
      // The replica stopped inside its run; its cursor must move forward within the run.
      const s = cursorSlot(result.cursor);
      if (result.cursor <= from || s > seg.lastSlot) throw new UnavailableError(`replica ${String(seg.node)} answered a scan cursor outside slots ${seg.firstSlot}-${seg.lastSlot}`);
      at = result.cursor;
    } else {
      at = slotStartCursor(seg.lastSlot + 1);
      if (at === 0n) return { cursor: 0n, keys };
    }
  }
  return { cursor: at, keys };
}

/** Every live key matching `pattern` (KEYS): the full scan. */
export async function clusterKeys(c: Cluster, pattern: Buffer | undefined, timeoutMs: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let cursor = 0n;
  do {
    const r = await clusterScan(c, cursor, FULL_SCAN_STEP_COUNT, { pattern, matchNone: false }, timeoutMs);
    for (const k of r.keys) out.push(k);
    cursor = r.cursor;
  } while (cursor !== 0n);
  return out;
}

/** A random live key: the first keys found scanning from a random slot, wrapping once. */
export async function clusterRandomKey(c: Cluster, timeoutMs: number, random: () => number = Math.random): Promise<Buffer | undefined> {
  const startSlot = Math.floor(random() * SLOT_COUNT);
  let cursor = slotStartCursor(startSlot);
  let wrapped = false;
  for (;;) {
    const r = await clusterScan(c, cursor, RANDOMKEY_STEP_COUNT, { pattern: undefined, matchNone: false }, timeoutMs);
    if (r.keys.length > 0) return r.keys[Math.floor(random() * r.keys.length)];
    cursor = r.cursor;
    if (cursor === 0n) {
      if (wrapped || startSlot === 0) return undefined;
      wrapped = true;
      cursor = slotStartCursor(0);
    }
    if (wrapped && cursorSlot(cursor) >= startSlot) return undefined;
  }
}

/** DBSIZE: the sum over slot runs of one replica's live count (approximate, see above). */
export async function clusterDbsize(c: Cluster, timeoutMs: number): Promise<number> {
  let total = 0;
  let at = slotStartCursor(0);
  const failed = new Set<string>();
  while (at !== 0n) {
    const from = at;
    const { seg, result } = await askSegment(
      c,
      from,
      failed,
      (s) => ({ cursor: from, lastSlot: s.lastSlot, count: 1, pattern: undefined, matchNone: false, countOnly: true }),
      timeoutMs,
    );
    total += result.live;
    at = slotStartCursor(seg.lastSlot + 1);
  }
  return total;
}

/** FLUSHALL on every node seen up (this one included); the ids of those that failed. */
export async function clusterFlushAll(c: Cluster, timeoutMs: number): Promise<string[]> {
  const targets = c.members().filter((m) => m.state !== 'left' && c.isUp(m.id)).map((m) => m.id);
  if (!targets.includes(c.selfId)) targets.push(c.selfId);
  const results = await Promise.allSettled(targets.map((id) => c.flushNode(id, timeoutMs)));
  return targets.filter((_, i) => results[i]!.status === 'rejected');
}
