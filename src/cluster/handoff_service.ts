/**
 * Hinted handoff (ARCHITECTURE.md section 5): the async shell that stores hints on a fallback and
 * replays them to their target once gossip shows it up again. Decisions live in handoff_plan.ts,
 * storage in hint_store.ts, the wire in handoff_codec.ts.
 *
 *   fallback                                              target (the primary that was down)
 *   onHint(target, key, object) -> store.add (durable, before the replica put is acknowledged)
 *   every HANDOFF_TICK_MS, per target with hints, when isUp(target) and not backing off:
 *     page = store.read(target, batch keys, after cursor)
 *     plan = planBatch(page): expired -> store.removeIfUnchanged, counted as dropped
 *                             deliver -> wait for the token bucket (keys per second)
 *                                     -> HINT_BATCH ────────────────▶ merge each object into the
 *                                                                      keyspace (version vectors)
 *                                     <- statuses ◀──────────────── ok / failed per hint
 *     acked = ackedHints(deliver, statuses) -> store.removeIfUnchanged(acked): a hint merged with
 *       a newer write after it was read stays and goes in a later batch
 *     until a page comes back short (one pass over the target's range); a failed request backs
 *     off the target (exponential, HANDOFF_RETRY_BACKOFF_MS doubling up to HANDOFF_RETRY_BACKOFF_MAX_MS).
 *   every HINT_SWEEP_INTERVAL_MS: expired hints of targets not draining are dropped, so the hints
 *     of a node that never comes back do not grow without bound.
 *   per target removed for good (isGone: state `left` after CLUSTER FORGET or LEAVE), at the next
 *     tick: all its hints are dropped and counted as dropped (its slots are re-replicated from
 *     the survivors by streaming, not from hints).
 *   FLUSHALL (flushed): every hint held here is deleted, so no flushed write comes back through
 *     handoff; a drain whose page was read before it sends nothing more.
 *
 * A hinted copy is kept only as a hint, not in the fallback's keyspace (Coordinator.onHint), and
 * the fallback's replica reads merge in its hints (Coordinator.hintedCopy), so it answers for
 * them until they are handed off, and keeps nothing behind afterwards.
 * `hinted-handoff no` stores no new hints: the fallback merges the copy into its keyspace (its
 * ack still counts under sloppy quorum; anti-entropy repairs the primary later); hints already
 * stored are still handed off.
 */
import { decodeObject, type VersionedObject } from '../coordinator/object.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import type { ClusterBus, PeerAddress } from './bus.js';
import {
  decodeHintBatch,
  decodeHintQuery,
  decodeHintQueryAnswer,
  decodeHintStatuses,
  encodeHintBatch,
  encodeHintQuery,
  encodeHintQueryAnswer,
  encodeHintStatuses,
  HandoffMessageType,
  MAX_HINT_BATCH_KEYS,
} from './handoff_codec.js';
import { backoffDelayMs } from './backoff.js';
import { ackedHints, HintStatus, planBatch, TokenBucket } from './handoff_plan.js';
import type { HintStore, StoredHint } from './hint_store.js';

/** How often targets with hints are checked for being up (and drains started). */
export const HANDOFF_TICK_MS = 200;
/** Time one HINT_BATCH may take, connection included. */
export const HANDOFF_BATCH_TIMEOUT_MS = 10_000;
/**
 * After a failed batch the target is left alone for an exponential backoff with jitter
 * (backoff.ts) from this base, doubling per consecutive failure up to the max; a batch that
 * goes through resets it. A peer that keeps refusing costs one attempt (and one log line) per
 * HANDOFF_RETRY_BACKOFF_MAX_MS at most.
 */
export const HANDOFF_RETRY_BACKOFF_MS = 500;
export const HANDOFF_RETRY_BACKOFF_MAX_MS = 30_000;
/** Largest HINT_BATCH payload built (a single larger hint still goes alone). */
export const HINT_BATCH_BYTES_MAX = 4 * 1024 * 1024;
/** How often hints of targets that are not draining are checked for expiry. */
export const HINT_SWEEP_INTERVAL_MS = 10_000;
/** Hints read per page by the expiry sweep. */
export const HINT_SWEEP_PAGE_KEYS = 512;
/** Longest wait at close for a drain in progress. */
export const HANDOFF_CLOSE_WAIT_MS = 2_000;

export const HINTED_HANDOFF_KEY = 'hinted-handoff';
export const MAX_HINT_WINDOW_KEY = 'max-hint-window-ms';
export const HINT_BATCH_KEYS_KEY = 'hint-handoff-batch-keys';
export const HINT_RATE_KEY = 'hint-handoff-keys-per-second';

export interface HandoffSettings {
  /** Store hints for down primaries. */
  readonly enabled: boolean;
  /** Hints older than this are dropped; 0: never. */
  readonly windowMs: number;
  readonly batchKeys: number;
  /** 0: unlimited. */
  readonly keysPerSecond: number;
}

/** Read from the running config at every use, so CONFIG SET applies at once. */
export function handoffSettingsFromConfig(config: ConfigView): HandoffSettings {
  return {
    enabled: config.getBool(HINTED_HANDOFF_KEY),
    windowMs: config.getNumber(MAX_HINT_WINDOW_KEY),
    batchKeys: Math.min(Math.max(1, config.getNumber(HINT_BATCH_KEYS_KEY)), MAX_HINT_BATCH_KEYS),
    keysPerSecond: config.getNumber(HINT_RATE_KEY),
  };
}

/** Counters for INFO (monotonic). */
export class HandoffStats {
  /** Hints stored (new or merged into a pending one). */
  stored = 0;
  /** Hinted copies not stored because hinted-handoff is off. */
  skipped = 0;
  /** Hints the target acknowledged. */
  delivered = 0;
  /** Hints dropped past max-hint-window-ms (or unreadable). */
  dropped = 0;
  batchesSent = 0;
  batchErrors = 0;
  /** Hints of a batch the target answered as failed (kept, retried later). */
  itemsFailed = 0;
  /** As a target: hints received and merged. */
  received = 0;
}

/** The INFO fields of hinted handoff, as `key:value` pairs (for INFO's cluster or hints section). */
export function hintInfoLines(pending: { count: number; bytes: number }, s: HandoffStats): [string, number][] {
  return [
    ['hints_pending', pending.count],
    ['hints_bytes', pending.bytes],
    ['hints_stored', s.stored],
    ['hints_skipped', s.skipped],
    ['hints_delivered', s.delivered],
    ['hints_dropped', s.dropped],
    ['hints_received', s.received],
    ['hint_batches_sent', s.batchesSent],
    ['hint_batch_errors', s.batchErrors],
  ];
}

/** Typed error answered to a HINT_BATCH sent to the wrong node. */
export class HandoffError extends Error {
  readonly code = 'ERR_HINT_TARGET';
  constructor(message: string) {
    super(message);
    this.name = 'HandoffError';
  }
}

export interface HandoffOptions {
  readonly selfId: string;
  readonly store: HintStore;
  readonly bus: ClusterBus;
  readonly addressOf: (id: string) => { readonly host: string; readonly busPort: number } | undefined;
  readonly isUp: (id: string) => boolean;
  /** Up members other than this node (HINT_QUERY goes to them). */
  readonly peers: () => string[];
  /** The target side: merge a handed-off object into the local keyspace. */
  readonly merge: (key: Buffer, object: VersionedObject) => Promise<unknown>;
  readonly settings: () => HandoffSettings;
  /** Wall clock (hint times are persisted across restarts). */
  readonly now: () => number;
  readonly log: LogFn;
  /** Whether `id` was removed from the cluster for good (its hints are dropped); default never. */
  readonly isGone?: (id: string) => boolean;
}

export class HandoffService {
  readonly stats = new HandoffStats();
  readonly #o: HandoffOptions;
  readonly #draining = new Map<string, Promise<void>>();
  readonly #backoffUntil = new Map<string, number>();
  /** Consecutive failed passes per target (the backoff exponent). */
  readonly #failures = new Map<string, number>();
  #bucket: TokenBucket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastSweepMs = 0;
  #sweeping: Promise<void> | undefined;
  #closed = false;
  /** Bumped by every FLUSHALL: a drain that read its page under an older value does not send it. */
  #flushEpoch = 0;

  constructor(options: HandoffOptions) {
    this.#o = options;
  }

  get store(): HintStore {
    return this.#o.store;
  }

  /** Registers the target-side handlers; call once. */
  attach(): void {
    const { bus } = this.#o;
    bus.handle(HandoffMessageType.HINT_BATCH, async (payload) => {
      const { target, items } = decodeHintBatch(payload);
      if (target !== this.#o.selfId) throw new HandoffError(`hints for ${target} sent to ${this.#o.selfId}`);
      const statuses = await Promise.all(
        items.map(async (it): Promise<number> => {
          try {
            await this.#o.merge(it.key, decodeObject(it.objectBytes));
            return HintStatus.OK;
          } catch (err) {
            this.#o.log('warn', `handoff: merging a handed-off hint failed: ${String(err)}`);
            return HintStatus.FAILED;
          }
        }),
      );
      this.stats.received += statuses.filter((s) => s === HintStatus.OK).length;
      return encodeHintStatuses(statuses);
    });
    bus.handle(HandoffMessageType.HINT_QUERY, async (payload) => encodeHintQueryAnswer(await this.#o.store.targetsFor(decodeHintQuery(payload))));
  }

  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#tick(), HANDOFF_TICK_MS);
    this.#timer.unref();
  }

  /**
   * The fallback side of a hinted replica put: stores the hint and resolves true (the copy is
   * kept only as a hint, Coordinator.onHint), or false when hinted-handoff is off.
   */
  async onHint(target: string, key: Buffer, object: VersionedObject): Promise<boolean> {
    if (!this.#o.settings().enabled) {
      this.stats.skipped++;
      return false;
    }
    await this.#o.store.add(target, key, object);
    this.stats.stored++;
    return true;
  }

  infoLines(): [string, number][] {
    return hintInfoLines(this.#o.store.totals(), this.stats);
  }

  /**
   * Every node's pending hints for `key`: [holder, target] pairs, this node's from its store,
   * the others' by HINT_QUERY (a node that does not answer in `timeoutMs` is left out).
   */
  async pendingHintsFor(key: Buffer, timeoutMs: number): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = (await this.#o.store.targetsFor(key)).map((t) => [this.#o.selfId, t]);
    const remote = await Promise.all(
      this.#o.peers().map(async (id): Promise<Array<[string, string]>> => {
        const peer = this.#peer(id);
        if (peer === undefined) return [];
        try {
          const answer = await this.#o.bus.request(peer, HandoffMessageType.HINT_QUERY, encodeHintQuery(key), timeoutMs);
          return decodeHintQueryAnswer(answer).map((t) => [id, t]);
        } catch (err) {
          this.#o.log('debug', `handoff: hint query to ${id} failed: ${String(err)}`);
          return [];
        }
      }),
    );
    for (const r of remote) out.push(...r);
    return out.sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : 1));
  }

  /**
   * FLUSHALL on this node (after its keyspace was flushed): deletes every hint held here, so a
   * flushed write does not come back on its target through handoff. Not counted as dropped: the
   * data they stood for was flushed. Resolves with how many were deleted.
   */
  async flushed(): Promise<number> {
    this.#flushEpoch++;
    const removed = await this.#o.store.clear(HINT_SWEEP_PAGE_KEYS);
    if (removed > 0) this.#o.log('info', `handoff: FLUSHALL deleted ${removed} hints`);
    return removed;
  }

  /** Resolves when no drain runs (tests). */
  async idle(): Promise<void> {
    while (this.#draining.size > 0) await Promise.all(this.#draining.values());
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.#draining.values(), this.#sweeping]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, HANDOFF_CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  #peer(id: string): PeerAddress | undefined {
    const a = this.#o.addressOf(id);
    return a === undefined ? undefined : { host: a.host, port: a.busPort, id };
  }

  #tick(): void {
    if (this.#closed) return;
    const now = this.#o.now();
    for (const target of this.#o.store.targets()) {
      if (this.#draining.has(target)) continue;
      if (this.#o.isGone?.(target) === true) {
        const p = this.#dropGone(target)
          .catch((err: unknown) => this.#o.log('warn', `handoff: dropping the hints for removed node ${target} failed: ${String(err)}`))
          .finally(() => this.#draining.delete(target));
        this.#draining.set(target, p);
        continue;
      }
      if (!this.#o.isUp(target)) continue;
      if ((this.#backoffUntil.get(target) ?? 0) > now) continue;
      const p = this.#drain(target)
        .catch((err: unknown) => {
          this.stats.batchErrors++;
          const wait = this.#backOff(target);
          this.#o.log('warn', `handoff: to ${target} paused for ${Math.round(wait)} ms: ${String(err)}`);
        })
        .finally(() => this.#draining.delete(target));
      this.#draining.set(target, p);
    }
    if (this.#sweeping === undefined && now - this.#lastSweepMs >= HINT_SWEEP_INTERVAL_MS) {
      this.#lastSweepMs = now;
      this.#sweeping = this.#sweep()
        .catch((err: unknown) => this.#o.log('warn', `handoff: expiry sweep failed: ${String(err)}`))
        .finally(() => (this.#sweeping = undefined));
    }
  }

  /** Records a failed pass of `target`; returns how long it is left alone. */
  #backOff(target: string): number {
    const n = this.#failures.get(target) ?? 0;
    this.#failures.set(target, n + 1);
    const wait = backoffDelayMs(n, HANDOFF_RETRY_BACKOFF_MS, HANDOFF_RETRY_BACKOFF_MAX_MS, Math.random);
    this.#backoffUntil.set(target, this.#o.now() + wait);
    return wait;
  }

  #rateLimiter(s: HandoffSettings): TokenBucket {
    const capacity = Math.max(s.batchKeys, s.keysPerSecond);
    const b = this.#bucket;
    if (b !== undefined && b.ratePerSec === s.keysPerSecond && b.capacityKeys === capacity) return b;
    this.#bucket = new TokenBucket(s.keysPerSecond, capacity, this.#o.now());
    return this.#bucket;
  }

  async #dropExpired(expired: readonly StoredHint[]): Promise<void> {
    if (expired.length === 0) return;
    const removed = await this.#o.store.removeIfUnchanged(expired);
    this.stats.dropped += removed.length;
    if (removed.length > 0) this.#o.log('info', `handoff: dropped ${removed.length} hints for ${removed[0]!.target} older than ${MAX_HINT_WINDOW_KEY} (left to anti-entropy)`);
  }

  /** Drops every hint for `target`, a node removed for good (see the header). */
  async #dropGone(target: string): Promise<void> {
    const removed = await this.#o.store.removeTarget(target, HINT_SWEEP_PAGE_KEYS);
    this.stats.dropped += removed;
    this.#backoffUntil.delete(target);
    this.#failures.delete(target);
    if (removed > 0) this.#o.log('info', `handoff: dropped ${removed} hints for ${target}, removed from the cluster (its slots re-replicate from the survivors)`);
  }

  /** One pass over `target`'s hints (see the header). */
  async #drain(target: string): Promise<void> {
    const started = this.#o.now();
    let delivered = 0;
    let failed = 0;
    let after: Buffer | undefined;
    for (;;) {
      if (this.#closed || !this.#o.isUp(target)) return;
      const s = this.#o.settings();
      const epoch = this.#flushEpoch;
      const page = await this.#o.store.read(target, s.batchKeys, after);
      if (page.length === 0) break;
      const plan = planBatch(page, this.#o.now(), s.windowMs, { maxKeys: s.batchKeys, maxBytes: HINT_BATCH_BYTES_MAX });
      await this.#dropExpired(plan.expired);
      if (plan.deliver.length > 0) {
        const bucket = this.#rateLimiter(s);
        const wait = bucket.waitMs(plan.deliver.length, this.#o.now());
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // Re-check after the wait: closed, the target went down again, or FLUSHALL deleted the page.
        if (this.#closed || !this.#o.isUp(target) || epoch !== this.#flushEpoch) return;
        bucket.take(plan.deliver.length, this.#o.now());
        const peer = this.#peer(target);
        if (peer === undefined) return;
        this.stats.batchesSent++;
        const answer = await this.#o.bus.request(
          peer,
          HandoffMessageType.HINT_BATCH,
          encodeHintBatch(target, plan.deliver.map((h) => ({ key: h.key, objectBytes: h.objectBytes }))),
          HANDOFF_BATCH_TIMEOUT_MS,
        );
        const acked = ackedHints(plan.deliver, decodeHintStatuses(answer));
        this.stats.itemsFailed += plan.deliver.length - acked.length;
        failed += plan.deliver.length - acked.length;
        await this.#o.store.removeIfUnchanged(acked);
        this.stats.delivered += acked.length;
        delivered += acked.length;
        this.#failures.delete(target);
      }
      const processed = page.length - plan.rest.length;
      after = page[processed - 1]?.engineKey ?? after;
      if (page.length < s.batchKeys && plan.rest.length === 0) break;
    }
    if (failed > 0) this.#backOff(target);
    if (delivered > 0) this.#o.log('info', `handoff: delivered ${delivered} hints to ${target} in ${this.#o.now() - started} ms`);
  }

  /** Drops expired hints of targets that are not draining. */
  async #sweep(): Promise<void> {
    const windowMs = this.#o.settings().windowMs;
    if (windowMs === 0) return;
    for (const target of this.#o.store.targets()) {
      let after: Buffer | undefined;
      for (;;) {
        if (this.#closed || this.#draining.has(target)) break;
        const page = await this.#o.store.read(target, HINT_SWEEP_PAGE_KEYS, after);
        if (page.length === 0) break;
        const plan = planBatch(page, this.#o.now(), windowMs, { maxKeys: page.length, maxBytes: Number.MAX_SAFE_INTEGER });
        await this.#dropExpired(plan.expired);
        after = page[page.length - 1]!.engineKey;
        if (page.length < HINT_SWEEP_PAGE_KEYS) break;
      }
    }
  }
}
