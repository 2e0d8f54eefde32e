/**
 * A recording workload for fault scenarios (issue 5): concurrent workers send writes to random
 * nodes and record every operation and its outcome for checker.ts.
 *
 * - Causal keys (`<prefix>c:<i>`, shared by all workers): GETCTX, then SETCTX with the context
 *   (or DELCTX, deleteRatio of the time). The write records the values GETCTX returned as the
 *   values it covers. Several workers on one key make real concurrency, hence siblings.
 * - Plain keys (`<prefix>p:<worker>:<i>`, one worker each, so writes to a key are sequential):
 *   SET a fresh value or DEL.
 * Every value is unique in the run (`<prefix><worker>.<seq>`). Outcomes: a reply is `ok`; an
 * error reply, a timeout or a connection lost after sending is `unknown` (indeterminate). A
 * command that could not be sent (no connection) is not recorded: it cannot have taken effect.
 * Each worker keeps one connection per node and replaces it after any failure.
 */
import { Redis } from 'ioredis';
import { testClientOptions } from '../helpers/ioredis_client.js';
import type { ReadRecord, WriteRecord } from './checker.js';

export interface WorkloadOptions {
  /** Client port of node i, read at each use (a node may restart on another port). */
  readonly portOf: (i: number) => number;
  /** Indexes of the nodes clients may send to now. */
  readonly targets: () => readonly number[];
  readonly prefix: string;
  readonly workers: number;
  readonly causalKeys: number;
  readonly plainKeysPerWorker: number;
  /** Share of operations on plain keys, 0..1. */
  readonly plainRatio: number;
  /** Share of writes that delete, 0..1. */
  readonly deleteRatio: number;
  /** A command without a reply after this long is indeterminate, ms. */
  readonly opTimeoutMs: number;
  /** Pause between a worker's operations, ms (0: as fast as replies come). */
  readonly thinkMs: number;
  readonly random?: () => number;
}

export const WORKLOAD_DEFAULTS = {
  workers: 4,
  causalKeys: 8,
  plainKeysPerWorker: 4,
  plainRatio: 0.4,
  deleteRatio: 0.1,
  opTimeoutMs: 3_000,
  thinkMs: 5,
} as const;

/** Connect timeout of workload connections, ms. */
export const CONNECT_TIMEOUT_MS = 1_000;

class NotSent extends Error {}

export class Workload {
  readonly writes: WriteRecord[] = [];
  readonly reads: ReadRecord[] = [];
  /** Commands that could not be sent (no connection): not writes, just counted. */
  notSent = 0;
  readFailures = 0;
  readonly #o: WorkloadOptions;
  readonly #random: () => number;
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #conns = new Map<string, Redis>();

  constructor(o: WorkloadOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
  }

  /** Every key the workload may write. */
  keys(): string[] {
    const o = this.#o;
    const keys: string[] = [];
    for (let i = 0; i < o.causalKeys; i++) keys.push(`${o.prefix}c:${i}`);
    for (let w = 0; w < o.workers; w++) for (let i = 0; i < o.plainKeysPerWorker; i++) keys.push(`${o.prefix}p:${w}:${i}`);
    return keys;
  }

  start(): void {
    this.#running = true;
    for (let w = 0; w < this.#o.workers; w++) this.#loops.push(this.#loop(w));
  }

  /** Stops after the operations in flight finish; closes every connection. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    for (const c of this.#conns.values()) c.disconnect();
    this.#conns.clear();
  }

  /** Runs for `ms`, then stops. */
  async runFor(ms: number): Promise<void> {
    this.start();
    await new Promise((r) => setTimeout(r, ms));
    await this.stop();
  }

  async #loop(worker: number): Promise<void> {
    let seq = 0;
    while (this.#running) {
      const targets = this.#o.targets();
      if (targets.length > 0) {
        const node = targets[Math.floor(this.#random() * targets.length)]!;
        const value = `${this.#o.prefix}${worker}.${seq++}`;
        if (this.#random() < this.#o.plainRatio) await this.#plain(worker, node, value);
        else await this.#causal(worker, node, value);
      }
      await new Promise((r) => setTimeout(r, this.#o.thinkMs));
    }
  }

  async #plain(worker: number, node: number, value: string): Promise<void> {
    const key = `${this.#o.prefix}p:${worker}:${Math.floor(this.#random() * this.#o.plainKeysPerWorker)}`;
    if (this.#random() < this.#o.deleteRatio) await this.#write(worker, node, 'del', key, null, null, ['DEL', key]);
    else await this.#write(worker, node, 'set', key, value, null, ['SET', key, value]);
  }

  async #causal(worker: number, node: number, value: string): Promise<void> {
    const key = `${this.#o.prefix}c:${Math.floor(this.#random() * this.#o.causalKeys)}`;
    let ctx: string;
    let covers: string[];
    try {
      const reply = (await this.#send(worker, node, ['GETCTX', key])) as [string, string[]];
      ctx = String(reply[0]);
      covers = reply[1].map(String);
    } catch {
      this.readFailures++;
      return;
    }
    this.reads.push({ key, values: covers });
    if (this.#random() < this.#o.deleteRatio) await this.#write(worker, node, 'delctx', key, null, covers, ['DELCTX', key, ctx]);
    else await this.#write(worker, node, 'setctx', key, value, covers, ['SETCTX', key, ctx, value]);
  }

  async #write(worker: number, node: number, kind: WriteRecord['kind'], key: string, value: string | null, covers: string[] | null, command: string[]): Promise<void> {
    const startMs = Date.now();
    let outcome: WriteRecord['outcome'] = 'ok';
    let error: string | undefined;
    try {
      await this.#send(worker, node, command);
    } catch (e) {
      if (e instanceof NotSent) {
        this.notSent++;
        return;
      }
      outcome = 'unknown';
      error = (e as Error).message;
    }
    this.writes.push({ kind, key, value, covers, startMs, endMs: Date.now(), outcome, node, ...(error === undefined ? {} : { error }) });
  }

  /** Sends one command on the worker's connection to `node`; NotSent if there was no connection. */
  async #send(worker: number, node: number, command: string[]): Promise<unknown> {
    const port = this.#o.portOf(node);
    const id = `${worker}/${node}/${port}`;
    let c = this.#conns.get(id);
    if (c === undefined || c.status !== 'ready') {
      c?.disconnect();
      this.#conns.delete(id);
      c = new Redis(testClientOptions(port, { connectTimeout: CONNECT_TIMEOUT_MS, commandTimeout: this.#o.opTimeoutMs }));
      c.on('error', () => undefined);
      try {
        await c.connect();
      } catch {
        c.disconnect();
        throw new NotSent();
      }
      this.#conns.set(id, c);
    }
    try {
      return await c.call(command[0]!, ...command.slice(1));
    } catch (e) {
      // Error replies leave the connection usable; anything else (timeout, closed) replaces it.
      if (!(e instanceof Error && e.name === 'ReplyError')) {
        c.disconnect();
        this.#conns.delete(id);
      }
      throw e;
    }
  }
}
