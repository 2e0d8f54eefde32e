import t from 'tap';
import fc from 'fast-check';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { BlockCache } from '../../src/storage/block_cache.js';
import { nodeFileSystem } from '../../src/storage/fs.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry } from '../../src/storage/internal_entry.js';
import { blockEntry, blockLastKey, blockSizeAt, decodeBlock, findBlock, parseFooter, parseIndex, seekInBlock, TableBufferIterator, TableBuilder, tableFileName, FOOTER_BYTES, type Compression } from '../../src/storage/table_format.js';
import { TableReader } from '../../src/storage/table_reader.js';
import { StorageError } from '../../src/storage/types.js';
import { FormatError } from '../../src/storage/varint.js';
import { tempDir } from './helpers.js';

/** 2000 keys; every 10th has three versions (seq 3i+1..3i+3), every 7th newest is a tombstone. */
function entries(): InternalEntry[] {
  const out: InternalEntry[] = [];
  for (let i = 0; i < 2000; i++) {
    const key = Buffer.from(`key-${String(i).padStart(5, '0')}`);
    const versions = i % 10 === 0 ? 3 : 1;
    for (let vno = versions; vno >= 1; vno--) {
      const seq = 3 * i + vno;
      const del = i % 7 === 0 && vno === versions;
      out.push({ key, seq, kind: del ? KIND_DELETE : KIND_PUT, time: del ? 123 : 0, value: del ? Buffer.alloc(0) : Buffer.from(`value ${i} v${vno} `.repeat(4)) });
    }
  }
  return out;
}

async function writeTable(dir: string, num: number, compression: Compression): Promise<{ size: number; list: InternalEntry[] }> {
  const list = entries();
  const b = new TableBuilder({ blockBytes: 1024, bloomBitsPerKey: 10, compression });
  for (const e of list) b.add(e);
  const { bytes, meta } = b.finish();
  t.equal(meta.entries, list.length);
  t.same(meta.smallestKey.toString(), 'key-00000');
  t.same(meta.largestKey.toString(), 'key-01999');
  t.equal(meta.tombstones, list.filter((e) => e.kind === KIND_DELETE).length);
  await fsp.writeFile(path.join(dir, tableFileName(num)), bytes);
  return { size: bytes.length, list };
}

for (const compression of ['none', 'deflate'] as const) {
  t.test(`${compression}: point reads at any snapshot, scans, sequential buffer iteration`, async (t) => {
    const dir = await tempDir(t);
    const { size, list } = await writeTable(dir, 1, compression);
    const cache = new BlockCache(1 << 20);
    const r = await TableReader.open(nodeFileSystem, dir, 1, cache);
    t.teardown(() => r.close());
    const stats = { bloomChecks: 0, bloomNegatives: 0 };
    const k10 = Buffer.from('key-00010');
    t.equal((await r.get(k10, 1000, stats))?.seq, 33, 'newest version');
    t.equal((await r.get(k10, 32, stats))?.seq, 32, 'snapshot between versions');
    t.equal((await r.get(k10, 31, stats))?.seq, 31);
    t.equal(await r.get(k10, 30, stats), undefined, 'below every version');
    t.equal((await r.get(Buffer.from('key-00007'), 1000, stats))?.kind, KIND_DELETE);
    let wrong = 0;
    for (let i = 0; i < 2000; i += 3) {
      const key = Buffer.from(`key-${String(i).padStart(5, '0')}`);
      const want = list.find((e) => e.key.equals(key))!;
      const got = await r.get(key, Number.MAX_SAFE_INTEGER, stats);
      if (!got || got.seq !== want.seq || !got.value.equals(want.value)) wrong++;
    }
    t.equal(wrong, 0, 'every key reads back its newest version');
    const before = stats.bloomNegatives;
    for (let i = 0; i < 1000; i++) await r.get(Buffer.from(`absent-${i}`), 1000, stats);
    t.ok(stats.bloomNegatives - before > 950, 'bloom filter answers most misses without a block read');
    t.ok(cache.hits > 0 && cache.bytes > 0);
    // Scan from a key in the middle.
    const it = r.iterator(Buffer.from('key-01500'));
    await it.init();
    const scanned: InternalEntry[] = [];
    while (it.current) {
      scanned.push(it.current);
      const p = it.next();
      if (p) await p;
    }
    const expected = list.filter((e) => e.key.toString() >= 'key-01500');
    t.equal(scanned.length, expected.length);
    t.ok(scanned.every((e, i) => e.key.equals(expected[i]!.key) && e.seq === expected[i]!.seq));
    // Whole-buffer iterator (compaction input).
    const buf = await fsp.readFile(path.join(dir, tableFileName(1)));
    t.equal(buf.length, size);
    let n = 0;
    for (const bi = new TableBufferIterator(buf); bi.current; bi.next()) n++;
    t.equal(n, list.length);
    const est = r.estimateRange(Buffer.from('key-01000'), undefined);
    t.ok(est.entries > list.length * 0.4 && est.entries < list.length * 0.6, `estimate ${est.entries}`);
  });
}

t.test('compression shrinks compressible blocks', async (t) => {
  const dir = await tempDir(t);
  const a = await writeTable(dir, 1, 'none');
  const b = await writeTable(dir, 2, 'deflate');
  t.ok(b.size < a.size * 0.7, `deflate ${b.size} vs none ${a.size}`);
});

t.test('corruption: every bit flip is detected at open or at read, never a wrong value', async (t) => {
  const dir = await tempDir(t);
  const { size, list } = await writeTable(dir, 1, 'none');
  const good = await fsp.readFile(path.join(dir, tableFileName(1)));
  // Newest version per key (entries come newest first within a key).
  const byKey = new Map<string, InternalEntry>();
  for (const e of list) if (!byKey.has(e.key.toString())) byKey.set(e.key.toString(), e);
  let silentWrong = 0;
  let detected = 0;
  const step = Math.max(1, Math.floor(size / 100));
  for (let off = 0; off < size; off += step) {
    const bad = Buffer.from(good);
    bad[off]! ^= 1 << off % 8;
    await fsp.writeFile(path.join(dir, tableFileName(2)), bad);
    let r: TableReader;
    try {
      r = await TableReader.open(nodeFileSystem, dir, 2, new BlockCache(0));
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'ECORRUPT')) throw err;
      detected++;
      continue;
    }
    try {
      for (let i = 0; i < 2000; i += 19) {
        const key = Buffer.from(`key-${String(i).padStart(5, '0')}`);
        try {
          const got = await r.get(key, Number.MAX_SAFE_INTEGER, { bloomChecks: 0, bloomNegatives: 0 });
          const want = byKey.get(key.toString())!;
          // A flip may only make a key unreadable (ECORRUPT) or leave it correct.
          if (!got || got.seq !== want.seq || got.kind !== want.kind || !got.value.equals(want.value)) silentWrong++;
        } catch (err) {
          if (!(err instanceof StorageError && err.code === 'ECORRUPT')) throw err;
          detected++;
        }
      }
    } finally {
      await r.close();
    }
  }
  t.equal(silentWrong, 0, 'no flip produced a wrong or missing value silently');
  t.ok(detected > 0);
});

t.test('short, truncated and over-limit files are ECORRUPT without big allocations', async (t) => {
  const dir = await tempDir(t);
  const { size } = await writeTable(dir, 1, 'none');
  const good = await fsp.readFile(path.join(dir, tableFileName(1)));
  for (const len of [0, 10, FOOTER_BYTES - 1, size - 1, size - FOOTER_BYTES]) {
    await fsp.writeFile(path.join(dir, tableFileName(3)), good.subarray(0, len));
    await t.rejects(TableReader.open(nodeFileSystem, dir, 3, new BlockCache(0)), { code: 'ECORRUPT' }, `truncated to ${len}`);
  }
  // A footer claiming a 4 GiB index (CRC fixed up so only the length check can catch it).
  const bad = Buffer.from(good);
  bad.writeUInt32LE(0xffffffff, size - FOOTER_BYTES + 20);
  const { crc32 } = await import('node:zlib');
  bad.writeUInt32LE(crc32(bad.subarray(size - FOOTER_BYTES, size - FOOTER_BYTES + 36)), size - FOOTER_BYTES + 36);
  await fsp.writeFile(path.join(dir, tableFileName(4)), bad);
  await t.rejects(TableReader.open(nodeFileSystem, dir, 4, new BlockCache(0)), { code: 'ECORRUPT' });
  t.throws(() => new TableBufferIterator(bad), FormatError);
});

t.test('builder rejects out-of-order entries', async (t) => {
  const b = new TableBuilder({ blockBytes: 1024, bloomBitsPerKey: 10, compression: 'none' });
  b.add({ key: Buffer.from('b'), seq: 5, kind: KIND_PUT, time: 0, value: Buffer.alloc(1) });
  t.throws(() => b.add({ key: Buffer.from('a'), seq: 9, kind: KIND_PUT, time: 0, value: Buffer.alloc(1) }));
  t.throws(() => b.add({ key: Buffer.from('b'), seq: 6, kind: KIND_PUT, time: 0, value: Buffer.alloc(1) }), 'newer version after older');
});

t.test('findBlock agrees with a linear search over the index (shared prefixes, short keys, zero bytes)', async (t) => {
  // Keys from a tiny alphabet with 0x00 (the word padding) and lengths around prefix + 4, under
  // a shared prefix of 0-6 bytes; blocks of one or two entries; probes on and off the prefix.
  const byteArb = fc.constantFrom(0x00, 0x01, 0x61, 0xff);
  const keysArb = fc.record({
    prefix: fc.uint8Array({ maxLength: 6 }),
    tails: fc.uniqueArray(fc.array(byteArb, { maxLength: 7 }), { minLength: 1, maxLength: 40, selector: (a) => Buffer.from(a).toString('hex') }),
  });
  const probeArb = fc.array(fc.oneof(byteArb, fc.constantFrom(0x02, 0x62)), { maxLength: 12 });
  await fc.assert(
    fc.property(keysArb, fc.array(probeArb, { minLength: 1, maxLength: 20 }), fc.boolean(), ({ prefix, tails }, probes, probeWithPrefix) => {
      const keys = tails.map((tail) => Buffer.concat([Buffer.from(prefix), Buffer.from(tail)])).sort(Buffer.compare);
      const b = new TableBuilder({ blockBytes: 1, bloomBitsPerKey: 10, compression: 'none' });
      keys.forEach((key, i) => b.add({ key, seq: i + 1, kind: KIND_PUT, time: 0, value: Buffer.alloc(0) }));
      const { bytes } = b.finish();
      const footer = parseFooter(bytes.subarray(bytes.length - FOOTER_BYTES), bytes.length);
      const idx = parseIndex(bytes.subarray(footer.indexOffset, footer.indexOffset + footer.indexLen), footer);
      for (const p of probes) {
        const probe = probeWithPrefix ? Buffer.concat([Buffer.from(prefix), Buffer.from(p)]) : Buffer.from(p);
        for (const seq of [0, Math.floor(keys.length / 2), Number.MAX_SAFE_INTEGER]) {
          let want = 0;
          while (want < idx.count) {
            const c = Buffer.compare(blockLastKey(idx, want), probe);
            if (c > 0 || (c === 0 && idx.seqs[want]! <= seq)) break;
            want++;
          }
          const got = findBlock(idx, probe, seq);
          if (got !== want) throw new Error(`probe ${probe.toString('hex')} seq ${seq}: findBlock ${got}, linear ${want} (prefix ${idx.prefixLen})`);
        }
      }
    }),
    { numRuns: 300 },
  );
  t.pass('findBlock matches');
});

t.test('seekInBlock with key words agrees with a linear search of the block (shared prefixes, short keys, zero bytes, versions)', async (t) => {
  // One block of keys from a tiny alphabet with 0x00 (the word padding) and lengths around
  // prefix + 4, under a shared prefix of 0-6 bytes, 1-3 versions each; probes on and off the prefix.
  const byteArb = fc.constantFrom(0x00, 0x01, 0x61, 0xff);
  const keysArb = fc.record({
    prefix: fc.uint8Array({ maxLength: 6 }),
    tails: fc.uniqueArray(fc.array(byteArb, { maxLength: 7 }), { minLength: 1, maxLength: 40, selector: (a) => Buffer.from(a).toString('hex') }),
    versions: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 40, maxLength: 40 }),
  });
  const probeArb = fc.array(fc.oneof(byteArb, fc.constantFrom(0x02, 0x62)), { maxLength: 12 });
  let withWords = 0;
  await fc.assert(
    fc.property(keysArb, fc.array(probeArb, { minLength: 1, maxLength: 20 }), fc.boolean(), fc.constantFrom<Compression>('none', 'deflate'), ({ prefix, tails, versions }, probes, probeWithPrefix, compression) => {
      const keys = tails.map((tail) => Buffer.concat([Buffer.from(prefix), Buffer.from(tail)])).sort(Buffer.compare);
      const b = new TableBuilder({ blockBytes: 1 << 20, bloomBitsPerKey: 10, compression });
      keys.forEach((key, i) => {
        for (let v = versions[i]!; v >= 1; v--) b.add({ key, seq: 3 * i + v, kind: KIND_PUT, time: 0, value: Buffer.alloc(v) });
      });
      const { bytes } = b.finish();
      const footer = parseFooter(bytes.subarray(bytes.length - FOOTER_BYTES), bytes.length);
      const idx = parseIndex(bytes.subarray(footer.indexOffset, footer.indexOffset + footer.indexLen), footer);
      if (idx.count !== 1) throw new Error(`${idx.count} blocks`);
      const raw = bytes.subarray(idx.offsets[0]!, idx.offsets[0]! + blockSizeAt(idx, 0));
      const block = decodeBlock(Buffer.from(raw), true);
      if (block.keyWords) withWords++;
      const entries = Array.from({ length: block.count }, (_, i) => blockEntry(block, i));
      for (const p of probes) {
        const probe = probeWithPrefix ? Buffer.concat([Buffer.from(prefix), Buffer.from(p)]) : Buffer.from(p);
        for (const seq of [0, 2, Math.floor((3 * keys.length) / 2), Number.MAX_SAFE_INTEGER]) {
          let want = 0;
          while (want < entries.length) {
            const c = Buffer.compare(entries[want]!.key, probe);
            if (c > 0 || (c === 0 && entries[want]!.seq <= seq)) break;
            want++;
          }
          const got = seekInBlock(block, probe, seq);
          if (got !== want) throw new Error(`probe ${probe.toString('hex')} seq ${seq}: seekInBlock ${got}, linear ${want} (prefix ${block.keyPrefixLen})`);
        }
      }
      keys.forEach((key, i) => {
        for (let v = 1; v <= versions[i]!; v++) {
          const at = seekInBlock(block, key, 3 * i + v);
          const e = entries[at];
          if (!e || !e.key.equals(key) || e.seq !== 3 * i + v) throw new Error(`key ${key.toString('hex')} seq ${3 * i + v}: entry ${at}`);
        }
      });
    }),
    { numRuns: 300 },
  );
  t.ok(withWords > 100, `blocks with key words: ${withWords} of 300`);
});
