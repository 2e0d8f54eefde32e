import t from 'tap';
import { levelMaxBytes, levelScores, minOverlapIndex, pickCompaction, type PickerConfig, type PickerTable } from '../../src/storage/compaction_picker.js';

const MiB = 1024 * 1024;
const cfg: PickerConfig = { l0Trigger: 4, levelBaseBytes: 10 * MiB, levelRatio: 10, maxInputBytes: 64 * MiB };
let num = 1;
function tbl(lo: string, hi: string, size = 2 * MiB, tombstones = 0): PickerTable {
  return { fileNumber: num++, size, smallestKey: Buffer.from(lo), largestKey: Buffer.from(hi), tombstones };
}
function levels(...ls: PickerTable[][]): PickerTable[][] {
  const out = ls.slice();
  while (out.length < 7) out.push([]);
  return out;
}
const ids = (ts: PickerTable[]): number[] => ts.map((x) => x.fileNumber);

t.test('level budgets grow by the ratio', async (t) => {
  t.equal(levelMaxBytes(1, cfg), 10 * MiB);
  t.equal(levelMaxBytes(2, cfg), 100 * MiB);
  t.equal(levelMaxBytes(3, cfg), 1000 * MiB);
});

t.test('nothing to do below every trigger', async (t) => {
    t.equal(pickCompaction(levels([tbl('a', 'z'), tbl('a', 'z'), tbl('a', 'z')], [tbl('a', 'c')]), cfg), undefined);
    t.equal(pickCompaction(levels(), cfg), undefined);
});

t.test('L0 at the trigger: all L0 tables plus the overlapping L1 tables', async (t) => {
    const l0 = [tbl('d', 'f'), tbl('b', 'e'), tbl('c', 'd'), tbl('e', 'g')]; // newest first
    const l1 = [tbl('a', 'a'), tbl('b', 'c'), tbl('f', 'h'), tbl('x', 'z')];
    const p = pickCompaction(levels(l0, l1), cfg)!;
    t.equal(p.level, 0);
    t.equal(p.outputLevel, 1);
    t.same(ids(p.inputs), ids(l0.slice().reverse()), 'oldest first');
    t.same(ids(p.overlaps), ids([l1[1]!, l1[2]!]));
    t.equal(p.bottom, true);
    t.equal(p.trivialMove, false);
    t.equal(p.score, 1);
});

t.test('L0 input bounded by maxInputBytes: the oldest tables only', async (t) => {
    const l0 = [tbl('a', 'b', 30 * MiB), tbl('a', 'b', 30 * MiB), tbl('a', 'b', 30 * MiB), tbl('a', 'b', 30 * MiB)];
    const p = pickCompaction(levels(l0), cfg)!;
    t.same(ids(p.inputs), ids([l0[3]!, l0[2]!]));
});

t.test('L1 over budget: one table after the compact pointer, round-robin', async (t) => {
    const l1 = [tbl('a', 'c', 4 * MiB), tbl('d', 'f', 4 * MiB), tbl('g', 'i', 4 * MiB)];
    const l2 = [tbl('b', 'e'), tbl('h', 'k'), tbl('m', 'n')];
    const ls = levels([], l1, l2);
    const first = pickCompaction(ls, cfg)!;
    t.equal(first.level, 1);
    t.same(ids(first.inputs), ids([l1[0]!]));
    t.same(ids(first.overlaps), ids([l2[0]!]));
    const second = pickCompaction(ls, cfg, [undefined, Buffer.from('c')])!;
    t.same(ids(second.inputs), ids([l1[1]!]));
    t.same(ids(second.overlaps), ids([l2[0]!]));
    const third = pickCompaction(ls, cfg, [undefined, Buffer.from('f')])!;
    t.same(ids(third.inputs), ids([l1[2]!]));
    t.same(ids(third.overlaps), ids([l2[1]!]));
    const wrap = pickCompaction(ls, cfg, [undefined, Buffer.from('i')])!;
    t.same(ids(wrap.inputs), ids([l1[0]!]), 'wraps around');
});

t.test('no overlap below: trivial move; bottom only when nothing deeper overlaps', async (t) => {
    const l1 = [tbl('a', 'c', 11 * MiB)];
    const l3 = [tbl('b', 'b')];
    const p = pickCompaction(levels([], l1, [], l3), cfg)!;
    t.equal(p.trivialMove, true);
    t.equal(p.bottom, false, 'L3 overlaps the range');
    const q = pickCompaction(levels([], [tbl('a', 'c', 11 * MiB)], [], [tbl('x', 'y')]), cfg)!;
    t.equal(q.bottom, true);
});

t.test('the highest score wins', async (t) => {
    const l0 = [tbl('a', 'b'), tbl('a', 'b'), tbl('a', 'b'), tbl('a', 'b'), tbl('a', 'b')]; // 1.25
    const l1 = [tbl('a', 'c', 15 * MiB)]; // 1.5
    const scores = levelScores(levels(l0, l1), cfg);
    t.equal(scores[0], 1.25);
    t.equal(scores[1], 1.5);
    t.equal(pickCompaction(levels(l0, l1), cfg)!.level, 1);
    t.equal(scores.length, 6, 'the last level is never a source');
});

t.test("min-overlap: the Ln table with the least overlap below per byte; ties in round-robin order", async (t) => {
  const mo: PickerConfig = { ...cfg, pick: 'min-overlap' };
  const l1 = [tbl('a', 'c', 4 * MiB), tbl('d', 'f', 4 * MiB), tbl('g', 'i', 4 * MiB)];
  // a-c overlaps 8 MiB below (ratio 2), d-f 2 MiB (0.5), g-i 4 MiB (1).
  const l2 = [tbl('b', 'b', 4 * MiB), tbl('c', 'c', 4 * MiB), tbl('e', 'e', 2 * MiB), tbl('h', 'h', 4 * MiB), tbl('x', 'z', 9 * MiB)];
  const p = pickCompaction(levels([], l1, l2), mo)!;
  t.equal(p.level, 1);
  t.same(ids(p.inputs), ids([l1[1]!]));
  t.same(ids(p.overlaps), ids([l2[2]!]));
  t.same(ids(pickCompaction(levels([], l1, l2), cfg)!.inputs), ids([l1[0]!]), 'round-robin (the default) takes the first');
  // Equal ratios: the first at or after the compact pointer, wrapping around.
  const even = [tbl('a', 'c', 4 * MiB), tbl('d', 'f', 4 * MiB), tbl('g', 'i', 4 * MiB)];
  const below = [tbl('b', 'b'), tbl('e', 'e'), tbl('h', 'h')];
  t.equal(minOverlapIndex(even, below, 0), 0);
  t.equal(minOverlapIndex(even, below, 2), 2);
  t.same(ids(pickCompaction(levels([], even, below), mo, [undefined, Buffer.from('c')])!.inputs), ids([even[1]!]));
  t.same(ids(pickCompaction(levels([], even, below), mo, [undefined, Buffer.from('i')])!.inputs), ids([even[0]!]), 'wraps around');
  // Nothing below: ratio 0, a trivial move.
  const q = pickCompaction(levels([], [tbl('a', 'c', 6 * MiB), tbl('p', 'q', 6 * MiB)], [tbl('a', 'b')]), mo)!;
  t.equal(q.inputs[0]!.smallestKey.toString(), 'p');
  t.equal(q.trivialMove, true);
});
