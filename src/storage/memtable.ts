/**
 * The memtable: a sorted in-memory map from user key to its versions (newest first), as a skip
 * list. Writers add versions; readers look up "the newest version with seq <= S" and iterate in
 * internal order (key ascending, seq descending). Iterators stay valid while writes go on (new
 * nodes are linked in; a reader filters by its snapshot seq), which is what lets range() read a
 * consistent snapshot while the memtable keeps taking writes.
 *
 * Size accounting (`bytes`) counts keys, values and a fixed per-version overhead; the engine
 * turns the memtable immutable once it passes EngineOptions.memtableBytes.
 */
import assert from 'node:assert';
import type { InternalEntry } from './internal_entry.js';

const LEVELS_MAX = 16;
/** Per-version bookkeeping bytes counted on top of key and value (object, array slot, node). */
export const MEMTABLE_ENTRY_OVERHEAD_BYTES = 64;

class Node {
  readonly next: (Node | null)[];
  constructor(
    readonly key: Buffer,
    /** Newest first. */
    readonly versions: InternalEntry[],
    height: number,
  ) {
    this.next = new Array<Node | null>(height).fill(null);
  }
}

export class Memtable {
  private readonly head = new Node(Buffer.alloc(0), [], LEVELS_MAX);
  private height = 1;
  private readonly update: Node[] = new Array<Node>(LEVELS_MAX);
  bytes = 0;
  /** Number of versions held. */
  entries = 0;
  /** Number of distinct keys. */
  keys = 0;
  maxSeq = 0;
  /** Sequence number of the first version added (0 when empty). */
  minSeq = 0;

  constructor(
    /** The commit log holding this memtable's writes. */
    readonly logNumber: number,
  ) {}

  get empty(): boolean {
    return this.entries === 0;
  }

  private randomHeight(): number {
    let h = 1;
    while (h < LEVELS_MAX && Math.random() < 0.25) h++;
    return h;
  }

  /** Last node with key < target at each level goes to this.update; returns the candidate. */
  private findGreaterOrEqual(key: Buffer, fillUpdate: boolean): Node | null {
    let x = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const nx = x.next[level];
        if (nx && Buffer.compare(nx.key, key) < 0) x = nx;
        else break;
      }
      if (fillUpdate) this.update[level] = x;
    }
    return x.next[0] ?? null;
  }

  /** Adds a version; seq must be higher than every seq already added (writes are ordered). */
  add(e: InternalEntry): void {
    assert(e.seq > this.maxSeq, 'memtable seqs must increase');
    const found = this.findGreaterOrEqual(e.key, true);
    if (found && found.key.equals(e.key)) {
      found.versions.unshift(e);
    } else {
      const h = this.randomHeight();
      if (h > this.height) {
        for (let level = this.height; level < h; level++) this.update[level] = this.head;
        this.height = h;
      }
      const node = new Node(e.key, [e], h);
      for (let level = 0; level < h; level++) {
        const prev = this.update[level]!;
        node.next[level] = prev.next[level] ?? null;
        prev.next[level] = node;
      }
      this.keys++;
    }
    if (this.entries === 0) this.minSeq = e.seq;
    this.entries++;
    this.maxSeq = e.seq;
    this.bytes += e.key.length + e.value.length + MEMTABLE_ENTRY_OVERHEAD_BYTES;
  }

  /** The newest version of key with seq <= seq, or undefined when the memtable has none. */
  get(key: Buffer, seq: number): InternalEntry | undefined {
    const node = this.findGreaterOrEqual(key, false);
    if (!node || !node.key.equals(key)) return undefined;
    for (const v of node.versions) if (v.seq <= seq) return v;
    return undefined;
  }

  /** A pull iterator in internal order from the first key >= gte. */
  iterator(gte?: Buffer): MemtableIterator {
    return new MemtableIterator(gte ? this.findGreaterOrEqual(gte, false) : (this.head.next[0] ?? null));
  }

  /** Number of distinct keys in [gte, lt) and their bytes (walks the range). */
  countRange(gte?: Buffer, lt?: Buffer): { keys: number; bytes: number } {
    let node = gte ? this.findGreaterOrEqual(gte, false) : (this.head.next[0] ?? null);
    let keys = 0;
    let bytes = 0;
    while (node && (!lt || Buffer.compare(node.key, lt) < 0)) {
      keys++;
      for (const v of node.versions) bytes += v.key.length + v.value.length;
      node = node.next[0] ?? null;
    }
    return { keys, bytes };
  }
}

/**
 * Pull iterator over a memtable in internal order. It snapshots a node's version list when it
 * arrives at the node, so a concurrent add to that key does not shift positions under it.
 */
export class MemtableIterator {
  private versions: InternalEntry[] = [];
  private i = 0;
  current: InternalEntry | undefined;
  constructor(private node: Node | null) {
    this.load();
  }
  private load(): void {
    while (this.node) {
      this.versions = this.node.versions.slice();
      this.i = 0;
      if (this.versions.length > 0) {
        this.current = this.versions[0];
        return;
      }
      this.node = this.node.next[0] ?? null;
    }
    this.current = undefined;
  }
  next(): void {
    if (!this.current) return;
    this.i++;
    if (this.i < this.versions.length) {
      this.current = this.versions[this.i];
      return;
    }
    this.node = this.node?.next[0] ?? null;
    this.load();
  }
}
