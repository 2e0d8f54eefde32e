/**
 * String commands: GET SET SETNX SETEX PSETEX GETDEL GETEX GETSET MGET MSET MSETNX STRLEN APPEND
 * GETRANGE SUBSTR SETRANGE INCR DECR INCRBY DECRBY, with Redis 7.0 semantics and error texts.
 *
 * Siblings (concurrent versions of one key; on a lone node only SETCTX with a stale context makes
 * them, see causal.ts):
 *  - Reads return every live value: GET, GETDEL, GETEX, SET ... GET and each MGET entry reply
 *    nil (none), a bulk string (one), or an array of the values in canonical order (several).
 *  - Whole-key overwrites and deletes (SET, MSET, GETDEL, DEL, SETEX, ...) supersede every
 *    sibling, like a SETCTX with the latest context: the siblings collapse into the new value.
 *  - Commands that compute from one current value (INCR family, APPEND, STRLEN, GETRANGE,
 *    SETRANGE) and commands that rewrite the value to change its TTL (GETEX with an option,
 *    EXPIRE family, PERSIST) refuse a key with several live values: `-SIBLINGS key has N
 *    concurrent values; read them with GETCTX and resolve with SETCTX`. Guessing would silently
 *    drop someone's write (an INCR on siblings "5" and "7" has no right answer), and the client
 *    can resolve with one round trip. The key is left unchanged. (An EXPIRE to a time already
 *    past is a delete and works on siblings.)
 *
 * TTL: INCR/DECR/APPEND/SETRANGE keep the key's TTL (Redis changes the value in place); SET
 * without KEEPTTL clears it. Sizes: keys over max-key-bytes and values over max-value-bytes get
 * `-TOOLARGE ...` (keyspace.ts).
 */
import assert from 'node:assert';
import { bulk, bulks, error, integer, NIL, OK, type Reply } from '../../resp/reply.js';
import { callOptionsFor } from '../../coordinator/coordinator_settings.js';
import type { ClusterView } from '../cluster_view.js';
import type { CoordinatedWriteOutcome } from '../../coordinator/coordinator.js';
import type { ReadOutcome, ReadValue } from '../../coordinator/get_fsm.js';
import { KeyspaceError, VALUE_VIEW_MAX_BYTES, viewOf, type Keyspace, type KeyView, type Mutation, type WriteRequest } from '../keyspace.js';
import type { CommandContext, CommandSpec } from '../types.js';
import { DeferredReply } from '../deferred_reply.js';
import type { PutBatch, WriteListener } from '../put_batch.js';
import type { RawCommand } from '../../resp/parser.js';
import { parseStringOptions, resolveStringExpire } from './expire_args.js';
import {
  DECREMENT_OVERFLOW_ERROR,
  LLONG_MAX,
  LLONG_MIN,
  NOT_INTEGER_ERROR,
  OVERFLOW_ERROR,
  parseLongLong,
} from './redis_numbers.js';
import { dataError, routedSpec, type KeyOps, type KeyPositions } from './replicated.js';

/** nil, one bulk string, or an array of sibling values. */
export function valuesReply(values: readonly Buffer[]): Reply {
  if (values.length === 0) return NIL;
  if (values.length === 1) return bulk(values[0]!);
  return bulks(values);
}

export function siblingsError(count: number): Reply {
  return error(`SIBLINGS key has ${count} concurrent values; read them with GETCTX and resolve with SETCTX`);
}

/** Runs a handler on the LOCAL keyspace (whole-node commands), answering its operating errors (TOOLARGE, ...) as error replies. Per-key data commands use routed() (replicated.ts). */
export function guarded(
  handler: (ks: Keyspace, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): (ctx: CommandContext, args: Buffer[]) => Promise<Reply> {
  return async (ctx, args) => {
    try {
      return await handler(ctx.server.keyspace, args, ctx);
    } catch (err) {
      if (err instanceof KeyspaceError) return error(err.message);
      throw err;
    }
  };
}

const arg = (args: readonly Buffer[], i: number): Buffer => args[i] as Buffer;

// ---- GET / SET family ---------------------------------------------------------------------

async function get(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  return valuesReply((await ks.view(arg(args, 1))).values);
}

/** SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts|KEEPTTL] */
async function set(ks: KeyOps, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const parsed = parseStringOptions(args, 3, 'set');
  if (!parsed.ok) return error(parsed.error);
  const o = parsed.value;
  let expiresAtMs = 0;
  if (o.expire !== undefined) {
    const r = resolveStringExpire(o.expire.arg, o.expire.unit, ctx.server.now(), 'set');
    if (!r.ok) return error(r.error);
    expiresAtMs = r.value;
  }
  const value = arg(args, 2);
  ks.checkValue(value);
  // Plain SET: one unconditional write (in a cluster: no read first, the coordinator supersedes
  // what its replica has seen).
  if (!o.nx && !o.xx && !o.get && !o.keepTtl) {
    await ks.writeObject(arg(args, 1), { value, expiresAtMs });
    return OK;
  }
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => {
    const found = view.values.length > 0;
    const old = o.get ? valuesReply(view.values) : undefined;
    if ((o.nx && found) || (o.xx && !found)) return { result: old ?? NIL };
    const keep = o.keepTtl && found ? view.expiresAtMs : expiresAtMs;
    return { result: old ?? OK, write: { value, expiresAtMs: keep } };
  });
}

async function setnx(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const value = arg(args, 2);
  ks.checkValue(value);
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> =>
    view.values.length > 0 ? { result: integer(0) } : { result: integer(1), write: { value, expiresAtMs: 0 } },
  );
}

function setexLike(unit: 'EX' | 'PX', command: string) {
  return async (ks: KeyOps, args: Buffer[], ctx: CommandContext): Promise<Reply> => {
    const r = resolveStringExpire(arg(args, 2), unit, ctx.server.now(), command);
    if (!r.ok) return error(r.error);
    const value = arg(args, 3);
    ks.checkValue(value);
    const write: WriteRequest = { value, expiresAtMs: r.value };
    return ks.mutate(arg(args, 1), (): Mutation<Reply> => ({ result: OK, write }));
  };
}

async function getdel(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> =>
    view.values.length === 0 ? { result: NIL } : { result: valuesReply(view.values), write: { value: null, expiresAtMs: 0 } },
  );
}

/** GETEX key [EX s|PX ms|EXAT ts|PXAT ts|PERSIST] */
async function getex(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const parsed = parseStringOptions(args, 2, 'getex');
  if (!parsed.ok) return error(parsed.error);
  const o = parsed.value;
  if (o.expire === undefined && !o.persist) return get(ks, args);
  const expire = o.expire;
  return ks.mutate(arg(args, 1), (view, now): Mutation<Reply> => {
    if (view.values.length === 0) return { result: NIL };
    // Redis validates the time only once the key is found.
    let when = 0;
    if (expire !== undefined) {
      const r = resolveStringExpire(expire.arg, expire.unit, now, 'getex');
      if (!r.ok) return { result: error(r.error) };
      when = r.value;
      // An absolute time already past deletes the key (Redis checkAlreadyExpired: when <= now).
      if ((expire.unit === 'EXAT' || expire.unit === 'PXAT') && when <= now) {
        return { result: valuesReply(view.values), write: { value: null, expiresAtMs: 0 } };
      }
    }
    if (o.persist && view.expiresAtMs === 0) return { result: valuesReply(view.values) };
    if (view.values.length > 1) return { result: siblingsError(view.values.length) };
    return { result: bulk(view.values[0]!), write: { value: view.values[0]!, expiresAtMs: when } };
  });
}

/** GETSET key value: SET key value GET (clears the TTL). */
async function getset(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const value = arg(args, 2);
  ks.checkValue(value);
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => ({ result: valuesReply(view.values), write: { value, expiresAtMs: 0 } }));
}

async function mget(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const views = await Promise.all(args.slice(1).map((k) => ks.view(k)));
  return { kind: 'array', items: views.map((v) => valuesReply(v.values)) };
}

/** MSET / MSETNX: atomic on this node (one lock set, one engine batch). */
function msetLike(nx: boolean) {
  return async (ks: KeyOps, args: Buffer[]): Promise<Reply> => {
    if (args.length % 2 === 0) return error(`ERR wrong number of arguments for '${nx ? 'msetnx' : 'mset'}' command`);
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (let i = 1; i < args.length; i += 2) {
      keys.push(arg(args, i));
      const v = arg(args, i + 1);
      ks.checkValue(v);
      values.push(v);
    }
    return ks.mutateMany(keys, (views) => {
      const writes = new Map<number, WriteRequest>();
      if (nx && views.some((v) => v.values.length > 0)) return { result: integer(0), writes };
      // The last occurrence of a repeated key wins, as in Redis.
      const lastIndex = new Map<string, number>();
      keys.forEach((k, i) => lastIndex.set(k.toString('latin1'), i));
      for (const i of lastIndex.values()) writes.set(i, { value: values[i]!, expiresAtMs: 0 });
      return { result: nx ? integer(1) : OK, writes };
    });
  };
}

// ---- commands on one current value ------------------------------------------------------

async function strlen(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const { values } = await ks.view(arg(args, 1));
  if (values.length > 1) return siblingsError(values.length);
  return integer(values[0]?.length ?? 0);
}

async function append(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const suffix = arg(args, 2);
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => {
    if (view.values.length > 1) return { result: siblingsError(view.values.length) };
    const current = view.values[0];
    const next = current === undefined ? suffix : Buffer.concat([current, suffix]);
    ks.checkValue(next.length);
    return { result: integer(next.length), write: { value: next, expiresAtMs: view.expiresAtMs } };
  });
}

/** GETRANGE key start end (Redis getrangeCommand: negative indexes count from the end). */
async function getrange(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const startArg = parseLongLong(arg(args, 2));
  const endArg = parseLongLong(arg(args, 3));
  if (startArg === undefined || endArg === undefined) return error(NOT_INTEGER_ERROR);
  const { values } = await ks.view(arg(args, 1));
  if (values.length > 1) return siblingsError(values.length);
  const str = values[0] ?? Buffer.alloc(0);
  const len = BigInt(str.length);
  let start = startArg;
  let end = endArg;
  if (start < 0n && end < 0n && start > end) return bulk('');
  if (start < 0n) start += len;
  if (end < 0n) end += len;
  if (start < 0n) start = 0n;
  if (end < 0n) end = 0n;
  if (end >= len) end = len - 1n;
  if (start > end || len === 0n) return bulk('');
  return bulk(str.subarray(Number(start), Number(end) + 1));
}

/** SETRANGE key offset value: overwrite from `offset`, zero-padding; keeps the TTL. */
async function setrange(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const offsetArg = parseLongLong(arg(args, 2));
  if (offsetArg === undefined) return error(NOT_INTEGER_ERROR);
  if (offsetArg < 0n) return error('ERR offset is out of range');
  const patch = arg(args, 3);
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => {
    if (view.values.length > 1) return { result: siblingsError(view.values.length) };
    const current = view.values[0];
    if (patch.length === 0) return { result: integer(current?.length ?? 0) };
    // Checked before allocating: the offset comes from the client.
    const needed = offsetArg + BigInt(patch.length);
    ks.checkValue(needed > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(needed));
    const offset = Number(offsetArg);
    const next = Buffer.alloc(Math.max(current?.length ?? 0, offset + patch.length));
    current?.copy(next);
    patch.copy(next, offset);
    return { result: integer(next.length), write: { value: next, expiresAtMs: view.expiresAtMs } };
  });
}

/** The INCR-family step on `view` (pure): the reply and the write, Redis's checks and texts. */
export function incrementBy(view: KeyView, by: bigint): Mutation<Reply> {
  if (view.values.length > 1) return { result: siblingsError(view.values.length) };
  const current = view.values[0];
  let old = 0n;
  if (current !== undefined) {
    const parsed = parseLongLong(current);
    if (parsed === undefined) return { result: error(NOT_INTEGER_ERROR) };
    old = parsed;
  }
  if ((by < 0n && old < 0n && by < LLONG_MIN - old) || (by > 0n && old > 0n && by > LLONG_MAX - old)) {
    return { result: error(OVERFLOW_ERROR) };
  }
  const next = old + by;
  return { result: integer(next), write: { value: Buffer.from(next.toString()), expiresAtMs: view.expiresAtMs } };
}

function incrLike(sign: 1n | -1n, withArg: boolean) {
  return async (ks: KeyOps, args: Buffer[]): Promise<Reply> => {
    let by = 1n;
    if (withArg) {
      const parsed = parseLongLong(arg(args, 2));
      if (parsed === undefined) return error(NOT_INTEGER_ERROR);
      // DECRBY LLONG_MIN cannot be negated.
      if (sign === -1n && parsed === LLONG_MIN) return error(DECREMENT_OVERFLOW_ERROR);
      by = parsed;
    }
    const delta = sign * by;
    return ks.mutate(arg(args, 1), (view) => incrementBy(view, delta));
  };
}

// ---- the table --------------------------------------------------------------------------

type Flags = CommandSpec['flags'];

const spec = (
  name: string,
  arity: number,
  flags: Flags,
  keys: KeyPositions,
  summary: string,
  since: string,
  handler: (ks: KeyOps, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec => routedSpec('string', name, arity, flags, keys, summary, since, handler);

const ONE_KEY: [number, number, number] = [1, 1, 1];

/**
 * GET and plain SET skip the routed async wrapper. On a lone node a GET whose key the engine
 * holds in memory is answered with no promise at all (Keyspace.viewSync), and `SET key value`
 * is one Keyspace.writeValue (its batch's engine promise, see setReplyOf). In a cluster a GET is
 * one coordinator read and a plain SET one coordinator write, each one promise that resolves
 * with the reply (no ReplicatedKeyOps, no async frames, no continuation: every request of a
 * cluster's coordinating node comes through here; see setCluster for why SET too). Everything else (options, a cold key) takes
 * the general handler, with the same replies.
 */
function fastPath(
  general: CommandSpec,
  fast: (ks: Keyspace, args: Buffer[], ctx: CommandContext) => Reply | Promise<Reply> | undefined,
  clusterFast?: (cluster: ClusterView, args: Buffer[], ctx: CommandContext) => Promise<Reply> | undefined,
  raw?: (ks: Keyspace, raw: RawCommand) => Reply | Promise<Reply> | DeferredReply | undefined,
): CommandSpec {
  const slow = general.handler;
  assert(slow !== undefined, 'a data command has a handler');
  return {
    ...general,
    // On a lone node, the same fast path on the request's bytes (Dispatcher.startRaw): undefined
    // (a cluster, options, a cold key) has the dispatcher run `handler` on the arguments.
    rawHandler:
      raw === undefined
        ? undefined
        : (ctx, r) => {
            if (ctx.server.cluster !== undefined) return undefined;
            try {
              return raw(ctx.server.keyspace, r);
            } catch (err) {
              return dataError(err);
            }
          },
    handler: (ctx, args) => {
      const cluster = ctx.server.cluster;
      if (cluster !== undefined && clusterFast === undefined) return slow(ctx, args);
      let out: Reply | Promise<Reply> | undefined;
      try {
        out = cluster === undefined ? fast(ctx.server.keyspace, args, ctx) : clusterFast?.(cluster, args, ctx);
      } catch (err) {
        return dataError(err);
      }
      return out ?? slow(ctx, args);
    },
  };
}

function getFast(ks: Keyspace, args: Buffer[]): Reply | undefined {
  const values = ks.valuesSync(arg(args, 1));
  return values === undefined ? undefined : valuesReply(values);
}

/** getFast on the request's bytes: the key is raw's argument 1. */
function getRaw(ks: Keyspace, raw: RawCommand): Reply | undefined {
  const values = ks.valuesSyncOfRange(raw.buf, raw.starts[1] as number, raw.ends[1] as number);
  return values === undefined ? undefined : valuesReply(values);
}

/**
 * setFast on the request's bytes: only the value is made a Buffer (object_plain_write copies it
 * into the stored bytes); the key goes to the keyspace as offsets. The reply is the batch's
 * SetBatchReply (no promise); when the fast path does not apply, writeValue's promise.
 */
function setRaw(ks: Keyspace, raw: RawCommand): DeferredReply | Promise<Reply> | undefined {
  if (raw.count !== 3) return undefined;
  const value = raw.view(2);
  ks.checkValue(value);
  const batch = ks.writePlainOfRangeTo(raw.buf, raw.starts[1] as number, raw.ends[1] as number, value, setBatchListener);
  if (batch !== undefined) return lastBatchReply as SetBatchReply;
  return setReplyOf(ks.writeValue(raw.view(1), { value, expiresAtMs: 0 }));
}

/**
 * The reply of the plain SETs of one engine batch (Keyspace.writePlainOfRangeTo), settled by
 * the batch's listener call as setReplyOf's promise would be: OK, or dataError's reply (its
 * throw a rejection).
 */
class SetBatchReply extends DeferredReply implements WriteListener {
  writeSettled(err: unknown): void {
    if (err === undefined) {
      this.resolve(OK);
      return;
    }
    let reply: Reply;
    try {
      reply = dataError(err);
    } catch (e) {
      this.reject(e);
      return;
    }
    this.resolve(reply);
  }
}

/** The batch the last raw SET joined and its reply, shared by every SET of that batch (as setReplyOf's). */
let lastBatch: PutBatch | undefined;
let lastBatchReply: SetBatchReply | undefined;

/** writePlainOfRangeTo's listenerOf: a new SetBatchReply for a batch not seen last, else none (it listens already). */
function setBatchListener(batch: PutBatch): WriteListener | undefined {
  if (batch === lastBatch) return undefined;
  lastBatch = batch;
  lastBatchReply = new SetBatchReply();
  return lastBatchReply;
}

function setFast(ks: Keyspace, args: Buffer[]): Promise<Reply> | undefined {
  if (args.length !== 3) return undefined;
  const value = arg(args, 2);
  ks.checkValue(value);
  return setReplyOf(ks.writeValue(arg(args, 1), { value, expiresAtMs: 0 }));
}

const okReply = (): Reply => OK;

/**
 * Plain `SET key value` in a cluster: set()'s checks in set()'s order (the value, then the key in
 * Coordinator.write) and its one write, without the routed wrapper's async frames and
 * ReplicatedKeyOps (at SET -P 1 node 0 promoted those with the rest of the request).
 */
function setCluster(cluster: ClusterView, args: Buffer[], ctx: CommandContext): Promise<Reply> | undefined {
  if (args.length !== 3) return undefined;
  const value = arg(args, 2);
  ctx.server.keyspace.checkValue(value);
  return cluster.coordinator.writeAs(arg(args, 1), { value, expiresAtMs: 0 }, callOptionsFor(ctx.client), SET_OUTCOME);
}

/** SET's reply as its write's outcome (Coordinator.writeAs: the write's one promise resolves with it). */
const SET_OUTCOME: CoordinatedWriteOutcome<Reply> = { stored: okReply, failed: dataError };

/**
 * GET in a cluster: the coordinator's read, its live values as the reply (get() above, without
 * KeyOps). When the replicas answered this node's own stored bytes the read gives the value
 * itself (Coordinator.getValue: no object decoded), as valuesSync does on a lone node.
 */
function getCluster(cluster: ClusterView, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const now = ctx.server.now();
  return cluster.coordinator.getValueAs(arg(args, 1), now, callOptionsFor(ctx.client), GET_OUTCOME);
}

/** GET's reply as its read's outcome (Coordinator.getValueAs: the read's one promise resolves with it). */
const GET_OUTCOME: ReadOutcome<Reply> = { value: readValueReply, failed: dataError };

/**
 * A ReadValue as GET's reply. A value view below VALUE_VIEW_MAX_BYTES goes to the encoder, which
 * copies it into its slab; a larger one is copied here (Keyspace.valuesSync's rule: the encoder
 * would hand it to the socket as it is, pinning the engine's buffer behind a slow client).
 */
function readValueReply(r: ReadValue, nowMs: number): Reply {
  if (r === null) return NIL;
  if (Buffer.isBuffer(r)) return bulk(r.length < VALUE_VIEW_MAX_BYTES ? r : Buffer.from(r));
  return valuesReply(viewOf(r, nowMs).values);
}


/**
 * The plain SETs of one pipelined batch share one engine write and so one promise
 * (Keyspace.writeValue returns the batch's); they share its reply promise too, so a batch of
 * SETs costs one continuation here instead of one per SET. Keyed by the write promise: a SET
 * of another batch (or another keyspace) gets its own.
 */
let lastWrite: Promise<void> | undefined;
let lastReply: Promise<Reply> | undefined;
function setReplyOf(write: Promise<void>): Promise<Reply> {
  if (write !== lastWrite || lastReply === undefined) {
    lastWrite = write;
    lastReply = write.then(okReply, dataError);
  }
  return lastReply;
}

export const stringCommands: readonly CommandSpec[] = [
  fastPath(spec('get', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the string value of a key (an array when it has concurrent sibling values).', '1.0.0', get), getFast, getCluster, getRaw),
  fastPath(spec('set', -3, ['write'], ONE_KEY, 'Sets the string value of a key, ignoring its type. The key is created if it does not exist.', '1.0.0', set), setFast, setCluster, setRaw),
  spec('setnx', 3, ['write', 'fast'], ONE_KEY, 'Set the string value of a key only when the key does not exist.', '1.0.0', setnx),
  spec('setex', 4, ['write'], ONE_KEY, 'Sets the string value and expiration time of a key. Creates the key if it does not exist.', '2.0.0', setexLike('EX', 'setex')),
  spec('psetex', 4, ['write'], ONE_KEY, 'Sets both string value and expiration time in milliseconds of a key. The key is created if it does not exist.', '2.6.0', setexLike('PX', 'psetex')),
  spec('getdel', 2, ['write', 'fast'], ONE_KEY, 'Returns the string value of a key after deleting the key.', '6.2.0', getdel),
  spec('getex', -2, ['write', 'fast'], ONE_KEY, 'Returns the string value of a key after setting its expiration time.', '6.2.0', getex),
  spec('getset', 3, ['write'], ONE_KEY, 'Returns the previous string value of a key after setting it to a new value.', '1.0.0', getset),
  spec('getrange', 4, ['readonly'], ONE_KEY, 'Returns a substring of the string stored at a key.', '2.4.0', getrange),
  spec('substr', 4, ['readonly'], ONE_KEY, 'Returns a substring from a string value.', '1.0.0', getrange),
  spec('setrange', 4, ['write'], ONE_KEY, 'Overwrites a part of a string value with another by an offset. Creates the key if it doesn\'t exist.', '2.2.0', setrange),
  spec('mget', -2, ['readonly', 'fast'], [1, -1, 1], 'Atomically returns the string values of one or more keys.', '1.0.0', mget),
  spec('mset', -3, ['write'], [1, -1, 2], 'Atomically creates or modifies the string values of one or more keys.', '1.0.1', msetLike(false)),
  spec('msetnx', -3, ['write'], [1, -1, 2], 'Atomically modifies the string values of one or more keys only when all keys don\'t exist.', '1.0.1', msetLike(true)),
  spec('strlen', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the length of a string value.', '2.2.0', strlen),
  spec('append', 3, ['write', 'fast'], ONE_KEY, 'Appends a string to the value of a key. Creates the key if it doesn\'t exist.', '2.0.0', append),
  spec('incr', 2, ['write', 'fast'], ONE_KEY, 'Increments the integer value of a key by one. Uses 0 as initial value if the key doesn\'t exist.', '1.0.0', incrLike(1n, false)),
  spec('decr', 2, ['write', 'fast'], ONE_KEY, 'Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn\'t exist.', '1.0.0', incrLike(-1n, false)),
  spec('incrby', 3, ['write', 'fast'], ONE_KEY, 'Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn\'t exist.', '1.0.0', incrLike(1n, true)),
  spec('decrby', 3, ['write', 'fast'], ONE_KEY, 'Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn\'t exist.', '1.0.0', incrLike(-1n, true)),
];
