/**
 * Generic key commands: DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME
 * PEXPIRETIME TTL PTTL PERSIST TYPE TOUCH SCAN KEYS RANDOMKEY DBSIZE FLUSHALL FLUSHDB, Redis 7.0
 * semantics. There is one database (SELECT 0), so FLUSHDB is FLUSHALL.
 *
 * Notes for a versioned keyspace (see strings.ts for siblings):
 *  - DEL/UNLINK write tombstones (kept gc-grace-seconds, so repair never resurrects the key);
 *    UNLINK is DEL (there is no lazy freeing to defer).
 *  - Changing a TTL rewrites the value with a new version (dot), so a key with several live
 *    sibling values answers `-SIBLINGS ...`; an EXPIRE to a time already past deletes the key and
 *    works with siblings.
 *  - SCAN cursors are positions in the (slot, key) order (scan_cursor.ts): a key present for the
 *    whole iteration is returned at least once, and a reply may exceed COUNT by the keys that
 *    share a 6-byte prefix within one slot.
 *  - FLUSHALL drops the data from the local engine at once (no tombstones): a local reset.
 *  - In a cluster SCAN KEYS RANDOMKEY DBSIZE FLUSHALL cover the whole cluster (cluster_scan.ts):
 *    each slot is read from one replica, DBSIZE is approximate, FLUSHALL is not atomic.
 */
import { bulk, bulkOrNil, bulks, error, integer, OK, simple, type Reply } from '../../resp/reply.js';
import { globMatch, matchesEverything } from '../glob.js';
import type { Keyspace, Mutation, WriteRequest } from '../keyspace.js';
import { parseCursor } from '../scan_cursor.js';
import type { CommandContext, CommandSpec } from '../types.js';
import { expireAllowed, parseExpireFlags, resolveExpireWhen, clampTime } from './expire_args.js';
import { INVALID_CURSOR_ERROR, NOT_INTEGER_ERROR, optionName, parseLongLong, SYNTAX_ERROR } from './redis_numbers.js';
import { guarded, siblingsError } from './strings.js';
import { dataError, routedSpec, type KeyOps, type KeyPositions } from './replicated.js';
import { clusterKeyspaceOf } from './cluster_keyspace.js';
import { clusterDbsize, clusterFlushAll, clusterKeys, clusterRandomKey, clusterScan } from './cluster_scan.js';

/** SCAN's default COUNT, as in Redis. */
export const SCAN_COUNT_DEFAULT = 10;
/** Largest COUNT honoured per SCAN call (bigger values are clamped: bounded work per call). */
export const SCAN_COUNT_MAX = 100_000;

const arg = (args: readonly Buffer[], i: number): Buffer => args[i] as Buffer;

async function del(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const keys = args.slice(1);
  return ks.mutateMany(keys, (views) => {
    const writes = new Map<number, WriteRequest>();
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      const name = k.toString('latin1');
      if (seen.has(name)) return;
      seen.add(name);
      if (views[i]!.values.length > 0) writes.set(i, { value: null, expiresAtMs: 0 });
    });
    return { result: integer(writes.size), writes };
  });
}

async function exists(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  // Like Redis, a key named twice counts twice.
  const views = await Promise.all(args.slice(1).map((k) => ks.view(k)));
  return integer(views.filter((v) => v.values.length > 0).length);
}

/** EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT] */
function expireLike(command: string, seconds: boolean, relative: boolean) {
  return async (ks: KeyOps, args: Buffer[], ctx: CommandContext): Promise<Reply> => {
    const flags = parseExpireFlags(args);
    if (!flags.ok) return error(flags.error);
    const when = resolveExpireWhen(arg(args, 2), seconds, relative, ctx.server.now(), command);
    if (!when.ok) return error(when.error);
    return ks.mutate(arg(args, 1), (view, now): Mutation<Reply> => {
      if (view.values.length === 0) return { result: integer(0) };
      if (!expireAllowed(flags.value, view.expiresAtMs, when.value)) return { result: integer(0) };
      // Redis checkAlreadyExpired: a time at or before now deletes the key.
      if (when.value <= BigInt(now)) return { result: integer(1), write: { value: null, expiresAtMs: 0 } };
      if (view.values.length > 1) return { result: siblingsError(view.values.length) };
      return { result: integer(1), write: { value: view.values[0]!, expiresAtMs: clampTime(when.value) } };
    });
  };
}

/** TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 no key, -1 no expiry. */
function ttlLike(ms: boolean, absolute: boolean) {
  return async (ks: KeyOps, args: Buffer[], ctx: CommandContext): Promise<Reply> => {
    const now = ctx.server.now();
    const view = await ks.view(arg(args, 1), now);
    if (view.values.length === 0) return integer(-2);
    if (view.expiresAtMs === 0) return integer(-1);
    let t = absolute ? view.expiresAtMs : view.expiresAtMs - now;
    if (t < 0) t = 0;
    // Redis rounds seconds to the nearest: (ttl + 500) / 1000.
    return integer(ms ? t : Math.floor((t + 500) / 1000));
  };
}

async function persist(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => {
    if (view.values.length === 0 || view.expiresAtMs === 0) return { result: integer(0) };
    if (view.values.length > 1) return { result: siblingsError(view.values.length) };
    return { result: integer(1), write: { value: view.values[0]!, expiresAtMs: 0 } };
  });
}

async function type(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const view = await ks.view(arg(args, 1));
  return simple(view.values.length > 0 ? 'string' : 'none');
}

/** SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
async function scan(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const cursor = parseCursor(arg(args, 1));
  if (cursor === undefined) return error(INVALID_CURSOR_ERROR);
  let count = SCAN_COUNT_DEFAULT;
  let pattern: Buffer | undefined;
  let typeName: string | undefined;
  for (let i = 2; i < args.length; ) {
    const opt = optionName(arg(args, i));
    const hasValue = i + 1 < args.length;
    if (opt === 'count' && hasValue) {
      const n = parseLongLong(arg(args, i + 1));
      if (n === undefined) return error(NOT_INTEGER_ERROR);
      if (n < 1n) return error(SYNTAX_ERROR);
      count = n > BigInt(SCAN_COUNT_MAX) ? SCAN_COUNT_MAX : Number(n);
    } else if (opt === 'match' && hasValue) {
      const p = arg(args, i + 1);
      pattern = matchesEverything(p) ? undefined : p;
    } else if (opt === 'type' && hasValue) {
      typeName = arg(args, i + 1).toString('latin1').toLowerCase();
    } else {
      return error(SYNTAX_ERROR);
    }
    i += 2;
  }
  // Every key here is a string: another TYPE filters out everything (the cursor still moves).
  const typeOk = typeName === undefined || typeName === 'string';
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster !== undefined) {
    const r = await clusterScan(cluster, cursor, count, { pattern, matchNone: !typeOk }, requestTimeoutMs(ctx));
    return { kind: 'array', items: [bulk(r.cursor.toString()), bulks(r.keys)] };
  }
  const filter = !typeOk ? () => false : pattern === undefined ? undefined : (k: Buffer) => globMatch(pattern, k);
  const r = await ks.scan(cursor, count, filter);
  return { kind: 'array', items: [bulk(r.cursor.toString()), bulks(r.keys)] };
}

async function keys(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const pattern = arg(args, 1);
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster !== undefined) return bulks(await clusterKeys(cluster, matchesEverything(pattern) ? undefined : pattern, requestTimeoutMs(ctx)));
  const found = await ks.keys(matchesEverything(pattern) ? undefined : (k) => globMatch(pattern, k));
  return bulks(found);
}

async function randomkey(ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster !== undefined) return bulkOrNil(await clusterRandomKey(cluster, requestTimeoutMs(ctx)));
  return bulkOrNil(await ks.randomKey());
}

async function dbsize(ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster !== undefined) return integer(await clusterDbsize(cluster, requestTimeoutMs(ctx)));
  return integer(await ks.dbsize());
}

/** FLUSHALL [ASYNC|SYNC] (both flush before replying). */
async function flushall(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  if (args.length > 2) return error(SYNTAX_ERROR);
  if (args.length === 2) {
    const mode = optionName(arg(args, 1));
    if (mode !== 'sync' && mode !== 'async') return error(SYNTAX_ERROR);
  }
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster !== undefined) {
    // Every node seen up, one call each: not atomic (see cluster_scan.ts).
    const failed = await clusterFlushAll(cluster, requestTimeoutMs(ctx));
    return failed.length === 0 ? OK : error(`ERR FLUSHALL did not reach node(s) ${failed.join(' ')}; the others were flushed`);
  }
  await ks.flushAll();
  return OK;
}

/** The budget of each replica call of a cluster-wide command (config request-timeout-ms). */
function requestTimeoutMs(ctx: CommandContext): number {
  return ctx.server.config.getNumber('request-timeout-ms');
}

type Flags = CommandSpec['flags'];

const spec = (
  name: string,
  arity: number,
  flags: Flags,
  keys: KeyPositions,
  summary: string,
  since: string,
  handler: (ks: KeyOps, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec => routedSpec('generic', name, arity, flags, keys, summary, since, handler);

/** Commands over this node's whole local keyspace (SCAN KEYS RANDOMKEY DBSIZE FLUSHALL). */
function localSpec(
  name: string,
  arity: number,
  flags: Flags,
  keys: [number, number, number],
  summary: string,
  since: string,
  handler: (ks: Keyspace, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec {
  // Cluster-wide variants may fail with CLUSTERDOWN (no replica of a slot answered): dataError.
  const inner = guarded(handler);
  const wrapped = async (ctx: CommandContext, args: Buffer[]): Promise<Reply> => {
    try {
      return await inner(ctx, args);
    } catch (err) {
      return dataError(err);
    }
  };
  return { name, arity, flags, firstKey: keys[0], lastKey: keys[1], keyStep: keys[2], summary, group: 'generic', since, handler: wrapped };
}

const ONE_KEY: [number, number, number] = [1, 1, 1];
const NO_KEYS: [number, number, number] = [0, 0, 0];

export const keyCommands: readonly CommandSpec[] = [
  spec('del', -2, ['write'], [1, -1, 1], 'Deletes one or more keys.', '1.0.0', del),
  spec('unlink', -2, ['write', 'fast'], [1, -1, 1], 'Asynchronously deletes one or more keys.', '4.0.0', del),
  spec('exists', -2, ['readonly', 'fast'], [1, -1, 1], 'Determines whether one or more keys exist.', '1.0.0', exists),
  spec('expire', -3, ['write', 'fast'], ONE_KEY, 'Sets the expiration time of a key in seconds.', '1.0.0', expireLike('expire', true, true)),
  spec('pexpire', -3, ['write', 'fast'], ONE_KEY, 'Sets the expiration time of a key in milliseconds.', '2.6.0', expireLike('pexpire', false, true)),
  spec('expireat', -3, ['write', 'fast'], ONE_KEY, 'Sets the expiration time of a key to a Unix timestamp.', '1.2.0', expireLike('expireat', true, false)),
  spec('pexpireat', -3, ['write', 'fast'], ONE_KEY, 'Sets the expiration time of a key to a Unix milliseconds timestamp.', '2.6.0', expireLike('pexpireat', false, false)),
  spec('expiretime', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the expiration time of a key as a Unix timestamp.', '7.0.0', ttlLike(false, true)),
  spec('pexpiretime', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the expiration time of a key as a Unix milliseconds timestamp.', '7.0.0', ttlLike(true, true)),
  spec('ttl', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the expiration time in seconds of a key.', '1.0.0', ttlLike(false, false)),
  spec('pttl', 2, ['readonly', 'fast'], ONE_KEY, 'Returns the expiration time in milliseconds of a key.', '2.6.0', ttlLike(true, false)),
  spec('persist', 2, ['write', 'fast'], ONE_KEY, 'Removes the expiration time of a key.', '2.2.0', persist),
  spec('touch', -2, ['readonly', 'fast'], [1, -1, 1], 'Returns the number of existing keys out of those specified after updating the time they were last accessed.', '3.2.1', exists),
  spec('type', 2, ['readonly', 'fast'], ONE_KEY, 'Determines the type of value stored at a key.', '1.0.0', type),
  localSpec('scan', -2, ['readonly'], NO_KEYS, 'Iterates over the key names in the database.', '2.8.0', scan),
  localSpec('keys', 2, ['readonly'], NO_KEYS, 'Returns all key names that match a pattern.', '1.0.0', keys),
  localSpec('randomkey', 1, ['readonly'], NO_KEYS, 'Returns a random key name from the database.', '1.0.0', randomkey),
  localSpec('dbsize', 1, ['readonly', 'fast'], NO_KEYS, 'Returns the number of keys in the database.', '1.0.0', dbsize),
  localSpec('flushall', -1, ['write'], NO_KEYS, 'Removes all keys from all databases.', '1.0.0', flushall),
  localSpec('flushdb', -1, ['write'], NO_KEYS, 'Remove all keys from the current database.', '1.0.0', flushall),
];
