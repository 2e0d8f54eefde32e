/**
 * Issue 5's fault scenarios as ScenarioSpecs, for a 5-node cluster (N=3, W=2, R=2). `scale`
 * stretches every phase: 1 in npm test, larger in the soak script. Node indexes are chosen by
 * `pick` (fixed in tests, random in the soak). Times assume node-timeout-ms = NODE_TIMEOUT_MS.
 */
import { clusterNodes, waitUntil, type FaultCluster } from '../helpers/fault_cluster.js';
import { cmd } from '../helpers/ioredis_client.js';
import type { ScenarioContext, ScenarioSpec } from './scenario.js';

/** node-timeout-ms of the scenario cluster (FAULT_CLUSTER_CONFIG). */
export const NODE_TIMEOUT_MS = 1_000;
/** Poll interval of the membership watchers below, ms. */
export const FLAG_POLL_MS = 50;

export interface ScenarioParams {
  /** Multiplies each phase's duration. */
  readonly scale: number;
  /** Distinct node indexes for the scenario's roles (at least 3). */
  readonly pick: readonly number[];
}

const ms = (p: ScenarioParams, base: number): number => Math.round(base * p.scale);
const others = (c: FaultCluster, xs: readonly number[]): number[] => c.nodes.map((_, i) => i).filter((i) => !xs.includes(i));

/** Polls how the other nodes flag node `target` until `stop()`; records whether any said fail / fail?. */
function watchFlags(ctx: ScenarioContext, target: number): { stop: () => Promise<{ fail: number | null; suspect: number | null }> } {
  const started = Date.now();
  let fail: number | null = null;
  let suspect: number | null = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const i of ctx.cluster.liveIndexes()) {
        if (i === target) continue;
        const f = await ctx.cluster.flagsSeenBy(i, target).catch(() => '');
        const flags = f.split(',');
        if (flags.includes('fail') && fail === null) fail = Date.now() - started;
        if (flags.includes('fail?') && suspect === null) suspect = Date.now() - started;
      }
      await ctx.sleep(FLAG_POLL_MS);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { fail, suspect };
    },
  };
}

export function killRestart(p: ScenarioParams): ScenarioSpec {
  const [v] = p.pick;
  return {
    name: 'kill9-restart',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 500));
      await ctx.cluster.kill9(v!);
      await ctx.sleep(ms(p, 2_000));
      await ctx.cluster.start(v!);
      await ctx.sleep(ms(p, 1_000));
    },
  };
}

/** SIGSTOP for less than node-timeout-ms: no node may mark it failed. */
export function pauseShort(p: ScenarioParams): ScenarioSpec {
  const [v] = p.pick;
  return {
    name: 'pause-short',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 300));
      const w = watchFlags(ctx, v!);
      ctx.cluster.pause(v!);
      await ctx.sleep(Math.round(NODE_TIMEOUT_MS * 0.4));
      ctx.cluster.resume(v!);
      await ctx.sleep(NODE_TIMEOUT_MS);
      const seen = await w.stop();
      ctx.note(`paused ${Math.round(NODE_TIMEOUT_MS * 0.4)} ms: marked fail ${seen.fail === null ? 'never' : `after ${seen.fail} ms`}, fail? ${seen.suspect === null ? 'never' : `after ${seen.suspect} ms`}`);
      if (seen.fail !== null) throw new Error(`node paused short of node-timeout-ms was marked fail after ${seen.fail} ms`);
      await ctx.sleep(ms(p, 300));
    },
  };
}

/** SIGSTOP for well past node-timeout-ms: the others mark it failed; it comes back on SIGCONT. */
export function pauseLong(p: ScenarioParams): ScenarioSpec {
  const [v] = p.pick;
  return {
    name: 'pause-long',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 300));
      const w = watchFlags(ctx, v!);
      ctx.cluster.pause(v!);
      await ctx.sleep(Math.max(ms(p, 3_000), 3 * NODE_TIMEOUT_MS));
      ctx.cluster.resume(v!);
      const seen = await w.stop();
      ctx.note(`paused: marked fail after ${seen.fail ?? 'never'} ms`);
      if (seen.fail === null) throw new Error('node paused 3x node-timeout-ms was never marked fail');
      await ctx.sleep(ms(p, 1_000));
    },
  };
}

export function minorityPartition(p: ScenarioParams): ScenarioSpec {
  const [a, b] = p.pick;
  return {
    name: 'partition-minority',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 300));
      ctx.cluster.partition([[a!, b!], others(ctx.cluster, [a!, b!])]);
      await ctx.sleep(ms(p, 2_500));
      ctx.cluster.heal();
      await ctx.sleep(ms(p, 500));
    },
  };
}

/** Clients write only through node v; v is cut off from every other node mid-stream. */
export function coordinatorIsolated(p: ScenarioParams): ScenarioSpec {
  const [v] = p.pick;
  return {
    name: 'coordinator-isolated',
    fault: async (ctx) => {
      ctx.setTargets(() => [v!]);
      await ctx.sleep(ms(p, 500));
      ctx.cluster.isolate(v!);
      await ctx.sleep(ms(p, 2_000));
      ctx.cluster.heal();
      await ctx.sleep(ms(p, 500));
    },
  };
}

/** One link flaps (cut / healed every FLAP_MS) while another is slow and sliced into bytes. */
export function flappingLink(p: ScenarioParams): ScenarioSpec {
  const [a, b, s] = p.pick;
  const FLAP_MS = 150;
  return {
    name: 'flapping-link',
    fault: async (ctx) => {
      ctx.cluster.setLink(s!, a!, { mode: 'ok', delayMs: 20, jitterMs: 20, slice: true });
      const until = Date.now() + ms(p, 2_500);
      let cut = false;
      while (Date.now() < until) {
        if (cut) ctx.cluster.proxy.heal([`n${a}`], [`n${b}`]);
        else ctx.cluster.proxy.cut([`n${a}`], [`n${b}`]);
        cut = !cut;
        await ctx.sleep(FLAP_MS);
      }
      ctx.cluster.heal();
      await ctx.sleep(ms(p, 300));
    },
  };
}

/**
 * Node d is down while writes go on (its writes land on fallbacks with hints); then a fallback
 * candidate f is killed and restarted before d comes back, so hints must survive f's restart.
 */
export function fallbackKilled(p: ScenarioParams): ScenarioSpec {
  const [d, f] = p.pick;
  return {
    name: 'fallback-killed',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 300));
      await ctx.cluster.kill9(d!);
      await ctx.sleep(Math.max(ms(p, 2_000), 2 * NODE_TIMEOUT_MS));
      await ctx.cluster.kill9(f!);
      await ctx.cluster.start(f!);
      await ctx.sleep(ms(p, 500));
      await ctx.cluster.start(d!);
      await ctx.sleep(ms(p, 1_000));
    },
  };
}

/** Node v's data dir is wiped (its identity kept: same node id, new actor epoch) under load. */
export function wipedDataDir(p: ScenarioParams): ScenarioSpec {
  const [v] = p.pick;
  return {
    name: 'data-dir-wiped',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 1_000));
      await ctx.cluster.wipe(v!);
      await ctx.sleep(ms(p, 1_500));
    },
  };
}

/**
 * Node v's data dir is wiped entirely (identity too): it comes back under a new node id, and its
 * old id, a dead member still owning ring positions, is removed with CLUSTER FORGET so the
 * survivors re-replicate its slots (issue 6's path).
 */
export function wipedNewIdForgotten(p: ScenarioParams): ScenarioSpec {
  const [v, via] = p.pick;
  return {
    name: 'data-dir-wiped-new-id',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 1_000));
      const oldId = ctx.cluster.ids[v!]!;
      await ctx.cluster.wipe(v!, { keepIdentity: false });
      const started = Date.now();
      await waitUntil('the old id marked fail', async () => {
        const lines = await ctx.cluster.onAdmin(via!, clusterNodes).catch(() => []);
        return lines.some((l) => l.id === oldId && l.flags.split(',').includes('fail'));
      });
      await ctx.cluster.onAdmin(via!, (c) => cmd(c, 'CLUSTER', 'FORGET', oldId));
      ctx.note(`old id ${oldId.slice(0, 8)} failed after ${Date.now() - started} ms and was forgotten`);
      await ctx.sleep(ms(p, 1_500));
    },
  };
}

/** Deletes on both sides of a partition, then enough writes to flush and compact every node. */
export function deleteDuringPartition(p: ScenarioParams): ScenarioSpec {
  const [a, b] = p.pick;
  return {
    name: 'delete-partition-compact',
    workload: { deleteRatio: 0.4 },
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 500));
      ctx.cluster.partition([[a!, b!], others(ctx.cluster, [a!, b!])]);
      await ctx.sleep(ms(p, 2_000));
      ctx.cluster.heal();
      await ctx.workload.stop();
      await fillForCompaction(ctx, ms(p, 400));
    },
  };
}

/** Value size of the compaction filler, bytes. */
export const FILLER_VALUE_BYTES = 2_048;

/** Writes `count` filler keys of FILLER_VALUE_BYTES through every node (memtables flush, tables compact). */
async function fillForCompaction(ctx: ScenarioContext, count: number): Promise<void> {
  const value = 'f'.repeat(FILLER_VALUE_BYTES);
  const live = ctx.cluster.liveIndexes();
  await Promise.all(
    live.map((i, j) =>
      ctx.cluster.onAdmin(i, async (c) => {
        const pipe = c.pipeline();
        for (let k = j; k < count; k += live.length) pipe.set(`filler:${k}`, value);
        await pipe.exec();
      }),
    ),
  );
  ctx.note(`${count} filler writes of ${FILLER_VALUE_BYTES} B after the partition`);
}

/** Every node kill -9'd at once mid-load, then all restarted. */
export function wholeClusterRestart(p: ScenarioParams): ScenarioSpec {
  return {
    name: 'whole-cluster-kill9',
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 1_000));
      await Promise.all(ctx.cluster.nodes.map((_, i) => ctx.cluster.kill9(i)));
      await Promise.all(ctx.cluster.nodes.map((_, i) => ctx.cluster.start(i)));
      await ctx.sleep(ms(p, 1_000));
    },
  };
}

/** The checker's own proof: last-write-wins under a partition with both sides writing the same keys. */
export function lwwPartition(p: ScenarioParams): ScenarioSpec {
  const [a, b] = p.pick;
  return {
    name: 'lww-partition',
    workload: { plainRatio: 0, deleteRatio: 0, causalKeys: 4, workers: 6 },
    fault: async (ctx) => {
      await ctx.sleep(ms(p, 300));
      ctx.cluster.partition([[a!, b!], others(ctx.cluster, [a!, b!])]);
      await ctx.sleep(ms(p, 3_000));
      ctx.cluster.heal();
      await ctx.sleep(ms(p, 300));
    },
  };
}

export const ALL_SCENARIOS = [
  killRestart,
  pauseShort,
  pauseLong,
  minorityPartition,
  coordinatorIsolated,
  flappingLink,
  fallbackKilled,
  wipedDataDir,
  wipedNewIdForgotten,
  deleteDuringPartition,
  wholeClusterRestart,
] as const;
