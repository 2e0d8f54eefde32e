/**
 * The server a black-box suite runs against. Normally a ringkv node; with
 * RINGKV_SUITE_TARGET=redis-server the same suite runs against a real redis-server, which is
 * how the suites themselves are checked: a test that fails against Redis asserts something
 * Redis does not do. Tests of ringkv-only behaviour skip themselves on that target
 * (`ringkvOnly`).
 */
import * as fs from 'node:fs/promises';
import { freePort } from './ports.js';
import { createNode, makeTempDir, type ConfigArgs } from './node_process.js';
import { redisServerPath } from './redis_server.js';
import { ServerProcess, type TeardownOwner } from './server_process.js';

export type TargetKind = 'ringkv' | 'redis-server';

export const TARGET_KIND: TargetKind =
  process.env.RINGKV_SUITE_TARGET === 'redis-server' ? 'redis-server' : 'ringkv';

/** Options for tap's t.test to skip ringkv-only cases on the redis-server target. */
export const ringkvOnly: { skip: string | false } = {
  skip: TARGET_KIND === 'ringkv' ? false : 'ringkv-only behaviour (suite runs against redis-server)',
};

export interface Target {
  readonly kind: TargetKind;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  log(): string;
  /** SIGTERM and wait; resolves with the exit status. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Start again with the same port and data dir. */
  start(): Promise<void>;
  restart(): Promise<void>;
  kill9(): Promise<void>;
  rssBytes(): number;
}

export interface TargetOptions {
  config?: ConfigArgs;
  /** A config file (ringkv: --conf FILE; redis-server: first argument). */
  confFile?: string;
  /** Data survives restart (redis-server: appendonly yes). ringkv always persists. */
  persistent?: boolean;
}

function redisArgs(port: number, dir: string, options: TargetOptions): string[] {
  const args: string[] = [];
  if (options.confFile !== undefined) args.push(options.confFile);
  args.push('--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no');
  args.push('--appendonly', options.persistent ? 'yes' : 'no');
  for (const [k, v] of Object.entries(options.config ?? {})) {
    args.push(`--${k}`, typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));
  }
  return args;
}

export async function startTarget(owner: TeardownOwner, options: TargetOptions = {}): Promise<Target> {
  if (TARGET_KIND === 'ringkv') {
    const node = await createNode(owner, { config: options.config, confFile: options.confFile });
    await node.start();
    return {
      kind: 'ringkv',
      get port() {
        return node.port;
      },
      get pid() {
        return node.pid;
      },
      dir: node.dir,
      log: () => node.fullLog,
      stop: () => node.stop(),
      start: () => node.start(),
      restart: () => node.restart(),
      kill9: () => node.kill9(),
      rssBytes: () => node.rssBytes(),
    };
  }
  const bin = redisServerPath();
  if (!bin) throw new Error('RINGKV_SUITE_TARGET=redis-server but redis-server is not installed');
  const dir = await makeTempDir('ringkv-suite-redis-');
  const port = await freePort();
  let proc: ServerProcess | undefined;
  let previousLogs = '';
  const start = async (): Promise<void> => {
    if (proc) previousLogs += proc.log;
    proc = await ServerProcess.start({
      command: bin,
      args: redisArgs(port, dir, options),
      port,
      readyPattern: /Ready to accept connections/,
    });
  };
  owner.teardown(async () => {
    try {
      await proc?.stop();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
  await start();
  const current = (): ServerProcess => proc!;
  return {
    kind: 'redis-server',
    port,
    get pid() {
      return current().pid;
    },
    dir,
    log: () => previousLogs + current().log,
    stop: () => current().stop(),
    start,
    restart: async () => {
      await current().stop();
      await start();
    },
    kill9: async () => {
      await current().kill9();
    },
    rssBytes: () => current().rssBytes(),
  };
}
