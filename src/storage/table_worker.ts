/**
 * Worker-thread entry point: runs table-building jobs (table_job.ts) and posts the table bytes
 * back, transferring their ArrayBuffers. Pure computation only: this thread never touches files.
 *
 * Big buffers die here: a job's inputs are transferred in, and the engine transfers the built
 * tables back once it has written them (a 'release' request); their slabs go back to this
 * thread's slab pool (slab_pool.ts) and the rest dies here. V8 collects dead ArrayBuffers only
 * after about 64 MiB of external memory has piled up per isolate, and this thread's JS heap is
 * small, so without help it held up to 73 MiB of dead table bytes (measured, 100k x 4 KiB
 * catch-up compaction). After each request, when more than WORKER_DEAD_BYTES_MAX of external
 * memory is held, this thread runs a full collection: it costs a few ms of THIS thread (its heap
 * is small), never the event loop.
 */
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { runBuildJob, type BuildJob } from './table_job.js';
import { giveSlab, pooledSlabBytes } from './slab_pool.js';
import { FormatError } from './varint.js';

/**
 * External (ArrayBuffer) bytes this thread may hold after a request before it collects. Measured
 * (40k x 4 KiB batched fill, alternating runs): at 8 MiB the worker collected after nearly every
 * job and the fill ran at 0.70x; at 32 MiB it runs as fast as without collecting (1.01x).
 */
const WORKER_DEAD_BYTES_MAX = 32 * 1024 * 1024;

export type WorkerRequest = { id: number; job: BuildJob } | { release: ArrayBuffer[] };

// The documented way to get gc() without a command-line flag; it only exposes gc in contexts
// created from now on (the new one below), and is only called from this thread.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Slabs kept for reuse (slab_pool.ts) are live, not dead: left out of the count. */
function collectDeadBuffers(): void {
  if (getHeapStatistics().external_memory - pooledSlabBytes() > WORKER_DEAD_BYTES_MAX) collect();
}

export type WorkerResponse =
  | { id: number; ok: true; result: import('./table_job.js').BuildResult }
  | { id: number; ok: false; message: string; corrupt: boolean };

const port = parentPort;
if (port) {
  port.on('message', (req: WorkerRequest) => {
    if ('release' in req) {
      // Written tables come back: their slabs are reused for the next tables.
      for (const ab of req.release) giveSlab(ab);
      collectDeadBuffers();
      return;
    }
    try {
      const result = runBuildJob(req.job);
      // Boundary keys may be views into pooled buffers: send exact copies (own, exact-size
      // ArrayBuffers), not the pool.
      for (const t of result.tables) {
        t.meta.smallestKey = Buffer.from(new Uint8Array(t.meta.smallestKey).buffer);
        t.meta.largestKey = Buffer.from(new Uint8Array(t.meta.largestKey).buffer);
      }
      const transfer = [...new Set(result.tables.flatMap((t) => t.parts.map((p) => p.buffer as ArrayBuffer)))];
      const res: WorkerResponse = { id: req.id, ok: true, result };
      port.postMessage(res, transfer);
      collectDeadBuffers(); // the job's inputs
    } catch (err) {
      const res: WorkerResponse = {
        id: req.id,
        ok: false,
        message: err instanceof Error ? err.message : String(err),
        corrupt: err instanceof FormatError,
      };
      port.postMessage(res);
    }
  });
}
