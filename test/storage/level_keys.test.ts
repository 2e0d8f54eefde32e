/** LevelKeys.firstAtOrAbove agrees with a linear search (shared prefixes, short keys, 0x00 bytes). */
import t from 'tap';
import fc from 'fast-check';
import { LevelKeys } from '../../src/storage/level_keys.js';

t.test('firstAtOrAbove agrees with a linear search', async (t) => {
  const byteArb = fc.constantFrom(0x00, 0x01, 0x61, 0xff);
  const levelArb = fc.record({
    prefix: fc.uint8Array({ maxLength: 6 }),
    tails: fc.uniqueArray(fc.array(byteArb, { maxLength: 7 }), { maxLength: 30, selector: (a) => Buffer.from(a).toString('hex') }),
  });
  const probeArb = fc.array(fc.oneof(byteArb, fc.constantFrom(0x02, 0x62)), { maxLength: 12 });
  fc.assert(
    fc.property(levelArb, fc.array(probeArb, { minLength: 1, maxLength: 20 }), fc.boolean(), ({ prefix, tails }, probes, probeWithPrefix) => {
      const largest = tails.map((tail) => Buffer.concat([Buffer.from(prefix), Buffer.from(tail)])).sort(Buffer.compare);
      const keys = new LevelKeys(largest);
      for (const p of probes) {
        const probe = probeWithPrefix ? Buffer.concat([Buffer.from(prefix), Buffer.from(p)]) : Buffer.from(p);
        let want = 0;
        while (want < largest.length && Buffer.compare(largest[want]!, probe) < 0) want++;
        const got = keys.firstAtOrAbove(probe);
        if (got !== want) throw new Error(`probe ${probe.toString('hex')} over [${largest.map((k) => k.toString('hex'))}]: ${got}, linear ${want}`);
      }
    }),
    { numRuns: 500 },
  );
  t.pass('agrees');
});
