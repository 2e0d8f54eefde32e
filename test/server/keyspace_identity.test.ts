// Node identity: persisted id, a new actor epoch whenever local data may be lost (KV679),
// durable writes, and refusal of a damaged identity file.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { decideIdentity, IDENTITY_FILE_NAME, IdentityError, loadIdentity, markStopped, parseIdentity, serializeIdentity } from '../../src/server/identity.js';
import { ENGINE_DIR_NAME, Keyspace } from '../../src/server/keyspace.js';
import { openEngine } from '../../src/storage/engine.js';
import { FOOTER_BYTES } from '../../src/storage/table_format.js';
import { openFixture, TestConfig } from './keyspace_fixture.js';

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-identity-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('decideIdentity table', async (t) => {
  const identity = { nodeId: 'a'.repeat(40), epoch: '00000001', actor: `${'a'.repeat(40)}.00000001`, createdAtMs: 5 };
  const stored = { ...identity, running: false };
  t.same(decideIdentity(stored, true, 10), { action: 'keep', identity }, 'clean stop, data present: keep');
  const crashed = decideIdentity({ ...identity, running: true }, true, 10);
  t.equal(crashed.action, 'new-epoch', 'unclean stop: new epoch');
  t.equal(crashed.identity.nodeId, identity.nodeId);
  t.not(crashed.identity.epoch, identity.epoch);
  const reEpoch = decideIdentity(stored, false, 10);
  t.equal(reEpoch.action, 'new-epoch');
  t.equal(reEpoch.identity.nodeId, stored.nodeId, 'data lost: same id');
  t.not(reEpoch.identity.epoch, stored.epoch, 'data lost: new epoch');
  t.equal(reEpoch.identity.actor, `${stored.nodeId}.${reEpoch.identity.epoch}`);
  // A random source that first returns the old epoch must not be able to reuse it.
  let calls = 0;
  const sticky = (n: number) => (calls++ === 0 ? Buffer.from('00000001', 'hex') : Buffer.alloc(n, 7));
  t.equal(decideIdentity(stored, false, 10, sticky).identity.epoch, '07070707');
  const repaired = decideIdentity(stored, true, 10, undefined, 'storage repair dropped 1 tables');
  t.equal(repaired.action, 'new-epoch', 'repair dropped data: new epoch');
  t.equal(repaired.identity.nodeId, stored.nodeId);
  t.not(repaired.identity.epoch, stored.epoch);
  t.match(repaired.action === 'keep' ? '' : repaired.reason, /^storage repair dropped 1 tables: new actor epoch/);
  const fresh = decideIdentity(undefined, false, 10);
  t.equal(fresh.action, 'new-node');
  t.match(fresh.identity.nodeId, /^[0-9a-f]{40}$/);
  t.match(fresh.identity.epoch, /^[0-9a-f]{8}$/);
  t.ok(Buffer.byteLength(fresh.identity.actor) <= 64, 'actor fits the object model cap');
});

t.test('parse rejects damaged files', async (t) => {
  const good = serializeIdentity({ nodeId: 'b'.repeat(40), epoch: 'deadbeef', actor: '', createdAtMs: 1 }, true);
  t.equal(parseIdentity(good).actor, `${'b'.repeat(40)}.deadbeef`);
  t.equal(parseIdentity(good).running, true);
  for (const bad of ['', '{', '[]', '{"version":2}', good.toString().replace('deadbeef', 'xyz'), good.toString().replace('"b', '"Z'), good.toString().replace('true', '"yes"')]) {
    t.throws(() => parseIdentity(Buffer.from(bad)), IdentityError, JSON.stringify(bad).slice(0, 40));
  }
});

t.test('persisted across restarts; new epoch after the data dir is wiped', async (t) => {
  const dir = await tempDir(t);
  const first = await openFixture(t, { dir });
  const id1 = first.ks.identity;
  await first.run('SET', 'k', 'v');
  await first.reopen();
  t.same(first.ks.identity, id1, 'restart keeps id and epoch');
  const onDisk = JSON.parse(await fsp.readFile(path.join(dir, IDENTITY_FILE_NAME), 'utf8')) as Record<string, unknown>;
  t.equal(onDisk.nodeId, id1.nodeId);
  t.equal(onDisk.epoch, id1.epoch);
  await first.ks.close();

  // Wipe the engine's data only: same id, new epoch, so new dots never reuse old counters.
  await fsp.rm(path.join(dir, 'engine'), { recursive: true, force: true });
  await first.reopen();
  t.equal(first.ks.nodeId, id1.nodeId);
  t.not(first.ks.identity.epoch, id1.epoch);
  t.not(first.ks.actor, id1.actor);
  t.equal(await first.run('GET', 'k'), null, 'the data is gone');
  await first.ks.close();

  // Wipe everything: a new node id.
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir);
  await first.reopen();
  t.not(first.ks.nodeId, id1.nodeId);
});

t.test('a node that did not shut down cleanly takes a new epoch', async (t) => {
  const dir = await tempDir(t);
  const fx = await openFixture(t, { dir });
  await fx.run('SET', 'k', 'v');
  const before = fx.ks.identity;
  await fx.ks.close();
  // What a crash leaves behind: the file still says a process is running.
  const file = path.join(dir, IDENTITY_FILE_NAME);
  const rec = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
  t.equal(rec.running, false, 'a clean close recorded');
  await fsp.writeFile(file, JSON.stringify({ ...rec, running: true }));
  await fx.reopen();
  t.equal(fx.ks.nodeId, before.nodeId);
  t.not(fx.ks.identity.epoch, before.epoch);
  t.equal(await fx.run('GET', 'k'), 'v', 'the data is still there');
  t.match(fx.logs.join('\n'), /did not shut down cleanly/);
});

t.test('a fresh epoch keeps dots from colliding with what other replicas hold (KV679)', async (t) => {
  const dir = await tempDir(t);
  const fx = await openFixture(t, { dir });
  await fx.run('SET', 'k', 'v1');
  await fx.run('SET', 'k', 'v2');
  const before = await fx.ks.readObject(Buffer.from('k'));
  await fx.ks.close();
  await fsp.rm(path.join(dir, 'engine'), { recursive: true, force: true });
  await fx.reopen();
  await fx.run('SET', 'k', 'new');
  const after = await fx.ks.readObject(Buffer.from('k'));
  // Another replica still holding `before` merges `after`: the new write must survive.
  const merged = await fx.ks.mergeObject(Buffer.from('k'), before);
  t.same(merged.siblings.map((s) => s.value?.toString()).sort(), ['new', 'v2'], 'concurrent, not silently dominated');
  t.not(after.siblings[0]!.dot.actor, before.siblings[0]!.dot.actor);
});

t.test('loadIdentity writes durably through the FileSystem (temp, fsync, rename, fsync dir)', async (t) => {
  const dir = await tempDir(t);
  const calls: string[] = [];
  const { nodeFileSystem } = await import('../../src/storage/fs.js');
  const fs = {
    ...nodeFileSystem,
    async open(file: string, mode: 'read' | 'append' | 'write') {
      calls.push(`open ${path.basename(file)} ${mode}`);
      const h = await nodeFileSystem.open(file, mode);
      return {
        read: h.read.bind(h),
        size: h.size.bind(h),
        close: h.close.bind(h),
        append: async (d: Buffer) => {
          calls.push('append');
          await h.append(d);
        },
        sync: async () => {
          calls.push('sync');
          await h.sync();
        },
      };
    },
    async rename(from: string, to: string) {
      calls.push(`rename ${path.basename(from)} ${path.basename(to)}`);
      await nodeFileSystem.rename(from, to);
    },
    async syncDir(d: string) {
      calls.push(`syncDir`);
      await nodeFileSystem.syncDir(d);
    },
  };
  const durableWrite = [`open ${IDENTITY_FILE_NAME}.tmp write`, 'append', 'sync', `rename ${IDENTITY_FILE_NAME}.tmp ${IDENTITY_FILE_NAME}`, 'syncDir'];
  const id = await loadIdentity({ dir, dataPresent: false, nowMs: 1, fs });
  t.same(calls, durableWrite);
  calls.length = 0;
  await markStopped(dir, id, fs);
  t.same(calls, durableWrite, 'the clean stop is written durably too');
  calls.length = 0;
  t.same(await loadIdentity({ dir, dataPresent: true, nowMs: 2, fs }), id, 'after a clean stop: same identity');
  t.same(calls, durableWrite, 'and the file says running again');
  const afterCrash = await loadIdentity({ dir, dataPresent: true, nowMs: 3, fs });
  t.equal(afterCrash.nodeId, id.nodeId);
  t.not(afterCrash.epoch, id.epoch, 'no clean stop recorded: new epoch');
  await fsp.writeFile(path.join(dir, IDENTITY_FILE_NAME), 'garbage');
  await t.rejects(loadIdentity({ dir, dataPresent: true, nowMs: 3, fs }), IdentityError, 'a damaged file stops the open');
});

t.test('a storage repair that dropped a table gives a new epoch; a repair that dropped nothing does not', async (t) => {
  const dir = await tempDir(t);
  const engineDir = path.join(dir, ENGINE_DIR_NAME);
  const fx = await openFixture(t, { dir });
  await fx.run('SET', 'k', 'v1');
  await fx.reopen(); // the engine flushes the replayed log into a table at open
  await fx.run('SET', 'k', 'v2');
  await fx.ks.close();
  await (await openEngine({ dir: engineDir, autoCompact: false })).close(); // v2 into a newer table
  const tables = (await fsp.readdir(engineDir)).filter((n) => n.endsWith('.sst')).sort();
  t.equal(tables.length, 2, 'v1 and v2 in separate tables');
  const clean = fx.ks.identity;

  const openWithRepair = async (logs: string[]): Promise<Keyspace> => {
    const engine = await openEngine({ dir: engineDir, repair: true, autoCompact: false, log: (l, m) => logs.push(`${l} ${m}`) });
    return Keyspace.open({ dir, config: new TestConfig(), now: () => Date.now(), log: (l, m) => logs.push(`${l} ${m}`), engine });
  };

  // Control: repair that finds nothing damaged keeps the epoch.
  const quietLogs: string[] = [];
  let ks = await openWithRepair(quietLogs);
  t.same(ks.identity, clean, 'nothing dropped: same identity');
  await ks.close();

  const newest = path.join(engineDir, tables[tables.length - 1]!);
  const buf = await fsp.readFile(newest);
  buf[buf.length - FOOTER_BYTES + 2]! ^= 0x01;
  await fsp.writeFile(newest, buf);
  const logs: string[] = [];
  ks = await openWithRepair(logs);
  t.teardown(() => ks.close());
  t.equal(ks.identity.nodeId, clean.nodeId, 'same node id');
  t.not(ks.identity.epoch, clean.epoch, 'new actor epoch after repair dropped a table');
  t.match(logs.join('\n'), /warn identity: storage repair dropped 1 tables and 0 log bytes: new actor epoch/);
  // The engine records the dropped table's range as lost (src/storage/lost_ranges.ts): the stale
  // v1 below it is not served as the current object.
  await t.rejects(ks.readObject(Buffer.from('k')), { code: 'ECORRUPT' }, 'no stale local object');
  await ks.close();
});
