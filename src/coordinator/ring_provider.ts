/**
 * The ring for the current membership view and replication settings, rebuilt only when either
 * changes. The coordinator asks for it on every request, so a membership change or
 * `CONFIG SET replication-factor` applies to the next request without anyone caching a stale
 * ring; building is the expensive part (0.15 s at 100 nodes, ring.ts), so it is memoized on
 * (membership fingerprint, vnodes, n / dcReplication).
 */

import { buildRing, type Ring, type RingMember, type RingOptions } from './ring.js';

export class RingProvider {
  #ring: Ring | undefined;
  #key = '';
  #version = 0;

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
    const key = cacheKey(members, opts);
    if (this.#ring === undefined || key !== this.#key) {
      this.#ring = buildRing(members, opts);
      this.#key = key;
      this.#version++;
    }
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

function cacheKey(members: readonly RingMember[], o: RingOptions): string {
  const m = [...members].map((x) => `${x.id}\u0000${x.weight}\u0000${x.dc}\u0000${x.rack}\u0000${x.state}`).sort();
  const dcs = o.dcReplication === undefined ? '' : [...o.dcReplication].map(([dc, k]) => `${dc}=${k}`).sort().join(',');
  return JSON.stringify([m, o.vnodes, o.n ?? null, dcs, o.view ?? 'current']);
}
