/**
 * Iteration over the whole tree (memtables + tables) for range(): a merge of child iterators
 * in internal order, reduced to one live entry per user key as of a snapshot.
 */
import { compareBytes, equalBytes } from './bytes.js';
import type { InternalEntry } from './internal_entry.js';
import { compareInternal, isDeadAt } from './internal_entry.js';
import type { Entry } from './types.js';
import type { TableReader } from './table_reader.js';

/** A child iterator; next() returns a promise only when it has to read. */
export interface InternalIterator {
  current: InternalEntry | undefined;
  next(): void | Promise<void>;
}

/** Concatenates the iterators of a level's non-overlapping, sorted tables, opening lazily. */
export class LevelIterator implements InternalIterator {
  private i: number;
  private it: InternalIterator | undefined;
  current: InternalEntry | undefined;

  constructor(
    private readonly tables: { reader: TableReader; largestKey: Buffer }[],
    private readonly gte: Buffer | undefined,
  ) {
    this.i = gte ? tables.findIndex((t) => Buffer.compare(t.largestKey, gte) >= 0) : 0;
    if (this.i < 0) this.i = tables.length;
  }

  async init(): Promise<void> {
    await this.open(true);
  }

  private async open(first: boolean): Promise<void> {
    while (this.i < this.tables.length) {
      const t = this.tables[this.i]!;
      const it = t.reader.iterator(first ? this.gte : undefined);
      await it.init();
      first = false;
      if (it.current) {
        this.it = it;
        this.current = it.current;
        return;
      }
      this.i++;
    }
    this.it = undefined;
    this.current = undefined;
  }

  next(): void | Promise<void> {
    const it = this.it;
    if (!it) return;
    const r = it.next();
    if (r) {
      return r.then(() => this.after());
    }
    return this.after();
  }

  private after(): void | Promise<void> {
    if (this.it!.current) {
      this.current = this.it!.current;
      return;
    }
    this.i++;
    return this.open(false);
  }
}

export interface MergeOptions {
  snapshotSeq: number;
  lt: Buffer | undefined;
  limit: number;
  now: () => number;
}

/** Yields live entries (copies) in key order: newest version <= snapshot, not dead. */
export async function* mergeLive(children: InternalIterator[], o: MergeOptions): AsyncGenerator<Entry> {
  let lastKey: Buffer | undefined;
  let emitted = 0;
  if (o.limit <= 0) return;
  for (;;) {
    let best: InternalIterator | undefined;
    for (const c of children) {
      const e = c.current;
      if (!e) continue;
      if (!best || compareInternal(e.key, e.seq, best.current!.key, best.current!.seq) < 0) best = c;
    }
    if (!best) return;
    const e = best.current!;
    if (o.lt && compareBytes(e.key, o.lt) >= 0) return;
    const r = best.next();
    if (r) await r;
    if (e.seq > o.snapshotSeq) continue;
    if (lastKey && equalBytes(lastKey, e.key)) continue;
    lastKey = e.key;
    if (isDeadAt(e, o.now())) continue;
    yield { key: Buffer.from(e.key), value: Buffer.from(e.value), expiresAtMs: e.time };
    if (++emitted >= o.limit) return;
  }
}
