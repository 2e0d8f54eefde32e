/**
 * After the faults healed: wait for the replicas to converge, then read the final state the
 * checker judges (checker.ts FinalKey per key).
 *
 * Replica agreement of a key, without repairing anything: `CLUSTER PREFLIST key` reads the key
 * from each primary replica directly and reports its causal context and live value count; the
 * replicas agree when every primary answered and all report the same context and count (the
 * object is a function of the writes a replica has seen, which its context names).
 * TODO(antientropy): switch to `CLUSTER DIGEST` per slot once it lands (exact equality).
 *
 * converge():
 *   1. passive: poll agreement for every key for up to passiveMs: what gossip, hinted handoff and
 *      anti-entropy achieve alone. The time taken is the scenario's time to converge.
 *   2. if keys still disagree: read each of them once at R=all through GETCTX (read repair), and
 *      poll again for up to repairMs. The report says which phase converged.
 *   3. final values: GETCTX at R=all (CLIENT QUORUM all) per key, from the live nodes in turn.
 */
import type { Redis } from 'ioredis';
import { cmd } from '../helpers/ioredis_client.js';
import { POLL_INTERVAL_MS } from '../helpers/fault_cluster.js';
import type { FinalKey } from './checker.js';

export interface Agreement {
  readonly equal: boolean;
  readonly detail: string;
}

/**
 * Whether the primaries of `key` agree, as `admin`'s node sees the ring, and no hint for the
 * key is still pending anywhere (PREFLIST's third element, when the node reports hints).
 */
export async function replicaAgreement(admin: Redis, key: string): Promise<Agreement> {
  const reply = (await cmd(admin, 'CLUSTER', 'PREFLIST', key)) as [number, unknown[][], unknown[][]?];
  const primaries = reply[1].filter((e) => String(e[1]) === 'primary');
  const versions = primaries.map((e) => `${String(e[5])}#${String(e[6])}`);
  const unreachable = primaries.filter((e) => Number(e[6]) < 0);
  const hints = reply[2] ?? [];
  const equal = primaries.length > 0 && unreachable.length === 0 && new Set(versions).size === 1 && hints.length === 0;
  const detail = primaries.map((e) => `${String(e[0]).slice(0, 8)}=${String(e[5]).slice(0, 60)}#${String(e[6])}`).join(' ');
  return { equal, detail: hints.length === 0 ? detail : `${detail} hints pending: ${hints.map((h) => h.map(String).map((x) => x.slice(0, 8)).join('>')).join(' ')}` };
}

export interface ConvergeOptions {
  /** Control connections to nodes that are up. */
  readonly admins: readonly Redis[];
  readonly keys: readonly string[];
  readonly passiveMs: number;
  readonly repairMs: number;
}

export interface ConvergeResult {
  readonly final: Map<string, FinalKey>;
  /** ms from the call until every key agreed (either phase); -1 if some never did. */
  readonly convergeMs: number;
  /** Converged with no client read helping (gossip, hints, anti-entropy only). */
  readonly passive: boolean;
  /** Keys that needed the read-repair pass. */
  readonly readRepaired: number;
}

async function pollAgreement(admins: readonly Redis[], keys: Set<string>, budgetMs: number, details: Map<string, string>): Promise<void> {
  const deadline = Date.now() + budgetMs;
  let turn = 0;
  for (;;) {
    for (const key of [...keys]) {
      const a = await replicaAgreement(admins[turn++ % admins.length]!, key).catch((e: Error) => ({ equal: false, detail: e.message }));
      if (a.equal) {
        keys.delete(key);
        details.delete(key);
      } else details.set(key, a.detail);
    }
    if (keys.size === 0 || Date.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** GETCTX at R=all on `admin` (its quorum override is reset afterwards). */
async function readAll(admin: Redis, key: string): Promise<string[]> {
  await cmd(admin, 'CLIENT', 'QUORUM', 'all', 'quorum');
  try {
    const reply = (await cmd(admin, 'GETCTX', key)) as [string, string[]];
    return reply[1].map(String);
  } finally {
    await cmd(admin, 'CLIENT', 'QUORUM', 'quorum', 'quorum').catch(() => undefined);
  }
}

export async function converge(o: ConvergeOptions): Promise<ConvergeResult> {
  const started = Date.now();
  const pending = new Set(o.keys);
  const details = new Map<string, string>();
  await pollAgreement(o.admins, pending, o.passiveMs, details);
  const passive = pending.size === 0;
  const readRepaired = pending.size;
  let convergeMs = passive ? Date.now() - started : -1;
  if (!passive) {
    let turn = 0;
    for (const key of pending) await readAll(o.admins[turn++ % o.admins.length]!, key).catch(() => undefined);
    await pollAgreement(o.admins, pending, o.repairMs, details);
    if (pending.size === 0) convergeMs = Date.now() - started;
  }
  const final = new Map<string, FinalKey>();
  let turn = 0;
  for (const key of o.keys) {
    const admin = o.admins[turn++ % o.admins.length]!;
    let values: string[] | null = null;
    try {
      values = await readAll(admin, key);
    } catch {
      values = null;
    }
    const detail = details.get(key);
    final.set(key, { values, replicasEqual: !pending.has(key), ...(detail === undefined ? {} : { detail }) });
  }
  return { final, convergeMs, passive, readRepaired };
}
