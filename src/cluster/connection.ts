/**
 * One bus connection: a TCP socket that has passed the handshake, carrying many requests at once.
 *
 *   dial()/accept()  ── handshake (frames <= MAX_HANDSHAKE_FRAME_BYTES, handshakeTimeoutMs) ──▶ ready
 *   ready: request(type, payload, timeoutMs) ─▶ frame(type, id≠0) ... RESPONSE/ERROR(id) ─▶ settle
 *          send(type, payload)               ─▶ frame(type, id=0)    (one-way, no answer)
 *          incoming frame(type, id) ─▶ handlers(type) ─▶ RESPONSE/ERROR(id) unless id = 0
 *   closed: every pending request rejects with ERR_BUS_CLOSED; nothing is retried here (bus.ts
 *           decides about reconnecting).
 *
 * Contract:
 * - Responses are matched by request id, so they may come in any order; a response whose request
 *   already timed out is dropped and counted (stats.lateResponses).
 * - Any framing error, an oversize frame, a handshake frame after the handshake, or an unknown
 *   frame type closes the connection: framing cannot be trusted after a bad frame.
 * - Backpressure: past maxInflightIncoming peer requests being handled the socket stops being
 *   read (the frames already in the current read still run, so the bound is that plus one read); our requests are refused with ERR_BUS_OVERLOADED past maxPendingRequests or
 *   when more than maxOutboundBufferBytes wait in the socket's write buffer.
 * - A payload that would make a frame over maxFrameBytes is refused with ERR_FRAME_TOO_LARGE
 *   before anything is written (a response that big is answered as an ERROR of that code).
 * - Handler errors are answered as ERROR frames with the error's `code` (or 'ERR') and message;
 *   they never close the connection.
 * - Outbound coalescing (why: one socket write per frame cost ~30% of a coordinator's CPU): frames
 *   are queued in order and flushed once per event-loop turn (setImmediate), as ONE socket write
 *   of a contiguous batch; a payload over MAX_COPIED_PAYLOAD_BYTES goes as its own chunk (no copy)
 *   in the same corked flush. Frame order on the wire is the order of request()/send()/answers.
 *   While the socket's write() has returned false, nothing more is handed to it until 'drain'
 *   (frames keep queueing; the overload check counts queued + unsent bytes together).
 */
import assert from 'node:assert';
import * as net from 'node:net';
import { ClusterError, RemoteError } from './errors.js';
import {
  encodeFrame,
  FIRST_APP_FRAME_TYPE,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  MAX_REQUEST_ID,
  MIN_FRAME_LENGTH,
  ONE_WAY_REQUEST_ID,
  writeFrameHeader,
  type Frame,
} from './frame.js';
import { ClientHandshake, ServerHandshake } from './handshake.js';
import { MAX_ERROR_TEXT_BYTES, MAX_HANDSHAKE_FRAME_BYTES } from './limits.js';
import { PendingTable } from './pending_table.js';

/** Payloads up to this size are copied into the outbound batch; bigger ones are written as-is. */
export const MAX_COPIED_PAYLOAD_BYTES = 16 * 1024;
/** Size of a fresh outbound batch buffer; frames are appended until it is full (then a new one). */
export const OUTBOUND_BATCH_BYTES = 64 * 1024;

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;

/** Who sent a message: the authenticated node id and the socket's remote address. */
export interface PeerIdentity {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * Handles one application message. For a request the returned bytes are the response; for a
 * one-way message the result is ignored. Throwing answers an ERROR frame carrying `code`.
 */
export type BusHandler = (payload: Buffer, from: PeerIdentity) => Buffer | Promise<Buffer>;

/** Counters shared by every connection of a bus (exported to INFO/metrics by the caller). */
export interface BusStats {
  framesIn: number;
  framesOut: number;
  oversizeFrames: number;
  malformedFrames: number;
  handshakeFailures: number;
  requestTimeouts: number;
  lateResponses: number;
  handlerErrors: number;
  overloadRejections: number;
  /** Outbound links taken out of backoff because their node connected to us (bus.ts #peerAlive). */
  backoffResets: number;
}

export function newBusStats(): BusStats {
  return {
    framesIn: 0,
    framesOut: 0,
    oversizeFrames: 0,
    malformedFrames: 0,
    handshakeFailures: 0,
    requestTimeouts: 0,
    lateResponses: 0,
    handlerErrors: 0,
    overloadRejections: 0,
    backoffResets: 0,
  };
}

export interface ConnectionOptions {
  readonly selfId: string;
  readonly secret: Buffer;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingRequests: number;
  readonly maxInflightIncoming: number;
  readonly maxOutboundBufferBytes: number;
  readonly handlers: ReadonlyMap<number, BusHandler>;
  readonly stats: BusStats;
  readonly log: LogFn;
  /** Frame allocation hook (tests prove nothing is allocated for an oversize frame). */
  readonly allocate?: (bytes: number) => Buffer;
}

/**
 * A request awaiting its response. There is no timer per request: one timer per connection is
 * armed for the earliest deadline and, when it fires, rejects every expired request and re-arms
 * for the next (a Timeout object per request and per-duration timer lists were a visible share
 * of the coordinator's allocations: every replicated write sends N-1 requests).
 */
interface Pending {
  /** Its request id (the key of the pending table). */
  readonly id: number;
  /** request(): its promise's functions (notify is null). */
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  /** requestNotify(): the caller's callback (resolve and reject are IGNORE). */
  notify: BusAnswer | null;
  /** requestListenWrite(): the caller's listener and its token (resolve and reject are IGNORE, notify null). */
  listener: BusAnswerListener<unknown> | null;
  token: unknown;
  /** performance.now() after which the request times out. */
  deadlineMs: number;
  type: number;
  timeoutMs: number;
}

/**
 * A request's answer in callback form (requestNotify): the response payload, or the error
 * (ClusterError / RemoteError) with payload undefined. Called once, never synchronously from
 * requestNotify itself.
 */
export type BusAnswer = (payload: Buffer | undefined, err?: Error) => void;

/**
 * A request's answer told to an object (requestListenWrite) instead of a callback: `busAnswered`
 * gets the token the request was made with, the response payload or the error (as BusAnswer),
 * and the id of the node the request went to. One listener serves every request of its kind, so
 * a request makes no closure (the replica read of every GET of a cluster: the fsm is the token).
 * Called once, never synchronously from the request call itself.
 */
export interface BusAnswerListener<T> {
  busAnswered(token: T, payload: Buffer | undefined, err: Error | undefined, peerId: string): void;
}

/**
 * Writes a request's payload of a size known beforehand at `at` of `out` (requestNotifyWrite):
 * the payload is encoded into the outbound batch itself, with no buffer of its own and no copy.
 * `arg` is what to encode (a function and an argument, not a closure per request).
 */
export type PayloadWriter<A> = (out: Buffer, at: number, arg: A) => void;

const IGNORE = (): void => undefined;

/**
 * Settles `p` (a request to node `peerId`) with a response. A callback that throws is a bug of its
 * owner: logged, never into the frame loop.
 */
function answer(p: Pending, payload: Buffer, log: LogFn, peerId: string): void {
  if (p.notify === null && p.listener === null) {
    p.resolve(payload);
    return;
  }
  try {
    if (p.listener !== null) p.listener.busAnswered(p.token, payload, undefined, peerId);
    else p.notify!(payload, undefined);
  } catch (bug) {
    log('error', `cluster bus: a request's answer callback threw: ${String(bug)}`);
  }
}

/** Settles `p` with an error (see answer). */
function fail(p: Pending, err: Error, log: LogFn, peerId: string): void {
  if (p.notify === null && p.listener === null) {
    p.reject(err);
    return;
  }
  try {
    if (p.listener !== null) p.listener.busAnswered(p.token, undefined, err, peerId);
    else p.notify!(undefined, err);
  } catch (bug) {
    log('error', `cluster bus: a request's answer callback threw: ${String(bug)}`);
  }
}

export class BusConnection {
  readonly peer: PeerIdentity;
  readonly direction: 'inbound' | 'outbound';
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  readonly #opts: ConnectionOptions;
  /** Requests awaiting their response (pending_table.ts: why not a Map). */
  readonly #pending = new PendingTable<Pending>();
  /** The request-deadline timer and the time it fires at (Infinity: not armed). */
  #deadlineTimer: NodeJS.Timeout | null = null;
  #deadlineTimerAtMs = Number.POSITIVE_INFINITY;
  #nextId = 1;
  #inflightIncoming = 0;
  #readPausedForInflight = false;
  #closed = false;
  #closeListeners: Array<(reason: Error) => void> = [];
  /**
   * Outbound queue. Bytes [#batchStart, #batchUsed) of #batch are frames not yet sealed into
   * #out; #out holds sealed chunks in wire order. Sealed bytes of #batch are never written again
   * (later frames append after them), so a sealed view stays valid after it is handed to the socket.
   */
  #batch: Buffer = Buffer.alloc(0);
  #batchStart = 0;
  #batchUsed = 0;
  #out: Buffer[] = [];
  /** Bytes queued here and not yet handed to the socket (sealed + unsealed). */
  #queuedBytes = 0;
  #flushImmediate: NodeJS.Immediate | null = null;
  /** socket.write() returned false; the next flush waits for 'drain'. */
  #awaitingDrain = false;

  private constructor(socket: net.Socket, decoder: FrameDecoder, peer: PeerIdentity, direction: 'inbound' | 'outbound', opts: ConnectionOptions) {
    this.#socket = socket;
    this.#decoder = decoder;
    this.peer = peer;
    this.direction = direction;
    this.#opts = opts;
    decoder.setMaxFrameBytes(opts.maxFrameBytes);
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.close(new ClusterError('ERR_BUS_CLOSED', `connection to ${peer.id}: ${err.message}`)));
    socket.on('close', () => this.close(new ClusterError('ERR_BUS_CLOSED', `connection to ${peer.id} closed`)));
  }

  /** Connects to host:port and runs the dialer's handshake. Rejects with ClusterError. */
  static dial(host: string, port: number, connectTimeoutMs: number, opts: ConnectionOptions): Promise<BusConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const hs = new ClientHandshake({ selfId: opts.selfId, secret: opts.secret });
      const decoder = new FrameDecoder({ maxFrameBytes: MAX_HANDSHAKE_FRAME_BYTES, allocate: opts.allocate });
      let connected = false;
      let conn: BusConnection | null = null;
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        if (err) {
          socket.destroy();
          if (err instanceof ClusterError && err.code === 'ERR_HANDSHAKE') opts.stats.handshakeFailures++;
          reject(err);
        } else resolve(conn!);
      };
      const timer = setTimeout(
        () => finish(new ClusterError(connected ? 'ERR_HANDSHAKE' : 'ERR_PEER_UNREACHABLE', `${host}:${port}: ${connected ? 'handshake' : 'connect'} timed out`)),
        connectTimeoutMs + opts.handshakeTimeoutMs,
      );
      const onError = (err: Error): void => finish(new ClusterError('ERR_PEER_UNREACHABLE', `${host}:${port}: ${err.message}`));
      const onClose = (): void => finish(new ClusterError(connected ? 'ERR_HANDSHAKE' : 'ERR_PEER_UNREACHABLE', `${host}:${port}: closed during handshake`));
      const onData = (chunk: Buffer): void => {
        try {
          decoder.push(chunk, (f) => {
            if (conn) {
              // Frames that arrived in the same chunk as WELCOME belong to the new connection.
              conn.#deliverEarly(f);
            } else if (f.type === FrameType.CHALLENGE && f.requestId === 0) {
              socket.write(encodeFrame(FrameType.AUTH, 0, hs.onChallenge(f.payload)));
            } else if (f.type === FrameType.WELCOME && f.requestId === 0) {
              const peerId = hs.onWelcome(f.payload);
              const peer = { id: peerId, remoteAddress: socket.remoteAddress ?? host, remotePort: socket.remotePort ?? port };
              // The connection takes over the same decoder (and any partial frame it holds).
              conn = new BusConnection(socket, decoder, peer, 'outbound', opts);
            } else {
              throw new ClusterError('ERR_HANDSHAKE', `unexpected frame type ${f.type} during handshake`);
            }
          });
        } catch (e) {
          const err = e instanceof ClusterError ? e : new ClusterError('ERR_HANDSHAKE', String(e));
          if (conn) conn.close(err);
          else finish(err);
        }
        if (conn) finish(null);
      };
      socket.once('connect', () => {
        connected = true;
        socket.setKeepAlive(true, 10_000);
        socket.write(encodeFrame(FrameType.HELLO, 0, hs.hello()));
      });
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
    });
  }

  /** Runs the listener's handshake on an accepted socket. Rejects (and destroys the socket) on failure. */
  static accept(socket: net.Socket, opts: ConnectionOptions): Promise<BusConnection> {
    return new Promise((resolve, reject) => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
      const hs = new ServerHandshake({ selfId: opts.selfId, secret: opts.secret });
      const decoder = new FrameDecoder({ maxFrameBytes: MAX_HANDSHAKE_FRAME_BYTES, allocate: opts.allocate });
      let settled = false;
      const finish = (err: Error | null, conn?: BusConnection): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.removeListener('close', onError);
        if (err) {
          socket.destroy();
          if (err instanceof ClusterError) {
            if (err.code === 'ERR_FRAME_TOO_LARGE') opts.stats.oversizeFrames++;
            else if (err.code === 'ERR_FRAME_MALFORMED') opts.stats.malformedFrames++;
            else opts.stats.handshakeFailures++;
          }
          reject(err);
        } else resolve(conn!);
      };
      const timer = setTimeout(() => finish(new ClusterError('ERR_HANDSHAKE', 'handshake timed out')), opts.handshakeTimeoutMs);
      const onError = (): void => finish(new ClusterError('ERR_HANDSHAKE', 'socket closed during handshake'));
      let pendingWelcome: { peerId: string; welcome: Buffer } | null = null;
      const onData = (chunk: Buffer): void => {
        try {
          decoder.push(chunk, (f) => {
            if (settled || pendingWelcome) throw new ClusterError('ERR_HANDSHAKE', 'frame before WELCOME');
            if (f.type === FrameType.HELLO && f.requestId === 0) {
              socket.write(encodeFrame(FrameType.CHALLENGE, 0, hs.onHello(f.payload)));
            } else if (f.type === FrameType.AUTH && f.requestId === 0) {
              pendingWelcome = hs.onAuth(f.payload);
            } else {
              throw new ClusterError('ERR_HANDSHAKE', `unexpected frame type ${f.type} during handshake`);
            }
          });
          if (pendingWelcome) {
            // The dialer sends nothing after AUTH until it has our WELCOME: nothing is buffered.
            if (decoder.bufferedBytes !== 0) throw new ClusterError('ERR_HANDSHAKE', 'bytes after AUTH');
            const { peerId, welcome } = pendingWelcome;
            socket.write(encodeFrame(FrameType.WELCOME, 0, welcome));
            const peer = { id: peerId, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 };
            const conn = new BusConnection(socket, new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes, allocate: opts.allocate }), peer, 'inbound', opts);
            finish(null, conn);
          }
        } catch (e) {
          finish(e instanceof ClusterError ? e : new ClusterError('ERR_HANDSHAKE', String(e)));
        }
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onError);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get pendingRequests(): number {
    return this.#pending.size;
  }

  onClose(listener: (reason: Error) => void): void {
    if (this.#closed) queueMicrotask(() => listener(new ClusterError('ERR_BUS_CLOSED', 'connection closed')));
    else this.#closeListeners.push(listener);
  }

  /** Sends a request; resolves with the response payload, rejects with ClusterError/RemoteError. */
  request(type: number, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    if (!(type >= FIRST_APP_FRAME_TYPE && type <= 0xff)) assert.fail(`application frame type must be in [0x10, 0xff], got ${type}`);
    assert(timeoutMs > 0, 'timeoutMs must be positive');
    if (this.#closed) return Promise.reject(new ClusterError('ERR_BUS_CLOSED', `connection to ${this.peer.id} closed`));
    const overload = this.#overloaded();
    if (overload) {
      this.#opts.stats.overloadRejections++;
      return Promise.reject(new ClusterError('ERR_BUS_OVERLOADED', `${this.peer.id}: ${overload}`));
    }
    if (!this.#fits(payload)) return Promise.reject(this.#tooLarge(payload));
    const id = this.#allocateId();
    const deadlineMs = performance.now() + timeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.add({ id, resolve, reject, notify: null, listener: null, token: undefined, deadlineMs, type, timeoutMs });
      if (deadlineMs < this.#deadlineTimerAtMs) this.#armDeadlineTimer(deadlineMs);
      this.#write(type, id, payload);
    });
  }

  /**
   * request() in callback form: `done` gets the payload or the error request() would reject
   * with, once, never synchronously (an error found before sending is delivered on a microtask).
   * No promise and no closure per request: the replica read of every GET of a cluster.
   */
  requestNotify(type: number, payload: Buffer, timeoutMs: number, done: BusAnswer): void {
    const id = this.#startNotify(type, payload.length, timeoutMs, done, null, undefined);
    if (id >= 0) this.#write(type, id, payload);
  }

  /**
   * The checks and the pending entry of a notify-form request of payloadBytes, answered to `done`
   * or else to `listener` with `token`: its request id, or -1 when it cannot be sent (the error is
   * then delivered on a microtask).
   */
  #startNotify(type: number, payloadBytes: number, timeoutMs: number, done: BusAnswer | null, listener: BusAnswerListener<unknown> | null, token: unknown): number {
    if (!(type >= FIRST_APP_FRAME_TYPE && type <= 0xff)) assert.fail(`application frame type must be in [0x10, 0xff], got ${type}`);
    if (!(timeoutMs > 0)) assert.fail('timeoutMs must be positive');
    let err: Error | undefined;
    if (this.#closed) err = new ClusterError('ERR_BUS_CLOSED', `connection to ${this.peer.id} closed`);
    else {
      const overload = this.#overloaded();
      if (overload) {
        this.#opts.stats.overloadRejections++;
        err = new ClusterError('ERR_BUS_OVERLOADED', `${this.peer.id}: ${overload}`);
      } else if (!this.#fitsBytes(payloadBytes)) err = this.#tooLargeBytes(payloadBytes);
    }
    if (err !== undefined) {
      const e = err;
      const peerId = this.peer.id;
      queueMicrotask(() => (listener !== null ? listener.busAnswered(token, undefined, e, peerId) : done!(undefined, e)));
      return -1;
    }
    const id = this.#allocateId();
    const deadlineMs = performance.now() + timeoutMs;
    this.#pending.add({ id, resolve: IGNORE, reject: IGNORE, notify: done, listener, token, deadlineMs, type, timeoutMs });
    if (deadlineMs < this.#deadlineTimerAtMs) this.#armDeadlineTimer(deadlineMs);
    return id;
  }

  /**
   * requestNotify() of the payload `write(out, at, arg)` writes, `payloadBytes` long: the same
   * checks, answers and errors, with the payload encoded where the frame is queued (a payload over
   * MAX_COPIED_PAYLOAD_BYTES gets a buffer of its own, as a big one always does). The replica read
   * of every GET of a cluster: one payload buffer and one copy fewer per read.
   */
  requestNotifyWrite<A>(type: number, payloadBytes: number, write: PayloadWriter<A>, arg: A, timeoutMs: number, done: BusAnswer): void {
    if (!(Number.isInteger(payloadBytes) && payloadBytes >= 0)) assert.fail(`bad payload size ${payloadBytes}`);
    const id = this.#startNotify(type, payloadBytes, timeoutMs, done, null, undefined);
    if (id >= 0) this.#writeWith(type, id, payloadBytes, write, arg);
  }

  /**
   * requestNotifyWrite() answered to `listener.busAnswered(token, ...)` (BusAnswerListener) instead
   * of a callback: the same checks, answers and errors, and no closure per request.
   */
  requestListenWrite<A, T>(type: number, payloadBytes: number, write: PayloadWriter<A>, arg: A, timeoutMs: number, listener: BusAnswerListener<T>, token: T): void {
    if (!(Number.isInteger(payloadBytes) && payloadBytes >= 0)) assert.fail(`bad payload size ${payloadBytes}`);
    const id = this.#startNotify(type, payloadBytes, timeoutMs, null, listener as BusAnswerListener<unknown>, token);
    if (id >= 0) this.#writeWith(type, id, payloadBytes, write, arg);
  }

  /** Queues the frame of request `id` whose payload `write` encodes (requestNotifyWrite, requestListenWrite). */
  #writeWith<A>(type: number, id: number, payloadBytes: number, write: PayloadWriter<A>, arg: A): void {
    if (payloadBytes > MAX_COPIED_PAYLOAD_BYTES) {
      const payload = Buffer.allocUnsafe(payloadBytes);
      write(payload, 0, arg);
      this.#write(type, id, payload);
      return;
    }
    this.#opts.stats.framesOut++;
    this.#reserve(FRAME_HEADER_BYTES + payloadBytes);
    writeFrameHeader(this.#batch, this.#batchUsed, type, id, payloadBytes);
    write(this.#batch, this.#batchUsed + FRAME_HEADER_BYTES, arg);
    this.#batchUsed += FRAME_HEADER_BYTES + payloadBytes;
    this.#queuedBytes += FRAME_HEADER_BYTES + payloadBytes;
    if (this.#flushImmediate === null && !this.#awaitingDrain) this.#flushImmediate = setImmediate(this.#flush);
  }

  #armDeadlineTimer(atMs: number): void {
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimerAtMs = atMs;
    this.#deadlineTimer = setTimeout(this.#expireRequests, Math.max(0, atMs - performance.now()));
  }

  #disarmDeadlineTimer(): void {
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = null;
    this.#deadlineTimerAtMs = Number.POSITIVE_INFINITY;
  }

  /** Rejects every request past its deadline, then re-arms for the earliest one left. */
  readonly #expireRequests = (): void => {
    this.#deadlineTimer = null;
    this.#deadlineTimerAtMs = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const p of this.#pending.entries()) {
      if (p.deadlineMs <= now) {
        this.#pending.take(p.id);
        this.#opts.stats.requestTimeouts++;
        fail(p, new ClusterError('ERR_BUS_TIMEOUT', `${this.peer.id}: no response to type 0x${p.type.toString(16)} in ${p.timeoutMs} ms`), this.#opts.log, this.peer.id);
      } else if (p.deadlineMs < next) next = p.deadlineMs;
    }
    if (next !== Number.POSITIVE_INFINITY && !this.#closed) this.#armDeadlineTimer(next);
  };

  /** Sends a one-way message (no response). Returns false if the connection is closed or overloaded. */
  send(type: number, payload: Buffer): boolean {
    if (!(type >= FIRST_APP_FRAME_TYPE && type <= 0xff)) assert.fail(`application frame type must be in [0x10, 0xff], got ${type}`);
    if (this.#closed) return false;
    if (this.#overloaded()) {
      this.#opts.stats.overloadRejections++;
      return false;
    }
    if (!this.#fits(payload)) throw this.#tooLarge(payload);
    this.#write(type, ONE_WAY_REQUEST_ID, payload);
    return true;
  }

  /** A frame we send must fit the limit we apply to frames we receive (peers share the config). */
  #fits(payload: Buffer): boolean {
    return this.#fitsBytes(payload.length);
  }

  #fitsBytes(payloadBytes: number): boolean {
    return MIN_FRAME_LENGTH + payloadBytes <= this.#opts.maxFrameBytes;
  }

  #tooLarge(payload: Buffer): ClusterError {
    return this.#tooLargeBytes(payload.length);
  }

  #tooLargeBytes(payloadBytes: number): ClusterError {
    return new ClusterError('ERR_FRAME_TOO_LARGE', `a ${payloadBytes}-byte payload does not fit in a frame of at most ${this.#opts.maxFrameBytes} bytes`);
  }

  /** Closes the connection; pending requests reject with `reason`. Idempotent. */
  close(reason: Error = new ClusterError('ERR_BUS_CLOSED', 'connection closed')): void {
    if (this.#closed) return;
    // Frames queued before close() are handed to the socket first, as the per-frame writes of
    // old did (a send() followed by close() in the same tick still leaves); destroy() may then
    // discard what the socket could not pass to the kernel, as before.
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#awaitingDrain = false;
    if (!this.#socket.destroyed) this.#flush();
    this.#closed = true;
    this.#out = [];
    this.#batch = Buffer.alloc(0);
    this.#batchStart = this.#batchUsed = this.#queuedBytes = 0;
    this.#decoder.stop();
    this.#socket.destroy();
    this.#disarmDeadlineTimer();
    const pending = this.#pending.entries();
    this.#pending.clear();
    for (const p of pending) fail(p, reason, this.#opts.log, this.peer.id);
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const l of listeners) l(reason);
  }

  #overloaded(): string | null {
    if (this.#pending.size >= this.#opts.maxPendingRequests) return `${this.#pending.size} requests pending`;
    const unsent = this.#socket.writableLength + this.#queuedBytes;
    if (unsent > this.#opts.maxOutboundBufferBytes) return `${unsent} bytes unsent`;
    return null;
  }

  #allocateId(): number {
    // Bounded: fewer than maxPendingRequests (< 2^32 - 1) ids are in use.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_REQUEST_ID ? 1 : id + 1;
      if (!this.#pending.has(id)) return id;
    }
  }

  /** Queues one frame (caller checked #fits); it goes out with the next flush, in order. */
  #write(type: number, requestId: number, payload: Buffer): void {
    if (this.#closed) return;
    this.#opts.stats.framesOut++;
    const copied = payload.length <= MAX_COPIED_PAYLOAD_BYTES ? payload.length : 0;
    this.#reserve(FRAME_HEADER_BYTES + copied);
    writeFrameHeader(this.#batch, this.#batchUsed, type, requestId, payload.length);
    this.#batchUsed += FRAME_HEADER_BYTES;
    if (copied > 0) {
      payload.copy(this.#batch, this.#batchUsed);
      this.#batchUsed += copied;
    } else if (payload.length > 0) {
      // Big payload: sent as its own chunk, right after its header.
      this.#seal();
      this.#out.push(payload);
    }
    this.#queuedBytes += FRAME_HEADER_BYTES + payload.length;
    if (this.#flushImmediate === null && !this.#awaitingDrain) this.#flushImmediate = setImmediate(this.#flush);
  }

  /** Makes room for `bytes` contiguous bytes at #batchUsed (bytes <= OUTBOUND_BATCH_BYTES). */
  #reserve(bytes: number): void {
    if (this.#batch.length - this.#batchUsed >= bytes) return;
    this.#seal();
    this.#batch = Buffer.allocUnsafe(OUTBOUND_BATCH_BYTES);
    this.#batchStart = this.#batchUsed = 0;
  }

  /** Moves the unsealed bytes of #batch to #out. */
  #seal(): void {
    if (this.#batchUsed > this.#batchStart) {
      this.#out.push(this.#batch.subarray(this.#batchStart, this.#batchUsed));
      this.#batchStart = this.#batchUsed;
    }
  }

  /** Hands every queued frame to the socket: one write for the usual all-small-frames case. */
  readonly #flush = (): void => {
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = null;
    if (this.#closed || this.#awaitingDrain) return;
    this.#seal();
    const out = this.#out;
    if (out.length === 0) return;
    this.#out = [];
    this.#queuedBytes = 0;
    let ok = true;
    if (out.length === 1) ok = this.#socket.write(out[0]!);
    else {
      // Corked: the chunks leave in one writev.
      this.#socket.cork();
      for (const chunk of out) ok = this.#socket.write(chunk);
      this.#socket.uncork();
    }
    if (!ok) {
      this.#awaitingDrain = true;
      this.#socket.once('drain', this.#onDrain);
    }
  };

  readonly #onDrain = (): void => {
    this.#awaitingDrain = false;
    this.#flush();
  };

  #deliverEarly(f: Frame): void {
    if (!this.#closed) this.#onFrame(f);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#decoder.push(chunk, (f) => this.#onFrame(f));
    } catch (e) {
      const err = e instanceof ClusterError ? e : new ClusterError('ERR_FRAME_MALFORMED', String(e));
      if (err.code === 'ERR_FRAME_TOO_LARGE') this.#opts.stats.oversizeFrames++;
      else this.#opts.stats.malformedFrames++;
      this.#opts.log('warn', `cluster bus: dropping connection ${this.direction} ${this.peer.id} (${this.peer.remoteAddress}:${this.peer.remotePort}): ${err.message}`);
      this.close(err);
    }
  }

  #onFrame(f: Frame): void {
    this.#opts.stats.framesIn++;
    if (f.type === FrameType.RESPONSE || f.type === FrameType.ERROR) {
      const p = this.#pending.take(f.requestId);
      if (!p) {
        this.#opts.stats.lateResponses++;
        return;
      }
      // Nothing left to time out: no timer may keep the process alive for a finished request.
      if (this.#pending.size === 0) this.#disarmDeadlineTimer();
      if (f.type === FrameType.RESPONSE) answer(p, f.payload, this.#opts.log, this.peer.id);
      else fail(p, decodeErrorPayload(f.payload), this.#opts.log, this.peer.id);
      return;
    }
    if (f.type < FIRST_APP_FRAME_TYPE) {
      throw new ClusterError('ERR_FRAME_MALFORMED', `frame type 0x${f.type.toString(16)} not allowed after the handshake`);
    }
    const handler = this.#opts.handlers.get(f.type);
    if (!handler) {
      if (f.requestId !== ONE_WAY_REQUEST_ID) {
        this.#writeError(f.requestId, 'ERR_UNKNOWN_TYPE', `no handler for message type 0x${f.type.toString(16)}`);
      }
      return;
    }
    this.#inflightIncoming++;
    if (this.#inflightIncoming >= this.#opts.maxInflightIncoming && !this.#readPausedForInflight) {
      this.#readPausedForInflight = true;
      this.#socket.pause();
    }
    let result: Buffer | Promise<Buffer>;
    try {
      result = handler(f.payload, this.peer);
    } catch (e) {
      this.#answer(f.requestId, e, undefined);
      return;
    }
    if (Buffer.isBuffer(result)) this.#answer(f.requestId, undefined, result);
    else result.then((r) => this.#answer(f.requestId, undefined, r), (e: unknown) => this.#answer(f.requestId, e, undefined));
  }

  #answer(requestId: number, err: unknown, payload: Buffer | undefined): void {
    this.#inflightIncoming--;
    if (this.#readPausedForInflight && this.#inflightIncoming < this.#opts.maxInflightIncoming) {
      this.#readPausedForInflight = false;
      if (!this.#closed) this.#socket.resume();
    }
    if (err !== undefined) this.#opts.stats.handlerErrors++;
    if (this.#closed || requestId === ONE_WAY_REQUEST_ID) {
      if (err !== undefined) this.#opts.log('debug', `cluster bus: one-way handler failed: ${String(err)}`);
      return;
    }
    if (err !== undefined) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'ERR';
      const message = err instanceof Error ? err.message : String(err);
      this.#writeError(requestId, code, message);
    } else {
      assert(Buffer.isBuffer(payload), 'bus handler must return a Buffer');
      if (this.#fits(payload)) this.#write(FrameType.RESPONSE, requestId, payload);
      else this.#writeError(requestId, 'ERR_FRAME_TOO_LARGE', this.#tooLarge(payload).message);
    }
  }

  #writeError(requestId: number, code: string, message: string): void {
    this.#write(FrameType.ERROR, requestId, encodeErrorPayload(code, message));
  }
}

/** ERROR payload: u8 codeLen | code (ascii) | message (utf8), cut to MAX_ERROR_TEXT_BYTES. */
export function encodeErrorPayload(code: string, message: string): Buffer {
  const c = Buffer.from(code.slice(0, 64), 'latin1');
  const m = Buffer.from(message, 'utf8').subarray(0, MAX_ERROR_TEXT_BYTES);
  return Buffer.concat([Buffer.from([c.length]), c, m]);
}

export function decodeErrorPayload(payload: Buffer): RemoteError {
  if (payload.length < 1 || payload.length < 1 + payload[0]!) return new RemoteError('ERR', 'malformed error response');
  const codeLen = payload[0]!;
  const code = payload.toString('latin1', 1, 1 + codeLen);
  const message = payload.toString('utf8', 1 + codeLen, Math.min(payload.length, 1 + codeLen + MAX_ERROR_TEXT_BYTES));
  return new RemoteError(code, message);
}
