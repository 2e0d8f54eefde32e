// Keyspace.mergeObjectsBatch of replica puts given as bytes only (the REPLICA_PUT_BATCH handler's
// plain objects): the batch path that stores the incoming bytes without decoding or merging
// (object_plain_merge.ts) must leave exactly what per-key mergeObject leaves: the same stored
// bytes and engine expiry per key, the same live-key counts, the same Merkle leaves.
import fc from 'fast-check';
import t from 'tap';
import { MerkleStore } from '../../src/cluster/merkle_store.js';
import { applyWrite, contextOf, decodeObject, EMPTY_OBJECT, encodeObject, mergeObjects, type VersionedObject, type WriteOptions } from '../../src/coordinator/object.js';
import { dataKey } from '../../src/server/key_layout.js';
import { openFixture, testClock } from '../server/keyspace_fixture.js';

const OPTS: WriteOptions = { maxSiblings: 100, conflictPolicy: 'siblings', vclockMaxEntries: 50 };
const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => Buffer.from(k));

/** One replica put: which key, and how the coordinator's object for it was made. */
type Put = { key: number; kind: 'plain' | 'plain' | 'other-actor' | 'blind' | 'stale'; value: 'v' | 'tomb' | 'ttl'; dtMs: number };
const putArb: fc.Arbitrary<Put> = fc.record({
  key: fc.nat(KEYS.length - 1),
  kind: fc.constantFrom('plain' as const, 'plain' as const, 'plain' as const, 'other-actor' as const, 'blind' as const, 'stale' as const),
  value: fc.constantFrom('v' as const, 'v' as const, 'tomb' as const, 'ttl' as const),
  dtMs: fc.integer({ min: -50, max: 200 }),
});

t.test('bytes-only replica batches store what per-key merges store', async (t) => {
  const clock = testClock(1_700_000_000_000);
  const fast = await openFixture(t, { clock });
  const slow = await openFixture(t, { clock });
  const fastTree = new MerkleStore(fast.ks.engine, clock.now);
  const slowTree = new MerkleStore(slow.ks.engine, clock.now);
  fast.ks.setWriteObserver(fastTree);
  slow.ks.setWriteObserver(slowTree);
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(putArb, { minLength: 1, maxLength: 16 }), { minLength: 1, maxLength: 8 }), async (batches) => {
      // Fresh keys per run: the coordinators' objects start from nothing.
      const prefix = `r${round++}:`;
      const history = new Map<number, VersionedObject[]>();
      for (const batch of batches) {
        const entries: { key: Buffer; encoded: Buffer }[] = [];
        for (const p of batch) {
          const seen = history.get(p.key) ?? [EMPTY_OBJECT];
          const last = seen[seen.length - 1] as VersionedObject;
          const w = {
            value: p.value === 'tomb' ? null : Buffer.from(`x${p.dtMs}`),
            writtenAtMs: clock.ms + p.dtMs,
            expiresAtMs: p.value === 'ttl' ? clock.ms + 100 : 0,
          };
          let obj: VersionedObject;
          if (p.kind === 'stale') obj = seen[Math.floor(seen.length / 2)] as VersionedObject;
          else if (p.kind === 'blind') obj = applyWrite(last, new Map(), 'n0.1', w, OPTS);
          else obj = applyWrite(last, contextOf(last), p.kind === 'plain' ? 'n0.1' : 'n1.1', w, OPTS);
          if (obj === EMPTY_OBJECT) continue;
          // A stale object is a late re-delivery, not a coordinator's new state: the next write
          // builds on the newest. (Building on it would mint a dot the key already has, with
          // other content, which a coordinator never does: it writes its own dots locally first.)
          if (p.kind !== 'stale') seen.push(obj);
          history.set(p.key, seen);
          entries.push({ key: Buffer.from(prefix + (KEYS[p.key] as Buffer).toString()), encoded: encodeObject(obj) });
        }
        if (entries.length === 0) continue;
        await fast.ks.mergeObjectsBatch(entries);
        for (const e of entries) await slow.ks.mergeObject(e.key, decodeObject(e.encoded));
        clock.advance(40);
      }
      for (const k of KEYS) {
        const ek = dataKey(Buffer.from(prefix + k.toString()));
        const [a, b] = [await fast.ks.engine.getEntry(ek), await slow.ks.engine.getEntry(ek)];
        if (a === undefined || b === undefined) {
          if (a !== b) throw new Error(`${prefix}${k}: stored in one keyspace only`);
          continue;
        }
        if (!a.value.equals(b.value)) throw new Error(`${prefix}${k}: ${a.value.toString('hex')} vs ${b.value.toString('hex')}`);
        if (a.expiresAtMs !== b.expiresAtMs) throw new Error(`${prefix}${k}: engine expiry ${a.expiresAtMs} vs ${b.expiresAtMs}`);
      }
      const [ia, ib] = [await fast.ks.keyspaceInfo(), await slow.ks.keyspaceInfo()];
      if (ia.keys !== ib.keys || ia.expires !== ib.expires) throw new Error(`counts ${JSON.stringify(ia)} vs ${JSON.stringify(ib)}`);
      if (!Buffer.from(fastTree.leaves.slots.buffer).equals(Buffer.from(slowTree.leaves.slots.buffer))) throw new Error('Merkle slot hashes differ');
    }),
    { numRuns: 60 },
  );
  t.equal(fast.ks.lockedKeys, 0, 'no lock left held');
  t.end();
});

t.test('a key whose lock is held, or given twice, takes the general path', async (t) => {
  const fx = await openFixture(t);
  const obj = (ms: number, value: string): VersionedObject => applyWrite(EMPTY_OBJECT, new Map(), 'n0.1', { value: Buffer.from(value), writtenAtMs: ms, expiresAtMs: 0 }, OPTS);
  const k = Buffer.from('k');
  // A local write holds k's lock until its batch commits: the replica batch waits for it.
  const local = fx.ks.writeValue(k, { value: Buffer.from('local'), expiresAtMs: 0 });
  const merged = fx.ks.mergeObjectsBatch([{ key: k, encoded: encodeObject(obj(fx.clock.ms + 5, 'remote')) }]);
  await Promise.all([local, merged]);
  const values = (await fx.ks.readObject(k)).siblings.map((s) => s.value?.toString()).sort();
  t.same(values, ['local', 'remote'], 'both writes kept (concurrent siblings)');
  const twice = [obj(10, 'one'), obj(20, 'two')];
  t.equal(await fx.ks.mergeObjectsBatch(twice.map((o) => ({ key: Buffer.from('t'), encoded: encodeObject(o) }))), 1, 'one key written');
  const both = mergeObjects(twice[0] as VersionedObject, twice[1] as VersionedObject, OPTS);
  t.ok((await fx.ks.engine.get(dataKey(Buffer.from('t'))))?.equals(encodeObject(both)), 'the two objects merged together first');
  t.equal(fx.ks.lockedKeys, 0);
  t.end();
});
