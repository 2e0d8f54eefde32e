// The pure decisions of hinted handoff (src/cluster/handoff_plan.ts): which hints of a page are
// dropped as expired, which go in the next batch (key and byte caps), which the target
// acknowledged, and the token bucket that rate-limits delivery. Table tests plus a fast-check
// property over random pages.
import t from 'tap';
import fc from 'fast-check';
import { ackedHints, hintExpired, HintStatus, planBatch, TokenBucket, type HintMeta } from '../../src/cluster/handoff_plan.js';

interface H extends HintMeta {
  readonly id: number;
}
const h = (id: number, writtenAtMs: number, wireBytes = 10): H => ({ id, writtenAtMs, wireBytes });
const ids = (xs: readonly H[]): number[] => xs.map((x) => x.id);

t.test('hintExpired: strictly older than the window; window 0 never expires', async (t) => {
  t.equal(hintExpired(1000, 2000, 1000), false, 'exactly the window old: kept');
  t.equal(hintExpired(999, 2000, 1000), true);
  t.equal(hintExpired(0, 10 ** 12, 0), false);
});

t.test('planBatch: expired hints are dropped, never sent', async (t) => {
  const now = 100_000;
  const page = [h(1, now - 5000), h(2, now - 50), h(3, now - 6000), h(4, now)];
  const p = planBatch(page, now, 1000, { maxKeys: 10, maxBytes: 1000 });
  t.same(ids(p.expired), [1, 3]);
  t.same(ids(p.deliver), [2, 4]);
  t.same(ids(p.rest), []);
});

t.test('planBatch: key cap, then the rest of the page is a suffix (expired ones too)', async (t) => {
  const now = 10_000;
  const page = [h(1, now), h(2, 0), h(3, now), h(4, now), h(5, 0), h(6, now)];
  const p = planBatch(page, now, 1000, { maxKeys: 2, maxBytes: 1000 });
  t.same(ids(p.expired), [2]);
  t.same(ids(p.deliver), [1, 3]);
  t.same(ids(p.rest), [4, 5, 6], 'hint 5 is expired but after the cut: left for the next page');
});

t.test('planBatch: byte cap; a single oversize hint still goes alone', async (t) => {
  const page = [h(1, 0, 600), h(2, 0, 300), h(3, 0, 200), h(4, 0, 10)];
  const p = planBatch(page, 0, 0, { maxKeys: 100, maxBytes: 1000 });
  t.same(ids(p.deliver), [1, 2], '600 + 300 fit, + 200 would pass 1000');
  t.same(ids(p.rest), [3, 4]);
  const big = planBatch([h(1, 0, 5000), h(2, 0, 1)], 0, 0, { maxKeys: 100, maxBytes: 1000 });
  t.same(ids(big.deliver), [1], 'the first hint always fits');
  t.same(ids(big.rest), [2]);
});

t.test('planBatch property: a partition of the page, rest a suffix, caps respected', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ writtenAtMs: fc.integer({ min: 0, max: 2000 }), wireBytes: fc.integer({ min: 1, max: 500 }) }), { maxLength: 60 }),
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 3000 }),
      fc.integer({ min: 0, max: 1500 }),
      (raw, maxKeys, maxBytes, windowMs) => {
        const now = 2000;
        const page = raw.map((r, i) => ({ ...r, id: i }));
        const p = planBatch(page, now, windowMs, { maxKeys, maxBytes });
        const all = [...p.expired, ...p.deliver, ...p.rest].map((x) => x.id).sort((a, b) => a - b);
        if (JSON.stringify(all) !== JSON.stringify(page.map((x) => x.id))) return false;
        // rest is a suffix of the page; everything before it was dealt with
        const cut = page.length - p.rest.length;
        if (!p.rest.every((x, i) => x.id === cut + i)) return false;
        if (p.expired.some((x) => !hintExpired(x.writtenAtMs, now, windowMs))) return false;
        if (p.deliver.some((x) => hintExpired(x.writtenAtMs, now, windowMs))) return false;
        if (p.deliver.length > maxKeys) return false;
        const bytes = p.deliver.reduce((a, x) => a + x.wireBytes, 0);
        if (p.deliver.length > 1 && bytes > maxBytes) return false;
        // nothing left behind while there was room: a non-empty rest means the next hint did not fit
        if (p.rest.length > 0) {
          const next = p.rest[0]!;
          const fits = p.deliver.length < maxKeys && bytes + next.wireBytes <= maxBytes;
          if (!hintExpired(next.writtenAtMs, now, windowMs) && fits) return false;
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.pass('500 random pages');
});

t.test('ackedHints: exactly the hints answered OK; a misaligned answer acknowledges nothing', async (t) => {
  const sent = ['a', 'b', 'c'];
  t.same(ackedHints(sent, [HintStatus.OK, HintStatus.FAILED, HintStatus.OK]), ['a', 'c']);
  t.same(ackedHints(sent, [HintStatus.OK, HintStatus.OK]), [], 'short answer');
  t.same(ackedHints(sent, [0, 0, 0, 0]), [], 'long answer');
  t.same(ackedHints(sent, [7, 0, 0]), ['b', 'c'], 'an unknown status is not an ack');
});

t.test('TokenBucket: bursts up to its capacity, then the rate', async (t) => {
  const b = new TokenBucket(100, 50, 0);
  t.equal(b.waitMs(50, 0), 0, 'a full bucket lets a batch of its capacity go');
  b.take(50, 0);
  t.equal(b.waitMs(10, 0), 100, '10 keys at 100/s: 100 ms');
  t.equal(b.waitMs(10, 60), 40, 'refilled 6 of them after 60 ms');
  t.equal(b.waitMs(10, 100), 0);
  b.take(10, 100);
  t.equal(b.waitMs(500, 100), 500, 'oversize request: waits for a full bucket (50 keys = 500 ms)');
  t.equal(b.waitMs(500, 600), 0);
  b.take(500, 600);
  t.equal(b.waitMs(1, 600), 4510, 'the debt of the oversize request is paid back at the rate');
  const free = new TokenBucket(0, 1, 0);
  free.take(1_000_000, 0);
  t.equal(free.waitMs(1_000_000, 0), 0, 'rate 0: unlimited');
});

t.test('TokenBucket: delivered keys over time never exceed rate x time + capacity', async (t) => {
  const rate = 1000;
  const cap = 128;
  const b = new TokenBucket(rate, cap, 0);
  let now = 0;
  let sent = 0;
  while (now < 5000) {
    const w = b.waitMs(cap, now);
    now += w;
    b.take(cap, now);
    sent += cap;
  }
  t.ok(sent <= (rate * now) / 1000 + cap, `${sent} keys in ${now} ms at ${rate}/s`);
  t.ok(sent >= (rate * now) / 1000 - cap, 'and not far below the rate either');
});
