/**
 * The reference model the engine is checked against: a plain Map from key (hex) to
 * { value, expiresAtMs }, with the engine's documented semantics and nothing else:
 *   - keys ordered bytewise (hex of bytes sorts the same way as Buffer.compare);
 *   - an entry with expiresAtMs != 0 reads as absent once now >= expiresAtMs;
 *   - a batch applies its ops in order (the last op on a key wins), all or none.
 * Plus helpers shared by the storage proof tests: comparing a whole engine to a model, reading
 * every live entry of an engine.
 */
import type { BatchOp, Entry, KVEngine, Snapshot } from '../../src/storage/types.js';

export interface ModelValue {
  value: Buffer;
  expiresAtMs: number;
}

export class KvModel {
  readonly map = new Map<string, ModelValue>();

  clone(): KvModel {
    const m = new KvModel();
    for (const [k, v] of this.map) m.map.set(k, v);
    return m;
  }

  put(key: Buffer, value: Buffer, expiresAtMs = 0): void {
    this.map.set(key.toString('hex'), { value, expiresAtMs });
  }

  del(key: Buffer): void {
    this.map.delete(key.toString('hex'));
  }

  apply(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.put(op.key, op.value, op.expiresAtMs ?? 0);
      else this.del(op.key);
    }
  }

  get(key: Buffer, nowMs: number): ModelValue | undefined {
    const v = this.map.get(key.toString('hex'));
    if (!v) return undefined;
    if (v.expiresAtMs !== 0 && nowMs >= v.expiresAtMs) return undefined;
    return v;
  }

  /** Live entries in [gte, lt), ordered, at most limit. */
  range(nowMs: number, gte?: Buffer, lt?: Buffer, limit = Number.POSITIVE_INFINITY): Entry[] {
    const lo = gte?.toString('hex');
    const hi = lt?.toString('hex');
    const keys = [...this.map.keys()].filter((k) => (lo === undefined || k >= lo) && (hi === undefined || k < hi)).sort();
    const out: Entry[] = [];
    for (const k of keys) {
      if (out.length >= limit) break;
      const v = this.map.get(k)!;
      if (v.expiresAtMs !== 0 && nowMs >= v.expiresAtMs) continue;
      out.push({ key: Buffer.from(k, 'hex'), value: v.value, expiresAtMs: v.expiresAtMs });
    }
    return out;
  }
}

/** Every entry of a range, collected. */
export async function collect(engine: KVEngine, opts: { gte?: Buffer; lt?: Buffer; limit?: number; snapshot?: Snapshot } = {}): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of engine.range(opts)) out.push(e);
  return out;
}

/** A readable one-line rendering of entries, for assertion messages and equality. */
export function renderEntries(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.key.toString('hex')}=${e.value.toString('hex')}${e.expiresAtMs ? `@${e.expiresAtMs}` : ''}`);
}

/**
 * Differences between the engine's visible state and the model: a full scan plus a get of every
 * key in `probeKeys` (keys once written, so deleted ones are checked for resurrection).
 * Returns [] when they agree.
 */
export async function diffEngine(engine: KVEngine, model: KvModel, nowMs: number, probeKeys: Iterable<Buffer>): Promise<string[]> {
  const problems: string[] = [];
  const got = renderEntries(await collect(engine));
  const want = renderEntries(model.range(nowMs));
  if (got.join(',') !== want.join(',')) {
    const g = new Set(got);
    const w = new Set(want);
    problems.push(
      `scan differs: missing [${want.filter((x) => !g.has(x)).slice(0, 5).join(' ')}] extra [${got.filter((x) => !w.has(x)).slice(0, 5).join(' ')}] (got ${got.length}, want ${want.length})`,
    );
  }
  for (const key of probeKeys) {
    const m = model.get(key, nowMs);
    const e = await engine.getEntry(key);
    const v = await engine.get(key);
    const hex = key.toString('hex');
    if (!m) {
      if (e !== undefined || v !== undefined) problems.push(`get ${hex}: want absent, got ${(v ?? e?.value)?.toString('hex')}`);
    } else if (!v || !v.equals(m.value)) {
      problems.push(`get ${hex}: want ${m.value.toString('hex')}, got ${v?.toString('hex') ?? 'absent'}`);
    } else if (!e || !e.value.equals(m.value) || e.expiresAtMs !== m.expiresAtMs) {
      problems.push(`getEntry ${hex}: want ${m.value.toString('hex')}@${m.expiresAtMs}, got ${e ? `${e.value.toString('hex')}@${e.expiresAtMs}` : 'absent'}`);
    }
    if (problems.length > 10) break;
  }
  return problems;
}
