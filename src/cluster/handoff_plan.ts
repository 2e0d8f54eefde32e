/**
 * The decisions of hinted handoff, pure (no I/O, no timers), so they can be tested exhaustively;
 * handoff_service.ts is the async shell around them.
 *
 *   planBatch(page, now, window, caps) -> { expired: drop them (anti-entropy repairs those keys),
 *                                           deliver: the next batch to send (<= keys, <= bytes) }
 *   ackedHints(sent, statuses)         -> exactly the hints the target acknowledged: the store
 *                                         deletes these, and only if unchanged since they were read
 *   TokenBucket                        -> the rate limit, in keys per second
 */
import assert from 'node:assert';

/** What the planner needs to know of one stored hint. */
export interface HintMeta {
  readonly writtenAtMs: number;
  /** Bytes it costs on the wire (key + object). */
  readonly wireBytes: number;
}

export interface BatchCaps {
  readonly maxKeys: number;
  readonly maxBytes: number;
}

export interface BatchPlan<T> {
  /** Older than the hint window: drop, never send. */
  readonly expired: T[];
  /** The batch to send now, in page order. */
  readonly deliver: T[];
  /** The page's suffix left for a later batch once the caps are reached (expired ones included). */
  readonly rest: T[];
}

/** Whether a hint written at `writtenAtMs` is past the window at `nowMs` (window 0: never). */
export function hintExpired(writtenAtMs: number, nowMs: number, windowMs: number): boolean {
  return windowMs > 0 && nowMs - writtenAtMs > windowMs;
}

/**
 * Splits a page of hints read in key order. The batch takes hints in order until it holds
 * `maxKeys` or adding one more would pass `maxBytes`; the first hint always fits (a single
 * large object must still be deliverable). From there on the page is `rest`, a suffix, so the
 * caller resumes right after the last hint it dealt with.
 */
export function planBatch<T extends HintMeta>(page: readonly T[], nowMs: number, windowMs: number, caps: BatchCaps): BatchPlan<T> {
  assert(caps.maxKeys >= 1 && caps.maxBytes >= 1, 'batch caps must be positive');
  const expired: T[] = [];
  const deliver: T[] = [];
  const rest: T[] = [];
  let bytes = 0;
  let full = false;
  for (const h of page) {
    if (full) {
      rest.push(h);
      continue;
    }
    if (hintExpired(h.writtenAtMs, nowMs, windowMs)) {
      expired.push(h);
      continue;
    }
    if (deliver.length === 0 || (deliver.length < caps.maxKeys && bytes + h.wireBytes <= caps.maxBytes)) {
      deliver.push(h);
      bytes += h.wireBytes;
      continue;
    }
    full = true;
    rest.push(h);
  }
  return { expired, deliver, rest };
}

/** Per-hint answer of the target: merged and durable, or failed (kept for a later attempt). */
export const HintStatus = { OK: 0, FAILED: 1 } as const;
export type HintStatusCode = (typeof HintStatus)[keyof typeof HintStatus];

/**
 * The hints the target acknowledged. A reply whose length differs from the batch acknowledges
 * nothing: positions would not line up, and deleting an unacknowledged hint loses a write.
 */
export function ackedHints<T>(sent: readonly T[], statuses: readonly number[]): T[] {
  if (statuses.length !== sent.length) return [];
  return sent.filter((_, i) => statuses[i] === HintStatus.OK);
}

/**
 * A token bucket in keys per second (0: unlimited). `capacityKeys` bounds a burst; a request
 * larger than the capacity is allowed once the bucket is full (so one batch bigger than a
 * second's worth still goes, at the average rate).
 */
export class TokenBucket {
  #tokens: number;
  #lastMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly capacityKeys: number,
    nowMs: number,
  ) {
    assert(ratePerSec >= 0 && capacityKeys >= 1, 'bad token bucket');
    this.#tokens = capacityKeys;
    this.#lastMs = nowMs;
  }

  #refill(nowMs: number): void {
    if (nowMs > this.#lastMs) {
      this.#tokens = Math.min(this.capacityKeys, this.#tokens + ((nowMs - this.#lastMs) * this.ratePerSec) / 1000);
      this.#lastMs = nowMs;
    }
  }

  /** Ms to wait before `keys` may go (0: now). Does not take them. */
  waitMs(keys: number, nowMs: number): number {
    if (this.ratePerSec === 0) return 0;
    this.#refill(nowMs);
    const need = Math.min(keys, this.capacityKeys);
    if (this.#tokens >= need) return 0;
    return Math.ceil(((need - this.#tokens) * 1000) / this.ratePerSec);
  }

  /** Takes `keys` tokens (the balance may go negative for an oversize request: later waits pay it back). */
  take(keys: number, nowMs: number): void {
    if (this.ratePerSec === 0) return;
    this.#refill(nowMs);
    this.#tokens -= keys;
  }
}
