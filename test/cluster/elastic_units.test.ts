// Pure parts of ring changes under trouble (issue 6): the join gate (who a joiner must hear from
// before it scans), STREAM_VIEW's wire form, the rejoin guard's verdict and message, and the
// `leaving` / `left` flags of the persisted stream progress (round trip, older files).
import t from 'tap';
import { createHash } from 'node:crypto';
import { decodeStreamViewReply, encodeStreamViewReply, gateOpen, membersToAsk, type GateMember } from '../../src/cluster/join_gate.js';
import { checkNotRemoved, removedBy, removedMessage } from '../../src/cluster/rejoin_guard.js';
import { encodeSync } from '../../src/cluster/gossip_codec.js';
import { ClusterError } from '../../src/cluster/errors.js';
import type { MemberRecord } from '../../src/cluster/membership.js';
import { emptyProgress, parseProgress, serializeProgress } from '../../src/cluster/stream_progress.js';

const m = (id: string, state: GateMember['state'], down = false): GateMember => ({ id, state, down });

t.test('join gate: every live coordinator must report the gainer\'s target ring, nobody else', async (t) => {
  const members = [m('j', 'joining'), m('a', 'up'), m('b', 'up'), m('c', 'up', true), m('l', 'leaving'), m('k', 'joining'), m('x', 'left')];
  const fp = 'f1';
  const reports = (r: Record<string, string>): Map<string, string> => new Map(Object.entries(r));
  t.same(membersToAsk(members, 'j', reports({}), fp), ['a', 'b', 'l'], 'up and leaving members that are not down; not self, other joiners, down or left ones');
  t.same(membersToAsk(members, 'j', reports({ a: fp, l: fp }), fp), ['b'], 'members that reported the same target are not asked again');
  t.same(membersToAsk(members, 'j', reports({ a: fp, b: 'old', l: fp }), fp), ['b'], 'one that reported another target is asked again');
  t.notOk(gateOpen(members, 'j', reports({ a: fp, l: fp }), fp), 'closed while one live coordinator has not reported');
  t.notOk(gateOpen(members, 'j', reports({ a: fp, b: 'old', l: fp }), fp), 'closed while one live coordinator uses another target ring');
  t.ok(gateOpen(members, 'j', reports({ a: fp, b: fp, l: fp }), fp), 'open once all of them use the same target (the down one is not waited for)');
  t.notOk(gateOpen(members, 'j', reports({ a: fp, b: fp, l: fp }), 'f2'), 'closed again when the gainer\'s own target changed (another join, a leave)');
  t.notOk(gateOpen([m('j', 'joining')], 'j', reports({}), fp), 'closed for a node that has heard of no cluster yet');
  t.notOk(gateOpen([m('j', 'joining'), m('a', 'up', true)], 'j', reports({ a: fp }), fp), 'closed when every coordinator is down (nobody to stream from)');
  t.notOk(gateOpen([...members, m('d', 'up')], 'j', reports({ a: fp, b: fp, l: fp }), fp), 'a member that appears later must report too');
});

t.test('STREAM_VIEW reply: a fingerprint with a length byte, anything else refused', async (t) => {
  t.equal(decodeStreamViewReply(encodeStreamViewReply('0123456789abcdef')), '0123456789abcdef');
  t.equal(decodeStreamViewReply(encodeStreamViewReply('')), '', 'empty: the node has no ring yet');
  t.throws(() => decodeStreamViewReply(Buffer.alloc(0)), 'empty payload');
  t.throws(() => decodeStreamViewReply(Buffer.from([3, 0x61])), 'shorter than its length');
  t.throws(() => decodeStreamViewReply(Buffer.from([1, 0x61, 0])), 'trailing byte');
  t.throws(() => decodeStreamViewReply(Buffer.concat([Buffer.from([200]), Buffer.alloc(200, 0x61)])), 'longer than MAX_FINGERPRINT_BYTES');
});

t.test('rejoin guard: removed when any peer holds this node as left', async (t) => {
  const rec = (id: string, state: MemberRecord['state']): MemberRecord => ({
    id, host: '127.0.0.1', port: 1, busPort: 2, dc: 'dc1', rack: '', weight: 1, state, incarnation: 3, heartbeat: 9, suspectedAt: null,
  });
  t.equal(removedBy('me', []), undefined, 'no answers: not removed (a whole cluster restarting)');
  t.equal(removedBy('me', [{ peer: 'a', records: [rec('me', 'up'), rec('a', 'up')] }, { peer: 'b', records: [] }]), undefined, 'held as up: not removed');
  t.equal(removedBy('me', [{ peer: 'a', records: [rec('me', 'up')] }, { peer: 'b', records: [rec('me', 'left')] }]), 'b', 'one peer holding it as left is enough');
  t.equal(removedBy('me', [{ peer: 'a', records: [rec('other', 'left')] }]), undefined, 'another node left: not this one');
  const text = removedMessage('this node (me)', '/data/7001', 'node b holds it as left');
  t.match(text, /removed from the cluster/);
  t.match(text, /\/data\/7001/, 'names the data dir');
  t.match(text, /wipe the data dir/, 'tells the operator what to do');
});

t.test('rejoin guard: asks a slow peer again; skips a down one; gives up after the deadline', async (t) => {
  const rec = (id: string, state: MemberRecord['state']): MemberRecord => ({
    id, host: '127.0.0.1', port: 1, busPort: id.charCodeAt(0), dc: 'dc1', rack: '', weight: 1, state, incarnation: 3, heartbeat: 9, suspectedAt: null,
  });
  const table = { selfId: 'me', members: () => [rec('me', 'up'), rec('a', 'up'), rec('b', 'up'), rec('c', 'left')] };
  /** A bus whose peer (by bus port) answers per the script: one entry per request, the last repeats. */
  const fakeBus = (script: Record<string, Array<'timeout' | 'down' | 'left' | 'up'>>) => {
    const asked: string[] = [];
    const request = async (peer: { port: number }): Promise<Buffer> => {
      const id = String.fromCharCode(peer.port);
      asked.push(id);
      const steps = script[id]!;
      const step = steps.length > 1 ? steps.shift()! : steps[0]!;
      if (step === 'timeout') throw new ClusterError('ERR_BUS_TIMEOUT', 'timed out');
      if (step === 'down') throw new ClusterError('ERR_PEER_UNREACHABLE', 'refused');
      return encodeSync({ senderId: id, records: [rec('me', step), rec(id, 'up')] });
    };
    return { bus: { request } as never, asked };
  };
  const logs: string[] = [];
  const log = (_level: string, msg: string): number => logs.push(msg);

  let f = fakeBus({ a: ['timeout', 'timeout', 'left'], b: ['down'] });
  await t.rejects(checkNotRemoved(f.bus, table, '/d', log, 60_000), { code: 'ERR_REMOVED_NODE', message: /node a holds it as left/ }, 'a peer that timed out twice, then says left: refused');
  t.same(f.asked.sort(), ['a', 'a', 'a', 'b'], 'the slow peer asked again, the down one (and the left member c) not');

  f = fakeBus({ a: ['timeout', 'up'], b: ['timeout', 'timeout', 'left'] });
  await checkNotRemoved(f.bus, table, '/d', log, 60_000);
  t.same(f.asked.sort(), ['a', 'a', 'b', 'b'], 'once one peer answered (up), the still-slow one is not waited for');

  f = fakeBus({ a: ['down'], b: ['down'] });
  await checkNotRemoved(f.bus, table, '/d', log, 60_000);
  t.same(f.asked.sort(), ['a', 'b'], 'every peer down (a whole cluster restarting): one try each, then start');

  f = fakeBus({ a: ['timeout'], b: ['timeout'] });
  logs.length = 0;
  await checkNotRemoved(f.bus, table, '/d', log, 0);
  t.same(f.asked.sort(), ['a', 'b'], 'deadline passed: no second try');
  t.match(logs.join('\n'), /no member answered/, 'and says it started without knowing');
});

t.test('stream progress: leaving and left survive a round trip; a file without them reads as false', async (t) => {
  const p = emptyProgress();
  t.equal(p.leaving, false);
  t.equal(p.left, false);
  p.leaving = true;
  const back = parseProgress(serializeProgress(p));
  t.equal(back.leaving, true);
  t.equal(back.left, false);
  p.leaving = false;
  p.left = true;
  t.equal(parseProgress(serializeProgress(p)).left, true);
  // A file written before the flags existed (same format, no leaving/left keys).
  const body = JSON.stringify({ joining: true, streamed: [1, 2], tasks: [], bytesStreamed: 5, keysStreamed: 1, slotsStreamed: 2, slotsDropped: 0, keysDropped: 0 });
  const old = Buffer.from(`RKST1 ${createHash('sha256').update(body).digest('hex')}\n${body}`);
  const o = parseProgress(old);
  t.same([o.joining, o.leaving, o.left], [true, false, false], 'older file: not leaving, not left');
  const badBody = body.replace('"joining":true', '"joining":true,"left":"yes"');
  t.throws(() => parseProgress(Buffer.from(`RKST1 ${createHash('sha256').update(badBody).digest('hex')}\n${badBody}`)), { code: 'ERR_STREAM_STATE' }, 'a non-boolean flag is refused');
});
