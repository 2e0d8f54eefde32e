// The coordinator's ReplicaTransport over the real cluster bus: wire formats (round trips, every
// length checked), remote typed errors rebuilt with the same class and text, and two in-process
// ClusterServices (real bus sockets, real keyspaces) forwarding writes and reading replicas.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { ClusterBus } from '../../src/cluster/bus.js';
import { ClusterService } from '../../src/cluster/cluster_service.js';
import { ClusterError, RemoteError } from '../../src/cluster/errors.js';
import {
  decodeForwardWrite,
  decodeReplicaGet,
  decodeReplicaPut,
  decodeReplicaPutBatch,
  decodeReplicaPutBatchAnswer,
  encodeForwardWrite,
  encodeReplicaGet,
  encodeReplicaPut,
  encodeReplicaPutBatch,
  encodeReplicaPutBatchAnswer,
  ReplicaMessageType,
} from '../../src/cluster/replica_codec.js';
import { BusReplicaTransport, remoteToTyped } from '../../src/cluster/replica_transport.js';
import { NoQuorumError, UnavailableError } from '../../src/coordinator/fsm_errors.js';
import { decodeContext, encodeContext, encodeObject, liveValues } from '../../src/coordinator/object.js';
import { QuorumError } from '../../src/coordinator/quorum.js';
import { ReplicaUnreachableError } from '../../src/coordinator/replica_transport.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { Keyspace, KeyspaceError } from '../../src/server/keyspace.js';
import { Config } from '../../src/config/config.js';
import { freePorts } from '../helpers/ports.js';

t.test('forward-write, replica put and get payloads round-trip; bad lengths are refused', async (t) => {
  const ctx = decodeContext(encodeContext(new Map([['a'.repeat(40) + '.00000001', 3]])));
  const req = { key: Buffer.from('k\u0000ey'), value: Buffer.from('v'), expiresAtMs: 1234, context: ctx, w: 'quorum' as const, timeoutMs: 500, hops: 1 };
  const back = decodeForwardWrite(encodeForwardWrite(req));
  t.same(back.key, req.key);
  t.same(back.value, req.value);
  t.equal(back.expiresAtMs, 1234);
  t.same([...back.context!], [...ctx]);
  t.equal(back.w, 'quorum');
  t.equal(back.timeoutMs, 500);
  t.equal(back.hops, 1);
  const del = decodeForwardWrite(encodeForwardWrite({ key: Buffer.from('x'), value: null, expiresAtMs: 0, w: 2, timeoutMs: 1, hops: 0 }));
  t.equal(del.value, null);
  t.equal(del.w, 2);
  t.equal(del.context, undefined);

  const put = decodeReplicaPut(encodeReplicaPut(Buffer.from('key'), Buffer.from([1, 2, 3]), 'node-b'));
  t.same([put.key.toString(), [...put.objectBytes], put.hintFor], ['key', [1, 2, 3], 'node-b']);
  t.equal(decodeReplicaPut(encodeReplicaPut(Buffer.from('key'), Buffer.alloc(0), undefined)).hintFor, undefined);
  t.same(decodeReplicaGet(encodeReplicaGet(Buffer.from('abc'))), Buffer.from('abc'));
  const batch = [
    { key: Buffer.from('k1'), objectBytes: Buffer.from([1, 2]), hintFor: undefined },
    { key: Buffer.from('k2'), objectBytes: Buffer.alloc(0), hintFor: 'node-c' },
  ];
  const backBatch = decodeReplicaPutBatch(encodeReplicaPutBatch(batch));
  t.same(backBatch.map((e) => [e.key.toString(), [...e.objectBytes], e.hintFor]), [['k1', [1, 2], undefined], ['k2', [], 'node-c']], 'a put batch round-trips');
  const goodBatch = encodeReplicaPutBatch(batch);
  for (let cut = 0; cut < goodBatch.length; cut++) t.throws(() => decodeReplicaPutBatch(goodBatch.subarray(0, cut)), ClusterError, `batch truncated at ${cut}`);
  t.throws(() => decodeReplicaPutBatch(Buffer.from([0x7f, 0xff, 0xff, 0xff])), ClusterError, 'a batch count past the cap is refused');
  t.throws(() => decodeReplicaPutBatch(Buffer.from([0, 0, 1, 0, 0, 0])), ClusterError, 'a count the payload cannot hold is refused');
  const answer = encodeReplicaPutBatchAnswer([undefined, Buffer.from('err')]);
  t.same(decodeReplicaPutBatchAnswer(answer, 2).map((e) => e?.toString()), [undefined, 'err'], 'a batch answer round-trips');
  t.throws(() => decodeReplicaPutBatchAnswer(answer, 3), ClusterError, 'an answer for another number of entries is refused');

  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 1]);
  t.throws(() => decodeReplicaGet(huge), ClusterError, 'a key length past the cap or the payload is refused');
  t.throws(() => decodeReplicaGet(Buffer.concat([encodeReplicaGet(Buffer.from('a')), Buffer.from([0])])), ClusterError, 'trailing bytes');
  const good = encodeForwardWrite(req);
  for (let cut = 0; cut < good.length; cut++) t.throws(() => decodeForwardWrite(good.subarray(0, cut)), `truncated at ${cut}`);
  const badName = Buffer.from(good);
  const nameAt = good.indexOf(Buffer.from('quorum'));
  badName.write('qworum', nameAt, 'latin1');
  t.throws(() => decodeForwardWrite(badName), ClusterError, 'unknown quorum name');
});

t.test('remote typed errors come back with their class and exact text', async (t) => {
  const nq = remoteToTyped('b', new RemoteError('NOQUORUM', 'NOQUORUM write: 1 of 3 replicas acknowledged (the write may be partially applied)'));
  t.type(nq, NoQuorumError);
  t.equal(nq.message, 'NOQUORUM write: 1 of 3 replicas acknowledged (the write may be partially applied)');
  t.same([(nq as NoQuorumError).got, (nq as NoQuorumError).need, (nq as NoQuorumError).op], [1, 3, 'write']);
  const down = remoteToTyped('b', new RemoteError('CLUSTERDOWN', 'CLUSTERDOWN no primary replica of slot 7 is up'));
  t.type(down, UnavailableError);
  t.equal(down.message, 'CLUSTERDOWN no primary replica of slot 7 is up');
  t.type(remoteToTyped('b', new RemoteError('ERR_BAD_QUORUM', 'quorum 5 exceeds 3 replicas')), QuorumError);
  const big = remoteToTyped('b', new RemoteError('TOOLARGE', 'TOOLARGE value of 9 bytes'));
  t.type(big, KeyspaceError);
  t.equal(big.message, 'TOOLARGE value of 9 bytes');
});

async function openKeyspace(t: Tap, config: Config): Promise<{ ks: Keyspace; dir: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-replica-transport-'));
  const ks = await Keyspace.open({ dir, config, now: Date.now, log: () => undefined });
  t.teardown(async () => {
    await ks.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return { ks, dir };
}

type Tap = { teardown(fn: () => unknown): void };

t.test('two nodes over the real bus: forwarded writes, replica reads, unreachable nodes', async (t) => {
  const [pa, pb, ba, bb] = await freePorts(4);
  const seeds = `127.0.0.1:${pa!}@${ba!},127.0.0.1:${pb!}@${bb!}`;
  // The real config (every schema key at its default), so keys added later need no edit here.
  const cfg = (bus: number): Promise<Config> =>
    Config.load(undefined, Object.entries({
      bind: '127.0.0.1',
      seeds,
      'cluster-port': bus,
      'cluster-secret': 's',
      'replication-factor': 1,
      'read-quorum': '1',
      'write-quorum': '1',
      'sloppy-quorum': 'no',
      'request-timeout-ms': 2000,
      vnodes: 16,
      weight: 1,
      dc: 'dc1',
      rack: '',
      'gossip-interval-ms': 50,
      'node-timeout-ms': 2000,
    }).map(([k, v]): [string, string] => [k, String(v)]));
  const ca = await cfg(ba!);
  const cb = await cfg(bb!);
  const a = await openKeyspace(t, ca);
  const b = await openKeyspace(t, cb);
  const A = await ClusterService.start({ config: ca, keyspace: a.ks, log: () => undefined, dir: a.dir, clientPort: pa! });
  t.teardown(() => A.close());
  const B = await ClusterService.start({ config: cb, keyspace: b.ks, log: () => undefined, dir: b.dir, clientPort: pb! });
  t.teardown(() => B.close());
  const deadline = Date.now() + 10_000;
  while ((A.members().length < 2 || B.members().length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(A.members().length, 2, 'A knows B');
  t.equal(A.ring().fingerprint, B.ring().fingerprint, 'both compute the same ring');

  // N=1: a key whose only replica is B, written through A, is forwarded and stored on B only.
  let key = Buffer.alloc(0);
  for (let i = 0; ; i++) {
    key = Buffer.from(`k${i}`);
    if (A.ring().preflist(keySlot(key))[0] === B.selfId) break;
  }
  await A.coordinator.put(key, { value: Buffer.from('via-a'), expiresAtMs: 0 });
  t.equal(A.coordinator.stats.forwards, 1, 'A forwarded the write');
  t.same(liveValues(await b.ks.readObject(key), Date.now()).map(String), ['via-a'], 'B stored it');
  t.same(liveValues(await a.ks.readObject(key), Date.now()), [], 'A did not');
  t.same(liveValues(await A.coordinator.get(key), Date.now()).map(String), ['via-a'], 'A reads it from B over the bus');
  // B answers a replica get with its stored bytes as they are (no decode and re-encode): the
  // object A decodes is the one B stores, byte for byte; an absent key is the empty object.
  const getBus = new ClusterBus({ nodeId: 'probe-get', host: '127.0.0.1', port: 0, secret: 's' });
  t.teardown(() => getBus.close());
  const asRead = await new BusReplicaTransport(getBus, () => ({ host: '127.0.0.1', busPort: bb! })).replicaGet(B.selfId, key, { timeoutMs: 5000 });
  t.same(encodeObject(asRead), encodeObject(await b.ks.readObject(key)), 'a replica get carries the stored object exactly');
  let absent = Buffer.alloc(0);
  for (let i = 0; ; i++) {
    absent = Buffer.from(`absent${i}`);
    if (A.ring().preflist(keySlot(absent))[0] === B.selfId) break;
  }
  t.equal((await A.coordinator.get(absent)).siblings.length, 0, 'an absent key reads as the empty object over the bus');
  // The bytes form, with a listener (get_fsm) or a function: the stored bytes as they are, the
  // listener told which node answered; failures mapped as for replicaGet.
  const bytesOf = (tr: BusReplicaTransport, node: string, k: Buffer, form: 'listener' | 'function') =>
    new Promise<{ node: string; bytes: Buffer | undefined; err: unknown }>((resolve) => {
      if (form === 'function') tr.replicaGetBytesNotify(node, k, { timeoutMs: 2000 }, (bytes, err) => resolve({ node, bytes, err }));
      else tr.replicaGetBytesNotify(node, k, { timeoutMs: 2000 }, { replicaGetBytesDone: (n, bytes, err) => resolve({ node: n, bytes, err }) });
    });
  const byBytes = new BusReplicaTransport(getBus, () => ({ host: '127.0.0.1', busPort: bb! }));
  const stored = encodeObject(await b.ks.readObject(key));
  for (const form of ['function', 'listener', 'listener'] as const) {
    const r = await bytesOf(byBytes, B.selfId, key, form);
    t.same([r.node, r.bytes, r.err], [B.selfId, stored, undefined], `replicaGetBytesNotify (${form}): the stored bytes`);
  }
  const noNode = await bytesOf(new BusReplicaTransport(getBus, () => undefined), 'nobody', key, 'listener');
  t.ok(noNode.err instanceof ReplicaUnreachableError && noNode.node === 'nobody' && noNode.bytes === undefined, 'listener, unknown node: unreachable');

  // Replica puts made in one turn go to a peer as ONE REPLICA_PUT_BATCH; B merges them with one
  // engine write and answers per entry: a key over max-key-bytes fails alone.
  const batchBus = new ClusterBus({ nodeId: 'probe3', host: '127.0.0.1', port: 0, secret: 's' });
  t.teardown(() => batchBus.close());
  const batching = new BusReplicaTransport(batchBus, () => ({ host: '127.0.0.1', busPort: bb! }));
  const obj = await b.ks.readObject(key);
  const batchKeys = Array.from({ length: 20 }, (_, i) => Buffer.from(`batched:${i}`));
  const tooLong = Buffer.alloc(ca.getNumber('max-key-bytes') + 1, 'x');
  const settled = await Promise.allSettled([
    ...batchKeys.map((k) => batching.replicaPut(B.selfId, k, obj, { timeoutMs: 5000 })),
    batching.replicaPut(B.selfId, tooLong, obj, { timeoutMs: 5000 }),
  ]);
  t.same(settled.slice(0, 20).map((x) => x.status), new Array(20).fill('fulfilled'), 'every put of the batch acknowledged');
  t.equal(settled[20]!.status, 'rejected', 'the over-long key is refused');
  t.equal(((settled[20] as PromiseRejectedResult).reason as { code?: string }).code, 'TOOLARGE', 'with its own typed error (TOOLARGE)');
  t.same(batching.batchStats, { batches: 1, puts: 21 }, 'one batch carried all 21 puts');
  for (const k of batchKeys) t.same(liveValues(await b.ks.readObject(k), Date.now()).map(String), ['via-a'], `B stored ${k.toString()}`);
  // A lone put is a plain REPLICA_PUT (no batch counted).
  await batching.replicaPut(B.selfId, Buffer.from('lone'), obj, { timeoutMs: 5000 });
  t.same(batching.batchStats, { batches: 1, puts: 21 }, 'a put alone in its turn is not batched');
  t.same(liveValues(await b.ks.readObject(Buffer.from('lone')), Date.now()).map(String), ['via-a'], 'B stored the lone put');

  // The transport's own failures.
  const loneBus = new ClusterBus({ nodeId: 'probe', host: '127.0.0.1', port: 0 });
  t.teardown(() => loneBus.close());
  const lone = new BusReplicaTransport(loneBus, () => undefined);
  await t.rejects(lone.replicaGet('nobody', key, { timeoutMs: 100 }), ReplicaUnreachableError, 'unknown node: unreachable');
  const [closedPort] = await freePorts(1);
  const bus = new ClusterBus({ nodeId: 'probe2', host: '127.0.0.1', port: 0 });
  t.teardown(() => bus.close());
  const toClosed = new BusReplicaTransport(bus, () => ({ host: '127.0.0.1', busPort: closedPort! }));
  await t.rejects(toClosed.replicaGet('ghost', key, { timeoutMs: 1000 }), ReplicaUnreachableError, 'refused connection: unreachable (safe to retry)');
  const wrongSecret = new ClusterBus({ nodeId: 'intruder', host: '127.0.0.1', port: 0, secret: 'wrong' });
  t.teardown(() => wrongSecret.close());
  const intruder = new BusReplicaTransport(wrongSecret, () => ({ host: '127.0.0.1', busPort: bb! }));
  await t.rejects(intruder.replicaGet(B.selfId, key, { timeoutMs: 2000 }), ReplicaUnreachableError, 'a wrong secret cannot read a replica');
  const refused = await bytesOf(toClosed, 'ghost', key, 'listener');
  t.ok(refused.err instanceof ReplicaUnreachableError && refused.node === 'ghost', 'listener, refused connection: unreachable');
  // A put alone in its turn (the bus's callback form) fails as a batched one does.
  await t.rejects(lone.replicaPut('nobody', key, obj, { timeoutMs: 100 }), ReplicaUnreachableError, 'lone put, unknown node: unreachable');
  await t.rejects(toClosed.replicaPut('ghost', key, obj, { timeoutMs: 1000 }), ReplicaUnreachableError, 'lone put, refused connection: unreachable');
  await t.rejects(batching.replicaPut(B.selfId, tooLong, obj, { timeoutMs: 5000 }), { code: 'TOOLARGE' }, 'lone put refused by the replica: its typed error');
  t.same(batching.batchStats, { batches: 1, puts: 21 }, 'still no batch counted');
});

t.test('a write fanned out to two peers is encoded once; different entries are not shared', async (t) => {
  const sent: { port: number; type: number; payload: Buffer }[] = [];
  const fakeBus = {
    request(peer: { port: number }, type: number, payload: Buffer): Promise<Buffer> {
      sent.push({ port: peer.port, type, payload });
      return Promise.resolve(type === ReplicaMessageType.REPLICA_PUT ? Buffer.alloc(0) : encodeReplicaPutBatchAnswer(new Array(payload.readUInt32BE(0)).fill(undefined)));
    },
  };
  const ports: Record<string, number> = { n1: 1, n2: 2 };
  const tr = new BusReplicaTransport(fakeBus as unknown as ClusterBus, (id) => (ports[id] === undefined ? undefined : { host: '127.0.0.1', busPort: ports[id]! }));
  const put = (node: string, key: Buffer, bytes: Buffer, hintFor?: string): Promise<unknown> =>
    new Promise((resolve) => tr.replicaPutBytesNotify(node, key, bytes, hintFor === undefined ? { timeoutMs: 1000 } : { timeoutMs: 1000, hintFor }, (err) => resolve(err)));
  const keys = [Buffer.from('k1'), Buffer.from('k2'), Buffer.from('k3')];
  const vals = [Buffer.from([1]), Buffer.from([2, 2]), Buffer.from([3, 3, 3])];
  // Three writes, each to n1 then n2 (put_fsm's fan-out order).
  const acks = keys.flatMap((k, i) => [put('n1', k, vals[i]!), put('n2', k, vals[i]!)]);
  t.same(await Promise.all(acks), new Array(6).fill(undefined), 'every put acknowledged');
  t.equal(sent.length, 2, 'one batch per peer');
  t.equal(sent[0]!.payload, sent[1]!.payload, 'the same bytes for both peers');
  t.same(decodeReplicaPutBatch(sent[1]!.payload).map((e) => [e.key.toString(), [...e.objectBytes], e.hintFor]), [['k1', [1], undefined], ['k2', [2, 2], undefined], ['k3', [3, 3, 3], undefined]]);
  // A fallback's copy carries its hint: its own encoding, not the other peer's.
  sent.length = 0;
  await Promise.all([put('n1', keys[0]!, vals[0]!), put('n2', keys[0]!, vals[0]!, 'n3'), put('n1', keys[1]!, vals[1]!), put('n2', keys[1]!, vals[1]!, 'n3')]);
  t.equal(sent.length, 2);
  t.not(sent[0]!.payload, sent[1]!.payload, 'different entries, different payloads');
  t.same(decodeReplicaPutBatch(sent.find((s) => s.port === 2)!.payload).map((e) => e.hintFor), ['n3', 'n3'], 'the hinted batch names its primary');
  t.same(decodeReplicaPutBatch(sent.find((s) => s.port === 1)!.payload).map((e) => e.hintFor), [undefined, undefined]);
  // A write alone in its turn: one plain REPLICA_PUT per peer, the same bytes.
  sent.length = 0;
  await Promise.all([put('n1', keys[2]!, vals[2]!), put('n2', keys[2]!, vals[2]!)]);
  t.equal(sent.length, 2);
  t.equal(sent[0]!.payload, sent[1]!.payload, 'a lone put is encoded once too');
  t.same(decodeReplicaPut(sent[0]!.payload).key.toString(), 'k3');
  // The next different batch is encoded afresh (the cache is only the last one).
  sent.length = 0;
  await Promise.all([put('n1', keys[0]!, vals[1]!), put('n1', keys[1]!, vals[0]!)]);
  t.same(decodeReplicaPutBatch(sent[0]!.payload).map((e) => [...e.objectBytes]), [[2, 2], [1]]);
});
