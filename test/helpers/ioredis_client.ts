/**
 * ioredis clients for black-box tests: connect to 127.0.0.1:port, no reconnection (a test that
 * expects a dropped connection must see it), torn down with the test.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { LOOPBACK_HOST } from './ports.js';
import type { TeardownOwner } from './server_process.js';

export const COMMAND_TIMEOUT_MS = 30_000;

/** Options of a test client: 127.0.0.1:port, lazy connect, no reconnection, no offline queue. */
export function testClientOptions(port: number, options: Partial<RedisOptions> = {}): RedisOptions {
  return {
    host: LOOPBACK_HOST,
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // A server that stops answering fails the test instead of hanging it.
    commandTimeout: COMMAND_TIMEOUT_MS,
    ...options,
  };
}

export async function connectIoredis(
  owner: TeardownOwner,
  port: number,
  options: Partial<RedisOptions> = {},
): Promise<Redis> {
  const client = new Redis(testClientOptions(port, options));
  // Errors surface through command promises; an 'error' event without a listener would crash.
  client.on('error', () => undefined);
  owner.teardown(() => {
    client.disconnect();
  });
  await client.connect();
  return client;
}

/** Any command by name; the reply as ioredis decodes it. */
export function cmd(client: Redis, name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
  return client.call(name, ...args);
}
