// Repair never serves a stale version in place of dropped data (docs/KNOWN_ISSUES.md, the
// "[storageproof 02:41 UTC]" bug): the dropped table's key range is recorded as a lost range
// (src/storage/lost_ranges.ts) in the MANIFEST. Reads there that could see an older version,
// a resurrected delete or a missing key answer ECORRUPT; a key written again reads back; the
// range survives reopen; scans stop with ECORRUPT where they enter it; a healing tombstone is
// not dropped by compaction past the grace period; clearLostRanges() returns to old semantics.
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { openEngine, type EngineOptions } from '../../src/storage/engine.js';
import { firstLostKeyInScan, lostRangeFor, type LostRange } from '../../src/storage/lost_ranges.js';
import { FOOTER_BYTES } from '../../src/storage/table_format.js';
import { collect, k, tempDir } from './helpers.js';

async function damageNewestTable(dir: string): Promise<void> {
  const names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.sst')).sort();
  const file = path.join(dir, names[names.length - 1]!);
  const buf = await fsp.readFile(file);
  buf[buf.length - FOOTER_BYTES + 2]! ^= 0x01;
  await fsp.writeFile(file, buf);
}

/**
 * Lower table: k(0..9) = "old-i". Upper (newest) table: k(3) = "new", k(4) deleted, k(5) = "new".
 * Then the upper table is damaged, so repair drops [k(3), k(5)].
 */
async function damagedImage(dir: string, extra: Partial<EngineOptions> = {}): Promise<void> {
  const e = await openEngine({ dir, appendfsync: 'always', autoCompact: false, ...extra });
  for (let i = 0; i < 10; i++) await e.put(k(i), Buffer.from(`old-${i}`));
  await e.flush();
  await e.put(k(3), Buffer.from('new'));
  await e.delete(k(4));
  await e.put(k(5), Buffer.from('new'));
  await e.flush();
  await e.close();
  await damageNewestTable(dir);
}

t.test('pure rule: a read in a lost range is trusted only for versions newer than the loss', async (t) => {
  const r: LostRange = { smallestKey: k(3), largestKey: k(5), maxSeq: 100 };
  t.equal(lostRangeFor([r], k(2), undefined), undefined, 'outside the range');
  t.equal(lostRangeFor([r], k(6), 5), undefined, 'outside the range');
  t.equal(lostRangeFor([r], k(4), undefined), r, 'nothing found inside: may be lost');
  t.equal(lostRangeFor([r], k(3), 100), r, 'a version as old as the loss: may be stale');
  t.equal(lostRangeFor([r], k(5), 101), undefined, 'newer than the loss: trusted');
  const open: LostRange = { smallestKey: Buffer.alloc(0), largestKey: null, maxSeq: 7 };
  t.equal(lostRangeFor([open], Buffer.from([0xff, 0xff]), 3), open, 'unbounded range holds every key');
  t.same(firstLostKeyInScan([r], undefined, undefined), k(3));
  t.same(firstLostKeyInScan([r], k(4), undefined), k(4), 'a scan starting inside enters at its start');
  t.equal(firstLostKeyInScan([r], k(6), undefined), undefined, 'a scan after the range');
  t.equal(firstLostKeyInScan([r], undefined, k(3)), undefined, 'a scan ending before the range (lt exclusive)');
});

t.test('repair: older versions, deleted keys and missing keys in the dropped range answer ECORRUPT', async (t) => {
  const dir = await tempDir(t);
  await damagedImage(dir);
  const e = await openEngine({ dir, repair: true, autoCompact: false });
  t.teardown(() => e.close());
  t.equal(e.stats().repairDroppedTables, 1);
  t.equal(e.stats().lostRanges, 1);
  await t.rejects(e.get(k(3)), { code: 'ECORRUPT' }, 'k3: its "new" was dropped, "old-3" below is not served');
  await t.rejects(e.get(k(4)), { code: 'ECORRUPT' }, 'k4: deleted in the dropped table, does not come back');
  await t.rejects(e.getEntry(k(5)), { code: 'ECORRUPT' }, 'getEntry refuses too');
  t.equal(e.getSync(k(3)), undefined, 'getSync defers to getEntry');
  await t.rejects(e.get(Buffer.concat([k(3), Buffer.from('x')])), { code: 'ECORRUPT' }, 'a key in the range that no table holds');
  t.same(await e.get(k(2)), Buffer.from('old-2'), 'keys outside the range read as before');
  t.same(await e.get(k(6)), Buffer.from('old-6'));
  t.same(e.getSync(k(6)), Buffer.from('old-6'));

  // Scans: entries before the range, then ECORRUPT; scans around it are unaffected.
  const seen: string[] = [];
  await t.rejects(
    (async () => {
      for await (const x of e.range()) seen.push(x.key.toString());
    })(),
    { code: 'ECORRUPT' },
    'a full scan stops where it enters the lost range',
  );
  t.same(seen, [0, 1, 2].map((i) => k(i).toString()), 'with every entry before it');
  t.same((await collect(e.range({ limit: 2 }))).map((x) => x.value.toString()), ['old-0', 'old-1'], 'a limit that stops before the range');
  t.same((await collect(e.range({ gte: k(6) }))).length, 4, 'a scan after the range');
  await t.rejects(collect(e.range({ gte: k(4), lt: k(5) })), { code: 'ECORRUPT' }, 'a scan inside the range');

  // Writing a key again heals it; a delete heals it as absent.
  await e.put(k(3), Buffer.from('healed'));
  await e.delete(k(4));
  t.same(await e.get(k(3)), Buffer.from('healed'));
  t.equal(await e.get(k(4)), undefined);
  await t.rejects(e.get(k(5)), { code: 'ECORRUPT' }, 'a key not rewritten stays refused');
});

t.test('the lost range survives reopen (with and without repair) and flush; clearLostRanges ends it', async (t) => {
  const dir = await tempDir(t);
  await damagedImage(dir);
  let e = await openEngine({ dir, repair: true, autoCompact: false });
  await e.put(k(3), Buffer.from('healed'));
  await e.flush();
  await e.close();
  e = await openEngine({ dir, autoCompact: false }); // nothing damaged left: opens without repair
  t.equal(e.stats().lostRanges, 1, 'still recorded in the MANIFEST');
  t.equal(e.stats().repairDroppedTables, 0, 'this open dropped nothing');
  t.same(await e.get(k(3)), Buffer.from('healed'), 'the healed key, now from a table');
  await t.rejects(e.get(k(5)), { code: 'ECORRUPT' });
  await e.compactAll();
  await t.rejects(e.get(k(5)), { code: 'ECORRUPT' }, 'compaction does not launder old versions');
  t.equal(await e.clearLostRanges(), 1);
  t.same(await e.get(k(5)), Buffer.from('old-5'), 'cleared: what is left is served (the operator accepted it)');
  await e.close();
  e = await openEngine({ dir, autoCompact: false });
  t.teardown(() => e.close());
  t.equal(e.stats().lostRanges, 0, 'the clearing is persisted');
  t.same((await collect(e.range())).length, 10, 'scans run through again');
});

t.test('a tombstone that heals a key in a lost range outlives the grace period', async (t) => {
  const dir = await tempDir(t);
  let nowMs = 1_700_000_000_000;
  const graceMs = 1000;
  await damagedImage(dir, { now: () => nowMs, tombstoneGraceMs: graceMs });
  const e = await openEngine({ dir, repair: true, autoCompact: false, now: () => nowMs, tombstoneGraceMs: graceMs });
  t.teardown(() => e.close());
  await e.delete(k(3));
  t.equal(await e.get(k(3)), undefined, 'healed as deleted');
  nowMs += 10 * graceMs;
  await e.compactAll();
  t.equal(await e.get(k(3)), undefined, 'still deleted, not ECORRUPT, after a bottom compaction past the grace period');
  // Outside lost ranges tombstones still go: k(8) deleted, compacted away, reads absent.
  await e.delete(k(8));
  nowMs += 10 * graceMs;
  await e.compactAll();
  t.equal(await e.get(k(8)), undefined);
});
