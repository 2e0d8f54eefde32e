/**
 * One client connection: bytes in -> RequestParser -> commands -> replies accumulated in a
 * ReplyBuffer and written once per batch (one write, or corked writev, per read chunk or per
 * round of completions, instead of one per reply). Replies always go out in request order.
 *
 * Pipelined key commands overlap: while earlier commands of this client are still running
 * (async storage reads and writes), a following key command starts at once unless it shares a
 * key with one in flight and either of them writes (Dispatcher.overlapPlan / plansCommute).
 * Everything else (no keys, admin, subcommands: PING, AUTH, CONFIG, FLUSHALL, SCAN, ...) is a
 * barrier: it starts only after everything before it finished, and nothing after it starts
 * before it finished. So each key sees this client's commands in order, exactly as if they ran
 * one after another; only commands on different keys may complete in another order (the store
 * promises atomicity and order per key, not across keys). At most PIPELINE_INFLIGHT_MAX
 * commands of one client run at once.
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
import type { CommandClock } from './command_clock.js';
import { NO_REPLY, type ClientHandle } from './services.js';
import { AsyncCommand, plansCommute, type Dispatcher, type OverlapPlan } from './dispatcher.js';
import { DeferredReply, type ReplyListener } from './deferred_reply.js';
import type { LogFn } from './logger.js';
import type { ServerStats } from './stats.js';
import type { ClientState, CommandContext, ServerContext } from './types.js';

/** Write the reply buffer out mid-batch once it holds this much. */
export const OUTPUT_FLUSH_BYTES = 64 * 1024;
/** Stop reading and running commands while this much output waits in the socket. */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** Stop reading while a command is in flight and this much input waits in the parser. */
export const QUERY_HIGH_WATER_BYTES = 1024 * 1024;
/**
 * After the server ends a connection (QUIT, protocol error, rejection) it keeps reading and
 * discarding for this long so the peer sees the last reply instead of a reset, then closes the
 * socket even if the peer never closes its side.
 */
export const LINGER_AFTER_END_MS = 2000;
/** Commands of one client running at once (pipelined key commands on distinct keys). */
export const PIPELINE_INFLIGHT_MAX = 128;

/** A command started and not yet answered, or answered but waiting for those before it. */
interface InFlight {
  readonly plan: OverlapPlan | undefined;
  /** Its reply once known (an async command's: set when it settled). */
  answer: Reply | undefined;
}

/**
 * The commands of this client that wait on one promise or DeferredReply, in request order: the
 * plain SETs of a pipelined batch all return their engine batch's reply (strings.ts), so a batch
 * of 16 costs one continuation (or one listener call) instead of 16.
 */
interface Waiting {
  readonly reply: Promise<Reply> | DeferredReply;
  readonly entries: AsyncCommand[];
}

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly dispatcher: Dispatcher;
  readonly context: ServerContext;
  /** The clock behind context.now, held while this connection runs commands (command_clock.ts). */
  readonly clock: CommandClock;
  readonly stats: ServerStats;
  readonly log: LogFn;
  /** Current proto-max-bulk-len / limits for authenticated clients. */
  parserLimits(authenticated: boolean): ParserLimits;
  outputLimitBytes(): number;
  queryLimitBytes(): number;
  onClose(conn: Connection): void;
}

export class Connection implements ClientHandle, ReplyListener {
  readonly state: ClientState;
  readonly socket: Socket;
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  readonly #out: ReplyBuffer;
  readonly #ctx: CommandContext;
  /** The command loop is executing (synchronously) right now. */
  #running = false;
  /** Commands started and not yet written out, in request order. */
  readonly #inflight: InFlight[] = [];
  /** The last promise commands were seen waiting on, while unsettled: the next one may join it. */
  #waiting: Waiting | undefined;
  /** A parsed command that could not start yet (it conflicts with one in flight). */
  #held: Buffer[] | undefined;
  /** A protocol error to answer once the commands before it are answered. */
  #protocolFailure: ProtocolError | undefined;
  #flushScheduled = false;
  /** Reading paused because replies are not drained. */
  #outputBlocked = false;
  /** Reading paused because input piled up behind commands in flight. */
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

  /** Flow-control state, for CLIENT LIST and tests. */
  flowState(): { inflight: number; held: boolean; outputBlocked: boolean; inputBlocked: boolean; stopped: boolean } {
    return { inflight: this.#inflight.length, held: this.#held !== undefined, outputBlocked: this.#outputBlocked, inputBlocked: this.#inputBlocked, stopped: this.#stopped };
  }

  lastInteractionMs(): number {
    return this.#lastInteractionMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while a command is running or waits to be answered. */
  get busy(): boolean {
    return this.#running || this.#inflight.length > 0;
  }

  /** Re-reads the parser limits (after AUTH, or CONFIG SET proto-max-bulk-len). */
  refreshLimits(): void {
    this.#limitsAuthenticated = this.state.authenticated;
    this.#parser.setLimits(this.#host.parserLimits(this.state.authenticated));
  }

  kill(): void {
    if (this.busy) {
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
    this.#endSocket(Buffer.from(`-${message}\r\n`));
  }

  /**
   * Graceful stop for shutdown: read nothing more, let the command in flight finish and its
   * replies drain, then close. Resolves when the socket is closed.
   */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    this.socket.pause();
    if (this.busy) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    this.#flush();
    if (!this.#closed) {
      await new Promise<void>((resolve) => {
        this.socket.once('close', () => resolve());
        this.#endSocket();
      });
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#stopped) return;
    // One clock reading for the chunk: the commands it completes and their replies' flush.
    const clock = this.#host.clock;
    const held = clock.hold();
    try {
      this.#feed(chunk);
    } finally {
      clock.release(held);
    }
  }

  #feed(chunk: Buffer): void {
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
    if (this.#running) return;
    const exhausted = this.#run();
    if (!exhausted && this.#parser.bufferedBytes > QUERY_HIGH_WATER_BYTES && !this.#inputBlocked && !this.#closed) {
      // Complete commands are waiting behind ones in flight: take no more input until they ran.
      // (Never while the parser waits for the rest of a command: only more input completes it.)
      this.#inputBlocked = true;
      this.socket.pause();
    }
  }

  #onDrain(): void {
    this.#lastInteractionMs = this.#host.context.now();
    if (!this.#outputBlocked) return;
    this.#outputBlocked = false;
    if (!this.#inputBlocked && !this.#stopped) this.socket.resume();
    if (!this.#running) this.#run();
  }

  /**
   * The command loop: starts every command that may start now, queues async replies in
   * request order, and writes what is ready. Re-entered when input arrives, when a command
   * completes and when the socket drains. Returns true when it stopped because the parser
   * holds no complete command.
   */
  #run(): boolean {
    if (this.#running) return false;
    const clock = this.#host.clock;
    const held = clock.hold();
    try {
      return this.#runHeld();
    } finally {
      clock.release(held);
    }
  }

  /** #run's body, with the command clock held (every command of this run reads one time). */
  #runHeld(): boolean {
    this.#running = true;
    let exhausted = false;
    /** A command of this run was started: the next one's timing chains on it (Dispatcher.start). */
    let chained = false;
    for (;;) {
      if (this.#stopped || this.#outputBlocked || this.#closed || this.state.closeAfterReply) break;
      if (this.#inflight.length >= PIPELINE_INFLIGHT_MAX) break;
      if (this.#protocolFailure !== undefined) {
        if (this.#inflight.length === 0) this.#protocolError(this.#protocolFailure);
        break;
      }
      const dispatcher = this.#host.dispatcher;
      let args = this.#held;
      let plan: OverlapPlan | undefined;
      let reply: Reply | AsyncCommand;
      if (args === undefined) {
        // The usual command (a whole multibulk in the buffer) is first looked at as offsets
        // into the received bytes: a command with a raw handler (SET, GET) runs on those, with
        // no argument Buffers made (Dispatcher.startRaw).
        const raw = this.#parser.nextRaw();
        if (raw !== undefined) {
          const spec = dispatcher.rawSpec(this.#ctx, raw);
          if (spec !== undefined) {
            if (this.#inflight.length > 0) {
              plan = dispatcher.overlapPlanRaw(spec, raw);
              if (!this.#mayStart(plan)) {
                this.#held = raw.args();
                break;
              }
            }
            reply = dispatcher.startRaw(this.#ctx, spec, raw, chained);
            chained = true;
            if (reply instanceof AsyncCommand && this.#inflight.length === 0) plan = dispatcher.overlapPlanRaw(spec, raw);
            this.#started(reply, plan);
            continue;
          }
          args = raw.args();
        } else {
          try {
            args = this.#parser.next();
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            this.#protocolFailure = err;
            continue;
          }
          if (args === undefined) {
            exhausted = true;
            break;
          }
          if (args.length === 0) continue;
        }
      }
      if (this.#inflight.length > 0) {
        plan = dispatcher.overlapPlan(args);
        if (!this.#mayStart(plan)) {
          this.#held = args;
          break;
        }
      }
      this.#held = undefined;
      reply = dispatcher.start(this.#ctx, args, chained);
      chained = true;
      // With nothing in flight the plan was not needed to start; it is for those that follow.
      if (reply instanceof AsyncCommand && this.#inflight.length === 0) plan = dispatcher.overlapPlan(args);
      this.#started(reply, plan);
    }
    this.#running = false;
    if (this.#inflight.length === 0) this.#flush();
    else this.#scheduleFlush();
    if (this.#inputBlocked && exhausted) {
      this.#inputBlocked = false;
      if (!this.#outputBlocked && !this.#stopped) this.socket.resume();
    }
    if (this.#inflight.length > 0) return exhausted;
    if (this.state.closeAfterReply && !this.#closed) {
      this.#stopped = true;
      this.#flush();
      this.#endSocket();
    } else if (this.#readEnded && exhausted && !this.#stopped) {
      this.#finishAfterEnd();
    }
    if (this.#idleWaiters.length > 0) for (const w of this.#idleWaiters.splice(0)) w();
    return exhausted;
  }

  /** Queues what a started command answered: written now, or in request order once it is its turn. */
  #started(reply: Reply | AsyncCommand, plan: OverlapPlan | undefined): void {
    if (reply instanceof AsyncCommand) {
      // The AsyncCommand is its own InFlight entry.
      reply.plan = plan;
      this.#inflight.push(reply);
      const waiting = this.#waiting;
      if (waiting !== undefined && waiting.reply === reply.reply) waiting.entries.push(reply);
      else this.#wait(reply.reply, reply);
    } else if (this.#inflight.length > 0) {
      this.#inflight.push({ plan, answer: reply });
    } else {
      this.#push(reply);
    }
  }

  /** A command may start beside those in flight when it and all of them are commuting key commands. */
  #mayStart(plan: OverlapPlan | undefined): boolean {
    if (plan === undefined) return false;
    for (const f of this.#inflight) {
      if (f.answer !== undefined) continue; // finished, only waiting to be written in order
      if (f.plan === undefined || !plansCommute(f.plan, plan)) return false;
    }
    return true;
  }

  /**
   * One continuation on `reply` for `first` and every command that joins it while it is
   * unsettled; for a DeferredReply, this connection listens with the Waiting as the token (no
   * closure, no microtask turn: replySettled).
   */
  #wait(reply: Promise<Reply> | DeferredReply, first: AsyncCommand): void {
    const waiting: Waiting = { reply, entries: [first] };
    this.#waiting = waiting;
    if (reply instanceof DeferredReply) {
      reply.listen(this, waiting);
      return;
    }
    reply.then(
      (r) => this.#settled(waiting, r, undefined),
      (err: unknown) => this.#settled(waiting, undefined, err ?? new Error('rejected')),
    );
  }

  /** ReplyListener: a DeferredReply this connection waits on (#wait) settled. */
  replySettled(token: unknown, reply: Reply | undefined, err: unknown): void {
    this.#settled(token as Waiting, reply, err);
  }

  /** The promise of `waiting` settled: each of its commands is counted and answered. */
  #settled(waiting: Waiting, reply: Reply | undefined, err: unknown): void {
    if (this.#waiting === waiting) this.#waiting = undefined;
    const dispatcher = this.#host.dispatcher;
    for (const cmd of waiting.entries) {
      try {
        cmd.answer = dispatcher.finish(cmd, err === undefined ? (reply as Reply) : dispatcher.failure(cmd, err));
      } catch (e) {
        // finish only counts; a throw is a bug, answered without taking the connection down.
        this.#host.log('error', `client id=${this.state.id}: finishing ${cmd.spec.name} failed: ${String(e)}`);
        cmd.answer = error('ERR internal error');
      }
    }
    this.#complete();
  }

  #complete(): void {
    // Answer every finished command at the head, in request order.
    while (this.#inflight.length > 0) {
      const head = this.#inflight[0] as InFlight;
      if (head.answer === undefined) break;
      this.#inflight.shift();
      this.#push(head.answer);
    }
    this.#run();
  }

  /** Several completions usually land in one turn of the event loop: write them together. */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#out.byteLength === 0) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushImmediate);
  }

  /** #scheduleFlush's callback, one function per connection (no closure per flush). */
  readonly #flushImmediate = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

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
    if (!this.#closed) this.#endSocket(err.reply);
  }

  /** The peer half-closed: replies already owed have been written; close our side. */
  #finishAfterEnd(): void {
    this.#stopped = true;
    this.#flush();
    if (!this.#closed) this.#endSocket();
  }

  /** Ends our side after `data`, then closes the socket at the latest LINGER_AFTER_END_MS later. */
  #endSocket(data?: Buffer): void {
    if (data !== undefined) this.socket.end(data);
    else this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), LINGER_AFTER_END_MS);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
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
    if (!this.busy) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
