// The fallback's durable hint store (src/cluster/hint_store.ts) on the real storage engine in a
// temp dir: hints are keyed by target (one range per target), merged per key with version
// vectors, counted exactly (also after a reopen), and removeIfUnchanged deletes exactly the hints
// that were not overwritten since they were read. Also the record layout and the HINT_BATCH /
// HINT_QUERY wire formats with their caps.
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import { HintStore } from '../../src/cluster/hint_store.js';
import { applyWrite, DEFAULT_WRITE_OPTIONS, EMPTY_OBJECT, contextOf, liveValues, type VersionedObject } from '../../src/coordinator/object.js';
import { decodeObject } from '../../src/coordinator/object_codec.js';
import { encodeHintRecord, hintKey, hintTargetBounds, parseHintKey, parseHintRecord, prefixSuccessor, HintFormatError } from '../../src/cluster/hint_record.js';
import {
  decodeHintBatch,
  decodeHintQuery,
  decodeHintQueryAnswer,
  decodeHintStatuses,
  encodeHintBatch,
  encodeHintQuery,
  encodeHintQueryAnswer,
  encodeHintStatuses,
  MAX_HINT_BATCH_KEYS,
} from '../../src/cluster/handoff_codec.js';
import { ClusterError } from '../../src/cluster/errors.js';
import { keySlot } from '../../src/coordinator/slot.js';

const OPTS = { ...DEFAULT_WRITE_OPTIONS, localActor: 'coord.1' };

function write(prev: VersionedObject, actor: string, value: string, at: number): VersionedObject {
  return applyWrite(prev, contextOf(prev), actor, { value: Buffer.from(value), writtenAtMs: at, expiresAtMs: 0 }, { ...OPTS, localActor: actor });
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-hints-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

const values = (o: VersionedObject): string[] => liveValues(o, 0).map((b) => b.toString()).sort();

t.test('hint keys: one contiguous range per target, in (slot, key) order', async (t) => {
  const k = hintKey('node-a', Buffer.from('user:1'));
  const p = parseHintKey(k);
  t.equal(p.target, 'node-a');
  t.equal(p.slot, keySlot(Buffer.from('user:1')));
  t.equal(p.userKey.toString(), 'user:1');
  const a = hintTargetBounds('node-a');
  const ab = hintTargetBounds('node-ab');
  t.ok(Buffer.compare(k, a.gte) >= 0 && Buffer.compare(k, a.lt) < 0, 'inside its target range');
  t.ok(Buffer.compare(hintKey('node-ab', Buffer.from('x')), a.lt) >= 0 || Buffer.compare(hintKey('node-ab', Buffer.from('x')), a.gte) < 0, 'a longer id that shares the prefix is outside');
  t.ok(Buffer.compare(k, ab.gte) < 0 || Buffer.compare(k, ab.lt) >= 0);
  t.same([...prefixSuccessor(Buffer.from([1, 0xff, 0xff]))], [2]);
  t.throws(() => parseHintKey(Buffer.from([0x01, 3])), HintFormatError);
  t.throws(() => parseHintKey(Buffer.from([0x02, 10, 65])), HintFormatError, 'truncated');
  t.throws(() => parseHintRecord(Buffer.from([1, 2, 3])), HintFormatError);
  t.throws(() => parseHintRecord(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0])), HintFormatError, 'unknown version');
  const r = parseHintRecord(encodeHintRecord(1234, Buffer.from('obj')));
  t.equal(r.writtenAtMs, 1234);
  t.equal(r.objectBytes.toString(), 'obj');
});

t.test('HintStore: add merges per key, counts per target, survives a reopen', async (t) => {
  const dir = await tempDir(t);
  let nowMs = 1000;
  const open = async () => {
    const engine = await openEngine({ dir });
    const store = await HintStore.open(engine, { now: () => nowMs, log: () => undefined, writeOptions: () => OPTS });
    return { engine, store };
  };
  let { engine, store } = await open();
  const v1 = write(EMPTY_OBJECT, 'a.1', 'one', 1);
  await store.add('target-1', Buffer.from('k1'), v1);
  await store.add('target-1', Buffer.from('k2'), write(EMPTY_OBJECT, 'a.1', 'two', 1));
  await store.add('target-2', Buffer.from('k1'), v1);
  t.same(store.pending('target-1').count, 2);
  t.same(store.pending('target-2').count, 1);
  t.same(store.targets().sort(), ['target-1', 'target-2']);
  // A concurrent write from another coordinator for the same key and target: both survive.
  nowMs = 2000;
  const concurrent = write(EMPTY_OBJECT, 'b.1', 'other', 2);
  await store.add('target-1', Buffer.from('k1'), concurrent);
  t.equal(store.pending('target-1').count, 2, 'merged into the existing record, not a new one');
  const page = await store.read('target-1', 10);
  t.same(page.map((h) => h.key.toString()), ['k1', 'k2'].sort((a, b) => keySlot(Buffer.from(a)) - keySlot(Buffer.from(b)) || a.localeCompare(b)));
  const k1 = page.find((h) => h.key.toString() === 'k1')!;
  t.same(values(decodeObject(k1.objectBytes)), ['one', 'other'], 'version vectors: siblings, nothing lost');
  t.equal(k1.writtenAtMs, 2000, "the record's time is its last write");
  const bytesBefore = store.totals().bytes;
  let sum = 0;
  for await (const e of engine.range({ gte: Buffer.from([2]), lt: Buffer.from([3]) })) sum += e.key.length + e.value.length;
  t.equal(bytesBefore, sum, 'hints_bytes equals the stored bytes');

  await engine.close();
  ({ engine, store } = await open());
  t.teardown(() => engine.close());
  t.same(store.totals(), { count: 3, bytes: bytesBefore }, 'counts and bytes rebuilt by the scan at open');
  t.same(await store.targetsFor(Buffer.from('k1')), ['target-1', 'target-2']);
  t.same(await store.targetsFor(Buffer.from('nope')), []);
});

t.test('HintStore: removeIfUnchanged keeps a hint overwritten after it was read', async (t) => {
  const dir = await tempDir(t);
  const engine = await openEngine({ dir });
  t.teardown(() => engine.close());
  let nowMs = 1;
  const store = await HintStore.open(engine, { now: () => nowMs++, log: () => undefined, writeOptions: () => OPTS });
  const o1 = write(EMPTY_OBJECT, 'a.1', 'v1', 1);
  for (const k of ['a', 'b', 'c']) await store.add('T', Buffer.from(k), o1);
  const sent = await store.read('T', 10);
  t.equal(sent.length, 3);
  // While the batch is in flight, a newer write for 'b' arrives as a hint.
  const o2 = write(o1, 'a.1', 'v2', 2);
  await store.add('T', Buffer.from('b'), o2);
  const removed = await store.removeIfUnchanged(sent);
  t.same(removed.map((h) => h.key.toString()).sort(), ['a', 'c'], 'exactly the unchanged hints were deleted');
  t.equal(store.pending('T').count, 1);
  const left = await store.read('T', 10);
  t.same(values(decodeObject(left[0]!.objectBytes)), ['v2'], 'the newer write is still there for the next batch');
  t.same(await store.removeIfUnchanged(sent), [], 'a second removal of the same hints is a no-op');
  t.same(await store.removeIfUnchanged(left), left);
  t.same(store.totals(), { count: 0, bytes: 0 });
  t.same(store.targets(), []);
});

t.test('HintStore: read pages through a target in order, never into another target', async (t) => {
  const dir = await tempDir(t);
  const engine = await openEngine({ dir });
  t.teardown(() => engine.close());
  const store = await HintStore.open(engine, { now: () => 5, log: () => undefined, writeOptions: () => OPTS });
  const o = write(EMPTY_OBJECT, 'a.1', 'x', 1);
  for (let i = 0; i < 25; i++) await store.add('T', Buffer.from(`k${i}`), o);
  for (let i = 0; i < 5; i++) await store.add('T2', Buffer.from(`k${i}`), o);
  for (let i = 0; i < 5; i++) await store.add('S', Buffer.from(`k${i}`), o);
  const seen: string[] = [];
  let after: Buffer | undefined;
  for (;;) {
    const page = await store.read('T', 7, after);
    if (page.length === 0) break;
    t.ok(page.every((h) => h.target === 'T' && parseHintKey(h.engineKey).target === 'T'));
    seen.push(...page.map((h) => h.key.toString()));
    after = page[page.length - 1]!.engineKey;
  }
  t.equal(seen.length, 25);
  t.equal(new Set(seen).size, 25, 'each hint once');
});

t.test('HintStore: an unreadable record is dropped at open and counted', async (t) => {
  const dir = await tempDir(t);
  const engine = await openEngine({ dir });
  t.teardown(() => engine.close());
  await engine.put(hintKey('T', Buffer.from('bad')), Buffer.from([7, 7]));
  await engine.put(hintKey('T', Buffer.from('good')), encodeHintRecord(1, Buffer.from('x')));
  const store = await HintStore.open(engine, { now: () => 5, log: () => undefined, writeOptions: () => OPTS });
  t.equal(store.corruptDropped, 1);
  t.equal(store.pending('T').count, 1);
  t.equal(await engine.get(hintKey('T', Buffer.from('bad'))), undefined, 'deleted');
});

t.test('handoff wire formats round-trip and check their caps', async (t) => {
  const items = [
    { key: Buffer.from('a'), objectBytes: Buffer.from('obj-a') },
    { key: Buffer.alloc(0), objectBytes: Buffer.alloc(0) },
  ];
  const d = decodeHintBatch(encodeHintBatch('node-x', items));
  t.equal(d.target, 'node-x');
  t.same(d.items.map((i) => [i.key.toString(), i.objectBytes.toString()]), [['a', 'obj-a'], ['', '']]);
  t.same(decodeHintStatuses(encodeHintStatuses([0, 1, 0])), [0, 1, 0]);
  t.same(decodeHintQuery(encodeHintQuery(Buffer.from('k'))).toString(), 'k');
  t.same(decodeHintQueryAnswer(encodeHintQueryAnswer(['a', 'bb'])), ['a', 'bb']);
  // A count over the cap is refused before anything is read for it.
  const huge = Buffer.concat([Buffer.from([1, 65]), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
  t.throws(() => decodeHintBatch(huge), ClusterError);
  const tooMany = Buffer.alloc(4);
  tooMany.writeUInt32BE(MAX_HINT_BATCH_KEYS + 1);
  t.throws(() => decodeHintStatuses(tooMany), ClusterError);
  // A length past the bytes that remain is refused.
  const truncated = encodeHintBatch('n', items).subarray(0, 12);
  t.throws(() => decodeHintBatch(truncated), ClusterError);
  t.throws(() => decodeHintBatch(Buffer.concat([encodeHintBatch('n', items), Buffer.from([0])])), ClusterError, 'trailing bytes');
  t.throws(() => decodeHintBatch(encodeHintBatch('n', []).fill(0, 0, 1)), ClusterError, 'empty target id');
});
