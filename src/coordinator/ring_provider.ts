/**
 * The ring for the current membership view and replication settings, rebuilt only when either
 * changes. The coordinator asks for it on every request, so a membership change or
 * `CONFIG SET replication-factor` applies to the next request without anyone caching a stale
 * ring; building is the expensive part (0.15 s at 100 nodes, ring.ts), so it is memoized on
 * (membership fingerprint, vnodes, n / dcReplication).
 */

import { buildRing, type Ring, type RingMember, type RingOptions } from './ring.js';
import { reportsChanges } from '../config/config.js';
import type { ConfigView } from '../server/types.js';

export class RingProvider {
  #ring: Ring | undefined;
  #key = '';
  #version = 0;
  #lastMembers: readonly RingMember[] | undefined;
  /** The frozen member list last seen (frozenMembers): the same reference is the same members. */
  #lastFrozen: readonly RingMember[] | undefined;
  #lastOptions: RingOptions | undefined;

  /**
   * `members` and `options` are read on every `current()` call: they may return new values at
   * any time (gossip, CONFIG SET). Throws MembershipError on a membership placement cannot use.
   */
  constructor(
    private readonly members: () => readonly RingMember[],
    private readonly options: () => RingOptions,
  ) {}

  current(): Ring {
    const members = this.members();
    const opts = this.options();
    // Fast path (every request calls this): the same members and options as last time,
    // compared field by field without building the string key.
    if (
      this.#ring !== undefined &&
      this.#lastMembers !== undefined &&
      this.#lastOptions !== undefined &&
      (members === this.#lastFrozen || sameMembers(members, this.#lastMembers)) &&
      sameOptions(opts, this.#lastOptions)
    ) {
      if (frozenMembers.has(members)) this.#lastFrozen = members;
      return this.#ring;
    }
    const key = cacheKey(members, opts);
    if (this.#ring === undefined || key !== this.#key) {
      this.#ring = buildRing(members, opts);
      this.#key = key;
      this.#version++;
    }
    // Copies: the caller may reuse or mutate the arrays and objects it handed us.
    this.#lastMembers = members.map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, state: m.state }));
    this.#lastOptions = { ...opts, ...(opts.dcReplication === undefined ? {} : { dcReplication: new Map(opts.dcReplication) }) };
    this.#lastFrozen = frozenMembers.has(members) ? members : undefined;
    return this.#ring;
  }

  /**
   * Rings built so far (1 after the first current()): a local counter that grows whenever the
   * membership or the replication settings change (INFO cluster_ring_version). Not comparable
   * between nodes; the ring's fingerprint is.
   */
  get version(): number {
    return this.#version;
  }
}

/** Member lists made by frozenMembers: never changed after, so identity is equality. */
const frozenMembers = new WeakSet<readonly RingMember[]>();

/** A member list RingProvider may compare by reference (deeply frozen). */
export function freezeMembers(list: readonly RingMember[]): readonly RingMember[] {
  const frozen = Object.freeze(list.map((m) => Object.freeze({ ...m })));
  frozenMembers.add(frozen);
  return frozen;
}

/**
 * `compute()` again only when `version()` moved (e.g. the membership table's rowsVersion):
 * the ring's member list, asked for on every request, without a copy and sort per request.
 */
export function memoByVersion<T>(version: () => number, compute: () => T): () => T {
  let last: { version: number; value: T } | undefined;
  return () => {
    const v = version();
    if (last === undefined || last.version !== v) last = { version: v, value: compute() };
    return last.value;
  };
}

/** The config keys a ring is built from (with the members). */
const RING_CONFIG_KEYS: ReadonlySet<string> = new Set(['vnodes', 'replication-factor']);

/**
 * A RingProvider's options from the running config (`vnodes`, `replication-factor`). Asked for on
 * every request (current()); a config that reports its changes is read again only after it
 * reported a change of one of those keys (its listeners run inside the change, so CONFIG SET
 * replication-factor still applies to the next request): one object kept, where reading both keys
 * and making the object was two config lookups and an allocation per request. Any other config
 * is read on every call.
 */
export function ringOptionsFromConfig(config: ConfigView): () => RingOptions {
  const read = (): RingOptions => ({ vnodes: config.getNumber('vnodes'), n: config.getNumber('replication-factor') });
  if (!reportsChanges(config)) return read;
  let options: RingOptions | undefined;
  config.onChange((key) => {
    if (RING_CONFIG_KEYS.has(key)) options = undefined;
  });
  return () => (options ??= read());
}

function cacheKey(members: readonly RingMember[], o: RingOptions): string {
  const m = [...members].map((x) => `${x.id}\u0000${x.weight}\u0000${x.dc}\u0000${x.rack}\u0000${x.state}`).sort();
  const dcs = o.dcReplication === undefined ? '' : [...o.dcReplication].map(([dc, k]) => `${dc}=${k}`).sort().join(',');
  return JSON.stringify([m, o.vnodes, o.n ?? null, dcs, o.view ?? 'current']);
}

/** Same members in the same order (a different order may still be the same ring: the key decides). */
function sameMembers(a: readonly RingMember[], b: readonly RingMember[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.id !== y.id || x.weight !== y.weight || x.dc !== y.dc || x.rack !== y.rack || x.state !== y.state) return false;
  }
  return true;
}

function sameOptions(a: RingOptions, b: RingOptions): boolean {
  if (a.vnodes !== b.vnodes || a.n !== b.n || (a.view ?? 'current') !== (b.view ?? 'current')) return false;
  const x = a.dcReplication;
  const y = b.dcReplication;
  if (x === undefined || y === undefined) return x === y;
  if (x.size !== y.size) return false;
  for (const [dc, k] of x) if (y.get(dc) !== k) return false;
  return true;
}
