import t from 'tap';
import fc from 'fast-check';
import { BloomKey, bloomMayContain, bloomProbes, bloomTheoreticalFpRate, BloomBuilder, murmur3, validateBloom } from '../../src/storage/bloom.js';

for (const bitsPerKey of [6, 10, 16]) {
  t.test(`bits per key ${bitsPerKey}: no false negatives, false positives within 2x of theory`, async (t) => {
    const n = 20000;
    const b = new BloomBuilder(bitsPerKey);
    for (let i = 0; i < n; i++) b.addKey(Buffer.from(`present-key-${i}`));
    const filter = b.finish();
    validateBloom(filter);
    let fn = 0;
    for (let i = 0; i < n; i++) if (!bloomMayContain(filter, Buffer.from(`present-key-${i}`))) fn++;
    t.equal(fn, 0, 'never a false negative');
    const probes = 200000;
    let fp = 0;
    let hashedDiffers = 0;
    for (let i = 0; i < probes; i++) {
      const key = Buffer.from(`absent-${i}-x`);
      const may = bloomMayContain(filter, key);
      if (may) fp++;
      if (bloomMayContain(filter, new BloomKey(key)) !== may) hashedDiffers++;
    }
    t.equal(hashedDiffers, 0, 'a key hashed once (BloomKey) answers as the key itself');
    const rate = fp / probes;
    const m = (filter.length - 1) * 8;
    const theory = bloomTheoreticalFpRate(n, m, bloomProbes(bitsPerKey));
    t.ok(rate <= 2 * theory, `measured ${rate.toFixed(5)} vs theory ${theory.toFixed(5)}`);
    t.ok(rate >= theory / 2, `not implausibly low either (${rate.toFixed(5)})`);
  });
}

t.test('empty and tiny filters; a damaged probe count is rejected', async (t) => {
  const b = new BloomBuilder(10);
  const f = b.finish();
  t.notOk(bloomMayContain(f, Buffer.from('x')));
  const one = new BloomBuilder(10);
  one.addKey(Buffer.alloc(0));
  const g = one.finish();
  t.ok(bloomMayContain(g, Buffer.alloc(0)));
  const bad = Buffer.from(g);
  bad[bad.length - 1] = 200;
  t.throws(() => validateBloom(bad));
});

t.test('probe bits are h1 + i * h2 mod m exactly (filter bytes and answers against the formula), hashes over 2^31 included', async (t) => {
  // The reference: the formula in doubles, exact here (h1 + i * h2 < 2^37), with bloom.ts's
  // seeds (tables on disk hold filters made so: the bits must not change).
  const reference = (keys: Buffer[], bitsPerKey: number): Buffer => {
    const k = bloomProbes(bitsPerKey);
    const bytes = Math.ceil(Math.max(64, keys.length * bitsPerKey) / 8);
    const m = bytes * 8;
    const out = Buffer.alloc(bytes + 1);
    for (const key of keys) {
      const a = murmur3(key, 0xbc9f1d34);
      const b = murmur3(key, 0x7a2b3c4d);
      for (let i = 0; i < k; i++) {
        const bit = (a + i * b) % m;
        out[bit >>> 3]! |= 1 << (bit & 7);
      }
    }
    out[bytes] = k;
    return out;
  };
  const refMay = (filter: Buffer, key: Buffer): boolean => {
    const m = (filter.length - 1) * 8;
    const a = murmur3(key, 0xbc9f1d34);
    const b = murmur3(key, 0x7a2b3c4d);
    for (let i = 0; i < filter[filter.length - 1]!; i++) {
      const bit = (a + i * b) % m;
      if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  };
  let highHashes = 0;
  fc.assert(
    fc.property(fc.uniqueArray(fc.uint8Array({ maxLength: 24 }), { maxLength: 300, selector: (u) => Buffer.from(u).toString('hex') }), fc.integer({ min: 1, max: 30 }), fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 50 }), (raw, bitsPerKey, probes) => {
      const keys = raw.map((u) => Buffer.from(u));
      const builder = new BloomBuilder(bitsPerKey);
      for (const key of keys) builder.addKey(key);
      const filter = builder.finish();
      if (!filter.equals(reference(keys, bitsPerKey))) return false;
      for (const key of [...keys, ...probes.map((u) => Buffer.from(u))]) {
        if (murmur3(key, 0xbc9f1d34) >= 2 ** 31) highHashes++;
        const want = refMay(filter, key);
        if (bloomMayContain(filter, key) !== want || bloomMayContain(filter, new BloomKey(key)) !== want) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.ok(highHashes > 0, 'hashes of 2^31 and over were probed');
});
