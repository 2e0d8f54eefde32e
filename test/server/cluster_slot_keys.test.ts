// CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT in a cluster (cluster_slot_keys.ts): the slot's keys
// from its up replicas, merged by a k-way merge of sorted pages, against an in-memory cluster
// whose replicas hold different key sets, page in small steps, and fail.
import t from 'tap';
import { buildRing, type Ring } from '../../src/coordinator/ring.js';
import { UnavailableError } from '../../src/coordinator/fsm_errors.js';
import type { ClusterView } from '../../src/server/cluster_view.js';
import type { ClusterKeyspaceAccess, RangeScanRequest, RangeScanResult } from '../../src/server/commands/cluster_keyspace.js';
import { clusterSlotKeys, SLOT_KEYS_PAGE_COUNT } from '../../src/server/commands/cluster_slot_keys.js';
import { slotStartCursor } from '../../src/server/commands/cluster_scan_plan.js';

const SLOT = 42;
const ring: Ring = buildRing(
  ['a', 'b', 'c'].map((id) => ({ id, weight: 1, dc: '', rack: '', state: 'up' as const })),
  { vnodes: 16, n: 3 },
);

/** Replicas holding sorted key lists of SLOT; pages of `page` keys with a cursor per position. */
function fakeCluster(held: Record<string, string[]>, opts: { down?: string[]; failing?: string[]; failAfterPages?: number; page?: number } = {}) {
  const calls: Array<{ node: string; cursor: bigint; lastSlot: number }> = [];
  const page = opts.page ?? SLOT_KEYS_PAGE_COUNT;
  const c: ClusterView & ClusterKeyspaceAccess = {
    selfId: 'a',
    coordinator: undefined as never,
    ring: () => ring,
    members: () => [],
    isUp: (id) => !(opts.down ?? []).includes(id),
    meet: async () => '',
    readReplica: async () => {
      throw new Error('not used');
    },
    flushNode: async () => undefined,
    async scanRange(node: string, req: RangeScanRequest): Promise<RangeScanResult> {
      calls.push({ node, cursor: req.cursor, lastSlot: req.lastSlot });
      if ((opts.failing ?? []).includes(node) && calls.filter((x) => x.node === node).length > (opts.failAfterPages ?? 0)) throw new Error(`${node} failed`);
      const keys = [...(held[node] ?? [])].sort();
      // The cursor encodes the index of the next key (a stand-in for scan_cursor positions).
      const from = Number(req.cursor - slotStartCursor(SLOT));
      const part = keys.slice(from, from + page);
      const next = from + page < keys.length ? slotStartCursor(SLOT) + BigInt(from + page) : 0n;
      return { cursor: next, examined: part.length, live: part.length, keys: part.map((k) => Buffer.from(k)) };
    },
  };
  return { c, calls };
}

const strs = (bs: Buffer[]): string[] => bs.map((b) => b.toString());

t.test('each key once, in order, whichever replicas hold it', async (t) => {
  const { c, calls } = fakeCluster({ a: ['k1', 'k3', 'k5'], b: ['k1', 'k2', 'k3'], c: ['k4', 'k5', 'k6'] }, { page: 2 });
  const all = await clusterSlotKeys(c, SLOT, { keep: Infinity, limit: Infinity, timeoutMs: 100 });
  t.ok(calls.length >= 6 && calls.every((x) => x.lastSlot === SLOT), 'pages of the one slot from every replica');
  t.equal(all.count, 6);
  t.same(strs(all.keys), ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
  const first = await clusterSlotKeys(c, SLOT, { keep: 3, limit: 3, timeoutMs: 100 });
  t.same(strs(first.keys), ['k1', 'k2', 'k3'], 'GETKEYSINSLOT n: the first n of the merged order');
  const counted = await clusterSlotKeys(c, SLOT, { keep: 0, limit: Infinity, timeoutMs: 100 });
  t.same({ count: counted.count, keys: counted.keys.length }, { count: 6, keys: 0 }, 'COUNTKEYSINSLOT keeps no keys');
});

t.test('binary keys compare bytewise; an empty slot is 0', async (t) => {
  const { c } = fakeCluster({ a: [], b: [], c: [] });
  t.same(await clusterSlotKeys(c, SLOT, { keep: 10, limit: 10, timeoutMs: 100 }), { count: 0, keys: [] });
  const { c: c2 } = fakeCluster({ a: ['b', 'a\u00ff'], b: ['a', 'a\u00ff'], c: [] });
  t.same(strs((await clusterSlotKeys(c2, SLOT, { keep: 10, limit: 10, timeoutMs: 100 })).keys), ['a', 'a\u00ff', 'b']);
});

t.test('a down replica is not asked; a failing one is dropped and the others answer', async (t) => {
  const { c, calls } = fakeCluster({ a: ['k1'], b: ['k2'], c: ['k3'] }, { down: ['c'] });
  t.same(strs((await clusterSlotKeys(c, SLOT, { keep: 10, limit: 10, timeoutMs: 100 })).keys), ['k1', 'k2']);
  t.notOk(calls.some((x) => x.node === 'c'), 'the down replica was not asked');

  const mid = fakeCluster({ a: ['k1', 'k4'], b: ['k1', 'k2', 'k3', 'k5'], c: ['k6'] }, { failing: ['b'], failAfterPages: 1, page: 2 });
  const r = await clusterSlotKeys(mid.c, SLOT, { keep: 10, limit: Infinity, timeoutMs: 100 });
  t.same(strs(r.keys), ['k1', 'k2', 'k4', 'k6'], 'keys of the failed replica\'s first page stay, the rest come from the others');
});

t.test('no replica answers: CLUSTERDOWN', async (t) => {
  const { c } = fakeCluster({ a: ['k'], b: ['k'], c: ['k'] }, { failing: ['a', 'b', 'c'] });
  await t.rejects(clusterSlotKeys(c, SLOT, { keep: 1, limit: 1, timeoutMs: 100 }), UnavailableError);
  const { c: none } = fakeCluster({}, { down: ['a', 'b', 'c'] });
  await t.rejects(clusterSlotKeys(none, SLOT, { keep: 1, limit: 1, timeoutMs: 100 }), /no replica of slot 42 is up/);
});

t.test('memory: pages are asked lazily, at most one page ahead per replica', async (t) => {
  const many = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(3, '0')}`);
  const { c, calls } = fakeCluster({ a: many, b: many, c: many }, { page: 5 });
  const r = await clusterSlotKeys(c, SLOT, { keep: 3, limit: 3, timeoutMs: 100 });
  t.same(strs(r.keys), many.slice(0, 3));
  t.equal(calls.length, 3, 'one page from each replica for the first 3 keys');
});
