import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { nodeFileSystem, type FileSystem } from '../../src/storage/fs.js';
import { decodeManifest, encodeManifest, MANIFEST_FILE, MANIFEST_TMP_FILE, readManifest, writeManifest, type ManifestState } from '../../src/storage/manifest.js';
import { FormatError } from '../../src/storage/varint.js';
import { tempDir } from './helpers.js';

const state: ManifestState = {
  nextFileNumber: 42,
  lastSeq: 123456789012,
  logNumber: 40,
  tables: [
    { level: 0, fileNumber: 39, size: 4096, smallestKey: Buffer.from('a'), largestKey: Buffer.from('m'), smallestSeq: 5, largestSeq: 90, entries: 77, tombstones: 3 },
    { level: 3, fileNumber: 12, size: 2 ** 33, smallestKey: Buffer.alloc(0), largestKey: Buffer.from([255, 0, 255]), smallestSeq: 1, largestSeq: 4, entries: 1, tombstones: 0 },
  ],
};

t.test('round trip', async (t) => {
  t.same(decodeManifest(encodeManifest(state)), state);
});

t.test('every single-bit flip and every truncation is rejected', async (t) => {
  const buf = encodeManifest(state);
  let accepted = 0;
  for (let i = 0; i < buf.length * 8; i++) {
    const bad = Buffer.from(buf);
    bad[i >> 3]! ^= 1 << (i & 7);
    try {
      decodeManifest(bad);
      accepted++;
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
    }
  }
  t.equal(accepted, 0);
  for (let len = 0; len < buf.length; len++) t.throws(() => decodeManifest(buf.subarray(0, len)), FormatError);
});

t.test('lost ranges (version 2): round trip, every bit flip and truncation rejected; none written as version 1', async (t) => {
  const withLost: ManifestState = {
    ...state,
    lostRanges: [
      { smallestKey: Buffer.from('c'), largestKey: Buffer.from('f'), maxSeq: 90 },
      { smallestKey: Buffer.alloc(0), largestKey: null, maxSeq: 2 ** 40 },
    ],
  };
  const buf = encodeManifest(withLost);
  t.equal(buf.readUInt32LE(8), 2, 'version 2');
  t.same(decodeManifest(buf), withLost);
  t.equal(encodeManifest({ ...state, lostRanges: [] }).readUInt32LE(8), 1, 'no lost ranges: version 1, as older builds wrote');
  let accepted = 0;
  for (let i = 0; i < buf.length * 8; i++) {
    const bad = Buffer.from(buf);
    bad[i >> 3]! ^= 1 << (i & 7);
    try {
      decodeManifest(bad);
      accepted++;
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
    }
  }
  t.equal(accepted, 0);
  for (let len = 0; len < buf.length; len++) t.throws(() => decodeManifest(buf.subarray(0, len)), FormatError);
});

t.test('atomic replace: write tmp, fsync, rename, fsync dir, in that order', async (t) => {
  const dir = await tempDir(t);
  const ops: string[] = [];
  const traced: FileSystem = {
    ...nodeFileSystem,
    async open(file, mode) {
      const h = await nodeFileSystem.open(file, mode);
      ops.push(`open ${path.basename(file)} ${mode}`);
      return {
        read: (b, o, l, p) => h.read(b, o, l, p),
        append: async (d) => {
          ops.push(`append ${path.basename(file)}`);
          await h.append(d);
        },
        sync: async () => {
          ops.push(`sync ${path.basename(file)}`);
          await h.sync();
        },
        size: () => h.size(),
        close: () => h.close(),
      };
    },
    async rename(a, b) {
      ops.push(`rename ${path.basename(a)} ${path.basename(b)}`);
      await nodeFileSystem.rename(a, b);
    },
    async syncDir(d) {
      ops.push('syncDir');
      await nodeFileSystem.syncDir(d);
    },
  };
  t.equal(await readManifest(traced, dir), undefined);
  await writeManifest(traced, dir, state);
  t.same(ops.filter((o) => !o.startsWith('open ' + MANIFEST_FILE + ' read')), [
    `open ${MANIFEST_TMP_FILE} write`,
    `append ${MANIFEST_TMP_FILE}`,
    `sync ${MANIFEST_TMP_FILE}`,
    `rename ${MANIFEST_TMP_FILE} ${MANIFEST_FILE}`,
    'syncDir',
  ]);
  t.same(await readManifest(nodeFileSystem, dir), state);
  t.notOk(await nodeFileSystem.exists(path.join(dir, MANIFEST_TMP_FILE)));
  const raw = await fsp.readFile(path.join(dir, MANIFEST_FILE));
  raw[raw.length - 1]! ^= 4;
  await fsp.writeFile(path.join(dir, MANIFEST_FILE), raw);
  await t.rejects(readManifest(nodeFileSystem, dir), { code: 'ECORRUPT', message: /MANIFEST/ });
});
