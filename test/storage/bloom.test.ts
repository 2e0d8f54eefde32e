import t from 'tap';
import { BloomKey, bloomMayContain, bloomProbes, bloomTheoreticalFpRate, BloomBuilder, validateBloom } from '../../src/storage/bloom.js';

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
