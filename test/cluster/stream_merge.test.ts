// The receiving side of slot streaming (src/cluster/stream_merge.ts, Keyspace.mergeObjectsBatch):
// a page merged in one batch stores exactly what per-key merges store, a client write to a key
// of the page racing the batch is never lost, and the page pipeline reports pages in order with
// the next fetch overlapping the merge.
import * as path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { mergeStreamPage, pageBytes, pullPages } from '../../src/cluster/stream_merge.js';
import { decodeStreamScanReply, encodeStreamScanReply, StreamScanReplyWriter, type StreamEntry, type StreamScanReply } from '../../src/cluster/stream_codec.js';
import { readStreamChunk } from '../../src/cluster/stream_source.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';
import {
  applyWrite,
  contextOf,
  decodeObject,
  EMPTY_OBJECT,
  encodeObject,
  mergeObjects,
  type VersionedObject,
} from '../../src/coordinator/object.js';
import { sameObject } from '../../src/coordinator/object_same.js';
import { openEngine } from '../../src/storage/engine.js';
import type { KVEngine } from '../../src/storage/types.js';
import { ENGINE_DIR_NAME, Keyspace } from '../../src/server/keyspace.js';
import { dataKey } from '../../src/server/key_layout.js';
import { openFixture } from '../server/keyspace_fixture.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A chain of writes by `actors` (each write supersedes what its actor's replica had seen). */
function history(writes: readonly { actor: string; value: string; ms: number }[]): VersionedObject {
  let obj: VersionedObject = EMPTY_OBJECT;
  for (const w of writes) obj = applyWrite(obj, contextOf(obj), w.actor, { value: b(w.value), writtenAtMs: w.ms, expiresAtMs: 0 }, { ...opts() });
  return obj;
}

function opts(): { maxSiblings: number; conflictPolicy: 'siblings'; vclockMaxEntries: number; localActor: string } {
  return { maxSiblings: 100, conflictPolicy: 'siblings', vclockMaxEntries: 50, localActor: 'local.1' };
}

const liveValues = (o: VersionedObject): string[] => o.siblings.filter((s) => s.value !== null).map((s) => (s.value as Buffer).toString('latin1')).sort();

t.test('a page merged in one batch stores what per-key mergeObject stores', async (t) => {
  const batchFx = await openFixture(t);
  const singleFx = await openFixture(t);
  const write = fc.record({ actor: fc.constantFrom('a.1', 'b.1', 'c.1'), value: fc.string({ maxLength: 6 }), ms: fc.integer({ min: 1, max: 1000 }) });
  const keyCase = fc.record({
    key: fc.string({ minLength: 1, maxLength: 4 }),
    local: fc.array(write, { maxLength: 3 }),
    // The incoming copy shares a prefix of the local history (a common ancestor) and diverges.
    shared: fc.integer({ min: 0, max: 3 }),
    incoming: fc.array(write, { minLength: 1, maxLength: 3 }),
  });
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(keyCase, { minLength: 1, maxLength: 20 }), async (cases) => {
      round++;
      const entries: StreamEntry[] = [];
      for (const c of cases) {
        const key = b(`r${round}:${c.key}`);
        const local = history(c.local);
        const incoming = history([...c.local.slice(0, c.shared), ...c.incoming]);
        if (local.siblings.length > 0 || local.clock.size > 0) {
          await batchFx.ks.mergeObject(key, local);
          await singleFx.ks.mergeObject(key, local);
        }
        entries.push({ key, object: encodeObject(incoming) });
      }
      await mergeStreamPage(batchFx.ks, entries);
      for (const e of entries) await singleFx.ks.mergeObject(e.key, decodeObject(e.object));
      for (const e of entries) {
        const got = await batchFx.ks.readObject(e.key);
        const want = await singleFx.ks.readObject(e.key);
        if (!encodeObject(got).equals(encodeObject(want))) throw new Error(`key ${e.key.toString('latin1')}: batch ${JSON.stringify(liveValues(got))} vs single ${JSON.stringify(liveValues(want))}`);
      }
      t.equal(batchFx.ks.lockedKeys, 0);
    }),
    { numRuns: 60 },
  );
  t.equal(await batchFx.ks.dbsize(), await singleFx.ks.dbsize(), 'live key counts agree');
});

t.test('a page merged again changes nothing (a resumed chunk is not rewritten)', async (t) => {
  const fx = await openFixture(t);
  const entries: StreamEntry[] = ['x', 'y', 'z'].map((k) => ({ key: b(k), object: encodeObject(history([{ actor: 'a.1', value: k, ms: 5 }])) }));
  t.equal(await fx.ks.mergeObjectsBatch(entries.map((e) => ({ key: e.key, object: decodeObject(e.object) }))), 3, 'three keys written');
  t.equal(await fx.ks.mergeObjectsBatch(entries.map((e) => ({ key: e.key, object: decodeObject(e.object) }))), 0, 'nothing rewritten the second time');
  t.same(await fx.run('GET', 'y'), 'y');
  // Two objects for one key in one batch are merged together (concurrent: both kept).
  const one = history([{ actor: 'a.1', value: 'one', ms: 1 }]);
  const two = history([{ actor: 'b.1', value: 'two', ms: 2 }]);
  await fx.ks.mergeObjectsBatch([{ key: b('d'), object: one }, { key: b('d'), object: two }]);
  t.same(liveValues(await fx.ks.readObject(b('d'))), ['one', 'two']);
  t.same(liveValues(mergeObjects(one, two, opts())), ['one', 'two'], 'as mergeObjects of the two');
});

t.test('bytes as received are stored as they are only when the merge left the object unchanged', async (t) => {
  const fx = await openFixture(t);
  const incoming = history([{ actor: 'src.1', value: 'streamed', ms: 7 }]);
  // The received buffer itself is what the engine stores (no encoding of the object again).
  const received = Buffer.from(encodeObject(incoming));
  await fx.ks.mergeObjectsBatch([{ key: b('new'), object: decodeObject(received), encoded: received }]);
  const stored = await fx.ks.engine.get(dataKey(b('new')));
  t.ok(stored !== undefined && stored.equals(received), 'absent key: the received encoding is what is stored');
  // Present with another version: the merge changes the object, so it is encoded afresh.
  await fx.ks.writeObject(b('old'), { value: b('local'), expiresAtMs: 0 });
  const wrong = Buffer.from('not this');
  await fx.ks.mergeObjectsBatch([{ key: b('old'), object: incoming, encoded: wrong }]);
  t.same(liveValues(await fx.ks.readObject(b('old'))), ['local', 'streamed'], 'a changed object is re-encoded, not the sent bytes');

  const other = history([{ actor: 'b.1', value: 'x', ms: 1 }]);
  t.ok(sameObject(incoming, incoming));
  t.ok(sameObject(incoming, mergeObjects(EMPTY_OBJECT, incoming, opts())), 'a merge into nothing leaves the object as it came');
  t.notOk(sameObject(incoming, mergeObjects(other, incoming, opts())), 'a merge with a concurrent version does not');
  t.notOk(sameObject(incoming, { ...incoming, clock: new Map([['src.1', 2]]) }), 'a different clock counter');
  t.notOk(sameObject(incoming, { ...incoming, clockTimesMs: new Map([['src.1', 1]]) }), 'different clock times');
  t.notOk(sameObject(incoming, decodeObject(encodeObject(incoming))), 'equal but rebuilt siblings count as different (safe: only costs an encode)');
});

/** The fixture's keyspace reopened on its engine with every batch write held until `open()`. */
async function gatedKeyspace(t: { teardown(fn: () => unknown): void }) {
  const fx = await openFixture(t);
  await fx.ks.close();
  const real = await openEngine({ dir: path.join(fx.dir, ENGINE_DIR_NAME) });
  const held: (() => void)[] = [];
  let holding = false;
  let batchWrites = 0;
  const engine = new Proxy(real, {
    get(target, prop) {
      if (prop === 'write')
        return (ops: Parameters<KVEngine['write']>[0]) => {
          batchWrites++;
          if (!holding) return target.write(ops);
          return new Promise<void>((resolve) => held.push(resolve)).then(() => target.write(ops));
        };
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as KVEngine;
  fx.ks = await Keyspace.open({ dir: fx.dir, config: fx.config, now: fx.clock.now, log: () => {}, engine });
  return {
    fx,
    hold: () => (holding = true),
    open: () => {
      holding = false;
      for (const r of held.splice(0)) r();
    },
    batchWrites: () => batchWrites,
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

t.test('a client write racing a page merge is not lost, whichever comes first', async (t) => {
  for (const clientFirst of [false, true]) {
    const g = await gatedKeyspace(t);
    const ks = g.fx.ks;
    // Local copy: v0 written through this node; the source streams a concurrent write v-src.
    await ks.writeObject(b('k'), { value: b('v0'), expiresAtMs: 0 });
    const streamed = history([{ actor: 'src.1', value: 'v-src', ms: 3 }]);
    const page = [{ key: b('a'), object: history([{ actor: 'src.1', value: 'va', ms: 3 }]) }, { key: b('k'), object: streamed }];
    let merged = false;
    let written = false;
    let batch: Promise<unknown>;
    let client: Promise<unknown>;
    if (clientFirst) {
      // The page arrives while a client's read-modify-write of k holds k's lock (between its
      // read and its write): the batch waits for it and merges into what the client stored.
      let started: Promise<unknown> | undefined;
      client = ks
        .mutate(b('k'), () => {
          started = ks.mergeObjectsBatch(page).then(() => (merged = true));
          return { result: undefined, write: { value: b('v-client'), expiresAtMs: 0 } };
        })
        .then(() => (written = true));
      await client;
      batch = started as Promise<unknown>;
    } else {
      g.hold(); // the batch's engine write is in flight ...
      batch = ks.mergeObjectsBatch(page).then(() => (merged = true));
      await tick();
      t.equal(g.batchWrites(), 1, 'the batch issued its one engine write');
      client = ks.writeObject(b('k'), { value: b('v-client'), expiresAtMs: 0 }).then(() => (written = true));
      await tick();
      t.notOk(written, '... and a client write to a key of the page waits for it');
      g.open();
    }
    await Promise.all([batch, client]);
    t.ok(merged && written);
    const values = liveValues(await ks.readObject(b('k')));
    t.ok(values.includes('v-client'), `client write kept (client first: ${clientFirst}): ${JSON.stringify(values)}`);
    if (clientFirst) t.same(values, ['v-client', 'v-src'], 'the streamed concurrent write kept beside it');
    else t.same(values, ['v-client'], 'the client write after the merge supersedes what the merge stored');
    t.same(liveValues(await ks.readObject(b('a'))), ['va']);
    t.equal(ks.lockedKeys, 0);
  }
});

t.test('random interleavings of client SETs and page merges lose no acknowledged client write', async (t) => {
  const fx = await openFixture(t);
  const ks = fx.ks;
  const keys = Array.from({ length: 8 }, (_, i) => b(`key${i}`));
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ page: fc.boolean(), key: fc.integer({ min: 0, max: 7 }), delay: fc.integer({ min: 0, max: 2 }) }), { minLength: 4, maxLength: 30 }),
      async (steps) => {
        const lastClient = new Map<number, string>();
        const pending: Promise<unknown>[] = [];
        for (const [i, s] of steps.entries()) {
          if (s.delay > 0) await new Promise((r) => (s.delay === 1 ? queueMicrotask(() => r(undefined)) : setImmediate(r)));
          if (s.page) {
            // A page of four keys from a source actor (concurrent writes the joiner must keep).
            const page = [0, 1, 2, 3].map((d) => {
              const k = (s.key + d) % keys.length;
              return { key: keys[k] as Buffer, object: history([{ actor: `src${i}.1`, value: `s${i}`, ms: i + 1 }]) };
            });
            pending.push(ks.mergeObjectsBatch(page));
          } else {
            const v = `c${i}`;
            lastClient.set(s.key, v);
            pending.push(ks.writeValue(keys[s.key] as Buffer, { value: b(v), expiresAtMs: 0 }));
          }
        }
        await Promise.all(pending);
        for (const [k, v] of lastClient) {
          const values = liveValues(await ks.readObject(keys[k] as Buffer));
          if (!values.includes(v)) throw new Error(`key${k}: last client write ${v} lost, stored ${JSON.stringify(values)}`);
        }
        if (ks.lockedKeys !== 0) throw new Error('locks left held');
      },
    ),
    { numRuns: 80 },
  );
  t.pass('no client write lost');
});

function reply(entries: string[], next: string, done: boolean): StreamScanReply {
  return { done, next: b(next), entries: entries.map((k) => ({ key: b(k), object: b(`obj-${k}`) })) };
}

t.test('pullPages: next page fetched while this one merges, pages reported in order, failures after progress', async (t) => {
  const pages = new Map<string, StreamScanReply>([
    ['', reply(['a', 'b'], 'p1', false)],
    ['p1', reply(['c'], 'p2', false)],
    ['p2', reply(['d', 'e'], '', true)],
  ]);
  const events: string[] = [];
  let releaseMerge: (() => void) | undefined;
  const run = pullPages({
    from: b(''),
    closed: () => false,
    beforeFetch: async () => undefined,
    fetch: async (from) => {
      events.push(`fetch ${from.toString()}`);
      const r = pages.get(from.toString());
      if (r === undefined) throw new Error(`no page at ${from.toString()}`);
      return r;
    },
    merge: async (entries) => {
      events.push(`merge ${entries.map((e) => e.key.toString()).join('')}`);
      await new Promise<void>((r) => (releaseMerge = r));
    },
    onPage: (r, bytes) => events.push(`page ${r.next.toString()} ${bytes}`),
  });
  for (let i = 0; i < 3; i++) {
    while (releaseMerge === undefined) await tick();
    const r = releaseMerge;
    releaseMerge = undefined;
    r();
  }
  t.equal(await run, true, 'done');
  // Each merge is held until the test releases it, so a fetch listed before its page's report
  // went out while the page before it was still being merged.
  t.same(events, ['fetch ', 'merge ab', 'fetch p1', 'page p1 12', 'merge c', 'fetch p2', 'page p2 6', 'merge de', 'page  12']);
  t.equal(pageBytes(reply(['ab'], '', true).entries), 2 + 6);

  // A fetch that fails: the page before it is merged and reported first, then the error.
  const seen: string[] = [];
  const failing = pullPages({
    from: b(''),
    closed: () => false,
    beforeFetch: async () => undefined,
    fetch: async (from) => {
      if (from.toString() === 'p1') throw new Error('source gone');
      return pages.get(from.toString()) as StreamScanReply;
    },
    merge: async () => undefined,
    onPage: (r) => seen.push(r.next.toString()),
  });
  await t.rejects(failing, /source gone/);
  t.same(seen, ['p1'], 'the first page is stored and its position reported before the failure surfaces');

  // Closed: no further page is asked for, and the pull says not done.
  let fetches = 0;
  let closed = false;
  const stopped = await pullPages({
    from: b(''),
    closed: () => closed,
    beforeFetch: async () => undefined,
    fetch: async (from) => {
      fetches++;
      return pages.get(from.toString()) as StreamScanReply;
    },
    merge: async () => {
      closed = true;
    },
    onPage: () => undefined,
  });
  t.equal(stopped, false);
  t.equal(fetches, 2, 'the page already in flight is the last one asked for');
});

t.test('source: the reply written while scanning decodes as the encoded reply; a range is read whole, in order, once', async (t) => {
  const entry = fc.record({ key: fc.uint8Array({ maxLength: 40 }), object: fc.uint8Array({ maxLength: 300 }) });
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 30 }), fc.boolean(), fc.uint8Array({ maxLength: 60 }), (es, done, next) => {
      const entries = es.map((e) => ({ key: Buffer.from(e.key), object: Buffer.from(e.object) }));
      const w = new StreamScanReplyWriter(64); // small on purpose: the writer grows
      for (const e of entries) w.add(e.key, e.object);
      const payload = w.finish(done, Buffer.from(next));
      t.ok(payload.equals(encodeStreamScanReply({ done, next: Buffer.from(next), entries })), 'same bytes as encodeStreamScanReply');
    }),
    { numRuns: 100 },
  );
  const fx = await openFixture(t);
  const keys = Array.from({ length: 300 }, (_, i) => `src:${i}`);
  for (const k of keys) await fx.ks.writeObject(b(k), { value: Buffer.alloc(100, 0x61), expiresAtMs: 0 });
  const seen: string[] = [];
  let from: Buffer = Buffer.alloc(0);
  let pages = 0;
  for (;;) {
    const reply = decodeStreamScanReply(await readStreamChunk(fx.ks, { firstSlot: 0, lastSlot: SLOT_COUNT - 1, maxBytes: 2000, from }));
    pages++;
    for (const e of reply.entries) {
      seen.push(e.key.toString('latin1'));
      t.ok(e.object.equals((await fx.ks.engine.get(dataKey(e.key))) as Buffer), 'the stored encoding, as stored');
    }
    if (reply.done) break;
    from = reply.next;
  }
  t.same([...seen].sort(), [...keys].sort(), 'every key once');
  t.ok(pages > 10, `paged by maxBytes (${pages} pages)`);
});
