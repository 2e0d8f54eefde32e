// Elastic membership (issue 6): two joins at once, the second slow; once the first is up, the
// three old owners restart while the second still streams from them. A restarted old owner
// forgets which slots it kept for the second joiner (its restart sweep plans from its restored
// view: stream_manager.ts #owned) and sweeps them 3 s later, while the joiner's tasks still name
// it as a source. A STREAM_SCAN of a swept slot must be refused (stream_source.ts), and the
// joiner must take the slot from another replica; an empty answer would leave the key short
// ("2 holders", docs/KNOWN_ISSUES.md). Checked: every preloaded key on exactly N of the 5
// members, counted before any read (a read repairs), then read back with its value.
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes, type RingkvNode } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import { badReplicaCounts, clusterInfo, elasticConfig, missingKeys, nodeFlags, waitUntil, Workload } from './elastic_harness.js';

const PRELOAD_KEYS = 1500;
const VALUE_BYTES = 400;
const STREAM_RATE = '1mb';
/** The second joiner's ~0.4 MB take ~15 s: it still streams well after the restarted owners sweep (3 s after they start). */
const SLOW_JOINER_STREAM_RATE = '25kb';
const JOINS_TIMEOUT_MS = 120_000;
/** No anti-entropy round after the first: it could repair a short copy before the count (see elastic.test.ts). */
const ANTI_ENTROPY_INTERVAL_MS = 600_000;

t.test('old owners restarted while a joiner streams from them: it still ends with N copies of every key', async (t) => {
  const busPorts = await freePorts(5);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  const extra = { 'stream-max-bytes-per-sec': STREAM_RATE, 'anti-entropy-interval-ms': ANTI_ENTROPY_INTERVAL_MS };
  const nodes: RingkvNode[] = await startNodes(t, 3, (i, ports) => ({
    config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(','), extra),
  }));
  const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
  const clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  await waitUntil('3 nodes converge', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3));
  const w = new Workload('rk', VALUE_BYTES);
  await w.preload(clients, PRELOAD_KEYS);
  t.same(w.failures, [], 'preload: every write acknowledged');
  await waitUntil('every preloaded key on N members', async () => (await badReplicaCounts(clients[0]!, [...w.acked.keys()])).length === 0);

  const joiners = await Promise.all(
    [STREAM_RATE, SLOW_JOINER_STREAM_RATE].map((rate, j) => startNode(t, { config: elasticConfig(busPorts[3 + j]!, seeds, { ...extra, 'join-streaming': 'yes', 'stream-max-bytes-per-sec': rate }) })),
  );
  const jc = await Promise.all(joiners.map((n) => connectIoredis(t, n.port)));
  const [dc, ec] = jc as [Redis, Redis];
  const [dId, eId] = await Promise.all(jc.map(async (c) => String(await cmd(c, 'CLUSTER', 'MYID'))));
  await waitUntil('the first joiner is up', async () => (await nodeFlags(ec)).get(dId!)?.includes('joining') === false && (await clusterInfo(dc)).get('stream_state') === 'idle', JOINS_TIMEOUT_MS);
  const eBefore = await clusterInfo(ec);
  t.equal(eBefore.get('stream_state'), 'joining', `the second joiner still streams (${eBefore.get('stream_slots_remaining')} slots remaining)`);

  // Every old owner restarts now (the same data dir and port): each one's restart sweep drops
  // the slots it lost to the first joiner, including those the second still gains from it.
  await Promise.all(nodes.map((n) => n.restart()));
  const back: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  let eInfoLast = new Map<string, string>();
  await waitUntil('both joins complete', async () => {
    const f = await nodeFlags(dc);
    eInfoLast = await clusterInfo(ec);
    return (await clusterInfo(ec)).get('stream_state') === 'idle' && f.get(eId!)?.includes('joining') === false;
  }, JOINS_TIMEOUT_MS).catch((err: unknown) => {
    const e = joiners[1]!.log.split('\n');
    t.comment(`second joiner: ${JSON.stringify(Object.fromEntries(eInfoLast))}\n${e.filter((l) => /stream/.test(l)).slice(-30).join('\n')}`);
    throw err;
  });
  const refused = await Promise.all(back.map(async (c) => Number((await clusterInfo(c)).get('stream_scans_refused'))));
  const eInfo = await clusterInfo(ec);
  t.comment(`old owners refused ${refused.join(', ')} scans; the second joiner streamed ${eInfo.get('stream_slots_streamed')} slots, ${eInfo.get('stream_keys_streamed')} objects`);

  // Copies counted before the keys are read back: a read repairs a replica that lacks the key.
  await waitUntil('old owners dropped the moved slots', async () => (await badReplicaCounts(dc, [...w.acked.keys()])).length === 0, 20_000).catch(() => undefined);
  t.same((await badReplicaCounts(dc, [...w.acked.keys()])).slice(0, 10), [], 'every preloaded key on exactly N of 5 members');
  t.same(await missingKeys(ec, w.acked), [], `all ${w.acked.size} preloaded keys read back with their value`);
});
