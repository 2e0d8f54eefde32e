/**
 * Closed-loop client load for the cluster benchmarks: `concurrency` loops, each sending one
 * command, awaiting its reply, and sending the next, over the given connections (round robin),
 * until `until` settles. Every completed command's latency is kept (for percentiles); a command
 * that fails (error reply, timeout, closed connection) is counted, not timed.
 */
import { performance } from 'node:perf_hooks';

/** One command of the workload; `i` is the loop's iteration, `loop` its index. */
export type LoadStep = (loop: number, i: number) => Promise<unknown>;

export interface LoadResult {
  /** Commands answered without error. */
  readonly ops: number;
  readonly errors: number;
  readonly elapsedMs: number;
  readonly latenciesMs: readonly number[];
}

export async function closedLoop(concurrency: number, step: LoadStep, until: Promise<unknown>): Promise<LoadResult> {
  let stop = false;
  void until.finally(() => (stop = true)).catch(() => undefined);
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = 0; !stop; i++) {
        const s = performance.now();
        try {
          await step(loop, i);
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { ops: lat.length, errors, elapsedMs: performance.now() - t0, latenciesMs: lat };
}
