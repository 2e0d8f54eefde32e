// The request deadline queue: one timer for every request of a coordinator. A fake clock and
// timer source drive it: entries expire in deadline order, never early, a removed entry never
// expires, an entry may re-add itself from onDeadline (get_fsm's hedge), a late timer expires
// everything due, and a random run of adds, removes and clock steps matches a plain model.
import t from 'tap';
import fc from 'fast-check';
import { DeadlineQueue, type DeadlineEntry } from '../../src/coordinator/deadline_queue.js';
import type { FsmTimers } from '../../src/coordinator/fsm_env.js';

/** A manual clock: timers fire only in advance(), at their time, in order. */
class FakeTimers implements FsmTimers {
  nowMs = 0;
  armed: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return this.nowMs;
  }
  after(ms: number, fn: () => void): () => void {
    const h = { at: this.nowMs + Math.max(0, ms), fn, live: true };
    this.armed.push(h);
    return () => {
      h.live = false;
    };
  }
  get liveTimers(): number {
    return this.armed.filter((h) => h.live).length;
  }
  /** Moves the clock to `to`, firing due timers in time order (each at its own time unless `late`). */
  advance(to: number, late = false): void {
    for (;;) {
      const due = this.armed.filter((h) => h.live && h.at <= to).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      if (!late) this.nowMs = Math.max(this.nowMs, due.at);
      else this.nowMs = to;
      due.fn();
    }
    this.nowMs = to;
  }
}

class Entry implements DeadlineEntry {
  deadlineAtMs = 0;
  deadlineSlot = -1;
  constructor(
    readonly name: string,
    readonly log: string[],
    readonly clock: FakeTimers,
    readonly onFire: (e: Entry) => void = () => undefined,
  ) {}
  onDeadline(): void {
    this.log.push(`${this.name}@${this.clock.nowMs}`);
    this.onFire(this);
  }
}

t.test('entries expire in deadline order, at their deadline, not before', async (t) => {
  const clock = new FakeTimers();
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const a = new Entry('a', log, clock);
  const b = new Entry('b', log, clock);
  const c = new Entry('c', log, clock);
  q.add(b, 20);
  q.add(a, 10);
  q.add(c, 30);
  t.equal(q.size, 3);
  clock.advance(9);
  t.same(log, [], 'nothing before the first deadline');
  clock.advance(25);
  t.same(log, ['a@10', 'b@20']);
  t.equal(a.deadlineSlot, -1, 'an expired entry is out of the queue');
  clock.advance(100);
  t.same(log, ['a@10', 'b@20', 'c@30']);
  t.equal(q.size, 0);
});

t.test('a removed entry never expires; removing twice or an unqueued entry is a no-op', async (t) => {
  const clock = new FakeTimers();
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  const a = new Entry('a', log, clock);
  const b = new Entry('b', log, clock);
  q.add(a, 10);
  q.add(b, 20);
  q.remove(a);
  q.remove(a);
  q.remove(new Entry('x', log, clock));
  clock.advance(50);
  t.same(log, ['b@20']);
  t.throws(() => {
    q.add(b, 60);
    q.add(b, 70);
  }, /queued twice/);
});

t.test('one timer for many requests: adding later deadlines arms nothing new', async (t) => {
  const clock = new FakeTimers();
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  for (let i = 0; i < 100; i++) q.add(new Entry(`e${i}`, log, clock), 1000 + i);
  t.equal(clock.armed.length, 1, 'armed once');
  q.add(new Entry('early', log, clock), 500);
  t.equal(clock.liveTimers, 1, 'an earlier deadline re-arms, cancelling the old timer');
  clock.advance(2000);
  t.equal(log.length, 101);
  t.equal(log[0], 'early@500');
});

t.test('onDeadline may re-add its entry (the hedge, then the deadline)', async (t) => {
  const clock = new FakeTimers();
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  let hedged = false;
  const e = new Entry('r', log, clock, (self) => {
    if (!hedged) {
      hedged = true;
      q.add(self, 100);
    }
  });
  q.add(e, 50);
  clock.advance(60);
  t.same(log, ['r@50']);
  clock.advance(200);
  t.same(log, ['r@50', 'r@100']);
});

t.test('a timer that fires late expires everything due, a re-added past deadline included', async (t) => {
  const clock = new FakeTimers();
  const q = new DeadlineQueue(clock);
  const log: string[] = [];
  let hedged = false;
  const r = new Entry('r', log, clock, (self) => {
    if (!hedged) {
      hedged = true;
      q.add(self, 40);
    }
  });
  q.add(r, 10);
  q.add(new Entry('a', log, clock), 20);
  q.add(new Entry('b', log, clock), 500);
  clock.advance(100, true);
  t.same(log, ['r@100', 'a@100', 'r@100'], 'all due at 100 ran once the timer came');
  clock.advance(1000);
  t.same(log, ['r@100', 'a@100', 'r@100', 'b@500']);
});

t.test('random adds, removes and clock steps match a model', async (t) => {
  type Op = { kind: 'add'; id: number; in: number } | { kind: 'remove'; id: number } | { kind: 'step'; by: number };
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), id: fc.integer({ min: 0, max: 15 }), in: fc.integer({ min: 0, max: 100 }) }),
    fc.record({ kind: fc.constant('remove' as const), id: fc.integer({ min: 0, max: 15 }) }),
    fc.record({ kind: fc.constant('step' as const), by: fc.integer({ min: 0, max: 60 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops: Op[]) => {
      const clock = new FakeTimers();
      const q = new DeadlineQueue(clock);
      const log: string[] = [];
      const entries = Array.from({ length: 16 }, (_, i) => new Entry(String(i), log, clock));
      /** Model: id -> deadline of the queued entries. */
      const model = new Map<number, number>();
      const expected: string[] = [];
      const step = (to: number): void => {
        // The model fires everything due by `to`, in deadline order (ties: any order, so sort the log slice).
        const due = [...model].filter(([, at]) => at <= to).sort((a, b) => a[1] - b[1]);
        for (const [id, at] of due) {
          model.delete(id);
          expected.push(`${id}@${at}`);
        }
        clock.advance(to);
      };
      for (const o of ops) {
        if (o.kind === 'add') {
          if (model.has(o.id)) continue;
          model.set(o.id, clock.nowMs + o.in);
          q.add(entries[o.id]!, clock.nowMs + o.in);
        } else if (o.kind === 'remove') {
          model.delete(o.id);
          q.remove(entries[o.id]!);
        } else {
          step(clock.nowMs + o.by);
        }
        if (q.size !== model.size) return false;
      }
      step(clock.nowMs + 1000);
      const norm = (xs: string[]): string[] => [...xs].sort();
      return JSON.stringify(norm(log)) === JSON.stringify(norm(expected)) && log.every((x) => Number(x.split('@')[1]) <= clock.nowMs);
    }),
    { numRuns: 300 },
  );
  t.pass('model agrees');
});
