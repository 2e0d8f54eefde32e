// The Merkle tree of anti-entropy (src/cluster/merkle.ts) against a model (a Map of key -> bytes
// per replica), and the live store (merkle_store.ts) against a rebuild from scratch:
//  - equal data gives equal hashes at every node, whatever the order of updates;
//  - any single difference (a changed, added or removed object) is located at exactly its leaf;
//  - the diff of two trees lists exactly the leaves where the two models differ, within the mask;
//  - CLUSTER DIGEST strings are "" for empty slots and equal exactly when the slot's data is;
//  - the store, updated through the keyspace's write hook while rebuilds, overwrites, merges,
//    TTL expiry and FLUSHALL happen concurrently, ends equal to a fresh scan of the engine.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import fc from 'fast-check';
import { keySlot } from '../../src/coordinator/slot.js';
import {
  diffTrees,
  entryHash,
  keyBucket,
  leafIndex,
  LEAF_LEVEL,
  levelWidth,
  maskOf,
  MerkleLeaves,
  nodeHash,
  rangesOf,
  slotDigest,
  SLOT_LEVEL,
  xorEntryHash,
} from '../../src/cluster/merkle.js';
import { MerkleStore } from '../../src/cluster/merkle_store.js';
import { SLOT_COUNT } from '../../src/server/key_layout.js';
import { engineExpiresAtMs, Keyspace } from '../../src/server/keyspace.js';
import { applyWrite, DEFAULT_WRITE_OPTIONS, EMPTY_OBJECT } from '../../src/coordinator/object.js';
import { EMPTY_CONTEXT } from '../../src/coordinator/dvv.js';
import { TestConfig } from '../server/keyspace_fixture.js';

type Model = Map<string, Buffer>;

function treeOf(m: Model, order?: readonly string[]): MerkleLeaves {
  const leaves = new MerkleLeaves();
  for (const k of order ?? [...m.keys()]) {
    const key = Buffer.from(k, 'latin1');
    leaves.add(keySlot(key), key, m.get(k) as Buffer);
  }
  return leaves;
}

const leafOfKey = (k: string): number => {
  const key = Buffer.from(k, 'latin1');
  return leafIndex(keySlot(key), keyBucket(key));
};

const ALL = maskOf([[0, SLOT_COUNT - 1]]);
/** entryHash('key:1', 'value') and keyBucket('key:1') of the current function (merkle.ts hashEntry). */
const PINNED_ENTRY_HASH_HEX = '714cf646e12b37fb';
const PINNED_KEY_BUCKET = 9;
const keyArb = fc.string({ minLength: 1, maxLength: 12 });
const valueArb = fc.uint8Array({ minLength: 0, maxLength: 24 }).map((a) => Buffer.from(a));
const modelArb = fc.dictionary(keyArb, valueArb, { maxKeys: 60 }).map((d) => new Map(Object.entries(d)));

t.test('tree shape: level 7 is one slot, level 10 one leaf', async (t) => {
  t.equal(levelWidth(SLOT_LEVEL), SLOT_COUNT);
  t.equal(levelWidth(LEAF_LEVEL), SLOT_COUNT * 64);
  const m: Model = new Map([['a', Buffer.from('1')]]);
  const tree = treeOf(m);
  const slot = keySlot(Buffer.from('a'));
  t.not(nodeHash(tree, ALL, SLOT_LEVEL, slot), 0n, 'the slot node holds the entry');
  t.equal(nodeHash(tree, ALL, SLOT_LEVEL, slot), nodeHash(tree, ALL, 0, 0), 'the root is the XOR of the only slot');
  t.equal(nodeHash(tree, ALL, LEAF_LEVEL, leafOfKey('a')), nodeHash(tree, ALL, 0, 0));
  t.equal(nodeHash(tree, maskOf([[(slot + 1) % SLOT_COUNT, (slot + 1) % SLOT_COUNT]]), 0, 0), 0n, 'a mask without the slot hides it');
  t.same(rangesOf(maskOf([[3, 9], [100, 100], [16000, 16383]])), [[3, 9], [100, 100], [16000, 16383]]);
});

t.test('equal data gives equal hashes at every level, in any insertion order', async (t) => {
  fc.assert(
    fc.property(modelArb, fc.integer(), (m, seed) => {
      const keys = [...m.keys()];
      const shuffled = [...keys].sort((a, b) => ((a.charCodeAt(0) * 31 + seed) % 7) - ((b.charCodeAt(0) * 31 + seed) % 7) || (a < b ? -1 : 1));
      const a = treeOf(m);
      const b = treeOf(m, shuffled);
      if (nodeHash(a, ALL, 0, 0) !== nodeHash(b, ALL, 0, 0)) return false;
      for (const k of keys) {
        const key = Buffer.from(k, 'latin1');
        const slot = keySlot(key);
        if (slotDigest(a, slot) !== slotDigest(b, slot) || slotDigest(a, slot) === '') return false;
      }
      return diffTrees(a, b, ALL).length === 0;
    }),
    { numRuns: 60 },
  );
});

t.test('a single difference is located at exactly its leaf', async (t) => {
  fc.assert(
    fc.property(modelArb, keyArb, fc.option(valueArb, { nil: undefined }), (m, k, v) => {
      const other = new Map(m);
      if (v === undefined) {
        if (!other.has(k)) return true; // removing an absent key changes nothing
        other.delete(k);
      } else {
        if (other.get(k)?.equals(v) === true) return true;
        other.set(k, v);
      }
      const diff = diffTrees(treeOf(m), treeOf(other), ALL);
      return diff.length === 1 && diff[0] === leafOfKey(k);
    }),
    { numRuns: 50 },
  );
});

t.test('the diff of two trees lists exactly the differing leaves within the mask', async (t) => {
  fc.assert(
    fc.property(modelArb, modelArb, fc.integer({ min: 0, max: SLOT_COUNT - 1 }), fc.integer({ min: 0, max: SLOT_COUNT - 1 }), (a, b, x, y) => {
      // Share some keys so that equal entries also occur.
      for (const [k, v] of a) if (k.length % 2 === 0) b.set(k, v);
      const mask = maskOf([[Math.min(x, y), Math.max(x, y)]]);
      const expected = new Set<number>();
      for (const k of new Set([...a.keys(), ...b.keys()])) {
        const va = a.get(k);
        const vb = b.get(k);
        if (va !== undefined && vb !== undefined && va.equals(vb)) continue;
        if (mask[keySlot(Buffer.from(k, 'latin1'))] === 1) expected.add(leafOfKey(k));
      }
      const got = diffTrees(treeOf(a), treeOf(b), mask);
      return JSON.stringify(got) === JSON.stringify([...expected].sort((p, q) => p - q));
    }),
    { numRuns: 60 },
  );
});

t.test('entry hashes: pinned values, segments kept apart, the word path equals the BigInt one', async (t) => {
  // Every node of a cluster must hash alike: a change to the function shows here first.
  t.equal(entryHash(Buffer.from('key:1'), Buffer.from('value')).toString(16), PINNED_ENTRY_HASH_HEX);
  t.equal(keyBucket(Buffer.from('key:1')), PINNED_KEY_BUCKET);
  const k = (x: string): Buffer => Buffer.from(x, 'latin1');
  t.not(entryHash(k('ab'), k('c')), entryHash(k('a'), k('bc')), 'the key/value boundary is part of the hash');
  t.not(entryHash(k('k'), k('')), entryHash(k('k'), k('\0')), 'a zero tail byte is not padding');
  t.not(entryHash(k('k'), k('v')), entryHash(k('j'), k('v')), 'the key is part of the hash');
  const big = Buffer.alloc(70_000, 7);
  t.not(entryHash(k('k'), big), entryHash(k('k'), big.subarray(1)), 'long values');
  fc.assert(
    fc.property(keyArb, valueArb, fc.integer({ min: 0, max: 7 }), (key, v, cell) => {
      const cells = new BigUint64Array(8);
      xorEntryHash(Buffer.from(key), v, new Uint32Array(cells.buffer), cell);
      return cells[cell] === entryHash(Buffer.from(key), v) && cells.every((c, i) => i === cell || c === 0n);
    }),
    { numRuns: 200 },
  );
});

/**
 * The hash as specified in merkle.ts, written plainly (one word at a time, BigInt result): the
 * reference the optimized code must match bit for bit (every node of a cluster hashes alike).
 */
function referenceHash(segments: readonly Uint8Array[], lead: number | undefined, finalLen: number): bigint {
  let a = 0x9747b28c;
  let b = 0x5bd1e995;
  const word = (k: number): void => {
    let x = Math.imul(k, 0xcc9e2d51);
    x = Math.imul((x << 15) | (x >>> 17), 0x1b873593);
    a ^= x;
    a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
    let y = Math.imul(k, 0x38b34ae5);
    y = Math.imul((y << 17) | (y >>> 15), 0xa1e38b93);
    b ^= y;
    b = (Math.imul((b << 15) | (b >>> 17), 5) + 0x0bcaa747) | 0;
  };
  if (lead !== undefined) word(lead);
  for (const seg of segments) {
    for (let i = 0; i < seg.length; i += 4) {
      let k = 0;
      for (let j = 0; j < 4 && i + j < seg.length; j++) k |= seg[i + j]! << (8 * j);
      word(k);
    }
  }
  const fmix = (h: number): number => {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  };
  a ^= finalLen;
  b ^= finalLen;
  a = (a + b) | 0;
  b = (b + a) | 0;
  a = fmix(a);
  b = fmix(b);
  a = (a + b) | 0;
  b = (b + a) | 0;
  return (BigInt(b >>> 0) << 32n) | BigInt(a >>> 0);
}

t.test('entry hashes, key buckets and replace() equal the plainly written reference hash', async (t) => {
  const bytesArb = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => Buffer.from(a));
  t.equal(referenceHash([Buffer.from('key:1'), Buffer.from('value')], 5, 5).toString(16), PINNED_ENTRY_HASH_HEX, 'the reference gives the pinned value');
  // Objects at the edges of the aligned-copy word path (32..4096 bytes), inside a larger buffer
  // at an odd offset, and the byte path either side of it.
  const backing = Buffer.alloc(4200);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 151 + 7) & 255;
  for (const len of [31, 32, 33, 34, 35, 36, 4093, 4095, 4096, 4097, 4100]) {
    const v = backing.subarray(3, 3 + len);
    t.equal(entryHash(Buffer.from('key:1'), v), referenceHash([Buffer.from('key:1'), v], 5, len), `a ${len}-byte object at offset 3`);
  }
  // One set of leaves for every run (8 MiB of cells), emptied again after each.
  const leaves = new MerkleLeaves();
  fc.assert(
    fc.property(bytesArb(40).filter((k) => k.length > 0), fc.option(bytesArb(300), { nil: undefined }), fc.option(bytesArb(300), { nil: undefined }), (key, before, after) => {
      for (const v of [before, after]) {
        if (v !== undefined && entryHash(key, v) !== referenceHash([key, v], key.length, v.length)) throw new Error('entryHash differs from the reference');
      }
      const bucket = Number((referenceHash([key], undefined, key.length) >> 32n) & 63n);
      if (keyBucket(key) !== bucket) throw new Error('keyBucket differs from the reference');
      const slot = keySlot(key);
      if (before !== undefined) leaves.add(slot, key, before);
      leaves.replace(slot, key, before, after);
      const expected = after === undefined ? 0n : referenceHash([key, after], key.length, after.length);
      const leaf = leafIndex(slot, bucket);
      let ok = leaves.leafHash(leaf) === expected && leaves.slotHash(slot) === expected && leaves.slotCount(slot) === (after === undefined ? 0 : 1);
      if (after !== undefined) leaves.remove(slot, key, after);
      // The key inside a longer buffer (an engine key after its prefix): the same entry.
      const prefixed = Buffer.concat([Buffer.from([9, 8, 7]), key]);
      leaves.replace(slot, prefixed, undefined, after, 3);
      ok &&= leaves.leafHash(leaf) === expected && leaves.slotHash(slot) === expected;
      if (after !== undefined) leaves.remove(slot, key, after);
      return ok;
    }),
    { numRuns: 2000 },
  );
});

t.test('entry hashes and key buckets spread: no 64-bit collision in 100k entries, every bit and bucket near even', async (t) => {
  const COUNT = 100_000;
  const seen = new Set<bigint>();
  const ones = new Array<number>(64).fill(0);
  const buckets = new Array<number>(64).fill(0);
  const value = Buffer.alloc(100, 1);
  for (let i = 0; i < COUNT; i++) {
    const key = Buffer.from(`key:${String(i).padStart(12, '0')}`);
    value.writeUInt32LE(i % 7, 0);
    const h = entryHash(key, value);
    seen.add(h);
    for (let b = 0; b < 64; b++) if ((h >> BigInt(b)) & 1n) ones[b]!++;
    buckets[keyBucket(key)]!++;
  }
  t.equal(seen.size, COUNT, 'no collisions');
  // Binomial(100k, 1/2): sd 158, so +-1% is over 6 sd.
  t.ok(ones.every((n) => Math.abs(n - COUNT / 2) < COUNT / 100), `bits near half set: ${Math.min(...ones)}..${Math.max(...ones)}`);
  // Binomial(100k, 1/64): mean 1562, sd 39; +-15% is 6 sd.
  t.ok(buckets.every((n) => Math.abs(n - COUNT / 64) < (0.15 * COUNT) / 64), `buckets near even: ${Math.min(...buckets)}..${Math.max(...buckets)}`);
});

t.test('replace = remove old + add new', async (t) => {
  const tree = new MerkleLeaves();
  const key = Buffer.from('r');
  tree.replace(3, key, undefined, Buffer.from('a'));
  tree.replace(3, key, Buffer.from('a'), Buffer.from('b'));
  const direct = new MerkleLeaves();
  direct.add(3, key, Buffer.from('b'));
  t.equal(slotDigest(tree, 3), slotDigest(direct, 3), 'replace = remove old + add new');
});

t.test('slot digests: empty slots are "", add then remove returns to the same digest', async (t) => {
  const tree = new MerkleLeaves();
  const key = Buffer.from('k1');
  const slot = keySlot(key);
  t.equal(slotDigest(tree, slot), '');
  tree.add(slot, key, Buffer.from('v1'));
  const one = slotDigest(tree, slot);
  t.match(one, /^[0-9a-f]{24}$/);
  tree.remove(slot, key, Buffer.from('v1'));
  tree.add(slot, key, Buffer.from('v2'));
  t.not(slotDigest(tree, slot), one, 'another version, another digest');
  tree.remove(slot, key, Buffer.from('v2'));
  tree.add(slot, key, Buffer.from('v1'));
  t.equal(slotDigest(tree, slot), one, 'back to the first version, back to its digest');
  tree.remove(slot, key, Buffer.from('v1'));
  t.equal(slotDigest(tree, slot), '');
});

t.test('the live store follows the keyspace through concurrent writes, rebuilds, expiry and FLUSHALL', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-merkle-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  let now = 1_700_000_000_000;
  const clock = (): number => now;
  const ks = await Keyspace.open({ dir, config: new TestConfig({ 'gc-grace-seconds': 5 }), now: clock, log: () => undefined });
  t.teardown(() => ks.close());
  const store = new MerkleStore(ks.engine, clock);
  ks.setWriteObserver(store);

  const freshDigests = async (): Promise<string[]> => {
    const fresh = new MerkleStore(ks.engine, clock);
    await fresh.ensureClean();
    return Array.from({ length: SLOT_COUNT }, (_, s) => slotDigest(fresh.leaves, s));
  };
  const liveDigests = async (): Promise<string[]> => {
    await store.ensureClean();
    return Array.from({ length: SLOT_COUNT }, (_, s) => slotDigest(store.leaves, s));
  };

  // Some data before the first build, so the build and later writes overlap.
  for (let i = 0; i < 300; i++) await ks.writeObject(Buffer.from(`pre:${i}`), { value: Buffer.from(`v${i}`), expiresAtMs: 0 });
  // Every slot starts dirty: the first ensureClean scans them (with no FLUSHALL in the way, which
  // would drop a scan that spans it and leave nothing to rebuild).
  await store.ensureClean();
  t.ok(store.stats.rebuilds > 0, 'the first ensureClean rebuilt the dirty slots');
  const key = (i: number): Buffer => Buffer.from(`k:${i % 40}`);
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('set' as const), k: fc.nat(), v: fc.nat(), ttl: fc.boolean() }),
          fc.record({ op: fc.constant('del' as const), k: fc.nat() }),
          fc.record({ op: fc.constant('merge' as const), k: fc.nat(), v: fc.nat() }),
          fc.record({ op: fc.constant('clock' as const), ms: fc.integer({ min: 1, max: 4000 }) }),
          fc.record({ op: fc.constant('rebuild' as const) }),
        ),
        { maxLength: 40 },
      ),
      fc.boolean(),
      async (ops, flush) => {
        const pending: Promise<unknown>[] = [];
        for (const o of ops) {
          if (o.op === 'set') pending.push(ks.writeObject(key(o.k), { value: Buffer.from(`v${o.v}`), expiresAtMs: o.ttl ? now + 1000 : 0 }));
          else if (o.op === 'del') pending.push(ks.writeObject(key(o.k), { value: null, expiresAtMs: 0 }));
          else if (o.op === 'merge') {
            const obj = await ks.readObject(key(o.k + 1));
            pending.push(ks.mergeObject(key(o.k), obj));
          } else if (o.op === 'clock') now += o.ms;
          else pending.push(store.ensureClean());
        }
        if (flush) pending.push(ks.flushAll());
        await Promise.all(pending);
        return JSON.stringify(await liveDigests()) === JSON.stringify(await freshDigests());
      },
    ),
    { numRuns: 15 },
  );
  t.equal(store.dirtySlots(), 0, 'every slot clean after ensureClean');
  // Tombstones expire with the grace counted from the delete itself, on any replica that stores them.
  await ks.writeObject(Buffer.from('gone'), { value: Buffer.from('x'), expiresAtMs: 0 });
  await ks.writeObject(Buffer.from('gone'), { value: null, expiresAtMs: 0 });
  const slot = keySlot(Buffer.from('gone'));
  t.not(slotDigest(store.leaves, slot), '', 'the tombstone is stored and hashed');
  now += 5_001;
  t.notOk(store.isClean(slot), 'the tombstone reached its grace: the slot is rebuilt before use');
  await store.ensureClean();
  t.equal(slotDigest(store.leaves, slot), '', 'after its grace the tombstone is gone from the engine and the tree');
});

t.test('a tombstone expires gc grace after the delete itself, whenever a replica stores it', async (t) => {
  const value = applyWrite(EMPTY_OBJECT, EMPTY_CONTEXT, 'a.1', { value: Buffer.from('v'), writtenAtMs: 1000, expiresAtMs: 0 }, DEFAULT_WRITE_OPTIONS);
  const deleted = applyWrite(value, value.clock, 'a.1', { value: null, writtenAtMs: 5000, expiresAtMs: 0 }, DEFAULT_WRITE_OPTIONS);
  t.equal(engineExpiresAtMs(value, 9000, 100), 0, 'a live value without TTL never expires');
  t.equal(engineExpiresAtMs(deleted, 6000, 100), 5100, 'stored soon after the delete: writtenAtMs + grace');
  t.equal(engineExpiresAtMs(deleted, 60_000, 100), 5100, 'stored much later (repair): the same moment, already past');
});
