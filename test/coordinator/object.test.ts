// Table tests of the versioned object: the Dynamo paper's D1..D5 example, the sibling-explosion
// scenario, plain writes, tombstones and expiry, the conflict policies, the sibling cap and
// clock pruning. Algebraic properties live in object.property.test.ts; formats in object_codec.test.ts.
import t from 'tap';
import {
  applyWrite,
  checkObjectInvariants,
  contextOf,
  decodeContext,
  encodeContext,
  EMPTY_OBJECT,
  isDead,
  liveSiblings,
  liveValues,
  mergeObjects,
  objectExpiresAtMs,
  type Context,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';

const OPTS: WriteOptions = { maxSiblings: 25, conflictPolicy: 'siblings', vclockMaxEntries: 50 };
const b = (s: string): Buffer => Buffer.from(s);
const strs = (xs: Buffer[]): string[] => xs.map((x) => x.toString());

function write(
  obj: VersionedObject,
  ctx: Context,
  actor: string,
  value: string | null,
  at: number,
  opts: WriteOptions = OPTS,
  expiresAtMs = 0,
): VersionedObject {
  const out = applyWrite(obj, ctx, actor, { value: value === null ? null : b(value), writtenAtMs: at, expiresAtMs }, opts);
  const bad = checkObjectInvariants(out);
  if (bad !== null) throw new Error(`invariant broken: ${bad}`);
  return out;
}
function merge(x: VersionedObject, y: VersionedObject, opts: WriteOptions = OPTS): VersionedObject {
  const out = mergeObjects(x, y, opts);
  const bad = checkObjectInvariants(out);
  if (bad !== null) throw new Error(`invariant broken: ${bad}`);
  return out;
}
const dots = (o: VersionedObject): string[] => o.siblings.map((s) => `${s.dot.actor}:${s.dot.counter}`);

t.test('Dynamo paper example: D1, D2 by Sx; D3 via Sy, D4 via Sz concurrent; D5 reconciles', async (t) => {
  // Replicas Sx, Sy, Sz each hold their own copy; a write goes through one coordinator, then syncs.
  let sx = write(EMPTY_OBJECT, new Map(), 'Sx', 'D1', 1);
  t.same(dots(sx), ['Sx:1']);
  sx = write(sx, contextOf(sx), 'Sx', 'D2', 2);
  t.same(dots(sx), ['Sx:2'], 'D2 supersedes D1 (its context covered D1)');
  t.same(strs(liveValues(sx, 10)), ['D2']);
  let sy = merge(EMPTY_OBJECT, sx);
  let sz = merge(EMPTY_OBJECT, sx);
  // Two clients read D2 ([Sx,2]) and write through different coordinators.
  const ctxD2 = contextOf(sx);
  sy = write(sy, ctxD2, 'Sy', 'D3', 3);
  sz = write(sz, ctxD2, 'Sz', 'D4', 4);
  t.same([...sy.clock], [['Sx', 2], ['Sy', 1]], 'D3 clock [Sx,2],[Sy,1]');
  t.same([...sz.clock], [['Sx', 2], ['Sz', 1]], 'D4 clock [Sx,2],[Sz,1]');
  // Replica sync: D3 and D4 are concurrent, both survive.
  const synced = merge(sy, sz);
  t.same(strs(liveValues(synced, 10)), ['D3', 'D4'], 'two siblings');
  t.same([...synced.clock], [['Sx', 2], ['Sy', 1], ['Sz', 1]]);
  sx = merge(sx, synced);
  sy = merge(sy, synced);
  sz = merge(sz, synced);
  // A client reads both siblings with their context and writes D5 through Sx.
  const readCtx = decodeContext(encodeContext(contextOf(sy)));
  sx = write(sx, readCtx, 'Sx', 'D5', 5);
  t.same([...sx.clock], [['Sx', 3], ['Sy', 1], ['Sz', 1]], 'D5 clock [Sx,3],[Sy,1],[Sz,1]');
  t.same(strs(liveValues(sx, 10)), ['D5'], 'one value remains at the coordinator');
  sy = merge(sy, sx);
  sz = merge(sz, sy);
  for (const [name, r] of [['Sx', sx], ['Sy', sy], ['Sz', sz]] as const) {
    t.same(strs(liveValues(r, 10)), ['D5'], `one value remains at ${name}`);
  }
});

t.test('sibling explosion: two clients, 100 interleaved read-modify-write cycles via one coordinator', async (t) => {
  let obj = EMPTY_OBJECT;
  let now = 1000;
  let maxSeen = 0;
  for (let i = 0; i < 100; i++) {
    const ctx1 = contextOf(obj); // client 1 reads
    const ctx2 = contextOf(obj); // client 2 reads
    obj = write(obj, ctx1, 'A', `c1-${i}`, now++); // client 1 writes what it read
    obj = write(obj, ctx2, 'A', `c2-${i}`, now++); // client 2 writes what it read
    maxSeen = Math.max(maxSeen, obj.siblings.length);
  }
  t.equal(obj.siblings.length, 2, 'exactly 2 siblings');
  t.equal(maxSeen, 2, 'never more than 2 along the way');
  t.same(strs(liveValues(obj, now)), ['c1-99', 'c2-99'], 'the last write of each client');
  t.same([...obj.clock], [['A', 200]], 'one clock entry: the coordinator');
});

t.test('a plain write (ctx = what the coordinator has) yields exactly one value', async (t) => {
  let obj = EMPTY_OBJECT;
  obj = write(obj, new Map(), 'A', 'x', 1);
  obj = merge(obj, write(EMPTY_OBJECT, new Map(), 'B', 'y', 2)); // a concurrent sibling from B
  t.equal(liveValues(obj, 3).length, 2);
  obj = write(obj, contextOf(obj), 'A', 'z', 3);
  t.same(strs(liveValues(obj, 3)), ['z']);
  t.same(dots(obj), ['A:2']);
});

t.test('a write with an empty context adds a sibling and supersedes nothing', async (t) => {
  let obj = write(EMPTY_OBJECT, new Map(), 'A', 'x', 1);
  obj = write(obj, new Map(), 'A', 'y', 2);
  t.same(strs(liveValues(obj, 2)), ['x', 'y']);
  t.same(dots(obj), ['A:1', 'A:2']);
});

t.test('a context from a client that saw a write this coordinator has not yet seen still supersedes it', async (t) => {
  const a = write(EMPTY_OBJECT, new Map(), 'A', 'from-A', 1);
  const readFromA = contextOf(a); // client read at A
  // Coordinator B has not seen A:1; the client writes there with A's context.
  let bObj = write(EMPTY_OBJECT, readFromA, 'B', 'from-B', 2);
  t.same(strs(liveValues(bObj, 2)), ['from-B']);
  bObj = merge(bObj, a); // A:1 arrives later: it is covered, so dropped
  t.same(strs(liveValues(bObj, 2)), ['from-B']);
  t.same(strs(liveValues(merge(a, bObj), 2)), ['from-B'], 'and the same on A');
});

t.test('counters never go back: minting uses max(clock, ctx) + 1', async (t) => {
  const ctx = new Map([['A', 7]]);
  const obj = write(EMPTY_OBJECT, ctx, 'A', 'v', 1);
  t.same(dots(obj), ['A:8']);
});

t.test('minCounter: counters that survive reaping a dead object (KV679)', async (t) => {
  // Replica r1 deletes; r2 keeps the tombstone; r1 reaps the dead object after gc grace.
  let r1 = write(EMPTY_OBJECT, new Map(), 'A', 'v', 1);
  r1 = write(r1, contextOf(r1), 'A', null, 2);
  const r2 = merge(EMPTY_OBJECT, r1);
  t.same([...r2.clock], [['A', 2]]);
  // Without a floor the next write after reaping mints A:1, which r2 has "seen": lost on sync.
  const naive = write(EMPTY_OBJECT, new Map(), 'A', 'new', 1000);
  t.same(dots(naive), ['A:1']);
  t.same(liveValues(merge(r2, naive), 1000), [], 'the hazard: the new write vanishes');
  // With minCounter = writtenAtMs the new dot is above every old one.
  const floored = applyWrite(EMPTY_OBJECT, new Map(), 'A', { value: b('new'), writtenAtMs: 1000, expiresAtMs: 0, minCounter: 1000 }, OPTS);
  t.same(dots(floored), ['A:1000']);
  t.same(strs(liveValues(merge(r2, floored), 1000)), ['new'], 'survives the sync');
  t.same(strs(liveValues(merge(floored, r2), 1000)), ['new']);
  // The floor never lowers a counter.
  const again = applyWrite(floored, contextOf(floored), 'A', { value: b('newer'), writtenAtMs: 900, expiresAtMs: 0, minCounter: 900 }, OPTS);
  t.same(dots(again), ['A:1001']);
});

t.test('tombstones and liveness', async (t) => {
  let obj = write(EMPTY_OBJECT, new Map(), 'A', 'v', 1);
  t.notOk(isDead(obj, 1));
  obj = write(obj, contextOf(obj), 'A', null, 2); // DEL
  t.same(liveValues(obj, 2), [], 'a deleted key reads as nothing');
  t.ok(isDead(obj, 2));
  t.equal(obj.siblings.length, 1, 'the tombstone is kept');
  t.equal(obj.siblings[0]?.value, null);
  // A replica that still has v learns of the delete and drops v.
  const stale = write(EMPTY_OBJECT, new Map(), 'A', 'v', 1);
  t.same(liveValues(merge(stale, obj), 3), [], 'repair does not resurrect the deleted value');
  // A delete concurrent with a write: the write stays live.
  const concurrentWrite = write(EMPTY_OBJECT, new Map(), 'B', 'w', 3);
  const both = merge(obj, concurrentWrite);
  t.same(strs(liveValues(both, 3)), ['w']);
  t.notOk(isDead(both, 3));
  t.ok(isDead(EMPTY_OBJECT, 0), 'the empty object is dead');
});

t.test('expiry follows Redis: live while now <= expiresAtMs', async (t) => {
  const obj = write(EMPTY_OBJECT, new Map(), 'A', 'v', 100, OPTS, 200);
  t.same(strs(liveValues(obj, 199)), ['v']);
  t.same(strs(liveValues(obj, 200)), ['v'], 'still live at exactly expiresAtMs');
  t.same(liveValues(obj, 201), []);
  t.notOk(isDead(obj, 200));
  t.ok(isDead(obj, 201));
  t.equal(objectExpiresAtMs(obj), 200);
  const two = merge(obj, write(EMPTY_OBJECT, new Map(), 'B', 'w', 150, OPTS, 300));
  t.equal(objectExpiresAtMs(two), 300, 'latest expiry over value siblings');
  t.same(strs(liveValues(two, 250)), ['w']);
  const forever = merge(two, write(EMPTY_OBJECT, new Map(), 'C', 'u', 160, OPTS, 0));
  t.equal(objectExpiresAtMs(forever), 0, 'a sibling without expiry makes the object never expire');
  const tomb = write(EMPTY_OBJECT, new Map(), 'A', null, 1);
  t.equal(objectExpiresAtMs(tomb), 0, 'no value siblings: 0 (already dead)');
  t.equal(objectExpiresAtMs(EMPTY_OBJECT), 0);
});

t.test('live siblings come in a deterministic order: writtenAtMs, then dot', async (t) => {
  const x = write(EMPTY_OBJECT, new Map(), 'B', 'b@5', 5);
  const y = write(EMPTY_OBJECT, new Map(), 'A', 'a@5', 5);
  const z = write(EMPTY_OBJECT, new Map(), 'C', 'c@1', 1);
  const m1 = merge(merge(x, y), z);
  const m2 = merge(z, merge(y, x));
  t.same(strs(liveValues(m1, 9)), ['c@1', 'a@5', 'b@5']);
  t.same(strs(liveValues(m2, 9)), ['c@1', 'a@5', 'b@5']);
  t.same(liveSiblings(m1, 9).map((s) => s.dot.actor), ['C', 'A', 'B']);
});

t.test('max-siblings: the oldest go first, the write just made always stays', async (t) => {
  const cap: WriteOptions = { ...OPTS, maxSiblings: 3 };
  let obj = EMPTY_OBJECT;
  for (let i = 1; i <= 5; i++) obj = write(obj, new Map(), 'A', `v${i}`, i * 10, cap);
  t.same(strs(liveValues(obj, 100)), ['v3', 'v4', 'v5'], 'newest 3 kept');
  t.same([...obj.clock], [['A', 5]], 'dropped dots stay in the clock');
  // A write whose timestamp is older than every sibling (clock skew) is still kept.
  obj = write(obj, new Map(), 'A', 'skewed', 1, cap);
  t.same(strs(liveValues(obj, 100)), ['skewed', 'v4', 'v5']);
  // A replica still holding v1 does not bring it back: the clock covers it.
  const old = write(EMPTY_OBJECT, new Map(), 'A', 'v1', 10, cap);
  t.same(strs(liveValues(merge(obj, old, cap), 100)), ['skewed', 'v4', 'v5']);
  // Merge applies the cap too, keeping the newest by writtenAtMs.
  let other = EMPTY_OBJECT;
  for (const [actor, at] of [['B', 60], ['C', 70]] as const) other = merge(other, write(EMPTY_OBJECT, new Map(), actor, `${actor}${at}`, at, cap), cap);
  const m = merge(obj, other, cap);
  t.same(strs(liveValues(m, 100)), ['v5', 'B60', 'C70']);
  t.same(strs(liveValues(merge(other, obj, cap), 100)), ['v5', 'B60', 'C70'], 'same either way round');
  // max-siblings 1 under the siblings policy keeps just the write.
  const one: WriteOptions = { ...OPTS, maxSiblings: 1 };
  t.same(strs(liveValues(write(obj, new Map(), 'A', 'only', 0, one), 100)), ['only']);
});

t.test('lww: a coordinator write replaces what it holds; sync keeps the newest concurrent write', async (t) => {
  const lww: WriteOptions = { ...OPTS, conflictPolicy: 'lww' };
  let a = write(EMPTY_OBJECT, new Map(), 'A', 'a1', 10, lww);
  a = write(a, new Map(), 'A', 'a2', 5, lww); // even with an empty context and an older clock
  t.same(strs(liveValues(a, 99)), ['a2']);
  const bObj = write(EMPTY_OBJECT, new Map(), 'B', 'b1', 7, lww);
  t.same(strs(liveValues(merge(a, bObj, lww), 99)), ['b1'], 'newest writtenAtMs wins among concurrent');
  t.same(strs(liveValues(merge(bObj, a, lww), 99)), ['b1']);
  // Tie on writtenAtMs: the larger dot wins, on both sides.
  const c = write(EMPTY_OBJECT, new Map(), 'C', 'c1', 7, lww);
  t.same(strs(liveValues(merge(bObj, c, lww), 99)), ['c1']);
  t.same(strs(liveValues(merge(c, bObj, lww), 99)), ['c1']);
  // Causality first: a write that superseded b1 wins over it even with an older timestamp.
  const later = write(bObj, contextOf(bObj), 'B', 'b2', 1, lww);
  t.same(strs(liveValues(merge(later, bObj, lww), 99)), ['b2']);
  t.same(strs(liveValues(merge(bObj, later, lww), 99)), ['b2']);
  // A newer tombstone wins over an older value.
  const del = write(EMPTY_OBJECT, new Map(), 'D', null, 50, lww);
  t.same(liveValues(merge(a, del, lww), 99), []);
});

t.test('clock pruning: oldest entries first, never sibling actors or the writer; false siblings, no lost writes', async (t) => {
  const small: WriteOptions = { ...OPTS, vclockMaxEntries: 2 };
  // Three actors write in turn, each superseding the previous (plain writes).
  let obj = write(EMPTY_OBJECT, new Map(), 'A', 'a', 10, small);
  const stale = obj; // a replica that keeps the old A:1
  obj = write(obj, contextOf(obj), 'B', 'b', 20, small);
  t.same([...obj.clock.keys()], ['A', 'B'], 'two entries fit');
  obj = write(obj, contextOf(obj), 'C', 'c', 30, small);
  t.same([...obj.clock.keys()], ['B', 'C'], 'A, the oldest, was pruned');
  t.same(strs(liveValues(obj, 99)), ['c']);
  // The replica holding A:1 syncs: A:1 is no longer known superseded, so it comes back as a
  // false sibling. Nothing is lost.
  const synced = merge(obj, stale, small);
  t.same(strs(liveValues(synced, 99)), ['a', 'c'], 'false sibling');
  t.equal(checkObjectInvariants(synced), null);
  // Sibling actors are never pruned, even past the limit.
  let wide = EMPTY_OBJECT;
  for (const [i, actor] of ['P', 'Q', 'R', 'S'].entries()) wide = merge(wide, write(EMPTY_OBJECT, new Map(), actor, actor, i, small), small);
  t.same([...wide.clock.keys()], ['P', 'Q', 'R', 'S'], 'all four have live siblings: kept');
  t.equal(wide.siblings.length, 4);
  // The writing actor is never pruned, even when its entry is the oldest.
  const ctx = new Map([['X', 1], ['Y', 1], ['Z', 1]]);
  const w = write(EMPTY_OBJECT, ctx, 'A', 'v', 5, { ...OPTS, vclockMaxEntries: 1 });
  t.same([...w.clock], [['A', 1]]);
  // localActor protects the merging node's own entry.
  const mine = write(EMPTY_OBJECT, new Map(), 'L', 'l', 1, small);
  const superseded = write(mine, contextOf(mine), 'M', 'm', 100);
  const newer = write(superseded, contextOf(superseded), 'N', 'n', 200);
  t.same([...newer.clock.keys()], ['L', 'M', 'N']);
  const kept = mergeObjects(mine, newer, { ...small, localActor: 'L' });
  t.same([...kept.clock], [['L', 1], ['N', 1]], 'local actor entry kept, M (oldest other) pruned');
  t.same(strs(liveValues(kept, 300)), ['n']);
  const dropped = mergeObjects(mine, newer, small);
  t.same([...dropped.clock], [['M', 1], ['N', 1]], 'without localActor, L is the oldest and is pruned');
});
