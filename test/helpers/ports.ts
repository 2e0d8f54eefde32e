/**
 * Free loopback TCP ports for test processes. A port is found by binding 127.0.0.1:0 and
 * reading what the kernel picked, then closing the socket: several engineers run tests at the
 * same time on this machine, so no test may use a fixed port.
 *
 * Contract: the returned ports were free a moment ago and are distinct within one call. A
 * process may still grab one before the caller binds it; callers that start servers retry
 * with a fresh port when the server reports the port in use (see node_process.ts).
 */
import * as net from 'node:net';

export const LOOPBACK_HOST = '127.0.0.1';

function bindZero(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: LOOPBACK_HOST, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** One free loopback port. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * `count` distinct free loopback ports. All sockets are held open until every port is known, so
 * the kernel cannot hand out the same port twice in one call.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await bindZero());
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map(close));
  }
}
