// The maintained live-key count against a model (fast-check), the key lock's guarantees, and
// the SCAN cursor's encoding.
import t from 'tap';
import fc from 'fast-check';
import { LiveKeyCounter, type Liveness } from '../../src/server/live_count.js';
import { KeyLock } from '../../src/server/key_lock.js';
import { cursorAt, cursorLowerBound, parseCursor } from '../../src/server/scan_cursor.js';
import { dataKey } from '../../src/server/key_layout.js';

type Op = { kind: 'write'; key: number; live: boolean; ttl: number } | { kind: 'tick'; ms: number } | { kind: 'read' };

t.test('LiveKeyCounter equals a model that recomputes liveness', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), key: fc.nat(7), live: fc.boolean(), ttl: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })) }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    fc.record({ kind: fc.constant('read' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops: Op[]) => {
      const counter = new LiveKeyCounter();
      const model = new Map<number, { expiresAtMs: number }>();
      let now = 1000;
      const liveAt = (k: number): Liveness => {
        const m = model.get(k);
        if (m === undefined || (m.expiresAtMs > 0 && now > m.expiresAtMs)) return { live: false, expiresAtMs: 0 };
        return { live: true, expiresAtMs: m.expiresAtMs };
      };
      for (const o of ops) {
        if (o.kind === 'tick') now += o.ms;
        else if (o.kind === 'write') {
          const before = liveAt(o.key);
          if (o.live) model.set(o.key, { expiresAtMs: o.ttl === 0 ? 0 : now + o.ttl });
          else model.delete(o.key);
          counter.onWrite(String(o.key), before, liveAt(o.key), now);
        } else {
          const keys = [...model.keys()].filter((k) => liveAt(k).live);
          if (counter.keys(now) !== keys.length) return false;
          if (counter.expires(now) !== keys.filter((k) => liveAt(k).expiresAtMs > 0).length) return false;
        }
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random histories agree with the model');
});

t.test('LiveKeyCounter turns inexact past its cap', async (t) => {
  const c = new LiveKeyCounter(2);
  for (let i = 0; i < 3; i++) c.onWrite(`k${i}`, { live: false, expiresAtMs: 0 }, { live: true, expiresAtMs: 100 }, 0);
  t.notOk(c.exact);
  c.reset();
  t.ok(c.exact);
});

t.test('KeyLock: FIFO per key, independent keys, sorted multi-key acquisition', async (t) => {
  const lock = new KeyLock();
  const order: string[] = [];
  const r1 = await lock.acquire('a');
  const p2 = lock.acquire('a').then((r) => {
    order.push('a2');
    return r;
  });
  const p3 = lock.acquire('a').then((r) => {
    order.push('a3');
    r();
  });
  const rb = await lock.acquire('b');
  order.push('b');
  rb();
  t.same(order, ['b'], 'another key does not wait');
  r1();
  (await p2)();
  await p3;
  t.same(order, ['b', 'a2', 'a3'], 'waiters run in arrival order');
  t.equal(lock.heldKeys, 0);
  // Two multi-key holders in opposite orders cannot deadlock.
  const m1 = lock.acquireMany(['x', 'y', 'x']);
  const m2 = lock.acquireMany(['y', 'x']);
  (await m1)();
  (await m2)();
  t.equal(lock.heldKeys, 0);
  const r = await lock.acquire('z');
  r();
  t.throws(() => r(), /released twice/);
});

t.test('SCAN cursors: parse like strtoul, resume at or before the group', async (t) => {
  t.equal(parseCursor(Buffer.from('0')), 0n);
  t.equal(parseCursor(Buffer.from('')), 0n);
  t.equal(parseCursor(Buffer.from('+7')), 7n);
  t.equal(parseCursor(Buffer.from('-1')), (1n << 64n) - 1n);
  t.equal(parseCursor(Buffer.from('18446744073709551615')), (1n << 64n) - 1n);
  t.equal(parseCursor(Buffer.from('18446744073709551616')), undefined);
  t.equal(parseCursor(Buffer.from(' 1')), undefined);
  t.equal(parseCursor(Buffer.from('1x')), undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
      const ek = dataKey(Buffer.from(bytes));
      const c = cursorAt(ek);
      const bound = cursorLowerBound(c)!;
      // The bound sorts at or before the key, and every key with the same group maps back to c.
      return Buffer.compare(bound, ek) <= 0 && cursorAt(bound) === c && c > 0n && c <= 1n << 62n;
    }),
    { numRuns: 2000 },
  );
  t.equal(cursorLowerBound((1n << 62n) + 1n), undefined, 'past the last slot');
});
