/**
 * In-process harness for the server's own tests: a RingkvServer on 127.0.0.1 port 0 with a
 * stand-in keyspace (these tests exercise the connection layer, not storage), plus a raw
 * socket client that collects everything the server sends.
 */
import net from 'node:net';
import { Config } from '../../src/config/config.js';
import type { Keyspace } from '../../src/server/keyspace.js';
import { RingkvServer } from '../../src/server/server.js';
import type { CommandSpec } from '../../src/server/types.js';
import type { EngineStats } from '../../src/storage/types.js';

export const ENGINE_STATS_ZERO: EngineStats = {
  memtableBytes: 0, tablesPerLevel: [0], bytesPerLevel: [0], userBytesWritten: 0, logBytesWritten: 0, tableBytesWritten: 0,
  blockCacheBytes: 0, blockCacheHits: 0, blockCacheMisses: 0, bloomChecks: 0, bloomNegatives: 0, flushes: 0, compactions: 0,
  pendingCompactionBytes: 0, failed: null, recoveredTornBytes: 0,
  repairDroppedTables: 0, repairSkippedLogBytes: 0,
};

/** Only what the server's own commands call on the keyspace. */
export function standInKeyspace(keys = 0): Keyspace {
  const ks = {
    nodeId: 'test-node',
    close: async () => undefined,
    dbsize: async () => keys,
    keyspaceInfo: async () => ({ keys, expires: 0 }),
    engineStats: () => ENGINE_STATS_ZERO,
  };
  return ks as unknown as Keyspace;
}

export interface Harness {
  server: RingkvServer;
  config: Config;
  port: number;
  logs: string[];
  shutdownRequests: string[];
}

export async function startServer(
  t: { teardown(fn: () => unknown): void },
  overrides: [string, string][] = [],
  extraCommands: CommandSpec[] = [],
): Promise<Harness> {
  const config = Config.fromOverrides([['port', '0'], ['bind', '127.0.0.1'], ...overrides]);
  const logs: string[] = [];
  const shutdownRequests: string[] = [];
  const server = new RingkvServer({
    config,
    keyspace: standInKeyspace(),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    extraCommands,
    onShutdownRequest: (reason) => shutdownRequests.push(reason),
  });
  const port = await server.listen();
  t.teardown(() => server.close());
  return { server, config, port, logs, shutdownRequests };
}

/** A raw RESP client: write bytes, wait for what the server sends. */
export class RawClient {
  readonly socket: net.Socket;
  #chunks: Buffer[] = [];
  /** Bytes received so far (cheap to read; `received` joins the chunks). */
  receivedBytes = 0;
  closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#chunks.push(d);
      this.receivedBytes += d.length;
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(t: { teardown(fn: () => unknown): void }, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
      t.teardown(() => s.destroy());
    });
  }

  get received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  set received(b: Buffer) {
    this.#chunks = [b];
    this.receivedBytes = b.length;
  }

  /** Resolves once at least `n` bytes arrived. */
  async untilBytes(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.receivedBytes < n) {
      if (this.closed) throw new Error(`connection closed after ${this.receivedBytes} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${this.receivedBytes} of ${n} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves when `pred(received)` holds or the socket closed; rejects after `timeoutMs`. */
  async until(pred: (received: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.received.toString('latin1');
      if (pred(text)) return text;
      if (this.closed) throw new Error(`connection closed; received ${JSON.stringify(text.slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${JSON.stringify(text.slice(0, 300))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the server closed the connection. */
  async untilClosed(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.toString('latin1');
  }
}

/** The RESP2 multibulk encoding of a command. */
export function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
