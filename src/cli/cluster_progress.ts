/**
 * Progress of a join, leave or weight change as `ringkv cluster join|leave|wait` shows it: PURE
 * (no I/O). The inputs are the `stream_*` fields of CLUSTER INFO (stream_manager.ts infoFields)
 * read from the nodes involved; cluster_wait.ts polls them and prints what this renders.
 *
 *   join   the joining node's own fields: done = stream_slots_streamed, left = stream_slots_remaining
 *   leave  every other member's: slot copies streamed since the wait began, and still remaining
 *          (the leaving node streams nothing in; its new owners do)
 *   wait   every member's, as for leave (a weight change, a forget's re-replication, ...)
 *
 *   join 127.0.0.1:7004 [##############----------------]  47%  2310/4915 slots  1.2 MB  joining
 */

export type WaitAction = 'join' | 'leave' | 'wait';

/** Width of the bar in characters (between the brackets). */
export const BAR_WIDTH = 30;

/** The stream_* fields of one node's CLUSTER INFO that progress uses. */
export interface StreamSample {
  readonly state: string;
  readonly slotsStreamed: number;
  readonly slotsRemaining: number;
  readonly bytesStreamed: number;
  readonly ringSlotsMoving: number;
  /** cluster_ring_fingerprint: equal on two nodes when they place slots on the same ring. */
  readonly ringFingerprint: string;
}

/** CLUSTER INFO text (`key:value` lines) -> the stream fields; undefined when they are absent. */
export function parseStreamSample(info: string): StreamSample | undefined {
  const f = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) f.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const state = f.get('stream_state');
  if (state === undefined) return undefined;
  const num = (k: string): number => {
    const n = Number(f.get(k) ?? '0');
    return Number.isFinite(n) && n >= 0 ? n : 0;
  };
  return {
    state,
    slotsStreamed: num('stream_slots_streamed'),
    slotsRemaining: num('stream_slots_remaining'),
    bytesStreamed: num('stream_bytes_streamed'),
    ringSlotsMoving: num('stream_ring_slots_moving'),
    ringFingerprint: f.get('cluster_ring_fingerprint') ?? '',
  };
}

export interface Progress {
  /** Slot copies streamed (for join: since the join began; else since the wait began). */
  readonly done: number;
  readonly remaining: number;
  readonly bytes: number;
  /** 0..1. */
  readonly fraction: number;
}

/**
 * Progress over the sampled nodes. `baseline` holds each node's sample when the wait began
 * (ignored for a join, whose node counts from the start of its join).
 */
export function progressOf(action: WaitAction, samples: ReadonlyMap<string, StreamSample>, baseline: ReadonlyMap<string, StreamSample>): Progress {
  let done = 0;
  let remaining = 0;
  let bytes = 0;
  for (const [node, s] of samples) {
    const b = action === 'join' ? undefined : baseline.get(node);
    done += Math.max(0, s.slotsStreamed - (b?.slotsStreamed ?? 0));
    bytes += Math.max(0, s.bytesStreamed - (b?.bytesStreamed ?? 0));
    remaining += s.slotsRemaining;
  }
  const total = done + remaining;
  return { done, remaining, bytes, fraction: total === 0 ? 0 : done / total };
}

/** Human-readable bytes (binary units, one decimal). */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** One line: the bar, percent, slots, bytes and the watched node's state. */
export function renderProgress(label: string, p: Progress, state: string, done: boolean): string {
  const fraction = done ? 1 : Math.min(1, Math.max(0, p.fraction));
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `${label} [${bar}] ${pct}  ${p.done}/${p.done + p.remaining} slots  ${formatBytes(p.bytes)}  ${state}`;
}

/**
 * Whether the wait is over. join: the node is no longer joining and has nothing left to stream.
 * leave: the node left (stream_state `left`) or stopped after it began leaving. wait: no sampled
 * node has anything left or sees a slot moving between its current and target rings, and all of
 * them are on the same ring (a node that has not yet heard of the change by gossip has nothing
 * moving either, but its ring fingerprint differs).
 */
export function finished(action: WaitAction, target: StreamSample | undefined, targetGone: boolean, samples: ReadonlyMap<string, StreamSample>): boolean {
  switch (action) {
    case 'join':
      return target !== undefined && target.state !== 'joining' && target.slotsRemaining === 0;
    case 'leave':
      return targetGone || target?.state === 'left';
    case 'wait': {
      if (target === undefined) return false;
      for (const s of samples.values()) {
        if (s.slotsRemaining > 0 || s.ringSlotsMoving > 0 || s.ringFingerprint !== target.ringFingerprint) return false;
      }
      return target.slotsRemaining === 0 && target.ringSlotsMoving === 0;
    }
  }
}

/**
 * Plain (non-TTY) output prints a line only when the percentage moved by this many points since
 * the last line, or PLAIN_LINE_EVERY_MS passed, so a log does not fill with identical lines.
 */
export const PLAIN_LINE_STEP_PERCENT = 10;
export const PLAIN_LINE_EVERY_MS = 5_000;

export function plainLineDue(lastPercent: number | undefined, percent: number, msSinceLast: number): boolean {
  return lastPercent === undefined || percent - lastPercent >= PLAIN_LINE_STEP_PERCENT || msSinceLast >= PLAIN_LINE_EVERY_MS;
}
