// Hints that must not wait for handoff (issue 5), with three real ringkv processes on 127.0.0.1
// (N=2, W=2: every slot has one fallback):
//   1. FLUSHALL deletes the hints the flushed data produced: C is down, writes leave hints for
//      it on A and B, FLUSHALL through A empties hints_pending on both at once (dropped count
//      unchanged: flushed, not lost). Writes made after the FLUSHALL leave new hints; C restarts,
//      those are handed off, and C's copies (CLUSTER PREFLIST, C's own replica read) hold the
//      post-flush keys and none of the flushed ones.
//   2. CLUSTER FORGET of a down node drops the hints held for it at once (well inside
//      max-hint-window-ms, set to an hour), counted in hints_dropped on the holders.
// Every process is stopped by pid and its temp dir removed at teardown (node_process.ts).
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import type { RingkvNode } from '../helpers/node_process.js';
import { waitUntil } from '../helpers/fault_cluster.js';
import { hintInfo, seesDown, startHandoffCluster } from '../helpers/handoff_cluster.js';

const KEY_COUNT = 60;
const HINT_WINDOW_MS = 3_600_000;
/** FORGET must drop the hints well before this (the handoff tick is 200 ms). */
const FORGET_DROP_LIMIT_MS = 15_000;

type PreflistEntry = [string, string, string, string, string, string, number];
type PreflistReply = [number, PreflistEntry[], Array<[string, string]>];

async function preflist(c: Redis, key: string): Promise<PreflistReply> {
  return (await cmd(c, 'CLUSTER', 'PREFLIST', key)) as PreflistReply;
}

/** The keys among `keys` that `id` replicates (a fallback stands in for it while it is down). */
async function keysOf(c: Redis, keys: readonly string[], id: string): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) if ((await preflist(c, k))[1].some((e) => e[0] === id || e[2] === id)) out.push(k);
  return out;
}

async function pendingOn(clients: readonly Redis[]): Promise<number> {
  let n = 0;
  for (const c of clients) n += (await hintInfo(c)).hints_pending ?? 0;
  return n;
}

async function droppedOn(clients: readonly Redis[]): Promise<number> {
  let n = 0;
  for (const c of clients) n += (await hintInfo(c)).hints_dropped ?? 0;
  return n;
}

t.test('FLUSHALL deletes the hints of flushed data; FORGET drops the hints of a removed node at once', async (t) => {
  const nodes: RingkvNode[] = await startHandoffCluster(t, { 'max-hint-window-ms': HINT_WINDOW_MS });
  const [A, B, C] = nodes as [RingkvNode, RingkvNode, RingkvNode];
  const a = await connectIoredis(t, A.port);
  const b = await connectIoredis(t, B.port);
  const c0 = await connectIoredis(t, C.port);
  const idC = String(await cmd(c0, 'CLUSTER', 'MYID'));
  c0.disconnect();
  await waitUntil('membership convergence', async () => String(await cmd(a, 'CLUSTER', 'INFO')).includes('cluster_known_nodes:3\r\n'));
  const holders = [a, b];

  // 1. FLUSHALL while C is down.
  await C.kill9();
  await waitUntil('A and B see C down', async () => (await seesDown(a, idC)) && (await seesDown(b, idC)));
  const flushed = Array.from({ length: KEY_COUNT }, (_, i) => `fk:${i}`);
  for (const k of flushed) t.equal(await a.set(k, `v-${k}`), 'OK', `write of ${k} with C down`);
  const flushedOfC = await keysOf(a, flushed, idC);
  t.ok(flushedOfC.length > 0, `${flushedOfC.length} of the keys have C as a replica`);
  t.equal(await pendingOn(holders), flushedOfC.length, 'one hint per key of C is pending on A and B');
  t.equal(await cmd(a, 'FLUSHALL'), 'OK', 'FLUSHALL reaches the nodes that are up');
  t.equal(await pendingOn(holders), 0, 'FLUSHALL deleted every hint on A and B before replying');
  t.equal(await droppedOn(holders), 0, 'flushed hints are not counted as dropped');
  t.equal(await a.get(flushedOfC[0]!), null, 'the flushed key reads as absent');

  const after = Array.from({ length: KEY_COUNT }, (_, i) => `pk:${i}`);
  for (const k of after) t.equal(await a.set(k, `p-${k}`), 'OK', `post-FLUSHALL write of ${k}`);
  const afterOfC = await keysOf(a, after, idC);
  t.ok(afterOfC.length > 0, `${afterOfC.length} post-FLUSHALL keys have C as a replica`);
  t.equal(await pendingOn(holders), afterOfC.length, 'writes after FLUSHALL leave hints again');

  await C.start();
  const c = await connectIoredis(t, C.port);
  await waitUntil('post-FLUSHALL hints handed off', async () => (await pendingOn(holders)) === 0);
  t.equal((await hintInfo(c)).hints_received, afterOfC.length, 'C received exactly the post-FLUSHALL hints');
  await waitUntil('A sees C up', async () => !(await seesDown(a, idC)));
  for (const k of flushedOfC) {
    const entry = (await preflist(a, k))[1].find((e) => e[0] === idC);
    t.equal(entry?.[6], 0, `C holds no value of flushed key ${k}`);
  }
  for (const k of afterOfC) {
    const entry = (await preflist(a, k))[1].find((e) => e[0] === idC);
    t.equal(entry?.[6], 1, `C holds the post-FLUSHALL key ${k}`);
  }

  // 2. FORGET of a down node: its hints go at once.
  await C.kill9();
  await waitUntil('A and B see C down again', async () => (await seesDown(a, idC)) && (await seesDown(b, idC)));
  const gone = Array.from({ length: KEY_COUNT }, (_, i) => `gk:${i}`);
  for (const k of gone) t.equal(await a.set(k, 'g'), 'OK', `write of ${k} with C down`);
  const pending = await pendingOn(holders);
  t.ok(pending > 0, `${pending} hints pending for C`);
  const dropped0 = await droppedOn(holders);
  t.equal(await cmd(a, 'CLUSTER', 'FORGET', idC), 'OK');
  const ms = await waitUntil('hints for the forgotten node dropped', async () => (await pendingOn(holders)) === 0, FORGET_DROP_LIMIT_MS);
  t.ok(ms < FORGET_DROP_LIMIT_MS, `dropped ${ms} ms after FORGET (window ${HINT_WINDOW_MS} ms)`);
  t.equal((await droppedOn(holders)) - dropped0, pending, 'each one counted in hints_dropped');
  t.equal((await hintInfo(a)).hints_bytes, 0);
  t.equal((await hintInfo(b)).hints_bytes, 0);
});
