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
import { BATCH_PUTS_COMMIT_NOW, ENGINE_DIR_NAME, Keyspace, VALUE_VIEW_MAX_BYTES, WRITE_BATCH_BYTES_MAX } from '../../src/server/keyspace.js';
import { stringCommands } from '../../src/server/commands/strings.js';
import type { Reply } from '../../src/resp/reply.js';
import type { KVEngine } from '../../src/storage/types.js';
import { openFixture, testClient } from './keyspace_fixture.js';
import type { ServerContext } from '../../src/server/types.js';
import { Config } from '../../src/config/config.js';
import { RequestParser } from '../../src/resp/parser.js';
import { DEFAULT_PARSER_LIMITS } from '../../src/resp/parser-limits.js';
import { CommandTable } from '../../src/server/command_table.js';
import { AsyncCommand, Dispatcher } from '../../src/server/dispatcher.js';
import { DeferredReply } from '../../src/server/deferred_reply.js';
import { RingkvServer } from '../../src/server/server.js';
import { Slowlog } from '../../src/server/slowlog.js';
import { ServerStats } from '../../src/server/stats.js';
import { RawClient } from './server_harness.js';

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

/** A keyspace on the real engine whose writes wait until `release()` (and then fail while `fail`). */
async function gatedKeyspace(t: { teardown(fn: () => unknown): void }, fx: Awaited<ReturnType<typeof openFixture>>) {
  await fx.ks.close();
  const real = await openEngine({ dir: path.join(fx.dir, ENGINE_DIR_NAME) });
  const gate = { releases: [] as (() => void)[], fail: false, writes: 0 };
  const held = (p: Promise<void>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      gate.writes++;
      gate.releases.push(() => (gate.fail ? reject(new Error('disk on fire')) : p.then(resolve, reject)));
    });
  const gated = delegating(real, { put: (key, value, options) => held(real.put(key, value, options)), write: (ops) => held(real.write(ops)) });
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => {}, engine: gated });
  t.teardown(() => fx.ks.close());
  const release = (): void => {
    for (const r of gate.releases.splice(0)) r();
  };
  return { gate, release };
}

t.test('raw plain SETs of one batch share one DeferredReply, settled by the engine write', async (t) => {
  const fx = await openFixture(t);
  const { gate, release } = await gatedKeyspace(t, fx);
  const d = new Dispatcher({ table: new CommandTable(stringCommands), stats: new ServerStats(), slowlog: new Slowlog(), log: () => undefined });
  const config = Config.fromOverrides([]);
  const ctx = { client: testClient(), server: { config, keyspace: fx.ks, now: fx.clock.now } as unknown as ServerContext };
  const parser = new RequestParser(DEFAULT_PARSER_LIMITS);
  // The dispatcher looks a raw name up once it has seen it as a Buffer (its short-name cache).
  d.resolve([b('SET'), b('x'), b('y')]);
  const start = (text: string) => {
    parser.feed(b(text));
    const raw = parser.nextRaw();
    if (raw === undefined) throw new Error('no raw command');
    const spec = d.rawSpec(ctx, raw);
    if (spec === undefined) throw new Error('not raw-handled');
    return d.startRaw(ctx, spec, raw);
  };
  const one = start('*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n');
  const two = start('*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$2\r\nv2\r\n');
  if (!(one instanceof AsyncCommand) || !(two instanceof AsyncCommand)) throw new Error('a SET is async');
  t.ok(one.reply instanceof DeferredReply, 'a DeferredReply, not a promise');
  t.equal(two.reply, one.reply, 'the SETs of one synchronous stretch share it');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(gate.writes, 1, 'one engine write for both');
  const got: (Reply | undefined)[] = [];
  (one.reply as DeferredReply).listen({ replySettled: (_t, r) => got.push(r) }, undefined);
  t.same(got, [], 'no reply while the write is held');
  release();
  await new Promise((r) => setTimeout(r, 20));
  t.same(got, [OK_REPLY], 'OK once it is stored');
  const three = start('*3\r\n$3\r\nSET\r\n$2\r\nk3\r\n$2\r\nv3\r\n');
  if (!(three instanceof AsyncCommand)) throw new Error('a SET is async');
  t.not(three.reply, one.reply, 'a later batch has its own');
  gate.fail = true;
  await new Promise((r) => setTimeout(r, 20));
  release();
  await t.rejects((three.reply as DeferredReply).promise(), /disk on fire/, 'a failed write rejects it (the connection answers Dispatcher.failure)');
  t.equal(fx.ks.lockedKeys, 0, 'key locks released');
});

const OK_REPLY: Reply = { kind: 'simple', value: 'OK' };

t.test('over a connection: raw SETs reply in order once stored; a failed write answers each SET of its batch with its error', async (t) => {
  const fx = await openFixture(t);
  const { release, gate } = await gatedKeyspace(t, fx);
  const logs: string[] = [];
  const server = new RingkvServer({ config: Config.fromOverrides([['port', '0'], ['bind', '127.0.0.1']]), keyspace: fx.ks, log: (level, msg) => logs.push(`${level} ${msg}`) });
  const port = await server.listen();
  t.teardown(() => server.close());
  const c = await RawClient.connect(t, port);
  const cmd = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  // Warm the name cache (the raw path looks up names seen before), answered at once.
  c.send(cmd('SET', 'warm', 'w'));
  await new Promise((r) => setTimeout(r, 30));
  release();
  await c.until((s) => s === '+OK\r\n');
  c.received = Buffer.alloc(0);
  c.send(cmd('SET', 'a', '1') + cmd('SET', 'b', '2') + cmd('GET', 'a') + cmd('SET', 'a', '3') + cmd('GET', 'a'));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(c.received.length, 0, 'nothing answered while the writes are held');
  for (let i = 0; i < 5 && c.received.toString() !== '+OK\r\n+OK\r\n$1\r\n1\r\n+OK\r\n$1\r\n3\r\n'; i++) {
    release();
    await new Promise((r) => setTimeout(r, 30));
  }
  t.equal(c.received.toString(), '+OK\r\n+OK\r\n$1\r\n1\r\n+OK\r\n$1\r\n3\r\n', 'in request order, each key in order');
  c.received = Buffer.alloc(0);
  gate.fail = true;
  c.send(cmd('SET', 'c', '1') + cmd('SET', 'd', '2') + cmd('PING'));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(c.received.length, 0, 'nothing answered before the failed write settled');
  release();
  const text = await c.until((s) => s.endsWith('+PONG\r\n'));
  t.equal(text, '-ERR disk on fire\r\n-ERR disk on fire\r\n+PONG\r\n', 'each SET of the failed batch gets the error, then the next command runs');
  t.ok(logs.some((l) => l.includes('command set failed')), 'the failure is logged');
  t.notOk(c.closed, 'the connection stays open');
  gate.fail = false;
  c.received = Buffer.alloc(0);
  c.send(cmd('SET', 'c', '5') + cmd('GET', 'c'));
  await new Promise((r) => setTimeout(r, 30));
  release();
  t.equal(await c.until((s) => s.endsWith('5\r\n')), '+OK\r\n$1\r\n5\r\n', 'the key takes writes again (its lock was released)');
});

t.test('plain SETs of separate reads in one event-loop phase share a batch; a pipeline commits at the end of its read', async (t) => {
  const fx = await openFixture(t);
  await fx.ks.close();
  const real = await openEngine({ dir: path.join(fx.dir, ENGINE_DIR_NAME) });
  const batches: number[] = [];
  const counting = delegating(real, {
    put: (key, value, options) => real.put(key, value, options),
    write: (ops) => {
      batches.push(ops.length);
      return real.write(ops);
    },
  });
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => {}, engine: counting });
  const ctx = { client: testClient(), server: { config: fx.config, keyspace: fx.ks, now: fx.clock.now } as ServerContext };
  const microtasks = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await null;
  };
  // Five callbacks of one check phase, one SET each (as five clients' reads of one poll phase):
  // microtasks run between them, and still one engine write.
  const replies = await new Promise<Reply[]>((resolve) => {
    const out: Promise<Reply>[] = [];
    for (let i = 0; i < 5; i++) {
      setImmediate(() => {
        out.push(Promise.resolve(SET(ctx, [b('SET'), b(`r${i}`), b('v')])));
        if (out.length === 5) resolve(Promise.all(out));
      });
    }
  });
  t.ok(replies.every((r) => r.kind === 'simple'), '5 OKs');
  t.same(batches, [5], 'one engine write for the five reads');
  batches.length = 0;
  // A read of fewer than BATCH_PUTS_COMMIT_NOW SETs waits for the end of the phase ...
  const few = Array.from({ length: BATCH_PUTS_COMMIT_NOW - 1 }, (_, i) => SET(ctx, [b('SET'), b(`f${i}`), b('v')]));
  await microtasks();
  t.same(batches, [], 'a small batch is not written at the end of its stretch');
  await Promise.all(few);
  t.same(batches, [BATCH_PUTS_COMMIT_NOW - 1], 'written once the phase ended');
  batches.length = 0;
  // ... a pipeline's is written at the end of its stretch.
  const many = Array.from({ length: BATCH_PUTS_COMMIT_NOW }, (_, i) => SET(ctx, [b('SET'), b(`m${i}`), b('v')]));
  await microtasks();
  t.same(batches, [BATCH_PUTS_COMMIT_NOW], 'a pipelined batch is written at the end of its stretch');
  await Promise.all(many);
  for (const k of ['r0', 'r4', 'f0', `m${BATCH_PUTS_COMMIT_NOW - 1}`]) t.equal(await fx.run('GET', k), 'v');
});
