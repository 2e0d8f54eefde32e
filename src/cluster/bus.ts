/**
 * The cluster bus: node-to-node messaging on `cluster-port` (default port + 10000).
 *
 *            node A                                              node B
 *   request(B, type, payload) ──▶ link A→B (outbound, dialed by A) ──▶ listener ──▶ handlers[type]
 *                  ◀────────────── RESPONSE / ERROR (same request id) ◀──────────────┘
 *   handlers[type] ◀── listener ◀── link B→A (dialed by B) ◀── request(A, ...)
 *
 * Each node dials its own outbound link per peer address (host:port) and answers requests on the
 * connections it accepted, as Redis Cluster's links do: two TCP connections per pair of talking
 * nodes, no race over who dials whom.
 *
 * Link states:  idle ──dial──▶ connecting ──handshake ok──▶ ready ──socket lost──▶ backoff
 *                                   │ fail                                          │ timer
 *                                   └─────────────▶ backoff ◀────────────────────────┘──▶ connecting
 * - request()/send() on an idle link dials; on a connecting link they wait for it (within their own
 *   timeout); on a link in backoff they fail at once with ERR_PEER_UNREACHABLE, so quorum logic
 *   can move on to a fallback instead of waiting. A link retries by itself with exponential
 *   backoff and jitter (backoff.ts) until dropPeer() or close(), or until nobody has used it for
 *   linkIdleMs (then it is forgotten; the next request dials afresh); a dead address costs one
 *   connect attempt per reconnectMaxMs meanwhile.
 * - An address that turns out to be this node (handshake id = own id) fails with
 *   ERR_SELF_CONNECTION and is not retried, so a seed list may include the node itself.
 * - `peer.id`, when given, must match the id the address proved in the handshake, or the request
 *   fails with ERR_PEER_ID_MISMATCH (the address was reused by another node).
 * - A link in backoff to a node that connects to us (handshake done: it is alive, e.g. restarted)
 *   dials at once with its backoff reset (stats.backoffResets), rather than waiting out its timer;
 *   so does every link in backoff that never connected (a seed that started after this node).
 * - onPeerUp/onPeerDown report outbound link transitions (ready / lost); they are hints for the
 *   failure detector, not verdicts (gossip.ts decides liveness).
 *
 * Wiring (lead): one ClusterBus per node, built from config `cluster-port` (0 in tests),
 * `cluster-secret`, `bind`; register handlers with handle(type, fn) BEFORE listen(), using types
 * from message_types.ts; call close() on SHUTDOWN. Stats (`bus.stats`) go to INFO/metrics.
 */
import assert from 'node:assert';
import * as net from 'node:net';
import { backoffDelayMs } from './backoff.js';
import { BusConnection, newBusStats, type BusAnswer, type BusAnswerListener, type BusHandler, type BusStats, type ConnectionOptions, type LogFn, type PayloadWriter } from './connection.js';
import { ClusterError } from './errors.js';
import { FIRST_APP_FRAME_TYPE, MAX_FRAME_TYPE } from './frame.js';
import { isValidNodeId } from './handshake.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_LINK_IDLE_MS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_INFLIGHT_INCOMING,
  DEFAULT_MAX_OUTBOUND_BUFFER_BYTES,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_RECONNECT_BASE_MS,
  DEFAULT_RECONNECT_MAX_MS,
  MAX_FRAME_BYTES_LIMIT,
  MAX_INBOUND_CONNECTIONS,
  MAX_UNAUTHENTICATED_CONNECTIONS,
} from './limits.js';

export type { BusHandler, BusStats, LogFn, PeerIdentity } from './connection.js';

/** Where a peer listens; `id` (optional) is the node id the caller expects there. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
  readonly id?: string;
}

/** A peer as the bus saw it on a link transition. */
export interface PeerEvent {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

export interface BusLimits {
  /** Largest frame accepted (length field), at most MAX_FRAME_BYTES_LIMIT (64 MiB). */
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  connectTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** A disconnected link unused this long is dropped instead of retried. */
  linkIdleMs: number;
  maxPendingRequests: number;
  maxInflightIncoming: number;
  maxOutboundBufferBytes: number;
}

export const DEFAULT_BUS_LIMITS: Readonly<BusLimits> = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  reconnectBaseMs: DEFAULT_RECONNECT_BASE_MS,
  reconnectMaxMs: DEFAULT_RECONNECT_MAX_MS,
  linkIdleMs: DEFAULT_LINK_IDLE_MS,
  maxPendingRequests: DEFAULT_MAX_PENDING_REQUESTS,
  maxInflightIncoming: DEFAULT_MAX_INFLIGHT_INCOMING,
  maxOutboundBufferBytes: DEFAULT_MAX_OUTBOUND_BUFFER_BYTES,
};

export interface ClusterBusOptions {
  readonly nodeId: string;
  /** Address to listen on (e.g. the first `bind` address). */
  readonly host: string;
  /** cluster-port; 0 picks a free port (tests), read it back from `bus.port` after listen(). */
  readonly port: number;
  /** cluster-secret; undefined or '' = none (the handshake still exchanges ids). */
  readonly secret?: string;
  readonly limits?: Partial<BusLimits>;
  readonly log?: LogFn;
  /** Randomness for reconnect jitter; default Math.random. */
  readonly random?: () => number;
  readonly onPeerUp?: (peer: PeerEvent) => void;
  readonly onPeerDown?: (peer: PeerEvent, reason: Error) => void;
  /** Frame allocation hook, for tests that prove oversize frames allocate nothing. */
  readonly allocate?: (bytes: number) => Buffer;
}

type LinkState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed';

interface Waiter {
  resolve(conn: BusConnection): void;
  reject(err: Error): void;
}

const addrKey = (host: string, port: number): string => `${host}:${port}`;

/** One outbound link to one address, with its reconnect loop. */
class PeerLink {
  state: LinkState = 'idle';
  conn: BusConnection | null = null;
  /** Consecutive failed attempts since the link was last ready. */
  failures = 0;
  lastError: Error | null = null;
  retryAtMs = 0;
  /** When a request or send last asked for this link. */
  lastUsedMs = performance.now();
  timer: NodeJS.Timeout | null = null;
  /** Node id last seen at this address (for peer events). */
  peerId = '';
  readonly waiters = new Set<Waiter>();
  constructor(
    readonly host: string,
    readonly port: number,
  ) {}
}

export class ClusterBus {
  readonly stats: BusStats = newBusStats();
  readonly #opts: ClusterBusOptions;
  readonly #limits: BusLimits;
  readonly #secret: Buffer;
  readonly #handlers = new Map<number, BusHandler>();
  readonly #links = new Map<string, PeerLink>();
  /**
   * The link last found for a node id (requests that name the node they expect: every replica
   * request of a coordinator), so such a request builds no address string and hashes none. A hit
   * is used only while the link is not closed (a closed link has left #links: dropPeer, idle
   * forget, close) and is at the request's host and port; else #links decides, as without it.
   * At most one entry per node id ever asked for; a closed link's entry is dropped on its miss.
   */
  readonly #linkById = new Map<string, PeerLink>();
  readonly #inbound = new Set<BusConnection>();
  readonly #handshaking = new Set<net.Socket>();
  readonly #log: LogFn;
  readonly #random: () => number;
  #server: net.Server | null = null;
  #port = 0;
  #closed = false;

  constructor(opts: ClusterBusOptions) {
    assert(isValidNodeId(opts.nodeId), `invalid node id ${JSON.stringify(opts.nodeId)}`);
    this.#opts = opts;
    this.#limits = { ...DEFAULT_BUS_LIMITS, ...opts.limits };
    assert(this.#limits.maxFrameBytes <= MAX_FRAME_BYTES_LIMIT, `maxFrameBytes above the ${MAX_FRAME_BYTES_LIMIT}-byte ceiling`);
    assert(this.#limits.reconnectBaseMs > 0 && this.#limits.reconnectMaxMs >= this.#limits.reconnectBaseMs);
    this.#secret = Buffer.from(opts.secret ?? '', 'utf8');
    this.#log = opts.log ?? (() => {});
    this.#random = opts.random ?? Math.random;
  }

  get nodeId(): string {
    return this.#opts.nodeId;
  }

  /** The listening port (after listen()). */
  get port(): number {
    return this.#port;
  }

  /** Registers the handler of an application message type (0x10..0xff), requests and one-way alike. */
  handle(type: number, handler: BusHandler): void {
    assert(Number.isInteger(type) && type >= FIRST_APP_FRAME_TYPE && type <= MAX_FRAME_TYPE, `bad message type ${type}`);
    assert(!this.#handlers.has(type), `message type 0x${type.toString(16)} already has a handler`);
    this.#handlers.set(type, handler);
  }

  listen(): Promise<{ host: string; port: number }> {
    assert(!this.#server && !this.#closed, 'listen() once, before close()');
    const server = net.createServer({ noDelay: true }, (socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#opts.host, port: this.#opts.port, exclusive: true }, () => {
        server.removeListener('error', reject);
        server.on('error', (err) => this.#log('error', `cluster bus listener: ${err.message}`));
        this.#port = (server.address() as net.AddressInfo).port;
        resolve({ host: this.#opts.host, port: this.#port });
      });
    });
  }

  /**
   * Sends a request and resolves with the peer's response payload. Rejects with ClusterError:
   * ERR_BUS_TIMEOUT, ERR_PEER_UNREACHABLE, ERR_BUS_CLOSED, ERR_PEER_ID_MISMATCH,
   * ERR_SELF_CONNECTION, ERR_BUS_OVERLOADED, or RemoteError when the peer's handler failed.
   * `timeoutMs` covers connecting too.
   */
  request(peer: PeerAddress, type: number, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    // Fast path: a ready link to the expected node (no extra promise hop per request).
    const conn = this.#readyConn(peer);
    if (conn !== undefined) {
      return conn.request(type, payload, timeoutMs);
    }
    return this.#requestConnecting(peer, type, payload, timeoutMs);
  }

  /**
   * request() in callback form (BusConnection.requestNotify): on a ready link no promise or
   * closure per request; else request()'s promise delivered to `done`. `done` gets the payload or
   * the error request() would reject with, once, never synchronously.
   */
  requestNotify(peer: PeerAddress, type: number, payload: Buffer, timeoutMs: number, done: BusAnswer): void {
    const conn = this.#readyConn(peer);
    if (conn !== undefined) {
      conn.requestNotify(type, payload, timeoutMs, done);
      return;
    }
    this.#requestConnecting(peer, type, payload, timeoutMs).then(
      (p) => done(p),
      (err: unknown) => done(undefined, err instanceof Error ? err : new Error(String(err))),
    );
  }

  /**
   * requestNotify() of a payload written where the frame is queued (BusConnection.
   * requestNotifyWrite) on a ready link; otherwise the payload is encoded into a buffer of its own
   * and goes requestNotify()'s way.
   */
  requestNotifyWrite<A>(peer: PeerAddress, type: number, payloadBytes: number, write: PayloadWriter<A>, arg: A, timeoutMs: number, done: BusAnswer): void {
    const conn = this.#readyConn(peer);
    if (conn !== undefined) {
      conn.requestNotifyWrite(type, payloadBytes, write, arg, timeoutMs, done);
      return;
    }
    const payload = Buffer.allocUnsafe(payloadBytes);
    write(payload, 0, arg);
    this.requestNotify(peer, type, payload, timeoutMs, done);
  }

  /**
   * requestNotifyWrite() answered to `listener.busAnswered(token, payload, err, peerId)`
   * (BusConnection.requestListenWrite) on a ready link: no closure per request; peerId is the id
   * of the node the link reached (`peer.id` when given, as the link is checked against it).
   * Otherwise the payload is encoded into a buffer of its own and request()'s promise is told to
   * the listener, with `peer.id` (or its address) as peerId.
   */
  requestListenWrite<A, T>(
    peer: PeerAddress,
    type: number,
    payloadBytes: number,
    write: PayloadWriter<A>,
    arg: A,
    timeoutMs: number,
    listener: BusAnswerListener<T>,
    token: T,
  ): void {
    const conn = this.#readyConn(peer);
    if (conn !== undefined) {
      conn.requestListenWrite(type, payloadBytes, write, arg, timeoutMs, listener, token);
      return;
    }
    const payload = Buffer.allocUnsafe(payloadBytes);
    write(payload, 0, arg);
    const peerId = peer.id ?? addrKey(peer.host, peer.port);
    this.#requestConnecting(peer, type, payload, timeoutMs).then(
      (p) => listener.busAnswered(token, p, undefined, peerId),
      (err: unknown) => listener.busAnswered(token, undefined, err instanceof Error ? err : new Error(String(err)), peerId),
    );
  }

  /** The connection of a ready link to `peer` (the expected node when it names one), else undefined. */
  #readyConn(peer: PeerAddress): BusConnection | undefined {
    const link = this.#linkOf(peer);
    if (link?.state !== 'ready' || !link.conn || (peer.id !== undefined && link.conn.peer.id !== peer.id)) return undefined;
    return link.conn;
  }

  /** The link to `peer`'s address, if any (#linkById first when the peer names its node). */
  #linkOf(peer: PeerAddress): PeerLink | undefined {
    const id = peer.id;
    if (id === undefined) return this.#links.get(addrKey(peer.host, peer.port));
    const known = this.#linkById.get(id);
    if (known !== undefined) {
      if (known.state !== 'closed' && known.port === peer.port && known.host === peer.host) return known;
      this.#linkById.delete(id);
    }
    const link = this.#links.get(addrKey(peer.host, peer.port));
    if (link !== undefined) this.#linkById.set(id, link);
    return link;
  }

  async #requestConnecting(peer: PeerAddress, type: number, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    const started = performance.now();
    const conn = await this.#connection(peer, timeoutMs);
    const left = timeoutMs - (performance.now() - started);
    if (left <= 0) {
      this.stats.requestTimeouts++;
      throw new ClusterError('ERR_BUS_TIMEOUT', `${addrKey(peer.host, peer.port)}: no connection within ${timeoutMs} ms`);
    }
    return conn.request(type, payload, left);
  }

  /**
   * Sends a one-way message. Resolves once the frame is handed to the socket (not a delivery
   * receipt); rejects like request() when there is no usable connection within `timeoutMs`.
   */
  async send(peer: PeerAddress, type: number, payload: Buffer, timeoutMs: number = this.#limits.connectTimeoutMs): Promise<void> {
    const conn = await this.#connection(peer, timeoutMs);
    // send() throws ERR_FRAME_TOO_LARGE for an oversize payload; the async function turns it into a rejection.
    if (!conn.send(type, payload)) throw new ClusterError('ERR_BUS_OVERLOADED', `${addrKey(peer.host, peer.port)}: cannot send now`);
  }

  /** Outbound links currently known (ready, connecting or waiting to retry). */
  get linkCount(): number {
    return this.#links.size;
  }

  /** Whether the outbound link to this address is ready. */
  isConnected(peer: PeerAddress): boolean {
    return this.#links.get(addrKey(peer.host, peer.port))?.state === 'ready';
  }

  /** Closes the link to an address and stops reconnecting to it (a node left or was forgotten). */
  dropPeer(peer: PeerAddress): void {
    const key = addrKey(peer.host, peer.port);
    const link = this.#links.get(key);
    if (!link) return;
    this.#links.delete(key);
    this.#shutLink(link, new ClusterError('ERR_BUS_CLOSED', `link to ${key} dropped`));
  }

  /** Stops listening, closes every connection; pending requests reject with ERR_BUS_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new ClusterError('ERR_BUS_CLOSED', 'cluster bus closed');
    for (const link of this.#links.values()) this.#shutLink(link, reason);
    this.#links.clear();
    this.#linkById.clear();
    for (const c of this.#inbound) c.close(reason);
    this.#inbound.clear();
    for (const s of this.#handshaking) s.destroy();
    this.#handshaking.clear();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #connOptions(): ConnectionOptions {
    return {
      selfId: this.#opts.nodeId,
      secret: this.#secret,
      maxFrameBytes: this.#limits.maxFrameBytes,
      handshakeTimeoutMs: this.#limits.handshakeTimeoutMs,
      maxPendingRequests: this.#limits.maxPendingRequests,
      maxInflightIncoming: this.#limits.maxInflightIncoming,
      maxOutboundBufferBytes: this.#limits.maxOutboundBufferBytes,
      handlers: this.#handlers,
      stats: this.stats,
      log: this.#log,
      allocate: this.#opts.allocate,
    };
  }

  #accept(socket: net.Socket): void {
    if (this.#closed || this.#handshaking.size >= MAX_UNAUTHENTICATED_CONNECTIONS || this.#inbound.size >= MAX_INBOUND_CONNECTIONS) {
      socket.destroy();
      return;
    }
    this.#handshaking.add(socket);
    // Errors after accept() settles are handled by the connection; before, accept() owns them.
    socket.on('error', () => {});
    BusConnection.accept(socket, this.#connOptions()).then(
      (conn) => {
        this.#handshaking.delete(socket);
        if (this.#closed) {
          conn.close();
          return;
        }
        // A connection from ourselves (a seed list naming this node) is kept until the dialer,
        // which sees ERR_SELF_CONNECTION, closes it.
        this.#inbound.add(conn);
        conn.onClose(() => this.#inbound.delete(conn));
        this.#peerAlive(conn.peer.id);
      },
      (err: Error) => {
        this.#handshaking.delete(socket);
        this.#log('warn', `cluster bus: refused ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}: ${err.message}`);
      },
    );
  }

  #connection(peer: PeerAddress, timeoutMs: number): Promise<BusConnection> {
    if (this.#closed) return Promise.reject(new ClusterError('ERR_BUS_CLOSED', 'cluster bus closed'));
    const key = addrKey(peer.host, peer.port);
    let link = this.#links.get(key);
    if (!link) {
      link = new PeerLink(peer.host, peer.port);
      this.#links.set(key, link);
    }
    link.lastUsedMs = performance.now();
    const check = (conn: BusConnection): BusConnection => {
      if (peer.id !== undefined && conn.peer.id !== peer.id) {
        throw new ClusterError('ERR_PEER_ID_MISMATCH', `${key} is node ${conn.peer.id}, not ${peer.id}`);
      }
      return conn;
    };
    switch (link.state) {
      case 'ready':
        return Promise.resolve(check(link.conn!));
      case 'backoff': {
        const inMs = Math.max(0, Math.round(link.retryAtMs - performance.now()));
        return Promise.reject(
          new ClusterError('ERR_PEER_UNREACHABLE', `${key} unreachable (${link.lastError?.message ?? 'connection lost'}); retry in ${inMs} ms`),
        );
      }
      case 'closed':
        return Promise.reject(link.lastError ?? new ClusterError('ERR_BUS_CLOSED', `link to ${key} closed`));
      case 'idle':
        this.#dial(link);
        break;
      case 'connecting':
        break;
    }
    const l = link;
    return new Promise<BusConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        l.waiters.delete(waiter);
        this.stats.requestTimeouts++;
        reject(new ClusterError('ERR_BUS_TIMEOUT', `${key}: not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (conn) => {
          clearTimeout(timer);
          try {
            resolve(check(conn));
          } catch (e) {
            reject(e as Error);
          }
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      l.waiters.add(waiter);
    });
  }

  #dial(link: PeerLink): void {
    assert(link.state === 'idle' || link.state === 'backoff');
    link.state = 'connecting';
    link.timer = null;
    BusConnection.dial(link.host, link.port, this.#limits.connectTimeoutMs, this.#connOptions()).then(
      (conn) => {
        if (link.state !== 'connecting' || this.#closed) {
          // dropPeer()/close() happened while dialing.
          conn.close();
          return;
        }
        if (conn.peer.id === this.#opts.nodeId) {
          conn.close();
          const err = new ClusterError('ERR_SELF_CONNECTION', `${addrKey(link.host, link.port)} is this node`);
          link.lastError = err;
          link.state = 'closed';
          this.#flushWaiters(link, null, err);
          return;
        }
        link.state = 'ready';
        link.conn = conn;
        link.failures = 0;
        link.peerId = conn.peer.id;
        conn.onClose((reason) => {
          if (link.conn !== conn) return;
          link.conn = null;
          if (link.state !== 'ready') return;
          link.lastError = reason;
          this.#opts.onPeerDown?.({ id: link.peerId, host: link.host, port: link.port }, reason);
          // First retry after about reconnectBaseMs: the peer may be restarting.
          this.#scheduleRetry(link);
        });
        this.#opts.onPeerUp?.({ id: conn.peer.id, host: link.host, port: link.port });
        this.#flushWaiters(link, conn, null);
      },
      (err: Error) => {
        if (link.state !== 'connecting' || this.#closed) return;
        link.lastError = err;
        link.failures++;
        this.#scheduleRetry(link);
        this.#flushWaiters(link, null, new ClusterError(err instanceof ClusterError ? err.code : 'ERR_PEER_UNREACHABLE', err.message));
      },
    );
  }

  /**
   * Node `id` just proved it is alive (it completed a handshake on a connection it dialed to us:
   * a restarted node gossips at once). An outbound link to it waiting in backoff dials now, with
   * its failure count reset, instead of failing requests for up to reconnectMaxMs more (gossip
   * would call the node alive while every replica request to it still got ERR_PEER_UNREACHABLE).
   * A link in backoff that never connected (peerId '') dials too: the handshake names no listening
   * address, and a seed started after us is exactly such a link (its first dial was refused, and
   * its gossip reaching us made it a live member whose every request failed until the timer ran).
   */
  #peerAlive(id: string): void {
    for (const link of this.#links.values()) {
      if (link.state !== 'backoff' || (link.peerId !== id && link.peerId !== '')) continue;
      if (link.timer) clearTimeout(link.timer);
      link.timer = null;
      link.failures = 0;
      this.stats.backoffResets++;
      this.#dial(link);
    }
  }

  #scheduleRetry(link: PeerLink): void {
    if (performance.now() - link.lastUsedMs > this.#limits.linkIdleMs) {
      // Nobody asked for this address for a while: forget it rather than retry forever.
      link.state = 'closed';
      const key = addrKey(link.host, link.port);
      if (this.#links.get(key) === link) this.#links.delete(key);
      return;
    }
    const delay = backoffDelayMs(link.failures, this.#limits.reconnectBaseMs, this.#limits.reconnectMaxMs, this.#random);
    link.state = 'backoff';
    link.retryAtMs = performance.now() + delay;
    link.timer = setTimeout(() => {
      // Re-check: the link may have been dropped while the timer waited.
      if (link.state === 'backoff' && !this.#closed) this.#dial(link);
    }, delay);
    link.timer.unref();
  }

  #flushWaiters(link: PeerLink, conn: BusConnection | null, err: Error | null): void {
    const waiters = [...link.waiters];
    link.waiters.clear();
    for (const w of waiters) {
      if (conn) w.resolve(conn);
      else w.reject(err!);
    }
  }

  #shutLink(link: PeerLink, reason: Error): void {
    const wasReady = link.state === 'ready';
    link.state = 'closed';
    link.lastError = reason;
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
    const conn = link.conn;
    link.conn = null;
    conn?.close(reason);
    if (wasReady) this.#opts.onPeerDown?.({ id: link.peerId, host: link.host, port: link.port }, reason);
    this.#flushWaiters(link, null, reason);
  }
}
