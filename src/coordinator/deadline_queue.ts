/**
 * The request deadlines of one coordinator, kept by one timer: a min-heap of the state machines
 * (put_fsm, get_fsm) waiting for an answer, ordered by the time each gives up, and one timer of
 * the injected FsmTimers armed for the earliest of them.
 *
 * Why not one timer per request: a setTimeout + clearTimeout pair, its Timeout object and the two
 * closures around it were allocated for every GET and SET. Here a request costs a heap insert
 * (its deadline is nearly always the latest, so the insert stops at once) and a removal when it
 * answers; the timer is re-armed only when an earlier deadline arrives or when it fires.
 *
 * Contract: `onDeadline` runs for an entry once its deadline has passed (as late as the timer
 * source fires, never before), unless it was removed first; it runs with the entry already
 * removed, so it may add the entry again with a later deadline (get_fsm's hedge does). A late
 * timer re-checks the heap: it expires what is due and re-arms for the rest.
 */

import assert from 'node:assert';
import type { FsmTimers } from './fsm_env.js';

/** Something with a deadline. The queue owns `deadlineSlot` (-1: not queued). */
export interface DeadlineEntry {
  /** timers.now() time at which onDeadline is due. */
  deadlineAtMs: number;
  deadlineSlot: number;
  onDeadline(): void;
}

/** Most entries one queue holds (each is a request in flight; the bus refuses far fewer). */
export const MAX_QUEUED_DEADLINES = 1 << 22;

export class DeadlineQueue {
  readonly #timers: FsmTimers;
  /**
   * The heap in slots [0, #size); the slots after it hold undefined. The array only grows (to the
   * most requests in flight seen): a heap that grew and shrank with every burst replaced its
   * backing store each time, and a dropped store, promoted while in use, still pointed at the
   * state machines it held, which kept them (and all they reach) alive past scavenges.
   */
  readonly #heap: (DeadlineEntry | undefined)[] = [];
  #size = 0;
  /** Cancels the armed timer; undefined when none is armed. */
  #cancel: (() => void) | undefined;
  #armedAtMs = Number.POSITIVE_INFINITY;

  constructor(timers: FsmTimers) {
    this.#timers = timers;
  }

  get size(): number {
    return this.#size;
  }

  /** Queues `e` to expire at `atMs` (timers.now() time). `e` must not be queued already. */
  add(e: DeadlineEntry, atMs: number): void {
    if (e.deadlineSlot !== -1) assert.fail('deadline entry queued twice');
    if (this.#size >= MAX_QUEUED_DEADLINES) assert.fail(`more than ${MAX_QUEUED_DEADLINES} request deadlines queued`);
    e.deadlineAtMs = atMs;
    const i = this.#size++;
    if (i === this.#heap.length) this.#heap.push(e);
    else this.#heap[i] = e;
    e.deadlineSlot = i;
    this.#up(i);
    if (atMs < this.#armedAtMs) this.#arm(atMs);
  }

  /** Takes `e` out (a no-op when it is not queued). The timer is left armed: it re-checks when it fires. */
  remove(e: DeadlineEntry): void {
    const i = e.deadlineSlot;
    if (i === -1) return;
    const heap = this.#heap;
    if (!(heap[i] === e)) assert.fail('deadline entry not at its slot');
    e.deadlineSlot = -1;
    const n = --this.#size;
    const last = heap[n]!;
    heap[n] = undefined;
    if (i === n) return;
    heap[i] = last;
    last.deadlineSlot = i;
    this.#down(i);
    this.#up(last.deadlineSlot);
  }

  #arm(atMs: number): void {
    this.#cancel?.();
    this.#armedAtMs = atMs;
    this.#cancel = this.#timers.after(atMs - this.#timers.now(), this.#fire);
  }

  readonly #fire = (): void => {
    this.#cancel = undefined;
    this.#armedAtMs = Number.POSITIVE_INFINITY;
    const now = this.#timers.now();
    const heap = this.#heap;
    // An entry an onDeadline re-adds with a deadline already past (a timer that fired late) runs
    // again in this loop; the fsms re-add at most once (get_fsm's hedge), so the loop ends.
    while (this.#size > 0 && heap[0]!.deadlineAtMs <= now) {
      const e = heap[0]!;
      this.remove(e);
      e.onDeadline();
    }
    if (this.#size > 0 && heap[0]!.deadlineAtMs < this.#armedAtMs) this.#arm(heap[0]!.deadlineAtMs);
  };

  #up(i: number): void {
    const heap = this.#heap;
    const e = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.deadlineAtMs <= e.deadlineAtMs) break;
      heap[i] = parent;
      parent.deadlineSlot = i;
      i = p;
    }
    heap[i] = e;
    e.deadlineSlot = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = this.#size;
    const e = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.deadlineAtMs < heap[l]!.deadlineAtMs ? r : l;
      const child = heap[c]!;
      if (child.deadlineAtMs >= e.deadlineAtMs) break;
      heap[i] = child;
      child.deadlineSlot = i;
      i = c;
    }
    heap[i] = e;
    e.deadlineSlot = i;
  }
}
