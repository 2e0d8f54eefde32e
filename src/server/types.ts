/**
 * The contract between the connection layer, the command table and command handlers.
 * Handlers are plain functions of (context, args) returning a Reply; the dispatcher checks arity,
 * authentication and flags from the CommandSpec before a handler runs.
 */
import type { Reply } from '../resp/reply.js';
import type { RawCommand } from '../resp/parser.js';
import type { DeferredReply } from './deferred_reply.js';

export type CommandFlag =
  | 'write' // may modify data
  | 'readonly' // reads data only
  | 'fast' // O(1) or O(log n)
  | 'admin' // server administration
  | 'noauth' // allowed before AUTH (AUTH, HELLO, QUIT, ...)
  | 'stale' // allowed while the node is not serving data
  | 'loading'
  | 'pubsub'
  | 'blocking'
  | 'random'
  | 'connection';

export interface CommandSpec {
  /** Lower-case name ('get', 'client'). Subcommands live in `subcommands`, named 'client|setname'. */
  readonly name: string;
  /** Redis arity: the argument count including the name; negative means at least -arity. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** Key positions as Redis's COMMAND INFO gives them (first, last, step; 0 when no keys; last -1 = to the end). */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly keyStep: number;
  /** One line for COMMAND DOCS. */
  readonly summary: string;
  /** e.g. 'string', 'generic', 'connection', 'server', 'cluster' (COMMAND DOCS group). */
  readonly group: string;
  readonly since?: string;
  /** args[0] is the command name as the client sent it. */
  readonly handler?: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;
  readonly subcommands?: readonly CommandSpec[];
  /**
   * Optional fast path on the received bytes (no argument Buffers made): the dispatcher calls it
   * instead of `handler` for a command that came as a RawCommand, after the same lookup, arity
   * and authentication checks. It answers as `handler` would, or undefined to have `handler`
   * run on the arguments instead (nothing done yet). `raw` is valid only during the call. An
   * async answer may be a DeferredReply instead of a promise (deferred_reply.ts).
   */
  readonly rawHandler?: (ctx: CommandContext, raw: RawCommand) => Reply | Promise<Reply> | DeferredReply | undefined;
}

/** Per-connection state. The connection layer owns it; handlers may read and change it. */
export interface ClientState {
  readonly id: number;
  name: string;
  /** 2 or 3 (after HELLO 3). */
  protocol: 2 | 3;
  authenticated: boolean;
  /** Per-connection read/write quorum override (CLIENT QUORUM); undefined: the config's. */
  readQuorum?: string;
  writeQuorum?: string;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAtMs: number;
  lastCommandAtMs: number;
  lastCommand: string;
  /** Set by QUIT / CLIENT KILL: close after writing pending replies. */
  closeAfterReply: boolean;
}

/** Typed access to the running configuration (src/config). */
export interface ConfigView {
  getString(key: string): string;
  getNumber(key: string): number;
  getBool(key: string): boolean;
}

/** Everything a handler may use; the server builds one and shares it across connections. */
export interface ServerContext {
  readonly config: ConfigView;
  /** The node's data, on the storage engine (src/server/keyspace.ts). */
  readonly keyspace: import('./keyspace.js').Keyspace;
  /** Set when the node runs in a cluster (`seeds`): data commands go through its Coordinator. */
  readonly cluster?: import('./cluster_view.js').ClusterView;
  /** Milliseconds since the epoch; injected so tests can move time. */
  now(): number;
}

export interface CommandContext {
  readonly client: ClientState;
  readonly server: ServerContext;
}
