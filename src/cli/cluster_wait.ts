/**
 * `ringkv cluster join|leave|wait --port P [--host H]`: waits on a ring change of a running
 * cluster and shows its progress (cluster_progress.ts renders, this polls).
 *
 *   join   waits until the node at H:P (started with `seeds`, joining) has streamed its slots and is up
 *   leave  sends CLUSTER LEAVE to the node at H:P, then waits until it has left (it stops)
 *   wait   waits until no slot is moving (e.g. after CONFIG SET weight, CLUSTER FORGET)
 *
 * Every POLL_MS it reads CLUSTER INFO from the node (and, for leave and wait, from every member
 * CLUSTER NODES listed at the start). On a TTY it redraws one line (carriage return); otherwise
 * it prints a plain line when the progress moved (plainLineDue). Exit status 0 when done, 1 on
 * an error or when --timeout-sec passes.
 */
import { Redis } from 'ioredis';
import { finished, parseStreamSample, plainLineDue, progressOf, renderProgress, type StreamSample, type WaitAction } from './cluster_progress.js';

/** Pause between two polls, ms. */
export const POLL_MS = 250;
/** Deadline of one CLUSTER INFO / NODES / LEAVE call, ms. */
export const CALL_TIMEOUT_MS = 5_000;

export interface WaitPlan {
  readonly action: WaitAction;
  readonly host: string;
  readonly port: number;
  /** Give up after this many seconds; 0: never. */
  readonly timeoutSec: number;
}

export interface WaitOutput {
  /** Whether stdout is a terminal: redraw one line instead of printing lines. */
  readonly tty: boolean;
  /** Writes raw text (no newline added). */
  write(text: string): void;
}

function connect(host: string, port: number): Redis {
  // No reconnection: a node that stops (a finished leave) must fail fast, not queue commands.
  return new Redis({ host, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: CALL_TIMEOUT_MS, commandTimeout: CALL_TIMEOUT_MS });
}

async function sample(c: Redis): Promise<StreamSample | undefined> {
  if (c.status === 'wait') await c.connect();
  const info = await c.call('CLUSTER', 'INFO');
  return parseStreamSample(String(info));
}

/** host:port of every member CLUSTER NODES lists (`id host:port@bus flags ...`), except `left` ones. */
export function memberAddresses(nodes: string): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const line of nodes.split('\n')) {
    const [, addr, flags] = line.split(' ');
    if (addr === undefined || flags === undefined || flags.includes('noaddr')) continue;
    const m = /^(.*):(\d+)@\d+$/.exec(addr);
    if (m === null) continue;
    out.push({ host: m[1]!, port: Number(m[2]) });
  }
  return out;
}

export async function runClusterWait(plan: WaitPlan, out: WaitOutput): Promise<number> {
  const label = `${plan.action} ${plan.host}:${plan.port}`;
  const target = connect(plan.host, plan.port);
  const others: Array<{ key: string; client: Redis }> = [];
  const closeAll = (): void => {
    for (const c of [target, ...others.map((o) => o.client)]) c.disconnect();
  };
  const line = (text: string): void => out.write(out.tty ? `\r${text}\x1b[K` : `${text}\n`);
  try {
    let first: StreamSample | undefined;
    try {
      await target.connect();
      first = await sample(target);
      if (plan.action !== 'join') {
        for (const a of memberAddresses(String(await target.call('CLUSTER', 'NODES')))) {
          const key = `${a.host}:${a.port}`;
          if (a.port === plan.port && (a.host === plan.host || key === `${plan.host}:${plan.port}`)) continue;
          others.push({ key, client: connect(a.host, a.port) });
        }
      }
    } catch (err) {
      out.write(`ringkv cluster ${plan.action}: cannot reach ${plan.host}:${plan.port}: ${(err as Error).message}\n`);
      return 1;
    }
    if (first === undefined) {
      out.write(`ringkv cluster ${plan.action}: ${plan.host}:${plan.port} reports no stream_* fields (not a cluster node?)\n`);
      return 1;
    }
    // Baseline before anything moves (for leave and wait, progress counts from here).
    const baseline = new Map<string, StreamSample>([['target', first]]);
    await Promise.all(
      others.map(async (o) => {
        const s = await sample(o.client).catch(() => undefined);
        if (s !== undefined) baseline.set(o.key, s);
      }),
    );
    if (plan.action === 'leave') {
      try {
        await target.call('CLUSTER', 'LEAVE');
      } catch (err) {
        out.write(`ringkv cluster leave: ${(err as Error).message}\n`);
        return 1;
      }
    }
    const started = Date.now();
    let lastPercent: number | undefined;
    let lastLineAt = 0;
    for (;;) {
      const samples = new Map<string, StreamSample>();
      let t: StreamSample | undefined;
      let gone = false;
      try {
        t = await sample(target);
      } catch {
        gone = true;
      }
      if (t !== undefined) samples.set('target', t);
      await Promise.all(
        others.map(async (o) => {
          const s = await sample(o.client).catch(() => undefined);
          if (s !== undefined) samples.set(o.key, s);
        }),
      );
      for (const [k, s] of samples) if (!baseline.has(k)) baseline.set(k, s);
      if (gone && plan.action !== 'leave') {
        line(`${label}: the node stopped answering`);
        if (out.tty) out.write('\n');
        return 1;
      }
      const p = progressOf(plan.action, samples, baseline);
      const isDone = finished(plan.action, t, gone, samples);
      const state = gone ? 'left (stopped)' : t?.state ?? '?';
      const text = renderProgress(label, p, state, isDone);
      const percent = isDone ? 100 : Math.floor(p.fraction * 100);
      const now = Date.now();
      if (out.tty || isDone || plainLineDue(lastPercent, percent, now - lastLineAt)) {
        line(text);
        lastPercent = percent;
        lastLineAt = now;
      }
      if (isDone) {
        if (out.tty) out.write('\n');
        out.write(`${label}: done in ${((now - started) / 1000).toFixed(1)} s\n`);
        return 0;
      }
      if (plan.timeoutSec > 0 && now - started > plan.timeoutSec * 1000) {
        if (out.tty) out.write('\n');
        out.write(`${label}: not done after ${plan.timeoutSec} s\n`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    closeAll();
  }
}
