// Routing (write coordinator, request targets) and read repair: table tests.
import t from 'tap';
import {
  applyWrite,
  contextOf,
  EMPTY_OBJECT,
  liveValues,
  mergeObjects,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';
import { QuorumTally, resolveQuorum } from '../../src/coordinator/quorum.js';
import { needsRepair, reconcile } from '../../src/coordinator/read_repair.js';
import { buildRing, type RingMember } from '../../src/coordinator/ring.js';
import { requestTargets, writeCoordinator } from '../../src/coordinator/route.js';
import { planTargets } from '../../src/coordinator/fsm_env.js';

const OPTS: WriteOptions = { maxSiblings: 25, conflictPolicy: 'siblings', vclockMaxEntries: 50 };
const mem: RingMember[] = Array.from({ length: 6 }, (_, i) => ({ id: `n${i}`, weight: 1, dc: 'dc1', rack: '', state: 'up' }));
const ring = buildRing(mem, { vnodes: 16, n: 3 });
const SLOT = 1234;
const pref = ring.preflist(SLOT);
const wide = buildRing(mem, { vnodes: 16, n: 6 }).preflist(SLOT); // the whole clockwise order
const outsider = wide[3]!;

t.test('write coordinator', async (t) => {
  const all = (): boolean => true;
  t.same(writeCoordinator(ring, SLOT, pref[1]!, all), { kind: 'local' }, 'a primary coordinates itself');
  t.same(writeCoordinator(ring, SLOT, outsider, all), { kind: 'forward', to: pref[0] }, 'others forward to the first primary');
  t.same(writeCoordinator(ring, SLOT, outsider, (id) => id !== pref[0]), { kind: 'forward', to: pref[1] }, 'first up primary');
  t.same(writeCoordinator(ring, SLOT, pref[0]!, (id) => id !== pref[0]), { kind: 'forward', to: pref[1] }, 'a primary that believes itself down forwards');
  t.same(writeCoordinator(ring, SLOT, outsider, (id) => !pref.includes(id)), { kind: 'unavailable' }, 'no primary up: a fallback never mints dots');
});

t.test('request targets', async (t) => {
  const down = (id: string): boolean => id !== pref[2];
  const sloppy = requestTargets(ring, SLOT, down, true);
  t.same(sloppy.targets, [
    { id: pref[0], dc: 'dc1', primary: true },
    { id: pref[1], dc: 'dc1', primary: true },
    { id: wide[3], dc: 'dc1', primary: false },
  ]);
  t.same(sloppy.down, []);
  const strict = requestTargets(ring, SLOT, down, false);
  t.same(strict.targets.map((x) => x.id), pref);
  t.same(strict.down, [pref[2]]);
  // Fed to a tally: strict W=3 fails at once once the down primary's error is recorded.
  const tally = new QuorumTally(strict.targets, resolveQuorum('all', { n: 3 }), { op: 'write', sloppy: false });
  for (const id of strict.down) tally.add(id, 'error');
  t.same(tally.decide(), { kind: 'insufficient', got: 0, need: 3 });
});

t.test('target plans: the plan of the primaries is kept per ring and slot, and checked against who is up', async (t) => {
  const up = (): boolean => true;
  const plan = planTargets(ring, SLOT, up, true);
  t.same(plan.targets.map((x) => x.id), pref);
  t.same(plan.down, []);
  t.equal(planTargets(ring, SLOT, up, true), plan, 'the same plan object while every primary is up');
  t.equal(planTargets(ring, SLOT, up, false), plan, 'strict mode asks the same primaries');
  // Its targets are a plain array of frozen entries: V8 reads a frozen array's elements through a
  // slower path, and a tally scans them on every answer.
  t.notOk(Object.isFrozen(plan.targets));
  t.ok(plan.targets.every((x) => Object.isFrozen(x)));
  // A primary down: not the kept plan.
  const down = (id: string): boolean => id !== pref[1];
  const sloppy = planTargets(ring, SLOT, down, true);
  t.same(sloppy.targets.map((x) => x.id), [pref[0], pref[2], wide[3]]);
  t.equal(sloppy.hintFor.get(wide[3]!), pref[1], 'the fallback holds a hint for the down primary');
  const strict = planTargets(ring, SLOT, down, false);
  t.same(strict.targets.map((x) => x.id), pref);
  t.same(strict.down, [pref[1]]);
  t.equal(planTargets(ring, SLOT, up, true), plan, 'back up: the kept plan again');
  // Another slot of the same ring, and the same slot of another ring, have their own plans.
  const other = planTargets(ring, SLOT + 1, up, true);
  t.same(other.targets.map((x) => x.id), ring.preflist(SLOT + 1));
  const ring2 = buildRing(mem.slice(0, 4), { vnodes: 16, n: 3 });
  t.same(planTargets(ring2, SLOT, up, true).targets.map((x) => x.id), ring2.preflist(SLOT));
  t.equal(planTargets(ring, SLOT, up, true), plan);
  t.throws(() => planTargets(ring, -1, up, true), 'a bad slot is refused');
  t.throws(() => planTargets(ring, 1 << 14, up, true));
});

t.test('target plans: the slots of one preflist share one plan and one targets array', async (t) => {
  const up = (): boolean => true;
  const three = buildRing(mem.slice(0, 3), { vnodes: 16, n: 3 });
  // Every slot of a 3-node ring at N=3 has one of the 6 orders of the three nodes.
  const plans = new Set<unknown>();
  const targets = new Set<unknown>();
  const byOrder = new Map<string, unknown>();
  let unshared = 0;
  for (let s = 0; s < 1 << 14; s++) {
    const plan = planTargets(three, s, up, true);
    // One count, not 16384 assertions (the TAP log of a CI run stays readable).
    if (requestTargets(three, s, up, true).targets !== plan.targets) unshared++;
    plans.add(plan);
    targets.add(plan.targets);
    const order = three.preflist(s).join(',');
    if (!byOrder.has(order)) byOrder.set(order, plan);
    else if (byOrder.get(order) !== plan) t.fail(`slot ${s}: another plan for preflist ${order}`);
    if (plan.targets.map((x) => x.id).join(',') !== order) t.fail(`slot ${s}: targets are not its preflist`);
  }
  t.equal(unshared, 0, 'requestTargets gives every slot its plan\'s targets array');
  t.ok(byOrder.size > 1 && byOrder.size <= 6, `${byOrder.size} preflists`);
  t.equal(plans.size, byOrder.size, 'one plan per preflist');
  t.equal(targets.size, byOrder.size, 'one targets array per preflist');
  // A plan with a primary down is its own (and a later all-up plan the shared one again).
  const down = (id: string): boolean => id !== three.preflist(7)[1];
  t.not(planTargets(three, 7, down, true), byOrder.get(three.preflist(7).join(',')));
  t.equal(planTargets(three, 7, up, true), byOrder.get(three.preflist(7).join(',')));
});

const w = (obj: VersionedObject, actor: string, v: string, at: number, ctx = contextOf(obj)): VersionedObject =>
  applyWrite(obj, ctx, actor, { value: Buffer.from(v), writtenAtMs: at, expiresAtMs: 0 }, OPTS);

t.test('read repair: who gets the merged object', async (t) => {
  const v1 = w(EMPTY_OBJECT, 'a', 'v1', 1);
  const v2 = w(v1, 'a', 'v2', 2); // supersedes v1
  const other = w(EMPTY_OBJECT, 'b', 'x', 3); // concurrent with both
  const r = reconcile(new Map<string, VersionedObject | null>([['r1', v2], ['r2', v1], ['r3', null]]), OPTS);
  t.same(liveValues(r.merged, 9).map(String), ['v2']);
  t.same(r.stale, ['r2', 'r3'], 'the stale and the empty replica');
  const r2 = reconcile(new Map<string, VersionedObject | null>([['r1', v2], ['r2', other]]), OPTS);
  t.same(liveValues(r2.merged, 9).map(String), ['v2', 'x']);
  t.same(r2.stale, ['r1', 'r2'], 'each lacks the other sibling');
  const synced = mergeObjects(v2, other, OPTS);
  t.same(reconcile(new Map([['r1', synced], ['r2', synced]]), OPTS).stale, [], 'in sync: nothing to repair');
  t.same(reconcile(new Map([['r1', null], ['r2', null]]), OPTS), { merged: EMPTY_OBJECT, stale: [] }, 'all notfound');
  // A replica holding a sibling the merge dropped (the cap) needs repair too.
  const capped: WriteOptions = { ...OPTS, maxSiblings: 1 };
  const a = w(EMPTY_OBJECT, 'a', 'old', 1, new Map());
  const b = w(EMPTY_OBJECT, 'b', 'new', 2, new Map());
  const ab = mergeObjects(a, b, capped);
  t.same(liveValues(ab, 9).map(String), ['new']);
  t.ok(needsRepair(a, ab));
  t.notOk(needsRepair(ab, ab));
  // After repair (each stale replica merges the object), nobody is stale.
  const r1After = mergeObjects(v2, r2.merged, OPTS);
  const r2After = mergeObjects(other, r2.merged, OPTS);
  t.same(reconcile(new Map([['r1', r1After], ['r2', r2After]]), OPTS).stale, []);
});
