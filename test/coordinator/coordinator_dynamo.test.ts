// The Dynamo paper's D1..D5 example played through coordinators with a real partition, and the
// sibling-explosion workload (two clients doing read-modify-write through one node).
import t from 'tap';
import { contextOf, type VersionedObject } from '../../src/coordinator/object.js';
import { startCluster, values } from './fsm_cluster.js';

const dots = (o: VersionedObject): string[] => o.siblings.map((s) => `${s.dot.actor}:${s.dot.counter}`);

t.test('Dynamo D1..D5: concurrent writes on two sides of a partition become siblings, D5 resolves them', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const [sx, sy, sz] = c.ids as [string, string, string];
  const actor = (id: string): string => c.keyspace(id).actor;
  const key = Buffer.from('dynamo-item');

  // D1 and D2 handled by Sx; D2's client read D1 first.
  await c.node(sx).put(key, { value: Buffer.from('D1'), expiresAtMs: 0 });
  const d1 = await c.node(sx).get(key);
  t.same(values(d1), ['D1']);
  await c.node(sx).put(key, { value: Buffer.from('D2'), expiresAtMs: 0, context: contextOf(d1) });
  await c.idle();
  for (const id of c.ids) {
    const o = await c.keyspace(id).readObject(key);
    t.same(values(o), ['D2'], 'every replica holds D2');
    t.same(dots(o), [`${actor(sx)}:2`], 'D2 = ([Sx,2])');
  }

  // Two clients read D2 while the cluster is whole.
  const read1 = await c.node(sy).get(key);
  const read2 = await c.node(sz).get(key);
  t.same(values(read1), ['D2']);
  t.same(values(read2), ['D2']);

  // The bus between {Sx, Sy} and {Sz} is cut, and both sides notice.
  c.net.partition([[sx, sy], [sz]], 'refuse', true);
  const d3 = await c.node(sy).put(key, { value: Buffer.from('D3'), expiresAtMs: 0, context: contextOf(read1) });
  t.same(dots(d3), [`${actor(sy)}:1`], 'D3 handled by Sy: ([Sx,2],[Sy,1])');
  await t.rejects(
    c.node(sz).put(key, { value: Buffer.from('D4'), expiresAtMs: 0, context: contextOf(read2) }),
    { message: 'NOQUORUM write: 0 of 2 replicas acknowledged (the write may be partially applied)' },
    'alone, Sz cannot reach W=2 (and, knowing it, writes nothing)',
  );
  // The client retries at W=1 (CLIENT QUORUM) and Sz takes it: D4 = ([Sx,2],[Sz,1]).
  const d4 = await c.node(sz).put(key, { value: Buffer.from('D4'), expiresAtMs: 0, context: contextOf(read2) }, { w: 1 });
  t.same(dots(d4), [`${actor(sz)}:1`], 'D4 handled by Sz: ([Sx,2],[Sz,1])');
  await c.idle();
  t.same(values(await c.keyspace(sx).readObject(key)), ['D3'], 'the Sx/Sy side sees D3 only');
  t.same(values(await c.keyspace(sz).readObject(key)), ['D4'], 'Sz sees D4 only');

  // Heal. A read via Sx sees both versions: neither descends the other.
  c.net.heal();
  const both = await c.node(sx).get(key, { r: 3 });
  t.same(values(both).sort(), ['D3', 'D4'], 'two siblings');
  t.same([...both.clock.entries()].sort(), [[actor(sx), 2], [actor(sy), 1], [actor(sz), 1]].sort(), 'context ([Sx,2],[Sy,1],[Sz,1])');
  await c.idle();
  for (const id of c.ids) t.same(values(await c.keyspace(id).readObject(key)).sort(), ['D3', 'D4'], 'read repair gave every replica both');

  // D5: the client reconciles and writes with the context of what it read, via Sx.
  const d5 = await c.node(sx).put(key, { value: Buffer.from('D5'), expiresAtMs: 0, context: contextOf(both) }, { w: 3 });
  t.same(dots(d5), [`${actor(sx)}:3`], 'D5 = ([Sx,3],[Sy,1],[Sz,1])');
  await c.idle();
  for (const id of c.ids) {
    const o = await c.keyspace(id).readObject(key);
    t.same(values(o), ['D5'], 'one value everywhere');
    t.equal(o.siblings.length, 1);
  }
  for (const id of c.ids) t.same(values(await c.node(id).get(key, { r: 3 })), ['D5'], 'and every coordinator reads D5');
});

t.test('two clients doing 100 interleaved read-modify-write cycles through one node end with exactly 2 siblings', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const via = c.node(c.ids[0]!);
  const key = Buffer.from('counter-ish');
  let maxSiblings = 0;
  for (let i = 0; i < 100; i++) {
    // Both read, then both write what they computed from their read (concurrently: the node's
    // key lock orders them, and each write supersedes exactly what its client had read).
    const [ra, rb] = await Promise.all([via.get(key), via.get(key)]);
    const [wa, wb] = await Promise.all([
      via.put(key, { value: Buffer.from(`A${i}`), expiresAtMs: 0, context: contextOf(ra) }),
      via.put(key, { value: Buffer.from(`B${i}`), expiresAtMs: 0, context: contextOf(rb) }),
    ]);
    maxSiblings = Math.max(maxSiblings, wa.siblings.length, wb.siblings.length);
  }
  const end = await via.get(key);
  t.same(values(end).sort(), ['A99', 'B99'], 'exactly the two last writes');
  t.equal(end.siblings.length, 2, 'exactly 2 siblings');
  t.ok(maxSiblings <= 2, `never more than 2 siblings (max ${maxSiblings})`);
  t.equal(end.clock.size, 1, 'one actor in the clock: only the coordinating node minted dots');
  await c.idle();
  for (const id of c.ids) {
    const o = await c.keyspace(id).readObject(key);
    t.equal(o.siblings.length, 2, 'every replica: 2 siblings');
  }
});
