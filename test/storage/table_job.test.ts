import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';
import { recordLength, writeRecord, type LogOp } from '../../src/storage/log.js';
import { TableBufferIterator, TableBuilder, type TableBuildOptions } from '../../src/storage/table_format.js';
import { ENTRY_ROW_INTS, sortedLogEntries, type EntryRows } from '../../src/storage/sorted_log.js';
import { Memtable, type MemtableIterator } from '../../src/storage/memtable.js';
import { FormatError } from '../../src/storage/varint.js';
import { builtTableBytes, runBuildJob, type BuildJob } from '../../src/storage/table_job.js';
import { releaseTableBytes, runJob } from '../../src/storage/worker_pool.js';

const BUILD: TableBuildOptions = { blockBytes: 4096, bloomBitsPerKey: 10, compression: 'none' };
const NOW_MS = 1_000_000;
const key = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(6, '0')}`);

function tableOf(entries: InternalEntry[]): Buffer {
  const b = new TableBuilder(BUILD);
  for (const e of entries) b.add(e);
  return b.finish().bytes;
}

function entriesOf(file: Buffer): InternalEntry[] {
  const out: InternalEntry[] = [];
  for (const it = new TableBufferIterator(file); it.current; it.next()) out.push(it.current);
  return out;
}

/** Every i in [0, n): values of 4 KiB (their own block each) and, every 3rd key, a small one. */
function versions(n: number, seqBase: number, keep: (i: number) => boolean): InternalEntry[] {
  const out: InternalEntry[] = [];
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    const seq = seqBase + i;
    if (i % 17 === 0) out.push({ key: key(i), seq, kind: KIND_DELETE, time: 5, value: Buffer.alloc(0) });
    else if (i % 13 === 0) out.push({ key: key(i), seq, kind: KIND_PUT, time: NOW_MS - 1, value: randomBytes(4096) }); // expired
    else out.push({ key: key(i), seq, kind: KIND_PUT, time: 0, value: randomBytes(i % 3 === 0 ? 40 : 4096) });
  }
  return out;
}

t.test('compaction copies single-entry blocks as they are: same bytes as encoding the survivors', async (t) => {
  const older = tableOf(versions(300, 0, (i) => i % 2 === 0 || i % 5 === 0));
  const newer = tableOf(versions(300, 1000, (i) => i % 2 === 1 || i % 10 === 0));
  const job: BuildJob = {
    inputs: [
      { kind: 'table', bytes: newer },
      { kind: 'table', bytes: older },
    ],
    gc: { snapshots: [], bottom: false, nowMs: NOW_MS, graceMs: 10 },
    build: BUILD,
    targetFileBytes: Number.MAX_SAFE_INTEGER,
  };
  const result = runBuildJob(job);
  t.equal(result.tables.length, 1);
  const out = builtTableBytes(result.tables[0]!);
  const survivors = entriesOf(out);
  // The newest version of every key, expired values turned into tombstones stamped with their expiry.
  const newest = new Map<string, InternalEntry>();
  for (const e of [...entriesOf(older), ...entriesOf(newer)]) {
    const k = e.key.toString();
    if ((newest.get(k)?.seq ?? -1) < e.seq) newest.set(k, e);
  }
  t.equal(survivors.length, newest.size);
  // Unchanged 4 KiB values alone in their input block and after a finished output block are
  // copied; the rest is encoded (small entries, expired values now tombstones, big values
  // sharing a block with a small one).
  const big = survivors.filter((e) => e.kind === KIND_PUT && e.value.length >= 4096);
  t.ok(result.blocksCopied >= 20 && result.blocksCopied <= big.length, `${result.blocksCopied} of ${big.length} copied`);
  for (const e of survivors) {
    const want = newest.get(e.key.toString())!;
    t.equal(e.seq, want.seq);
    const expired = want.kind === KIND_PUT && want.time > 0 && want.time <= NOW_MS;
    t.equal(e.kind, expired ? KIND_DELETE : want.kind);
    if (e.kind === KIND_PUT) t.ok(e.value.equals(want.value));
  }
  // Building the same survivors entry by entry gives the same file, byte for byte.
  t.ok(out.equals(tableOf(survivors)), 'copied blocks are exactly what encoding them makes');
});

t.test('with only big values every block is copied', async (t) => {
  const plain = (i: number): InternalEntry => ({ key: key(i), seq: i + 1, kind: KIND_PUT, time: 0, value: randomBytes(4096) });
  const a = tableOf(Array.from({ length: 50 }, (_, n) => plain(2 * n)));
  const b = tableOf(Array.from({ length: 50 }, (_, n) => plain(2 * n + 1)));
  const result = runBuildJob({
    inputs: [
      { kind: 'table', bytes: a },
      { kind: 'table', bytes: b },
    ],
    gc: { snapshots: [], bottom: true, nowMs: NOW_MS, graceMs: 10 },
    build: BUILD,
    targetFileBytes: 64 * 1024,
  });
  t.ok(result.tables.length > 1, 'output cut into several tables');
  t.equal(result.entriesOut, 100);
  t.equal(result.blocksCopied, 100);
  const out = result.tables.flatMap((x) => entriesOf(builtTableBytes(x)));
  t.same(
    out.map((e) => e.seq),
    Array.from({ length: 100 }, (_, i) => i + 1),
  );
  t.ok(Buffer.concat(result.tables.map(builtTableBytes)).length > 100 * 4096);
});

t.test('a flush decodes its own records without checksums and sorts them', async (t) => {
  const ops: LogOp[] = [2, 1, 3, 1].map((i, n) => ({ kind: KIND_PUT, key: key(i), value: Buffer.from(`v${n}`), time: 0 }));
  const buf = Buffer.alloc(recordLength(1, ops) + recordLength(5, ops.slice(0, 1)));
  let pos = writeRecord(buf, 0, 1, ops);
  pos = writeRecord(buf, pos, 5, ops.slice(0, 1));
  buf.writeUInt32LE(0, 0); // a wrong checksum: own records are trusted
  const result = runBuildJob({
    inputs: [{ kind: 'log', bytes: buf.subarray(0, pos) }],
    gc: { snapshots: [], bottom: false, nowMs: NOW_MS, graceMs: 10 },
    build: BUILD,
    targetFileBytes: Number.MAX_SAFE_INTEGER,
  });
  const got = entriesOf(builtTableBytes(result.tables[0]!)).map((e) => `${e.key.toString()}@${e.seq}=${e.value.toString()}`);
  t.same(got, ['key-000001@4=v3', 'key-000002@5=v0', 'key-000003@3=v2']);
});

t.test('outputs are cut where grandparent tables end (cutAfter), once at least half the target size', async (t) => {
  // 400 keys of 1 KiB values (about 1 KiB each in a table); target 64 KiB, so an aligned cut is
  // allowed once an output holds 32 KiB (about 31 keys).
  const entries: InternalEntry[] = [];
  for (let i = 0; i < 400; i++) entries.push({ key: key(i), seq: i + 1, kind: KIND_PUT, time: 0, value: randomBytes(1024) });
  const base: BuildJob = {
    inputs: [{ kind: 'table', bytes: tableOf(entries) }],
    gc: { snapshots: [], bottom: false, nowMs: NOW_MS, graceMs: 10 },
    build: BUILD,
    targetFileBytes: 64 * 1024,
  };
  const lastKeys = (job: BuildJob): string[] => runBuildJob(job).tables.map((x) => x.meta.largestKey.toString());
  const plain = lastKeys(base);
  // Grandparent tables end at keys 40 (41 keys in: cut), 45 (5 keys after that cut: too small),
  // 90 (50 keys: cut) and 130 (40 keys: cut); past 130 only the size cuts.
  const aligned = runBuildJob({ ...base, cutAfter: [40, 45, 90, 130].map((i) => new Uint8Array(key(i))) });
  const last = aligned.tables.map((x) => x.meta.largestKey.toString());
  for (const i of [40, 90, 130]) t.ok(last.includes(key(i).toString()), `cut after key ${i}: ${last.join(' ')}`);
  t.notOk(last.includes(key(45).toString()), 'no cut 5 keys after the previous one');
  for (const i of [40, 90, 130]) t.notOk(plain.includes(key(i).toString()), `without cutAfter no cut after key ${i}: ${plain.join(' ')}`);
  // The same entries in the same order, whatever the cuts; no table past the size cut.
  const all = aligned.tables.flatMap((x) => entriesOf(builtTableBytes(x)).map((e) => e.key.toString()));
  t.same(all, entries.map((e) => e.key.toString()));
  for (const x of aligned.tables) t.ok(x.size <= 64 * 1024 + 8 * 1024, `table of ${x.size} bytes`);
});

t.test('sortedLogEntries: internal order (key bytewise, seq descending) for any keys, in one buffer or two', async (t) => {
  // Keys from a small alphabet with shared prefixes, empty keys, zero and 0xff bytes, repeats.
  const keyArb = fc.oneof(
    fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
    fc.array(fc.constantFrom(0x00, 0x01, 0x61, 0xff), { maxLength: 9 }).map((b) => Buffer.from([0x70, 0x72, 0x65, ...b])),
  );
  fc.assert(
    fc.property(fc.array(fc.array(keyArb, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 40 }), (records) => {
      const total = records.reduce((n, r) => n + r.length, 0);
      const ops = records.map((r) => r.map((k): LogOp => ({ kind: KIND_PUT, key: k, value: Buffer.from('v'), time: 0 })));
      const buf = Buffer.alloc(ops.reduce((n, r) => n + recordLength(total, r), 0));
      let pos = 0;
      let seq = 1;
      const ends: number[] = [];
      for (const r of ops) {
        pos = writeRecord(buf, pos, seq, r);
        ends.push(pos);
        seq += r.length;
      }
      // One buffer, or (as a memtable's shared record chunks) two pieces split between records.
      const cut = ends[Math.floor(ends.length / 2)]!;
      const got = sortedLogEntries(ends.length % 2 === 0 ? [buf.subarray(0, cut), buf.subarray(cut, pos)] : [buf.subarray(0, pos)]);
      const want = records
        .flat()
        .map((key, i) => ({ key, seq: i + 1 }))
        .sort((a, b) => Buffer.compare(a.key, b.key) || b.seq - a.seq);
      return got.length === total && got.every((e, i) => e.key.equals(want[i]!.key) && e.seq === want[i]!.seq);
    }),
    { numRuns: 300 },
  );
});

/** mem.survivors taken `units` at a time, an iterator (kept open) and a countRange from a probe key between steps. */
function survivorsInSteps(mem: Memtable, snapshots: number[], units: number, probes: number[]): EntryRows {
  const pick = mem.survivors(snapshots);
  const held: MemtableIterator[] = [];
  for (let i = 0; !pick.step(units); i++) {
    const probe = key(probes[i % probes.length]!);
    const it = mem.iterator(probe);
    it.next();
    held.push(it);
    mem.countRange(probe);
  }
  return pick.result();
}

t.test("a flush of a memtable's survivorRows builds the same table as a flush of all its records", async (t) => {
  // Keys from a small set (many versions per key), puts, deletes and expiring values, snapshots
  // anywhere (stripes), some versions added one by one (as in recovery). The rows point into
  // the memtable's shared memory (EntryRows.bufs); each record's buffer is overwritten once
  // applied (the engine reuses one: applyRecords must have copied it).
  const opArb = fc.record({
    key: fc.integer({ min: 0, max: 12 }),
    kind: fc.constantFrom(KIND_PUT, KIND_PUT, KIND_DELETE),
    expires: fc.constantFrom(0, 0, NOW_MS - 5, NOW_MS + 5),
    valueBytes: fc.integer({ min: 0, max: 600 }),
  });
  fc.assert(
    fc.property(
      fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 4 }),
      fc.boolean(),
      fc.boolean(),
      // Small order limits: the memtable's key order in slices, delta and base runs.
      fc.record({ sliceKeys: fc.integer({ min: 1, max: 4 }), deltaMinKeys: fc.integer({ min: 1, max: 5 }), mergeStepRecords: fc.integer({ min: 1, max: 6 }) }),
      // Or in steps (Memtable.survivors, as the engine takes them) of 1-5 keys or rows, with
      // iterators (held) and countRange between them: those take ordering steps meanwhile.
      fc.option(fc.record({ units: fc.integer({ min: 1, max: 5 }), probes: fc.array(fc.integer({ min: 0, max: 13 }), { minLength: 1, maxLength: 6 }) }), { nil: undefined }),
      (records, snapshotSeqs, withArena, bottom, limits, stepped) => {
        const mem = new Memtable(1, limits);
        const logs: Buffer[] = [];
        let seq = 1;
        for (const [n, r] of records.entries()) {
          const ops = r.map(
            (o, i): LogOp => ({
              kind: o.kind,
              key: key(o.key),
              value: o.kind === KIND_PUT ? Buffer.alloc(o.valueBytes, (seq + i) & 0xff) : Buffer.alloc(0),
              time: o.kind === KIND_PUT ? o.expires : NOW_MS - 100,
            }),
          );
          const buf = Buffer.alloc(recordLength(seq, ops));
          writeRecord(buf, 0, seq, ops);
          logs.push(Buffer.from(buf));
          if (withArena && n % 3 === 1) {
            ops.forEach((op, i) => mem.add({ key: op.key, seq: seq + i, kind: op.kind, time: op.time, value: op.value }));
          } else {
            mem.applyRecords(buf);
            buf.fill(0xee);
          }
          seq += ops.length;
        }
        const snapshots = [...new Set(snapshotSeqs)].sort((a, b) => a - b);
        const gc = { snapshots, bottom, nowMs: NOW_MS, graceMs: 10 };
        const rows = stepped ? survivorsInSteps(mem, snapshots, stepped.units, stepped.probes) : mem.survivorRows(snapshots);
        const fromRows = runBuildJob({
          inputs: [{ kind: 'rows', bytes: rows.bytes, rowInts: rows.ints, rowFloats: rows.floats, rowBufs: rows.bufs }],
          gc,
          build: BUILD,
          targetFileBytes: Number.MAX_SAFE_INTEGER,
        });
        const fromLog = runBuildJob({ inputs: [{ kind: 'log', bytes: Buffer.concat(logs) }], gc, build: BUILD, targetFileBytes: Number.MAX_SAFE_INTEGER });
        const bytesOf = (r: typeof fromLog): Buffer[] => r.tables.map(builtTableBytes);
        // As the engine's flush: the job picks the survivors itself from the memtable's flushInput.
        const input = mem.flushInput(snapshots);
        const arrays = [input.arrays.rowI, input.arrays.rowF, input.arrays.heads, input.arrays.keyStart, input.arrays.keyData, ...input.runs, ...input.arrays.segs];
        if (!arrays.every((a) => a.length === 0 || a.buffer instanceof SharedArrayBuffer)) return false;
        const fromMem = runBuildJob({ inputs: [{ kind: 'memtable', bytes: new Uint8Array(0), memtable: input }], gc, build: BUILD, targetFileBytes: Number.MAX_SAFE_INTEGER });
        if (!Buffer.concat(bytesOf(fromMem)).equals(Buffer.concat(bytesOf(fromLog)))) return false;
        // Without snapshots exactly one row per key leaves the memtable.
        if (snapshots.length === 0 && rows.ints.length / ENTRY_ROW_INTS !== mem.keys) return false;
        // The rows point into the memtable's shared memory.
        if (rows.bufs === undefined || !rows.bufs.every((b) => b.buffer instanceof SharedArrayBuffer)) return false;
        const bufs = rows.bufs;
        // The rows leave in internal order (key ascending, seq descending): the worker does not sort them.
        const rowKey = (r: number): Buffer => Buffer.from(bufs[rows.ints[r * ENTRY_ROW_INTS]!]!).subarray(rows.ints[r * ENTRY_ROW_INTS + 1]!, rows.ints[r * ENTRY_ROW_INTS + 1]! + rows.ints[r * ENTRY_ROW_INTS + 2]!);
        for (let r = 1; r < rows.ints.length / ENTRY_ROW_INTS; r++) {
          const c = Buffer.compare(rowKey(r - 1), rowKey(r));
          if (c > 0 || (c === 0 && rows.floats[(r - 1) * 2]! <= rows.floats[r * 2]!)) return false;
        }
        return fromRows.entriesOut === fromLog.entriesOut && Buffer.concat(bytesOf(fromRows)).equals(Buffer.concat(bytesOf(fromLog)));
      },
    ),
    { numRuns: 300 },
  );
});

t.test('entry rows out of their buffer are refused (FormatError), not read', async (t) => {
  // Versions added one by one and from records: bounds are those of the row's buffer (a chunk).
  const added = new Memtable(1);
  added.add({ key: key(1), seq: 1, kind: KIND_PUT, time: 0, value: Buffer.from('value') });
  const applied = new Memtable(1);
  const ops: LogOp[] = [{ kind: KIND_PUT, key: key(1), value: Buffer.from('value'), time: 0 }];
  const record = Buffer.alloc(recordLength(1, ops));
  writeRecord(record, 0, 1, ops);
  applied.applyRecords(record);
  for (const mem of [added, applied]) {
    const size = mem.survivorRows([]).bufs![0]!.length;
    for (const [field, bad] of [
      [1, size - 5],
      [2, size + 1],
      [3, -1],
      [4, size],
      [5, 7],
      [0, 1],
      [0, -1],
    ] as const) {
      const rows = mem.survivorRows([]);
      rows.ints[field] = bad;
      t.throws(() => sortedLogEntries(rows), FormatError, `field ${field} = ${bad}`);
    }
    t.same(
      sortedLogEntries(mem.survivorRows([])).map((e) => `${e.key.toString()}@${e.seq}=${e.value.toString()}`),
      ['key-000001@1=value'],
    );
  }
});

t.test("group commits larger than a chunk, across chunks and in a buffer of their own: the flush's rows read them in place", async (t) => {
  // Records of 40 KiB - 1 MB: some fill a chunk's end (the next group starts a new chunk), some
  // get a shared buffer of their own; small ones in between.
  const mem = new Memtable(1);
  const logs: Buffer[] = [];
  let seq = 1;
  for (const [i, valueBytes] of [40_000, 900_000, 50_000, 300_000, 700_000, 10, 200_000, 1_000_000, 30].entries()) {
    const ops: LogOp[] = [
      { kind: KIND_PUT, key: key(i % 4), value: Buffer.alloc(valueBytes, i + 1), time: 0 },
      { kind: KIND_PUT, key: key(10 + i), value: Buffer.alloc(7, i + 1), time: 0 },
    ];
    const buf = Buffer.alloc(recordLength(seq, ops));
    writeRecord(buf, 0, seq, ops);
    logs.push(Buffer.from(buf));
    mem.applyRecords(buf);
    buf.fill(0xee);
    seq += ops.length;
  }
  const rows = mem.survivorRows([]);
  t.ok(rows.bufs !== undefined && rows.bufs.length > 1, 'rows point into several shared buffers');
  const gc = { snapshots: [], bottom: false, nowMs: NOW_MS, graceMs: 10 };
  const fromRows = runBuildJob({ inputs: [{ kind: 'rows', bytes: rows.bytes, rowInts: rows.ints, rowFloats: rows.floats, rowBufs: rows.bufs }], gc, build: BUILD, targetFileBytes: Number.MAX_SAFE_INTEGER });
  const fromLog = runBuildJob({ inputs: [{ kind: 'log', bytes: Buffer.concat(logs) }], gc, build: BUILD, targetFileBytes: Number.MAX_SAFE_INTEGER });
  t.ok(Buffer.concat(fromRows.tables.map(builtTableBytes)).equals(Buffer.concat(fromLog.tables.map(builtTableBytes))), 'same table as from the records');
  t.equal(mem.get(key(3), seq)?.value.length, 1_000_000);
  t.equal(mem.get(key(1), seq)?.value.length, 10);
  t.same(mem.get(key(17), seq)?.value, Buffer.alloc(7, 8));
});

t.test("a memtable's flush job posted to the worker thread (shared arrays, no copy) builds the same table as inline", async (t) => {
  const mem = new Memtable(1);
  let seq = 1;
  for (let i = 0; i < 3000; i++) {
    const ops: LogOp[] = [{ kind: i % 11 === 0 ? KIND_DELETE : KIND_PUT, key: key((i * 7) % 1000), value: i % 11 === 0 ? Buffer.alloc(0) : Buffer.alloc(50 + (i % 200), i & 0xff), time: 0 }];
    const buf = Buffer.alloc(recordLength(seq, ops));
    writeRecord(buf, 0, seq, ops);
    mem.applyRecords(buf);
    seq += 1;
  }
  const gc = { snapshots: [], bottom: false, nowMs: NOW_MS, graceMs: 10 };
  const job = (): BuildJob => ({ inputs: [{ kind: 'memtable', bytes: new Uint8Array(0), memtable: mem.flushInput([]) }], gc, build: BUILD, targetFileBytes: Number.MAX_SAFE_INTEGER });
  const offloaded = await runJob(job(), 'flush', true);
  const inline = runBuildJob(job());
  t.equal(offloaded.entriesOut, 1000);
  t.ok(Buffer.concat(offloaded.tables.map(builtTableBytes)).equals(Buffer.concat(inline.tables.map(builtTableBytes))), 'same table');
  releaseTableBytes(offloaded, true);
  t.same(mem.get(key(7), seq)?.value, Buffer.alloc(50 + (2001 % 200), 2001 & 0xff), 'the memtable reads as before');
});
