/**
 * Seed and MEET addresses: from what an operator types to the bus addresses gossip dials.
 *
 *   seeds 10.0.0.1:7001,10.0.0.2:7001          client ports: bus port = port + CLUSTER_PORT_OFFSET
 *   seeds 10.0.0.1:7001@17001,[::1]:7002        an explicit bus port after '@' (Redis's ip:port@cport)
 *
 * Pure parsing with typed errors (SeedParseError, code ERR_BAD_SEEDS) so the config layer can
 * reply to a bad `seeds` value or `CLUSTER MEET` with a clear message. Duplicates are dropped.
 * The list may name the node itself: gossip skips its own address.
 */
import type { GossipPeer } from './gossip.js';
import { MAX_HOST_BYTES } from './limits.js';

/** Default cluster-port = port + 10000, as in Redis Cluster. */
export const CLUSTER_PORT_OFFSET = 10_000;
/** A seed list longer than this is a configuration mistake, not a cluster. */
export const MAX_SEEDS = 256;

export class SeedParseError extends Error {
  readonly code = 'ERR_BAD_SEEDS';
  constructor(message: string) {
    super(message);
    this.name = 'SeedParseError';
  }
}

/** The bus port of a node whose client port is `port` and whose cluster-port is unset (0). */
export function defaultBusPort(port: number): number {
  const bus = port + CLUSTER_PORT_OFFSET;
  if (!Number.isInteger(port) || port < 1 || bus > 65535) {
    throw new SeedParseError(`client port ${port} has no default cluster port (port + ${CLUSTER_PORT_OFFSET} must be <= 65535); set it explicitly`);
  }
  return bus;
}

function parsePort(s: string, what: string, entry: string): number {
  if (!/^[0-9]{1,5}$/.test(s)) throw new SeedParseError(`bad ${what} in '${entry}'`);
  const n = Number(s);
  if (n < 1 || n > 65535) throw new SeedParseError(`${what} ${n} out of range in '${entry}'`);
  return n;
}

/** One `host:port[@busport]` entry (IPv6 hosts in brackets). */
export function parseSeed(entry: string): GossipPeer {
  const e = entry.trim();
  let host: string;
  let rest: string;
  if (e.startsWith('[')) {
    const close = e.indexOf(']');
    if (close < 0 || e[close + 1] !== ':') throw new SeedParseError(`bad address '${entry}': want [ipv6]:port`);
    host = e.slice(1, close);
    rest = e.slice(close + 2);
  } else {
    const colon = e.lastIndexOf(':');
    if (colon <= 0) throw new SeedParseError(`bad address '${entry}': want host:port`);
    host = e.slice(0, colon);
    rest = e.slice(colon + 1);
    if (host.includes(':')) throw new SeedParseError(`bad address '${entry}': put IPv6 hosts in brackets`);
  }
  if (host.length === 0 || Buffer.byteLength(host) > MAX_HOST_BYTES || /[\s,@]/.test(host)) throw new SeedParseError(`bad host in '${entry}'`);
  const at = rest.indexOf('@');
  const port = parsePort(at < 0 ? rest : rest.slice(0, at), 'port', entry);
  const busPort = at < 0 ? defaultBusPort(port) : parsePort(rest.slice(at + 1), 'cluster port', entry);
  return { host, busPort };
}

/** A comma- or space-separated seed list; '' gives []. */
export function parseSeeds(list: string): GossipPeer[] {
  const entries = list.split(/[\s,]+/).filter((x) => x.length > 0);
  if (entries.length > MAX_SEEDS) throw new SeedParseError(`${entries.length} seeds; at most ${MAX_SEEDS}`);
  const out: GossipPeer[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    const p = parseSeed(e);
    const key = `${p.host}|${p.busPort}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(p);
    }
  }
  return out;
}
