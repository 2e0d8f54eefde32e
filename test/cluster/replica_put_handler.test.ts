// The replica side of REPLICA_PUT (a lone put: the batcher sends a batch of one this way): a
// plain object (one actor, one sibling) is merged on its bytes as a REPLICA_PUT_BATCH entry is
// (Coordinator.onReplicaPutBatch -> Keyspace.mergeObjectsBatch), hinted copies and other shapes
// are decoded and go through Coordinator.onReplicaPut; either way the stored result is the merge.
import t from 'tap';
import type { ClusterBus } from '../../src/cluster/bus.js';
import type { BusHandler, PeerIdentity } from '../../src/cluster/connection.js';
import { encodeReplicaPut, encodeReplicaPutBatch, encodeReplicaPutBatchAnswer, ReplicaMessageType } from '../../src/cluster/replica_codec.js';
import { attachReplicaHandlers } from '../../src/cluster/replica_transport.js';
import { Coordinator, type ReplicaPutItem } from '../../src/coordinator/coordinator.js';
import { applyWrite, contextOf, EMPTY_OBJECT, encodeObject, liveValues, mergeObjects, type VersionedObject } from '../../src/coordinator/object.js';
import type { ReplicaTransport } from '../../src/coordinator/replica_transport.js';
import { dataKey } from '../../src/server/key_layout.js';
import { openFixture } from '../server/keyspace_fixture.js';

const FROM: PeerIdentity = { id: 'node-a', remoteAddress: '127.0.0.1', remotePort: 1 };

t.test('a lone plain replica put is merged on its bytes; hinted and other shapes are decoded', async (t) => {
  const fx = await openFixture(t);
  const opts = () => fx.ks.writeOptions();
  const unused = (): never => {
    throw new Error('not used by the replica side');
  };
  const coordinator = new Coordinator({
    self: 'r',
    ring: unused,
    isUp: () => true,
    keyspace: fx.ks,
    transport: { replicaPut: unused, replicaGet: unused, forwardWrite: unused } as ReplicaTransport,
    settings: unused,
  });
  // Which of the coordinator's two entry points each put took.
  const calls: string[] = [];
  const batch = coordinator.onReplicaPutBatch.bind(coordinator);
  const single = coordinator.onReplicaPut.bind(coordinator);
  coordinator.onReplicaPutBatch = (items: readonly ReplicaPutItem[]) => {
    calls.push(items.map((i) => (i.object === undefined ? 'bytes' : 'object')).join(','));
    return batch(items);
  };
  coordinator.onReplicaPut = (key: Buffer, object: VersionedObject, o?: { readonly hintFor?: string }) => {
    calls.push(o?.hintFor === undefined ? 'put' : `put hint ${o.hintFor}`);
    return single(key, object, o);
  };
  const handlers = new Map<number, BusHandler>();
  const bus: Pick<ClusterBus, 'handle'> = { handle: (type, fn) => void handlers.set(type, fn) };
  attachReplicaHandlers(bus, () => coordinator);
  const handler = handlers.get(ReplicaMessageType.REPLICA_PUT);
  t.ok(handler, 'REPLICA_PUT has a handler');
  const put = async (key: Buffer, object: VersionedObject, hintFor?: string): Promise<Buffer> => handler!(encodeReplicaPut(key, encodeObject(object), hintFor), FROM);
  const stored = async (key: Buffer): Promise<Buffer | undefined> => fx.ks.engine.get(dataKey(key));
  const values = async (key: Buffer): Promise<string[]> => liveValues(await fx.ks.readObject(key), fx.clock.now()).map((b) => b.toString()).sort();

  const key = Buffer.from('user:1');
  const v1 = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'p.1', { value: Buffer.from('v1'), writtenAtMs: 1, expiresAtMs: 0 }, opts());
  const v2 = applyWrite(v1, contextOf(v1), 'p.1', { value: Buffer.from('v2'), writtenAtMs: 2, expiresAtMs: 0 }, opts());
  t.same(await put(key, v1), Buffer.alloc(0), 'answered with an empty payload');
  t.same(calls, ['bytes'], 'a plain object: merged as a batch entry of its bytes only');
  t.same(await stored(key), encodeObject(v1), 'the bytes sent are what is stored');
  await put(key, v2);
  t.same(await stored(key), encodeObject(v2), 'a newer plain object supersedes');
  await put(key, v1);
  t.same(await stored(key), encodeObject(v2), 'an older one again changes nothing (the merge)');
  t.same(calls, ['bytes', 'bytes', 'bytes']);

  // Two actors' concurrent writes: not the plain shape, decoded and merged the general way.
  const other = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'q.1', { value: Buffer.from('q'), writtenAtMs: 3, expiresAtMs: 0 }, opts());
  const both = mergeObjects(v1, other, opts());
  calls.length = 0;
  await put(key, both);
  t.same(calls, ['put'], 'two siblings: decoded, onReplicaPut');
  t.same(await values(key), ['q', 'v2'], 'merged with what was stored');
  t.same(await stored(key), encodeObject(mergeObjects(v2, both, opts())));

  // A hinted copy keeps its hint (onReplicaPut; without a hint store it is merged as a replica copy).
  const k2 = Buffer.from('user:2');
  calls.length = 0;
  await put(k2, v1, 'primary-c');
  t.same(calls, ['put hint primary-c'], 'a hinted copy: onReplicaPut with its hint');
  t.same(await values(k2), ['v1']);

  // A key over max-key-bytes: the keyspace's typed error is the handler's, on either path.
  const long = Buffer.alloc(2000, 0x6b);
  await t.rejects(put(long, v1), { code: 'TOOLARGE' }, 'plain: TOOLARGE');
  await t.rejects(put(long, both), { code: 'TOOLARGE' }, 'two siblings: TOOLARGE');
  t.equal(await stored(long), undefined);
});

// Keys reach the coordinator as views into the request's frame on the usual path (one buffer less
// per replica put); every key that may be kept past the request (a hint's, the general path's) is
// a copy, and what the keyspace stores is its own: the frame may be reused once the put settled.
t.test('keys: views of the frame only while the merge runs; hints get copies; stored data survives the frame', async (t) => {
  const fx = await openFixture(t);
  const opts = () => fx.ks.writeOptions();
  const unused = (): never => {
    throw new Error('not used by the replica side');
  };
  const coordinator = new Coordinator({
    self: 'r',
    ring: unused,
    isUp: () => true,
    keyspace: fx.ks,
    transport: { replicaPut: unused, replicaGet: unused, forwardWrite: unused } as ReplicaTransport,
    settings: unused,
  });
  // The keys the general path (onReplicaPut: hints and other shapes) was given, as a hint store would keep them.
  const kept: Buffer[] = [];
  const single = coordinator.onReplicaPut.bind(coordinator);
  coordinator.onReplicaPut = (key: Buffer, object: VersionedObject, o?: { readonly hintFor?: string }) => {
    kept.push(key);
    return single(key, object, o);
  };
  const batched = coordinator.onReplicaPutBatch.bind(coordinator);
  coordinator.onReplicaPutBatch = (items: readonly ReplicaPutItem[]) => {
    for (const it of items) if (it.object !== undefined && it.hintFor === undefined) kept.push(it.key);
    return batched(items);
  };
  const handlers = new Map<number, BusHandler>();
  attachReplicaHandlers({ handle: (type, fn) => void handlers.set(type, fn) }, () => coordinator);
  const v1 = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'p.1', { value: Buffer.from('v1'), writtenAtMs: 1, expiresAtMs: 0 }, opts());
  const other = applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'q.1', { value: Buffer.from('q'), writtenAtMs: 3, expiresAtMs: 0 }, opts());
  const both = mergeObjects(v1, other, opts());
  const keys = ['plain:1', 'hinted:1', 'both:1', 'plain:2'].map((s) => Buffer.from(s));
  const batch = encodeReplicaPutBatch([
    { key: keys[0]!, objectBytes: encodeObject(v1), hintFor: undefined },
    { key: keys[1]!, objectBytes: encodeObject(v1), hintFor: 'primary-c' },
    { key: keys[2]!, objectBytes: encodeObject(both), hintFor: undefined },
  ]);
  const lone = [encodeReplicaPut(keys[3]!, encodeObject(v1), undefined), encodeReplicaPut(Buffer.from('hinted:2'), encodeObject(v1), 'primary-c')];
  t.same(await handlers.get(ReplicaMessageType.REPLICA_PUT_BATCH)!(batch, FROM), encodeReplicaPutBatchAnswer([undefined, undefined, undefined]));
  for (const p of lone) t.same(await handlers.get(ReplicaMessageType.REPLICA_PUT)!(p, FROM), Buffer.alloc(0));
  // The frames are reused: nothing kept or stored may change with them.
  for (const p of [batch, ...lone]) p.fill(0x5a);
  t.same(kept.map((k) => k.toString()).sort(), ['both:1', 'hinted:1', 'hinted:2'], 'the hinted and the two-sibling keys went the general way, intact');
  const values = async (key: string): Promise<string[]> => liveValues(await fx.ks.readObject(Buffer.from(key)), fx.clock.now()).map((b) => b.toString()).sort();
  for (const key of ['plain:1', 'plain:2', 'hinted:1', 'hinted:2']) t.same(await values(key), ['v1'], `${key} stored whole`);
  t.same(await values('both:1'), ['q', 'v1']);
});
