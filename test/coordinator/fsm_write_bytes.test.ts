// Writes over a transport that takes replica puts as bytes (ReplicaTransport.replicaPutBytesNotify,
// what the cluster bus offers): the coordinator fans out the bytes its own replica stored
// (Keyspace.writeStored), and a replica merges them with those bytes as `encoded`
// (Keyspace.mergeObjectsBatch), storing them as they are when the merge leaves the object as it
// came. The outcome must be what the object path gives: the same bytes on every replica in
// sync, siblings kept, TTLs and tombstones carried, hinted copies handled.
import t from 'tap';
import { encodeObject } from '../../src/coordinator/object.js';
import { keySlot } from '../../src/coordinator/slot.js';
import type { Keyspace } from '../../src/server/keyspace.js';
import { startCluster, values } from './fsm_cluster.js';

const set = (v: string, expiresAtMs = 0) => ({ value: Buffer.from(v), expiresAtMs });

t.test('a write reaches every replica as the same bytes: values, TTLs, tombstones', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { writeQuorum: 3 }, getsAsBytes: true });
  const [a, b] = c.ids as [string, string];
  const ttl = Date.now() + 60_000;
  const cases: [string, { value: Buffer | null; expiresAtMs: number }][] = [
    ['plain', set('v1')],
    ['again', set('v2')],
    ['ttl', set('v3', ttl)],
    ['delete', { value: null, expiresAtMs: 0 }],
    ['after-delete', set('v4')],
  ];
  const key = Buffer.from('bytes-fanout');
  for (const [name, w] of cases) {
    const stored = await c.node(a).put(key, w);
    await c.idle();
    const bytes = await Promise.all(c.ids.map(async (id) => encodeObject(await c.keyspace(id).readObject(key)).toString('hex')));
    t.equal(new Set(bytes).size, 1, `${name}: every replica holds the same bytes`);
    t.equal(bytes[0], encodeObject(stored).toString('hex'), `${name}: the bytes put() answered with`);
  }
  t.same(values(await c.keyspace(b).readObject(key)), ['v4'], 'the last write is the one value on a replica');
  // The TTL write's expiry travelled: write it again and look at a replica's sibling.
  await c.node(a).put(key, set('v5', ttl));
  await c.idle();
  t.equal((await c.keyspace(b).readObject(key)).siblings[0]!.expiresAtMs, ttl, 'the expiry reached the replica');
  t.same(await c.keyspace(b).keyspaceInfo(), { keys: 1, expires: 1 }, 'the replica counts the key and its TTL');
  await c.node(a).put(key, { value: null, expiresAtMs: 0 });
  await c.idle();
  t.same(await c.keyspace(b).keyspaceInfo(), { keys: 0, expires: 0 }, 'a delete uncounts it on the replica');
  t.equal((await c.keyspace(b).readObject(key)).siblings[0]!.value, null, 'as a tombstone');
});

t.test('a replica holding a concurrent version merges the bytes it is sent: siblings kept', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { writeQuorum: 1 }, getsAsBytes: true });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('concurrent');
  c.net.partition([[a], [b, d]], 'refuse', false);
  await c.node(a).put(key, set('from-a'));
  await c.node(b).put(key, set('from-b'));
  await c.idle();
  c.net.heal();
  // a supersedes only what a has seen: b's version survives as a sibling on b and d.
  await c.node(a).put(key, set('from-a-2'), { w: 3 });
  await c.idle();
  for (const id of [b, d]) t.same(values(await c.keyspace(id).readObject(key)).sort(), ['from-a-2', 'from-b'], `${id.slice(0, 6)}: both versions`);
  t.same(values(await c.keyspace(a).readObject(key)), ['from-a-2'], 'a has only its own until a read');
  t.same(values(await c.node(a).get(key, { r: 3 })).sort(), ['from-a-2', 'from-b'], 'a read sees the siblings');
  await c.idle();
  const bytes = await Promise.all(c.ids.map(async (id) => encodeObject(await c.keyspace(id).readObject(key)).toString('hex')));
  t.equal(new Set(bytes).size, 1, 'after read repair every replica holds the same bytes');
});

t.test('a fallback gets the bytes with the hint: stored for the down primary', async (t) => {
  const c = await startCluster(t, { nodes: 4, n: 3, settings: { writeQuorum: 3, sloppyQuorum: true }, getsAsBytes: true });
  const [a] = c.ids as [string];
  const key = c.keyWithPreflist((p) => p[0] === a);
  const preflist = c.ring().preflist(keySlot(key));
  const down = preflist[2]!;
  c.net.isolate(down, 'refuse', true);
  const stored = await c.node(a).put(key, set('hinted'));
  await c.idle();
  const fallback = c.ids.find((id) => !preflist.includes(id))!;
  t.same(values(await c.keyspace(fallback).readObject(key)), ['hinted'], 'the fallback merged the hinted copy (no onHint here)');
  t.same(encodeObject(await c.keyspace(fallback).readObject(key)), encodeObject(stored), 'the same bytes');
  t.equal(c.node(fallback).stats.hintedPutsReceived, 1, 'as a hinted put');
});

t.test('a write does not read the merge options; a read reads them, and a change applies at once', async (t) => {
  let optionReads = 0;
  let maxSiblings = 25;
  // The coordinator's view of its keyspace counts its writeOptions() calls and sets max-siblings
  // (the keyspace's own calls, on itself, are neither counted nor changed).
  const counting = (_id: string, ks: Keyspace): Keyspace =>
    new Proxy(ks, {
      get(target, prop) {
        if (prop === 'writeOptions') {
          return () => {
            optionReads++;
            return { ...target.writeOptions(), maxSiblings };
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  const c = await startCluster(t, { nodes: 3, n: 3, getsAsBytes: true, coordinatorKeyspace: counting });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('options-key');
  await c.node(a).put(key, set('first'));
  await c.idle();
  optionReads = 0;
  for (let i = 0; i < 5; i++) await c.node(a).put(key, set(`v${i}`));
  await c.idle();
  t.equal(optionReads, 0, 'writes on the same ring read no merge options');
  t.same(values(await c.node(a).get(key)), ['v4']);
  t.equal(optionReads, 1, 'a read reads them');
  // Two concurrent writes from the other nodes: two siblings, which max-siblings caps.
  await Promise.all([c.node(b).put(key, set('x'), { w: 1 }), c.node(d).put(key, set('y'), { w: 1 })]);
  await c.idle();
  t.same(values(await c.node(a).get(key)).sort(), ['x', 'y'], 'two siblings (in the actors\' order: the node ids are random)');
  await c.node(a).put(Buffer.from('another-key'), set('z'));
  maxSiblings = 1;
  t.equal(values(await c.node(a).get(key)).length, 1, 'max-siblings lowered after a write: the next read merges with it');
});
