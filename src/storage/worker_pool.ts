/**
 * Runs table-building jobs off the event loop. One worker thread per lane ('flush' and
 * 'compact', so a long compaction never delays a flush), shared by every engine in the process,
 * created on first use. Workers are unref'd while idle so they never keep the process alive.
 * With offload disabled the job runs inline (same pure function).
 */
import { Worker } from 'node:worker_threads';
import { StorageError } from './types.js';
import { runBuildJob, type BuildJob, type BuildResult } from './table_job.js';
import type { WorkerRequest, WorkerResponse } from './table_worker.js';
import { FormatError } from './varint.js';

export type Lane = 'flush' | 'compact';

interface Pending {
  resolve(r: BuildResult): void;
  reject(e: Error): void;
}

class LaneWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private start(): Worker {
    const w = new Worker(new URL('./table_worker.js', import.meta.url));
    w.on('message', (res: WorkerResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (this.pending.size === 0) w.unref();
      if (res.ok) p.resolve(res.result);
      else p.reject(res.corrupt ? new FormatError(res.message) : new Error(res.message));
    });
    w.on('error', (err) => this.failAll(err));
    w.on('exit', (code) => {
      this.worker = undefined;
      this.failAll(new Error(`table worker exited with code ${code}`));
    });
    w.unref();
    return w;
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Hands buffers to the worker to die there (see table_worker.ts); false when none is running. */
  release(buffers: ArrayBuffer[]): boolean {
    if (!this.worker) return false;
    const req: WorkerRequest = { release: buffers };
    this.worker.postMessage(req, buffers);
    return true;
  }

  run(job: BuildJob): Promise<BuildResult> {
    this.worker ??= this.start();
    const w = this.worker;
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    for (const i of job.inputs) {
      // Shared memory (rowBufs, never bytes) is shared with the worker, not transferred.
      transfer.push(i.bytes.buffer as ArrayBuffer);
      if (i.rowInts) transfer.push(i.rowInts.buffer as ArrayBuffer);
      if (i.rowFloats) transfer.push(i.rowFloats.buffer as ArrayBuffer);
    }
    return new Promise<BuildResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.ref();
      const req: WorkerRequest = { id, job };
      w.postMessage(req, transfer);
    });
  }
}

const lanes: Record<Lane, LaneWorker> = { flush: new LaneWorker(), compact: new LaneWorker() };

/** The lane whose worker built a result: its slabs go back to that worker's pool. */
const laneOf = new WeakMap<BuildResult, Lane>();

function fixResult(r: BuildResult, lane: Lane): BuildResult {
  laneOf.set(r, lane);
  for (const t of r.tables) {
    t.parts = t.parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    t.meta.smallestKey = Buffer.from(t.meta.smallestKey.buffer, t.meta.smallestKey.byteOffset, t.meta.smallestKey.byteLength);
    t.meta.largestKey = Buffer.from(t.meta.largestKey.buffer, t.meta.largestKey.byteOffset, t.meta.largestKey.byteLength);
  }
  return r;
}

/**
 * After the engine wrote a job's tables: transfers their bytes back to the worker thread that
 * built them, which reuses the slabs (slab_pool.ts) and lets the rest be collected promptly
 * (table_worker.ts) instead of waiting for a main-thread GC. The tables' parts are detached
 * (empty) afterwards. A no-op when the job ran inline.
 */
export function releaseTableBytes(result: BuildResult, offload: boolean): void {
  if (!offload) return;
  const buffers = [...new Set(result.tables.flatMap((t) => t.parts.map((p) => p.buffer as ArrayBuffer)))].filter((b) => b.byteLength > 0);
  if (buffers.length === 0) return;
  const lane = laneOf.get(result) ?? 'compact';
  if (!lanes[lane].release(buffers)) lanes[lane === 'compact' ? 'flush' : 'compact'].release(buffers);
}

/**
 * Runs a job; input buffers are TRANSFERRED when offloaded (the caller must not use them
 * afterwards, and must allocate them with Buffer.allocUnsafeSlow so each owns its ArrayBuffer).
 * Rejects with FormatError when an input table is corrupt.
 */
export async function runJob(job: BuildJob, lane: Lane, offload: boolean): Promise<BuildResult> {
  if (!offload) return runBuildJob(job);
  try {
    return fixResult(await lanes[lane].run(job), lane);
  } catch (err) {
    if (err instanceof FormatError || err instanceof StorageError) throw err;
    throw new Error(`table job failed: ${(err as Error).message}`, { cause: err });
  }
}
