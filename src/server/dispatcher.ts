/**
 * Runs one command: looks it up, checks arity and authentication from its CommandSpec before
 * the handler runs, times the handler's synchronous run for INFO commandstats and the SLOWLOG,
 * and turns a handler's exception into an error reply (the connection never sees a throw).
 *
 * Checks happen in Redis's order: unknown command/subcommand, then arity, then NOAUTH.
 * Sync handlers stay sync (no promise allocated per command on the hot path).
 */
import { performance } from 'node:perf_hooks';
import { error, type Reply } from '../resp/reply.js';
import type { RawCommand } from '../resp/parser.js';
import { arityOk, type CommandTable } from './command_table.js';
import type { Slowlog } from './slowlog.js';
import type { ServerStats } from './stats.js';
import type { CommandContext, CommandSpec, ConfigView } from './types.js';
import { reportsChanges } from '../config/config.js';
import { keyArgName, keyRangeName } from './key_layout.js';
import type { LogFn } from './logger.js';
import { DeferredReply } from './deferred_reply.js';

/** Redis prints at most this much of the command and its arguments in "unknown command". */
export const UNKNOWN_COMMAND_ARGS_MAX_CHARS = 128;

export const NOAUTH_ERROR = 'NOAUTH Authentication required.';

/** Command names remembered as sent (e.g. 'SET', 'set', 'Set') for a lookup without lower-casing. */
export const RAW_NAME_CACHE_MAX = 4096;

/** Names up to this long are remembered by a number (length, then 6 bytes: below 2^53). */
const SHORT_NAME_MAX_BYTES = 6;

const SLOWLOG_SLOWER_THAN_KEY = 'slowlog-log-slower-than';

/** Dispatcher#lastHandlerEndMs when the last start() ran no handler: the next one reads the clock. */
const NO_HANDLER_END = -1;

/**
 * AsyncCommand.args of a command started from a RawCommand whose run was under the slowlog
 * threshold: its arguments are not made (the SLOWLOG decision is taken when the handler returns).
 */
const ARGS_NOT_KEPT: readonly Buffer[] = Object.freeze([]);

/** Error texts replace CR and LF with spaces, as Redis does, so the reply stays one line. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

export function unknownCommandError(args: readonly Buffer[]): string {
  const name = (args[0] ?? Buffer.alloc(0)).toString().slice(0, UNKNOWN_COMMAND_ARGS_MAX_CHARS);
  let list = '';
  for (let i = 1; i < args.length && list.length < UNKNOWN_COMMAND_ARGS_MAX_CHARS; i++) {
    list += `'${(args[i] as Buffer).toString().slice(0, UNKNOWN_COMMAND_ARGS_MAX_CHARS - list.length)}' `;
  }
  return oneLine(`ERR unknown command '${name}', with args beginning with: ${list}`);
}

export function unknownSubcommandError(container: string, sub: Buffer): string {
  return oneLine(`ERR unknown subcommand '${sub.toString().slice(0, UNKNOWN_COMMAND_ARGS_MAX_CHARS)}'. Try ${container.toUpperCase()} HELP.`);
}

export function wrongArityError(fullName: string): string {
  return `ERR wrong number of arguments for '${fullName}' command`;
}

/**
 * The keys a command touches and whether it writes them (see Dispatcher.overlapPlan). A one-key
 * command (every SET and GET) has its key in `key` and no array (a plan lives as long as its
 * command is in flight: ~800 of them at -c 50 -P 16).
 */
export interface OverlapPlan {
  /** The key of a one-key command; undefined when `keys` lists them. */
  readonly key: string | undefined;
  /** The keys of a multi-key command; undefined for a one-key one. */
  readonly keys: readonly string[] | undefined;
  readonly write: boolean;
}

function planHas(p: OverlapPlan, k: string): boolean {
  return p.keys === undefined ? p.key === k : p.keys.includes(k);
}

/** True when `b` may run concurrently with `a` (no shared key written by either). */
export function plansCommute(a: OverlapPlan, b: OverlapPlan): boolean {
  if (!a.write && !b.write) return true;
  if (b.keys === undefined) return !planHas(a, b.key as string);
  for (const k of b.keys) if (planHas(a, k)) return false;
  return true;
}

export interface DispatcherOptions {
  readonly table: CommandTable;
  readonly stats: ServerStats;
  readonly slowlog: Slowlog;
  readonly log: LogFn;
}

/** The command a request resolves to, or the error reply when it resolves to none. */
export type Resolution = { spec: CommandSpec } | { error: string; countAs?: CommandSpec };

/** A command whose handler returned a promise or a DeferredReply (Dispatcher.start): what finish counts once it settled. */
export class AsyncCommand {
  /**
   * The caller's bookkeeping while the command is in flight (the connection's InFlight entry is
   * the AsyncCommand itself: one object per pipelined command instead of two): its overlap plan,
   * and the reply finish returned once it settled.
   */
  plan: OverlapPlan | undefined = undefined;
  answer: Reply | undefined = undefined;

  constructor(
    readonly reply: Promise<Reply> | DeferredReply,
    readonly ctx: CommandContext,
    readonly spec: CommandSpec,
    readonly args: readonly Buffer[],
    readonly usec: number,
    readonly nowMs: number,
  ) {}
}

export class Dispatcher {
  readonly table: CommandTable;
  readonly #stats: ServerStats;
  readonly #slowlog: Slowlog;
  readonly #log: LogFn;
  /** performance.now() when the handler of the last start() returned; NO_HANDLER_END when it ran none. */
  #lastHandlerEndMs = NO_HANDLER_END;
  /** The request overlapPlan resolved last and its resolution (see resolve). */
  #resolvedArgs: readonly Buffer[] | undefined;
  #resolved: Resolution | undefined;
  readonly #specResolutions = new Map<CommandSpec, Resolution>();
  readonly #byRawName = new Map<string, CommandSpec>();
  /** #byRawName for names of at most SHORT_NAME_MAX_BYTES, keyed by length and bytes as one number. */
  readonly #byShortName = new Map<number, CommandSpec>();
  /**
   * slowlog-log-slower-than of #slowlogConfig (the server's config: one per dispatcher), read
   * once per command (twice for an async one) and kept while #slowerCurrent: a config that
   * reports its changes clears it when the key changes; any other config is read every time.
   */
  #slowlogConfig: ConfigView | undefined;
  #slowerUs = 0;
  #slowerCurrent = false;

  constructor(options: DispatcherOptions) {
    this.table = options.table;
    this.#stats = options.stats;
    this.#slowlog = options.slowlog;
    this.#log = options.log;
  }

  /**
   * Pure lookup + arity check. The connection asks overlapPlan and then dispatch about the same
   * request array back to back (every pipelined command): the second resolve reuses the first
   * (cached by array identity, cleared by dispatch so no request is kept alive by the cache).
   */
  resolve(args: readonly Buffer[]): Resolution {
    if (args === this.#resolvedArgs && this.#resolved !== undefined) return this.#resolved;
    return this.#resolve(args);
  }

  /** The resolution of a command with no subcommands, one object per spec (no allocation per request). */
  #resolutionOf(spec: CommandSpec): Resolution {
    let r = this.#specResolutions.get(spec);
    if (r === undefined) {
      r = { spec };
      this.#specResolutions.set(spec, r);
    }
    return r;
  }

  /** The spec a command name (as sent, any case) names: the table's lookup, remembered per spelling. */
  #lookupName(first: Buffer): CommandSpec | undefined {
    const n = first.length;
    if (n > 0 && n <= SHORT_NAME_MAX_BYTES) {
      // A short name (GET, SET, ...) is looked up by a number made of its bytes: no string per request.
      let code = n;
      for (let i = 0; i < n; i++) code = code * 256 + (first[i] as number);
      const known = this.#byShortName.get(code);
      if (known !== undefined) return known;
      const spec = this.#lookupString(first);
      if (spec !== undefined && this.#byShortName.size < RAW_NAME_CACHE_MAX) this.#byShortName.set(code, spec);
      return spec;
    }
    return this.#lookupString(first);
  }

  /**
   * The spec of a raw command's name when it is known by its short code (it was looked up
   * before as a Buffer: #lookupName remembers it); undefined sends the command the general way.
   */
  #lookupRawName(raw: RawCommand): CommandSpec | undefined {
    const buf = raw.buf;
    const start = raw.starts[0] as number;
    const n = (raw.ends[0] as number) - start;
    if (n <= 0 || n > SHORT_NAME_MAX_BYTES) return undefined;
    let code = n;
    for (let i = 0; i < n; i++) code = code * 256 + (buf[start + i] as number);
    return this.#byShortName.get(code);
  }

  /**
   * The spec to run `raw` with startRaw: a command with a rawHandler and no subcommands, its
   * arity right and the client allowed to run it. undefined: make the arguments (raw.args())
   * and take resolve/start, which answer every other case (errors included).
   */
  rawSpec(ctx: CommandContext, raw: RawCommand): CommandSpec | undefined {
    if (raw.count === 0) return undefined;
    const spec = this.#lookupRawName(raw);
    if (spec === undefined || spec.rawHandler === undefined || spec.subcommands !== undefined) return undefined;
    if (!arityOk(spec.arity, raw.count)) return undefined;
    if (!ctx.client.authenticated && !spec.flags.includes('noauth') && ctx.server.config.getString('requirepass') !== '') return undefined;
    return spec;
  }

  /** overlapPlan of a raw command whose spec rawSpec gave. */
  overlapPlanRaw(spec: CommandSpec, raw: RawCommand): OverlapPlan | undefined {
    if (spec.firstKey <= 0 || spec.flags.includes('admin')) return undefined;
    const write = spec.flags.includes('write');
    if (!write && !spec.flags.includes('readonly')) return undefined;
    const count = raw.count;
    const last = spec.lastKey < 0 ? count + spec.lastKey : Math.min(spec.lastKey, count - 1);
    if (spec.firstKey === last) return { key: keyRangeName(raw.buf, raw.starts[last] as number, raw.ends[last] as number), keys: undefined, write };
    const step = Math.max(1, spec.keyStep);
    const keys: string[] = [];
    for (let i = spec.firstKey; i <= last; i += step) keys.push(keyRangeName(raw.buf, raw.starts[i] as number, raw.ends[i] as number));
    return { key: undefined, keys, write };
  }

  #lookupString(first: Buffer): CommandSpec | undefined {
    const name = first.toString('latin1');
    const known = this.#byRawName.get(name);
    if (known !== undefined) return known;
    const spec = this.table.lookup(name);
    // Only names that exist are remembered (a bounded set: the table's names in a few casings),
    // so random unknown names cannot grow it.
    if (spec !== undefined && this.#byRawName.size < RAW_NAME_CACHE_MAX) this.#byRawName.set(name, spec);
    return spec;
  }

  #resolve(args: readonly Buffer[]): Resolution {
    const first = args[0];
    if (first === undefined) return { error: unknownCommandError(args) };
    const spec = this.#lookupName(first);
    if (spec === undefined) return { error: unknownCommandError(args) };
    let target = spec;
    if (spec.subcommands !== undefined && spec.subcommands.length > 0) {
      const subName = args[1];
      if (subName !== undefined) {
        const sub = this.table.lookupSub(spec, subName.toString('latin1'));
        if (sub === undefined) return { error: unknownSubcommandError(spec.name, subName) };
        target = sub;
      } else if (spec.handler === undefined) {
        return { error: wrongArityError(spec.name), countAs: spec };
      }
    }
    if (!arityOk(target.arity, args.length)) return { error: wrongArityError(target.name), countAs: target };
    return this.#resolutionOf(target);
  }

  /**
   * Whether a pipelined command may start while earlier commands of the same client are still
   * running: only single-purpose key commands (read or write flags, key positions, no admin,
   * no subcommands) may, and the caller must still check its keys against what is in flight
   * (a write conflicts with any command on one of its keys). undefined: a barrier, which runs
   * alone after everything before it finished.
   */
  overlapPlan(args: readonly Buffer[]): OverlapPlan | undefined {
    const r = this.resolve(args);
    this.#resolvedArgs = args;
    this.#resolved = r;
    if ('error' in r) return undefined;
    const spec = r.spec;
    if (spec.firstKey <= 0 || spec.subcommands !== undefined || spec.flags.includes('admin')) return undefined;
    const write = spec.flags.includes('write');
    if (!write && !spec.flags.includes('readonly')) return undefined;
    const last = spec.lastKey < 0 ? args.length + spec.lastKey : Math.min(spec.lastKey, args.length - 1);
    // One-key commands (every SET/GET) get their key without an array.
    if (spec.firstKey === last) return { key: keyArgName(args[last] as Buffer), keys: undefined, write };
    const step = Math.max(1, spec.keyStep);
    const keys: string[] = [];
    for (let i = spec.firstKey; i <= last; i += step) keys.push(keyArgName(args[i] as Buffer));
    return { key: undefined, keys, write };
  }

  /**
   * Runs one command: its reply, or a promise of it when the handler is async (INFO commandstats
   * and SLOWLOG count it once it settled). Tests and one-off callers; the connection uses start
   * and finish, which let the commands of one batch wait on one continuation.
   */
  dispatch(ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
    const out = this.start(ctx, args);
    if (!(out instanceof AsyncCommand)) return out;
    const reply = out.reply instanceof DeferredReply ? out.reply.promise() : out.reply;
    return reply.then(
      (reply) => this.finish(out, reply),
      (err: unknown) => this.finish(out, this.failure(out, err)),
    );
  }

  /**
   * Starts one command: its reply when the handler answered synchronously (counted already), or
   * an AsyncCommand whose `reply` (a promise or a DeferredReply) settles later; the caller must then pass the settled reply
   * (or failure(...) of the rejection) to finish exactly once, which counts it and returns the
   * reply to send. Handlers of one pipelined batch may return the same promise (the plain SETs
   * of one engine write: strings.ts setReplyOf), so a caller can wait once for all of them.
   * `chained`: this command follows, in the same synchronous stretch, the caller's previous
   * start() (see the timing comment below); false for the first command of a stretch.
   */
  start(ctx: CommandContext, args: Buffer[], chained = false): Reply | AsyncCommand {
    const lastEndMs = this.#lastHandlerEndMs;
    this.#lastHandlerEndMs = NO_HANDLER_END;
    const client = ctx.client;
    const r = this.resolve(args);
    this.#resolvedArgs = undefined;
    this.#resolved = undefined;
    if ('error' in r) {
      if (r.countAs !== undefined) this.#stats.command(r.countAs.name).rejectedCalls++;
      this.#stats.countError(r.error);
      return error(r.error);
    }
    const spec = r.spec;
    if (!client.authenticated && !spec.flags.includes('noauth') && ctx.server.config.getString('requirepass') !== '') {
      this.#stats.command(spec.name).rejectedCalls++;
      this.#stats.countError(NOAUTH_ERROR);
      return error(NOAUTH_ERROR);
    }
    const handler = spec.handler;
    if (handler === undefined) {
      client.lastCommand = spec.name;
      client.lastCommandAtMs = ctx.server.now();
      return error(wrongArityError(spec.name)); // container without own handler (checked above)
    }
    return this.#run(ctx, spec, args, chained, lastEndMs);
  }

  /**
   * start for a command rawSpec accepted (its spec passed): runs spec.rawHandler on the raw
   * bytes, or spec.handler on raw.args() when the raw handler declines, with start's timing and
   * counting. An async command keeps its arguments only when the SLOWLOG would log it now.
   */
  startRaw(ctx: CommandContext, spec: CommandSpec, raw: RawCommand, chained = false): Reply | AsyncCommand {
    const lastEndMs = this.#lastHandlerEndMs;
    this.#lastHandlerEndMs = NO_HANDLER_END;
    this.#resolvedArgs = undefined;
    this.#resolved = undefined;
    return this.#run(ctx, spec, raw, chained, lastEndMs);
  }

  #run(ctx: CommandContext, spec: CommandSpec, args: Buffer[] | RawCommand, chained: boolean, lastEndMs: number): Reply | AsyncCommand {
    const client = ctx.client;
    const nowMs = ctx.server.now();
    client.lastCommand = spec.name;
    client.lastCommandAtMs = nowMs;
    const start = chained && lastEndMs !== NO_HANDLER_END ? lastEndMs : performance.now();
    let out: Reply | Promise<Reply> | DeferredReply | undefined;
    try {
      if (Array.isArray(args)) {
        out = (spec.handler as NonNullable<CommandSpec['handler']>)(ctx, args);
      } else {
        out = (spec.rawHandler as NonNullable<CommandSpec['rawHandler']>)(ctx, args);
        if (out === undefined) out = (spec.handler as NonNullable<CommandSpec['handler']>)(ctx, args.args());
      }
    } catch (err) {
      out = this.#failure(spec, err);
    }
    const end = performance.now();
    this.#lastHandlerEndMs = end;
    // The command's execution time (INFO commandstats, SLOWLOG) is the handler's synchronous run:
    // Redis counts the time in call(), "the only stage where the thread is blocked", and leaves out
    // what a blocked command waits for. An async command's wait (replica answers, the engine's
    // group commit, the turns spent on every other request in flight) is not execution. Measured
    // to the reply, a loaded cluster node put nearly every command over slowlog-log-slower-than's
    // 10 ms (p99 at -c 50 -P 16 is 90-500 ms: queueing), so SLOWLOG listed queueing, not slow commands.
    // Chained (the second and later commands of one synchronous run of a connection), a command's
    // time starts where the previous handler's ended: one clock read per command instead of two,
    // and the time counted grows only by the connection's work between the two (parsing this
    // command, queueing the previous reply: well under a microsecond).
    const usec = Math.round((end - start) * 1000);
    if (out instanceof Promise || out instanceof DeferredReply) {
      let kept: readonly Buffer[];
      if (Array.isArray(args)) kept = args;
      else {
        // The raw bytes are not ours past this call: the arguments are made only for the SLOWLOG.
        const slower = this.#slowerThanUs(ctx.server.config);
        kept = slower >= 0 && usec >= slower ? args.args() : ARGS_NOT_KEPT;
      }
      return new AsyncCommand(out, ctx, spec, kept, usec, nowMs);
    }
    return this.#finish(ctx, spec, args, usec, nowMs, out);
  }

  /** slowlog-log-slower-than of `config` (see #slowerUs). */
  #slowerThanUs(config: ConfigView): number {
    if (this.#slowerCurrent && config === this.#slowlogConfig) return this.#slowerUs;
    if (config !== this.#slowlogConfig) {
      this.#slowlogConfig = config;
      if (reportsChanges(config)) {
        config.onChange((key) => {
          if (key === SLOWLOG_SLOWER_THAN_KEY && this.#slowlogConfig === config) this.#slowerCurrent = false;
        });
      }
    }
    this.#slowerUs = config.getNumber(SLOWLOG_SLOWER_THAN_KEY);
    this.#slowerCurrent = reportsChanges(config);
    return this.#slowerUs;
  }

  /** Counts a started command whose reply settled (see start); returns the reply to send. */
  finish(cmd: AsyncCommand, reply: Reply): Reply {
    return this.#finish(cmd.ctx, cmd.spec, cmd.args, cmd.usec, cmd.nowMs, reply);
  }

  /** The reply for a started command whose promise rejected (logged: handlers answer errors as replies). */
  failure(cmd: AsyncCommand, err: unknown): Reply {
    return this.#failure(cmd.spec, err);
  }

  #failure(spec: CommandSpec, err: unknown): Reply {
    const message = err instanceof Error ? err.message : String(err);
    this.#log('error', `command ${spec.name} failed: ${err instanceof Error && err.stack !== undefined ? err.stack : message}`);
    return error(oneLine(`ERR ${message}`));
  }

  #finish(ctx: CommandContext, spec: CommandSpec, args: readonly Buffer[] | RawCommand, usec: number, nowMs: number, reply: Reply): Reply {
    const stat = this.#stats.command(spec.name);
    stat.calls++;
    stat.usec += usec;
    this.#stats.totalCommandsProcessed++;
    if (reply.kind === 'error') {
      stat.failedCalls++;
      this.#stats.countError(reply.message);
    }
    const config = ctx.server.config;
    const slower = this.#slowerThanUs(config);
    if (slower >= 0 && usec >= slower && args !== ARGS_NOT_KEPT) {
      const argv = Array.isArray(args) ? (args as readonly Buffer[]) : (args as RawCommand).args();
      this.#slowlog.record(config.getNumber('slowlog-max-len'), nowMs, usec, argv, ctx.client.addr, ctx.client.name);
    }
    return reply;
  }
}
