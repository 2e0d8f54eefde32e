// Coordinator.writeAs / getValueAs (SET's and GET's replies, put_fsm.ts runPutAs, get_fsm.ts
// runGetValueAs): the request's one promise resolves with the outcome as mapped, exactly as
// write(...).then(as.stored, as.failed) and getValue(...).then(as.value, as.failed) would: every
// error write()/getValue() rejects with goes to `failed` (quorum missed, a bad W or R thrown
// before anything is sent, a forward that fails), and a throw of either mapping rejects.
import t from 'tap';
import { decodeObject, type VersionedObject } from '../../src/coordinator/object.js';
import type { CoordinatedWriteOutcome } from '../../src/coordinator/coordinator.js';
import { NoQuorumError, UnavailableError } from '../../src/coordinator/fsm_errors.js';
import type { ReadOutcome, ReadValue } from '../../src/coordinator/get_fsm.js';
import { QuorumError } from '../../src/coordinator/quorum.js';
import { keySlot } from '../../src/coordinator/slot.js';
import type { WriteResult } from '../../src/coordinator/replica_transport.js';
import { startCluster, values } from './fsm_cluster.js';

const set = (v: string) => ({ value: Buffer.from(v), expiresAtMs: 0 });

type Seen = { ok: Buffer | WriteResult } | { value: ReadValue; atMs: number } | { err: unknown };

/** Outcomes that hand back what they were given, so a test sees what each mapping got. */
const WRITE: CoordinatedWriteOutcome<Seen> = { stored: (ok) => ({ ok }), failed: (err) => ({ err }) };
const READ: ReadOutcome<Seen> = { value: (value, atMs) => ({ value, atMs }), failed: (err) => ({ err }) };

function errOf(s: Seen): unknown {
  if (!('err' in s)) throw new Error(`expected a failure, got ${JSON.stringify(s)}`);
  return s.err;
}

t.test('the mapped outcome of a write and a read coordinated here', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { readQuorum: 2, writeQuorum: 2, readFanout: 'quorum' }, getsAsBytes: true });
  const [a] = c.ids as [string];
  const key = Buffer.from('as');
  const w = await c.node(a).writeAs(key, set('v1'), {}, WRITE);
  t.ok('ok' in w && Buffer.isBuffer(w.ok), 'stored: this node\'s stored bytes');
  if ('ok' in w && Buffer.isBuffer(w.ok)) t.same(values(decodeObject(w.ok)), ['v1'], 'of the write');
  await c.idle();
  const now = Date.now();
  const r = await c.node(a).getValueAs(key, now, {}, READ);
  t.ok('value' in r, 'value');
  if ('value' in r) {
    t.equal(r.atMs, now, 'at the read\'s time');
    t.same(r.value, await c.node(a).getValue(key, now), 'what getValue resolves with');
  }
});

t.test('what write() and getValue() reject with goes to failed', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { requestTimeoutMs: 300 } });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('nq');
  c.net.partition([[a], [b, d]], 'refuse', false);
  const nq = errOf(await c.node(a).writeAs(key, set('x'), { w: 2 }, WRITE));
  t.ok(nq instanceof NoQuorumError, 'quorum missed: NoQuorumError');
  t.equal((nq as Error).message, 'NOQUORUM write: 1 of 2 replicas acknowledged (the write may be partially applied)');
  const rq = errOf(await c.node(a).getValueAs(key, Date.now(), { r: 2 }, READ));
  t.equal((rq as Error).message, 'NOQUORUM read: 1 of 2 replicas answered', 'read quorum missed');
  // Thrown before anything is sent (runPut's and runGet's start): failed all the same.
  t.ok(errOf(await c.node(a).writeAs(key, set('w'), { w: 4 }, WRITE)) instanceof QuorumError, 'W above N');
  t.ok(errOf(await c.node(a).getValueAs(key, Date.now(), { r: 4 }, READ)) instanceof QuorumError, 'R above N');
  // W that can never be met (the others known down, no fallbacks): nothing written, failed.
  c.net.heal();
  c.net.partition([[a], [b, d]], 'refuse', true);
  c.settings = { ...c.settings, sloppyQuorum: false };
  t.match((errOf(await c.node(a).writeAs(key, set('z'), { w: 2 }, WRITE)) as Error).message, /^NOQUORUM write: 0 of 2 /, 'W out of reach');
});

t.test('a forwarded write: the remote object to stored, a failed forward to failed', async (t) => {
  const c = await startCluster(t, { nodes: 5, n: 3, settings: { readQuorum: 2, writeQuorum: 2 } });
  const outsider = c.ids[0]!;
  const key = c.keyWithPreflist((p) => !p.includes(outsider), 'fwd');
  const w = await c.node(outsider).writeAs(key, set('via-outsider'), {}, WRITE);
  t.ok('ok' in w && !Buffer.isBuffer(w.ok), 'an object');
  if ('ok' in w && !Buffer.isBuffer(w.ok)) t.same(values(w.ok as VersionedObject), ['via-outsider']);
  t.equal(c.node(outsider).stats.forwards, 1, 'forwarded');
  c.net.downIn.set(outsider, new Set(c.ring().preflist(keySlot(key))));
  t.ok(errOf(await c.node(outsider).writeAs(key, set('nope'), {}, WRITE)) instanceof UnavailableError, 'no primary up: CLUSTERDOWN');
});

t.test('a throw of either mapping rejects the promise with it, as a continuation\'s would', async (t) => {
  const c = await startCluster(t, { nodes: 3, n: 3, settings: { requestTimeoutMs: 300 } });
  const [a, b, d] = c.ids as [string, string, string];
  const key = Buffer.from('throws');
  const boom = new Error('boom');
  const thrower = { stored: (): never => { throw boom; }, failed: (): never => { throw boom; } };
  const readThrower = { value: (): never => { throw boom; }, failed: (): never => { throw boom; } };
  await t.rejects(c.node(a).writeAs(key, set('v'), {}, thrower), boom, 'stored threw');
  await c.idle();
  await t.rejects(c.node(a).getValueAs(key, Date.now(), {}, readThrower), boom, 'value threw');
  await t.rejects(c.node(a).writeAs(key, set('v'), { w: 4 }, thrower), boom, 'failed threw on a bad W');
  await t.rejects(c.node(a).getValueAs(key, Date.now(), { r: 4 }, readThrower), boom, 'failed threw on a bad R');
  c.net.partition([[a], [b, d]], 'refuse', false);
  await t.rejects(c.node(a).writeAs(key, set('x'), { w: 2 }, thrower), boom, 'failed threw on a missed quorum');
  await t.rejects(c.node(a).getValueAs(key, Date.now(), { r: 2 }, readThrower), boom, 'failed threw on a missed read quorum');
});
