import t from 'tap';
import { alignSlices, inSlice, planSlices, type Slice } from '../../src/storage/compaction_slices.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';
import { blockLastKey, blockSizeAt, findBlock, FOOTER_BYTES, parseFooter, parseIndex, TableBuilder, type TableIndex } from '../../src/storage/table_format.js';
import { builtTableBytes, runBuildJob, type BuildInput, type BuildJob } from '../../src/storage/table_job.js';
import { TableBufferIterator } from '../../src/storage/table_format.js';

const key = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(6, '0')}`);

/** A table of keys start, start+step, ...; every 5th key has 3 versions, every 11th newest is a tombstone. */
function table(start: number, step: number, count: number, seqBase: number): Buffer {
  const b = new TableBuilder({ blockBytes: 512, bloomBitsPerKey: 10, compression: 'none' });
  for (let n = 0; n < count; n++) {
    const i = start + n * step;
    const versions = i % 5 === 0 ? 3 : 1;
    for (let v = versions; v >= 1; v--) {
      const seq = seqBase + 3 * i + v;
      const del = i % 11 === 0 && v === versions;
      b.add({ key: key(i), seq, kind: del ? KIND_DELETE : KIND_PUT, time: del ? 1 : 0, value: del ? Buffer.alloc(0) : Buffer.from(`v${seq}`.repeat(6)) });
    }
  }
  return b.finish().bytes;
}

function indexOf(file: Buffer): TableIndex {
  const footer = parseFooter(file.subarray(file.length - FOOTER_BYTES), file.length);
  return parseIndex(file.subarray(footer.indexOffset, footer.indexOffset + footer.indexLen), footer);
}

/** Blocks [from, to] of a table file that hold the slice, found the way TableReader.sliceBlocks does. */
function sliceInput(file: Buffer, idx: TableIndex, slice: Slice): BuildInput | undefined {
  const from = slice.after ? findBlock(idx, slice.after, 0) : 0;
  const to = slice.upTo ? Math.min(idx.count - 1, findBlock(idx, slice.upTo, 0)) : idx.count - 1;
  if (from > to) return undefined;
  const sizes: number[] = [];
  for (let b = from; b <= to; b++) sizes.push(blockSizeAt(idx, b));
  return { kind: 'blocks', bytes: file.subarray(idx.offsets[from]!, idx.offsets[to + 1]!), blockSizes: sizes };
}

const all = (bytes: Uint8Array[]): InternalEntry[] => {
  const out: InternalEntry[] = [];
  for (const b of bytes) for (const it = new TableBufferIterator(Buffer.from(b.buffer, b.byteOffset, b.byteLength)); it.current; it.next()) out.push(it.current);
  return out;
};
const show = (es: InternalEntry[]): string[] => es.map((e) => `${e.key.toString()}@${e.seq}${e.kind === KIND_DELETE ? 'D' : ''}`);

t.test('slices: ordered boundaries, every key in exactly one slice, about sliceBytes each', async (t) => {
  const files = [table(0, 1, 3000, 0), table(1, 2, 1500, 100_000), table(5, 3, 900, 200_000)];
  const idxs = files.map(indexOf);
  const total = idxs.reduce((s, idx) => s + idx.offsets[idx.count]!, 0);
  const sliceBytes = 16 * 1024;
  const slices = planSlices(
    idxs.map((idx) => ({ count: idx.count, lastKey: (b) => blockLastKey(idx, b), size: (b) => blockSizeAt(idx, b) })),
    sliceBytes,
  );
  t.ok(slices.length >= Math.floor(total / sliceBytes / 2) && slices.length <= Math.ceil(total / sliceBytes) + 1, `${slices.length} slices for ${total} bytes`);
  t.equal(slices[0]!.after, undefined);
  t.equal(slices[slices.length - 1]!.upTo, undefined);
  for (let i = 1; i < slices.length; i++) {
    t.ok(slices[i]!.after!.equals(slices[i - 1]!.upTo!), 'contiguous');
    if (i > 1) t.ok(Buffer.compare(slices[i - 1]!.after!, slices[i]!.after!) < 0, 'ascending');
  }
  let misplaced = 0;
  for (let i = 0; i < 3200; i++) if (slices.filter((s) => inSlice(s, key(i))).length !== 1) misplaced++;
  t.equal(misplaced, 0);
  t.same(planSlices([], sliceBytes), [{ after: undefined, upTo: undefined }], 'no input: one unbounded slice');

  // Sliced jobs over block spans produce exactly what one whole-table job produces.
  const gc = { snapshots: [150_000], bottom: true, nowMs: 10, graceMs: 0 };
  const build = { blockBytes: 512, bloomBitsPerKey: 10, compression: 'none' as const };
  const whole: BuildJob = { inputs: files.map((f) => ({ kind: 'table' as const, bytes: f })), gc, build, targetFileBytes: 8192 };
  const want = all(runBuildJob(whole).tables.map(builtTableBytes));
  const got: InternalEntry[] = [];
  let entriesIn = 0;
  for (const slice of slices) {
    const inputs = files.map((f, n) => sliceInput(f, idxs[n]!, slice)).filter((x): x is BuildInput => x !== undefined);
    const r = runBuildJob({ inputs, gc, build, targetFileBytes: 8192, slice });
    entriesIn += r.entriesIn;
    got.push(...all(r.tables.map(builtTableBytes)));
  }
  t.ok(want.length > 1000, `${want.length} entries out`);
  t.same(show(got), show(want), 'sliced output equals the unsliced output');
  t.equal(entriesIn, runBuildJob(whole).entriesIn, 'every input entry read by exactly one slice');
});

t.test('alignSlices: inner boundaries move down to the nearest grandparent bound above the previous boundary', async (t) => {
  const k = (i: number): Buffer => key(i);
  const slices: Slice[] = [
    { after: undefined, upTo: k(100) },
    { after: k(100), upTo: k(200) },
    { after: k(200), upTo: k(210) },
    { after: k(210), upTo: undefined },
  ];
  // 100 -> 95; 200 -> 150 (the largest bound <= 200); 210: the largest bound <= 210 is 150, not
  // above the previous boundary (150): stays 210.
  const bounds = [10, 95, 120, 150, 300].map((i) => new Uint8Array(k(i)));
  const got = alignSlices(slices, bounds);
  const show = (b: Buffer | undefined): string => (b ? b.toString() : '-');
  t.same(
    got.map((s) => `${show(s.after)}..${show(s.upTo)}`),
    ['-..key-000095', 'key-000095..key-000150', 'key-000150..key-000210', 'key-000210..-'],
  );
  for (let i = 1; i < got.length; i++) t.ok(got[i]!.after!.equals(got[i - 1]!.upTo!), 'contiguous');
  let misplaced = 0;
  for (let i = 0; i < 400; i++) if (got.filter((s) => inSlice(s, k(i))).length !== 1) misplaced++;
  t.equal(misplaced, 0, 'every key in exactly one slice');
  t.same(alignSlices(slices, []), slices, 'no bounds: unchanged');
  const one = [{ after: undefined, upTo: undefined }];
  t.same(alignSlices(one, bounds), one, 'one slice: unchanged');
  // Bounds all above the first boundary: it stays.
  const two: Slice[] = [
    { after: undefined, upTo: k(100) },
    { after: k(100), upTo: undefined },
  ];
  t.same(alignSlices(two, [new Uint8Array(k(150))]).map((s) => show(s.upTo)), ['key-000100', '-']);
});
