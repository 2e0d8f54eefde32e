/** The power-loss file system itself: if it were more generous than a disk, the power-loss
 * tests of the engine would prove nothing. */
import t from 'tap';
import assert from 'node:assert/strict';
import { FaultFileSystem, seededRandom } from './fault_fs.js';

const D = '/db';

async function fresh(): Promise<FaultFileSystem> {
  const fs = new FaultFileSystem();
  await fs.mkdir(D);
  return fs;
}

t.test('synced data and dir-synced entries survive, the rest is dropped', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/a`, 'append');
  await h.append(Buffer.from('hello'));
  await h.sync();
  await fs.syncDir(D);
  await h.append(Buffer.from(' world'));
  t.equal(await h.size(), 11, 'reads see unsynced bytes');
  t.equal((await fs.readFile(`${D}/a`)).toString(), 'hello world');
  const after = fs.crash();
  t.equal((await after.readFile(`${D}/a`)).toString(), 'hello', 'unsynced append dropped');
  await t.rejects(h.append(Buffer.from('x')), { code: 'EIO' }, 'old instance is dead');
  await t.rejects(fs.readFile(`${D}/a`), { code: 'EIO' });
});

t.test('a synced file whose directory was not synced is gone', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/new`, 'write');
  await h.append(Buffer.from('data'));
  await h.sync();
  const after = fs.crash();
  t.equal(await after.exists(`${D}/new`), false);
  t.same(await after.readdir(D), []);
});

t.test('dir-synced but never file-synced file is empty after crash', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/f`, 'write');
  await fs.syncDir(D);
  await h.append(Buffer.from('data'));
  const after = fs.crash();
  t.equal((await after.readFile(`${D}/f`)).length, 0);
});

t.test('rename and unlink are durable only after syncDir', async (t) => {
  const fs = await fresh();
  const a = await fs.open(`${D}/old`, 'write');
  await a.append(Buffer.from('v1'));
  await a.sync();
  await fs.syncDir(D);
  const b = await fs.open(`${D}/tmp`, 'write');
  await b.append(Buffer.from('v2'));
  await b.sync();
  await fs.rename(`${D}/tmp`, `${D}/old`);
  t.equal((await fs.readFile(`${D}/old`)).toString(), 'v2');
  const lost = fs.clone();
  // Not dir-synced: the crash brings back the old name binding.
  const crashed = fs.crash();
  t.equal((await crashed.readFile(`${D}/old`)).toString(), 'v1');
  t.equal(await crashed.exists(`${D}/tmp`), false, 'tmp was never durable');

  // clone() made everything durable: sync-less rename already applied there.
  t.equal((await lost.readFile(`${D}/old`)).toString(), 'v2');
  await lost.unlink(`${D}/old`);
  t.equal(await lost.exists(`${D}/old`), false);
  const back = lost.crash();
  t.equal((await back.readFile(`${D}/old`)).toString(), 'v2', 'unlink without syncDir is undone');
  await back.unlink(`${D}/old`);
  await back.syncDir(D);
  t.equal(await back.crash().exists(`${D}/old`), false, 'unlink + syncDir is durable');
});

t.test('open handles on an unlinked file keep working', async (t) => {
  const fs = await fresh();
  const w = await fs.open(`${D}/f`, 'write');
  await w.append(Buffer.from('abc'));
  const h = await fs.open(`${D}/f`, 'read');
  await fs.unlink(`${D}/f`);
  await w.append(Buffer.from('d'));
  const buf = Buffer.alloc(4);
  t.equal(await h.read(buf, 0, 4, 0), 4);
  t.equal(buf.toString(), 'abcd');
});

t.test('keep-random-prefix keeps a prefix of unsynced appends, never more', async (t) => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const fs = await fresh();
    const h = await fs.open(`${D}/log`, 'append');
    await fs.syncDir(D);
    await h.append(Buffer.from('0123'));
    await h.sync();
    await h.append(Buffer.from('456789'));
    const after = fs.crash('keep-random-prefix', seededRandom(seed));
    const got = (await after.readFile(`${D}/log`)).toString();
    t.ok('0123456789'.startsWith(got) && got.length >= 4, `prefix ${got}`);
    seen.add(got.length);
  }
  t.ok(seen.has(4) && seen.has(10) && seen.size >= 5, `prefix lengths vary: ${[...seen].sort()}`);
});

t.test('keep-random-prefix keeps only durable bytes of a file rewritten since its sync', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/m`, 'write');
  await fs.syncDir(D);
  await h.append(Buffer.from('old'));
  await h.sync();
  const h2 = await fs.open(`${D}/m`, 'write');
  await h2.append(Buffer.from('new-longer'));
  for (let seed = 0; seed < 20; seed++) {
    const c = fs.clone();
    // The clone made everything durable; redo the rewrite to have the pending state again.
    const h3 = await c.open(`${D}/m`, 'write');
    await h3.append(Buffer.from('x'));
    await h3.sync();
    await h3.close();
    const h4 = await c.open(`${D}/m`, 'write');
    await h4.append(Buffer.from('yyyyyy'));
    t.equal((await c.crash('keep-random-prefix', seededRandom(seed)).readFile(`${D}/m`)).toString(), 'x');
  }
});

t.test('powerLossImage is what a crash would leave, and the original lives on', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/f`, 'append');
  await fs.syncDir(D);
  await h.append(Buffer.from('ab'));
  await h.sync();
  await h.append(Buffer.from('cd'));
  const img = fs.powerLossImage();
  t.equal((await img.readFile(`${D}/f`)).toString(), 'ab');
  await h.append(Buffer.from('ef'));
  t.equal((await fs.readFile(`${D}/f`)).toString(), 'abcdef', 'original still alive');
  t.equal((await img.readFile(`${D}/f`)).toString(), 'ab', 'image independent of the original');
  const img2 = fs.powerLossImage('keep-random-prefix', () => 0.999);
  t.equal((await img2.readFile(`${D}/f`)).toString(), 'abcdef');
});

t.test('failNextSync rejects once with EIO and makes nothing durable', async (t) => {
  for (const retry of [false, true]) {
    const fs = await fresh();
    const h = await fs.open(`${D}/f`, 'append');
    await fs.syncDir(D);
    await h.append(Buffer.from('a'));
    fs.failNextSync();
    await t.rejects(h.sync(), { code: 'EIO' });
    t.equal((await fs.readFile(`${D}/f`)).toString(), 'a', 'bytes still visible to reads');
    if (retry) await h.sync();
    const want = retry ? 'a' : '';
    t.equal((await fs.crash().readFile(`${D}/f`)).toString(), want, retry ? 'only the next sync fails' : 'failed sync made nothing durable');
  }
});

t.test('failWritesAfterBytes writes what fits, then ENOSPC', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/f`, 'append');
  fs.failWritesAfterBytes(5);
  await h.append(Buffer.from('abc'));
  await t.rejects(h.append(Buffer.from('defg')), { code: 'ENOSPC' });
  t.equal((await fs.readFile(`${D}/f`)).toString(), 'abcde');
  await t.rejects(h.append(Buffer.from('z')), { code: 'ENOSPC' });
});

t.test('crashAfterOps freezes the durable image at that call', async (t) => {
  const fs = await fresh();
  const h = await fs.open(`${D}/f`, 'append'); // mutation 1 (create)
  await fs.syncDir(D); // 2
  fs.crashAfterOps(2);
  await h.append(Buffer.from('a')); // allowed
  await h.sync(); // allowed: 'a' durable
  await t.rejects(h.append(Buffer.from('b')), { code: 'EIO' }, 'the crash point');
  t.ok(fs.hasCrashed);
  await t.rejects(h.sync(), { code: 'EIO' }, 'dead after the crash point');
  await t.rejects(fs.readdir(D), { code: 'EIO' });
  const after = fs.crash();
  t.equal((await after.readFile(`${D}/f`)).toString(), 'a');
});

t.test('namespace operations behave like a POSIX file system', async (t) => {
  const fs = await fresh();
  await t.rejects(fs.open(`${D}/missing`, 'read'), { code: 'ENOENT' });
  await t.rejects(fs.readFile(`${D}/missing`), { code: 'ENOENT' });
  await t.rejects(fs.open('/nodir/x', 'write'), { code: 'ENOENT' });
  await t.rejects(fs.unlink(`${D}/missing`), { code: 'ENOENT' });
  await t.rejects(fs.rename(`${D}/missing`, `${D}/x`), { code: 'ENOENT' });
  await fs.mkdir(`${D}/sub/deeper`);
  await fs.mkdir(`${D}/sub`);
  t.ok(await fs.exists(`${D}/sub/deeper`));
  const h = await fs.open(`${D}/b`, 'write');
  await h.append(Buffer.from('0123456789'));
  const r = await fs.open(`${D}/b`, 'read');
  await t.rejects(r.append(Buffer.from('x')), { code: 'EBADF' }, 'read handles do not write');
  const buf = Buffer.alloc(8);
  t.equal(await r.read(buf, 2, 6, 7), 3, 'short read at the end');
  t.equal(buf.subarray(2, 5).toString(), '789');
  t.equal(await r.read(buf, 0, 4, 100), 0, 'read past the end');
  await fs.truncate(`${D}/b`, 4);
  t.equal((await fs.readFile(`${D}/b`)).toString(), '0123');
  await fs.truncate(`${D}/b`, 6);
  t.same([...(await fs.readFile(`${D}/b`))], [48, 49, 50, 51, 0, 0]);
  t.same(await fs.readdir(D), ['b', 'sub']);
  t.same(fs.listFiles(D), ['b']);
  const w = await fs.open(`${D}/b`, 'write');
  t.equal(await w.size(), 0, "'write' truncates");
  await w.close();
  await t.rejects(w.append(Buffer.from('x')), { code: 'EBADF' });
});

t.test('differential: visible behaviour equals the real file system (nodeFileSystem)', async (t) => {
  const fc = (await import('fast-check')).default;
  const os = await import('node:os');
  const fsp = await import('node:fs/promises');
  const { nodeFileSystem } = await import('../../src/storage/fs.js');
  const root = await fsp.mkdtemp(`${os.tmpdir()}/ringkv-faultfs-`);
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  const names = ['a', 'b', 'c'];
  const op = fc.oneof(
    fc.record({ k: fc.constant('open' as const), name: fc.constantFrom(...names), mode: fc.constantFrom('read' as const, 'append' as const, 'write' as const) }),
    fc.record({ k: fc.constant('append' as const), h: fc.nat(3), data: fc.uint8Array({ maxLength: 8 }) }),
    fc.record({ k: fc.constant('read' as const), h: fc.nat(3), len: fc.nat(12), pos: fc.nat(20) }),
    fc.record({ k: fc.constant('appendSync' as const), h: fc.nat(3), data: fc.uint8Array({ maxLength: 8 }) }),
    fc.record({ k: fc.constant('readSync' as const), h: fc.nat(3), len: fc.nat(12), pos: fc.nat(20) }),
    fc.record({ k: fc.constant('size' as const), h: fc.nat(3) }),
    fc.record({ k: fc.constant('close' as const), h: fc.nat(3) }),
    fc.record({ k: fc.constant('rename' as const), from: fc.constantFrom(...names), to: fc.constantFrom(...names) }),
    fc.record({ k: fc.constant('unlink' as const), name: fc.constantFrom(...names) }),
    fc.record({ k: fc.constant('truncate' as const), name: fc.constantFrom(...names), len: fc.nat(12) }),
    fc.record({ k: fc.constant('readFile' as const), name: fc.constantFrom(...names) }),
    fc.record({ k: fc.constant('exists' as const), name: fc.constantFrom(...names) }),
    fc.constant({ k: 'readdir' as const }),
  );
  type Op = typeof op extends import('fast-check').Arbitrary<infer T> ? T : never;
  type Fs = import('../../src/storage/fs.js').FileSystem;
  type Fh = import('../../src/storage/fs.js').FileHandle;
  async function run(fs: Fs, dir: string, ops: Op[]): Promise<string[]> {
    const handles: Fh[] = [];
    const out: string[] = [];
    for (const o of ops) {
      try {
        switch (o.k) {
          case 'open':
            handles.push(await fs.open(`${dir}/${o.name}`, o.mode));
            out.push('opened');
            break;
          case 'append': {
            const h = handles[o.h];
            if (!h) continue;
            await h.append(Buffer.from(o.data));
            out.push('appended');
            break;
          }
          case 'appendSync': {
            const h = handles[o.h];
            if (!h?.appendSync) continue;
            h.appendSync(Buffer.from(o.data));
            out.push('appended');
            break;
          }
          case 'readSync': {
            const h = handles[o.h];
            if (!h?.readSync) continue;
            const buf = Buffer.alloc(o.len);
            const n = h.readSync(buf, 0, o.len, o.pos);
            out.push(`read ${buf.subarray(0, n).toString('hex')}`);
            break;
          }
          case 'read': {
            const h = handles[o.h];
            if (!h) continue;
            const buf = Buffer.alloc(o.len);
            const n = await h.read(buf, 0, o.len, o.pos);
            out.push(`read ${buf.subarray(0, n).toString('hex')}`);
            break;
          }
          case 'size': {
            const h = handles[o.h];
            if (!h) continue;
            out.push(`size ${await h.size()}`);
            break;
          }
          case 'close': {
            const h = handles[o.h];
            if (!h) continue;
            handles.splice(o.h, 1);
            await h.close();
            out.push('closed');
            break;
          }
          case 'rename':
            await fs.rename(`${dir}/${o.from}`, `${dir}/${o.to}`);
            out.push('renamed');
            break;
          case 'unlink':
            await fs.unlink(`${dir}/${o.name}`);
            out.push('unlinked');
            break;
          case 'truncate':
            await fs.truncate(`${dir}/${o.name}`, o.len);
            out.push('truncated');
            break;
          case 'readFile':
            out.push(`file ${(await fs.readFile(`${dir}/${o.name}`)).toString('hex')}`);
            break;
          case 'exists':
            out.push(`exists ${await fs.exists(`${dir}/${o.name}`)}`);
            break;
          case 'readdir':
            out.push(`dir ${(await fs.readdir(dir)).sort().join(',')}`);
            break;
        }
      } catch (err) {
        out.push(`error ${(err as { code?: string }).code ?? String(err)}`);
      }
    }
    for (const h of handles) await h.close();
    return out;
  }
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
      const dir = `${root}/${n++}`;
      await fsp.mkdir(dir);
      const real = await run(nodeFileSystem, dir, ops);
      const fake = new FaultFileSystem();
      await fake.mkdir(dir);
      const sim = await run(fake, dir, ops);
      assert.deepStrictEqual(sim, real);
    }),
    { numRuns: 200 },
  );
  t.pass('200 random op sequences behaved identically');
  t.ok(new FaultFileSystem().syncMethods, 'the synchronous calls are on by default, as on nodeFileSystem');
  const plain = new FaultFileSystem({ syncMethods: false });
  await plain.mkdir(D);
  const h = await plain.open(`${D}/f`, 'write');
  t.equal(h.appendSync, undefined, 'and can be left out, like a layer without them');
  t.equal(plain.crash().syncMethods, false, 'the choice survives a crash');
});
