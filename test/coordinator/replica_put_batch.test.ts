// Coordinator.onReplicaPutBatch (a replica put round): the usual round (no hint, every key within
// the limits) is merged as given with one keyspace call; a failed merge fails every item; a key
// over the limits fails only itself and a hinted copy goes through onReplicaPut, the others still
// merged with one call.
import t from 'tap';
import { Coordinator, type ReplicaPutItem } from '../../src/coordinator/coordinator.js';
import type { VersionedObject } from '../../src/coordinator/object.js';
import type { ReplicaTransport } from '../../src/coordinator/replica_transport.js';
import { KeyspaceError, type Keyspace, type MergeEntry } from '../../src/server/keyspace.js';

const MAX_KEY_BYTES = 8;

function setup(merge: (entries: readonly MergeEntry[]) => Promise<number>) {
  const calls: (readonly MergeEntry[])[] = [];
  const keyspace = {
    checkKey(key: Buffer | number): void {
      const n = typeof key === 'number' ? key : key.length;
      if (n > MAX_KEY_BYTES) throw new KeyspaceError('TOOLARGE', `TOOLARGE key is ${n} bytes`);
    },
    mergeObjectsBatch(entries: readonly MergeEntry[]): Promise<number> {
      calls.push(entries);
      return merge(entries);
    },
  } as unknown as Keyspace;
  const unused = (): never => {
    throw new Error('not used by the replica side');
  };
  const coordinator = new Coordinator({
    self: 'r',
    ring: unused,
    isUp: () => true,
    keyspace,
    transport: { replicaPut: unused, replicaGet: unused, forwardWrite: unused } as ReplicaTransport,
    settings: unused,
  });
  const singles: string[] = [];
  coordinator.onReplicaPut = async (key: Buffer, _object: VersionedObject, o?: { readonly hintFor?: string }) => {
    singles.push(`${key.toString()} for ${o?.hintFor ?? '-'}`);
  };
  return { coordinator, calls, singles };
}

const item = (key: string): ReplicaPutItem => ({ key: Buffer.from(key), encoded: Buffer.from([1]) });

t.test('the usual round: merged as given, one call, every item undefined', async (t) => {
  const { coordinator, calls, singles } = setup(async (e) => e.length);
  const items = [item('a'), item('b'), item('c')];
  const results = await coordinator.onReplicaPutBatch(items);
  t.same(results, [undefined, undefined, undefined]);
  t.equal(results.length, 3);
  t.equal(calls.length, 1);
  t.equal(calls[0], items, 'the items themselves, not a copy');
  t.same(singles, []);
  t.same(await coordinator.onReplicaPutBatch([]), [], 'an empty round');
});

t.test('a merge that fails fails every item of the round with its error', async (t) => {
  const boom = new KeyspaceError('CLOSED', 'CLOSED keyspace is closed');
  const { coordinator } = setup(async () => {
    throw boom;
  });
  t.same(await coordinator.onReplicaPutBatch([item('a'), item('b')]), [boom, boom]);
});

t.test('a key over the limits fails alone; a hinted copy goes through onReplicaPut', async (t) => {
  const { coordinator, calls, singles } = setup(async (e) => e.length);
  const hinted: ReplicaPutItem = { key: Buffer.from('h'), object: { clock: new Map(), siblings: [] } as unknown as VersionedObject, hintFor: 'p' };
  const results = await coordinator.onReplicaPutBatch([item('a'), item('x'.repeat(MAX_KEY_BYTES + 1)), hinted, item('b')]);
  t.equal(results[0], undefined);
  t.match(results[1], { code: 'TOOLARGE' });
  t.equal(results[2], undefined);
  t.equal(results[3], undefined);
  t.same(
    calls.map((c) => c.map((e) => e.key.toString())),
    [['a', 'b']],
    'the other plain items merged with one call',
  );
  t.same(singles, ['h for p']);
});
