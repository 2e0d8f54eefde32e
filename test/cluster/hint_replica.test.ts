// A fallback's replica side with hinted handoff wired as the cluster service wires it
// (Coordinator.onHint -> HandoffService.onHint, Coordinator.hintedCopy -> HintStore.hintedCopy):
// a hinted copy is kept only as a durable hint, never in the fallback's own keyspace; the
// fallback's replica reads include it until it is handed off, then nothing stays behind;
// with hinted-handoff off the copy goes to the keyspace as a plain replica copy.
import t from 'tap';
import { ClusterBus } from '../../src/cluster/bus.js';
import { HandoffService, type HandoffSettings } from '../../src/cluster/handoff_service.js';
import { HintStore } from '../../src/cluster/hint_store.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { applyWrite, contextOf, EMPTY_OBJECT, liveValues, type VersionedObject } from '../../src/coordinator/object.js';
import type { ReplicaTransport } from '../../src/coordinator/replica_transport.js';
import { openFixture } from '../server/keyspace_fixture.js';

const values = (o: VersionedObject): string[] => liveValues(o, Date.now()).map((b) => b.toString()).sort();

t.test('a hinted copy lives only in the hint store, and reads of the fallback include it', async (t) => {
  const fx = await openFixture(t);
  const opts = () => fx.ks.writeOptions();
  const store = await HintStore.open(fx.ks.engine, { now: Date.now, log: () => undefined, writeOptions: opts });
  let settings: HandoffSettings = { enabled: true, windowMs: 0, batchKeys: 10, keysPerSecond: 0 };
  const bus = new ClusterBus({ nodeId: 'f', host: '127.0.0.1', port: 0 });
  t.teardown(() => bus.close());
  const handoff = new HandoffService({
    selfId: 'f',
    store,
    bus,
    addressOf: () => undefined,
    isUp: () => false,
    peers: () => [],
    merge: (key, object) => fx.ks.mergeObject(key, object),
    settings: () => settings,
    now: Date.now,
    log: () => undefined,
  });
  const unused = (): never => {
    throw new Error('not used by the replica side');
  };
  const coordinator = new Coordinator({
    self: 'f',
    ring: unused,
    isUp: () => true,
    keyspace: fx.ks,
    transport: { replicaPut: unused, replicaGet: unused, forwardWrite: unused } as ReplicaTransport,
    settings: unused,
    onHint: (forNode, key, object) => handoff.onHint(forNode, key, object),
    hintedCopy: (key) => store.hintedCopy(key),
  });
  const key = Buffer.from('user:1');
  t.equal(store.hintedCopy(key), undefined, 'an empty store answers synchronously: no extra read');
  const v1 = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'p.1', { value: Buffer.from('v1'), writtenAtMs: 1, expiresAtMs: 0 }, opts());
  await coordinator.onReplicaPut(key, v1, { hintFor: 'primary-c' });
  t.same(values(await fx.ks.readObject(key)), [], 'not in the fallback keyspace');
  t.equal(store.pending('primary-c').count, 1, 'kept as a hint for its primary');
  t.same(values(await coordinator.onReplicaGet(key)), ['v1'], "the fallback's replica read answers with the hinted copy");
  // A plain (non-hinted) copy of another version of the same key merges with the hinted one on read.
  const other = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'q.1', { value: Buffer.from('other'), writtenAtMs: 2, expiresAtMs: 0 }, opts());
  await coordinator.onReplicaPut(key, other);
  t.same(values(await coordinator.onReplicaGet(key)), ['other', 'v1'], 'own copy and hinted copy merged (version vectors)');
  t.equal(await store.hintedCopy(Buffer.from('no-such-key')), undefined);
  // Handoff done: the hint is deleted and the fallback keeps nothing of it.
  await store.removeIfUnchanged(await store.read('primary-c', 10));
  t.same(values(await coordinator.onReplicaGet(key)), ['other'], 'after handoff only the plain copy is left');
  // hinted-handoff no: the copy is merged as a plain replica copy.
  settings = { ...settings, enabled: false };
  const k2 = Buffer.from('user:2');
  await coordinator.onReplicaPut(k2, v1, { hintFor: 'primary-c' });
  t.same(values(await fx.ks.readObject(k2)), ['v1'], 'hinted-handoff no: merged into the keyspace');
  t.equal(store.totals().count, 0, 'and no hint');
  t.equal(coordinator.stats.hintedPutsReceived, 2);
});
