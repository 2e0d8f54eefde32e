/**
 * Reconnect delay: exponential backoff with "equal jitter" (half the step fixed, half random),
 * pure so tests can pin the randomness.
 *
 *   step(attempt) = min(maxMs, baseMs * 2^attempt)        attempt = failures so far, from 0
 *   delay        = step/2 + random() * step/2              in [step/2, step)
 *
 * The fixed half keeps a flapping peer from being hammered; the random half spreads the retries
 * of many nodes that lost the same peer at the same moment (no thundering herd on its restart).
 */
import assert from 'node:assert';

export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  assert(Number.isInteger(attempt) && attempt >= 0, 'attempt must be a non-negative integer');
  assert(baseMs > 0 && maxMs >= baseMs, 'need 0 < baseMs <= maxMs');
  // 2^attempt overflows to Infinity for large attempts; min() caps it first.
  const step = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 52));
  const r = random();
  assert(r >= 0 && r < 1, 'random() must return a number in [0, 1)');
  return step / 2 + r * (step / 2);
}
