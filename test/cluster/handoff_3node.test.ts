// Hinted handoff with three real ringkv processes on 127.0.0.1 (issue 5), N=2 so every slot has
// one node outside its preference list to stand in as the fallback:
//   1. kill -9 node C; once A and B see it down, 120 writes at W=2 through A: every key whose
//      replicas include C is acknowledged by its fallback, which stores a durable hint (INFO
//      hints_pending and CLUSTER PREFLIST show them); reads at R=2 use the healthy nodes.
//   2. sloppy-quorum no: a write or read that needs C fails with the exact NOQUORUM texts, a key
//      without C still works; hinted-handoff no: the fallback still acks, no hint is stored.
//   3. kill -9 the fallback B while it holds hints, restart it: the same hints are pending.
//   4. restart C: the hints are handed off (hints_delivered), hints_pending drops to 0 on A and B.
//   5. stop A and B: C alone answers every key at R=1 from its own copy.
// Every process is stopped by pid and its temp dir removed at teardown (node_process.ts).
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import type { RingkvNode } from '../helpers/node_process.js';
import { waitUntil } from '../helpers/fault_cluster.js';
import { hintInfo, seesDown, startHandoffCluster } from '../helpers/handoff_cluster.js';

const KEY_COUNT = 120;

type PreflistReply = [number, Array<[string, string, string, string, string, ...unknown[]]>, Array<[string, string]>];


t.test('hinted handoff across kill -9 of the target and of the fallback', async (t) => {
  const nodes: RingkvNode[] = await startHandoffCluster(t);
  const [A, B, C] = nodes as [RingkvNode, RingkvNode, RingkvNode];
  let a = await connectIoredis(t, A.port);
  let b = await connectIoredis(t, B.port);
  const ids = await Promise.all([a, b].map(async (x) => String(await cmd(x, 'CLUSTER', 'MYID'))));
  const c0 = await connectIoredis(t, C.port);
  const idC = String(await cmd(c0, 'CLUSTER', 'MYID'));
  c0.disconnect();
  const [idA, idB] = ids as [string, string];
  await waitUntil('membership convergence', async () => String(await cmd(a, 'CLUSTER', 'INFO')).includes('cluster_known_nodes:3\r\n'));
  t.equal((await hintInfo(a)).hints_pending, 0, 'no hints in a healthy cluster');

  // 1. C dies; A and B notice; writes at W=2 through A.
  await C.kill9();
  await waitUntil('A and B see C down', async () => (await seesDown(a, idC)) && (await seesDown(b, idC)));
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `hk:${i}`);
  for (const k of keys) t.equal(await a.set(k, `v-${k}`), 'OK', `W=2 write of ${k} with C down`);
  const prefs = await Promise.all(keys.map(async (k) => [k, (await cmd(a, 'CLUSTER', 'PREFLIST', k)) as PreflistReply] as const));
  const hinted = prefs.filter(([, p]) => p[1].some((e) => e[1] === 'fallback' && e[2] === idC));
  const holders = new Map<string, number>();
  for (const [, p] of hinted) {
    const fb = p[1].find((e) => e[1] === 'fallback')!;
    holders.set(fb[0], (holders.get(fb[0]) ?? 0) + 1);
    t.same(p[2], [[fb[0], idC]], 'PREFLIST lists the pending hint: the fallback holds one for C');
  }
  t.ok(hinted.length > KEY_COUNT / 3, `${hinted.length} of ${KEY_COUNT} keys have C as a replica`);
  t.ok(prefs.filter(([, p]) => !p[1].some((e) => e[1] === 'fallback')).every(([, p]) => p[2].length === 0), 'keys without C have no hints');
  const infoA = await hintInfo(a);
  const infoB = await hintInfo(b);
  t.equal(infoA.hints_pending, holders.get(idA) ?? 0, 'INFO hints_pending on A = its fallback keys');
  t.equal(infoB.hints_pending, holders.get(idB) ?? 0, 'INFO hints_pending on B = its fallback keys');
  t.ok((infoB.hints_pending ?? 0) > 0, 'B holds hints (needed for step 3)');
  t.ok((infoA.hints_bytes ?? 0) + (infoB.hints_bytes ?? 0) > hinted.length * 20, 'hints_bytes counts the stored objects');
  // Reads use the first R healthy nodes: R=2 is met by the primary and the fallback.
  for (const [k] of hinted.slice(0, 10)) t.equal(await b.get(k), `v-${k}`, `R=2 read of ${k} through B with C down`);

  // 2. sloppy-quorum no: strict quorums of primaries only.
  const [strictKey] = hinted[0]!;
  const safe = prefs.find(([, p]) => p[2].length === 0 && p[1].every((e) => e[1] === 'primary'));
  t.ok(safe !== undefined, 'some key has only A and B as replicas');
  // Per node, as every CONFIG SET: a write through A may be coordinated by B (A forwards it).
  for (const x of [a, b]) t.equal(await cmd(x, 'CONFIG', 'SET', 'sloppy-quorum', 'no'), 'OK');
  await t.rejects(
    a.set(strictKey, 'strict'),
    { message: 'NOQUORUM write: 0 of 2 replicas acknowledged (the write may be partially applied)' },
    'a write needing C fails instead of using a fallback',
  );
  await t.rejects(a.get(strictKey), { message: 'NOQUORUM read: 0 of 2 replicas answered' }, 'a read needing C fails');
  t.equal(await a.set(safe![0], 'strict-ok'), 'OK', 'a key whose replicas are up still works');
  for (const x of [a, b]) t.equal(await cmd(x, 'CONFIG', 'SET', 'sloppy-quorum', 'yes'), 'OK');
  t.equal(await a.get(strictKey), `v-${strictKey}`, 'the failed strict write was never applied');
  // hinted-handoff no: the fallback still acknowledges, but keeps no hint.
  const extra = Array.from({ length: 40 }, (_, i) => `nohint:${i}`);
  t.equal(await cmd(a, 'CONFIG', 'SET', 'hinted-handoff', 'no'), 'OK');
  t.equal(await cmd(b, 'CONFIG', 'SET', 'hinted-handoff', 'no'), 'OK');
  for (const k of extra) t.equal(await a.set(k, 'x'), 'OK', `W=2 write of ${k} without hints`);
  t.same([(await hintInfo(a)).hints_pending, (await hintInfo(b)).hints_pending], [infoA.hints_pending, infoB.hints_pending], 'hinted-handoff no: no new hints');
  t.ok(((await hintInfo(a)).hints_skipped ?? 0) + ((await hintInfo(b)).hints_skipped ?? 0) > 0, 'the skipped hints are counted');
  t.equal(await cmd(a, 'CONFIG', 'SET', 'hinted-handoff', 'yes'), 'OK');
  t.equal(await cmd(b, 'CONFIG', 'SET', 'hinted-handoff', 'yes'), 'OK');

  // 3. The fallback B dies with its hints and comes back before C: they are still there.
  await B.kill9();
  await B.start();
  b = await connectIoredis(t, B.port);
  t.equal((await hintInfo(b)).hints_pending, infoB.hints_pending, 'B still holds every hint after kill -9 and restart');
  t.equal((await hintInfo(b)).hints_bytes, infoB.hints_bytes);
  await waitUntil('A sees B up again', async () => !(await seesDown(a, idB)));

  // 4. C comes back: A and B hand their hints off.
  await C.start();
  const started = Date.now();
  const c = await connectIoredis(t, C.port);
  const drainMs = await waitUntil('hints handed off', async () => (await hintInfo(a)).hints_pending === 0 && (await hintInfo(b)).hints_pending === 0);
  const afterA = await hintInfo(a);
  const afterB = await hintInfo(b);
  t.equal((afterA.hints_delivered ?? 0) + (afterB.hints_delivered ?? 0), hinted.length, 'every hint acknowledged by C exactly once');
  t.equal(afterA.hints_dropped, 0);
  t.equal(afterB.hints_dropped, 0);
  t.equal(afterA.hints_bytes, 0);
  t.ok(((await hintInfo(c)).hints_received ?? 0) >= hinted.length, 'C merged every handed-off hint');
  t.comment(`${hinted.length} hints drained ${Date.now() - started} ms after C was ready (${drainMs} ms polling)`);
  const [, , pendingAfter] = (await cmd(a, 'CLUSTER', 'PREFLIST', strictKey)) as PreflistReply;
  t.same(pendingAfter, [], 'PREFLIST: no pending hints left for the key');

  // 5. C alone, reading its own copies (R=1, the others stopped).
  await A.stop();
  await B.stop();
  t.equal(await cmd(c, 'CLIENT', 'QUORUM', '1', '1'), 'OK');
  const got = await Promise.all(hinted.map(([k]) => c.get(k)));
  t.same(got, hinted.map(([k]) => `v-${k}`), `C holds all ${hinted.length} hinted keys locally`);
});
