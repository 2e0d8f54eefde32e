/**
 * Worker-thread entry point: runs table-building jobs (table_job.ts) and posts the table bytes
 * back, transferring their ArrayBuffers. Pure computation only: this thread never touches files.
 */
import { parentPort } from 'node:worker_threads';
import { runBuildJob, type BuildJob } from './table_job.js';
import { FormatError } from './varint.js';

export interface WorkerRequest {
  id: number;
  job: BuildJob;
}

export type WorkerResponse =
  | { id: number; ok: true; result: import('./table_job.js').BuildResult }
  | { id: number; ok: false; message: string; corrupt: boolean };

const port = parentPort;
if (port) {
  port.on('message', (req: WorkerRequest) => {
    try {
      const result = runBuildJob(req.job);
      // Boundary keys may be views into pooled buffers: send exact copies, not the pool.
      for (const t of result.tables) {
        t.meta.smallestKey = Buffer.from(new Uint8Array(t.meta.smallestKey));
        t.meta.largestKey = Buffer.from(new Uint8Array(t.meta.largestKey));
      }
      const transfer = result.tables.map((t) => t.bytes.buffer as ArrayBuffer);
      const res: WorkerResponse = { id: req.id, ok: true, result };
      port.postMessage(res, transfer);
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
