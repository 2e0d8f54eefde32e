// A join interrupted by kill -9 of the joining node resumes where it stopped (issue 6): the node
// restarts as `joining`, continues from its persisted per-slot positions instead of streaming
// everything again, turns up, and no acknowledged write (before or during the join) is lost.
// Writes made WHILE the joiner is down (to every slot it gains, including those it streamed
// before the crash, which the resumed scan does not go over again) reach it as durable hints kept
// by their coordinators: with anti-entropy off and none of those keys read before the check (no
// read repair), each of them is held by exactly N members once the join is done, the joiner among
// them wherever it is a replica.
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { MAX_TASK_SLOTS } from '../../src/cluster/stream_plan.js';
import { badReplicaCounts, clusterInfo, elasticConfig, hintsPending, missingKeys, nodeFlags, waitUntil, Workload } from './elastic_harness.js';

const PRELOAD_KEYS = 2400;
const VALUE_BYTES = 1000;
/** ~1.8 MB to stream at this rate: about 4 s, long enough to interrupt in the middle. */
const STREAM_RATE = '400kb';
/** Keys written through the old nodes while the joiner is down (never read before the check). */
const DOWN_KEYS = 300;
/** Anti-entropy off: only hints (and the resumed scan) can bring the joiner what it missed. */
const NO_ANTI_ENTROPY = { 'anti-entropy-interval-ms': 0 };

t.test('a join interrupted by kill -9 of the joining node resumes without starting over', async (t) => {
  const busPorts = await freePorts(4);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const nodes = await startNodes(t, 3, (i, ports) => ({ config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(','), NO_ANTI_ENTROPY) }));
  const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
  const clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  await waitUntil('3 nodes converge', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3));
  const w = new Workload('rk', VALUE_BYTES);
  await w.preload(clients, PRELOAD_KEYS);
  t.same(w.failures, [], 'preload acknowledged');
  w.start(t, () => clients, 2);

  const d = await startNode(t, { config: elasticConfig(busPorts[3]!, seeds, { ...NO_ANTI_ENTROPY, 'join-streaming': 'yes', 'stream-max-bytes-per-sec': STREAM_RATE }) });
  let dc = await connectIoredis(t, d.port);
  const dId = String(await cmd(dc, 'CLUSTER', 'MYID'));
  await waitUntil('a quarter of the join is streamed', async () => Number((await clusterInfo(dc)).get('stream_slots_streamed')) >= 3000);
  const before = await clusterInfo(dc);
  t.equal(before.get('stream_state'), 'joining', 'still joining when killed');
  const slotsBefore = Number(before.get('stream_slots_streamed'));
  const remainingBefore = Number(before.get('stream_slots_remaining'));
  await d.kill9();
  dc.disconnect();
  // While it is down: fresh keys through the old nodes. Those in slots it already streamed are
  // not scanned again after the restart; only a hint kept for the pending replica brings them.
  const downKeys = new Map<string, string>();
  for (let i = 0; i < DOWN_KEYS; i++) {
    const k = `down:${i}`;
    const v = `${k}:`.padEnd(VALUE_BYTES, 'd');
    try {
      await clients[i % clients.length]!.set(k, v);
      downKeys.set(k, v);
    } catch (err) {
      t.match((err as Error).message, /^NOQUORUM/, `a write while the joiner is down fails only with NOQUORUM (${k})`);
    }
  }
  t.ok(downKeys.size >= DOWN_KEYS * 0.9, `${downKeys.size} of ${DOWN_KEYS} writes acknowledged while the joiner was down`);
  t.ok((await Promise.all(clients.map(hintsPending))).reduce((a, b) => a + b, 0) > 0, 'the coordinators keep hints for the down joiner');
  await d.start();
  dc = await connectIoredis(t, d.port);
  await waitUntil('the restarted node knows what it still has to stream', async () => Number((await clusterInfo(dc)).get('stream_slots_remaining')) > 0);
  const after = await clusterInfo(dc);
  t.equal(after.get('stream_state'), 'joining', 'restarted as joining');
  const total = slotsBefore + remainingBefore;
  const remainingAfter = Number(after.get('stream_slots_remaining'));
  // A crash loses at most the last 250 ms of persisted progress: a task or two (MAX_TASK_SLOTS each) may run again.
  const lag = Math.min(slotsBefore / 2, 2 * MAX_TASK_SLOTS);
  t.ok(remainingAfter <= remainingBefore + lag, `resumed, not restarted: ${remainingAfter} of ${total} slots left after the crash (${remainingBefore} before it, ${slotsBefore} done)`);
  t.ok(Number(after.get('stream_slots_streamed')) >= slotsBefore - lag, `the streamed count survived the crash (${after.get('stream_slots_streamed')} after, ${slotsBefore} before)`);
  await waitUntil('the join completes', async () => (await clusterInfo(dc)).get('stream_state') === 'idle' && (await nodeFlags(clients[0]!)).get(dId)?.includes('joining') === false, 60_000);
  await w.stop();
  // Checked before anything reads those keys (a read would repair them): hints delivered, the
  // old owners' drop done, then every key written while the joiner was down has N holders.
  await waitUntil('hints for the joiner are delivered', async () => (await Promise.all(clients.map(hintsPending))).every((n) => n === 0), 30_000);
  await waitUntil('keys written while the joiner was down are on exactly N members', async () => (await badReplicaCounts(clients[0]!, [...downKeys.keys()])).length === 0, 20_000).catch(() => undefined);
  t.same((await badReplicaCounts(clients[0]!, [...downKeys.keys()])).slice(0, 10), [], `all ${downKeys.size} keys written while the joiner was down are on exactly N members (the joiner where it is a replica), without read repair or anti-entropy`);
  const onJoiner = await Promise.all([...downKeys.keys()].map(async (k) => ((await cmd(dc, 'CLUSTER', 'HOLDERS', k)) as Array<[string, number]>).some(([id, n]) => id === dId && n > 0)));
  // With N=3 of 4 nodes the joiner is a replica of about 3/4 of the slots.
  t.ok(onJoiner.filter(Boolean).length > downKeys.size / 2, `the joiner itself holds ${onJoiner.filter(Boolean).length} of the ${downKeys.size} (about 3/4 expected)`);
  for (const [k, v] of downKeys) w.acked.set(k, v);
  t.same(w.failures, [], `no client errors but NOQUORUM (${w.writes} writes, ${w.noquorum} NOQUORUM)`);
  t.same(w.lostReads, [], 'every read of an acknowledged key found it');

  t.same(await missingKeys(dc, w.acked), [], `all ${w.acked.size} acknowledged keys read back`);
  await waitUntil('old owners dropped the moved slots', async () => (await badReplicaCounts(clients[0]!, [...w.acked.keys()])).length === 0, 15_000).catch(() => undefined);
  t.same((await badReplicaCounts(clients[0]!, [...w.acked.keys()])).slice(0, 10), [], 'every acknowledged key on exactly N members');
});
