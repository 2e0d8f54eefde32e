import t from 'tap';
import { collectVersions, compactStream, mergeSources, type EntrySource } from '../../src/storage/compaction_merge.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';

const put = (seq: number, time = 0): InternalEntry => ({ key: Buffer.from('k'), seq, kind: KIND_PUT, time, value: Buffer.from(`v${seq}`) });
const del = (seq: number, time: number): InternalEntry => ({ key: Buffer.from('k'), seq, kind: KIND_DELETE, time, value: Buffer.alloc(0) });
const base = { snapshots: [] as number[], bottom: false, nowMs: 1000, graceMs: 100 };
const seqs = (es: InternalEntry[]): string[] => es.map((e) => `${e.kind === KIND_DELETE ? 'D' : 'P'}${e.seq}`);

const table: [string, InternalEntry[], typeof base, string[]][] = [
  ['shadowed versions dropped', [put(9), put(5), put(2)], base, ['P9']],
  ['a snapshot keeps the version it sees', [put(9), put(5), put(2)], { ...base, snapshots: [6] }, ['P9', 'P5']],
  ['snapshot on an exact seq', [put(9), put(5), put(2)], { ...base, snapshots: [2, 5] }, ['P9', 'P5', 'P2']],
  ['two snapshots in one stripe keep one version', [put(9), put(5), put(2)], { ...base, snapshots: [3, 4] }, ['P9', 'P2']],
  ['tombstone kept above the bottom', [del(9, 10), put(5)], base, ['D9']],
  ['old tombstone dropped at the bottom', [del(9, 10), put(5)], { ...base, bottom: true }, []],
  ['young tombstone kept at the bottom', [del(9, 950), put(5)], { ...base, bottom: true }, ['D9']],
  ['tombstone over a snapshot-visible value stays', [del(9, 10), put(5)], { ...base, bottom: true, snapshots: [6] }, ['D9', 'P5']],
  ['expired value becomes a tombstone', [put(9, 500)], base, ['D9']],
  ['expired long ago: dropped at the bottom', [put(9, 500)], { ...base, bottom: true }, []],
  ['expired recently: tombstone at the bottom', [put(9, 990)], { ...base, bottom: true }, ['D9']],
  ['not yet expired stays a value', [put(9, 2000)], { ...base, bottom: true }, ['P9']],
];
for (const [name, versions, opts, want] of table) {
  t.test(name, async (t) => {
    const out = collectVersions(versions, opts);
    t.same(seqs(out), want);
    const d = out.find((e) => e.seq === 9 && versions[0]!.kind === KIND_PUT && e.kind === KIND_DELETE);
    if (d) t.equal(d.time, versions[0]!.time, 'tombstone stamped with the expiry time');
  });
}

t.test('mergeSources orders by key then seq descending; compactStream marks key boundaries', async (t) => {
  const src = (es: InternalEntry[]): EntrySource => {
    let i = 0;
    return {
      current: es[0],
      next() {
        this.current = es[++i];
      },
    };
  };
  const e = (k: string, seq: number): InternalEntry => ({ key: Buffer.from(k), seq, kind: KIND_PUT, time: 0, value: Buffer.alloc(0) });
  const merged = [...mergeSources([src([e('a', 3), e('c', 1)]), src([e('a', 7), e('b', 2)]), src([])])];
  t.same(merged.map((x) => `${x.key}${x.seq}`), ['a7', 'a3', 'b2', 'c1']);
  const stream = [...compactStream(merged, base)].map((x) => (x ? `${x.key}${x.seq}` : '|'));
  t.same(stream, ['a7', '|', 'b2', '|', 'c1', '|']);
});
