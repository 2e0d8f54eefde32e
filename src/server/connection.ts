/**
 * One client connection: bytes in -> RequestParser -> commands run strictly in order (async
 * handlers included: the next command starts only after the previous reply exists, as Redis
 * runs one client's commands one after another) -> replies accumulated in a ReplyBuffer and
 * written once per batch (one write, or corked writev, per read chunk instead of per reply).
 *
 * Backpressure both ways:
 *   - output: while more than OUTPUT_HIGH_WATER_BYTES of replies wait in the socket, reading
 *     and running stop; they resume on 'drain'. Queued replies beyond client-output-buffer-limit
 *     (one huge reply) close the client.
 *   - input: while a command is in flight and the parser holds more than QUERY_HIGH_WATER_BYTES,
 *     reading stops; unparsed input beyond client-query-buffer-limit closes the client.
 * So a client that pipelines a million commands without reading its replies costs at most about
 * OUTPUT_HIGH_WATER_BYTES + QUERY_HIGH_WATER_BYTES here; the rest waits in the kernel and in
 * the client.
 *
 *   socket 'data' ──feed──> parser ──next()──> dispatcher ──Reply──> ReplyBuffer ──flush──> socket
 *        ^  pause/resume                                                                   │
 *        └───────────────────────── 'drain' (writableLength back under high water) ───────┘
 *
 * A protocol error is answered with `-ERR Protocol error: ...` after the replies to the commands
 * before it, then this connection (only) is closed.
 */
import type { Socket } from 'node:net';
import { error, type Reply } from '../resp/reply.js';
import { ReplyBuffer } from '../resp/encoder.js';
import { RequestParser, ProtocolError } from '../resp/parser.js';
import type { ParserLimits } from '../resp/parser-limits.js';
import { NO_REPLY, type ClientHandle } from './services.js';
import type { Dispatcher } from './dispatcher.js';
import type { LogFn } from './logger.js';
import type { ServerStats } from './stats.js';
import type { ClientState, CommandContext, ServerContext } from './types.js';

/** Write the reply buffer out mid-batch once it holds this much. */
export const OUTPUT_FLUSH_BYTES = 64 * 1024;
/** Stop reading and running commands while this much output waits in the socket. */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** Stop reading while a command is in flight and this much input waits in the parser. */
export const QUERY_HIGH_WATER_BYTES = 1024 * 1024;

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly dispatcher: Dispatcher;
  readonly context: ServerContext;
  readonly stats: ServerStats;
  readonly log: LogFn;
  /** Current proto-max-bulk-len / limits for authenticated clients. */
  parserLimits(authenticated: boolean): ParserLimits;
  outputLimitBytes(): number;
  queryLimitBytes(): number;
  onClose(conn: Connection): void;
}

export class Connection implements ClientHandle {
  readonly state: ClientState;
  readonly socket: Socket;
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  readonly #out: ReplyBuffer;
  readonly #ctx: CommandContext;
  /** A command loop is active (possibly awaiting an async handler). */
  #running = false;
  /** Reading paused because replies are not drained. */
  #outputBlocked = false;
  /** Reading paused because input piled up behind an in-flight command. */
  #inputBlocked = false;
  /** No more commands will be read or run (protocol error, QUIT, kill, shutdown, peer ended). */
  #stopped = false;
  #readEnded = false;
  #closed = false;
  #limitsAuthenticated: boolean;
  #lastInteractionMs: number;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(host: ConnectionHost, socket: Socket, state: ClientState) {
    this.#host = host;
    this.socket = socket;
    this.state = state;
    this.#ctx = { client: state, server: host.context };
    this.#limitsAuthenticated = state.authenticated;
    this.#parser = new RequestParser(host.parserLimits(state.authenticated));
    this.#out = new ReplyBuffer(state.protocol);
    this.#lastInteractionMs = host.context.now();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('end', () => {
      this.#readEnded = true;
      if (!this.#running) this.#run();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#host.log('debug', `client id=${state.id} addr=${state.addr} socket error: ${err.code ?? err.message}`);
    });
    socket.on('close', () => this.#onClose());
  }

  queryBufferBytes(): number {
    return this.#parser.bufferedBytes;
  }

  outputBufferBytes(): number {
    return this.#out.byteLength + this.socket.writableLength;
  }

  lastInteractionMs(): number {
    return this.#lastInteractionMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while a command is running or input waits to be run. */
  get busy(): boolean {
    return this.#running;
  }

  /** Re-reads the parser limits (after AUTH, or CONFIG SET proto-max-bulk-len). */
  refreshLimits(): void {
    this.#limitsAuthenticated = this.state.authenticated;
    this.#parser.setLimits(this.#host.parserLimits(this.state.authenticated));
  }

  kill(): void {
    if (this.#running) {
      // Inside this client's own command (CLIENT KILL on itself) or awaiting one: the reply in
      // flight is still written, then the connection closes.
      this.state.closeAfterReply = true;
      return;
    }
    this.#destroy();
  }

  /** Writes `text` raw (the DENIED / max clients notices before any command) and closes. */
  rejectAndClose(message: string): void {
    this.#stopped = true;
    this.socket.end(`-${message}\r\n`);
  }

  /**
   * Graceful stop for shutdown: read nothing more, let the command in flight finish and its
   * replies drain, then close. Resolves when the socket is closed.
   */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    this.socket.pause();
    if (this.#running) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    this.#flush();
    if (!this.#closed) {
      await new Promise<void>((resolve) => {
        this.socket.once('close', () => resolve());
        this.socket.end();
      });
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#stopped) return;
    this.#host.stats.netInputBytes += chunk.length;
    this.#lastInteractionMs = this.#host.context.now();
    this.#parser.feed(chunk);
    const limit = this.#host.queryLimitBytes();
    if (this.#parser.bufferedBytes > limit) {
      this.#host.stats.queryLimitDisconnections++;
      this.#host.log('warn', `closing client id=${this.state.id} addr=${this.state.addr}: query buffer over client-query-buffer-limit (${limit} bytes)`);
      this.#destroy();
      return;
    }
    if (this.#running) {
      if (this.#parser.bufferedBytes > QUERY_HIGH_WATER_BYTES && !this.#inputBlocked) {
        this.#inputBlocked = true;
        this.socket.pause();
      }
      return;
    }
    this.#run();
  }

  #onDrain(): void {
    this.#lastInteractionMs = this.#host.context.now();
    if (!this.#outputBlocked) return;
    this.#outputBlocked = false;
    if (!this.#inputBlocked && !this.#stopped) this.socket.resume();
    if (!this.#running) this.#run();
  }

  /**
   * The command loop. Runs synchronously while handlers reply synchronously; on an async reply
   * it returns and re-enters from the promise, keeping #running set so nothing overtakes.
   */
  #run(): void {
    this.#running = true;
    let exhausted = false;
    for (;;) {
      if (this.#stopped || this.#outputBlocked || this.#closed) break;
      let args: Buffer[] | undefined;
      try {
        args = this.#parser.next();
      } catch (err) {
        if (err instanceof ProtocolError) {
          this.#protocolError(err);
          break;
        }
        throw err;
      }
      if (args === undefined) {
        exhausted = true;
        break;
      }
      if (args.length === 0) continue;
      const reply = this.#host.dispatcher.dispatch(this.#ctx, args);
      if (reply instanceof Promise) {
        reply.then(
          (r) => {
            this.#push(r);
            this.#run();
          },
          (err: unknown) => {
            // The dispatcher turns handler failures into replies; this is a bug, not input.
            this.#host.log('error', `client id=${this.state.id}: dispatcher rejected: ${String(err)}`);
            this.#push(error('ERR internal error'));
            this.#run();
          },
        );
        return;
      }
      this.#push(reply);
    }
    this.#flush();
    this.#running = false;
    if (this.#inputBlocked) {
      this.#inputBlocked = false;
      if (!this.#outputBlocked && !this.#stopped) this.socket.resume();
    }
    if (this.state.closeAfterReply && !this.#closed) {
      this.#stopped = true;
      this.socket.end();
    } else if (this.#readEnded && exhausted && !this.#stopped) {
      this.#finishAfterEnd();
    }
    const waiters = this.#idleWaiters.splice(0);
    for (const w of waiters) w();
  }

  #push(reply: Reply): void {
    if (this.#closed) return;
    if (this.#out.protocol !== this.state.protocol) this.#out.protocol = this.state.protocol;
    if (reply !== NO_REPLY) this.#out.push(reply);
    if (this.state.closeAfterReply) this.#stopped = true;
    if (this.#limitsAuthenticated !== this.state.authenticated) this.refreshLimits();
    if (this.#out.byteLength >= OUTPUT_FLUSH_BYTES) this.#flush();
  }

  #flush(): void {
    if (this.#closed || this.#out.byteLength === 0) return;
    const n = this.#out.byteLength;
    const data = this.#out.take();
    if (Array.isArray(data)) {
      this.socket.cork();
      for (const b of data) this.socket.write(b);
      this.socket.uncork();
    } else {
      this.socket.write(data);
    }
    this.#host.stats.netOutputBytes += n;
    this.#host.stats.outputWrites++;
    this.#lastInteractionMs = this.#host.context.now();
    const pending = this.socket.writableLength;
    const limit = this.#host.outputLimitBytes();
    if (limit > 0 && pending > limit) {
      this.#host.stats.outputLimitDisconnections++;
      this.#host.log('warn', `closing client id=${this.state.id} addr=${this.state.addr}: ${pending} bytes of replies over client-output-buffer-limit (${limit} bytes)`);
      this.#destroy();
      return;
    }
    if (pending > OUTPUT_HIGH_WATER_BYTES && !this.#outputBlocked) {
      this.#outputBlocked = true;
      this.socket.pause();
    }
  }

  #protocolError(err: ProtocolError): void {
    this.#host.stats.protocolErrors++;
    const message = err.message;
    this.#host.stats.countError(message);
    this.#host.log('debug', `client id=${this.state.id} addr=${this.state.addr}: ${message}`);
    this.#stopped = true;
    this.#flush();
    // The exact reply bytes: the text may carry a raw byte of the offending input.
    if (!this.#closed) this.socket.end(err.reply);
  }

  /** The peer half-closed: replies already owed have been written; close our side. */
  #finishAfterEnd(): void {
    this.#stopped = true;
    this.#flush();
    if (!this.#closed) this.socket.end();
  }

  #destroy(): void {
    this.#stopped = true;
    this.socket.destroy();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped = true;
    this.#host.onClose(this);
    // Shutdown may wait on a command that will never report back to a closed socket.
    if (!this.#running) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
