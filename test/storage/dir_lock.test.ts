import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { openEngine } from '../../src/storage/engine.js';
import { LOCK_FILE, lockLine, parseLock, processIsZombie, processStartTime } from '../../src/storage/dir_lock.js';
import { StorageError } from '../../src/storage/types.js';
import { tempDir } from './helpers.js';

/** A child that lives until killed (stopped in teardown, even on failure). */
async function liveChild(t: Test): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await once(child, 'spawn');
  return child;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

async function openWithLock(t: Test, text: string): Promise<unknown> {
  const dir = await tempDir(t);
  await fsp.writeFile(path.join(dir, LOCK_FILE), text);
  try {
    const e = await openEngine({ dir, appendfsync: 'no' });
    const held = parseLock(await fsp.readFile(path.join(dir, LOCK_FILE), 'latin1'));
    t.equal(held?.pid, process.pid, 'the LOCK now names this process');
    await e.close();
    return 'opened';
  } catch (err) {
    return err instanceof StorageError ? err.code : err;
  }
}

t.test('a LOCK of a running process blocks open; a stale one does not', async (t) => {
  const live = await liveChild(t);
  const pid = live.pid!;
  t.ok(processStartTime(pid) !== undefined, 'start time readable from /proc');
  t.equal(await openWithLock(t, lockLine(pid)), 'ELOCKED', 'live owner, same start time and boot');
  t.equal(await openWithLock(t, `${pid}\n`), 'ELOCKED', 'old format naming a live pid');
  t.equal(await openWithLock(t, lockLine(await deadPid())), 'opened', 'owner is dead (kill -9)');
  const reused = lockLine(pid).replace(/start=\d+/, 'start=1');
  t.equal(await openWithLock(t, reused), 'opened', 'pid alive but started at another time: pid reused');
  const otherBoot = lockLine(pid).replace(/boot=[0-9a-f-]+/, 'boot=00000000-0000-0000-0000-000000000000');
  t.equal(await openWithLock(t, otherBoot), 'opened', 'written during an earlier boot');
  t.equal(await openWithLock(t, '1'), 'opened', 'torn by a power loss: a prefix naming pid 1 (alive)');
  t.equal(await openWithLock(t, lockLine(pid).slice(0, -1)), 'opened', 'torn: no final newline');
  t.equal(await openWithLock(t, 'garbage\n'), 'opened', 'unparsable');
});

t.test('two engines on one directory: the second gets ELOCKED until the first closes', async (t) => {
  const dir = await tempDir(t);
  const a = await openEngine({ dir, appendfsync: 'no' });
  await t.rejects(openEngine({ dir, appendfsync: 'no' }), { code: 'ELOCKED' });
  await a.close();
  const b = await openEngine({ dir, appendfsync: 'no' });
  await b.close();
});

/** How long the child that becomes a zombie lives, s. */
const ZOMBIE_CHILD_LIFE_S = 1;

t.test('a LOCK naming a zombie (killed, not yet reaped by its parent) does not block open', async (t) => {
  // sh starts a short-lived child, prints its pid, then becomes `sleep`, which never reaps it:
  // once the child exits it stays a zombie until the sh/sleep process is killed. The child lives
  // for a second so that it exits after the exec: one that exited while sh was still sh could be
  // reaped by sh (seen in CI on a loaded machine with `sleep 0`: ESRCH instead of a zombie).
  const parent = spawn('sh', ['-c', `sleep ${ZOMBIE_CHILD_LIFE_S} & echo $!; exec sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => {
    if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  });
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const zombie = Number(line.toString('latin1').trim());
  t.ok(Number.isSafeInteger(zombie) && zombie > 0, `child pid ${zombie}`);
  const deadline = Date.now() + 20_000;
  while (!processIsZombie(zombie) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(processIsZombie(zombie), 'the child is a zombie (state Z)');
  t.doesNotThrow(() => process.kill(zombie, 0), 'kill(pid, 0) still succeeds for it');
  t.equal(await openWithLock(t, lockLine(zombie)), 'opened', 'its LOCK is stale');
  t.notOk(processIsZombie(process.pid), 'this process is not a zombie');
});
