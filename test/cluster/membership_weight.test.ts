// Weight changes as pure logic (issue 6): the target weight in the gossiped record (codec,
// merge, persistence), the weights a restarted node announces, which weight each ring view uses,
// when a change may become current, and what the own record changes to for a configured weight.
import t from 'tap';
import { decodeRecord, encodeRecord } from '../../src/cluster/gossip_codec.js';
import { deserializeMembership, MembershipTable, serializeMembership, targetWeightOf, weightPending, type MemberInfo, type MemberRecord } from '../../src/cluster/membership.js';
import { ringMemberOf, WeightWatcher, weightChangeFor, weightCommitReady } from '../../src/cluster/membership_weight.js';
import { Config } from '../../src/config/config.js';
import { ByteReader, ByteWriter } from '../../src/cluster/wire.js';
import { buildRing } from '../../src/coordinator/ring.js';
import { RingTransition } from '../../src/coordinator/ring_transition.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';

const info = (id: string, over: Partial<MemberInfo> = {}): MemberInfo => ({ id, host: '127.0.0.1', port: 7001, busPort: 17001, dc: 'dc1', rack: '', weight: 1, state: 'up', ...over });
const rec = (id: string, inc: number, over: Partial<MemberRecord> = {}): MemberRecord => ({ ...info(id), incarnation: inc, heartbeat: 3, suspectedAt: null, ...over });
const roundTrip = (r: MemberRecord): MemberRecord => {
  const w = new ByteWriter(128);
  encodeRecord(w, r);
  const reader = new ByteReader(w.finish());
  const out = decodeRecord(reader);
  reader.end('record');
  return out;
};

t.test('codec: a pending target weight travels; none, or one equal to the weight, is omitted', async (t) => {
  t.same(roundTrip(rec('a', 1, { weight: 1, targetWeight: 2 })), rec('a', 1, { weight: 1, targetWeight: 2 }));
  t.same(roundTrip(rec('a', 1, { suspectedAt: 4, weight: 3, targetWeight: 0 })), rec('a', 1, { suspectedAt: 4, weight: 3, targetWeight: 0 }), 'with a claim, and a target of 0');
  t.notOk('targetWeight' in roundTrip(rec('a', 1, { weight: 2, targetWeight: 2 })), 'equal target: canonical record without it');
  t.notOk('targetWeight' in roundTrip(rec('a', 1)), 'no target');
  const w = new ByteWriter(128);
  encodeRecord(w, rec('a', 1, { targetWeight: 2 }));
  const bytes = w.finish();
  bytes.writeDoubleBE(1e9, bytes.length - 8); // the target weight is the last field
  t.throws(() => decodeRecord(new ByteReader(bytes)), /target weight/, 'a target weight out of range is refused');
  t.same(deserializeMembership(serializeMembership([rec('a', 1, { targetWeight: 5 })])), [rec('a', 1, { targetWeight: 5 })], 'persisted with the table');
});

t.test('merge: a new target weight at a higher version is an info change; the pure helpers read it', async (t) => {
  const tb = MembershipTable.create(info('me'), 0, { nodeTimeoutMs: 1000 });
  tb.merge([rec('b', 1)], 0);
  const cs = tb.merge([rec('b', 2, { targetWeight: 2 })], 1);
  t.same(cs.map((c) => c.kind), ['updated']);
  t.equal(targetWeightOf(tb.get('b')!), 2);
  t.ok(weightPending(tb.get('b')!));
  t.same(tb.merge([rec('b', 3, { weight: 2 })], 2).map((c) => c.kind), ['updated'], 'the change becomes current');
  t.notOk(weightPending(tb.get('b')!));
  const me = tb.updateSelf({ targetWeight: 1 }, 3).member;
  t.notOk('targetWeight' in me, 'a target equal to the weight is dropped from the own record');
});

t.test('restart: a ring member keeps its last weight and moves to the configured one; a joiner takes it at once', async (t) => {
  const persisted = [rec('me', 4, { weight: 1 }), rec('b', 2)];
  const up = MembershipTable.create(info('me', { weight: 3 }), 0, { nodeTimeoutMs: 1000 }, persisted).self();
  t.same([up.weight, up.targetWeight], [1, 3], 'up: current 1, target 3 (streamed)');
  const resumed = MembershipTable.create(info('me', { weight: 3 }), 0, { nodeTimeoutMs: 1000 }, [rec('me', 4, { weight: 1, targetWeight: 3 })]).self();
  t.same([resumed.weight, resumed.targetWeight], [1, 3], 'a change interrupted by the restart resumes');
  const same = MembershipTable.create(info('me', { weight: 1 }), 0, { nodeTimeoutMs: 1000 }, persisted).self();
  t.notOk(weightPending(same), 'unchanged weight: nothing pending');
  const joining = MembershipTable.create(info('me', { weight: 3, state: 'joining' }), 0, { nodeTimeoutMs: 1000 }, persisted).self();
  t.same([joining.weight, weightPending(joining)], [3, false], 'joining: the configured weight at once');
  const fresh = MembershipTable.create(info('me', { weight: 2 }), 0, { nodeTimeoutMs: 1000 }).self();
  t.same([fresh.weight, weightPending(fresh)], [2, false], 'fresh node: the configured weight');
});

t.test('ring views: current at the weight, target at the target weight; commit only when streamed and confirmed', async (t) => {
  const a = info('a', { targetWeight: 2 });
  t.equal(ringMemberOf(a, 'current').weight, 1);
  t.equal(ringMemberOf(a, 'target').weight, 2);
  const ms = [a, info('b'), info('c'), info('d')];
  const opts = { vnodes: 64, n: 2 };
  const up = buildRing(ms.map((m) => ringMemberOf(m, 'current')), opts);
  const down = new RingTransition(buildRing(ms.map((m) => ringMemberOf({ ...m, ...(m.id === 'a' ? { weight: 2, targetWeight: 1 } : {}) }, 'current')), opts), up);
  const tr = new RingTransition(up, buildRing(ms.map((m) => ringMemberOf(m, 'target')), opts));
  t.ok(tr.gainedBy('a').length > 0, 'a heavier node gains slots');
  t.same(tr.lostBy('a'), [], 'and loses none');
  t.ok(weightCommitReady(a, tr, true, () => false), 'weight up: ready once the node itself has streamed (no one else gains)');
  t.notOk(weightCommitReady(a, tr, false, () => true), 'not before its own gains are streamed');
  const lighter = { ...a, weight: 2, targetWeight: 1 };
  t.ok(down.lostBy('a').length > 0, 'a lighter node loses slots');
  t.notOk(weightCommitReady(lighter, down, true, (id) => id === 'b'), 'weight down: not until every gainer confirmed');
  t.ok(weightCommitReady(lighter, down, true, () => true), 'weight down: ready once every gainer confirmed');
  t.notOk(weightCommitReady(info('a'), tr, true, () => true), 'nothing pending: nothing to commit');
  t.notOk(weightCommitReady({ ...a, state: 'leaving' }, tr, true, () => true), 'a leaving node does not commit a weight');
  let primaries = 0;
  for (let s = 0; s < SLOT_COUNT; s++) if (tr.target.preflist(s)[0] === 'a') primaries++;
  t.ok(primaries > (SLOT_COUNT / 5) * 1.5, `weight 2 of 5 units: ${primaries} primaries (ideal ${(SLOT_COUNT * 2) / 5})`);
});

t.test('configured weight -> own record change', async (t) => {
  t.same(weightChangeFor(info('a'), 2), { targetWeight: 2 }, 'up: a streamed change');
  t.equal(weightChangeFor(info('a', { targetWeight: 2 }), 2), null, 'already moving there');
  t.same(weightChangeFor(info('a', { targetWeight: 2 }), 1), { targetWeight: 1 }, 'redirected back');
  t.same(weightChangeFor(info('a', { state: 'joining' }), 3), { weight: 3, targetWeight: 3 }, 'joining: at once');
  t.equal(weightChangeFor(info('a', { state: 'joining', weight: 3 }), 3), null);
  t.equal(weightChangeFor(info('a', { state: 'leaving' }), 3), null, 'leaving: kept');
});

t.test('WeightWatcher: CONFIG SET weight changes the own record inside the CONFIG SET, not a poll later', async (t) => {
  const config = Config.fromOverrides([['weight', '1']]);
  let me: MemberInfo = info('me');
  const changes: Array<Partial<MemberInfo>> = [];
  const table = { self: () => me } as unknown as MembershipTable;
  const watcher = new WeightWatcher({
    config,
    table,
    updateSelf: (c) => {
      changes.push(c);
      me = { ...me, ...c };
    },
    log: () => {},
  });
  t.teardown(() => watcher.close());
  t.equal(config.set([['weight', '2']]), undefined, 'CONFIG SET weight 2');
  t.same(changes, [{ targetWeight: 2 }], 'the target weight is in the record when CONFIG SET returns');
  t.equal(config.set([['maxclients', '100']]), undefined, 'another key');
  t.equal(changes.length, 1, 'changes nothing');
  watcher.close();
  t.equal(config.set([['weight', '3']]), undefined, 'after close');
  t.equal(changes.length, 1, 'a closed watcher no longer listens');
});
