/**
 * Serves a range scan (cluster_keyspace.ts RangeScanRequest) from this node's own keyspace: the
 * SCAN_RANGE bus handler and this node's share of a cluster SCAN / KEYS / DBSIZE.
 *
 * Walks the stored objects of slots [slot of cursor, lastSlot] from the cursor's lower bound and,
 * like Keyspace.scan, cuts only between cursor groups (same slot, same 6-byte key prefix), after
 * `count` keys examined or MAX_SCAN_REPLY_KEY_BYTES of keys, so the cursor it returns is valid on
 * every replica. A countOnly request walks the whole range.
 */
import { liveSiblings } from '../coordinator/object.js';
import type { RangeScanRequest, RangeScanResult } from '../server/commands/cluster_keyspace.js';
import { globMatch } from '../server/glob.js';
import { dataKey } from '../server/key_layout.js';
import type { Keyspace } from '../server/keyspace.js';
import { cursorAt, cursorLowerBound } from '../server/scan_cursor.js';
import { cursorSlot } from '../server/commands/cluster_scan_plan.js';
import { MAX_SCAN_REPLY_KEY_BYTES, MAX_WIRE_SCAN_KEYS } from './scan_range_codec.js';

export async function scanLocalRange(ks: Keyspace, req: RangeScanRequest, nowMs: number): Promise<RangeScanResult> {
  const gte = cursorLowerBound(req.cursor);
  const firstSlot = cursorSlot(req.cursor);
  if (gte === undefined || req.cursor === 0n || firstSlot > req.lastSlot) return { cursor: 0n, examined: 0, live: 0, keys: [] };
  const keys: Buffer[] = [];
  let examined = 0;
  let live = 0;
  let keyBytes = 0;
  let lastGroup: bigint | undefined;
  for await (const e of ks.storedObjects(firstSlot, req.lastSlot)) {
    const engineKey = dataKey(e.key, e.slot);
    if (Buffer.compare(engineKey, gte) < 0) continue;
    const group = cursorAt(engineKey);
    const full = examined >= req.count || keyBytes >= MAX_SCAN_REPLY_KEY_BYTES || keys.length >= MAX_WIRE_SCAN_KEYS;
    if (!req.countOnly && full && group !== lastGroup) return { cursor: group, examined, live, keys };
    examined++;
    lastGroup = group;
    if (req.matchNone) continue;
    if (req.pattern !== undefined && !globMatch(req.pattern, e.key)) continue;
    if (liveSiblings(e.object, nowMs).length === 0) continue;
    live++;
    if (!req.countOnly) {
      keys.push(e.key);
      keyBytes += e.key.length;
    }
  }
  return { cursor: 0n, examined, live, keys };
}
