/**
 * A real redis-server (Debian `redis-server`) as a reference in tests and benchmarks: tests send
 * the same bytes to it and to ringkv and compare replies. When redis-server is not installed
 * the comparison is skipped (`redisServerPath()` returns undefined), never faked.
 */
import * as fs from 'node:fs/promises';
import * as fsSync from 'node:fs';
import * as path from 'node:path';
import { freePort } from './ports.js';
import { makeTempDir } from './node_process.js';
import { ServerProcess, type TeardownOwner } from './server_process.js';

const SEARCH_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/sbin'];

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...SEARCH_DIRS];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fsSync.accessSync(file, fsSync.constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export const redisServerPath = (): string | undefined => findExecutable('redis-server');
export const redisCliPath = (): string | undefined => findExecutable('redis-cli');
export const redisBenchmarkPath = (): string | undefined => findExecutable('redis-benchmark');

export interface RedisServerHandle {
  proc: ServerProcess;
  port: number;
  dir: string;
  dispose(): Promise<void>;
}

/**
 * Starts redis-server on a free loopback port with its own temp dir, no RDB snapshots, and the
 * given extra directives (`['--appendonly', 'yes']`).
 */
export async function startRedisServer(
  owner: TeardownOwner | null,
  extraArgs: readonly string[] = [],
): Promise<RedisServerHandle> {
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server is not installed');
  const dir = await makeTempDir('ringkv-redis-ref-');
  const port = await freePort();
  let proc: ServerProcess;
  try {
    proc = await ServerProcess.start({
      command: bin,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', ...extraArgs],
      port,
      readyPattern: /Ready to accept connections/,
    });
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
  let disposed = false;
  const handle: RedisServerHandle = {
    proc,
    port,
    dir,
    async dispose() {
      if (disposed) return;
      disposed = true;
      try {
        await proc.stop();
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };
  owner?.teardown(() => handle.dispose());
  return handle;
}
