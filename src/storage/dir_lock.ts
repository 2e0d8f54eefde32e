/**
 * Directory lock: one engine per directory. The LOCK file names its owner:
 *
 *   lock := "ringkv-lock pid=" pid " start=" startTime " boot=" bootId "\n"
 *
 * startTime is field 22 of /proc/<pid>/stat (clock ticks since boot) and bootId the kernel's
 * /proc/sys/kernel/random/boot_id; both are "-" where /proc is not available. Opening fails
 * with ELOCKED only when the owner is provably still running: its pid is alive, other than us,
 * AND (where known) that pid's start time and the boot id match. So a LOCK left by a dead
 * process (kill -9; also while it is a zombie its parent has not reaped yet, state Z or X in
 * /proc/<pid>/stat), by an earlier boot (power loss: the pid may now belong to an unrelated
 * process), or torn by a power loss (no complete line: the file was not fsynced) is stale and
 * taken over. A LOCK of the older format ("<pid>\n", no start time) counts by its pid alone.
 * A LOCK naming our own pid but held by no engine here (over the same FileSystem object) is a
 * leftover of an engine abandoned without close() (a simulated crash) and is taken over too.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FileSystem } from './fs.js';
import { StorageError } from './types.js';

export const LOCK_FILE = 'LOCK';
/** The LOCK file is tiny; anything larger is not ours. */
const LOCK_FILE_BYTES_MAX = 256;
/** Field of /proc/<pid>/stat holding the process start time (1-based, as in proc(5)). */
const PROC_STAT_START_TIME_FIELD = 22;

const heldByFs = new WeakMap<FileSystem, Set<string>>();

/** Who holds a LOCK; start and boot are undefined when unknown. */
export interface LockOwner {
  pid: number;
  start: string | undefined;
  boot: string | undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Fields of /proc/<pid>/stat from field 3 (state) on, undefined where procfs is not available.
 * Synchronous: a tiny procfs read, once per open. The comm field (2) may contain spaces and
 * parentheses, so fields are counted after the last ')'.
 */
function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Start time of a pid (field 22 of /proc/<pid>/stat), undefined if unknown. */
export function processStartTime(pid: number): string | undefined {
  const v = procStatFields(pid)?.[PROC_STAT_START_TIME_FIELD - 3];
  return v && /^\d+$/.test(v) ? v : undefined;
}

/**
 * True when the pid is a zombie or dead task (state Z or X): killed but not yet reaped by its
 * parent. kill(pid, 0) still succeeds for it, yet it holds no files and will never write again.
 */
export function processIsZombie(pid: number): boolean {
  const state = procStatFields(pid)?.[0];
  return state === 'Z' || state === 'X';
}

function bootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    return /^[0-9a-f-]+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The LOCK line for a pid (ours, or in tests another process's). */
export function lockLine(pid: number): string {
  return `ringkv-lock pid=${pid} start=${processStartTime(pid) ?? '-'} boot=${bootId() ?? '-'}\n`;
}

/** Parses a LOCK file's text; undefined when it is not a complete, well-formed lock (stale). */
export function parseLock(text: string): LockOwner | undefined {
  const m = /^ringkv-lock pid=(\d+) start=(\d+|-) boot=([0-9a-f-]+|-)\n$/.exec(text);
  if (m) {
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    return { pid, start: m[2] === '-' ? undefined : m[2], boot: m[3] === '-' ? undefined : m[3] };
  }
  const old = /^(\d+)\n$/.exec(text);
  if (old) {
    const pid = Number(old[1]);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid, start: undefined, boot: undefined } : undefined;
  }
  return undefined;
}

/** True when the owner is provably a running process (see the header). */
export function ownerRunning(owner: LockOwner): boolean {
  if (!processAlive(owner.pid) || processIsZombie(owner.pid)) return false;
  if (owner.boot !== undefined) {
    const now = bootId();
    if (now !== undefined && now !== owner.boot) return false;
  }
  if (owner.start !== undefined) {
    const now = processStartTime(owner.pid);
    if (now !== undefined && now !== owner.start) return false;
  }
  return true;
}

async function readOwner(fs: FileSystem, file: string): Promise<LockOwner | undefined> {
  try {
    const h = await fs.open(file, 'read');
    try {
      const size = Math.min(await h.size(), LOCK_FILE_BYTES_MAX);
      const buf = Buffer.alloc(size);
      const n = await h.read(buf, 0, size, 0);
      return parseLock(buf.subarray(0, n).toString('latin1'));
    } finally {
      await h.close();
    }
  } catch {
    return undefined;
  }
}

/** Takes the lock or throws ELOCKED; returns the release function. */
export async function acquireDirLock(fs: FileSystem, dir: string): Promise<() => Promise<void>> {
  const key = path.resolve(dir);
  let held = heldByFs.get(fs);
  if (!held) {
    held = new Set();
    heldByFs.set(fs, held);
  }
  if (held.has(key)) throw new StorageError('ELOCKED', `${dir} is already open in this process`);
  held.add(key);
  const file = path.join(dir, LOCK_FILE);
  try {
    const owner = await readOwner(fs, file);
    if (owner !== undefined && owner.pid !== process.pid && ownerRunning(owner)) {
      throw new StorageError('ELOCKED', `${dir} is locked by live process ${owner.pid}`);
    }
    // 'write' truncates: a longer stale LOCK leaves no tail behind.
    const h = await fs.open(file, 'write');
    try {
      await h.append(Buffer.from(lockLine(process.pid), 'latin1'));
    } finally {
      await h.close();
    }
  } catch (err) {
    held.delete(key);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    held!.delete(key);
    await fs.unlink(file).catch(() => undefined);
  };
}
