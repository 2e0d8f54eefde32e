/**
 * The data commands of a node in a cluster (ServerContext.cluster set): each key goes through
 * the Coordinator (ARCHITECTURE.md section 3): reads wait for R replicas and merge, writes are
 * forwarded to a replica of the key's slot which mints the dot and waits for W.
 * CLIENT QUORUM (ClientState.readQuorum/writeQuorum) overrides R/W per connection.
 *
 * Commands here: GET SET(NX XX GET KEEPTTL EX PX EXAT PXAT) DEL UNLINK EXISTS MGET MSET
 * GETCTX SETCTX DELCTX. Conditional forms (SET NX/XX/GET/KEEPTTL, DEL's count, DELCTX's count)
 * read at R, then write at W: in a cluster they are NOT atomic against a concurrent writer
 * through another node (a concurrent write becomes a sibling, never a lost update).
 * Multi-key commands run one replicated request per key (atomic per key only).
 *
 * Errors: NOQUORUM / CLUSTERDOWN / TOOLARGE replies carry the error's own line; a bad quorum
 * (e.g. CLIENT QUORUM 5 with N = 3) is `ERR <why>`.
 */
import { array, bulk, bulks, error, integer, NIL, OK, type Reply } from '../../resp/reply.js';
import type { CallOptions } from '../../coordinator/coordinator.js';
import { callOptionsFor } from '../../coordinator/coordinator_settings.js';
import { NoQuorumError, UnavailableError } from '../../coordinator/fsm_errors.js';
import { ContextError, contextOf, covers, encodeContext, liveSiblings, liveValues, objectExpiresAtMs, type Context } from '../../coordinator/object.js';
import { QuorumError } from '../../coordinator/quorum.js';
import type { ClusterView } from '../cluster_view.js';
import { KeyspaceError } from '../keyspace.js';
import type { CommandContext } from '../types.js';
import { valuesReply } from './strings.js';

/** The reply for an operating error of a replicated request; rethrows anything else. */
export function replicatedError(err: unknown): Reply {
  if (err instanceof NoQuorumError || err instanceof UnavailableError || err instanceof KeyspaceError) return error(err.message);
  if (err instanceof QuorumError) return error(`ERR ${err.message}`);
  if (err instanceof ContextError) return error(`ERR invalid context: ${err.message}`);
  throw err;
}

async function run(ctx: CommandContext, body: (c: ClusterView, opts: CallOptions) => Promise<Reply>): Promise<Reply> {
  const c = ctx.server.cluster;
  if (c === undefined) throw new Error('replicated command on a node without a cluster');
  try {
    return await body(c, callOptionsFor(ctx.client));
  } catch (err) {
    return replicatedError(err);
  }
}

async function readValues(c: ClusterView, key: Buffer, opts: CallOptions, now: number): Promise<Buffer[]> {
  return liveValues(await c.coordinator.get(key, opts), now);
}

export function replicatedGet(ctx: CommandContext, key: Buffer): Promise<Reply> {
  return run(ctx, async (c, o) => valuesReply(await readValues(c, key, o, ctx.server.now())));
}

export interface SetFlags {
  readonly nx: boolean;
  readonly xx: boolean;
  readonly get: boolean;
  readonly keepTtl: boolean;
}

export function replicatedSet(ctx: CommandContext, key: Buffer, value: Buffer, f: SetFlags, expiresAtMs: number): Promise<Reply> {
  return run(ctx, async (c, o) => {
    if (!f.nx && !f.xx && !f.get && !f.keepTtl) {
      await c.coordinator.put(key, { value, expiresAtMs }, o);
      return OK;
    }
    const now = ctx.server.now();
    const obj = await c.coordinator.get(key, o);
    const values = liveValues(obj, now);
    const found = values.length > 0;
    const old = f.get ? valuesReply(values) : undefined;
    if ((f.nx && found) || (f.xx && !found)) return old ?? NIL;
    const keep = f.keepTtl && found ? objectExpiresAtMs({ ...obj, siblings: liveSiblings(obj, now) }) : expiresAtMs;
    // Supersede exactly what was read: a write that raced in between stays as a sibling.
    await c.coordinator.put(key, { value, expiresAtMs: keep, context: contextOf(obj) }, o);
    return old ?? OK;
  });
}

/** DEL / UNLINK: the keys that had a live value are deleted; their count is the reply. */
export function replicatedDel(ctx: CommandContext, keys: readonly Buffer[]): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const unique = [...new Map(keys.map((k) => [k.toString('latin1'), k])).values()];
    const now = ctx.server.now();
    const done = await Promise.all(
      unique.map(async (k) => {
        const obj = await c.coordinator.get(k, o);
        if (liveValues(obj, now).length === 0) return 0;
        await c.coordinator.put(k, { value: null, expiresAtMs: 0, context: contextOf(obj) }, o);
        return 1;
      }),
    );
    return integer(done.reduce<number>((a, b) => a + b, 0));
  });
}

export function replicatedExists(ctx: CommandContext, keys: readonly Buffer[]): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const now = ctx.server.now();
    const found = await Promise.all(keys.map(async (k) => (await readValues(c, k, o, now)).length > 0));
    return integer(found.filter((x) => x).length);
  });
}

export function replicatedMget(ctx: CommandContext, keys: readonly Buffer[]): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const now = ctx.server.now();
    const values = await Promise.all(keys.map((k) => readValues(c, k, o, now)));
    return array(values.map((v) => valuesReply(v)));
  });
}

/** MSET: one replicated write per key (the last occurrence of a repeated key wins). */
export function replicatedMset(ctx: CommandContext, pairs: ReadonlyArray<readonly [Buffer, Buffer]>): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const last = new Map(pairs.map(([k, v]) => [k.toString('latin1'), [k, v] as const]));
    await Promise.all([...last.values()].map(([k, v]) => c.coordinator.put(k, { value: v, expiresAtMs: 0 }, o)));
    return OK;
  });
}

export function replicatedGetctx(ctx: CommandContext, key: Buffer): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const obj = await c.coordinator.get(key, o);
    return array([bulk(encodeContext(contextOf(obj))), bulks(liveValues(obj, ctx.server.now()))]);
  });
}

export function replicatedSetctx(ctx: CommandContext, key: Buffer, context: Context, value: Buffer, expiresAtMs: number): Promise<Reply> {
  return run(ctx, async (c, o) => {
    await c.coordinator.put(key, { value, expiresAtMs, context }, o);
    return OK;
  });
}

/** DELCTX: the count is of the live values the context covers in the replicated read. */
export function replicatedDelctx(ctx: CommandContext, key: Buffer, context: Context): Promise<Reply> {
  return run(ctx, async (c, o) => {
    const obj = await c.coordinator.get(key, o);
    const removed = liveSiblings(obj, ctx.server.now()).filter((s) => covers(context, s.dot)).length;
    await c.coordinator.put(key, { value: null, expiresAtMs: 0, context }, o);
    return integer(removed);
  });
}
