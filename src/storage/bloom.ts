/**
 * Bloom filter over user keys, one per table. Consulted before any data block is read: a
 * negative answer is certain (never a false negative), a positive one is wrong with probability
 * about (1 - e^(-k n / m))^k for n keys in m bits with k probes.
 *
 * Probes use double hashing (Kirsch-Mitzenmacher): g_i = h1 + i * h2 mod m, with h1 and h2 two
 * independently seeded MurmurHash3 (x86, 32-bit) values, which keeps the false-positive rate at
 * the textbook figure (LevelDB's single-hash-plus-rotation is measurably worse at small m).
 *
 * Format:  filter := bits[ceil(m / 8)] k:u8        (m = 8 * byte count; 1 <= k <= 30)
 */
import { FormatError } from './varint.js';

const SEED1 = 0xbc9f1d34;
const SEED2 = 0x7a2b3c4d;
export const BLOOM_PROBES_MAX = 30;
/** A filter never has fewer bits than this (tiny tables would otherwise get useless filters). */
const BLOOM_BITS_MIN = 64;

export function murmur3(key: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const len = key.length;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= key[blocks + 2]! << 16;
    if (tail >= 2) k ^= key[blocks + 1]! << 8;
    k ^= key[blocks]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The number of probes that minimises false positives for a bits-per-key budget. */
export function bloomProbes(bitsPerKey: number): number {
  return Math.max(1, Math.min(BLOOM_PROBES_MAX, Math.round(bitsPerKey * Math.LN2)));
}

/** The theoretical false-positive rate of a filter with n keys, m bits and k probes. */
export function bloomTheoreticalFpRate(n: number, m: number, k: number): number {
  return Math.pow(1 - Math.exp((-k * n) / m), k);
}

/** Collects key hashes while a table is built, then lays out the filter. */
export class BloomBuilder {
  private h1: number[] = [];
  private h2: number[] = [];
  constructor(private readonly bitsPerKey: number) {}

  addKey(key: Uint8Array): void {
    this.h1.push(murmur3(key, SEED1));
    this.h2.push(murmur3(key, SEED2));
  }

  get keys(): number {
    return this.h1.length;
  }

  finish(): Buffer {
    const n = this.h1.length;
    const k = bloomProbes(this.bitsPerKey);
    const bytes = Math.ceil(Math.max(BLOOM_BITS_MIN, n * this.bitsPerKey) / 8);
    const m = bytes * 8;
    const out = Buffer.alloc(bytes + 1);
    for (let j = 0; j < n; j++) {
      const b = this.h2[j]!;
      let bit = modBits(this.h1[j]!, m);
      const step = modBits(b, m);
      for (let i = 0; i < k; i++) {
        out[bit >>> 3]! |= 1 << (bit & 7);
        bit += step;
        if (bit >= m) bit -= m;
      }
    }
    out[bytes] = k;
    return out;
  }
}

/** Checks a filter's shape; throws FormatError when it cannot be one. */
export function validateBloom(filter: Buffer): void {
  if (filter.length < 2) throw new FormatError('bloom filter too short');
  const k = filter[filter.length - 1]!;
  if (k < 1 || k > BLOOM_PROBES_MAX) throw new FormatError(`bloom filter probe count ${k}`);
}

/**
 * A key's two hashes, computed once by a point read that consults the filters of several
 * tables (every L0 table, one per level) instead of once per filter.
 */
export class BloomKey {
  readonly h1: number;
  readonly h2: number;
  constructor(key: Uint8Array) {
    this.h1 = murmur3(key, SEED1);
    this.h2 = murmur3(key, SEED2);
  }
}

/** False: key is certainly absent. True: key may be present. */
export function bloomMayContain(filter: Buffer, key: Uint8Array | BloomKey): boolean {
  const bytes = filter.length - 1;
  const m = bytes * 8;
  const k = filter[bytes]!;
  const a = key instanceof BloomKey ? key.h1 : murmur3(key, SEED1);
  const b = key instanceof BloomKey ? key.h2 : murmur3(key, SEED2);
  let bit = modBits(a, m);
  const step = modBits(b, m);
  for (let i = 0; i < k; i++) {
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    bit += step;
    if (bit >= m) bit -= m;
  }
  return true;
}

/**
 * h mod m for a hash h < 2^32 and 0 < m < 2^32, as h - m * floor(h / m): exact there (the
 * quotient's rounding error is below 1 / m), and not a call of C's fmod, which is what V8 makes
 * of % on a number over 2^31 (a murmur3 hash, half the time). Probe i is then
 * (h1 mod m + i * (h2 mod m)) mod m, which is h1 + i * h2 mod m: the same bits as before.
 */
function modBits(h: number, m: number): number {
  return h - m * Math.floor(h / m);
}
