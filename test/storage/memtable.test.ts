import t from 'tap';
import fc from 'fast-check';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';
import { recordLength, writeRecord, type LogOp } from '../../src/storage/log.js';
import { hashKey, Memtable, sortKeyIds } from '../../src/storage/memtable.js';

function e(key: string, seq: number, kind = KIND_PUT, value = `${key}@${seq}`): InternalEntry {
  return { key: Buffer.from(key), seq, kind: kind as 0 | 1, time: 0, value: Buffer.from(value) };
}

function drain(m: Memtable, gte?: string): string[] {
  const out: string[] = [];
  for (const it = m.iterator(gte ? Buffer.from(gte) : undefined); it.current; it.next()) out.push(`${it.current.key}@${it.current.seq}`);
  return out;
}

t.test('sorted bytewise, newest version first, snapshot reads', async (t) => {
  const m = new Memtable(1);
  t.ok(m.empty);
  m.add(e('b', 1));
  m.add(e('a', 2));
  m.add(e('b', 3));
  m.add(e('\xff', 4));
  m.add(e('B', 5, KIND_DELETE));
  m.add(e('a', 6));
  t.same(drain(m), ['B@5', 'a@6', 'a@2', 'b@3', 'b@1', '\xff@4']);
  t.same(drain(m, 'a\x00'), ['b@3', 'b@1', '\xff@4']);
  t.equal(m.get(Buffer.from('b'), 10)?.seq, 3);
  t.equal(m.get(Buffer.from('b'), 2)?.seq, 1);
  t.equal(m.get(Buffer.from('b'), 0), undefined);
  t.equal(m.get(Buffer.from('c'), 10), undefined);
  t.equal(m.get(Buffer.from('B'), 10)?.kind, KIND_DELETE);
  t.equal(m.keys, 4);
  t.equal(m.entries, 6);
  t.equal(m.minSeq, 1);
  t.equal(m.maxSeq, 6);
  t.ok(m.bytes > 0);
  t.throws(() => m.add(e('z', 6)), 'sequence numbers must increase');
});

t.test('order matches Buffer.compare over many random keys; countRange', async (t) => {
  const m = new Memtable(1);
  const keys = new Set<string>();
  let seq = 0;
  for (let i = 0; i < 5000; i++) {
    const key = Buffer.from(Array.from({ length: 1 + (i % 7) }, () => Math.floor(Math.random() * 256)));
    keys.add(key.toString('hex'));
    m.add({ key, seq: ++seq, kind: KIND_PUT, time: 0, value: Buffer.alloc(3) });
  }
  const sorted = [...keys].map((h) => Buffer.from(h, 'hex')).sort(Buffer.compare);
  const got: Buffer[] = [];
  let prevKey: Buffer | undefined;
  for (const it = m.iterator(); it.current; it.next()) {
    if (!prevKey || !prevKey.equals(it.current.key)) got.push(it.current.key);
    prevKey = it.current.key;
  }
  t.equal(got.length, sorted.length);
  t.ok(got.every((k, i) => k.equals(sorted[i]!)), 'iteration order is bytewise');
  const lo = sorted[100]!;
  const hi = sorted[200]!;
  t.equal(m.countRange(lo, hi).keys, 100);
});

/** sortKeyIds over keys (distinct), as the memtable calls it: the permutation of ids it leaves. */
function sortedByKeyIds(keys: Buffer[]): Buffer[] {
  const ks = new Int32Array(keys.length + 1);
  keys.forEach((k, i) => (ks[i + 1] = ks[i]! + k.length));
  const d = new Uint8Array(ks[keys.length]!);
  keys.forEach((k, i) => d.set(k, ks[i]));
  const ids = new Int32Array(keys.length);
  for (let i = 0; i < ids.length; i++) ids[i] = keys.length - 1 - i;
  sortKeyIds(ids, ks, d);
  t.same([...ids].sort((a, b) => a - b), keys.map((_, i) => i), 'a permutation of the ids');
  return [...ids].map((id) => keys[id]!);
}

t.test('sortKeyIds orders keys bytewise: prefixes, zero bytes, long shared prefixes, runs past the insertion-sort size', async (t) => {
  const cases: Buffer[][] = [
    [],
    [Buffer.alloc(0)],
    // Each key a prefix of the next, with zero bytes (the words are zero-padded).
    Array.from({ length: 40 }, (_, i) => Buffer.alloc(i)),
    Array.from({ length: 40 }, (_, i) => Buffer.concat([Buffer.from('p'), Buffer.alloc(i, 0xff)])),
    // 300 keys sharing a 50-byte prefix, differing in the last bytes, some ending early.
    Array.from({ length: 300 }, (_, i) => Buffer.concat([Buffer.alloc(50, 7), Buffer.from(String(i))])),
    // redis-benchmark-like data keys: 0x01, slot, "key:" + 12 digits.
    Array.from({ length: 5000 }, (_, i) => Buffer.concat([Buffer.from([1, (i * 7) % 64, 0]), Buffer.from(`key:${String(i).padStart(12, '0')}`)])),
  ];
  for (const keys of cases) {
    const want = [...keys].sort(Buffer.compare);
    const got = sortedByKeyIds(keys);
    t.ok(got.length === want.length && got.every((k, i) => k.equals(want[i]!)), `${keys.length} keys in order`);
  }
  const keyArb = fc.oneof(
    fc.uint8Array({ maxLength: 9 }).map((b) => Buffer.from(b)),
    fc.array(fc.constantFrom(0x00, 0x01, 0xff), { maxLength: 12 }).map((b) => Buffer.from([0x6b, 0x65, 0x79, 0x00, ...b])),
  );
  fc.assert(
    fc.property(fc.uniqueArray(keyArb, { maxLength: 400, selector: (k) => k.toString('hex') }), (keys) => {
      const want = [...keys].sort(Buffer.compare);
      const got = sortedByKeyIds(keys);
      return got.every((k, i) => k.equals(want[i]!));
    }),
    { numRuns: 300 },
  );
});

t.test('an iterator stays valid while writes go on', async (t) => {
  const m = new Memtable(1);
  for (let i = 0; i < 100; i += 2) m.add(e(`k${String(i).padStart(3, '0')}`, i + 1));
  const it = m.iterator();
  let seen = 0;
  let seq = 1000;
  while (it.current) {
    seen++;
    m.add(e(`k${String(seen * 2 + 1).padStart(3, '0')}`, ++seq));
    m.add(e(it.current.key.toString(), ++seq));
    it.next();
  }
  // Entries added ahead of the cursor are visible to it (readers filter by seq), none skipped.
  t.ok(seen >= 50);
});

t.test('agrees with a Map model: get at any seq, iteration from any key, countRange (random keys)', async (t) => {
  // Keys with shared prefixes, empty keys, 0x00 and 0xff bytes, and long keys (compared natively).
  const keyArb = fc.oneof(
    fc.uint8Array({ maxLength: 5 }).map((b) => Buffer.from(b)),
    fc.array(fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff), { maxLength: 8 }).map((b) => Buffer.from([0x6b, 0x65, 0x79, ...b])),
    fc.array(fc.constantFrom(0x00, 0xff), { minLength: 60, maxLength: 70 }).map((b) => Buffer.from(b)),
  );
  const opArb = fc.record({ key: keyArb, del: fc.boolean(), byRecord: fc.boolean() });
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 300 }), keyArb, (ops, probe) => {
      const m = new Memtable(1);
      const model = new Map<string, { seq: number; kind: number; value: string }[]>(); // hex key -> versions, oldest first
      let seq = 0;
      for (const op of ops) {
        seq++;
        const kind = op.del ? KIND_DELETE : KIND_PUT;
        const value = op.del ? '' : `v${seq}`;
        if (op.byRecord) {
          const logOp: LogOp = { kind, key: op.key, value: Buffer.from(value), time: 0 };
          const buf = Buffer.alloc(recordLength(seq, [logOp]));
          writeRecord(buf, 0, seq, [logOp]);
          m.applyRecords(buf);
        } else {
          m.add({ key: op.key, seq, kind, time: 0, value: Buffer.from(value) });
        }
        const h = op.key.toString('hex');
        const versions = model.get(h) ?? [];
        versions.push({ seq, kind, value });
        model.set(h, versions);
      }
      if (m.keys !== model.size || m.entries !== ops.length) return false;
      // get at every seq for every key written, and for the probe.
      for (const h of [...model.keys(), probe.toString('hex')]) {
        const versions = model.get(h) ?? [];
        for (let at = 0; at <= seq; at++) {
          const want = [...versions].reverse().find((v) => v.seq <= at);
          const got = m.get(Buffer.from(h, 'hex'), at);
          if (!want ? got !== undefined : !got || got.seq !== want.seq || got.kind !== want.kind || got.value.toString() !== want.value) return false;
        }
      }
      // Full iteration, then from the probe: internal order, every version.
      const all = [...model.keys()]
        .map((h) => Buffer.from(h, 'hex'))
        .sort(Buffer.compare)
        .flatMap((k) => [...model.get(k.toString('hex'))!].reverse().map((v) => `${k.toString('hex')}@${v.seq}`));
      const walk = (gte?: Buffer): string[] => {
        const out: string[] = [];
        for (const it = m.iterator(gte); it.current; it.next()) out.push(`${it.current.key.toString('hex')}@${it.current.seq}`);
        return out;
      };
      if (walk().join() !== all.join()) return false;
      const fromProbe = all.filter((s) => Buffer.compare(Buffer.from(s.split('@')[0]!, 'hex'), probe) >= 0);
      if (walk(probe).join() !== fromProbe.join()) return false;
      const below = [...model.keys()].filter((h) => Buffer.compare(Buffer.from(h, 'hex'), probe) < 0).length;
      return m.countRange(undefined, probe).keys === below && m.countRange(probe).keys === model.size - below;
    }),
    { numRuns: 200 },
  );
});

t.test('an iterator keeps the keys it was created with while the index grows and order is rebuilt', async (t) => {
  const m = new Memtable(1);
  let seq = 0;
  for (let i = 0; i < 3000; i++) m.add(e(`k${String(i * 2).padStart(6, '0')}`, ++seq));
  const it = m.iterator();
  // New keys (past the index's growth points) and a rebuild of the order by a second iterator.
  for (let i = 0; i < 5000; i++) m.add(e(`k${String(i * 2 + 1).padStart(6, '0')}`, ++seq));
  t.equal(drain(m).length, 8000);
  let n = 0;
  for (; it.current; it.next()) n++;
  t.equal(n, 3000, 'the first iterator saw only the keys written before it');
});

t.test('key order built in slices, delta and base merges: agrees with a Map model, iterators held across them', async (t) => {
  // Small order limits so that every stage runs many times: tail slices (ramped from one key),
  // merges into a delta that an iterator may hold (copied first), base merges a step at a time,
  // iterators and countRange over base + frozen + delta runs.
  const keyArb = fc.oneof(
    fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    // Keys agreeing on the 16 bytes the order records cache, then differing or ending.
    fc.array(fc.constantFrom(0x00, 0x01, 0xff), { maxLength: 4 }).map((b) => Buffer.from([...Buffer.alloc(15, 0x6b), ...b])),
    fc.array(fc.constantFrom(0x00, 0x80, 0xff), { minLength: 12, maxLength: 20 }).map((b) => Buffer.from(b)),
  );
  const stepArb = fc.oneof(
    { weight: 8, arbitrary: keyArb.map((key) => ({ key, hold: false, probe: undefined as Buffer | undefined })) },
    { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.option(keyArb, { nil: undefined })).map(([hold, probe]) => ({ key: undefined as Buffer | undefined, hold, probe })) },
  );
  const limitsArb = fc.record({ sliceKeys: fc.integer({ min: 1, max: 9 }), deltaMinKeys: fc.integer({ min: 1, max: 12 }), mergeStepRecords: fc.integer({ min: 1, max: 40 }) });
  const hex = (b: Buffer): string => b.toString('hex');
  fc.assert(
    fc.property(limitsArb, fc.array(stepArb, { minLength: 1, maxLength: 400 }), (limits, steps) => {
      const m = new Memtable(1, limits);
      const model = new Map<string, number[]>(); // hex key -> seqs, oldest first
      const held: { it: ReturnType<Memtable['iterator']>; seq: number; want: string[]; gte: Buffer | undefined }[] = [];
      let seq = 0;
      /** The model's internal order (key@seq) at seq `at`, from gte. */
      const expected = (at: number, gte?: Buffer): string[] =>
        [...model.keys()]
          .map((h) => Buffer.from(h, 'hex'))
          .filter((k) => !gte || Buffer.compare(k, gte) >= 0)
          .sort(Buffer.compare)
          .flatMap((k) => model.get(hex(k))!.filter((s) => s <= at).reverse().map((s) => `${hex(k)}@${s}`))
          .filter((s) => !s.endsWith('@'));
      for (const step of steps) {
        if (step.key) {
          seq++;
          m.add({ key: step.key, seq, kind: KIND_PUT, time: 0, value: Buffer.from(`v${seq}`) });
          model.set(hex(step.key), [...(model.get(hex(step.key)) ?? []), seq]);
          continue;
        }
        if (step.hold) {
          held.push({ it: m.iterator(step.probe), seq, want: expected(seq, step.probe), gte: step.probe });
          continue;
        }
        // Walk now (every version), and countRange below / from the probe.
        const got: string[] = [];
        for (const it = m.iterator(step.probe); it.current; it.next()) got.push(`${hex(it.current.key)}@${it.current.seq}`);
        if (got.join() !== expected(seq, step.probe).join()) return false;
        if (step.probe) {
          const below = [...model.keys()].filter((h) => Buffer.compare(Buffer.from(h, 'hex'), step.probe!) < 0).length;
          if (m.countRange(undefined, step.probe).keys !== below || m.countRange(step.probe).keys !== model.size - below) return false;
        } else if (m.countRange().keys !== model.size) {
          return false;
        }
      }
      // A held iterator yields the keys written before it was made (no other), in order, with
      // every version up to then (versions written later may show: readers filter by seq).
      for (const h of held) {
        const got: string[] = [];
        for (; h.it.current; h.it.next()) if (h.it.current.seq <= h.seq) got.push(`${hex(h.it.current.key)}@${h.it.current.seq}`);
        if (got.join() !== h.want.join()) return false;
      }
      return m.keys === model.size;
    }),
    { numRuns: 300 },
  );
});

t.test('order slices at the default limits: 30,000 keys with iterators between, a held one unchanged', async (t) => {
  const m = new Memtable(1);
  const keys: Buffer[] = [];
  let seq = 0;
  let held: { it: ReturnType<Memtable['iterator']>; n: number } | undefined;
  for (let i = 0; i < 30000; i++) {
    const k = Buffer.concat([Buffer.from([1, (i * 7919) % 256, (i * 31) % 256]), Buffer.from(`key:${String((i * 104729) % 1000003).padStart(12, '0')}`)]);
    keys.push(k);
    m.add({ key: k, seq: ++seq, kind: KIND_PUT, time: 0, value: Buffer.alloc(1) });
    if (i === 12345) held = { it: m.iterator(), n: i + 1 };
  }
  const want = [...keys].sort(Buffer.compare);
  const got: Buffer[] = [];
  for (const it = m.iterator(); it.current; it.next()) got.push(it.current.key);
  t.equal(got.length, want.length);
  t.ok(got.every((k, i) => k.equals(want[i]!)), 'bytewise order');
  const heldWant = keys.slice(0, held!.n).sort(Buffer.compare);
  const heldGot: Buffer[] = [];
  for (; held!.it.current; held!.it.next()) heldGot.push(held!.it.current.key);
  t.ok(heldGot.length === heldWant.length && heldGot.every((k, i) => k.equals(heldWant[i]!)), 'the held iterator saw the keys written before it');
  t.equal(m.countRange(want[1000], want[21000]).keys, 20000);
});

t.test('rowHashed, rowDeadAt, rowValue and get agree with a model at every seq: expiring puts, deletes, records and add()', async (t) => {
  // A read at maxSeq or above takes the newest row without reading its seq, and rowDeadAt reads
  // the expiry time only for rows marked as expiring puts: both against a plain model.
  const opArb = fc.record({
    key: fc.constantFrom('a', 'b', 'c', 'key:1', 'key:2'),
    kind: fc.constantFrom(KIND_PUT, KIND_PUT, KIND_DELETE),
    time: fc.constantFrom(0, 0, 500, 1500),
    value: fc.string({ maxLength: 6 }),
    viaRecord: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
      const m = new Memtable(1);
      const versions: InternalEntry[] = [];
      let seq = 0;
      for (const op of ops) {
        const entry: InternalEntry = { key: Buffer.from(op.key), seq: ++seq, kind: op.kind as 0 | 1, time: op.time, value: Buffer.from(op.kind === KIND_PUT ? op.value : '') };
        versions.push(entry);
        if (op.viaRecord) {
          const logOps: LogOp[] = [{ kind: entry.kind, key: entry.key, value: entry.value, time: entry.time }];
          const buf = Buffer.alloc(recordLength(seq, logOps));
          writeRecord(buf, 0, seq, logOps);
          m.applyRecords(buf);
        } else {
          m.add(entry);
        }
      }
      for (const key of ['a', 'b', 'c', 'key:1', 'key:2', 'absent']) {
        const k = Buffer.from(key);
        for (let at = 0; at <= seq + 1; at++) {
          const want = versions.filter((v) => v.key.equals(k) && v.seq <= at).pop();
          const row = m.rowHashed(k, hashKey(k, 0, k.length), at);
          const got = m.get(k, at);
          if ((row >= 0) !== (want !== undefined) || (got === undefined) !== (want === undefined)) return false;
          if (!want || !got) continue;
          if (got.seq !== want.seq || got.kind !== want.kind || got.time !== want.time || !got.value.equals(want.value)) return false;
          for (const nowMs of [0, 499, 500, 1000, 1500, 2000]) {
            const dead = want.kind === KIND_DELETE || (want.time > 0 && nowMs >= want.time);
            if (m.rowDeadAt(row, nowMs) !== dead) return false;
          }
          if (!m.rowValue(row).equals(want.value)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('applyRecords of a buffer of several records (a group commit: one buffer, records of 1-4 ops) agrees with add() of the same ops', async (t) => {
  const opArb = fc.record({ key: fc.constantFrom('a', 'b', 'key:1', 'key:22', ''), del: fc.boolean(), value: fc.string({ maxLength: 40 }), time: fc.constantFrom(0, 1, 300, 2 ** 40) });
  fc.assert(
    fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), (records) => {
      const viaBuffer = new Memtable(1);
      const viaAdd = new Memtable(1);
      const logOps = records.map((r) => r.map((o): LogOp => ({ kind: o.del ? KIND_DELETE : KIND_PUT, key: Buffer.from(o.key), value: Buffer.from(o.del ? '' : o.value), time: o.time })));
      let seq = 1;
      let len = 0;
      for (const ops of logOps) {
        len += recordLength(seq, ops);
        seq += ops.length;
      }
      const buf = Buffer.alloc(len);
      seq = 1;
      let pos = 0;
      for (const ops of logOps) {
        pos = writeRecord(buf, pos, seq, ops);
        for (const op of ops) viaAdd.add({ key: op.key, seq: seq++, kind: op.kind, time: op.time, value: op.value });
      }
      viaBuffer.applyRecords(buf);
      const walk = (m: Memtable): string[] => {
        const out: string[] = [];
        for (const it = m.iterator(); it.current; it.next()) {
          const c = it.current;
          out.push(`${c.key.toString('hex')}@${c.seq}:${c.kind}:${c.time}:${c.value.toString('hex')}`);
        }
        return out;
      };
      return viaBuffer.entries === seq - 1 && walk(viaBuffer).join() === walk(viaAdd).join();
    }),
    { numRuns: 300 },
  );
});
