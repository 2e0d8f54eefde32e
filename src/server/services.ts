/**
 * What the server's own commands (CLIENT, INFO, SHUTDOWN, ...) may see of the node around them.
 * Command families get it through their factory, so handlers stay plain functions of
 * (context, args) and the CommandContext contract stays small.
 */
import type { ClientState } from './types.js';

/** One connected client as CLIENT LIST / KILL see it. */
export interface ClientHandle {
  readonly state: ClientState;
  /** Bytes of unparsed input held for this client. */
  queryBufferBytes(): number;
  /** Bytes of replies queued and not yet written to the socket. */
  outputBufferBytes(): number;
  /** Milliseconds since the epoch of the last byte read or reply written. */
  lastInteractionMs(): number;
  /** Closes the connection: at once for another client, after the current reply for itself. */
  kill(): void;
}

/** The node as its own commands see it. */
export interface NodeServices {
  readonly config: import('../config/config.js').Config;
  readonly stats: import('./stats.js').ServerStats;
  readonly slowlog: import('./slowlog.js').Slowlog;
  readonly log: import('./logger.js').LogFn;
  readonly startedAtMs: number;
  /** The command table (built after the families, hence a function). */
  table(): import('./command_table.js').CommandTable;
  clients(): Iterable<ClientHandle>;
  client(id: number): ClientHandle | undefined;
  /** The TCP port actually listened on (0 before listen). */
  port(): number;
  /** Starts a clean shutdown (stop accepting, finish in flight, close the keyspace). */
  requestShutdown(reason: string): void;
}

/**
 * A handler returns this when the client must get no reply at all (SHUTDOWN closes the
 * connection without answering, as Redis does). The connection writes nothing for it.
 */
export const NO_REPLY: import('../resp/reply.js').Reply = Object.freeze({ kind: 'simple', value: '' });
