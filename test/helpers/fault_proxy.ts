/**
 * A TCP fault proxy for the cluster bus (issue 5's fault harness), in the test process.
 *
 *   node A ──dial──▶ proxy listener for B (127.0.0.1:P_B) ──▶ node B's real bus port
 *
 * Every node advertises its proxy listener as its bus address (`cluster-announce-bus-port`), so
 * every node-to-node connection crosses this proxy. The proxy learns which node dialed from the
 * first frame the dialer sends, the bus handshake's HELLO (src/cluster/handshake.ts: frame
 * header, then u8 version | 32 nonce | u8 idLen | id), and which node is dialed from the
 * listener the connection came in on. It then applies the fault of the directed link
 * (from -> to) to the bytes going that way, and of (to -> from) to the bytes coming back.
 *
 * Faults per directed link (LinkFault):
 * - `drop` (blackhole): bytes are discarded; new connections are accepted but never reach the
 *   target, so the dialer sees a handshake timeout, like a silent network partition.
 * - `reset`: existing connections are destroyed and new ones are refused at once.
 * - `delayMs` / `jitterMs`: every chunk is held that long (order kept), a slow link.
 * - `slice`: bytes are written one at a time (frames split at every byte boundary).
 * Contract on healing: a connection that lost bytes to `drop` has lost its framing, so when its
 * link is healed it is destroyed (both nodes see it close and redial) rather than resumed.
 *
 * Only 127.0.0.1 is used. close() destroys every socket and listener the proxy made.
 */
import assert from 'node:assert';
import * as net from 'node:net';
import { FRAME_HEADER_BYTES, FRAME_LENGTH_BYTES, FrameType } from '../../src/cluster/frame.js';
import { NONCE_BYTES } from '../../src/cluster/handshake.js';
import { MAX_NODE_ID_BYTES } from '../../src/cluster/limits.js';
import { LOOPBACK_HOST } from './ports.js';

/** Bytes buffered while waiting for a dialer's HELLO; a longer first frame is not a HELLO. */
export const MAX_HELLO_BYTES = FRAME_HEADER_BYTES + 1 + NONCE_BYTES + 1 + MAX_NODE_ID_BYTES;
/** A dialer that sends no HELLO within this long is disconnected, ms. */
export const HELLO_TIMEOUT_MS = 10_000;

export interface LinkFault {
  readonly mode: 'ok' | 'drop' | 'reset';
  readonly delayMs?: number;
  readonly jitterMs?: number;
  readonly slice?: boolean;
}

export const HEALTHY: LinkFault = { mode: 'ok' };

/** Reads the dialer's node id from a HELLO frame at the start of `buf`: the id, null (need more bytes), or an Error. */
export function parseHelloNodeId(buf: Buffer): string | null | Error {
  if (buf.length < FRAME_HEADER_BYTES) return null;
  const length = buf.readUInt32BE(0);
  const total = FRAME_LENGTH_BYTES + length;
  if (total > MAX_HELLO_BYTES || total < FRAME_HEADER_BYTES + 1 + NONCE_BYTES + 1) return new Error(`first frame of ${total} bytes is not a HELLO`);
  if (buf[4] !== FrameType.HELLO) return new Error(`first frame has type ${buf[4]}, not HELLO`);
  if (buf.length < total) return null;
  const idLenAt = FRAME_HEADER_BYTES + 1 + NONCE_BYTES;
  const idLen = buf[idLenAt]!;
  if (idLenAt + 1 + idLen !== total) return new Error('HELLO id length does not match the frame');
  return buf.subarray(idLenAt + 1, total).toString('latin1');
}

/** One proxied TCP connection: the dialer's socket and the socket to the target. */
class ProxiedConnection {
  upstream: net.Socket | null = null;
  /** Bytes were discarded (drop): the stream's framing is gone, destroy on heal. */
  tainted = false;
  /** Last release time per direction, so delayed chunks keep their order. */
  private releaseAt = { up: 0, down: 0 };

  constructor(
    readonly proxy: BusFaultProxy,
    readonly client: net.Socket,
    /** The dialer's node id, as its HELLO said. */
    readonly fromId: string,
    readonly to: string,
  ) {}

  /** The dialer's name, looked up at each use: a node may be named after it connected. */
  get from(): string {
    return this.proxy.nameOf(this.fromId);
  }

  /** Forwards a chunk in one direction under that direction's fault. */
  forward(dir: 'up' | 'down', chunk: Buffer): void {
    const fault = dir === 'up' ? this.proxy.fault(this.from, this.to) : this.proxy.fault(this.to, this.from);
    const dest = dir === 'up' ? this.upstream : this.client;
    if (fault.mode === 'reset') return this.destroy();
    if (fault.mode === 'drop' || dest === null) {
      this.tainted = true;
      return;
    }
    const delay = (fault.delayMs ?? 0) + (fault.jitterMs ? Math.random() * fault.jitterMs : 0);
    const write = (): void => {
      if (dest.destroyed) return;
      if (fault.slice) for (let i = 0; i < chunk.length; i++) dest.write(chunk.subarray(i, i + 1));
      else dest.write(chunk);
    };
    if (delay <= 0 && this.releaseAt[dir] <= Date.now()) return write();
    const at = Math.max(this.releaseAt[dir], Date.now() + delay);
    this.releaseAt[dir] = at;
    setTimeout(write, at - Date.now());
  }

  destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
    this.proxy.connections.delete(this);
  }
}

/**
 * The proxy: one listener per target node, by name. `addTarget(name, busPort)` returns the port
 * peers must dial to reach that node; `nameNode(id, name)` tells the proxy which name a dialer's
 * node id has. Faults are set between names.
 */
export class BusFaultProxy {
  readonly connections = new Set<ProxiedConnection>();
  readonly #listeners = new Map<string, { server: net.Server; port: number; targetPort: number }>();
  readonly #faults = new Map<string, LinkFault>();
  readonly #names = new Map<string, string>();
  #closed = false;
  /** Connections accepted per directed link, for tests of the proxy itself. */
  readonly accepted = new Map<string, number>();

  /** Listens for connections to node `to` (whose real bus listens on targetPort); resolves with the proxy port. */
  async addTarget(to: string, targetPort: number, listenPort = 0): Promise<number> {
    assert(!this.#listeners.has(to), `target ${to} already proxied`);
    const server = net.createServer((socket) => this.#accept(socket, to));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: LOOPBACK_HOST, port: listenPort, exclusive: true }, () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    this.#listeners.set(to, { server, port, targetPort });
    return port;
  }

  /** Points the listener for `to` at a new real bus port (the node restarted elsewhere). */
  setTarget(to: string, targetPort: number): void {
    const l = this.#listeners.get(to);
    assert(l, `unknown target ${to}`);
    l.targetPort = targetPort;
  }

  /**
   * Names the node with id `id` (the name its listener was added under), so faults set by name
   * apply to the connections it dials. A node with a new id (data dir wiped) is named again.
   */
  nameNode(id: string, name: string): void {
    this.#names.set(id, name);
    this.#apply();
  }

  nameOf(id: string): string {
    return this.#names.get(id) ?? id;
  }

  portOf(to: string): number {
    const l = this.#listeners.get(to);
    assert(l, `unknown target ${to}`);
    return l.port;
  }

  fault(from: string, to: string): LinkFault {
    return this.#faults.get(`${from}>${to}`) ?? HEALTHY;
  }

  /** Sets the fault of the directed link from -> to and applies it to live connections. */
  setFault(from: string, to: string, fault: LinkFault): void {
    if (fault.mode === 'ok' && !fault.delayMs && !fault.jitterMs && !fault.slice) this.#faults.delete(`${from}>${to}`);
    else this.#faults.set(`${from}>${to}`, fault);
    this.#apply();
  }

  /** Both directions between every node of `a` and every node of `b`. */
  cut(a: readonly string[], b: readonly string[], mode: 'drop' | 'reset' = 'drop'): void {
    for (const x of a) for (const y of b) if (x !== y) {
      this.#faults.set(`${x}>${y}`, { mode });
      this.#faults.set(`${y}>${x}`, { mode });
    }
    this.#apply();
  }

  /** Partitions `groups` from each other (nodes in no group keep their links). */
  partition(groups: ReadonlyArray<readonly string[]>, mode: 'drop' | 'reset' = 'drop'): void {
    for (let i = 0; i < groups.length; i++) for (let j = i + 1; j < groups.length; j++) this.cut(groups[i]!, groups[j]!, mode);
  }

  /** Every link healthy again; connections that lost bytes are closed so both ends redial. */
  healAll(): void {
    this.#faults.clear();
    this.#apply();
  }

  /** Heals the links between `a` and `b` (both directions). */
  heal(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) {
      this.#faults.delete(`${x}>${y}`);
      this.#faults.delete(`${y}>${x}`);
    }
    this.#apply();
  }

  #apply(): void {
    for (const c of [...this.connections]) {
      const up = this.fault(c.from, c.to);
      const down = this.fault(c.to, c.from);
      if (up.mode === 'reset' || down.mode === 'reset') c.destroy();
      else if (c.tainted && up.mode === 'ok' && down.mode === 'ok') c.destroy();
      else if (c.upstream === null && up.mode === 'ok' && down.mode === 'ok') c.destroy();
    }
  }

  #accept(socket: net.Socket, to: string): void {
    if (this.#closed) return void socket.destroy();
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      const id = parseHelloNodeId(pending);
      if (id === null) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      // Not a ringkv dialer (or a garbled HELLO): forward it anyway as from an unknown node.
      this.#connect(socket, id instanceof Error ? '?' : id, to, pending);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.on('close', () => clearTimeout(timer));
  }

  #connect(client: net.Socket, fromId: string, to: string, first: Buffer): void {
    const conn = new ProxiedConnection(this, client, fromId, to);
    const key = `${conn.from}>${to}`;
    this.accepted.set(key, (this.accepted.get(key) ?? 0) + 1);
    this.connections.add(conn);
    client.on('close', () => conn.destroy());
    const fault = this.fault(conn.from, to);
    if (fault.mode === 'reset') return conn.destroy();
    client.on('data', (chunk: Buffer) => conn.forward('up', chunk));
    if (fault.mode === 'drop') {
      // Blackholed from the start: never reaches the target; closed when the link heals.
      conn.tainted = true;
      return;
    }
    const l = this.#listeners.get(to);
    if (l === undefined) return conn.destroy();
    const upstream = net.connect({ host: LOOPBACK_HOST, port: l.targetPort, noDelay: true });
    conn.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => conn.destroy());
    upstream.on('data', (chunk: Buffer) => conn.forward('down', chunk));
    conn.forward('up', first);
  }

  /** Destroys every connection and listener. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const c of [...this.connections]) c.destroy();
    await Promise.all([...this.#listeners.values()].map((l) => new Promise<void>((r) => l.server.close(() => r()))));
    this.#listeners.clear();
  }
}
