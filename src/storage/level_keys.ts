/**
 * The largest keys of a sorted, non-overlapping level (L1 and below), searched the way findBlock
 * searches a table's index: a point read binary-searches the 4-byte words of the keys after the
 * prefix all of them share (one small array, wordAt in bytes.ts) and compares a whole key only
 * on a tie. With random point reads the level's key Buffers are cold in the CPU caches, and each
 * step of a search over them loaded a Buffer object, then its bytes.
 */
import { compareBytes, wordAt } from './bytes.js';

export class LevelKeys {
  private readonly prefixLen: number;
  private readonly words: Uint32Array;

  /** largest: the level's tables' largest keys, in order. */
  constructor(private readonly largest: readonly Buffer[]) {
    const n = largest.length;
    let p = 0;
    if (n > 0) {
      const a = largest[0]!;
      const z = largest[n - 1]!;
      const max = Math.min(a.length, z.length);
      while (p < max && a[p] === z[p]) p++;
    }
    this.prefixLen = p;
    this.words = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.words[i] = wordAt(largest[i]!, p, largest[i]!.length);
  }

  /** The first i whose largest key >= key; the count when none is. */
  firstAtOrAbove(key: Uint8Array): number {
    const n = this.words.length;
    if (n === 0) return 0;
    // Off the shared prefix, key is below or above every largest key.
    const first = this.largest[0]!;
    const p = this.prefixLen;
    for (let j = 0; j < p; j++) {
      if (j >= key.length) return 0;
      const d = key[j]! - first[j]!;
      if (d !== 0) return d < 0 ? 0 : n;
    }
    const w = wordAt(key, p, key.length);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const mw = this.words[mid]!;
      if (mw < w || (mw === w && compareBytes(this.largest[mid]!, key) < 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
