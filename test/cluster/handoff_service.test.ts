// The handoff shell (src/cluster/handoff_service.ts) between two real cluster buses on 127.0.0.1,
// each node with a HintStore on a real storage engine in a temp dir; the target merges into an
// in-memory map with the version-vector merge. Proves: nothing is sent while the target is
// down; once up, every hint arrives and is deleted, at no more than the configured rate; a hint
// overwritten by a newer write while its batch is in flight is kept and delivered later (no
// lost write); hints past the window are dropped and counted, never sent; a hint the target
// fails to merge stays pending; HINT_QUERY finds hints held by another node.
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterBus } from '../../src/cluster/bus.js';
import { HandoffService, type HandoffSettings } from '../../src/cluster/handoff_service.js';
import { HintStore } from '../../src/cluster/hint_store.js';
import { applyWrite, contextOf, DEFAULT_WRITE_OPTIONS, EMPTY_OBJECT, liveValues, mergeObjects, type VersionedObject } from '../../src/coordinator/object.js';
import { openEngine } from '../../src/storage/engine.js';
import { waitUntil } from '../helpers/fault_cluster.js';

const HOST = '127.0.0.1';
const OPTS = { ...DEFAULT_WRITE_OPTIONS, localActor: 'x' };

function write(prev: VersionedObject, actor: string, value: string): VersionedObject {
  return applyWrite(prev, contextOf(prev), actor, { value: Buffer.from(value), writtenAtMs: 1, expiresAtMs: 0 }, { ...OPTS, localActor: actor });
}
const valuesOf = (o: VersionedObject | undefined): string[] => (o === undefined ? [] : liveValues(o, 0).map((b) => b.toString()).sort());

interface Node {
  readonly id: string;
  readonly bus: ClusterBus;
  readonly store: HintStore;
  readonly service: HandoffService;
  /** The target side's keyspace stand-in. */
  readonly data: Map<string, VersionedObject>;
}

interface Harness {
  f: Node;
  target: Node;
  up: boolean;
  settings: HandoffSettings;
  nowMs: () => number;
  /** Called by the target's merge before it merges (a test hook). */
  onMerge: (key: string) => Promise<void>;
}

async function harness(t: { teardown(fn: () => unknown): void }, settings: Partial<HandoffSettings> = {}): Promise<Harness> {
  const h: Harness = {
    up: false,
    settings: { enabled: true, windowMs: 0, batchKeys: 50, keysPerSecond: 0, ...settings },
    nowMs: Date.now,
    onMerge: async () => undefined,
    f: undefined as unknown as Node,
    target: undefined as unknown as Node,
  };
  const nodes: Node[] = [];
  const addresses = new Map<string, number>();
  for (const id of ['fallback', 'target']) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-handoff-'));
    const engine = await openEngine({ dir });
    const store = await HintStore.open(engine, { now: () => h.nowMs(), log: () => undefined, writeOptions: () => OPTS });
    const bus = new ClusterBus({ nodeId: id, host: HOST, port: 0 });
    const data = new Map<string, VersionedObject>();
    const other = id === 'fallback' ? 'target' : 'fallback';
    const service = new HandoffService({
      selfId: id,
      store,
      bus,
      addressOf: (x) => (addresses.has(x) ? { host: HOST, busPort: addresses.get(x)! } : undefined),
      isUp: (x) => x !== 'target' || h.up,
      peers: () => [other],
      merge: async (key, object) => {
        await h.onMerge(key.toString());
        const k = key.toString();
        if (k.startsWith('bad')) throw new Error('refused');
        data.set(k, mergeObjects(data.get(k) ?? EMPTY_OBJECT, object, OPTS));
      },
      settings: () => h.settings,
      now: () => h.nowMs(),
      log: () => undefined,
    });
    service.attach();
    await bus.listen();
    addresses.set(id, bus.port);
    t.teardown(async () => {
      await service.close();
      await bus.close();
      await engine.close();
      await fsp.rm(dir, { recursive: true, force: true });
    });
    nodes.push({ id, bus, store, service, data });
  }
  h.f = nodes[0]!;
  h.target = nodes[1]!;
  h.f.service.start();
  return h;
}

t.test('nothing goes while the target is down; once up, every hint arrives, rate-limited, and is deleted', async (t) => {
  const h = await harness(t, { batchKeys: 50, keysPerSecond: 200 });
  for (let i = 0; i < 300; i++) await h.f.service.onHint('target', Buffer.from(`k${i}`), write(EMPTY_OBJECT, 'a.1', `v${i}`));
  t.equal(h.f.store.pending('target').count, 300);
  await new Promise((r) => setTimeout(r, 600));
  t.equal(h.f.service.stats.batchesSent, 0, 'target down: no batch sent');
  t.equal(h.target.data.size, 0);
  h.up = true;
  const ms = await waitUntil('all delivered', () => h.f.store.pending('target').count === 0);
  t.equal(h.target.data.size, 300);
  t.ok([...h.target.data].every(([k, o]) => valuesOf(o)[0] === `v${k.slice(1)}`), 'each key got its own value');
  t.equal(h.f.service.stats.delivered, 300);
  t.equal(h.target.service.stats.received, 300);
  t.same(h.f.store.totals(), { count: 0, bytes: 0 });
  // 300 keys at 200/s with a burst of 200: at least 0.5 s.
  t.ok(ms >= 450, `300 hints at 200 keys/s took ${ms} ms (>= 500 ms expected)`);
  t.ok(h.f.service.stats.batchesSent >= 6, `batches of at most 50 (${h.f.service.stats.batchesSent})`);
});

t.test('a hint overwritten while its batch is in flight is kept, then delivered: no lost write', async (t) => {
  const h = await harness(t, { batchKeys: 10 });
  for (let i = 0; i < 5; i++) await h.f.service.onHint('target', Buffer.from(`k${i}`), write(EMPTY_OBJECT, 'a.1', `old${i}`));
  let raced = false;
  h.onMerge = async (key) => {
    if (key === 'k2' && !raced) {
      raced = true;
      // A newer write for k2 reaches the fallback as a hint while the target merges the old one.
      await h.f.service.onHint('target', Buffer.from('k2'), write(write(EMPTY_OBJECT, 'a.1', 'old2'), 'a.1', 'new2'));
    }
  };
  h.up = true;
  await waitUntil('first batch acknowledged', () => h.f.service.stats.delivered >= 5);
  await waitUntil('all delivered', () => h.f.store.pending('target').count === 0);
  t.ok(raced);
  t.same(valuesOf(h.target.data.get('k2')), ['new2'], 'the newer write reached the target');
  t.equal(h.f.service.stats.delivered, 6, 'k2 was delivered twice: the old version, then the newer one');
});

t.test('hints past max-hint-window-ms are dropped and counted, never sent', async (t) => {
  let clock = 1_000_000;
  const h = await harness(t, { windowMs: 60_000 });
  h.nowMs = () => clock;
  for (let i = 0; i < 20; i++) await h.f.service.onHint('target', Buffer.from(`old${i}`), write(EMPTY_OBJECT, 'a.1', 'x'));
  clock += 30_000;
  for (let i = 0; i < 7; i++) await h.f.service.onHint('target', Buffer.from(`fresh${i}`), write(EMPTY_OBJECT, 'a.1', 'y'));
  clock += 40_000; // the first 20 are now 70 s old, the 7 are 40 s old
  h.up = true;
  await waitUntil('drained', () => h.f.store.pending('target').count === 0);
  t.equal(h.f.service.stats.dropped, 20);
  t.equal(h.f.service.stats.delivered, 7);
  t.same([...h.target.data.keys()].sort(), Array.from({ length: 7 }, (_, i) => `fresh${i}`).sort(), 'only the fresh hints were sent');
});

t.test('a hint the target fails to merge stays pending; hinted-handoff off stores nothing; HINT_QUERY', async (t) => {
  const h = await harness(t);
  await h.f.service.onHint('target', Buffer.from('good'), write(EMPTY_OBJECT, 'a.1', 'g'));
  await h.f.service.onHint('target', Buffer.from('bad1'), write(EMPTY_OBJECT, 'a.1', 'b'));
  t.same(await h.target.service.pendingHintsFor(Buffer.from('bad1'), 2000), [['fallback', 'target']], 'the target finds the hint on the fallback by HINT_QUERY');
  t.same(await h.f.service.pendingHintsFor(Buffer.from('nope'), 2000), []);
  h.up = true;
  await waitUntil('good delivered', () => h.f.service.stats.delivered === 1);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(h.f.store.pending('target').count, 1, 'the refused hint is still pending');
  t.ok(h.f.service.stats.itemsFailed >= 1);
  t.notOk(h.target.data.has('bad1'));
  h.settings = { ...h.settings, enabled: false };
  await h.f.service.onHint('target', Buffer.from('off'), write(EMPTY_OBJECT, 'a.1', 'o'));
  t.equal(h.f.service.stats.skipped, 1);
  t.equal(h.f.store.pending('target').count, 1, 'hinted-handoff off: no new hint');
});
