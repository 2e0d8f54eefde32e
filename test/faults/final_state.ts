/**
 * After the faults healed: wait for the replicas to converge, then read the final state the
 * checker judges (checker.ts FinalKey per key).
 *
 * Replica agreement of a key, without repairing anything: `CLUSTER PREFLIST key` reads the key
 * from each primary replica directly and reports its causal context and live value count; the
 * replicas agree when every primary answered and all report the same context and count (the
 * object is a function of the writes a replica has seen, which its context names).
 * Then, where the nodes have `CLUSTER DIGEST`, each key's slot digest is compared across its
 * primaries (exact equality of everything in the slot); reported, and enforced with strictDigest
 * (it needs anti-entropy: keys outside the workload, e.g. filler, are never read-repaired).
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
  /** The control connection of the node with this id, if it is up (for CLUSTER DIGEST). */
  readonly adminOf?: (id: string) => Redis | undefined;
  /** Keys whose slot digests differ count as divergent (else the digests are only reported). */
  readonly strictDigest?: boolean;
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
  /**
   * CLUSTER DIGEST of each key's slot compared across its primaries, after agreement: 'equal',
   * 'unavailable' (the nodes do not have CLUSTER DIGEST yet), or how many slots differ.
   */
  readonly digests: string;
}

/** Wait for slot digests to agree, at most this long, ms. */
export const DIGEST_WAIT_MS = 5_000;

/** Digest of `slot` on each primary; null when some node cannot answer DIGEST at all. */
async function slotDigests(o: ConvergeOptions, key: string): Promise<{ equal: boolean; detail: string } | null> {
  const admin = o.admins[0]!;
  const slot = Number(await cmd(admin, 'CLUSTER', 'KEYSLOT', key));
  const reply = (await cmd(admin, 'CLUSTER', 'PREFLIST', key)) as [number, unknown[][]];
  const ids = reply[1].filter((e) => String(e[1]) === 'primary').map((e) => String(e[0]));
  const digests: string[] = [];
  for (const id of ids) {
    const a = o.adminOf?.(id);
    if (a === undefined) return { equal: false, detail: `${id.slice(0, 8)} not reachable` };
    try {
      digests.push(String(((await cmd(a, 'CLUSTER', 'DIGEST', slot, slot)) as unknown[])[0]));
    } catch (e) {
      if (/unknown subcommand|cluster support disabled/i.test((e as Error).message)) return null;
      return { equal: false, detail: (e as Error).message };
    }
  }
  return { equal: new Set(digests).size === 1, detail: `slot ${slot}: ${digests.map((d) => d.slice(0, 12)).join(' ')}` };
}

async function compareDigests(o: ConvergeOptions, keys: readonly string[], details: Map<string, string>): Promise<{ summary: string; differing: Set<string> }> {
  if (o.adminOf === undefined) return { summary: 'not compared', differing: new Set() };
  const differing = new Set(keys);
  const deadline = Date.now() + DIGEST_WAIT_MS;
  for (;;) {
    for (const key of [...differing]) {
      const d = await slotDigests(o, key).catch((e: Error) => ({ equal: false, detail: e.message }));
      if (d === null) return { summary: 'unavailable', differing: new Set() };
      if (d.equal) differing.delete(key);
      else details.set(key, `digest differs: ${d.detail}`);
    }
    if (differing.size === 0) return { summary: 'equal', differing };
    if (Date.now() >= deadline) return { summary: `${differing.size} keys' slots differ`, differing };
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
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
  const digest = await compareDigests(o, o.keys.filter((k) => !pending.has(k)), details);
  if (o.strictDigest === true) for (const k of digest.differing) pending.add(k);
  const final = new Map<string, FinalKey>();
  let turn = 0;
  for (const key of o.keys) {
    // Through each node in turn, falling back to the next one when a node cannot answer (e.g. an
    // admin connection to a node killed in the schedule still reconnecting): a key is unreadable
    // only when no node can read it.
    const first = turn++;
    let values: string[] | null = null;
    for (let i = 0; i < o.admins.length && values === null; i++) {
      try {
        values = await readAll(o.admins[(first + i) % o.admins.length]!, key);
      } catch {
        values = null;
      }
    }
    const detail = details.get(key);
    final.set(key, { values, replicasEqual: !pending.has(key), ...(detail === undefined ? {} : { detail }) });
  }
  return { final, convergeMs, passive, readRepaired, digests: digest.summary };
}
