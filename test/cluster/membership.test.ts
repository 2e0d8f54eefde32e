// The membership table as pure logic: the merge rule (and its algebra, by property test),
// refutation, suspicion and down only at the armed version, pause credit, persistence, codec limits.
import fc from 'fast-check';
import t from 'tap';
import { ByteReader, ByteWriter } from '../../src/cluster/wire.js';
import { decodePingReq, decodeRecord, decodeSync, encodePingReq, encodeRecord, encodeSync } from '../../src/cluster/gossip_codec.js';
import { MAX_COUNTER, MAX_MEMBERS } from '../../src/cluster/limits.js';
import {
  compareVersion,
  deserializeMembership,
  MembershipTable,
  serializeMembership,
  type MemberInfo,
  type MemberRecord,
  type MemberState,
} from '../../src/cluster/membership.js';
import { isClusterError } from '../../src/cluster/errors.js';
import { throwsCode } from './expect_error.js';

const TIMEOUT = 1000;
const info = (id: string, over: Partial<MemberInfo> = {}): MemberInfo => ({
  id,
  host: '10.0.0.1',
  port: 7001,
  busPort: 17001,
  dc: 'dc1',
  rack: '',
  weight: 1,
  state: 'up',
  ...over,
});
const rec = (id: string, incarnation: number, heartbeat: number, over: Partial<MemberRecord> = {}): MemberRecord => ({
  ...info(id),
  incarnation,
  heartbeat,
  suspectedAt: null,
  ...over,
});
const table = (id = 'me', now = 0): MembershipTable => MembershipTable.create(info(id), now, { nodeTimeoutMs: TIMEOUT });

t.test('merge: unknown joins, newer version wins, older is ignored, equal version by state precedence', async (t) => {
  const tb = table();
  t.same(tb.merge([rec('b', 0, 5)], 10).map((c) => c.kind), ['joined']);
  t.same(tb.merge([rec('b', 0, 4, { port: 1 })], 20), [], 'older heartbeat ignored');
  t.equal(tb.get('b')!.port, 7001);
  t.same(tb.merge([rec('b', 0, 6, { port: 7002 })], 30).map((c) => c.kind), ['updated'], 'newer heartbeat with new info');
  t.equal(tb.get('b')!.port, 7002);
  t.equal(tb.get('b')!.lastAdvanceMs, 30);
  t.same(tb.merge([rec('b', 0, 7, { port: 7002 })], 40), [], 'a heartbeat alone is no change event');
  t.equal(tb.get('b')!.lastAdvanceMs, 40, 'but it refreshes the timeout');
  t.same(tb.merge([rec('b', 1, 0, { port: 7002 })], 50), [], 'a higher incarnation beats any heartbeat');
  t.equal(tb.get('b')!.incarnation, 1);
  t.same(tb.merge([rec('b', 0, 99)], 60), [], 'a lower incarnation loses to it');
  t.equal(tb.get('b')!.heartbeat, 0);
  // Equal versions: left > leaving > up > joining.
  const order: MemberState[] = ['joining', 'up', 'leaving', 'left'];
  for (let i = 0; i < order.length; i++) {
    for (let j = 0; j < order.length; j++) {
      const x = table();
      x.merge([rec('c', 3, 3, { state: order[i]! })], 0);
      x.merge([rec('c', 3, 3, { state: order[j]! })], 0);
      t.equal(x.get('c')!.state, order[Math.max(i, j)], `${order[i]} vs ${order[j]}`);
    }
  }
  t.equal(compareVersion({ incarnation: 1, heartbeat: 0 }, { incarnation: 0, heartbeat: 9 }), 1);
});

t.test('merge algebra: any order and any repetition of the same records gives the same table', async (t) => {
  const ids = ['a', 'b', 'c', 'd'];
  const recArb = fc.record({
    id: fc.constantFrom(...ids),
    inc: fc.integer({ min: 0, max: 3 }),
    hb: fc.integer({ min: 0, max: 3 }),
    state: fc.constantFrom<MemberState>('joining', 'up', 'leaving', 'left'),
    claim: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
  });
  const view = (tb: MembershipTable): string =>
    JSON.stringify(tb.members().filter((m) => m.id !== 'me').map((m) => [m.id, m.incarnation, m.heartbeat, m.state, m.suspectedAt]));
  fc.assert(
    fc.property(fc.array(recArb, { minLength: 1, maxLength: 12 }), fc.integer(), (xs, seed) => {
      const records = xs.map((x) => rec(x.id, x.inc, x.hb, { state: x.state, suspectedAt: x.claim }));
      const one = table();
      one.merge(records, 0);
      // Another order, in several batches, with duplicates, and the result merged into a third.
      const shuffled = [...records, ...records.slice(0, 3)].map((r, i) => ({ r, k: Math.sin(seed + i) })).sort((a, b) => a.k - b.k).map((x) => x.r);
      const two = table();
      for (let i = 0; i < shuffled.length; i += 2) two.merge(shuffled.slice(i, i + 2), 0);
      const three = table();
      three.merge(two.records(), 0);
      three.merge(one.records(), 0);
      return view(one) === view(two) && view(two) === view(three);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random record sets');
});

t.test('push-pull reply: records the sender lacks or holds older, nothing else', async (t) => {
  const tb = table();
  tb.merge([rec('b', 0, 5), rec('c', 2, 1), rec('d', 0, 1, { state: 'leaving' })], 0);
  const theirs = [rec('me', 0, 0), rec('b', 0, 5), rec('c', 1, 9), rec('d', 0, 1, { state: 'up' })];
  t.same(tb.recordsNewerThan(theirs).map((r) => r.id).sort(), ['c', 'd']);
  t.same(tb.recordsNewerThan([]).map((r) => r.id).sort(), ['b', 'c', 'd', 'me']);
});

t.test('suspect after nodeTimeoutMs of silence, down only at the armed version', async (t) => {
  const tb = table('me', 0);
  tb.merge([rec('b', 0, 1), rec('c', 0, 1)], 0);
  t.same(tb.findSuspects(TIMEOUT - 1), [], 'not before the timeout');
  tb.merge([rec('c', 0, 2)], 500); // c shows activity
  const s = tb.findSuspects(TIMEOUT);
  t.same(s.map((p) => [p.id, p.incarnation, p.heartbeat]), [['b', 0, 1]]);
  t.equal(tb.get('b')!.liveness, 'suspect');
  t.equal(tb.get('b')!.suspectedAt, 0, 'a claim at its incarnation travels with the record');
  t.same(tb.findSuspects(TIMEOUT + 1), [], 'suspected once');
  // The probe was armed for (0,1); b's heartbeat advanced meanwhile: a late failure changes nothing.
  tb.merge([rec('b', 0, 2)], TIMEOUT + 10);
  t.equal(tb.get('b')!.liveness, 'alive', 'an advance brings it back');
  t.equal(tb.probeFailed(s[0]!, TIMEOUT + 20), null, 'the stale probe does not mark it down');
  t.equal(tb.get('b')!.liveness, 'alive');
  // Silent again: suspect, probe fails at the armed version -> down.
  const s2 = tb.findSuspects(TIMEOUT * 3);
  t.equal(s2.length, 2);
  const b2 = s2.find((p) => p.id === 'b')!;
  t.same(tb.probeFailed(b2, TIMEOUT * 3 + 5)!.kind, 'down');
  t.equal(tb.get('b')!.liveness, 'down');
  t.same(tb.findSuspects(TIMEOUT * 10).map((p) => p.id), [], 'down members are not re-suspected; c is already suspect');
  // An ack brings it up at once; a probe armed before that does not take it down again.
  t.same(tb.ackReceived('b', TIMEOUT * 4)!.kind, 'alive');
  t.equal(tb.probeFailed(b2, TIMEOUT * 4 + 1), null);
  t.equal(tb.ackReceived('b', TIMEOUT * 4 + 2), null, 'no event when already alive');
  // Down, then its version advances (it restarted with a higher incarnation): alive.
  const s3 = tb.findSuspects(TIMEOUT * 6).find((p) => p.id === 'b')!;
  tb.probeFailed(s3, TIMEOUT * 6);
  t.same(tb.merge([rec('b', 1, 0)], TIMEOUT * 7).map((c) => c.kind), ['alive']);
  // Left members are never suspected.
  tb.merge([rec('e', 0, 0, { state: 'left' })], 0);
  t.notOk(tb.findSuspects(TIMEOUT * 100).some((p) => p.id === 'e'));
});

t.test('refutation: a claim about us, or a newer record of us, bumps our incarnation', async (t) => {
  const tb = table('me');
  tb.tick(1);
  tb.tick(2);
  t.same(tb.merge([rec('me', 0, 1, { suspectedAt: 0 })], 3).map((c) => c.kind), ['refuted']);
  t.equal(tb.self().incarnation, 1);
  t.equal(tb.self().heartbeat, 2, 'the heartbeat goes on');
  t.same(tb.merge([rec('me', 0, 50, { suspectedAt: 0 })], 4), [], 'an old claim is already refuted');
  t.same(tb.merge([rec('me', 5, 0, { port: 1 })], 5).map((c) => c.kind), ['refuted'], 'a newer version of us (lost table)');
  t.equal(tb.self().incarnation, 6);
  t.equal(tb.self().port, 7001, 'our own info is never taken from a peer');
  // The refuting record beats the claim everywhere: an observer holding the claim takes it and clears it.
  const obs = table('obs');
  obs.merge([rec('me', 0, 2)], 0);
  obs.findSuspects(TIMEOUT * 2);
  t.equal(obs.get('me')!.suspectedAt, 0);
  obs.merge([tb.records()[0]!], TIMEOUT * 2 + 1);
  t.equal(obs.get('me')!.liveness, 'alive');
  t.equal(obs.get('me')!.suspectedAt, null, 'claim cleared by the higher incarnation');
  // A broken peer claiming the counter's end is refused, not obeyed (and does not crash us).
  const before = tb.self().incarnation;
  t.same(tb.merge([rec('me', 0, 0, { suspectedAt: MAX_COUNTER })], 5), []);
  t.equal(tb.self().incarnation, before);
  t.equal(tb.droppedRecords, 1);
  const up = tb.updateSelf({ state: 'leaving' }, 6);
  t.equal(up.member.incarnation, 7);
  t.equal(tb.self().state, 'leaving');
});

t.test('a paused observer credits its pause to every member', async (t) => {
  const tb = table('me', 0);
  tb.merge([rec('b', 0, 1)], 0);
  tb.shiftTimeouts(5000, 5200);
  t.same(tb.findSuspects(5200), [], 'not suspected right after our own 5 s pause');
  t.equal(tb.findSuspects(5200 + TIMEOUT).length, 1, 'suspected once a full timeout passes after it');
});

t.test('persistence: round trip, damage detected, restart bumps our incarnation', async (t) => {
  const tb = table('me');
  tb.merge([rec('b', 2, 9, { dc: 'dc2', rack: 'r1', weight: 1.5, state: 'joining', suspectedAt: 2 }), rec('c', 0, 1, { host: 'host-ü' })], 0);
  for (let i = 0; i < 5; i++) tb.tick(i);
  const bytes = tb.serialize();
  const restored = deserializeMembership(bytes);
  t.same(restored, tb.records());
  const again = MembershipTable.create(info('me'), 100, { nodeTimeoutMs: TIMEOUT }, restored);
  t.equal(again.self().incarnation, 1, 'restart: incarnation above the persisted one');
  t.equal(again.self().heartbeat, 0);
  t.same(again.get('b')!.dc, 'dc2');
  t.equal(again.get('b')!.lastAdvanceMs, 100, 'restored members get a fresh timeout');
  for (let i = 0; i < bytes.length; i += 7) {
    const bad = Buffer.from(bytes);
    bad[i]! ^= 0x10;
    throwsCode(t, () => deserializeMembership(bad), 'ERR_GOSSIP_DECODE', `bit flip at ${i}`);
  }
  throwsCode(t, () => deserializeMembership(bytes.subarray(0, bytes.length - 1)), 'ERR_GOSSIP_DECODE', 'truncated');
  t.same(deserializeMembership(serializeMembership([])), []);
});

t.test('codec: caps checked before slicing; garbage only ever raises ERR_GOSSIP_DECODE', async (t) => {
  const r = rec('node-1', 3, 4, { suspectedAt: 3 });
  const w = new ByteWriter();
  encodeRecord(w, r);
  const one = w.finish();
  t.same(decodeRecord(new ByteReader(one)), r);
  // A SYNC announcing more records than MAX_MEMBERS is refused from its count alone.
  const hdr = Buffer.from([1, 1, 0x61, 0xff, 0xff]);
  throwsCode(t, () => decodeSync(hdr), 'ERR_GOSSIP_DECODE');
  t.ok(0xffff > MAX_MEMBERS);
  // Duplicate ids in one SYNC are refused.
  throwsCode(t, () => decodeSync(encodeSync({ senderId: 'x', records: [r, r] })), 'ERR_GOSSIP_DECODE');
  throwsCode(t, () => decodePingReq(encodePingReq({ timeoutMs: 0, targetId: 'a', host: 'h', busPort: 1 })), 'ERR_GOSSIP_DECODE');
  const sync = encodeSync({ senderId: 'x', records: [r, rec('node-2', 0, 0)] });
  t.same(decodeSync(sync).records.length, 2);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(sync.length), fc.nat(255), (garbage, at, v) => {
      const mutated = Buffer.from(sync);
      mutated[at % mutated.length] = v;
      for (const input of [Buffer.from(garbage), mutated, sync.subarray(0, at)]) {
        try {
          decodeSync(input);
        } catch (e) {
          if (!isClusterError(e, 'ERR_GOSSIP_DECODE')) return false;
        }
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 garbage and mutated inputs');
});
