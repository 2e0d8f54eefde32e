// What `repair: true` dropped at open is reported in stats() (and the log), so the server can
// take a new actor epoch (identity.ts): a damaged table dropped, a damaged log record skipped,
// tables left out because the MANIFEST was missing. A clean open reports zeros.
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import { FOOTER_BYTES } from '../../src/storage/table_format.js';
import { StorageError } from '../../src/storage/types.js';
import { k, tempDir, v } from './helpers.js';

async function tables(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.sst')).sort();
}

async function flipByte(file: string, offset: number): Promise<void> {
  const buf = await fsp.readFile(file);
  buf[offset]! ^= 0x01;
  await fsp.writeFile(file, buf);
}

/** Two tables: key k(0) = "old" in the first, "new" in the second. Returns the newest table. */
async function twoTables(dir: string): Promise<string> {
  const e = await openEngine({ dir, appendfsync: 'always', autoCompact: false });
  await e.put(k(0), Buffer.from('old'));
  await e.flush();
  await e.put(k(0), Buffer.from('new'));
  await e.flush();
  await e.close();
  const names = await tables(dir);
  if (names.length !== 2) throw new Error(`want two tables, have ${names.join(', ')}`);
  return path.join(dir, names[names.length - 1]!);
}

t.test('a clean open reports nothing dropped', async (t) => {
  const dir = await tempDir(t);
  await twoTables(dir);
  const e = await openEngine({ dir, repair: true, autoCompact: false });
  t.equal(e.stats().repairDroppedTables, 0);
  t.equal(e.stats().repairSkippedLogBytes, 0);
  t.same(await e.get(k(0)), Buffer.from('new'));
  await e.close();
});

t.test('repair that drops a damaged table reports it in stats and the log', async (t) => {
  const dir = await tempDir(t);
  const newest = await twoTables(dir);
  const size = (await fsp.stat(newest)).size;
  await flipByte(newest, size - FOOTER_BYTES + 2);
  const err = await openEngine({ dir, autoCompact: false }).catch((x: unknown) => x);
  t.ok(err instanceof StorageError && err.code === 'ECORRUPT', 'without repair: ECORRUPT');
  const messages: string[] = [];
  const e = await openEngine({ dir, repair: true, autoCompact: false, log: (l, m) => messages.push(`${l} ${m}`) });
  t.teardown(() => e.close());
  t.equal(e.stats().repairDroppedTables, 1, 'one table dropped');
  t.equal(e.stats().repairSkippedLogBytes, 0);
  t.ok(messages.some((m) => m.startsWith('warn repair: lost data at open: 1 tables dropped')), messages.join('\n'));
  // The older version below the dropped table is not served (lost range, lost_ranges.ts).
  await t.rejects(e.get(k(0)), { code: 'ECORRUPT' }, 'no stale read below the dropped table');
  t.equal(e.stats().lostRanges, 1, 'one lost range recorded');
  await e.close();
  // The count is of the last open: the next open has nothing left to drop.
  const again = await openEngine({ dir, repair: true, autoCompact: false });
  t.equal(again.stats().repairDroppedTables, 0, 'the next open drops nothing');
  await again.close();
});

t.test('repair that skips a damaged log record reports the bytes', async (t) => {
  const dir = await tempDir(t);
  const e = await openEngine({ dir, appendfsync: 'always' });
  for (let i = 0; i < 20; i++) await e.put(k(i), v(i));
  await e.close();
  const log = (await fsp.readdir(dir)).find((n) => n.endsWith('.log'))!;
  await flipByte(path.join(dir, log), 40);
  const r = await openEngine({ dir, repair: true });
  t.ok(r.stats().repairSkippedLogBytes > 0, `skipped ${r.stats().repairSkippedLogBytes} log bytes`);
  t.equal(r.stats().repairDroppedTables, 0);
  await r.close();
});

t.test('repair without a MANIFEST counts the tables it leaves out', async (t) => {
  const dir = await tempDir(t);
  await twoTables(dir);
  await fsp.rm(path.join(dir, 'MANIFEST'));
  const e = await openEngine({ dir, repair: true, autoCompact: false });
  t.equal(e.stats().repairDroppedTables, 2, 'both tables dropped');
  // Their data is gone; "absent" would be a wrong answer, so the whole key space is lost.
  await t.rejects(e.get(k(0)), { code: 'ECORRUPT' }, 'a key of a dropped table: ECORRUPT, not absent');
  await t.rejects(e.get(k(999)), { code: 'ECORRUPT' }, 'any key: ECORRUPT (nothing tells what the tables held)');
  await e.put(k(999), Buffer.from('fresh'));
  t.same(await e.get(k(999)), Buffer.from('fresh'), 'a key written after the repair reads back');
  await e.close();
});
