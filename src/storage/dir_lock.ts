/**
 * Directory lock: one engine per directory. The LOCK file holds the owner's pid. Opening fails
 * with ELOCKED when the pid in it is a live process other than us, or when an engine in this
 * process (over the same FileSystem object) holds the directory. A LOCK left by a dead process
 * (kill -9, power loss) is taken over. A LOCK naming our own pid but held by no engine here is a
 * leftover of an engine abandoned without close() (a simulated crash) and is taken over too.
 */
import * as path from 'node:path';
import type { FileSystem } from './fs.js';
import { StorageError } from './types.js';

export const LOCK_FILE = 'LOCK';
/** The LOCK file is tiny; anything larger is not ours. */
const LOCK_FILE_BYTES_MAX = 64;

const heldByFs = new WeakMap<FileSystem, Set<string>>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(fs: FileSystem, file: string): Promise<number | undefined> {
  try {
    const h = await fs.open(file, 'read');
    try {
      const size = Math.min(await h.size(), LOCK_FILE_BYTES_MAX);
      const buf = Buffer.alloc(size);
      const n = await h.read(buf, 0, size, 0);
      const pid = Number.parseInt(buf.subarray(0, n).toString('latin1').trim(), 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
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
    const pid = await readPid(fs, file);
    if (pid !== undefined && pid !== process.pid && processAlive(pid)) {
      throw new StorageError('ELOCKED', `${dir} is locked by live process ${pid}`);
    }
    const h = await fs.open(file, 'write');
    try {
      await h.append(Buffer.from(`${process.pid}\n`));
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
