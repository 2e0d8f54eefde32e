// Issue 4's D1..D5 example (the Dynamo paper's), played out on three real processes (N=3, W=2,
// R=2) with real concurrency: D1 and D2 are written through Sx; then the bus between Sy and Sz
// is cut in the fault proxy, and D3 through Sy and D4 through Sz, each based on D2's context,
// are both acknowledged (each by its coordinator and Sx). Sx now holds both as siblings, Sy only
// D3, Sz only D4 (read from each replica directly with CLUSTER PREFLIST). A client reads both
// with GETCTX and writes D5 with that context; after the link heals exactly one value, D5,
// remains on every replica.
import t from 'tap';
import type { Redis } from 'ioredis';
import { cmd } from '../helpers/ioredis_client.js';
import { FaultCluster, waitUntil } from '../helpers/fault_cluster.js';
import { replicaAgreement } from './final_state.js';

const KEY = 'cart:{d1d5}';
type Ctx = [string, string[]];

/** Live value count of each primary replica of KEY, by node index, as node `via` reads them. */
async function replicaCounts(c: FaultCluster, via: Redis): Promise<number[]> {
  const reply = (await cmd(via, 'CLUSTER', 'PREFLIST', KEY)) as [number, unknown[][]];
  return c.ids.map((id) => {
    const e = reply[1].find((x) => String(x[0]) === id && String(x[1]) === 'primary');
    return e === undefined ? -2 : Number(e[6]);
  });
}

t.test('D1..D5: siblings from a real bus cut, resolved by a context write, one value everywhere', async (t) => {
  // No anti-entropy until the heal: a round between Sx and Sz (or Sy) while the bus is cut copies
  // D3 to Sz (D4 to Sy) through Sx, and the per-replica counts below are then [2, 1, 2] (seen in
  // about half the runs on a loaded machine with rounds every second).
  const c = await FaultCluster.start(t, { nodes: 3, config: { 'anti-entropy-interval-ms': 0 } });
  await c.waitHealthy();
  const [sx, sy, sz] = await Promise.all([0, 1, 2].map((i) => c.admin(i)));

  t.equal(await cmd(sx!, 'SET', KEY, 'D1'), 'OK', 'D1 written through Sx');
  const afterD1 = (await cmd(sx!, 'GETCTX', KEY)) as Ctx;
  t.same(afterD1[1], ['D1']);
  t.equal(await cmd(sx!, 'SETCTX', KEY, afterD1[0], 'D2'), 'OK', 'D2 written through Sx with D1\'s context');
  await waitUntil('D2 on every replica', async () => (await replicaAgreement(sx!, KEY)).equal);
  t.same(await replicaCounts(c, sx!), [1, 1, 1], 'one value (D2) on each replica');

  c.proxy.cut([FaultCluster.nameOf(1)], [FaultCluster.nameOf(2)]);
  const readY = (await cmd(sy!, 'GETCTX', KEY)) as Ctx;
  const readZ = (await cmd(sz!, 'GETCTX', KEY)) as Ctx;
  t.same([readY[1], readZ[1]], [['D2'], ['D2']], 'Sy and Sz both read D2');
  t.equal(await cmd(sy!, 'SETCTX', KEY, readY[0], 'D3'), 'OK', 'D3 through Sy acknowledged (Sy + Sx)');
  t.equal(await cmd(sz!, 'SETCTX', KEY, readZ[0], 'D4'), 'OK', 'D4 through Sz acknowledged (Sz + Sx)');
  t.same(await replicaCounts(c, sx!), [2, 1, 1], 'Sx holds D3 and D4 as siblings; Sy only D3, Sz only D4');

  const both = (await cmd(sx!, 'GETCTX', KEY)) as Ctx;
  t.same([...both[1]].sort(), ['D3', 'D4'], 'a client reads both siblings');
  t.same([...((await cmd(sx!, 'GET', KEY)) as string[])].sort(), ['D3', 'D4'], 'GET returns the siblings as an array');
  t.equal(await cmd(sx!, 'SETCTX', KEY, both[0], 'D5'), 'OK', 'D5 written with the context of both');

  c.heal();
  for (const via of [sx!, sy!, sz!]) t.equal(await cmd(via, 'CONFIG', 'SET', 'anti-entropy-interval-ms', '1000'), 'OK');
  // Every node reads every replica (Sy and Sz redial each other after the heal first).
  const ms = await waitUntil('every replica agrees, seen from every node', async () => {
    for (const via of [sx!, sy!, sz!]) {
      if (!(await replicaAgreement(via, KEY)).equal) return false;
      if (!(await replicaCounts(c, via)).every((n) => n === 1)) return false;
    }
    return true;
  });
  t.comment(`replicas agreed ${ms} ms after the heal`);
  t.same(await replicaCounts(c, sz!), [1, 1, 1], 'exactly one value on every replica (read through Sz)');
  for (const [i, client] of [sx!, sy!, sz!].entries()) {
    t.equal(await cmd(client, 'GET', KEY), 'D5', `GET through node ${i} is D5`);
  }
  await cmd(sy!, 'CLIENT', 'QUORUM', 'all', 'quorum');
  t.same(((await cmd(sy!, 'GETCTX', KEY)) as Ctx)[1], ['D5'], 'all three replicas merged: only D5');
});
