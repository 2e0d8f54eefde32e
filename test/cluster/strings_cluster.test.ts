// GET and plain SET of a cluster's coordinating node (strings.ts getCluster / setCluster: one
// coordinator read or write, no routed wrapper) give the general handlers' replies and errors:
// the value, siblings as an array, nil for a deleted or expired key, OK for a SET, TOOLARGE for a
// key or value over the limits (the value checked first, as set() does), NOQUORUM when W or R
// cannot be met; a SET with options still takes the general handler.
import t from 'tap';
import { stringCommands } from '../../src/server/commands/strings.js';
import type { Reply } from '../../src/resp/reply.js';
import type { ClusterView } from '../../src/server/cluster_view.js';
import type { CommandContext, ServerContext } from '../../src/server/types.js';
import { testClient, TestConfig } from '../server/keyspace_fixture.js';
import { startCluster, type TestCluster } from '../coordinator/fsm_cluster.js';

const handlerOf = (name: string) => {
  const s = stringCommands.find((c) => c.name === name);
  if (s?.handler === undefined) throw new Error(`no ${name}`);
  return s.handler;
};
const GET = handlerOf('get');
const SET = handlerOf('set');
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const QUORUM_FANOUT = { readFanout: 'quorum' as const, readQuorum: 2, writeQuorum: 2 };

function ctxOf(c: TestCluster, id: string, config: TestConfig): CommandContext {
  const server = {
    config,
    keyspace: c.keyspace(id),
    cluster: { coordinator: c.node(id) } as unknown as ClusterView,
    now: () => Date.now(),
  } as ServerContext;
  return { client: testClient(), server };
}

const run = async (h: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>, ctx: CommandContext, ...args: string[]): Promise<Reply> =>
  h(ctx, args.map(b));

/** A reply with its Buffers as strings, for t.same. */
function plain(r: Reply): unknown {
  if (r.kind === 'bulk') return { bulk: r.value.toString() };
  if (r.kind === 'array') return { array: r.items.map(plain) };
  return r;
}

t.test('plain SET and GET through the coordinator', async (t) => {
  const limits = { 'max-value-bytes': 16, 'max-key-bytes': 12 };
  const c = await startCluster(t, { nodes: 3, n: 3, settings: QUORUM_FANOUT, getsAsBytes: true, config: limits });
  const [a, bb, d] = c.ids as [string, string, string];
  const config = new TestConfig(limits);
  const ctx = ctxOf(c, a, config);
  t.same(plain(await run(SET, ctx, 'SET', 'k1', 'v1')), { kind: 'simple', value: 'OK' }, 'SET: OK');
  await c.idle();
  for (const id of [a, bb, d]) t.same((await c.keyspace(id).readObject(b('k1'))).siblings.map((s) => s.value?.toString()), ['v1'], `stored on ${id.slice(0, 6)}`);
  t.same(plain(await run(GET, ctx, 'GET', 'k1')), { bulk: 'v1' }, 'GET: the value');
  t.same(plain(await run(GET, ctx, 'GET', 'nope')), { kind: 'null' }, 'GET of an absent key: nil');
  t.same(plain(await run(SET, ctx, 'SET', 'k1', 'v2')), { kind: 'simple', value: 'OK' }, 'overwrite');
  t.same(plain(await run(GET, ctx, 'GET', 'k1')), { bulk: 'v2' }, 'the new value');

  // Limits: the value is checked first (set()'s order), then the key.
  const bigValue = 'x'.repeat(17);
  const bigKey = 'k'.repeat(13);
  t.match(await run(SET, ctx, 'SET', 'k2', bigValue), { kind: 'error', message: /^TOOLARGE value is 17 bytes/ }, 'value over max-value-bytes');
  t.match(await run(SET, ctx, 'SET', bigKey, 'v'), { kind: 'error', message: /^TOOLARGE key is 13 bytes/ }, 'key over max-key-bytes');
  t.match(await run(SET, ctx, 'SET', bigKey, bigValue), { kind: 'error', message: /^TOOLARGE value/ }, 'both over: the value reported');
  t.match(await run(GET, ctx, 'GET', bigKey), { kind: 'error', message: /^TOOLARGE key/ }, 'GET of a key over the limit');

  // Options go through the general handler: expiry, NX, GET.
  t.same(plain(await run(SET, ctx, 'SET', 'k3', 'v3', 'PX', '100000')), { kind: 'simple', value: 'OK' }, 'SET PX');
  t.same(plain(await run(GET, ctx, 'GET', 'k3')), { bulk: 'v3' }, 'live before its expiry');
  t.same(plain(await run(SET, ctx, 'SET', 'k3', 'v4', 'NX')), { kind: 'null' }, 'SET NX of an existing key: nil');
  t.same(plain(await run(SET, ctx, 'SET', 'k3', 'v5', 'GET')), { bulk: 'v3' }, 'SET GET: the old value');
  t.same(plain(await run(SET, ctx, 'SET', 'k4', 'v', 'PX', '1')), { kind: 'simple', value: 'OK' }, 'a short expiry');
  await new Promise((r) => setTimeout(r, 10));
  t.same(plain(await run(GET, ctx, 'GET', 'k4')), { kind: 'null' }, 'expired: nil');

  // Siblings (concurrent writes through two nodes): GET answers them as an array.
  c.net.partition([[a], [bb, d]], 'refuse', false);
  t.same(plain(await run(SET, ctx, 'SET', 'k5', 'from-a')), { kind: 'error', message: 'NOQUORUM write: 1 of 2 replicas acknowledged (the write may be partially applied)' }, 'W=2 not met: NOQUORUM');
  await c.node(bb).put(b('k5'), { value: b('from-b'), expiresAtMs: 0 });
  c.net.heal();
  const got = plain(await run(GET, ctx, 'GET', 'k5')) as { array: { bulk: string }[] };
  t.same(got.array.map((x) => x.bulk).sort(), ['from-a', 'from-b'], 'siblings as an array');
  await c.idle();
});
