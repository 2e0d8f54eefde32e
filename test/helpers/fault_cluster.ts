/**
 * A cluster of real ringkv processes whose bus links all cross a BusFaultProxy (fault_proxy.ts),
 * with process faults: kill -9 and restart, SIGSTOP/SIGCONT, a wiped data dir (issue 5).
 *
 *   const c = await FaultCluster.start(t, { nodes: 5, config: { 'node-timeout-ms': 1000 } });
 *   c.partition([[0, 1], [2, 3, 4]]);   ... c.heal();
 *   await c.kill9(2); await c.start(2);  c.pause(3); c.resume(3);  await c.wipe(4);
 *
 * Node i is named `n<i>`. Each node binds 127.0.0.1, listens for the bus on its own free port
 * and announces its proxy listener instead (`cluster-announce-bus-port`); the seed list names
 * every node by its proxy port, so no node ever dials another directly. After each start the
 * node's id (CLUSTER MYID) is told to the proxy so faults named by index apply to its links.
 * Process and directory cleanup is node_process.ts's (stopped by pid, temp dirs removed); a
 * paused node is continued first so it can shut down cleanly.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Redis } from 'ioredis';
import { IDENTITY_FILE_NAME } from '../../src/server/identity.js';
import { cmd, connectIoredis } from './ioredis_client.js';
import { BusFaultProxy, type LinkFault } from './fault_proxy.js';
import { createNode, type ConfigArgs, type RingkvNode } from './node_process.js';
import { freePorts, LOOPBACK_HOST } from './ports.js';
import { ProcessStartError, type TeardownOwner } from './server_process.js';

/** Default config for fault scenarios: fast gossip and detection, short request timeouts. */
export const FAULT_CLUSTER_CONFIG: ConfigArgs = {
  'replication-factor': 3,
  'read-quorum': 2,
  'write-quorum': 2,
  vnodes: 32,
  'gossip-interval-ms': 100,
  'node-timeout-ms': 1000,
  'request-timeout-ms': 1500,
  // Anti-entropy rounds every second, so replicas that missed writes converge within a scenario.
  'anti-entropy-interval-ms': 1000,
  appendfsync: 'everysec',
};
/** How long a node may take to print its ready line on this loaded machine, ms. */
export const NODE_READY_TIMEOUT_MS = 60_000;
/** Starts of one node tried when its ports turn out taken. */
export const START_ATTEMPTS_MAX = 4;
const PORT_IN_USE = /EADDRINUSE|address already in use/i;
export const ADMIN_CONNECT_ATTEMPTS = 5;
export const ADMIN_RETRY_MS = 200;
export const ADMIN_COMMAND_TIMEOUT_MS = 5_000;
/** Poll interval of waitUntil, ms. */
export const POLL_INTERVAL_MS = 100;
export const CONVERGE_TIMEOUT_MS = 30_000;

export interface FaultClusterOptions {
  readonly nodes: number;
  readonly config?: ConfigArgs;
}

export async function waitUntil(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

export interface NodeLine {
  readonly id: string;
  readonly flags: string;
}

/** CLUSTER NODES as (id, flags) pairs. */
export async function clusterNodes(c: Redis): Promise<NodeLine[]> {
  return String(await cmd(c, 'CLUSTER', 'NODES'))
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [id, , flags] = l.split(' ');
      return { id: id!, flags: flags! };
    });
}

export class FaultCluster {
  readonly proxy: BusFaultProxy;
  readonly nodes: RingkvNode[];
  /** Current node id of each node (changes when a wiped node comes back with a new one). */
  readonly ids: string[];
  readonly #owner: TeardownOwner;
  readonly #paused = new Set<number>();
  /** Control connections (CLUSTER NODES, MYID, ...) by node index; replaced after restarts. */
  readonly #admin = new Map<number, Redis>();

  readonly #configs: Array<Record<string, string | number | boolean>>;

  private constructor(owner: TeardownOwner, proxy: BusFaultProxy, nodes: RingkvNode[], configs: Array<Record<string, string | number | boolean>>) {
    this.#owner = owner;
    this.#configs = configs;
    this.proxy = proxy;
    this.nodes = nodes;
    this.ids = nodes.map(() => '');
  }

  static async start(owner: TeardownOwner, opts: FaultClusterOptions): Promise<FaultCluster> {
    const proxy = new BusFaultProxy();
    const busPorts = await freePorts(opts.nodes);
    const proxyPorts: number[] = [];
    for (let i = 0; i < opts.nodes; i++) proxyPorts.push(await proxy.addTarget(FaultCluster.nameOf(i), busPorts[i]!));
    // Seeds name each node by its proxy port only (gossip dials the @bus port; the client port
    // part is not used to reach a seed), so client ports may change on a restart.
    const seeds = proxyPorts.map((p) => `${LOOPBACK_HOST}:${p}@${p}`).join(',');
    // Mutable per node: a restart that finds its bus port taken moves to another (startNode reads
    // the config object at each start).
    const configs: Array<Record<string, string | number | boolean>> = busPorts.map((busPort, i) => ({
      ...FAULT_CLUSTER_CONFIG,
      ...opts.config,
      bind: LOOPBACK_HOST,
      'cluster-port': busPort,
      'cluster-announce-bus-port': proxyPorts[i]!,
      seeds,
    }));
    const nodes = await Promise.all(configs.map((config) => createNode(owner, { readyTimeoutMs: NODE_READY_TIMEOUT_MS, config })));
    const c = new FaultCluster(owner, proxy, nodes, configs);
    // Registered after the nodes' own teardowns were: continue paused nodes, drop admin clients,
    // close the proxy. Node teardowns SIGKILL a node that does not stop in time anyway.
    owner.teardown(async () => {
      for (const i of c.#paused) c.nodes[i]!.process.resume();
      c.#paused.clear();
      for (const a of c.#admin.values()) a.disconnect();
      await proxy.close();
    });
    await Promise.all(nodes.map((_, i) => c.start(i)));
    return c;
  }

  static nameOf(i: number): string {
    return `n${i}`;
  }

  get size(): number {
    return this.nodes.length;
  }

  port(i: number): number {
    return this.nodes[i]!.port;
  }

  isRunning(i: number): boolean {
    return this.nodes[i]!.running;
  }

  isPaused(i: number): boolean {
    return this.#paused.has(i);
  }

  /**
   * Starts node i (again) and tells the proxy its id. Other processes on this shared machine may
   * take a free port meanwhile (even as the local port of an outgoing connection): when the
   * start fails with the address in use, the node gets a fresh bus port (the proxy is repointed)
   * and tries again; the client port is re-picked by node_process.ts itself.
   */
  async start(i: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.nodes[i]!.start();
        break;
      } catch (e) {
        if (!(e instanceof ProcessStartError && PORT_IN_USE.test(e.output)) || attempt >= START_ATTEMPTS_MAX) throw e;
        const [busPort] = await freePorts(1);
        this.#configs[i]!['cluster-port'] = busPort!;
        this.proxy.setTarget(FaultCluster.nameOf(i), busPort!);
      }
    }
    this.#admin.get(i)?.disconnect();
    this.#admin.delete(i);
    const id = String(await this.onAdmin(i, (c) => cmd(c, 'CLUSTER', 'MYID')));
    this.ids[i] = id;
    this.proxy.nameNode(id, FaultCluster.nameOf(i));
  }

  /**
   * A control connection to node i (not for workload traffic). A node that just started or was
   * just healed may drop a first connection on a loaded machine: ADMIN_CONNECT_ATTEMPTS tries.
   */
  async admin(i: number): Promise<Redis> {
    const existing = this.#admin.get(i);
    if (existing !== undefined && existing.status === 'ready') return existing;
    existing?.disconnect();
    this.#admin.delete(i);
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await connectIoredis(this.#owner, this.port(i), { commandTimeout: ADMIN_COMMAND_TIMEOUT_MS });
        this.#admin.set(i, c);
        return c;
      } catch (e) {
        if (attempt >= ADMIN_CONNECT_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, ADMIN_RETRY_MS));
      }
    }
  }

  /** Runs `fn` on node i's control connection, once more on a fresh one if the first failed without a reply. */
  async onAdmin<T>(i: number, fn: (c: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.admin(i));
    } catch (e) {
      if (e instanceof Error && e.name === 'ReplyError') throw e;
      this.#admin.get(i)?.disconnect();
      this.#admin.delete(i);
      return fn(await this.admin(i));
    }
  }

  async kill9(i: number): Promise<void> {
    if (this.#paused.delete(i)) this.nodes[i]!.process.resume();
    await this.nodes[i]!.kill9();
    this.#admin.get(i)?.disconnect();
    this.#admin.delete(i);
  }

  async restart(i: number): Promise<void> {
    await this.kill9(i);
    await this.start(i);
  }

  pause(i: number): void {
    this.nodes[i]!.process.pause();
    this.#paused.add(i);
  }

  resume(i: number): void {
    if (this.#paused.delete(i)) this.nodes[i]!.process.resume();
  }

  /**
   * kill -9, remove the node's data, start it again. By default the identity file stays: the
   * node keeps its id and must take a new actor epoch (a replaced disk, Riak's KV679 case).
   * With keepIdentity false the dir is emptied and the node comes back as a new node id; its
   * old id stays a down member until it is forgotten.
   */
  async wipe(i: number, opts: { keepIdentity?: boolean } = {}): Promise<void> {
    await this.kill9(i);
    const dir = this.nodes[i]!.dir;
    const keep = opts.keepIdentity ?? true;
    for (const entry of await fs.readdir(dir)) {
      if (keep && entry === IDENTITY_FILE_NAME) continue;
      await fs.rm(path.join(dir, entry), { recursive: true, force: true });
    }
    await this.start(i);
  }

  /** Bus partition between groups of node indexes (both directions). */
  partition(groups: ReadonlyArray<readonly number[]>, mode: 'drop' | 'reset' = 'drop'): void {
    this.proxy.partition(groups.map((g) => g.map(FaultCluster.nameOf)), mode);
  }

  /** Cuts node i off from every other node. */
  isolate(i: number, mode: 'drop' | 'reset' = 'drop'): void {
    this.partition([[i], this.nodes.map((_, j) => j).filter((j) => j !== i)], mode);
  }

  /** The directed link a -> b and b -> a get `fault`. */
  setLink(a: number, b: number, fault: LinkFault): void {
    this.proxy.setFault(FaultCluster.nameOf(a), FaultCluster.nameOf(b), fault);
    this.proxy.setFault(FaultCluster.nameOf(b), FaultCluster.nameOf(a), fault);
  }

  heal(): void {
    this.proxy.healAll();
  }

  /** Running, unpaused nodes. */
  liveIndexes(): number[] {
    return this.nodes.map((_, i) => i).filter((i) => this.isRunning(i) && !this.isPaused(i));
  }

  /** Waits until every live node lists every node (current ids) and none of them as failed; resolves with the ms waited. */
  async waitHealthy(timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
    return waitUntil(
      'every node up in every live node\'s CLUSTER NODES',
      async () => {
        for (const i of this.liveIndexes()) {
          const lines = await this.onAdmin(i, clusterNodes).catch(() => null);
          if (lines === null) return false;
          for (const id of this.ids) {
            const l = lines.find((x) => x.id === id);
            if (l === undefined || l.flags.includes('fail')) return false;
          }
        }
        return true;
      },
      timeoutMs,
    );
  }

  /** Flags of node j as node i sees it ('' if i does not list j). */
  async flagsSeenBy(i: number, j: number): Promise<string> {
    const lines = await this.onAdmin(i, clusterNodes);
    return lines.find((l) => l.id === this.ids[j])?.flags ?? '';
  }
}
