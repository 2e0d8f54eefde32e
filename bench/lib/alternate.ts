/**
 * Alternating rounds: run contenders A, B, (C...) one after the other, round after round, so a
 * burst of load from other processes on the shared machine hits all of them alike. The order
 * within a round is rotated each round so no contender always goes first (warm caches, JIT).
 * Each run returns one number (e.g. ops/s); the caller takes medians and ratios.
 */
import assert from 'node:assert/strict';
import { median } from './stats.js';

export interface Contender<R = number> {
  name: string;
  /** Runs one round and returns its measurement. */
  run(round: number): Promise<R>;
}

export interface AlternatingOptions {
  rounds: number;
  /** Rounds run first and thrown away (JIT warm-up). Default 0. */
  warmupRounds?: number;
  /** Called after each measured run, e.g. to print progress to stderr. */
  onResult?: (name: string, round: number, value: number) => void;
}

/** Result samples per contender name, in round order. */
export type Samples = Map<string, number[]>;

export async function runAlternating(
  contenders: readonly Contender[],
  options: AlternatingOptions,
): Promise<Samples> {
  assert.ok(contenders.length > 0, 'no contenders');
  assert.ok(options.rounds > 0, 'rounds must be > 0');
  const samples: Samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  const warmup = options.warmupRounds ?? 0;
  for (let round = 0; round < warmup + options.rounds; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + round) % contenders.length]!;
      const value = await c.run(round);
      if (round < warmup) continue;
      samples.get(c.name)!.push(value);
      options.onResult?.(c.name, round - warmup, value);
    }
  }
  return samples;
}

/** Median per contender. */
export function medians(samples: Samples): Map<string, number> {
  return new Map([...samples].map(([name, values]) => [name, median(values)]));
}

/** Measures fn's wall time in ms (monotonic clock). */
export async function timeMs(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** ops per second given a count and elapsed milliseconds. */
export function opsPerSec(ops: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? Number.POSITIVE_INFINITY : (ops * 1000) / elapsedMs;
}
