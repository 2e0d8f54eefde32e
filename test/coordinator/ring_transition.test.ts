// Ring transitions: what a join, a leave, a forget and a weight change move, against the ideal.
import t from 'tap';
import { buildRing, DEFAULT_VNODES, type MemberState, type RingMember } from '../../src/coordinator/ring.js';
import { RingTransition, slotRuns, slotsLost } from '../../src/coordinator/ring_transition.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';

const N = 3;
const member = (id: string, state: MemberState = 'up', weight = 1): RingMember => ({ id, weight, dc: 'dc1', rack: '', state });
const names = (k: number): string[] => Array.from({ length: k }, (_, i) => `n${i + 1}-${(i * 7919).toString(16)}`);

function transition(members: RingMember[]): RingTransition {
  return new RingTransition(
    buildRing(members, { vnodes: DEFAULT_VNODES, n: N, view: 'current' }),
    buildRing(members, { vnodes: DEFAULT_VNODES, n: N, view: 'target' }),
  );
}

t.test('a join moves about 1/(n+1) of the slots, only to the new node, one copy each', async (t) => {
  for (const n of [3, 4, 5, 9]) {
    const ids = names(n + 1);
    const joiner = ids[n]!;
    const tr = transition(ids.map((id) => member(id, id === joiner ? 'joining' : 'up')));
    const ideal = SLOT_COUNT / (n + 1);
    const ratio = tr.stats.primariesChanged / ideal;
    t.ok(ratio > 0.75 && ratio < 1.25, `${n} -> ${n + 1}: ${tr.stats.primariesChanged} primaries move, ideal ${ideal.toFixed(0)} (x${ratio.toFixed(2)})`);
    // The new node ends up holding N copies' worth of 1/(n+1): each gained slot is one copy.
    const idealCopies = (SLOT_COUNT * N) / (n + 1);
    const copies = tr.stats.replicaMoves / idealCopies;
    t.ok(copies > 0.75 && copies < 1.25, `${n} -> ${n + 1}: ${tr.stats.replicaMoves} slot copies move, ideal ${idealCopies.toFixed(0)}`);
    let bad = 0;
    for (const m of tr.moves) {
      if (m.gained.length !== 1 || m.gained[0] !== joiner || m.lost.length !== 1 || m.sources.includes(joiner)) bad++;
    }
    t.equal(bad, 0, 'every changed slot: gained exactly by the joiner, lost by exactly one old replica, streamed from old replicas');
    t.equal(tr.gainedBy(joiner).length, tr.moves.length, 'the joiner gains every moved slot');
    for (const id of ids.slice(0, n)) t.equal(tr.gainedBy(id).length, 0, `${id} gains nothing`);
    const lostTotal = ids.slice(0, n).reduce((a, id) => a + tr.lostBy(id).length, 0);
    t.equal(lostTotal, tr.stats.replicaMoves, 'losses balance gains');
    // Unchanged slots have no pending replicas; moved ones exactly the joiner.
    let pendingOk = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const p = tr.pendingReplicas(s);
      if (tr.move(s) === undefined ? p.length === 0 : p.length === 1 && p[0] === joiner) pendingOk++;
    }
    t.equal(pendingOk, SLOT_COUNT, 'pending replicas: the joiner on moved slots, nobody elsewhere');
  }
});

t.test('a leave moves only the leaving node\'s slots, to the others', async (t) => {
  for (const n of [4, 5, 10]) {
    const ids = names(n);
    const leaver = ids[1]!;
    const tr = transition(ids.map((id) => member(id, id === leaver ? 'leaving' : 'up')));
    const held = buildRing(ids.map((id) => member(id)), { vnodes: DEFAULT_VNODES, n: N }).ownership().get(leaver)!.replica;
    t.equal(tr.stats.replicaMoves, held, `${n} -> ${n - 1}: exactly the ${held} slot copies of the leaver move`);
    t.equal(tr.lostBy(leaver).length, held, 'the leaver loses every slot it held');
    let bad = 0;
    for (const m of tr.moves) if (m.lost.length !== 1 || m.lost[0] !== leaver || m.gained.length !== 1 || m.gained[0] === leaver || !m.sources.includes(leaver)) bad++;
    t.equal(bad, 0, 'every changed slot: lost by the leaver only, gained by one survivor');
    for (const id of ids) if (id !== leaver) t.equal(tr.lostBy(id).length, 0, `${id} loses nothing`);
  }
});

t.test('a forgotten (left) node: the survivors\' new ring vs the old one', async (t) => {
  const ids = names(5);
  const dead = ids[3]!;
  const before = buildRing(ids.map((id) => member(id)), { vnodes: DEFAULT_VNODES, n: N });
  const after = buildRing(ids.map((id) => member(id, id === dead ? 'left' : 'up')), { vnodes: DEFAULT_VNODES, n: N });
  const tr = new RingTransition(before, after);
  t.equal(tr.stats.replicaMoves, before.ownership().get(dead)!.replica, 'one new copy per slot copy the dead node held');
  t.same(slotsLost(before, after, dead), tr.lostBy(dead), 'slotsLost agrees with the transition');
  for (const m of tr.moves) {
    if (m.sources.filter((x) => x !== dead).length !== N - 1) {
      t.fail(`slot ${m.slot} has no ${N - 1} surviving sources`);
      break;
    }
  }
  t.equal(after.preflist(0).length, N, 'still N replicas per slot');
});

t.test('weight 2 takes about twice the slots; changing it moves only toward or away from that node', async (t) => {
  const ids = names(4);
  const heavy = ids[2]!;
  const ring = buildRing(ids.map((id) => member(id, 'up', id === heavy ? 2 : 1)), { vnodes: DEFAULT_VNODES, n: 1 });
  const own = ring.ownership();
  const light = ids.filter((x) => x !== heavy).map((id) => own.get(id)!.primary);
  const meanLight = light.reduce((a, b) => a + b, 0) / light.length;
  const ratio = own.get(heavy)!.primary / meanLight;
  t.ok(ratio > 1.7 && ratio < 2.3, `weight 2 node holds ${ratio.toFixed(2)}x the primaries of a weight 1 node`);
  const even = buildRing(ids.map((id) => member(id)), { vnodes: DEFAULT_VNODES, n: N });
  const heavier = buildRing(ids.map((id) => member(id, 'up', id === heavy ? 2 : 1)), { vnodes: DEFAULT_VNODES, n: N });
  const tr = new RingTransition(even, heavier);
  let bad = 0;
  for (const m of tr.moves) if (!m.gained.every((x) => x === heavy)) bad++;
  t.equal(bad, 0, 'raising one weight moves slots only to that node');
  t.ok(tr.gainedBy(heavy).length > 0, 'and it gains some');
});

t.test('identical rings: idle', async (t) => {
  const ids = names(3);
  const tr = transition(ids.map((id) => member(id)));
  t.ok(tr.idle);
  t.equal(tr.pendingReplicas(7).length, 0);
});

t.test('slotRuns groups consecutive slots, capped in length', async (t) => {
  t.same(slotRuns([]), []);
  t.same(slotRuns([1, 2, 3, 7, 9, 10]), [{ first: 1, last: 3 }, { first: 7, last: 7 }, { first: 9, last: 10 }]);
  t.same(slotRuns([0, 1, 2, 3, 4], 2), [{ first: 0, last: 1 }, { first: 2, last: 3 }, { first: 4, last: 4 }]);
  t.throws(() => slotRuns([3, 2]));
});
