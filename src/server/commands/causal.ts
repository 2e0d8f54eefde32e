/**
 * Causal commands (ARCHITECTURE.md section 4), on one node:
 *
 *   GETCTX key                          -> [context, [value, ...]]
 *       context: opaque printable token naming every version this node holds for the key
 *       (also for a missing key: then it may still name deleted versions); values: the live
 *       sibling values in canonical order (an empty array when none).
 *   SETCTX key context value [EX s|PX ms] -> OK
 *       writes `value` superseding exactly the versions the context covers; versions written
 *       since the context was read stay, as siblings of the new value.
 *   DELCTX key context                  -> integer: live values the context covered (now deleted)
 *       writes a tombstone superseding what the context covers; values it did not cover stay.
 *
 * A malformed token: `-ERR invalid context: <why>`. SETCTX expiry errors follow SET's texts
 * with the command name (`ERR invalid expire time in 'setctx' command`).
 */
import { array, bulk, bulks, error, integer, OK, type Reply } from '../../resp/reply.js';
import { ContextError, contextOf, covers, decodeContext, encodeContext, type Context } from '../../coordinator/object.js';
import type { Keyspace, Mutation } from '../keyspace.js';
import type { CommandContext, CommandSpec } from '../types.js';
import { resolveStringExpire } from './expire_args.js';
import { optionName, SYNTAX_ERROR } from './redis_numbers.js';
import { guarded } from './strings.js';
import { routed, type KeyOps } from './replicated.js';

const arg = (args: readonly Buffer[], i: number): Buffer => args[i] as Buffer;

/** The context a token names, or the error reply for a bad token. */
export function parseContextArg(token: Buffer): { ok: true; context: Context } | { ok: false; reply: Reply } {
  try {
    return { ok: true, context: decodeContext(token.toString('latin1')) };
  } catch (err) {
    if (err instanceof ContextError) return { ok: false, reply: error(`ERR invalid context: ${err.message}`) };
    throw err;
  }
}

async function getctx(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const view = await ks.view(arg(args, 1));
  return array([bulk(encodeContext(contextOf(view.object))), bulks(view.values)]);
}

/** SETCTX key context value [EX seconds|PX milliseconds] */
async function setctx(ks: KeyOps, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  let expiresAtMs = 0;
  let seen = false;
  for (let i = 4; i < args.length; i += 2) {
    const opt = optionName(arg(args, i));
    if ((opt !== 'ex' && opt !== 'px') || seen || i + 1 >= args.length) return error(SYNTAX_ERROR);
    seen = true;
    const r = resolveStringExpire(arg(args, i + 1), opt === 'ex' ? 'EX' : 'PX', ctx.server.now(), 'setctx');
    if (!r.ok) return error(r.error);
    expiresAtMs = r.value;
  }
  const parsed = parseContextArg(arg(args, 2));
  if (!parsed.ok) return parsed.reply;
  const value = arg(args, 3);
  ks.checkValue(value);
  const context = parsed.context;
  return ks.mutate(arg(args, 1), (): Mutation<Reply> => ({ result: OK, write: { value, expiresAtMs, context } }));
}

async function delctx(ks: KeyOps, args: Buffer[]): Promise<Reply> {
  const parsed = parseContextArg(arg(args, 2));
  if (!parsed.ok) return parsed.reply;
  const context = parsed.context;
  return ks.mutate(arg(args, 1), (view): Mutation<Reply> => {
    const removed = view.live.filter((s) => covers(context, s.dot)).length;
    return { result: integer(removed), write: { value: null, expiresAtMs: 0, context } };
  });
}

function spec(
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  summary: string,
  handler: (ks: KeyOps, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec {
  return { name, arity, flags, firstKey: 1, lastKey: 1, keyStep: 1, summary, group: 'causal', since: '0.1.0', handler: routed(handler) };
}

export const causalCommands: readonly CommandSpec[] = [
  spec('getctx', 2, ['readonly', 'fast'], 'Returns the causal context of a key and all its concurrent values.', getctx),
  spec('setctx', -4, ['write'], 'Writes a value superseding the versions a causal context covers (resolves siblings).', setctx),
  spec('delctx', 3, ['write'], 'Deletes the versions a causal context covers.', delctx),
];
