/** Shared helpers for the storage unit tests: temp dirs that are removed on teardown. */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TapLike {
  teardown(fn: () => unknown): void;
}

export async function tempDir(t: TapLike, prefix = 'ringkv-storage-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

export function k(i: number, width = 8): Buffer {
  return Buffer.from(`k${String(i).padStart(width, '0')}`);
}

export function v(i: number, size = 32): Buffer {
  const b = Buffer.alloc(size, 0);
  b.write(`v${i}-`);
  return b;
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
