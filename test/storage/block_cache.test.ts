/**
 * The block cache reuses the memory of an evicted block only when no reader can still see it
 * (block_cache.ts): the block was cached as reusable by a point read that copies what it returns,
 * and no get() handed it out since. Unit cases on BlockCache, then the engine with a tiny cache:
 * views a caller holds (getSync values, scan entries) do not change while cold gets reuse memory.
 */
import t from 'tap';
import { BlockCache } from '../../src/storage/block_cache.js';
import { openEngine } from '../../src/storage/engine.js';
import type { Block } from '../../src/storage/table_format.js';
import { k, tempDir, v } from './helpers.js';

const BLOCK = 4000;
/** What the cache charges a block of BLOCK bytes (its buffer plus bookkeeping), with a margin. */
const PER_BLOCK = BLOCK + 200;

function block(cache: BlockCache, fill: number): Block {
  const data = cache.takeBuffer(BLOCK);
  data.fill(fill);
  return { data, count: 1, startsAt: 0, width: 2, keyWords: undefined, keyPrefixLen: 0, firstKeyAt: 0 };
}

t.test('an evicted block is reused only if cached reusable and never handed out', async (t) => {
  const cache = new BlockCache(3 * PER_BLOCK);
  const a = block(cache, 1);
  const b = block(cache, 2);
  const c = block(cache, 3);
  const later = [block(cache, 4), block(cache, 5), block(cache, 6)];
  cache.set(1, 0, a, true);
  cache.set(1, 1, b, true);
  cache.set(1, 2, c, false);
  t.equal(cache.get(1, 1), b, 'b is handed out');
  // Three more blocks evict a, b and c.
  later.forEach((x, i) => cache.set(1, 3 + i, x, false));
  t.equal(cache.get(1, 0), undefined, 'a was evicted');
  t.equal(cache.get(1, 2), undefined, 'c was evicted');
  t.equal(cache.buffersReused, 0);
  const reused = cache.takeBuffer(BLOCK);
  t.equal(reused.buffer, a.data.buffer, "a's memory serves the next read");
  t.equal(cache.buffersReused, 1);
  const fresh = cache.takeBuffer(BLOCK);
  t.not(fresh.buffer, b.data.buffer, "b's memory is not reused (handed out)");
  t.not(fresh.buffer, c.data.buffer, "c's memory is not reused (not reusable)");
  t.equal(b.data[0], 2, 'b is intact');
  t.equal(c.data[0], 3, 'c is intact');
  t.equal(cache.buffersReused, 1);
});

t.test('a spare buffer serves only reads it fits closely', async (t) => {
  const cache = new BlockCache(PER_BLOCK);
  const a = block(cache, 1);
  const b = block(cache, 2);
  cache.set(1, 0, a, true);
  cache.set(1, 1, b, false); // evicts a
  t.not(cache.takeBuffer(BLOCK + 1).buffer, a.data.buffer, 'too small');
  t.not(cache.takeBuffer(BLOCK - 1000).buffer, a.data.buffer, 'too large: the cache would charge the whole buffer');
  const r = cache.takeBuffer(BLOCK - 10);
  t.equal(r.buffer, a.data.buffer, 'a little larger is fine');
  t.equal(r.length, BLOCK - 10);
});

t.test('no cache: nothing is kept', async (t) => {
  const cache = new BlockCache(0);
  const a = block(cache, 1);
  cache.set(1, 0, a, true);
  t.equal(cache.get(1, 0), undefined);
  t.not(cache.takeBuffer(BLOCK).buffer, a.data.buffer);
});

t.test('engine with a tiny cache: held views stay intact while cold gets reuse block memory', async (t) => {
  const dir = await tempDir(t);
  // 256-byte blocks, a cache of a few blocks: nearly every get reads a block and evicts one.
  const e = await openEngine({ dir, appendfsync: 'no', memtableBytes: 16 * 1024, blockBytes: 256, blockCacheBytes: 2048 });
  t.teardown(() => e.close());
  const N = 600;
  for (let i = 0; i < N; i++) await e.put(k(i), v(i, 40));
  await e.compactAll();
  const pick = (() => {
    let x = 7;
    return () => (x = (x * 1103515245 + 12345) % 2 ** 31) % N;
  })();
  const churn = async (gets: number): Promise<void> => {
    for (let n = 0; n < gets; n++) {
      const i = pick();
      const got = await e.get(k(i));
      if (!got?.equals(v(i, 40))) t.fail(`get ${i}: ${got?.toString()}`);
    }
  };

  // getSync views: of blocks read for getSync (keys far apart: each in a block not cached), and
  // of blocks a get() read and getSync then found in the cache.
  const held: Array<{ i: number; view: Buffer }> = [];
  for (let n = 0; n < 40; n++) {
    const i = n * 13;
    if (n % 2 === 0) await e.get(k(i));
    const view = e.getSync(k(i));
    if (!view) throw new Error(`getSync ${i} needs I/O or found nothing`);
    held.push({ i, view });
  }
  // A scan in progress, its entries kept; its first block is not in the cache (the gets before
  // it fill the cache with blocks of keys < 30).
  for (let i = 0; i < 30; i++) await e.get(k(i));
  const it = e.range({ gte: k(301) });
  const scanned: Array<{ key: Buffer; value: Buffer }> = [];
  for (let n = 0; n < 50; n++) {
    const r = await it.next();
    if (r.done) break;
    scanned.push(r.value);
    await churn(20);
  }
  await it.return?.(undefined);
  await churn(2000);

  const reused = e.stats().blockBuffersReused ?? 0;
  t.ok(reused > 1000, `cold gets read into reused memory (${reused} times)`);
  for (const { i, view } of held) if (!view.equals(v(i, 40))) t.fail(`getSync view of ${i} changed: ${view.toString()}`);
  t.equal(scanned.length, 50);
  scanned.forEach((x, n) => {
    if (!x.key.equals(k(301 + n)) || !x.value.equals(v(301 + n, 40))) t.fail(`scan entry ${n} changed: ${x.key.toString()} ${x.value.toString()}`);
  });
  t.pass('views checked');
});
