import t from 'tap';
import * as path from 'node:path';
import * as fsp from 'node:fs/promises';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';
import { LogWriter, parseLog, recordLength, writeRecord, type LogOp } from '../../src/storage/log.js';
import { nodeFileSystem } from '../../src/storage/fs.js';
import { StorageError } from '../../src/storage/types.js';
import { tempDir } from './helpers.js';

function op(i: number, kind = KIND_PUT): LogOp {
  return { kind: kind as 0 | 1, key: Buffer.from(`key-${i}`), value: kind === KIND_PUT ? Buffer.from(`value-${i}`.repeat(i % 5 + 1)) : Buffer.alloc(0), time: i * 1000 };
}

function encode(batches: LogOp[][], firstSeq = 1): { buf: Buffer; ends: number[]; entries: InternalEntry[] } {
  let total = 0;
  let seq = firstSeq;
  for (const b of batches) {
    total += recordLength(seq, b);
    seq += b.length;
  }
  const buf = Buffer.alloc(total);
  const entries: InternalEntry[] = [];
  const ends: number[] = [];
  let pos = 0;
  seq = firstSeq;
  for (const b of batches) {
    pos = writeRecord(buf, pos, seq, b, entries);
    seq += b.length;
    ends.push(pos);
  }
  t.equal(pos, total, 'recordLength is exact');
  return { buf, ends, entries };
}

const batches = [[op(1)], [op(2), op(3, KIND_DELETE), op(4)], [op(5)], [op(6, KIND_DELETE)], [op(7), op(8)]];

t.test('records round-trip with sequence numbers, kinds, times and values', async (t) => {
  const { buf, entries } = encode(batches, 41);
  const parsed = parseLog(buf, 'x.log', false);
  t.equal(parsed.tornBytes, 0);
  t.equal(parsed.batches.length, batches.length);
  const flat = parsed.batches.flatMap((b) => b.entries);
  t.same(flat.map((e) => e.seq), [41, 42, 43, 44, 45, 46, 47, 48]);
  t.same(flat.map((e) => [e.key.toString(), e.kind, e.time, e.value.toString()]), entries.map((e) => [e.key.toString(), e.kind, e.time, e.value.toString()]));
  t.same(flat[2]!.kind, KIND_DELETE);
});

t.test('a torn tail at every offset of the last record is dropped and measured', async (t) => {
  const { buf, ends } = encode(batches);
  const lastStart = ends[ends.length - 2]!;
  for (let cut = lastStart; cut < buf.length; cut++) {
    const parsed = parseLog(buf.subarray(0, cut), 'x.log', false);
    if (parsed.batches.length !== batches.length - 1 || parsed.tornBytes !== cut - lastStart) {
      t.fail(`cut at ${cut}: ${parsed.batches.length} batches, ${parsed.tornBytes} torn`);
      return;
    }
  }
  // A zero-filled tail (what a file system can leave after a crash) is a torn tail too.
  const zeros = Buffer.concat([buf, Buffer.alloc(100)]);
  const p = parseLog(zeros, 'x.log', false);
  t.equal(p.batches.length, batches.length);
  t.equal(p.tornBytes, 100);
  t.pass('every truncation point reports exactly the bytes after the last whole record');
});

t.test('damage in the middle refuses with file and offset, repair skips it', async (t) => {
  const { buf, ends } = encode(batches);
  for (const flipAt of [2, ends[0]! + 3, ends[1]! + 10, ends[2]! - 1]) {
    const bad = Buffer.from(buf);
    bad[flipAt]! ^= 0x40;
    let err: unknown;
    try {
      parseLog(bad, '000007.log', false);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof StorageError && err.code === 'ECORRUPT', `flip at ${flipAt}: ECORRUPT`);
    t.match((err as Error).message, /000007\.log.*offset \d+/);
    const repaired = parseLog(bad, '000007.log', true);
    t.equal(repaired.skipped.length, 1);
    t.equal(repaired.batches.length, batches.length - 1, 'only the damaged record is lost');
  }
  // A flip in the last record looks like a torn tail: dropped and reported, never applied.
  const bad = Buffer.from(buf);
  bad[buf.length - 2]! ^= 1;
  const p = parseLog(bad, 'x.log', false);
  t.equal(p.batches.length, batches.length - 1);
  t.equal(p.tornBytes, buf.length - ends[ends.length - 2]!);
});

t.test('a length field over the limit or past the end never allocates, it is damage', async (t) => {
  const { buf } = encode(batches);
  const bad = Buffer.from(buf);
  bad.writeUInt32LE(0xfffffff0, 4);
  t.throws(() => parseLog(bad, 'x.log', false), { code: 'ECORRUPT' });
});

t.test('LogWriter appends through the FileSystem; the file parses back', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, '000001.log');
  const w = new LogWriter(1, await nodeFileSystem.open(file, 'write'));
  const { buf, ends } = encode(batches);
  await w.append(buf.subarray(0, ends[1]));
  t.ok(w.dirty);
  await w.sync();
  t.notOk(w.dirty);
  await w.append(buf.subarray(ends[1]));
  await w.close();
  t.equal(w.bytesWritten, buf.length);
  const parsed = parseLog(await fsp.readFile(file), '000001.log', false);
  t.equal(parsed.batches.length, batches.length);
});
