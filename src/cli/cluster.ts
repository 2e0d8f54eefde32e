/**
 * `ringkv cluster`: a local cluster of K node processes on consecutive ports, each with its own
 * data directory DIR/<port>. Their output is prefixed with the port. SIGINT/SIGTERM are passed
 * to every node and the command exits once all have stopped. If a node fails to start, the
 * others are stopped and the command exits 1.
 *
 * The nodes form one cluster: each gets `--cluster-port` (the given --cluster-port + i, else its
 * port + 10000) and `--seeds` naming every node of the plan (unless --seeds is given), so they
 * find each other by gossip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

/** How long a node may take to start listening before the cluster gives up. */
export const NODE_START_TIMEOUT_MS = 30_000;
export const NODE_READY_POLL_MS = 100;

export interface ClusterPlan {
  readonly nodes: number;
  readonly basePort: number;
  readonly dir: string;
  readonly conf: string | undefined;
  readonly overrides: readonly (readonly [string, string])[];
}

/** The argument vector of node i (pure, tested). */
export function nodeArgs(plan: ClusterPlan, i: number): { port: number; dir: string; args: string[] } {
  const port = plan.basePort + i;
  const dir = path.join(plan.dir, String(port));
  const args: string[] = [];
  if (plan.conf !== undefined) args.push('--conf', plan.conf);
  const busBase = plan.overrides.find(([k]) => k === 'cluster-port')?.[1];
  const busOf = (j: number): number => (busBase === undefined ? plan.basePort + j + CLUSTER_BUS_OFFSET : Number(busBase) + j);
  for (const [k, v] of plan.overrides) if (k !== 'cluster-port') args.push(`--${k}`, ...v.split(' '));
  args.push('--port', String(port), '--dir', dir, '--cluster-port', String(busOf(i)));
  if (!plan.overrides.some(([k]) => k === 'seeds')) {
    const seeds = Array.from({ length: plan.nodes }, (_, j) => `127.0.0.1:${plan.basePort + j}@${busOf(j)}`);
    args.push('--seeds', seeds.join(','));
  }
  return { port, dir, args };
}

/** Redis's default distance between a client port and its cluster bus port. */
export const CLUSTER_BUS_OFFSET = 10_000;

function waitListening(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + NODE_START_TIMEOUT_MS;
  return new Promise((resolve) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(false);
      if (Date.now() > deadline) return resolve(false);
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        setTimeout(attempt, NODE_READY_POLL_MS);
      });
    };
    attempt();
  });
}

export async function runCluster(plan: ClusterPlan, mainScript: string, out: (line: string) => void): Promise<number> {
  const children: { port: number; dir: string; child: ChildProcess }[] = [];
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  };
  const exited = (c: ChildProcess): Promise<number> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve(c.exitCode ?? 1)
      : new Promise((resolve) => c.once('exit', (code) => resolve(code ?? 1)));

  for (let i = 0; i < plan.nodes; i++) {
    const { port, dir, args } = nodeArgs(plan, i);
    // Each node gets its own process group (detached): a Ctrl-C in the terminal signals the whole
    // foreground group, and a node that saw it both from the terminal and forwarded by us would
    // take the second copy as "exit now" and skip its clean shutdown. We forward signals ourselves.
    const child = spawn(process.execPath, [mainScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      readline.createInterface({ input: stream }).on('line', (line) => out(`[${port}] ${line}`));
    }
    child.on('exit', (code, signal) => {
      if (!stopping) {
        out(`node on port ${port} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
        stopAll('SIGTERM');
      }
    });
    children.push({ port, dir, child });
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    out(`received ${sig}, stopping ${children.length} nodes`);
    stopAll(sig);
  };
  // Detached nodes outlive an exiting parent unless told: stop them if we exit any other way.
  const onExit = (): void => stopAll('SIGTERM');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  try {
    const ready = await Promise.all(children.map((c) => waitListening(c.port, c.child)));
    if (ready.every((r) => r) && !stopping) {
      out(`ringkv local cluster: ${plan.nodes} node${plan.nodes === 1 ? '' : 's'} running`);
      for (const c of children) out(`  127.0.0.1:${c.port}  pid ${c.child.pid ?? '?'}  dir ${c.dir}`);
      const first = children[0]?.port ?? plan.basePort;
      out(`Connect with: redis-cli -p ${first}    or in Node: new Redis(${first}) (ioredis)`);
      out(`The nodes form one cluster (replication-factor, read-quorum, write-quorum from the config); ` +
        `cluster-aware clients: redis-cli -c -p ${first}, or new Redis.Cluster([{ port: ${first} }]) (ioredis).`);
      out('Press Ctrl-C to stop all nodes.');
    } else if (!stopping) {
      out('a node did not start; stopping the others');
      stopAll('SIGTERM');
    }
    const codes = await Promise.all(children.map((c) => exited(c.child)));
    const failed = !ready.every((r) => r) || codes.some((c) => c !== 0);
    out(failed ? 'cluster stopped with errors' : 'all nodes stopped');
    return failed ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}
