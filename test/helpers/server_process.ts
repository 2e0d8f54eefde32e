/**
 * A server child process owned by a test: spawned, waited on until it accepts connections,
 * and stopped by its pid (SIGTERM, then SIGKILL after a grace period). Generic over the
 * program (ringkv node, real redis-server, bench servers); node_process.ts and redis_server.ts
 * build on it.
 *
 * Contracts:
 * - `start` resolves only when the process printed its ready line or answered a PING on its
 *   port (any RESP reply counts: `-NOAUTH` proves it is listening too); it rejects, with the
 *   tail of the output, if the process exits first or is not ready in time (it is then killed).
 * - Every process started here is SIGKILLed by pid if the test process exits (or gets SIGTERM or
 *   SIGINT) without stopping it, so a crashed or timed-out test leaves no orphan behind.
 *   Nothing else is ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { LOOPBACK_HOST } from './ports.js';

/** Output kept per process for diagnostics and log assertions (the tail beyond is dropped). */
export const OUTPUT_KEPT_BYTES_MAX = 1024 * 1024;
/**
 * How long a started or restarted node may take to answer PING. A restart replays its log and
 * rebuilds its key counts; on a loaded 2-core machine (CI, other builds) that took more than 20 s
 * once (elastic_down_join at load 12), on a quiet one about 1 s.
 */
export const READY_TIMEOUT_MS_DEFAULT = 60_000;
export const STOP_GRACE_MS_DEFAULT = 10_000;
const PING_PROBE_INTERVAL_MS = 100;
const PING_PROBE_TIMEOUT_MS = 1_000;

/** Anything with tap's `teardown`, so helpers can register cleanup without importing tap. */
export interface TeardownOwner {
  teardown(fn: () => unknown): void;
}

export interface SpawnSpec {
  command: string;
  args: readonly string[];
  port: number;
  /** A line the program prints once it is listening. */
  readyPattern?: RegExp;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class ProcessStartError extends Error {
  readonly code = 'PROCESS_START';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}\n--- output tail ---\n${output.slice(-4000)}`);
  }
}

const live = new Set<ChildProcess>();
const emergencyCleanups: Array<() => void> = [];
let exitHookInstalled = false;

function killLiveChildren(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

function runEmergencyCleanup(): void {
  killLiveChildren();
  for (const fn of emergencyCleanups.splice(0)) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

/**
 * Last-resort cleanup when the test process ends without its teardowns: normal exit, or
 * SIGTERM/SIGINT (tap's timeout). Children are SIGKILLed by pid, then `fn`s run (synchronous:
 * e.g. removing temp dirs). On a signal nobody else handles, the signal is re-raised so the
 * process still dies of it.
 */
export function registerEmergencyCleanup(fn?: () => void): void {
  if (fn) emergencyCleanups.push(fn);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', runEmergencyCleanup);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const onSignal = (): void => {
      runEmergencyCleanup();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

function installExitHook(): void {
  registerEmergencyCleanup();
}

export class ServerProcess {
  private output = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly spec: SpawnSpec,
  ) {
    live.add(child);
    const onData = (chunk: Buffer): void => {
      this.output += chunk.toString('utf8');
      if (this.output.length > OUTPUT_KEPT_BYTES_MAX) this.output = this.output.slice(-OUTPUT_KEPT_BYTES_MAX);
      for (const w of [...this.waiters]) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.exitInfo = { code, signal };
        for (const w of [...this.waiters]) w();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get port(): number {
    return this.spec.port;
  }

  /** Everything the process printed (stdout and stderr interleaved), up to OUTPUT_KEPT_BYTES_MAX. */
  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  static async start(spec: SpawnSpec): Promise<ServerProcess> {
    installExitHook();
    const child = spawn(spec.command, [...spec.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: spec.env ?? process.env,
      cwd: spec.cwd,
    });
    const proc = new ServerProcess(child, spec);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new ProcessStartError(`cannot spawn ${spec.command}: ${err.message}`, '')));
    });
    try {
      await proc.waitReady(spec.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT);
    } catch (err) {
      await proc.kill9();
      throw err;
    }
    return proc;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new ProcessStartError(
          `${this.spec.command} exited before it was ready (${JSON.stringify(this.exitInfo)})`,
          this.output,
        );
      }
      if (this.spec.readyPattern?.test(this.output)) return;
      if (await pingAnswers(this.spec.port)) return;
      await this.waitOutputOrExit(PING_PROBE_INTERVAL_MS);
    }
    throw new ProcessStartError(`${this.spec.command} not ready after ${timeoutMs} ms`, this.output);
  }

  private waitOutputOrExit(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Resolves when `pattern` appears in the output (searching from `fromOffset`), rejects after timeoutMs. */
  async waitForLog(pattern: RegExp, timeoutMs: number, fromOffset = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output.slice(fromOffset));
      if (m) return m[0];
      if (Date.now() >= deadline) throw new Error(`log did not match ${pattern} within ${timeoutMs} ms`);
      await this.waitOutputOrExit(Math.min(200, deadline - Date.now()));
    }
  }

  /** Resolves with the exit status (immediately if already exited). */
  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      /* raced with exit */
    }
  }

  /** SIGTERM, wait up to graceMs, then SIGKILL. Idempotent. Returns the exit status. */
  async stop(graceMs = STOP_GRACE_MS_DEFAULT): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** kill -9 and wait for the exit. */
  async kill9(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** SIGSTOP / SIGCONT, for tests of a paused (not dead) process. */
  pause(): void {
    this.signal('SIGSTOP');
  }
  resume(): void {
    this.signal('SIGCONT');
  }

  /** Resident set size from /proc/<pid>/status (Linux), in bytes. */
  rssBytes(): number {
    return readVmRssBytes(this.pid);
  }
}

/** VmRSS of a pid in bytes, from /proc/<pid>/status. */
export function readVmRssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** True if something on the port answers an inline PING with any RESP line. */
export function pingAnswers(port: number, timeoutMs = PING_PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: LOOPBACK_HOST });
    let buf = '';
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) finish(/^[+-]/.test(buf));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}
