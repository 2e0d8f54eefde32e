/**
 * Summary statistics for benchmark samples. Pure functions; none mutates its input.
 * A benchmark on a shared, noisy machine reports medians (robust to one slow round) and the
 * ratio of medians between contenders measured in alternating rounds.
 */
import assert from 'node:assert/strict';

/** Median of the samples (mean of the two middle ones for an even count). */
export function median(samples: readonly number[]): number {
  assert.ok(samples.length > 0, 'median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length % 2 === 1) return sorted[mid]!;
  return (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(samples: readonly number[], p: number): number {
  assert.ok(samples.length > 0, 'percentile of no samples');
  assert.ok(p >= 0 && p <= 100, `percentile out of range: ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function mean(samples: readonly number[]): number {
  assert.ok(samples.length > 0, 'mean of no samples');
  let sum = 0;
  for (const s of samples) sum += s;
  return sum / samples.length;
}

export function min(samples: readonly number[]): number {
  assert.ok(samples.length > 0, 'min of no samples');
  return Math.min(...samples);
}

export function max(samples: readonly number[]): number {
  assert.ok(samples.length > 0, 'max of no samples');
  return Math.max(...samples);
}

/** Median absolute deviation relative to the median (0.05 = samples spread about 5%). */
export function relativeSpread(samples: readonly number[]): number {
  const m = median(samples);
  if (m === 0) return 0;
  return median(samples.map((s) => Math.abs(s - m))) / Math.abs(m);
}

/** a / b, or NaN when b is 0 (shown as "n/a" by formatRatio). */
export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}
