/**
 * A fallback's durable hints (ARCHITECTURE.md section 5): objects it accepted for a down primary,
 * kept in the node's storage engine (hint_record.ts layout) until handed off or expired. They
 * survive a restart exactly as data does (WAL per `appendfsync`, then memtable and tables).
 *
 * Contracts:
 *  - add(target, key, object) merges `object` into the target's record for `key` (version
 *    vectors, so two hints for one key never lose each other) and resolves once stored.
 *  - removeIfUnchanged(hints) deletes each hint only if its stored record is still byte-for-byte
 *    the one that was read: a hint merged with a newer write after it was read (and sent) stays,
 *    so the newer write is handed off later instead of being lost.
 *  - Counts and bytes per target are exact: rebuilt by one scan at open, then kept up to date by
 *    every add and remove (all under the per-key lock).
 * A record that does not parse is logged, counted as dropped and deleted (the data it stood for
 * is left to anti-entropy).
 */
import { decodeObject, encodeObject, mergeObjects, type VersionedObject, type WriteOptions } from '../coordinator/object.js';
import { KeyLock } from '../server/key_lock.js';
import type { LogFn } from '../server/logger.js';
import type { KVEngine } from '../storage/types.js';
import { encodeHintRecord, hintKey, hintNamespaceBounds, hintTargetBounds, parseHintKey, parseHintRecord } from './hint_record.js';

/** One stored hint, as read for handoff. */
export interface StoredHint {
  readonly target: string;
  readonly engineKey: Buffer;
  readonly key: Buffer;
  readonly slot: number;
  readonly writtenAtMs: number;
  readonly objectBytes: Buffer;
  /** The whole stored value: removeIfUnchanged compares against it. */
  readonly record: Buffer;
  /** key + object: what it costs on the wire. */
  readonly wireBytes: number;
}

export interface HintTotals {
  readonly count: number;
  readonly bytes: number;
}

export interface HintStoreOptions {
  readonly now: () => number;
  readonly log: LogFn;
  /** Merge options from the running config (max-siblings, conflict policy, pruning). */
  readonly writeOptions: () => WriteOptions;
}

export class HintStore {
  readonly #engine: KVEngine;
  readonly #o: HintStoreOptions;
  readonly #locks = new KeyLock();
  readonly #perTarget = new Map<string, { count: number; bytes: number }>();
  /** Records found unreadable (and deleted). */
  corruptDropped = 0;

  private constructor(engine: KVEngine, options: HintStoreOptions) {
    this.#engine = engine;
    this.#o = options;
  }

  /** Opens the store on `engine` and counts what it holds (one scan of the hint namespace). */
  static async open(engine: KVEngine, options: HintStoreOptions): Promise<HintStore> {
    const s = new HintStore(engine, options);
    const bad: Buffer[] = [];
    for await (const e of engine.range(hintNamespaceBounds())) {
      try {
        const k = parseHintKey(e.key);
        parseHintRecord(e.value);
        s.#account(k.target, 1, e.key.length + e.value.length);
      } catch (err) {
        options.log('error', `hints: unreadable hint record dropped: ${String(err)}`);
        bad.push(Buffer.from(e.key));
      }
    }
    if (bad.length > 0) {
      await engine.write(bad.map((key) => ({ type: 'del' as const, key })));
      s.corruptDropped += bad.length;
    }
    return s;
  }

  #account(target: string, dCount: number, dBytes: number): void {
    const t = this.#perTarget.get(target) ?? { count: 0, bytes: 0 };
    t.count += dCount;
    t.bytes += dBytes;
    if (t.count === 0) this.#perTarget.delete(target);
    else this.#perTarget.set(target, t);
  }

  /** Targets with at least one pending hint. */
  targets(): string[] {
    return [...this.#perTarget.keys()];
  }

  pending(target: string): HintTotals {
    const t = this.#perTarget.get(target);
    return t === undefined ? { count: 0, bytes: 0 } : { count: t.count, bytes: t.bytes };
  }

  totals(): HintTotals {
    let count = 0;
    let bytes = 0;
    for (const t of this.#perTarget.values()) {
      count += t.count;
      bytes += t.bytes;
    }
    return { count, bytes };
  }

  /** Stores (merges) a hint of `object` for `target`. */
  async add(target: string, key: Buffer, object: VersionedObject): Promise<void> {
    const ek = hintKey(target, key);
    const release = await this.#locks.acquire(ek.toString('latin1'));
    try {
      const old = await this.#engine.get(ek);
      let merged = object;
      if (old !== undefined) {
        try {
          merged = mergeObjects(decodeObject(parseHintRecord(old).objectBytes), object, this.#o.writeOptions());
        } catch (err) {
          this.#o.log('error', `hints: unreadable hint record for ${target} replaced: ${String(err)}`);
          this.corruptDropped++;
        }
      }
      const record = encodeHintRecord(this.#o.now(), encodeObject(merged));
      await this.#engine.put(ek, record);
      if (old === undefined) this.#account(target, 1, ek.length + record.length);
      else this.#account(target, 0, record.length - old.length);
    } finally {
      release();
    }
  }

  /**
   * Up to `limit` hints for `target` in key order, starting after engine key `after` (exclusive;
   * undefined: from the first).
   */
  async read(target: string, limit: number, after?: Buffer): Promise<StoredHint[]> {
    const { gte, lt } = hintTargetBounds(target);
    const out: StoredHint[] = [];
    if (limit <= 0) return out;
    // The smallest key after `after` is `after` + 0x00.
    const from = after === undefined ? gte : Buffer.concat([after, Buffer.from([0])]);
    for await (const e of this.#engine.range({ gte: from, lt, limit })) {
      let hint: StoredHint;
      try {
        const k = parseHintKey(e.key);
        const r = parseHintRecord(e.value);
        hint = {
          target,
          engineKey: Buffer.from(e.key),
          key: Buffer.from(k.userKey),
          slot: k.slot,
          writtenAtMs: r.writtenAtMs,
          objectBytes: r.objectBytes,
          record: e.value,
          wireBytes: k.userKey.length + r.objectBytes.length,
        };
      } catch (err) {
        this.#o.log('error', `hints: unreadable hint record for ${target} skipped: ${String(err)}`);
        continue;
      }
      out.push(hint);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Deletes each hint whose stored record still equals the one read (see the header); resolves
   * with the hints actually removed.
   */
  async removeIfUnchanged(hints: readonly StoredHint[]): Promise<StoredHint[]> {
    if (hints.length === 0) return [];
    const release = await this.#locks.acquireMany(hints.map((h) => h.engineKey.toString('latin1')));
    try {
      const current = await Promise.all(hints.map((h) => this.#engine.get(h.engineKey)));
      const removed = hints.filter((h, i) => {
        const c = current[i];
        return c !== undefined && c.equals(h.record);
      });
      if (removed.length === 0) return removed;
      await this.#engine.write(removed.map((h) => ({ type: 'del' as const, key: h.engineKey })));
      for (const h of removed) this.#account(h.target, -1, -(h.engineKey.length + h.record.length));
      return removed;
    } finally {
      release();
    }
  }

  /**
   * Deletes every hint for `target` in one pass in key order (removeIfUnchanged per page of
   * `pageKeys`); resolves with how many were removed. A hint added or rewritten behind the pass
   * stays (a write concurrent with the removal may land on either side of it).
   */
  async removeTarget(target: string, pageKeys: number): Promise<number> {
    let removed = 0;
    let after: Buffer | undefined;
    for (;;) {
      const page = await this.read(target, pageKeys, after);
      if (page.length === 0) return removed;
      removed += (await this.removeIfUnchanged(page)).length;
      after = page[page.length - 1]!.engineKey;
      if (page.length < pageKeys) return removed;
    }
  }

  /** removeTarget for every target with hints (FLUSHALL); resolves with how many were removed. */
  async clear(pageKeys: number): Promise<number> {
    let removed = 0;
    for (const target of this.targets()) removed += await this.removeTarget(target, pageKeys);
    return removed;
  }

  /**
   * Every hinted copy of `key` held here, merged; undefined synchronously when the store is
   * empty (no engine read on the usual path), or resolving undefined when none is for `key`.
   */
  hintedCopy(key: Buffer): Promise<VersionedObject | undefined> | undefined {
    if (this.#perTarget.size === 0) return undefined;
    return (async () => {
      let merged: VersionedObject | undefined;
      for (const target of this.targets()) {
        const v = await this.#engine.get(hintKey(target, key));
        if (v === undefined) continue;
        try {
          const o = decodeObject(parseHintRecord(v).objectBytes);
          merged = merged === undefined ? o : mergeObjects(merged, o, this.#o.writeOptions());
        } catch (err) {
          this.#o.log('error', `hints: unreadable hint record for ${target} not read: ${String(err)}`);
        }
      }
      return merged;
    })();
  }

  /** Targets that have a pending hint for `key` here (CLUSTER PREFLIST). */
  async targetsFor(key: Buffer): Promise<string[]> {
    const out: string[] = [];
    for (const target of this.targets()) {
      if ((await this.#engine.get(hintKey(target, key))) !== undefined) out.push(target);
    }
    return out.sort();
  }
}
