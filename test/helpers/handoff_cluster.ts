/**
 * A 3-node ringkv cluster for hinted-handoff tests and the handoff benchmark: N=2, so every slot
 * has one node outside its preference list to act as the fallback, with fast gossip and failure
 * detection. Plus readers of the INFO hint counters and of CLUSTER NODES failure flags.
 * Processes and temp dirs are node_process.ts's (stopped by pid, removed at teardown or dispose).
 */
import type { Redis } from 'ioredis';
import { clusterNodes } from './fault_cluster.js';
import { startNodes, type ConfigArgs, type RingkvNode } from './node_process.js';
import { freePorts, LOOPBACK_HOST } from './ports.js';
import type { TeardownOwner } from './server_process.js';

export const HANDOFF_CLUSTER_CONFIG: ConfigArgs = {
  'replication-factor': 2,
  'read-quorum': 2,
  'write-quorum': 2,
  vnodes: 32,
  'gossip-interval-ms': 100,
  'node-timeout-ms': 1000,
  'request-timeout-ms': 2000,
  // Anti-entropy only on CLUSTER REPAIR: what reaches a restarted node is handoff's doing alone.
  'anti-entropy-interval-ms': 0,
};

/** Three nodes seeded with each other; `config` overrides HANDOFF_CLUSTER_CONFIG. */
export async function startHandoffCluster(owner: TeardownOwner | null, config: ConfigArgs = {}): Promise<RingkvNode[]> {
  const busPorts = await freePorts(3);
  return startNodes(owner, 3, (i, ports) => ({
    config: {
      ...HANDOFF_CLUSTER_CONFIG,
      ...config,
      bind: LOOPBACK_HOST,
      'cluster-port': busPorts[i]!,
      seeds: ports.map((p, j) => `${LOOPBACK_HOST}:${p}@${busPorts[j]!}`).join(','),
    },
  }));
}

/** INFO cluster's fields with a whole-number value (hints_pending, antientropy_rounds, ...), by name. */
export async function clusterInfoNumbers(c: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of String(await c.info('cluster')).split('\r\n')) {
    const m = /^([a-z0-9_]+):(\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** INFO cluster's hint counters (hints_pending, hints_bytes, hints_delivered, ...) as numbers. */
export async function hintInfo(c: Redis): Promise<Record<string, number>> {
  const all = await clusterInfoNumbers(c);
  return Object.fromEntries(Object.entries(all).filter(([name]) => /^hints?_/.test(name)));
}

/** Whether `c` marks node `id` failed (fail or fail?) in CLUSTER NODES. */
export async function seesDown(c: Redis, id: string): Promise<boolean> {
  return (await clusterNodes(c)).some((n) => n.id === id && n.flags.split(',').includes('fail'));
}
