// ReplicaPutRounds (the replica side's merge queue) against a stand-in merge: puts queued in one
// synchronous stretch are one round; a round gives each key once (a key given again waits for
// the next round) and starts only after the previous round settled; every item is merged once
// and answered its own result; a failed merge fails only its round; the round caps.
import fc from 'fast-check';
import t from 'tap';
import { REPLICA_ROUND_ITEMS_MAX, ReplicaPutRounds } from '../../src/cluster/replica_put_rounds.js';
import type { ReplicaPutItem } from '../../src/coordinator/coordinator.js';

const item = (key: string, tag: string): ReplicaPutItem => ({ key: Buffer.from(key), encoded: Buffer.from(tag) });
const keysOf = (items: readonly ReplicaPutItem[]): string[] => items.map((i) => i.key.toString());
const tagsOf = (items: readonly ReplicaPutItem[]): string[] => items.map((i) => i.encoded!.toString());

/** A merge that records its calls and settles each when told to. */
function standIn(): {
  merge: (items: readonly ReplicaPutItem[]) => Promise<readonly unknown[]>;
  calls: { items: readonly ReplicaPutItem[]; answer: (results: readonly unknown[]) => void; fail: (err: unknown) => void }[];
} {
  const calls: { items: readonly ReplicaPutItem[]; answer: (results: readonly unknown[]) => void; fail: (err: unknown) => void }[] = [];
  return {
    calls,
    merge: (items) => new Promise((answer, fail) => calls.push({ items, answer, fail })),
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('one round per stretch; a key given again waits for the next round; results in order', async (t) => {
  const m = standIn();
  const rounds = new ReplicaPutRounds(m.merge);
  const p1 = rounds.put([item('a', 'a1'), item('b', 'b1'), item('a', 'a2')]);
  const p2 = rounds.put([item('c', 'c1'), item('b', 'b2')]);
  await turn();
  t.equal(m.calls.length, 1, 'both puts of the stretch: one merge');
  t.same(tagsOf(m.calls[0]!.items), ['a1', 'b1', 'c1'], 'each key once, in arrival order');
  const p3 = rounds.put([item('d', 'd1')]);
  await turn();
  t.equal(m.calls.length, 1, 'no second round while the first runs');
  m.calls[0]!.answer([undefined, 'b1 failed', undefined]);
  await turn();
  t.equal(m.calls.length, 2, 'the next round once the first settled');
  t.same(tagsOf(m.calls[1]!.items), ['a2', 'b2', 'd1'], 'carried items first, then the puts queued meanwhile');
  m.calls[1]!.answer(['a2 failed', undefined, undefined]);
  t.same(await p1, [undefined, 'b1 failed', 'a2 failed'], "the first put's results, item by item");
  t.same(await p2, [undefined, undefined]);
  t.same(await p3, [undefined]);
  t.same(rounds.stats, { rounds: 2, carried: 2 });
  await turn();
  t.equal(m.calls.length, 2, 'nothing queued: no round');
  // Idle again: the next put starts a round of its own.
  const p4 = rounds.put([item('a', 'a3')]);
  await turn();
  t.same(tagsOf(m.calls[2]!.items), ['a3']);
  m.calls[2]!.answer([undefined]);
  t.same(await p4, [undefined]);
  t.same(await rounds.put([]), [], 'no items: answered at once');
});

t.test('a merge that rejects or throws fails the items of its round only', async (t) => {
  const m = standIn();
  const rounds = new ReplicaPutRounds(m.merge);
  const p1 = rounds.put([item('a', 'a1'), item('a', 'a2')]);
  await turn();
  const boom = new Error('engine write failed');
  m.calls[0]!.fail(boom);
  await turn();
  t.same(keysOf(m.calls[1]!.items), ['a']);
  m.calls[1]!.answer([undefined]);
  t.same(await p1, [boom, undefined], 'the failed round: its item gets the error; the carried one its own result');

  const err = new Error('thrown');
  const throwing = new ReplicaPutRounds(() => {
    throw err;
  });
  t.same(await throwing.put([item('x', 'x1'), item('y', 'y1')]), [err, err], 'a merge that throws: every item of the round');
});

t.test('a round takes at most REPLICA_ROUND_ITEMS_MAX items, the first put whole', async (t) => {
  const m = standIn();
  const rounds = new ReplicaPutRounds(m.merge);
  const many = (prefix: string, n: number): ReplicaPutItem[] => Array.from({ length: n }, (_, i) => item(`${prefix}${i}`, `${prefix}${i}`));
  const big = rounds.put(many('big', REPLICA_ROUND_ITEMS_MAX + 10));
  const small = rounds.put(many('small', 3));
  await turn();
  t.equal(m.calls[0]!.items.length, REPLICA_ROUND_ITEMS_MAX + 10, 'a put over the cap is one round by itself');
  m.calls[0]!.answer([]);
  await big;
  await turn();
  t.same(keysOf(m.calls[1]!.items), ['small0', 'small1', 'small2'], 'the next put in the next round');
  m.calls[1]!.answer([undefined, undefined, undefined]);
  await small;
  const a = rounds.put(many('a', REPLICA_ROUND_ITEMS_MAX - 1));
  const b = rounds.put(many('b', 2));
  await turn();
  t.equal(m.calls[2]!.items.length, REPLICA_ROUND_ITEMS_MAX - 1, 'a put that would pass the cap waits');
  m.calls[2]!.answer([]);
  await a;
  await turn();
  t.equal(m.calls[3]!.items.length, 2);
  m.calls[3]!.answer([]);
  await b;
});

t.test('property: rounds never overlap, never give a key twice, merge each item once with its own result', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 6 }), fc.boolean(), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 12 }),
      async (puts) => {
        let running = 0;
        let overlap = false;
        const merged = new Map<string, number>();
        const rounds = new ReplicaPutRounds(async (items) => {
          running++;
          if (running > 1) overlap = true;
          const keys = keysOf(items);
          if (new Set(keys).size !== keys.length) throw new Error(`a key twice in one round: ${keys.join(',')}`);
          for (const tag of tagsOf(items)) merged.set(tag, (merged.get(tag) ?? 0) + 1);
          await turn();
          running--;
          return tagsOf(items).map((tag) => `ok ${tag}`);
        });
        const pending: Promise<readonly unknown[]>[] = [];
        const expected: string[][] = [];
        for (const [p, [keys, later, waits]] of puts.entries()) {
          if (later) for (let w = 0; w < waits; w++) await turn();
          const items = keys.map((k, i) => item(`k${k}`, `${p}.${i}`));
          expected.push(tagsOf(items).map((tag) => `ok ${tag}`));
          pending.push(rounds.put(items));
        }
        const results = await Promise.all(pending);
        t.notOk(overlap, 'no two rounds at once');
        t.same(results, expected, 'each item answered its own result');
        const all = expected.flat().map((s) => s.slice(3));
        t.same([...merged.keys()].sort(), [...all].sort(), 'every item merged');
        t.ok([...merged.values()].every((n) => n === 1), 'each once');
      },
    ),
    { numRuns: 200 },
  );
});

// The round's key table grows past its first size (a put is taken whole, whatever its length) and
// still finds a key given twice; the next round starts empty.
t.test('a round of many keys: each key once, a repeat carried, even past the key table growing', async (t) => {
  const m = standIn();
  const rounds = new ReplicaPutRounds(m.merge);
  const n = 3 * REPLICA_ROUND_ITEMS_MAX;
  const keys = Array.from({ length: n }, (_, i) => item(`k${i}`, 'first'));
  // Every 97th key again, after all the others (the table grew in between).
  const again = keys.filter((_, i) => i % 97 === 0).map((x) => item(x.key.toString(), 'again'));
  const p = rounds.put([...keys, ...again]);
  await turn();
  t.equal(m.calls[0]!.items.length, n, 'every distinct key in the first round');
  t.same(new Set(keysOf(m.calls[0]!.items)).size, n, 'none twice');
  t.same(tagsOf(m.calls[0]!.items), new Array(n).fill('first'));
  m.calls[0]!.answer(new Array(n).fill(undefined));
  await turn();
  t.same(keysOf(m.calls[1]!.items), keysOf(again), 'the repeats carried to the next round, all of them');
  m.calls[1]!.answer(new Array(again.length).fill(undefined));
  t.equal((await p).length, n + again.length);
  t.equal(rounds.stats.carried, again.length);
});
