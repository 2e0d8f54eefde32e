/**
 * Quorum accounting for reads and writes: pure, in the style of Riak's get_core/put_core. The
 * async shell sends a request to each target replica, feeds every answer to a QuorumTally, and
 * acts on its decision; the tally owns no sockets or timers. A timeout is the shell's business:
 * it either adds an 'error' for a silent replica or gives up and reports `insufficient()`.
 *
 * Vocabulary as in Dynamo/Riak: n replicas, r/w answers needed, primary (in the slot's
 * preference list) and fallback (a stand-in under sloppy quorum).
 *
 * Counting:
 *  - read: 'ok' (an object) counts; 'notfound' counts when notfoundOk (the default, as Riak 2):
 *    "I have nothing" is an answer. 'error' never counts.
 *  - write: 'ok' is an acknowledgement; 'notfound' is not a write answer (asserted).
 *  - with sloppy = false only primaries count (the `sloppy-quorum no` setting).
 *  - per-dc requirements (local_quorum, each_quorum) must each be met, as must the total.
 * Decisions (sticky: the first one stands; later answers are still recorded, for read repair):
 *  - 'enough' as soon as every requirement is met;
 *  - 'notfound' (reads with notfoundOk = false) when the oks can no longer meet r but the oks and
 *    notfounds together already do: the replicas agree the key is absent (Riak returns notfound);
 *  - 'insufficient' as soon as the outcome can no longer be 'enough' or 'notfound' whatever the
 *    pending replicas answer, with the numbers for `-NOQUORUM`.
 * Every decision is taken at the first answer after which all ways the pending replicas could
 * still answer lead to it (quorum.test.ts checks this exhaustively against that definition).
 */

import assert from 'node:assert';

export type QuorumName = 'one' | 'quorum' | 'all' | 'local_one' | 'local_quorum' | 'each_quorum';
export type QuorumSpec = number | QuorumName;

export const QUORUM_NAMES: readonly QuorumName[] = ['one', 'quorum', 'all', 'local_one', 'local_quorum', 'each_quorum'];

/** A bad quorum setting: unknown name, not a positive integer, or more than the replicas. */
export class QuorumError extends Error {
  readonly code = 'ERR_BAD_QUORUM';
  constructor(message: string) {
    super(message);
    this.name = 'QuorumError';
  }
}

/** Syntax only (config files, CONFIG SET, CLIENT QUORUM): a positive integer or a name. */
export function parseQuorumSpec(text: string): QuorumSpec {
  const t = text.trim().toLowerCase();
  if ((QUORUM_NAMES as readonly string[]).includes(t)) return t as QuorumName;
  if (!/^[0-9]+$/.test(t)) {
    throw new QuorumError(`invalid quorum '${text}': expected a positive integer or one of ${QUORUM_NAMES.join('|')}`);
  }
  const k = Number(t);
  if (!Number.isSafeInteger(k) || k < 1) throw new QuorumError(`invalid quorum '${text}': must be at least 1`);
  return k;
}

/** What a request needs: `total` counted answers, and at least perDc[dc] of them from each dc listed. */
export interface QuorumRequirement {
  readonly total: number;
  readonly perDc: ReadonlyMap<string, number>;
}

/** Replication the requirement is resolved against: n replicas, or n per dc (with the coordinator's dc). */
export type Replication = { readonly n: number } | { readonly dcReplication: ReadonlyMap<string, number>; readonly localDc: string };

const majority = (n: number): number => Math.floor(n / 2) + 1;

/** perDc of a requirement on the total only: one shared empty map (resolved on every request). */
const NO_DC_REQUIREMENT: ReadonlyMap<string, number> = new Map<string, number>();

/** Requirements on the total only, by total: shared (a write resolves W twice, a read R once). */
const TOTAL_ONLY: QuorumRequirement[] = [];

function totalOnly(total: number): QuorumRequirement {
  return (TOTAL_ONLY[total] ??= Object.freeze({ total, perDc: NO_DC_REQUIREMENT }));
}

/**
 * Resolves a spec against the replication. Numbers above the replica count are an error (as
 * Riak's n_val_violation), not silently capped: the client asked for more than can exist.
 * Without datacenters, local_one = one, local_quorum = each_quorum = quorum.
 */
export function resolveQuorum(spec: QuorumSpec, rep: Replication): QuorumRequirement {
  let n: number;
  let byDc: ReadonlyMap<string, number> | undefined;
  let local: string | undefined;
  if ('n' in rep) {
    n = rep.n;
  } else {
    byDc = rep.dcReplication;
    local = rep.localDc;
    n = 0;
    for (const k of byDc.values()) n += k;
  }
  assert(Number.isInteger(n) && n >= 1, 'replication must be at least 1');
  if (typeof spec === 'number') {
    if (!Number.isSafeInteger(spec) || spec < 1) throw new QuorumError(`invalid quorum ${spec}: must be at least 1`);
    if (spec > n) throw new QuorumError(`quorum ${spec} is more than the ${n} replicas`);
    return totalOnly(spec);
  }
  switch (spec) {
    case 'one':
      return totalOnly(1);
    case 'quorum':
      return totalOnly(majority(n));
    case 'all':
      return totalOnly(n);
    case 'local_one':
    case 'local_quorum': {
      if (byDc === undefined || local === undefined) return totalOnly(spec === 'local_one' ? 1 : majority(n));
      const nl = byDc.get(local) ?? 0;
      if (nl === 0) throw new QuorumError(`${spec}: no replicas in the local datacenter '${local}'`);
      const k = spec === 'local_one' ? 1 : majority(nl);
      return { total: k, perDc: new Map([[local, k]]) };
    }
    case 'each_quorum': {
      if (byDc === undefined) return totalOnly(majority(n));
      const per = new Map<string, number>();
      let total = 0;
      for (const [dc, k] of byDc) {
        if (k === 0) continue;
        per.set(dc, majority(k));
        total += majority(k);
      }
      return { total, perDc: per };
    }
  }
}

/** Single-datacenter shorthand: the number of answers `spec` asks of `n` replicas. */
export function parseQuorum(spec: string, n: number): number {
  assert(Number.isInteger(n) && n >= 1, 'n must be at least 1');
  return resolveQuorum(parseQuorumSpec(spec), { n }).total;
}

export type ReplicaResult = 'ok' | 'notfound' | 'error';

export interface QuorumTarget {
  readonly id: string;
  readonly dc: string;
  /** In the slot's preference list (false: a sloppy-quorum fallback). */
  readonly primary: boolean;
}

export interface TallyOptions {
  readonly op: 'read' | 'write';
  /** Reads: a notfound answer counts toward r (default true). */
  readonly notfoundOk?: boolean;
  /** Fallback answers count (default true); false = only primaries (`sloppy-quorum no`). */
  readonly sloppy?: boolean;
}

export type QuorumDecision =
  | { readonly kind: 'pending' }
  /** Met. `found`: at least one replica returned an object (reads). */
  | { readonly kind: 'enough'; readonly found: boolean }
  | { readonly kind: 'notfound' }
  | {
      readonly kind: 'insufficient';
      /** Counted answers so far, and the number needed (for the dc that failed, if one did). */
      readonly got: number;
      readonly need: number;
      readonly dc?: string;
    };

interface Counts {
  ok: number;
  notfound: number;
  error: number;
  pending: number;
}

/** The decision before the constructor's first evaluation. */
const PENDING_INITIAL: QuorumDecision = { kind: 'pending' };

export class QuorumTally {
  /**
   * Answers by target index (undefined: none yet). Arrays, not Maps keyed by id: a request has a
   * handful of targets, and two Maps per request were a measurable share of the coordinator's
   * allocation (heap sampling, SET -P 16); an id is found by a scan of the targets.
   */
  private readonly results: (ReplicaResult | undefined)[];
  private answered = 0;
  private readonly notfoundOk: boolean;
  private readonly sloppy: boolean;
  private decision: QuorumDecision = PENDING_INITIAL;

  constructor(
    readonly targets: readonly QuorumTarget[],
    readonly need: QuorumRequirement,
    readonly opts: TallyOptions,
  ) {
    for (let i = 1; i < targets.length; i++) for (let j = 0; j < i; j++) assert(targets[i]!.id !== targets[j]!.id, 'duplicate target');
    assert(need.total >= 1, 'a quorum is at least 1');
    this.results = new Array<ReplicaResult | undefined>(targets.length).fill(undefined);
    this.notfoundOk = opts.notfoundOk ?? true;
    this.sloppy = opts.sloppy ?? true;
    this.decision = this.evaluate();
  }

  private indexOf(id: string): number {
    const ts = this.targets;
    for (let i = 0; i < ts.length; i++) if (ts[i]!.id === id) return i;
    return -1;
  }

  /** Records one replica's answer. A second answer from the same replica is ignored. */
  add(id: string, result: ReplicaResult): QuorumDecision {
    const i = this.indexOf(id);
    // `if` + assert.fail, not assert(cond, `...`): that message string was built on every call (hot path).
    if (!(i >= 0)) assert.fail(`answer from ${id}, which was not asked`);
    assert(this.opts.op === 'read' || result !== 'notfound', 'a write answer is ok or error');
    if (this.results[i] !== undefined) return this.decision;
    this.results[i] = result;
    this.answered++;
    if (this.decision.kind === 'pending') this.decision = this.evaluate();
    return this.decision;
  }

  decide(): QuorumDecision {
    return this.decision;
  }

  /** Every target has answered (the shell may then stop waiting, e.g. to finish read repair). */
  allAnswered(): boolean {
    return this.answered === this.targets.length;
  }

  /** What a timeout reports when the decision is still pending: the total as it stands. */
  insufficient(): QuorumDecision & { kind: 'insufficient' } {
    const c = this.count(() => true);
    return { kind: 'insufficient', got: this.counted(c), need: this.need.total };
  }

  /** The answers so far by target id (a new map each call). */
  answers(): ReadonlyMap<string, ReplicaResult> {
    const m = new Map<string, ReplicaResult>();
    this.targets.forEach((t, i) => {
      const r = this.results[i];
      if (r !== undefined) m.set(t.id, r);
    });
    return m;
  }

  private count(filter: (t: QuorumTarget) => boolean): Counts {
    const c: Counts = { ok: 0, notfound: 0, error: 0, pending: 0 };
    for (let i = 0; i < this.targets.length; i++) {
      const t = this.targets[i]!;
      if (!filter(t)) continue;
      const r = this.results[i];
      if (r === undefined) {
        if (t.primary || this.sloppy) c.pending++;
      } else if (!t.primary && !this.sloppy) {
        continue; // a fallback's answer does not count without sloppy quorum
      } else {
        c[r]++;
      }
    }
    return c;
  }

  private counted(c: Counts): number {
    return c.ok + (this.notfoundOk ? c.notfound : 0);
  }

  private evaluate(): QuorumDecision {
    if (this.need.perDc.size === 0) return this.evaluateTotal();
    const groups: Array<[string | undefined, number, Counts]> = [[undefined, this.need.total, this.count(() => true)]];
    for (const [dc, k] of this.need.perDc) groups.push([dc, k, this.count((t) => t.dc === dc)]);
    let met = true;
    let failed: [string | undefined, number, number] | undefined;
    let absentMet = this.opts.op === 'read' && !this.notfoundOk;
    let absentPossible = absentMet;
    for (const [dc, k, c] of groups) {
      const got = this.counted(c);
      if (got < k) met = false;
      if (got + c.pending < k && failed === undefined) failed = [dc, got, k];
      if (c.ok + c.notfound < k) absentMet = false;
      if (c.ok + c.notfound + c.pending < k) absentPossible = false;
    }
    if (met) return { kind: 'enough', found: this.anyOk() };
    if (failed === undefined) return { kind: 'pending' };
    // Cannot be met. Reads that do not count notfound: once counting the notfounds would meet
    // every requirement, the replicas agree the key is absent; while that is still open, wait.
    if (absentMet) return { kind: 'notfound' };
    if (absentPossible) return { kind: 'pending' };
    const [dc, got, need] = failed;
    return dc === undefined ? { kind: 'insufficient', got, need } : { kind: 'insufficient', got, need, dc };
  }

  /**
   * evaluate() when only the total is required (no per-dc requirement: every request of a
   * single-datacenter cluster): the same rules over one group, counted without allocating
   * (this runs on every answer of every request).
   */
  private evaluateTotal(): QuorumDecision {
    let ok = 0;
    let notfound = 0;
    let pending = 0;
    for (let i = 0; i < this.targets.length; i++) {
      const t = this.targets[i]!;
      const r = this.results[i];
      if (r === undefined) {
        if (t.primary || this.sloppy) pending++;
      } else if (t.primary || this.sloppy) {
        if (r === 'ok') ok++;
        else if (r === 'notfound') notfound++;
      }
    }
    const k = this.need.total;
    const got = ok + (this.notfoundOk ? notfound : 0);
    if (got >= k) return ok > 0 ? ENOUGH_FOUND : this.anyOk() ? ENOUGH_FOUND : ENOUGH_NOT_FOUND;
    if (got + pending >= k) return PENDING;
    if (this.opts.op === 'read' && !this.notfoundOk) {
      if (ok + notfound >= k) return NOTFOUND;
      if (ok + notfound + pending >= k) return PENDING;
    }
    return { kind: 'insufficient', got, need: k };
  }

  /** Some replica returned an object (fallbacks included, counted or not: they are merged). */
  private anyOk(): boolean {
    return this.results.includes('ok');
  }
}

const ENOUGH_FOUND: QuorumDecision = Object.freeze({ kind: 'enough', found: true });
const ENOUGH_NOT_FOUND: QuorumDecision = Object.freeze({ kind: 'enough', found: false });
const PENDING: QuorumDecision = Object.freeze({ kind: 'pending' });
const NOTFOUND: QuorumDecision = Object.freeze({ kind: 'notfound' });

/**
 * The text after `-NOQUORUM ` for a failed request (ARCHITECTURE.md section 3), e.g.
 * "write: 1 of 2 replicas acknowledged (the write may be partially applied)".
 */
export function noQuorumMessage(op: 'read' | 'write', d: { got: number; need: number; dc?: string }): string {
  const where = d.dc === undefined ? '' : ` in datacenter ${d.dc}`;
  return op === 'write'
    ? `write: ${d.got} of ${d.need} replicas acknowledged${where} (the write may be partially applied)`
    : `read: ${d.got} of ${d.need} replicas answered${where}`;
}
