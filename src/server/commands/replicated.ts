/**
 * The data commands' view of the keys: `KeyOps`, the part of the Keyspace that per-key
 * commands use (view, mutate, mutateMany, writeObject, checkKey, checkValue). On a lone node
 * it is the local Keyspace itself, unchanged. On a node in a cluster (ServerContext.cluster
 * set) it is ReplicatedKeyOps, which runs every key through the Coordinator (ARCHITECTURE.md
 * section 3), with the connection's CLIENT QUORUM overrides:
 *   view(key)            -> read at R from the replicas, merged (DVV sync)
 *   writeObject(key, w)  -> one coordinated write at W (the coordinating replica supersedes
 *                           what it has seen, or exactly w.context for SETCTX/DELCTX)
 *   mutate(key, fn)      -> read at R, fn decides, write at W superseding exactly what was read
 *   mutateMany(keys, fn) -> the same per key, all keys in parallel
 * So every command written against KeyOps (GET SET* GETDEL GETEX GETSET MGET MSET MSETNX
 * STRLEN APPEND GETRANGE SETRANGE INCR* DECR* DEL UNLINK EXISTS TOUCH EXPIRE* TTL* PERSIST TYPE
 * GETCTX SETCTX DELCTX) is replicated by construction.
 *
 * What differs from one node: a read-modify-write (mutate) in a cluster is not atomic against
 * a concurrent writer through another node; that writer's version is not in the context the
 * write supersedes, so it survives as a sibling (never a lost update), and the next INCR or
 * APPEND on the key answers SIBLINGS until a client resolves it with SETCTX. Multi-key commands
 * are atomic per key only (MSETNX checks all keys, then writes them one by one).
 *
 * Errors: NOQUORUM / CLUSTERDOWN / TOOLARGE replies carry the error's own line; a bad quorum
 * (e.g. CLIENT QUORUM 5 with N = 3) is `ERR <why>`.
 */
import { error, type Reply } from '../../resp/reply.js';
import type { CallOptions } from '../../coordinator/coordinator.js';
import { callOptionsFor } from '../../coordinator/coordinator_settings.js';
import { NoQuorumError, UnavailableError } from '../../coordinator/fsm_errors.js';
import { ContextError, contextOf, type VersionedObject } from '../../coordinator/object.js';
import { QuorumError } from '../../coordinator/quorum.js';
import type { ClusterView } from '../cluster_view.js';
import { KeyspaceError, viewOf, type Keyspace, type KeyView, type Mutation, type WriteRequest } from '../keyspace.js';
import type { CommandContext, CommandSpec } from '../types.js';

export type KeyOps = Pick<Keyspace, 'view' | 'mutate' | 'mutateMany' | 'checkKey' | 'checkValue'> & {
  /** Keyspace.writeObject; what it resolves with is not for the command (no command uses it). */
  writeObject(key: Buffer, w: WriteRequest): Promise<unknown>;
};

export class ReplicatedKeyOps implements KeyOps {
  constructor(
    private readonly cluster: ClusterView,
    private readonly local: Keyspace,
    private readonly opts: CallOptions,
    private readonly now: () => number,
  ) {}

  checkKey(key: Buffer): void {
    this.local.checkKey(key);
  }

  checkValue(value: Buffer | number): void {
    this.local.checkValue(value);
  }

  async view(key: Buffer, nowMs: number = this.now()): Promise<KeyView> {
    this.local.checkKey(key);
    return viewOf(await this.cluster.coordinator.get(key, this.opts), nowMs);
  }

  writeObject(key: Buffer, w: WriteRequest): Promise<unknown> {
    return this.cluster.coordinator.write(key, { value: w.value, expiresAtMs: w.expiresAtMs, ...(w.context === undefined ? {} : { context: w.context }) }, this.opts);
  }

  async mutate<T>(key: Buffer, fn: (view: KeyView, nowMs: number) => Mutation<T>): Promise<T> {
    const now = this.now();
    const before = await this.view(key, now);
    const m = fn(before, now);
    if (m.write !== undefined) await this.#writeOver(key, m.write, before);
    return m.result;
  }

  async mutateMany<T>(
    keys: readonly Buffer[],
    fn: (views: readonly KeyView[], nowMs: number) => { result: T; writes: ReadonlyMap<number, WriteRequest> },
  ): Promise<T> {
    for (const k of keys) this.local.checkKey(k);
    const now = this.now();
    const views = await Promise.all(keys.map((k) => this.view(k, now)));
    const { result, writes } = fn(views, now);
    await Promise.all([...writes].map(([i, w]) => this.#writeOver(keys[i]!, w, views[i]!)));
    return result;
  }

  /** Writes `w` superseding exactly what `before` read (or w.context when the command gave one). */
  #writeOver(key: Buffer, w: WriteRequest, before: KeyView): Promise<VersionedObject> {
    return this.cluster.coordinator.put(key, { value: w.value, expiresAtMs: w.expiresAtMs, context: w.context ?? contextOf(before.object) }, this.opts);
  }
}

/** The reply for an operating error of a data command; rethrows anything else. */
export function dataError(err: unknown): Reply {
  if (err instanceof KeyspaceError || err instanceof NoQuorumError || err instanceof UnavailableError) return error(err.message);
  if (err instanceof QuorumError) return error(`ERR ${err.message}`);
  if (err instanceof ContextError) return error(`ERR invalid context: ${err.message}`);
  throw err;
}

/** The KeyOps a command runs on: replicated in a cluster, the local keyspace otherwise. */
export function keyOpsFor(ctx: CommandContext): KeyOps {
  const c = ctx.server.cluster;
  if (c === undefined) return ctx.server.keyspace;
  return new ReplicatedKeyOps(c, ctx.server.keyspace, callOptionsFor(ctx.client), () => ctx.server.now());
}

/** Wraps a data command: picks its KeyOps and answers operating errors as error replies. */
export function routed(
  handler: (ks: KeyOps, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): (ctx: CommandContext, args: Buffer[]) => Promise<Reply> {
  return async (ctx, args) => {
    try {
      return await handler(keyOpsFor(ctx), args, ctx);
    } catch (err) {
      return dataError(err);
    }
  };
}

/** Key positions as COMMAND INFO gives them: [first, last, step]. */
export type KeyPositions = readonly [number, number, number];

/** A data command's table entry, its handler wrapped by `routed`. */
export function routedSpec(
  group: string,
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  keys: KeyPositions,
  summary: string,
  since: string,
  handler: (ks: KeyOps, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec {
  return {
    name,
    arity,
    flags,
    firstKey: keys[0],
    lastKey: keys[1],
    keyStep: keys[2],
    summary,
    group,
    since,
    handler: routed(handler),
  };
}
