/**
 * The RESP server of one node: listens on every `bind` address at `port`, admits connections
 * (maxclients, protected mode), owns the command table and dispatcher, closes idle clients
 * (`timeout`) and shuts down cleanly: stop accepting, let in-flight commands finish and their
 * replies drain, then close every connection.
 */
import assert from 'node:assert';
import net from 'node:net';
import { Config } from '../config/config.js';
import type { Keyspace } from './keyspace.js';
import { CommandClock } from './command_clock.js';
import { CommandTable } from './command_table.js';
import { Connection, type ConnectionHost } from './connection.js';
import { INLINE_MAX_BYTES, MULTIBULK_MAX_LENGTH, UNAUTHENTICATED_LIMITS, type ParserLimits } from '../resp/parser-limits.js';
import { Dispatcher } from './dispatcher.js';
import type { LogFn, Logger } from './logger.js';
import type { ClientHandle, NodeServices } from './services.js';
import { Slowlog } from './slowlog.js';
import { ServerStats } from './stats.js';
import type { ClientState, CommandSpec, ServerContext } from './types.js';
import { stringCommands } from './commands/strings.js';
import { keyCommands } from './commands/keys.js';
import { causalCommands } from './commands/causal.js';
import { clusterCommands } from './commands/cluster.js';
import { connectionCommands } from './commands/connection.js';
import { serverCommands } from './commands/server.js';

/** How often idle clients are looked for (`timeout` is in whole seconds). */
export const IDLE_SWEEP_INTERVAL_MS = 1000;

export const MAX_CLIENTS_ERROR = 'ERR max number of clients reached';

export const DENIED_ERROR =
  'DENIED ringkv is running in protected mode because protected mode is enabled and no password is set for the default user. ' +
  'In this mode connections are only accepted from the loopback interface. ' +
  'If you want to connect from external computers to ringkv you may adopt one of the following solutions: ' +
  "1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to ringkv from the same host the server is running, however MAKE SURE ringkv is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. " +
  "2) Alternatively you can just disable the protected mode by editing the ringkv configuration file, and setting the protected mode option to 'no', and then restarting the server. " +
  "3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. " +
  '4) Set up an authentication password for the default user. ' +
  'NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.';

export class ServerStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerStartError';
  }
}

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Redis's anetFormatAddr: `ip:port`, `[ipv6]:port`. */
export function formatAddr(ip: string | undefined, port: number | undefined): string {
  const host = ip ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${port ?? 0}`;
}

export interface ServerOptions {
  readonly config: Config;
  readonly keyspace: Keyspace;
  readonly log: LogFn;
  /** Applies CONFIG SET loglevel; optional for embedders with their own logging. */
  readonly logger?: Logger;
  readonly now?: () => number;
  /**
   * The clock the server's commands read (context.now), held for each connection's synchronous
   * command run (command_clock.ts). node.ts shares it with the keyspace, so the commands of one
   * batch and the keyspace under them read one time. Default: a clock over `now`.
   */
  readonly clock?: CommandClock;
  /** More commands for the table (embedding, tests). */
  readonly extraCommands?: readonly CommandSpec[];
  /** Called once when SHUTDOWN (or a signal) asks the node to stop. */
  readonly onShutdownRequest?: (reason: string) => void;
  /** The node's cluster, when it runs in one (src/cluster/cluster_service.ts). */
  readonly cluster?: import('./cluster_view.js').ClusterView;
}

export class RingkvServer implements ConnectionHost, NodeServices {
  readonly config: Config;
  readonly stats = new ServerStats();
  readonly slowlog = new Slowlog();
  readonly log: LogFn;
  readonly context: ServerContext;
  readonly clock: CommandClock;
  readonly dispatcher: Dispatcher;
  readonly startedAtMs: number;
  readonly #table: CommandTable;
  readonly #connections = new Map<number, Connection>();
  readonly #listeners: net.Server[] = [];
  readonly #onShutdownRequest: ((reason: string) => void) | undefined;
  readonly #unsubscribe: () => void;
  #nextClientId = 1;
  #port = 0;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closing = false;
  // Hot-path copies of config values, kept current by the onChange listener.
  #outputLimitBytes: number;
  #queryLimitBytes: number;

  constructor(options: ServerOptions) {
    this.config = options.config;
    this.log = options.log;
    this.clock = options.clock ?? new CommandClock(options.now ?? Date.now);
    const now = this.clock.now;
    this.startedAtMs = now();
    this.#onShutdownRequest = options.onShutdownRequest;
    this.context = { config: options.config, keyspace: options.keyspace, now, ...(options.cluster === undefined ? {} : { cluster: options.cluster }) };
    const specs: CommandSpec[] = [
      ...connectionCommands(this),
      ...serverCommands(this),
      ...stringCommands,
      ...keyCommands,
      ...causalCommands,
      ...clusterCommands,
      ...(options.extraCommands ?? []),
    ];
    this.#table = new CommandTable(specs);
    this.dispatcher = new Dispatcher({ table: this.#table, stats: this.stats, slowlog: this.slowlog, log: this.log });
    this.#outputLimitBytes = this.config.getNumber('client-output-buffer-limit');
    this.#queryLimitBytes = this.config.getNumber('client-query-buffer-limit');
    const logger = options.logger;
    this.#unsubscribe = this.config.onChange((key) => {
      switch (key) {
        case 'client-output-buffer-limit':
          this.#outputLimitBytes = this.config.getNumber(key);
          break;
        case 'client-query-buffer-limit':
          this.#queryLimitBytes = this.config.getNumber(key);
          break;
        case 'proto-max-bulk-len':
        case 'requirepass':
          for (const c of this.#connections.values()) c.refreshLimits();
          break;
        case 'slowlog-max-len':
          this.slowlog.trim(this.config.getNumber(key));
          break;
        case 'loglevel':
          logger?.setLevel(this.config.getString(key) as Parameters<Logger['setLevel']>[0]);
          break;
      }
    });
  }

  table(): CommandTable {
    return this.#table;
  }

  port(): number {
    return this.#port;
  }

  *clients(): Iterable<ClientHandle> {
    yield* this.#connections.values();
  }

  client(id: number): ClientHandle | undefined {
    return this.#connections.get(id);
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  parserLimits(authenticated: boolean): ParserLimits {
    const limits: ParserLimits = {
      maxInlineBytes: INLINE_MAX_BYTES,
      maxBulkBytes: this.config.getNumber('proto-max-bulk-len'),
      maxMultibulkLength: MULTIBULK_MAX_LENGTH,
    };
    // Before AUTH a client gets Redis's tight limits (10 arguments, 16 KiB bulks).
    if (!authenticated && this.config.getString('requirepass') !== '') limits.unauthenticated = UNAUTHENTICATED_LIMITS;
    return limits;
  }

  outputLimitBytes(): number {
    return this.#outputLimitBytes;
  }

  queryLimitBytes(): number {
    return this.#queryLimitBytes;
  }

  onClose(conn: Connection): void {
    this.#connections.delete(conn.state.id);
  }

  requestShutdown(reason: string): void {
    if (this.#onShutdownRequest !== undefined) this.#onShutdownRequest(reason);
    else void this.close();
  }

  /**
   * Listens on every `bind` address; resolves with the port. Throws ServerStartError with a
   * one-line reason (port in use, address not available).
   */
  async listen(): Promise<number> {
    assert(this.#listeners.length === 0, 'listen() called twice');
    const addrs = this.config.getString('bind').split(/\s+/).filter((a) => a !== '');
    let port = this.config.getNumber('port');
    for (const raw of addrs) {
      const optional = raw.startsWith('-');
      const host = (optional ? raw.slice(1) : raw) === '*' ? '0.0.0.0' : optional ? raw.slice(1) : raw;
      const srv = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, (s) => this.#accept(s));
      try {
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen({ host, port, backlog: 511 }, () => {
            srv.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (optional && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT')) {
          this.log('warn', `skipping bind address ${host}: ${e.code}`);
          continue;
        }
        await this.#closeListeners();
        const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : (e.code ?? e.message);
        throw new ServerStartError(`cannot listen on ${formatAddr(host, port)}: ${why}`, { cause: err });
      }
      srv.on('error', (err) => this.log('error', `listener ${host}: ${err.message}`));
      this.#listeners.push(srv);
      const a = srv.address();
      if (port === 0 && a !== null && typeof a === 'object') port = a.port;
    }
    if (this.#listeners.length === 0) throw new ServerStartError(`no bind address available (bind ${addrs.join(' ')})`);
    this.#port = port;
    this.#sweepTimer = setInterval(() => this.#sweepIdle(), IDLE_SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
    return port;
  }

  #accept(socket: net.Socket): void {
    const now = this.context.now();
    this.stats.totalConnectionsReceived++;
    const requirepass = this.config.getString('requirepass');
    const state: ClientState = {
      id: this.#nextClientId++,
      name: '',
      protocol: 2,
      authenticated: requirepass === '',
      addr: formatAddr(socket.remoteAddress, socket.remotePort),
      laddr: formatAddr(socket.localAddress, socket.localPort),
      createdAtMs: now,
      lastCommandAtMs: now,
      lastCommand: 'NULL',
      closeAfterReply: false,
    };
    const conn = new Connection(this, socket, state);
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.config.getNumber('maxclients')) {
      this.stats.rejectedConnections++;
      conn.rejectAndClose(MAX_CLIENTS_ERROR);
      return;
    }
    if (this.config.getBool('protected-mode') && requirepass === '' && !isLoopback(socket.remoteAddress ?? '')) {
      this.stats.rejectedConnections++;
      this.log('warn', `protected mode: refused client ${state.addr}`);
      conn.rejectAndClose(DENIED_ERROR);
      return;
    }
    const keepaliveSec = this.config.getNumber('tcp-keepalive');
    if (keepaliveSec > 0) socket.setKeepAlive(true, keepaliveSec * 1000);
    socket.setNoDelay(true);
    this.#connections.set(state.id, conn);
  }

  #sweepIdle(): void {
    const timeoutSec = this.config.getNumber('timeout');
    if (timeoutSec <= 0) return;
    const cutoff = this.context.now() - timeoutSec * 1000;
    for (const c of this.#connections.values()) {
      if (!c.busy && c.lastInteractionMs() < cutoff) {
        this.log('debug', `closing idle client id=${c.state.id} addr=${c.state.addr}`);
        c.kill();
      }
    }
  }

  async #closeListeners(): Promise<void> {
    await Promise.all(this.#listeners.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  /** Stops accepting, finishes every in-flight command, closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#unsubscribe();
    const listenersClosed = this.#closeListeners();
    await Promise.all([...this.#connections.values()].map((c) => c.shutdown()));
    await listenersClosed;
  }
}
