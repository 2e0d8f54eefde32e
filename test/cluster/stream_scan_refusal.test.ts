// The source side of slot streaming refuses a STREAM_SCAN of slots it does not hold in full
// (stream_source.ts serveStreamScan, StreamManager.notHeld), and a receiver then takes the slots
// from its next source. Real StreamManagers and keyspaces over an in-process bus: a handler's
// error reaches the requester as a RemoteError with the handler's code, as an ERROR frame does.
//
// Without the refusal a swept slot reads as empty and `done`, and the receiver stores nothing
// for it: the "2 holders" short copies of elastic.test.ts (docs/KNOWN_ISSUES.md).
import t from 'tap';
import type { ClusterBus } from '../../src/cluster/bus.js';
import type { BusHandler } from '../../src/cluster/connection.js';
import { ClusterError, RemoteError } from '../../src/cluster/errors.js';
import { MembershipTable, type MemberRecord, type MemberState } from '../../src/cluster/membership.js';
import { decodeStreamScanReply, encodeStreamScan, encodeStreamScanReply, StreamMessageType, type StreamScanReply } from '../../src/cluster/stream_codec.js';
import { loadStreamProgress, StreamManager } from '../../src/cluster/stream_manager.js';
import { mergeStreamPage } from '../../src/cluster/stream_merge.js';
import { emptyProgress, type StreamProgress, type StreamTask } from '../../src/cluster/stream_progress.js';
import { buildRing, type Ring } from '../../src/coordinator/ring.js';
import { RingTransition } from '../../src/coordinator/ring_transition.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { applyWrite, contextOf, EMPTY_OBJECT, encodeObject } from '../../src/coordinator/object.js';
import { dataKey } from '../../src/server/key_layout.js';
import type { Entry, RangeOptions } from '../../src/storage/types.js';
import { openFixture, type Fixture } from '../server/keyspace_fixture.js';

const RING_OPTIONS = { vnodes: 16, n: 3 };
const ids = ['a', 'b', 'c', 'j'];
const record = (id: string, state: MemberState = 'up'): MemberRecord => ({
  id, host: '127.0.0.1', port: 1, busPort: 2, dc: 'dc1', rack: '', weight: 1, state, incarnation: 1, heartbeat: 1, suspectedAt: null,
});
const ringOf = (members: ReadonlyArray<readonly [string, MemberState]>, view?: 'target'): Ring =>
  buildRing(members.map(([id, state]) => ({ id, weight: 1, dc: 'dc1', rack: '', state })), view === undefined ? RING_OPTIONS : { ...RING_OPTIONS, view });
const NOT_HELD = { code: 'ERR_REMOTE', remoteCode: 'ERR_STREAM_NOT_HELD' };

/** Nodes by id; a request runs the peer's handler and turns its error into a RemoteError. */
class Net {
  readonly #handlers = new Map<string, Map<number, BusHandler>>();

  busFor(self: string): ClusterBus {
    const mine = new Map<number, BusHandler>();
    this.#handlers.set(self, mine); // a restarted node registers again
    const bus: Pick<ClusterBus, 'handle' | 'request'> = {
      handle: (type, fn) => void mine.set(type, fn),
      request: (peer, type, payload) => this.#deliver(self, peer.id ?? '', type, payload),
    };
    return bus as ClusterBus;
  }

  /** A STREAM_SCAN from the test (no member). */
  async scan(to: string, first: number, last: number, o: { maxBytes?: number; from?: Buffer } = {}): Promise<StreamScanReply> {
    const payload = encodeStreamScan({ firstSlot: first, lastSlot: last, maxBytes: o.maxBytes ?? 1 << 20, from: o.from ?? Buffer.alloc(0) });
    return decodeStreamScanReply(await this.#deliver('test', to, StreamMessageType.STREAM_SCAN, payload));
  }

  async #deliver(from: string, to: string, type: number, payload: Buffer): Promise<Buffer> {
    const fn = this.#handlers.get(to)?.get(type);
    if (fn === undefined) throw new ClusterError('ERR_PEER_UNREACHABLE', `${to} is not on this net`);
    try {
      return await fn(payload, { id: from, remoteAddress: '127.0.0.1', remotePort: 1 });
    } catch (err) {
      throw new RemoteError((err as { code?: string }).code ?? 'ERR', (err as Error).message);
    }
  }
}

interface TestNode {
  readonly manager: StreamManager;
  readonly fx: Fixture;
  readonly progress: StreamProgress;
  /** The rings this node sees; replace them to change its view. */
  readonly view: { cur: Ring; tgt: Ring };
  readonly logs: string[];
}

async function startNode(
  t: Parameters<typeof openFixture>[0],
  net: Net,
  id: string,
  o: { cur: Ring; tgt?: Ring; state?: MemberState; progress?: StreamProgress; fx?: Fixture; run?: boolean },
): Promise<TestNode> {
  const fx = o.fx ?? (await openFixture(t));
  const table = MembershipTable.create(record(id, o.state), Date.now(), { nodeTimeoutMs: 60_000 }, ids.filter((x) => x !== id).map((x) => record(x)));
  const view = { cur: o.cur, tgt: o.tgt ?? o.cur };
  const logs: string[] = [];
  const progress = o.progress ?? emptyProgress();
  const manager = new StreamManager({
    selfId: id,
    table,
    updateSelf: () => undefined,
    rings: { current: () => view.cur, target: () => view.tgt },
    isUp: () => true,
    bus: net.busFor(id),
    keyspace: fx.ks,
    maxBytesPerSec: () => 0,
    gossipIntervalMs: 100,
    dir: fx.dir,
    progress,
    log: (level, msg) => void logs.push(`${level} ${msg}`),
    onLeft: () => undefined,
  });
  t.teardown(() => manager.close()); // a failed assertion must not leave it ticking
  if (o.run === true) manager.start();
  return { manager, fx, progress, view, logs };
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stores `keys` on `fx` as a coordinator's write would have (one plain object each). */
async function store(fx: Fixture, keys: readonly Buffer[]): Promise<void> {
  const opts = fx.ks.writeOptions();
  await mergeStreamPage(
    fx.ks,
    keys.map((key) => ({ key, object: encodeObject(applyWrite(EMPTY_OBJECT, contextOf(EMPTY_OBJECT), 'w.1', { value: Buffer.from(`v-${key}`), writtenAtMs: 1, expiresAtMs: 0 }, opts)) })),
  );
}

const task = (first: number, last: number, sources: readonly string[]): StreamTask => ({ first, last, sources, next: Buffer.alloc(0), bytes: 0, keys: 0 });

t.test('a swept slot is refused (a later chunk, a read the sweep overlapped, after a restart); a receiver takes it from its next source, or from a current replica; streamed in again it is served', async (t) => {
  const ring = ringOf(ids.map((id) => [id, 'up']));
  // A slot of a, b and j, not c: c sweeps its stale copy at its restart sweep.
  let tag = '';
  for (let i = 0; tag === ''; i++) {
    const p = ring.preflist(keySlot(Buffer.from(`t${i}`)));
    if (p.includes('a') && p.includes('b') && p.includes('j') && !p.includes('c')) tag = `t${i}`;
  }
  const s = keySlot(Buffer.from(tag));
  const keys = [1, 2, 3].map((i) => Buffer.from(`{${tag}}${i}`));
  const net = new Net();
  const a = await startNode(t, net, 'a', { cur: ring });
  await store(a.fx, keys);
  const c = await startNode(t, net, 'c', { cur: ring, run: true });
  await store(c.fx, keys);

  t.equal((await net.scan('c', s, s)).entries.length, 3, 'before its sweep, c serves its copy');
  const firstChunk = await net.scan('c', s, s, { maxBytes: 1 });
  t.same([firstChunk.entries.length, firstChunk.done], [1, false], 'a first chunk of one key');

  // A read in flight while c sweeps: the engine read waits until the sweep has deleted the keys.
  const engine = c.fx.ks.engine as { range: (o?: RangeOptions) => AsyncIterableIterator<Entry> };
  const range = engine.range.bind(engine);
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  let armed = true;
  engine.range = (o) => {
    if (!armed) return range(o);
    armed = false;
    return (async function* () {
      await gate;
      yield* range(o);
    })();
  };
  const inFlight = net.scan('c', s, s);
  inFlight.catch(() => undefined);
  await waitFor('c\'s restart sweep', () => c.manager.info().keysDropped >= keys.length);
  release();
  await t.rejects(inFlight, NOT_HELD, 'a read that overlapped the sweep is refused at its end');
  t.same((await c.fx.ks.engine.get(dataKey(keys[0]!))) ?? null, null, 'c has no copy any more');
  await t.rejects(net.scan('c', s, s, { from: firstChunk.next }), NOT_HELD, 'the next chunk of a scan begun before the sweep is refused');
  let held = s;
  while (!ring.preflist(held).includes('c')) held--;
  t.equal((await net.scan('c', held, held)).done, true, `a slot c holds (${held}) is served`);
  const upTo = await net.scan('c', held, s);
  const hole = upTo.next.readUInt16BE(1);
  t.ok(!upTo.done && hole > held && hole <= s && !ring.preflist(hole).includes('c'), `a range from a slot c holds is served up to the first slot it swept (${hole}), not done`);
  await t.rejects(net.scan('c', held, s, { from: upTo.next }), { message: new RegExp(`slots ${held}-${s} not held in full here: slot ${hole} has no whole copy`) }, 'and refused from there, naming the slot');
  t.ok(c.manager.info().scansRefused >= 3, `counted (stream_scans_refused ${c.manager.info().scansRefused})`);
  t.match(c.manager.infoLines().join('\n'), /stream_scans_refused:\d+/, 'and reported in CLUSTER INFO');

  // A receiver whose task lists c first: refused there, it takes the slot from a.
  const j = await startNode(t, net, 'j', { cur: ring, progress: { ...emptyProgress(), tasks: [task(s, s, ['c', 'a'])] }, run: true });
  await waitFor('j\'s task', () => j.progress.tasks.length === 0);
  for (const k of keys) t.ok(await j.fx.ks.engine.get(dataKey(k)), `j holds ${k} (from a)`);
  t.match(j.logs.join('\n'), /from c failed \(slots \d+-\d+ not held in full here: slot \d+ has no whole copy here/, 'after c refused');
  await j.manager.close();
  // A task planned with c as its only source (c was a current replica then): it goes on from a
  // current replica of the slot now instead of waiting for c for good.
  const b = await startNode(t, net, 'b', { cur: ring, progress: { ...emptyProgress(), tasks: [task(s, s, ['c'])] }, run: true });
  await waitFor('b\'s task', () => b.progress.tasks.length === 0);
  for (const k of keys) t.ok(await b.fx.ks.engine.get(dataKey(k)), `b holds ${k} (from a current replica)`);
  t.match(b.logs.join('\n'), /from c failed \(slots \d+-\d+ not held in full here/, 'after its only planned source refused');
  await b.manager.close();

  // c restarts: the mark was persisted before the sweep deleted anything.
  await c.manager.close();
  const c2 = await startNode(t, net, 'c', { cur: ring, progress: loadStreamProgress(c.fx.dir, () => undefined), fx: c.fx, run: true });
  t.ok(c2.progress.dropped.has(s), 'the mark survives a restart');
  await t.rejects(net.scan('c', s, s), NOT_HELD, 'so a restarted node refuses the swept slot too');

  // b is gone for good (a FORGET): c enters every slot of the 3-node ring and streams in those
  // it lacks, from a or j (b, first for some, does not answer); the mark is cleared then.
  await new Promise((r) => setTimeout(r, 300)); // a tick saw the 4-node ring
  const three = ringOf(['a', 'c', 'j'].map((id) => [id, 'up']));
  t.ok(three.preflist(s).includes('c'), 'c is a current owner of the slot again');
  c2.view.cur = three;
  c2.view.tgt = three;
  await t.rejects(net.scan('c', s, s), NOT_HELD, 'refused while it is not streamed in');
  await waitFor('c\'s removal gains', () => c2.progress.tasks.length === 0 && c2.progress.streamed.has(s));
  t.notOk(c2.progress.dropped.has(s), 'streamed in again: the mark is cleared');
  const back = await net.scan('c', s, s);
  t.same(back.entries.map((e) => e.key.toString()).sort(), keys.map((k) => k.toString()), 'and c serves the slot whole');
  await c2.manager.close();
});

t.test('slots a node is still streaming in, or gains and has not streamed, are refused', async (t) => {
  const net = new Net();
  const four = ringOf(ids.map((id) => [id, 'up']));
  // A removal gain in progress: c is a current owner of slot s but its task has not finished.
  const s = four.preflist(100).includes('c') ? 100 : four.preflist(101).includes('c') ? 101 : 102;
  const c = await startNode(t, net, 'c', { cur: four, progress: { ...emptyProgress(), tasks: [task(s, s + 1, ['a'])] } });
  await t.rejects(net.scan('c', s, s), { remoteCode: 'ERR_STREAM_NOT_HELD', message: /still streaming in/ }, 'a slot a task of the source covers');
  const before = await net.scan('c', s - 5, s);
  t.same([before.done, before.next.readUInt16BE(1)], [false, s], 'a range that runs into the task stops before it');
  await t.rejects(net.scan('c', s - 5, s, { from: before.next }), NOT_HELD, 'and is refused from there');
  t.equal((await net.scan('c', s + 2, s + 10)).done, true, 'slots outside it are served');
  // A joiner's gains (pending replica) before they are streamed in.
  const cur = ringOf(['a', 'b', 'c'].map((id) => [id, 'up']));
  const tgt = ringOf([['a', 'up'], ['b', 'up'], ['c', 'up'], ['j', 'joining']], 'target');
  const gain = new RingTransition(cur, tgt).gainedBy('j')[0]!.slot;
  const j = await startNode(t, net, 'j', { cur, tgt, state: 'joining' });
  await t.rejects(net.scan('j', gain, gain), { remoteCode: 'ERR_STREAM_NOT_HELD', message: /gained and not streamed in yet/ }, 'a slot the node gains and has not streamed');
  j.progress.streamed.add(gain);
  t.equal((await net.scan('j', gain, gain)).done, true, 'served once streamed in');
  await c.manager.close();
  await j.manager.close();
});

t.test('a slot the node entered the current preflist of after its last tick (a member removed, no task yet) is refused', async (t) => {
  const net = new Net();
  const four = ringOf(ids.map((id) => [id, 'up']));
  const three = ringOf(['a', 'c', 'j'].map((id) => [id, 'up']));
  // c's tick is busy streaming a task from a, which answers only when released: the tick that
  // would plan c's removal gains cannot run meanwhile.
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  net.busFor('a').handle(StreamMessageType.STREAM_SCAN, async () => {
    await gate;
    return encodeStreamScanReply({ done: true, next: Buffer.alloc(0), entries: [] });
  });
  let busy = 0;
  while (!four.preflist(busy).includes('c')) busy++;
  const c = await startNode(t, net, 'c', { cur: four, progress: { ...emptyProgress(), tasks: [task(busy, busy, ['a'])] }, run: true });
  await new Promise((r) => setTimeout(r, 200)); // the first tick took the 4-node ring and waits on a
  let entered = 0;
  while (four.preflist(entered).includes('c') || entered === busy) entered++;
  c.view.cur = three;
  c.view.tgt = three;
  await t.rejects(net.scan('c', entered, entered), { remoteCode: 'ERR_STREAM_NOT_HELD', message: /entered this node's preflist since its last tick/ }, 'refused until a tick plans it');
  let kept = busy + 1;
  while (!four.preflist(kept).includes('c')) kept++;
  t.equal((await net.scan('c', kept, kept)).done, true, 'a slot it held before is served');
  release();
  await c.manager.close();
});

t.test('a task none of whose sources holds every slot: each source serves up to its hole, the next goes on from there', async (t) => {
  const net = new Net();
  const ring = ringOf(ids.map((id) => [id, 'up']));
  let s1 = 0;
  while (!(ring.preflist(s1).includes('j') && ring.preflist(s1 + 1).includes('j'))) s1++;
  const s2 = s1 + 1;
  const tagOf = (slot: number): string => {
    for (let i = 0; ; i++) if (keySlot(Buffer.from(`h${i}`)) === slot) return `h${i}`;
  };
  const k1 = [1, 2].map((i) => Buffer.from(`{${tagOf(s1)}}${i}`));
  const k2 = [1, 2].map((i) => Buffer.from(`{${tagOf(s2)}}${i}`));
  // c swept s2 and a swept s1 (marks as a sweep leaves them); each holds the other slot.
  const c = await startNode(t, net, 'c', { cur: ring, progress: { ...emptyProgress(), dropped: new Set([s2]) } });
  await store(c.fx, k1);
  const a = await startNode(t, net, 'a', { cur: ring, progress: { ...emptyProgress(), dropped: new Set([s1]) } });
  await store(a.fx, k2);
  const j = await startNode(t, net, 'j', { cur: ring, progress: { ...emptyProgress(), tasks: [task(s1, s2, ['c', 'a'])] }, run: true });
  await waitFor('j\'s task', () => j.progress.tasks.length === 0);
  for (const k of [...k1, ...k2]) t.ok(await j.fx.ks.engine.get(dataKey(k)), `j holds ${k}`);
  t.match(j.logs.join('\n'), new RegExp(`from c failed \\(slots ${s1}-${s2} not held in full here: slot ${s2} has no whole copy`), 'c served s1, then refused s2');
  await Promise.all([a, c, j].map((n) => n.manager.close()));
});

t.test('a slot a node became a current replica of without streaming it (the first of two joiners, up) is refused', async (t) => {
  const net = new Net();
  const three = ringOf(['a', 'b', 'c'].map((id) => [id, 'up']));
  const four = ringOf(['a', 'b', 'c', 'd'].map((id) => [id, 'up']));
  const five = ringOf([['a', 'up'], ['b', 'up'], ['c', 'up'], ['d', 'up'], ['j', 'joining']], 'target');
  // d streamed its gains of the 3 -> 5 change and turned up; j still joins. Slot s: d is in its
  // current preflist now, but not in the target one: d never gained it, holds nothing of it.
  let s = 0;
  while (!(four.preflist(s).includes('d') && !five.preflist(s).includes('d'))) s++;
  const gains = new RingTransition(three, ringOf([['a', 'up'], ['b', 'up'], ['c', 'up'], ['d', 'joining'], ['j', 'joining']], 'target')).gainedBy('d').map((m) => m.slot);
  t.notOk(gains.includes(s), `d did not gain slot ${s}`);
  const d = await startNode(t, net, 'd', { cur: three, tgt: five, progress: { ...emptyProgress(), streamed: new Set(gains) }, run: true });
  await new Promise((r) => setTimeout(r, 300)); // a tick took the 3-node current ring
  d.view.cur = four; // d is up
  await new Promise((r) => setTimeout(r, 300)); // and a tick saw it
  await t.rejects(net.scan('d', s, s), { remoteCode: 'ERR_STREAM_NOT_HELD', message: /has no whole copy/ }, 'refused');
  t.equal((await net.scan('d', gains[0]!, gains[0]!)).done, true, 'a slot it streamed in is served');
  await d.manager.close();
});
