/**
 * One fault scenario on a running FaultCluster: workload + fault schedule + heal + converge +
 * check, and the figures issue 5 asks for (acknowledged, lost, indeterminate, time to converge).
 *
 *   runScenario(cluster, { name, fault: async (ctx) => { ... inject, wait, heal ... } })
 *     waitHealthy ─▶ workload.start ─▶ fault(ctx) ─▶ workload.stop ─▶ healEverything
 *       ─▶ waitHealthy ─▶ converge (final_state.ts) ─▶ check (checker.ts)
 *
 * The fault function owns the schedule and may change where clients send (ctx.setTargets). Each
 * scenario uses its own key prefix, so several scenarios run one after another in one cluster.
 */
import { FaultCluster } from '../helpers/fault_cluster.js';
import { check, summarize, type CheckResult, type FinalKey } from './checker.js';
import { converge } from './final_state.js';
import { Workload, WORKLOAD_DEFAULTS, type WorkloadOptions } from './workload.js';

export interface ScenarioContext {
  readonly cluster: FaultCluster;
  readonly workload: Workload;
  /** Restricts the nodes clients send to (default: every running, unpaused node). */
  setTargets(targets: (() => readonly number[]) | null): void;
  sleep(ms: number): Promise<void>;
  /** Free-form notes for the report (e.g. detection times). */
  note(text: string): void;
}

export interface ScenarioSpec {
  readonly name: string;
  readonly fault: (ctx: ScenarioContext) => Promise<void>;
  readonly workload?: Partial<Omit<WorkloadOptions, 'portOf' | 'targets' | 'prefix'>>;
  /** Passive convergence budget (no client reads), ms. */
  readonly passiveMs?: number;
  /** Budget after the read-repair pass, ms. */
  readonly repairMs?: number;
  /** Differing CLUSTER DIGESTs fail the scenario (default; needs anti-entropy running). */
  readonly strictDigest?: boolean;
}

export interface ScenarioReport {
  readonly name: string;
  readonly acknowledged: number;
  readonly lost: number;
  readonly indeterminate: number;
  readonly convergeMs: number;
  readonly passive: boolean;
  readonly readRepaired: number;
  readonly notes: readonly string[];
  readonly result: CheckResult;
  readonly durationMs: number;
  /** What the checker judged, per key (for diagnostics). */
  readonly final: ReadonlyMap<string, FinalKey>;
}

/**
 * Passive convergence budget: hints drain and anti-entropy rounds (every second in
 * FAULT_CLUSTER_CONFIG) finish well within it, even on a loaded machine, ms.
 */
export const PASSIVE_MS_DEFAULT = 20_000;
export const REPAIR_MS_DEFAULT = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every node running and continued, every link healed. */
export async function healEverything(c: FaultCluster): Promise<void> {
  c.heal();
  for (let i = 0; i < c.size; i++) {
    if (c.isPaused(i)) c.resume(i);
    if (!c.isRunning(i)) await c.start(i);
  }
}

export async function runScenario(c: FaultCluster, spec: ScenarioSpec): Promise<ScenarioReport> {
  const started = Date.now();
  await c.waitHealthy();
  let targets: (() => readonly number[]) | null = null;
  const workload = new Workload({
    ...WORKLOAD_DEFAULTS,
    ...spec.workload,
    portOf: (i) => c.port(i),
    targets: () => (targets ?? (() => c.liveIndexes()))(),
    prefix: `${spec.name}:`,
  });
  const notes: string[] = [];
  workload.start();
  try {
    await spec.fault({
      cluster: c,
      workload,
      setTargets: (t) => (targets = t),
      sleep,
      note: (s) => notes.push(s),
    });
  } finally {
    await workload.stop();
    await healEverything(c);
  }
  const healthyMs = await c.waitHealthy();
  notes.push(`membership healthy ${healthyMs} ms after heal`);
  const admins = await Promise.all(c.liveIndexes().map((i) => c.admin(i)));
  const conv = await converge({
    admins,
    adminOf: (id) => {
      const i = c.ids.indexOf(id);
      return i >= 0 && c.liveIndexes().includes(i) ? admins[c.liveIndexes().indexOf(i)] : undefined;
    },
    strictDigest: spec.strictDigest ?? true,
    keys: workload.keys(),
    passiveMs: spec.passiveMs ?? PASSIVE_MS_DEFAULT,
    repairMs: spec.repairMs ?? REPAIR_MS_DEFAULT,
  });
  const result = check(workload.writes, workload.reads, conv.final);
  notes.push(`slot digests: ${conv.digests}`);
  if (workload.notSent > 0) notes.push(`${workload.notSent} commands not sent (no connection)`);
  return {
    name: spec.name,
    acknowledged: result.acknowledged,
    lost: result.lost.length,
    indeterminate: result.indeterminate,
    convergeMs: conv.convergeMs,
    passive: conv.passive,
    readRepaired: conv.readRepaired,
    notes,
    result,
    durationMs: Date.now() - started,
    final: conv.final,
  };
}

/** One line per scenario for test output and the soak log. */
export function reportLine(r: ScenarioReport): string {
  return (
    `${r.name}: acknowledged=${r.acknowledged} lost=${r.lost} indeterminate=${r.indeterminate} ` +
    `converged=${r.convergeMs < 0 ? 'never' : `${r.convergeMs}ms`}${r.passive ? ' (passive)' : ` (after read repair of ${r.readRepaired} keys)`} ` +
    `| ${summarize(r.result)} | ${r.notes.join('; ')} | ${r.durationMs} ms in all`
  );
}
