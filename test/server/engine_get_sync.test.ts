/**
 * KVEngine.getSync (the promise-free point read the server's GET/SET fast path uses): it agrees
 * with getEntry for memtable, table, deleted, expired and absent keys, and says "needs I/O"
 * (undefined) only when a table block is neither cached nor read synchronously.
 */
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';

const small = { memtableBytes: 16 * 1024, blockBytes: 512, levelBaseBytes: 64 * 1024, targetFileBytes: 16 * 1024 };
const key = (i: number): Buffer => Buffer.from(`key:${String(i).padStart(6, '0')}`);
const val = (i: number): Buffer => Buffer.from(`value-${i}-`.repeat(4));

t.test('getSync agrees with getEntry across memtable, tables, deletes and expiry', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-getsync-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  let now = 1_000_000;
  const e = await openEngine({ dir, ...small, now: () => now });
  t.teardown(() => e.close());
  const N = 600;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < N; i++) writes.push(e.put(key(i), val(i), { expiresAtMs: i % 10 === 3 ? now + 500 : 0 }));
  await Promise.all(writes);
  for (let i = 0; i < N; i += 7) await e.delete(key(i));
  t.same(e.getSync(key(1)), val(1), 'memtable hit returns the value');
  t.equal(e.getSync(key(7)), null, 'a deleted key is null');
  t.equal(e.getSync(key(N + 1)), null, 'an absent key is null');
  await e.flush();
  // Newer versions of some keys in the memtable, older ones in tables.
  for (let i = 1; i < N; i += 50) await e.put(key(i), val(i + 1_000_000));
  now += 1000; // every i % 10 === 3 value has expired
  let compared = 0;
  let sync = 0;
  for (let i = 0; i < N + 5; i++) {
    const entry = await e.getEntry(key(i));
    const s = e.getSync(key(i));
    if (s === undefined) continue; // needs I/O: the caller falls back to getEntry
    sync++;
    compared++;
    if (entry === undefined) t.equal(s, null, `key ${i} absent in both`);
    else t.ok(s !== null && s.equals(entry.value), `key ${i} same value`);
  }
  t.ok(sync > N / 2, `most reads answered synchronously (${sync})`);
  t.ok(compared > 0);
  t.equal(e.getSync(key(3)), null, 'an expired value is null');
  t.same(e.getSync(key(51)), val(1_000_051), 'the newest version wins over the table');
});
