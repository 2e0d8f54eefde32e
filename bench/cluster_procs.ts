/**
 * Starting the clusters bench/cluster.ts measures, on loopback with dynamic ports and temp dirs,
 * each stopped by the pid this process started (never by name):
 *  - a ringkv cluster of n nodes joined by `seeds` (the test helpers' startNodes);
 *  - a Redis Cluster of `primaries` primaries with one replica each: redis-server
 *    --cluster-enabled yes per node (own dir, bus port from `--cluster-port`, so no port+10000
 *    guess), then `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`.
 * Both wait until every node sees the whole cluster healthy before they resolve.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startNodes, type NodeOptions, type RingkvNode } from '../test/helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../test/helpers/ports.js';
import { startRedisServer, type RedisServerHandle } from '../test/helpers/redis_server.js';

const execFileAsync = promisify(execFile);

/** How long a cluster may take to agree on its membership before the bench gives up, ms. */
export const CLUSTER_READY_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;

/** One redis-cli call; resolves with its stdout. */
export async function redisCli(cli: string, port: number, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync(cli, ['-h', LOOPBACK_HOST, '-p', String(port), ...args], { timeout: 30_000 });
  return stdout;
}

async function waitFor(what: string, pred: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  for (;;) {
    if (await pred().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

export interface StartedCluster {
  /** Client ports, first node first. */
  readonly ports: readonly number[];
  readonly pids: () => number[];
  /** What node i printed so far (stdout and stderr; ringkv clusters only: bench/cluster_gc.ts reads V8's GC trace from it). */
  readonly log?: (i: number) => string;
  /** Resident memory of every process of the cluster, summed. */
  rssBytes(): number;
  stop(): Promise<void>;
}

/**
 * n ringkv nodes with `config` (N/R/W etc.) plus seeds naming them all; resolves when every node
 * lists n members and none of them failed. `nodeArgs(i)` adds node flags (e.g. --cpu-prof).
 */
export async function startRingkvCluster(
  cli: string,
  n: number,
  config: Readonly<Record<string, string | number>>,
  nodeArgs: (i: number) => readonly string[] = () => [],
): Promise<StartedCluster> {
  const busPorts = await freePorts(n);
  const nodes: RingkvNode[] = await startNodes(null, n, (i, ports): NodeOptions => {
    const seeds = ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(',');
    return { config: { ...config, bind: LOOPBACK_HOST, 'cluster-port': busPorts[i]!, seeds }, nodeArgs: nodeArgs(i) };
  });
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((x) => x.dispose()));
  };
  try {
    for (const node of nodes) {
      await waitFor(`ringkv node ${node.port} to see ${n} healthy members`, async () => {
        const lines = (await redisCli(cli, node.port, ['CLUSTER', 'NODES'])).split('\n').filter((l) => l.trim().length > 0);
        return lines.length === n && lines.every((l) => !/\bfail\??\b/.test(l.split(' ')[2] ?? ''));
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports: nodes.map((x) => x.port),
    pids: () => nodes.map((x) => x.pid),
    log: (i) => nodes[i]?.log ?? '',
    rssBytes: () => nodes.reduce((a, x) => a + x.rssBytes(), 0),
    stop,
  };
}

/**
 * A Redis Cluster of `primaries` primaries and one replica each, every server with `extraArgs`
 * (e.g. AOF settings); resolves when every node reports cluster_state:ok and knows every node.
 */
export async function startRedisCluster(cli: string, primaries: number, extraArgs: readonly string[]): Promise<StartedCluster> {
  const count = primaries * 2;
  const busPorts = await freePorts(count);
  const servers: RedisServerHandle[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.dispose()));
  };
  try {
    for (let i = 0; i < count; i++) {
      servers.push(
        await startRedisServer(null, ['--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]!), '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', ...extraArgs]),
      );
    }
    await execFileAsync(
      cli,
      ['--cluster', 'create', ...servers.map((s) => `${LOOPBACK_HOST}:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: CLUSTER_READY_TIMEOUT_MS },
    );
    for (const s of servers) {
      await waitFor(`redis cluster node ${s.port} ok`, async () => {
        const info = await redisCli(cli, s.port, ['CLUSTER', 'INFO']);
        return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${count}\r`);
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ports: servers.map((s) => s.port),
    pids: () => servers.map((s) => s.proc.pid),
    rssBytes: () => servers.reduce((a, s) => a + s.proc.rssBytes(), 0),
    stop,
  };
}
