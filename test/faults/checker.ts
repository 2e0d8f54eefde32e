/**
 * The "nothing lost" checker of issue 5 (../shared/TESTING.md): pure, over a recorded history
 * and the final state read after the faults healed.
 *
 * Inputs
 * - writes: every write the workload sent, with its outcome: `ok` (acknowledged) or `unknown`
 *   (timeout, NOQUORUM, connection lost: indeterminate, either outcome is allowed). Values are
 *   unique per run, so a value names the write that produced it.
 *   - causal writes (SETCTX / DELCTX) record `covers`: the values their GETCTX returned, which
 *     their context supersedes;
 *   - plain writes (SET / DEL) record `covers: null`: they supersede whatever their coordinating
 *     replica had seen, which the client cannot know.
 * - reads: values returned by GETCTX during the run (evidence that a write took effect).
 * - final: per key, the values one all-replica read returned after convergence (null if the key
 *   could not be read), and whether the replicas of the key were found identical.
 *
 * Verdicts
 * - lost (causal key): an acknowledged value absent from the final state that no recorded write
 *   covered. A covering write, even an indeterminate one, may have superseded it; anything else
 *   that makes an acknowledged value disappear is a lost write (e.g. last-write-wins dropping a
 *   concurrent write its writer never saw).
 * - lost (plain key, one sequential writer per key): an acknowledged value absent from the final
 *   state with no later write on the key that took effect or may have (acknowledged; a SET whose
 *   value was seen; an indeterminate DEL). Weaker than the causal rule: a plain SET that did not
 *   see its predecessor legitimately leaves it as a sibling, so presence cannot be required.
 * - resurrected: a value in the final state that an acknowledged causal write covered (a
 *   superseded or deleted value came back).
 * - phantom: a value seen (during the run or at the end) that no write of that key produced.
 * - divergent / unreadable: keys whose replicas differ, or that could not be read at the end.
 */

export type Outcome = 'ok' | 'unknown';
export type WriteKind = 'setctx' | 'delctx' | 'set' | 'del';

export interface WriteRecord {
  readonly kind: WriteKind;
  readonly key: string;
  /** The value written; null for a delete. */
  readonly value: string | null;
  /** Values the write's context covered (causal writes); null for plain writes. */
  readonly covers: readonly string[] | null;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: Outcome;
  readonly error?: string;
  /** Index of the node the client sent it to. */
  readonly node: number;
}

export interface ReadRecord {
  readonly key: string;
  readonly values: readonly string[];
}

export interface FinalKey {
  /** Values after convergence (siblings), [] for absent/deleted; null when unreadable. */
  readonly values: readonly string[] | null;
  readonly replicasEqual: boolean;
  readonly detail?: string;
}

export interface Finding {
  readonly key: string;
  readonly value: string;
  readonly why: string;
}

export interface CheckResult {
  readonly acknowledged: number;
  readonly indeterminate: number;
  readonly lost: readonly Finding[];
  readonly resurrected: readonly Finding[];
  readonly phantoms: readonly Finding[];
  readonly divergent: readonly string[];
  readonly unreadable: readonly string[];
  readonly keys: number;
  readonly ok: boolean;
}

const isCausal = (w: WriteRecord): boolean => w.kind === 'setctx' || w.kind === 'delctx';

function groupByKey(writes: readonly WriteRecord[]): Map<string, WriteRecord[]> {
  const byKey = new Map<string, WriteRecord[]>();
  for (const w of writes) {
    let list = byKey.get(w.key);
    if (list === undefined) byKey.set(w.key, (list = []));
    list.push(w);
  }
  return byKey;
}

export function check(writes: readonly WriteRecord[], reads: readonly ReadRecord[], final: ReadonlyMap<string, FinalKey>): CheckResult {
  const lost: Finding[] = [];
  const resurrected: Finding[] = [];
  const phantoms: Finding[] = [];
  const divergent: string[] = [];
  const unreadable: string[] = [];
  const observed = new Map<string, Set<string>>();
  const see = (key: string, values: readonly string[]): void => {
    let s = observed.get(key);
    if (s === undefined) observed.set(key, (s = new Set()));
    for (const v of values) s.add(v);
  };
  for (const r of reads) see(r.key, r.values);
  for (const [key, f] of final) if (f.values !== null) see(key, f.values);

  const byKey = groupByKey(writes);
  const keys = new Set([...byKey.keys(), ...final.keys()]);
  for (const key of [...keys].sort()) {
    const ws = byKey.get(key) ?? [];
    const f = final.get(key);
    if (f === undefined || f.values === null) {
      if (ws.some((w) => w.outcome === 'ok')) unreadable.push(key);
      continue;
    }
    if (!f.replicasEqual) divergent.push(key);
    const present = new Set(f.values);
    const written = new Set(ws.flatMap((w) => (w.value === null ? [] : [w.value])));
    for (const v of observed.get(key) ?? []) if (!written.has(v)) phantoms.push({ key, value: v, why: 'never written to this key' });

    if (ws.some(isCausal)) {
      const coveredBy = new Map<string, WriteRecord[]>();
      for (const w of ws) for (const c of w.covers ?? []) {
        let l = coveredBy.get(c);
        if (l === undefined) coveredBy.set(c, (l = []));
        l.push(w);
      }
      for (const w of ws) {
        if (w.outcome !== 'ok' || w.value === null || present.has(w.value)) continue;
        if (!coveredBy.has(w.value)) lost.push({ key, value: w.value, why: `acknowledged ${w.kind} absent and no write covered it` });
      }
      for (const v of present) {
        const by = (coveredBy.get(v) ?? []).find((w) => w.outcome === 'ok');
        if (by !== undefined) resurrected.push({ key, value: v, why: `covered by acknowledged ${by.kind}${by.value === null ? '' : ` ${by.value}`}` });
      }
    } else {
      const ordered = [...ws].sort((a, b) => a.startMs - b.startMs);
      const seen = observed.get(key) ?? new Set<string>();
      ordered.forEach((w, i) => {
        if (w.outcome !== 'ok' || w.value === null || present.has(w.value)) return;
        const later = ordered.slice(i + 1).filter((x) => x.startMs >= w.startMs);
        const superseded = later.some(
          (x) => x.outcome === 'ok' || (x.value !== null && seen.has(x.value)) || (x.value === null && x.outcome === 'unknown'),
        );
        if (!superseded) lost.push({ key, value: w.value, why: `acknowledged ${w.kind} absent and no later write took effect` });
      });
    }
  }
  return {
    acknowledged: writes.filter((w) => w.outcome === 'ok').length,
    indeterminate: writes.filter((w) => w.outcome === 'unknown').length,
    lost,
    resurrected,
    phantoms,
    divergent,
    unreadable,
    keys: keys.size,
    ok: lost.length === 0 && resurrected.length === 0 && phantoms.length === 0 && divergent.length === 0 && unreadable.length === 0,
  };
}

/** One line for logs and reports. */
export function summarize(r: CheckResult): string {
  const first = (xs: readonly Finding[]): string => (xs.length === 0 ? '' : ` e.g. ${xs[0]!.key}=${xs[0]!.value} (${xs[0]!.why})`);
  return (
    `keys=${r.keys} acknowledged=${r.acknowledged} indeterminate=${r.indeterminate} lost=${r.lost.length}${first(r.lost)} ` +
    `resurrected=${r.resurrected.length}${first(r.resurrected)} phantoms=${r.phantoms.length}${first(r.phantoms)} ` +
    `divergent=${r.divergent.length}${r.divergent.length ? ` e.g. ${r.divergent[0]}` : ''} unreadable=${r.unreadable.length}`
  );
}
