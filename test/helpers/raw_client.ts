/**
 * Raw TCP exchanges for protocol tests: send exact bytes, collect exact bytes, and learn whether
 * the server closed the connection. No RESP parsing here, so a test sees what went on the wire.
 */
import * as net from 'node:net';
import { LOOPBACK_HOST } from './ports.js';

export interface Exchange {
  /** Everything received. */
  data: Buffer;
  /** True if the server closed (FIN or RST) before the wait ended. */
  closed: boolean;
}

export function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: LOOPBACK_HOST });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export interface CollectOptions {
  /** Silence after minBytes that ends the wait (the connection is then reported kept), ms. */
  quietMs?: number;
  /** Total wait, ms; then the connection is reported kept. */
  maxWaitMs?: number;
  minBytes?: number;
  /**
   * The caller expects the server to close: no quiet period, only the close (or maxWaitMs, then
   * reported kept) ends the wait. On a loaded machine a server's close can come well after its
   * last reply byte (redis-server closes a client after a protocol error in a later event-loop
   * turn), so a quiet period would report a closing connection as kept.
   */
  expectClose?: boolean;
}

/**
 * Collects bytes from a socket until it closes, or until `quietMs` pass with no new data after
 * at least `minBytes` arrived (unless `expectClose`), or `maxWaitMs` pass in total.
 */
export function collect(socket: net.Socket, options: CollectOptions = {}): Promise<Exchange> {
  const quietMs = options.quietMs ?? 300;
  const maxWaitMs = options.maxWaitMs ?? 5_000;
  const minBytes = options.minBytes ?? 1;
  const expectClose = options.expectClose ?? false;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let quietTimer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (closed: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(quietTimer);
      clearTimeout(maxTimer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      resolve({ data: Buffer.concat(chunks), closed });
    };
    // A timer that fired after this process was descheduled runs before the I/O that arrived
    // meanwhile; setImmediate lets that I/O (more data, a FIN or RST) be seen first. More data
    // re-arms the quiet period instead.
    const quietOver = (): void => {
      const seen = size;
      setImmediate(() => {
        if (size === seen) finish(false);
      });
    };
    const armQuiet = (): void => {
      clearTimeout(quietTimer);
      if (!expectClose && size >= minBytes) quietTimer = setTimeout(quietOver, quietMs);
    };
    const onData = (d: Buffer): void => {
      chunks.push(d);
      size += d.length;
      armQuiet();
    };
    const onClose = (): void => finish(true);
    const onError = (): void => {
      /* ECONNRESET: 'close' follows */
    };
    const maxTimer = setTimeout(() => setImmediate(() => finish(false)), maxWaitMs);
    if (socket.destroyed || socket.readableEnded) {
      finish(true);
      return;
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', onError);
    if (minBytes <= 0) armQuiet();
  });
}

/** Connects, writes `payload` (in pieces if an array), collects the answer, and closes. */
export async function exchange(
  port: number,
  payload: Buffer | string | readonly (Buffer | string)[],
  options: CollectOptions = {},
): Promise<Exchange> {
  const socket = await connectRaw(port);
  socket.on('error', () => undefined);
  const done = collect(socket, options);
  const parts = Array.isArray(payload) ? payload : [payload];
  for (const part of parts) socket.write(part);
  const result = await done;
  socket.destroy();
  return result;
}

/** Sends one command as a RESP array and returns the raw reply bytes (waits for minBytes). */
export function respCommand(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
