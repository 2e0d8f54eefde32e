/**
 * Start and stop ringkv nodes as real processes for black-box tests (single node and cluster).
 *
 *   const node = await startNode(t, { config: { appendfsync: 'everysec' } });
 *   ... connect to 127.0.0.1:node.port ...
 *   await node.restart();          // SIGTERM, then the same port and data dir again
 *   await node.kill9(); await node.start();   // crash and recover
 *
 * The node runs `node <compiled src/cli/main.js> --port P --dir D [--key value ...]`, the CLI
 * path resolved relative to this compiled file (so it works from dist/ or any .build/ folder).
 * Contracts:
 * - The port is a free loopback port unless given; if the node fails to start because the port
 *   was taken meanwhile, start retries with a fresh port (only when the port was not given).
 * - The data dir is a fresh fs.mkdtemp dir unless given; a dir the helper created is removed
 *   by `dispose()` (registered as teardown when an owner is passed), never a dir it was given.
 * - Only the pid this helper spawned is ever signalled.
 */
import * as fs from 'node:fs/promises';
import * as fsSync from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, freePorts } from './ports.js';
import {
  ServerProcess,
  ProcessStartError,
  registerEmergencyCleanup,
  type TeardownOwner,
  STOP_GRACE_MS_DEFAULT,
} from './server_process.js';

/** The compiled CLI entry point, next to this helper's compiled tree. */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const READY_LINE = /Ready to accept connections tcp port=(\d+)/;
const START_ATTEMPTS_MAX = 3;
const PORT_IN_USE = /EADDRINUSE|address already in use|port .*in use/i;

export type ConfigArgs = Readonly<Record<string, string | number | boolean>>;

export interface NodeOptions {
  /** Fixed client port; default: a free one. */
  port?: number;
  /** Existing data dir to use (not removed by the helper); default: a fresh temp dir. */
  dir?: string;
  /** Config keys passed as `--key value` (booleans as yes/no). */
  config?: ConfigArgs;
  /** A config file, passed first as `--conf FILE` (command-line keys override it). */
  confFile?: string;
  /** Raw extra arguments appended after the config ones. */
  extraArgs?: readonly string[];
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Arguments for the node binary itself, e.g. ['--cpu-prof']. */
  nodeArgs?: readonly string[];
}

function configToArgs(config: ConfigArgs | undefined): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(config ?? {})) {
    args.push(`--${key}`, typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value));
  }
  return args;
}

/** Where `env` is on Debian (coreutils). */
export const ENV_BIN = '/usr/bin/env';

/**
 * How to spawn a ringkv node: `node <argv>`, but under tap through `env -u NODE_OPTIONS`, which
 * execs node in the same process (same pid, signals reach node directly) without the NODE_OPTIONS
 * that tap's @tapjs/processinfo adds to every child it sees spawned (it re-adds them even when
 * the env passed to spawn drops them). Those hooks load a module-loader thread into every node
 * and cost about 2.5x the CPU of the node's own start (0.57 s instead of 0.21 s measured); with
 * several nodes (re)starting on a loaded 2-core machine that pushed starts past the ready
 * timeout (cluster_3node under load). Nodes in tests should run as they do in production.
 */
export function nodeSpawnCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { command: string; args: string[] } {
  if ((env.NODE_OPTIONS ?? '').includes('@tapjs/') && fsSync.existsSync(ENV_BIN)) {
    return { command: ENV_BIN, args: ['-u', 'NODE_OPTIONS', process.execPath, ...argv] };
  }
  return { command: process.execPath, args: [...argv] };
}

export async function makeTempDir(prefix = 'ringkv-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** One ringkv node: a data dir and a port that outlive restarts, and the current process. */
export class RingkvNode {
  private proc: ServerProcess | undefined;
  private disposed = false;
  /** Output of earlier incarnations (before restarts), for diagnostics. */
  private previousLogs = '';

  constructor(
    public port: number,
    readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly options: NodeOptions,
    private readonly portFixed: boolean,
  ) {}

  get pid(): number {
    if (!this.proc) throw new Error('node is not running');
    return this.proc.pid;
  }

  get process(): ServerProcess {
    if (!this.proc) throw new Error('node was never started');
    return this.proc;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Output of the current incarnation. */
  get log(): string {
    return this.proc?.log ?? '';
  }

  /** Output of every incarnation so far. */
  get fullLog(): string {
    return this.previousLogs + this.log;
  }

  /** The argv after `node`, for the current port. */
  argv(): string[] {
    return [
      ...(this.options.nodeArgs ?? []),
      CLI_PATH,
      ...(this.options.confFile !== undefined ? ['--conf', this.options.confFile] : []),
      '--port',
      String(this.port),
      '--dir',
      this.dir,
      ...configToArgs(this.options.config),
      ...(this.options.extraArgs ?? []),
    ];
  }

  /** Starts the process (again) with the same dir; the port stays the same once it has started. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`node on port ${this.port} is already running`);
    if (this.proc) this.previousLogs += this.proc.log;
    for (let attempt = 1; ; attempt++) {
      try {
        this.proc = await ServerProcess.start({
          ...nodeSpawnCommand(this.argv(), this.options.env ?? process.env),
          port: this.port,
          readyPattern: new RegExp(`Ready to accept connections tcp port=${this.port}\\b`),
          readyTimeoutMs: this.options.readyTimeoutMs,
          env: this.options.env,
        });
        return;
      } catch (err) {
        const retry =
          err instanceof ProcessStartError &&
          !this.portFixed &&
          attempt < START_ATTEMPTS_MAX &&
          PORT_IN_USE.test(err.output);
        if (!retry) throw err;
        this.port = await freePort();
      }
    }
  }

  /** SIGTERM (SIGKILL after graceMs); resolves with the exit status. */
  async stop(graceMs = STOP_GRACE_MS_DEFAULT): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.proc) return { code: null, signal: null };
    return this.proc.stop(graceMs);
  }

  async kill9(): Promise<void> {
    if (this.proc) await this.proc.kill9();
  }

  /** Clean stop, then start with the same port and data dir. */
  async restart(): Promise<void> {
    await this.stop();
    // After a restart the port is fixed: clients and peers know the node by it.
    await this.start();
  }

  rssBytes(): number {
    return this.process.rssBytes();
  }

  /** Stops the process (SIGTERM, then SIGKILL) and removes the temp dir if the helper made it. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      await this.stop();
    } finally {
      if (this.ownsDir) await fs.rm(this.dir, { recursive: true, force: true });
    }
  }
}

const ownedDirs = new Set<string>();
// Last resort for a crashed or killed test; dispose() is the normal path.
registerEmergencyCleanup(() => {
  for (const dir of ownedDirs) fsSync.rmSync(dir, { recursive: true, force: true });
});

/** Creates a node object without starting it (e.g. to start several at once). */
export async function createNode(owner: TeardownOwner | null, options: NodeOptions = {}): Promise<RingkvNode> {
  const dir = options.dir ?? (await makeTempDir());
  const ownsDir = options.dir === undefined;
  if (ownsDir) ownedDirs.add(dir);
  const node = new RingkvNode(options.port ?? (await freePort()), dir, ownsDir, options, options.port !== undefined);
  owner?.teardown(async () => {
    await node.dispose();
    ownedDirs.delete(dir);
  });
  return node;
}

/** Starts one node; with an owner (a tap test) it is stopped and its temp dir removed at teardown. */
export async function startNode(owner: TeardownOwner | null, options: NodeOptions = {}): Promise<RingkvNode> {
  const node = await createNode(owner, options);
  try {
    await node.start();
  } catch (err) {
    if (!owner) await node.dispose();
    throw err;
  }
  return node;
}

/**
 * Starts `count` nodes on distinct free ports, concurrently. `perNode(i, ports)` may add options
 * per node (e.g. `seeds` built from the other nodes' ports), given all the ports up front.
 */
export async function startNodes(
  owner: TeardownOwner | null,
  count: number,
  perNode: (index: number, ports: readonly number[]) => NodeOptions = () => ({}),
): Promise<RingkvNode[]> {
  const ports = await freePorts(count);
  const nodes = await Promise.all(
    ports.map((port, i) => createNode(owner, { port, ...perNode(i, ports) })),
  );
  try {
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    if (!owner) await Promise.all(nodes.map((n) => n.dispose()));
    throw err;
  }
  return nodes;
}
