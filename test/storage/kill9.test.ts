/**
 * Real kill -9: a child process writes with appendfsync 'always' and reports every
 * acknowledged write; the parent SIGKILLs it at random moments (some during its open/recovery),
 * reopens the directory and checks that no acknowledged write is lost, no acknowledged delete
 * comes back and every value is exact. kill -9 keeps the page cache, so this proves the
 * acknowledgement protocol and recovery, not fsync (powerloss.test.ts covers fsync).
 * Two directories are cycled in parallel to fit the time budget. More cycles:
 * test/soak/storage_soak.ts.
 */
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runKill9Cycles, type Kill9Report } from './kill9_harness.js';
import { seededRandom } from './fault_fs.js';

const CYCLES = Number(process.env.KILL9_CYCLES ?? 50);
const LANES = 2;

t.test(`kill -9 a writing child ${CYCLES} times: zero acknowledged writes lost`, async (t) => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-kill9-'));
  const children: Array<ChildProcess | null> = new Array<ChildProcess | null>(LANES).fill(null);
  t.teardown(async () => {
    for (const c of children) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await fsp.rm(root, { recursive: true, force: true });
  });
  const seed = Number(process.env.KILL9_SEED ?? Date.now() % 1_000_000);
  const reports: Kill9Report[] = await Promise.all(
    Array.from({ length: LANES }, (_, lane) =>
      runKill9Cycles({
        dir: path.join(root, `db${lane}`),
        cycles: Math.ceil(CYCLES / LANES),
        minDelayMs: 20,
        maxDelayMs: 220,
        earlyKillChance: 0.1,
        window: 4,
        memtableBytes: 32 * 1024,
        random: seededRandom(seed + lane),
        onChild: (c) => {
          children[lane] = c;
        },
      }),
    ),
  );
  const sum = (f: (r: Kill9Report) => number) => reports.reduce((a, r) => a + f(r), 0);
  const cycles = sum((r) => r.cycles);
  t.same(reports.flatMap((r) => r.problems), [], `seed ${seed}: no lost, resurrected or wrong entries`);
  t.ok(cycles >= CYCLES, `${cycles} kill -9 cycles (${sum((r) => r.earlyKills)} killed before or during open)`);
  t.ok(sum((r) => r.cyclesWithAcks) >= cycles * 0.6, `${sum((r) => r.cyclesWithAcks)} cycles were killed after acknowledging writes`);
  t.ok(
    sum((r) => r.ackedPuts) >= cycles * 5,
    `${sum((r) => r.ackedPuts)} acknowledged puts, ${sum((r) => r.ackedDeletes)} deletes, ${sum((r) => r.liveKeys)} live keys at the end, ${sum((r) => r.tornBytes)} torn bytes dropped`,
  );
});
