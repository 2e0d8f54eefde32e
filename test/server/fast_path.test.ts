/**
 * The lone-node GET/SET fast paths (strings.ts localFast, Keyspace.viewSync / writeValue):
 * a hot GET is answered without a promise, a plain SET with one engine promise, and both keep
 * the general path's behaviour: same replies and errors, per-key serialization (concurrent
 * plain SETs of one key never leave siblings), counts, and a reply only once the engine write
 * settled (with appendfsync always that is after the fsync).
 */
import t from 'tap';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import { ENGINE_DIR_NAME, Keyspace, VALUE_VIEW_MAX_BYTES, WRITE_BATCH_BYTES_MAX } from '../../src/server/keyspace.js';
import { stringCommands } from '../../src/server/commands/strings.js';
import type { Reply } from '../../src/resp/reply.js';
import type { KVEngine } from '../../src/storage/types.js';
import { openFixture, testClient } from './keyspace_fixture.js';
import type { ServerContext } from '../../src/server/types.js';

const specOf = (name: string) => {
  const s = stringCommands.find((c) => c.name === name);
  if (s?.handler === undefined) throw new Error(`no ${name}`);
  return s.handler;
};
const GET = specOf('get');
const SET = specOf('set');
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

t.test('a hot GET is answered synchronously, a cold one through the engine, with the same value', async (t) => {
  const fx = await openFixture(t);
  const ctx = () => ({ client: testClient(), server: { config: fx.config, keyspace: fx.ks, now: fx.clock.now } as ServerContext });
  t.equal(await fx.run('SET', 'hot', 'v1'), 'OK');
  const hot = GET(ctx(), [b('GET'), b('hot')]);
  t.notOk(hot instanceof Promise, 'memtable hit: no promise');
  t.same(hot, { kind: 'bulk', value: b('v1') });
  const missing = GET(ctx(), [b('GET'), b('nope')]);
  t.notOk(missing instanceof Promise, 'absent key known from memory: no promise');
  t.same(missing, { kind: 'null' });
  // Many keys, then a restart: values now come from tables, some possibly needing I/O.
  for (let i = 0; i < 2000; i++) await fx.run('SET', `k${i}`, `value-${i}`);
  await fx.ks.engine.flush();
  await fx.reopen();
  let ok = true;
  for (let i = 0; i < 2000; i += 37) {
    const r = await GET(ctx(), [b('GET'), b(`k${i}`)]);
    if (r.kind !== 'bulk' || r.value.toString() !== `value-${i}`) ok = false;
  }
  t.ok(ok, 'every value read back after reopen (sync or async)');
  // A value the encoder would hand to the socket as it is (VALUE_VIEW_MAX_BYTES and up) is a
  // copy: changing it does not change the store. A smaller one is a read-only view.
  const big = 'x'.repeat(VALUE_VIEW_MAX_BYTES);
  t.equal(await fx.run('SET', 'big', big), 'OK');
  const r = GET(ctx(), [b('GET'), b('big')]);
  t.notOk(r instanceof Promise, 'memtable hit: no promise');
  const got = r instanceof Promise ? await r : r;
  if (got.kind === 'bulk' && Buffer.isBuffer(got.value)) got.value.fill(0x7a);
  t.equal(await fx.run('GET', 'big'), big, 'stored value unchanged by a caller writing into a large reply');
});

t.test('plain SET: same errors, counts and serialization per key as the general path', async (t) => {
  const fx = await openFixture(t, { config: { 'max-value-bytes': 64, 'max-key-bytes': 16 } });
  t.same(await fx.run('SET', 'k', 'x'.repeat(65)), { error: 'TOOLARGE value is 65 bytes, over max-value-bytes (64)' });
  t.same(await fx.run('SET', 'k'.repeat(17), 'x'), { error: 'TOOLARGE key is 17 bytes, over max-key-bytes (16)' });
  t.equal(await fx.run('EXISTS', 'k'), 0);
  // 50 concurrent plain SETs of one key (pipelined from 50 clients): they serialize on the
  // key lock, so the last one supersedes all others: one value, no siblings.
  const ctx = { client: testClient(), server: { config: fx.config, keyspace: fx.ks, now: fx.clock.now } as ServerContext };
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => SET(ctx, [b('SET'), b('same'), b(`v${i}`)])));
  t.ok(replies.every((r) => r.kind === 'simple' && r.value === 'OK'), 'every SET answered OK');
  t.equal(await fx.run('GET', 'same'), 'v49', 'the last write wins, as one value (not an array of siblings)');
  // TTL cleared by a plain SET, and DBSIZE counts fast-path writes.
  t.equal(await fx.run('SET', 'ttl', 'a', 'EX', '100'), 'OK');
  t.equal(await fx.run('SET', 'ttl', 'b'), 'OK');
  t.equal(await fx.run('TTL', 'ttl'), -1);
  t.equal(await fx.ks.dbsize(), 2);
  await fx.reopen();
  t.equal(await fx.run('GET', 'same'), 'v49', 'durable across reopen');
});

/** The real engine behind every method, except the writes the test intercepts. */
function delegating(real: Awaited<ReturnType<typeof openEngine>>, writes: Pick<KVEngine, 'put' | 'write'>): KVEngine {
  return {
    get: (k, s) => real.get(k, s),
    getEntry: (k, s) => real.getEntry(k, s),
    getSync: (k) => real.getSync(k),
    put: writes.put,
    delete: (k) => real.delete(k),
    write: writes.write,
    snapshot: () => real.snapshot(),
    range: (o) => real.range(o),
    approximateSize: (a, z) => real.approximateSize(a, z),
    approximateCount: (a, z) => real.approximateCount(a, z),
    flush: () => real.flush(),
    compactAll: () => real.compactAll(),
    stats: () => real.stats(),
    close: () => real.close(),
  };
}

t.test('a plain SET replies only after its engine write settled, and reports its failure', async (t) => {
  const fx = await openFixture(t);
  await fx.ks.close();
  const real = await openEngine({ dir: path.join(fx.dir, ENGINE_DIR_NAME) });
  let release: (() => void) | undefined;
  let fail = false;
  const gate = (p: Promise<void>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      release = () => (fail ? reject(new Error('disk on fire')) : p.then(resolve, reject));
    });
  // The real engine, with writes held until the test says so (what an fsync under 'always' does).
  const gated = delegating(real, {
    put: (key, value, options) => gate(real.put(key, value, options)),
    write: (ops) => gate(real.write(ops)),
  });
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => {}, engine: gated });
  const ctx = { client: testClient(), server: { config: fx.config, keyspace: fx.ks, now: fx.clock.now } as ServerContext };
  let replied: Reply | undefined;
  const pending = Promise.resolve(SET(ctx, [b('SET'), b('k'), b('v')])).then((r) => (replied = r));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(replied, undefined, 'no reply while the write is not durable');
  release!();
  await pending;
  t.same(replied, { kind: 'simple', value: 'OK' });
  fail = true;
  const failing = Promise.resolve(SET(ctx, [b('SET'), b('k2'), b('v')]));
  await new Promise((r) => setTimeout(r, 10));
  release!();
  await t.rejects(failing, /disk on fire/, 'an engine failure is not answered OK');
  t.equal(fx.ks.lockedKeys, 0, 'the key lock is released after a failed write');
});

t.test('plain SETs issued together reach the engine as one batch, split at WRITE_BATCH_BYTES_MAX', async (t) => {
  const fx = await openFixture(t, { config: { 'max-value-bytes': 1024 * 1024 } });
  await fx.ks.close();
  const real = await openEngine({ dir: path.join(fx.dir, ENGINE_DIR_NAME) });
  const batches: number[] = [];
  let puts = 0;
  const counting = delegating(real, {
    put: (key, value, options) => {
      puts++;
      return real.put(key, value, options);
    },
    write: (ops) => {
      batches.push(ops.length);
      return real.write(ops);
    },
  });
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => {}, engine: counting });
  const ctx = { client: testClient(), server: { config: fx.config, keyspace: fx.ks, now: fx.clock.now } as ServerContext };
  const small = await Promise.all(Array.from({ length: 16 }, (_, i) => SET(ctx, [b('SET'), b(`p${i}`), b(`v${i}`)])));
  t.ok(small.every((r) => r.kind === 'simple'), '16 OKs');
  t.same(batches, [16], '16 SETs of one pipeline: one engine write');
  batches.length = 0;
  // 6 values of 100 KiB: batches of at most WRITE_BATCH_BYTES_MAX; one value over it goes alone.
  const big = Buffer.alloc(100 * 1024, 0x62);
  const huge = Buffer.alloc(WRITE_BATCH_BYTES_MAX + 1, 0x68);
  await Promise.all([
    ...Array.from({ length: 6 }, (_, i) => SET(ctx, [b('SET'), b(`big${i}`), big])),
    SET(ctx, [b('SET'), b('huge'), huge]),
  ]);
  t.same(batches, [2, 2, 2], 'split into batches under the byte cap');
  t.equal(puts, 1, 'the value over the cap is its own engine put');
  for (let i = 0; i < 16; i++) t.equal(await fx.run('GET', `p${i}`), `v${i}`);
  t.equal(((await fx.runReply('GET', 'huge')) as { value: Buffer }).value.length, huge.length);
  t.equal(await fx.ks.dbsize(), 16 + 6 + 1);
});
