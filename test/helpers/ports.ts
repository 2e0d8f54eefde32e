/**
 * Free loopback TCP ports for test processes. A port is a random one BELOW the kernel's
 * ephemeral range (net.ipv4.ip_local_port_range) that binds on 127.0.0.1, then the socket is
 * closed: several tests run at the same time, so no test may use a fixed port. Below the
 * ephemeral range because a port the kernel picks for `listen(0)` is also one it hands to
 * outgoing connections: between closing the probe and the node's own bind, any client socket
 * (a bus dial, an ioredis connection) could take it, and a cluster whose seed list names the
 * port cannot retry with another (seen in CI: "cannot listen on 127.0.0.1:36121: address already
 * in use"). If the range leaves too little room below it, the kernel picks (port 0) as before.
 *
 * Contract: the returned ports were free a moment ago and are distinct within one call. A
 * process may still grab one before the caller binds it; callers that start servers retry
 * with a fresh port when the server reports the port in use (see node_process.ts).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

export const LOOPBACK_HOST = '127.0.0.1';

/** Lowest port handed out; the range ends just below the kernel's ephemeral range. */
export const PICKED_PORT_MIN = 20000;
/** Fewest ports below the ephemeral range for picking there (else the kernel picks). */
const PICK_RANGE_PORTS_MIN = 2000;
/** Random candidates tried per port before falling back to the kernel's pick. */
const PICK_TRIES_MAX = 50;

function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 0;
  } catch {
    return 0;
  }
}
const PICK_END = ephemeralLow();

function bindPort(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: LOOPBACK_HOST, exclusive: true }, () => resolve(server));
  });
}

/** A bound probe socket on a free port: a random one below the ephemeral range when possible. */
async function bindFree(taken: ReadonlySet<number>): Promise<net.Server> {
  if (PICK_END - PICKED_PORT_MIN >= PICK_RANGE_PORTS_MIN) {
    for (let i = 0; i < PICK_TRIES_MAX; i++) {
      const port = PICKED_PORT_MIN + Math.floor(Math.random() * (PICK_END - PICKED_PORT_MIN));
      if (taken.has(port)) continue;
      try {
        return await bindPort(port);
      } catch {
        // in use: try another
      }
    }
  }
  return bindPort(0);
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
    const taken = new Set<number>();
    for (let i = 0; i < count; i++) {
      const server = await bindFree(taken);
      taken.add((server.address() as net.AddressInfo).port);
      servers.push(server);
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map(close));
  }
}

/**
 * The first of `count` consecutive free loopback ports (first, first+1, ...), for commands that
 * number their nodes' ports from a base (`ringkv cluster --base-port B --cluster-port C` uses
 * B, B+1, ... and C, C+1, ...). Picked below the ephemeral range like freePorts, for the same
 * reason; every port of the run is bound at once before any is released.
 */
export async function freePortRun(count: number): Promise<number> {
  const span = PICK_END - PICKED_PORT_MIN - count;
  for (let i = 0; i < PICK_TRIES_MAX; i++) {
    const first = span >= PICK_RANGE_PORTS_MIN ? PICKED_PORT_MIN + Math.floor(Math.random() * span) : 0;
    const servers: net.Server[] = [];
    try {
      servers.push(await bindPort(first));
      const base = (servers[0]!.address() as net.AddressInfo).port;
      if (base + count - 1 > 65535) continue;
      for (let k = 1; k < count; k++) servers.push(await bindPort(base + k));
      return base;
    } catch {
      // one of the run is in use: try another start
    } finally {
      await Promise.all(servers.map(close));
    }
  }
  throw new Error(`no run of ${count} consecutive free ports found in ${PICK_TRIES_MAX} tries`);
}
