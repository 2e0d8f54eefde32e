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

/**
 * Collects bytes from a socket until it closes, or until `quietMs` pass with no new data after
 * at least `minBytes` arrived, or `maxWaitMs` pass in total.
 */
export function collect(
  socket: net.Socket,
  options: { quietMs?: number; maxWaitMs?: number; minBytes?: number } = {},
): Promise<Exchange> {
  const quietMs = options.quietMs ?? 300;
  const maxWaitMs = options.maxWaitMs ?? 5_000;
  const minBytes = options.minBytes ?? 1;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let quietTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(quietTimer);
      clearTimeout(maxTimer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      resolve({ data: Buffer.concat(chunks), closed });
    };
    const armQuiet = (): void => {
      clearTimeout(quietTimer);
      if (size >= minBytes) quietTimer = setTimeout(() => finish(false), quietMs);
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
    const maxTimer = setTimeout(() => finish(false), maxWaitMs);
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
  options: { quietMs?: number; maxWaitMs?: number; minBytes?: number } = {},
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
