// The bus connection's table of requests awaiting a response (pending_table.ts): a random run of
// adds and takes, with ids as the connection makes them (consecutive, wrapping at 2^32 - 1, a
// few kept pending for long as timed-out requests are) and with colliding ids, matches a Map,
// through growth of the table; entries in one probe run stay findable whichever of them leaves.
import t from 'tap';
import fc from 'fast-check';
import { PendingTable } from '../../src/cluster/pending_table.js';

interface E {
  readonly id: number;
  readonly n: number;
}

type Op = { kind: 'add' } | { kind: 'take'; pick: number } | { kind: 'takeMissing'; delta: number } | { kind: 'skip'; by: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Op>({ kind: 'add' }) },
  { weight: 4, arbitrary: fc.nat(1000).map<Op>((pick) => ({ kind: 'take', pick })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map<Op>((delta) => ({ kind: 'takeMissing', delta })) },
  // A jump of the id counter by a multiple of the table size: the same home slots again.
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }).map<Op>((k) => ({ kind: 'skip', by: k * 64 })) },
);

t.test('a random run matches a Map', async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 600 }), fc.integer({ min: 1, max: 0xffff_ffff }), (ops, firstId) => {
      const table = new PendingTable<E>();
      const model = new Map<number, E>();
      let next = firstId;
      let n = 0;
      const nextId = (): number => {
        const id = next;
        next = next >= 0xffff_ffff ? 1 : next + 1;
        return id;
      };
      for (const op of ops) {
        if (op.kind === 'add') {
          let id = nextId();
          while (model.has(id)) id = nextId();
          const e = { id, n: n++ };
          table.add(e);
          model.set(id, e);
        } else if (op.kind === 'take') {
          const keys = [...model.keys()];
          if (keys.length === 0) continue;
          const id = keys[op.pick % keys.length]!;
          if (table.take(id) !== model.get(id)) return false;
          model.delete(id);
          if (table.has(id) || table.get(id) !== undefined) return false;
        } else if (op.kind === 'takeMissing') {
          const id = (next + op.delta) % 0xffff_ffff || 1;
          if (model.has(id)) continue;
          if (table.take(id) !== undefined) return false;
        } else {
          for (let i = 0; i < op.by; i++) nextId();
        }
        if (table.size !== model.size) return false;
      }
      for (const [id, e] of model) if (table.get(id) !== e) return false;
      const listed = table.entries();
      return listed.length === model.size && listed.every((e) => model.get(e.id) === e);
    }),
    { numRuns: 300 },
  );
});

t.test('colliding ids in one probe run: taking any of them keeps the others findable', async (t) => {
  // 0, 64, 128, ... share home slot 0 of the 64-slot table; 1 and 65 follow them in the same run.
  const ids = [0, 64, 128, 1, 192, 65, 2];
  for (let k = 0; k < ids.length; k++) {
    const table = new PendingTable<E>();
    for (const id of ids) table.add({ id, n: id });
    t.equal(table.take(ids[k]!)?.id, ids[k], `take ${ids[k]}`);
    for (const id of ids) if (id !== ids[k]) t.equal(table.get(id)?.id, id, `${id} still found after taking ${ids[k]}`);
    t.equal(table.size, ids.length - 1);
  }
});

t.test('an id may not be added twice; clear empties the table', async (t) => {
  const table = new PendingTable<E>();
  table.add({ id: 7, n: 0 });
  t.throws(() => table.add({ id: 7, n: 1 }), /pending already/);
  for (let id = 100; id < 300; id++) table.add({ id, n: id });
  t.equal(table.size, 201);
  table.clear();
  t.equal(table.size, 0);
  t.equal(table.get(7), undefined);
  t.same(table.entries(), []);
  table.add({ id: 7, n: 2 });
  t.equal(table.get(7)?.n, 2);
});
