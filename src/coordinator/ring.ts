/**
 * Placement: the ONE function that says which nodes hold a slot (ARCHITECTURE.md section 2).
 * Pure: a function of the membership (ids, weights, dc, rack, state) and the options only, so
 * nodes that agree on membership agree on placement. Input order does not matter.
 *
 *   token_i(node) = xxhash64(`${id}:${i}`) (seed 0, read big-endian), i < round(vnodes * weight)
 *   position(slot s) = s * 2^64 / 16384 = s * 2^50
 *
 *            slot s
 *              |      clockwise walk: first token at or after the slot's position, then on,
 *   ...--t(B)--+--t(A)----t(B)----t(C)----t(A)--...   wrapping past 2^64 to 0
 *                   1st     (dup)   2nd      -> preflist [A, C, ...] (distinct physical nodes)
 *
 * Preference list: walk clockwise and pick distinct physical nodes. Racks first: a node whose
 * rack is already used is set aside (in walk order) until every rack of its datacenter is in
 * use, then the set-aside nodes are taken first, then the walk goes on. Without a dcReplication
 * map all members form one group of N (racks are named per dc); with one, each listed dc gets
 * its own count and members of unlisted dcs hold no replicas. The first entry is the primary.
 * A preflist is shorter than asked only when there are not enough nodes.
 *
 * Owners: members in state `up` or `leaving` (view 'current': who holds data now); view
 * 'target' is the ring once joins and leaves complete (`up` and `joining`), used to plan streaming.
 * A node being down does not change the ring: sloppy quorum uses fallbacks instead (see below).
 *
 * Adding a node changes only the slots whose preflist gains it (about N/(n+1) of the
 * preflists, 1/(n+1) of the primaries), unless the new node brings a new rack, which changes
 * the rack-first choice elsewhere too. ring.test.ts measures both.
 */

import assert from 'node:assert';
import xxhash from 'xxhash-addon';
import { SLOT_COUNT } from './slot.js';

const { XXHash64 } = xxhash;

export type MemberState = 'joining' | 'up' | 'leaving' | 'left';

export interface RingMember {
  readonly id: string;
  /** Relative capacity: the node gets round(vnodes * weight) tokens. 0 = holds nothing. */
  readonly weight: number;
  readonly dc: string;
  readonly rack: string;
  readonly state: MemberState;
}

export interface RingOptions {
  /** Tokens per unit of weight. */
  readonly vnodes: number;
  /** Replicas per slot when there is no dcReplication map. */
  readonly n?: number;
  /** dc -> replicas in that dc; when given, `n` must be absent. */
  readonly dcReplication?: ReadonlyMap<string, number>;
  /** 'current' (default): up + leaving own tokens; 'target': up + joining. */
  readonly view?: 'current' | 'target';
}

/**
 * Default tokens per unit of weight. Measured by bench/ring_balance.ts over 8 node-id schemes
 * (bench/results/ring_balance.md), most loaded node's primaries over the mean: 10 nodes median
 * 1.10, worst 1.18; 100 nodes median 1.20, worst 1.23 (there, 164 slots per node bound it);
 * replica load (N=3) within 1.09 / 1.13. 128 also keeps 10 nodes under 1.25 (worst 1.17) but
 * 100 nodes reach 1.36. Cost: building a 100-node ring (25,600 tokens) takes about 0.15 s.
 */
export const DEFAULT_VNODES = 256;

/** Limits on what a membership may ask of placement. */
export const MAX_RING_MEMBERS = 4096;
export const MAX_VNODES = 4096;
export const MAX_TOKENS_TOTAL = 1 << 22;
export const MAX_REPLICATION = 16;

/**
 * A membership placement cannot use (duplicate ids, a bad weight, too many members or tokens).
 * Membership arrives by gossip, so this is an operating error: typed, not an assertion.
 */
export class MembershipError extends Error {
  readonly code = 'ERR_BAD_MEMBERSHIP';
  constructor(message: string) {
    super(message);
    this.name = 'MembershipError';
  }
}

const SLOT_POSITION_HI_STEP = 2 ** 18; // 2^50 / 2^32: slot positions have a zero low word

/** Fallback assignment for one primary that is not up (Riak's annotated preflist). */
export interface PreflistEntry {
  readonly id: string;
  readonly role: 'primary' | 'fallback';
  /** For a fallback: the primary whose replica it holds (the hint's destination). */
  readonly forId?: string;
}

export class Ring {
  /** Owning members, sorted by id. */
  readonly members: readonly RingMember[];
  readonly vnodes: number;
  /** Replicas per slot (sum over dcs with dcReplication). */
  readonly n: number;
  readonly dcReplication: ReadonlyMap<string, number> | undefined;
  /** Tokens sorted by position: high and low 32 bits, and owner index into `members`. */
  private readonly tokHi: Uint32Array;
  private readonly tokLo: Uint32Array;
  private readonly tokOwner: Uint32Array;
  /** First token index at or after each slot's position (tokens.length = none: wrap to 0). */
  private readonly slotStart: Uint32Array;
  private readonly preflists: ReadonlyArray<readonly string[]>;
  private readonly memberIndex: ReadonlyMap<string, number>;

  constructor(membership: readonly RingMember[], opts: RingOptions) {
    assert(Number.isInteger(opts.vnodes) && opts.vnodes >= 1 && opts.vnodes <= MAX_VNODES, `vnodes must be 1..${MAX_VNODES}`);
    assert((opts.n === undefined) !== (opts.dcReplication === undefined), 'give exactly one of n and dcReplication');
    if (opts.n !== undefined) assert(Number.isInteger(opts.n) && opts.n >= 1 && opts.n <= MAX_REPLICATION, `n must be 1..${MAX_REPLICATION}`);
    let n = opts.n ?? 0;
    if (opts.dcReplication !== undefined) {
      for (const [dc, k] of opts.dcReplication) {
        assert(Number.isInteger(k) && k >= 0, `replicas for dc ${dc} must be an integer >= 0`);
        n += k;
      }
      assert(n >= 1 && n <= MAX_REPLICATION, `total replication must be 1..${MAX_REPLICATION}`);
    }
    const owning: ReadonlySet<MemberState> = new Set<MemberState>(opts.view === 'target' ? ['up', 'joining'] : ['up', 'leaving']);
    const ids = new Set<string>();
    const members = membership
      .filter((m) => {
        if (ids.has(m.id)) throw new MembershipError(`duplicate member id ${m.id}`);
        ids.add(m.id);
        if (!(Number.isFinite(m.weight) && m.weight >= 0)) throw new MembershipError(`weight of ${m.id} must be a finite number >= 0`);
        return owning.has(m.state);
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (members.length > MAX_RING_MEMBERS) throw new MembershipError(`more than ${MAX_RING_MEMBERS} members`);
    this.members = Object.freeze(members);
    this.vnodes = opts.vnodes;
    this.n = n;
    this.dcReplication = opts.dcReplication;
    this.memberIndex = new Map(members.map((m, i) => [m.id, i]));

    // Tokens.
    let total = 0;
    const counts = members.map((m) => Math.round(opts.vnodes * m.weight));
    for (const c of counts) total += c;
    if (total > MAX_TOKENS_TOTAL) throw new MembershipError(`more than ${MAX_TOKENS_TOTAL} tokens`);
    const hi = new Uint32Array(total);
    const lo = new Uint32Array(total);
    const owner = new Uint32Array(total);
    let k = 0;
    members.forEach((m, mi) => {
      for (let i = 0; i < (counts[mi] as number); i++) {
        const h = XXHash64.hash(Buffer.from(`${m.id}:${i}`, 'utf8'));
        hi[k] = h.readUInt32BE(0);
        lo[k] = h.readUInt32BE(4);
        owner[k] = mi;
        k++;
      }
    });
    const order = Array.from({ length: total }, (_, i) => i);
    // Ties (equal 64-bit tokens) are broken by member id order, then token number: deterministic.
    order.sort((a, b) => (hi[a] as number) - (hi[b] as number) || (lo[a] as number) - (lo[b] as number) || (owner[a] as number) - (owner[b] as number) || a - b);
    this.tokHi = Uint32Array.from(order, (i) => hi[i] as number);
    this.tokLo = Uint32Array.from(order, (i) => lo[i] as number);
    this.tokOwner = Uint32Array.from(order, (i) => owner[i] as number);

    this.slotStart = new Uint32Array(SLOT_COUNT);
    let t = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const posHi = s * SLOT_POSITION_HI_STEP;
      while (t < total && (this.tokHi[t] as number) < posHi) t++;
      this.slotStart[s] = t;
    }
    this.preflists = this.computePreflists();
  }

  /** The slot's preference list: primary first. Empty when no member owns tokens. */
  preflist(slot: number): readonly string[] {
    // `if` + assert.fail, not assert(cond, `...`): that message string was built on every call (hot path).
    if (!(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT)) assert.fail(`bad slot ${slot}`);
    return this.preflists[slot] as readonly string[];
  }

  member(id: string): RingMember | undefined {
    const i = this.memberIndex.get(id);
    return i === undefined ? undefined : this.members[i];
  }

  /**
   * Sloppy quorum: the next nodes clockwise past the preflist that `isUp` accepts, in walk order,
   * at most `count`. With `dc`, only members of that datacenter.
   */
  fallbacks(slot: number, isUp: (id: string) => boolean, count: number, dc?: string): string[] {
    const pref = new Set(this.preflist(slot));
    const out: string[] = [];
    if (count <= 0) return out;
    this.walk(slot, (mi) => {
      const m = this.members[mi] as RingMember;
      if (pref.has(m.id) || !isUp(m.id) || (dc !== undefined && m.dc !== dc)) return false;
      out.push(m.id);
      return out.length >= count;
    });
    return out;
  }

  /**
   * Riak's annotated preflist: the primaries that are up, and for each primary that is down
   * the next unused fallback (same dc as that primary when dcReplication is set), in preflist
   * order. Shorter than n when there are not enough healthy nodes.
   */
  annotatedPreflist(slot: number, isUp: (id: string) => boolean): PreflistEntry[] {
    const pref = this.preflist(slot);
    const out: PreflistEntry[] = [];
    const used = new Set<string>();
    const down: string[] = [];
    for (const id of pref) {
      if (isUp(id)) out.push({ id, role: 'primary' });
      else down.push(id);
    }
    if (down.length === 0) return out;
    const byDc = this.dcReplication !== undefined;
    for (const id of down) {
      const dc = byDc ? (this.member(id) as RingMember).dc : undefined;
      const candidates = this.fallbacks(slot, (x) => isUp(x) && !used.has(x), 1, dc);
      const f = candidates[0];
      if (f === undefined) continue;
      used.add(f);
      out.push({ id: f, role: 'fallback', forId: id });
    }
    return out;
  }

  /**
   * Maximal runs of consecutive slots with the same preference list, in slot order, covering
   * 0..16383 (for CLUSTER SLOTS / SHARDS). `end` is inclusive, as Redis prints it.
   */
  slotRanges(): Array<{ start: number; end: number; preflist: readonly string[] }> {
    const out: Array<{ start: number; end: number; preflist: readonly string[] }> = [];
    for (let s = 0; s < SLOT_COUNT; s++) {
      const p = this.preflists[s] as readonly string[];
      const last = out[out.length - 1];
      if (last !== undefined && sameList(last.preflist, p)) last.end = s;
      else out.push({ start: s, end: s, preflist: p });
    }
    return out;
  }

  /**
   * A digest of everything placement depends on (owning members with weight, dc and rack,
   * vnodes, replication): two nodes with equal fingerprints compute identical rings.
   */
  get fingerprint(): string {
    const parts: string[] = [`v${this.vnodes}`, `n${this.n}`];
    if (this.dcReplication !== undefined) {
      for (const [dc, k] of [...this.dcReplication].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) parts.push(`dc=${dc}:${k}`);
    }
    for (const m of this.members) parts.push(`${m.id}\u0000${m.weight}\u0000${m.dc}\u0000${m.rack}`);
    return XXHash64.hash(Buffer.from(JSON.stringify(parts), 'utf8')).toString('hex');
  }

  /** Slots per member: as primary, and as any replica. Members with none are listed with 0. */
  ownership(): Map<string, { primary: number; replica: number }> {
    const out = new Map(this.members.map((m) => [m.id, { primary: 0, replica: 0 }]));
    for (let s = 0; s < SLOT_COUNT; s++) {
      const p = this.preflists[s] as readonly string[];
      p.forEach((id, i) => {
        const o = out.get(id) as { primary: number; replica: number };
        o.replica++;
        if (i === 0) o.primary++;
      });
    }
    return out;
  }

  /** Visits distinct members clockwise from the slot's position until `visit` returns true. */
  private walk(slot: number, visit: (memberIndex: number) => boolean, stamp?: Int32Array, mark?: number): void {
    const total = this.tokOwner.length;
    if (total === 0) return;
    const seen = stamp ?? new Int32Array(this.members.length).fill(-1);
    const tag = mark ?? 0;
    let distinct = 0;
    let t = (this.slotStart[slot] as number) % total;
    for (let step = 0; step < total; step++) {
      const mi = this.tokOwner[t] as number;
      if (seen[mi] !== tag) {
        seen[mi] = tag;
        distinct++;
        if (visit(mi)) return;
        if (distinct === this.members.length) return;
      }
      t = t + 1 === total ? 0 : t + 1;
    }
  }

  private computePreflists(): Array<readonly string[]> {
    // Groups: one per dc with a quota (or one for all). Racks are counted per group.
    const groupOf = new Int32Array(this.members.length).fill(-1);
    const quotas: number[] = [];
    const rackIds: Array<Map<string, number>> = [];
    const rackOf = new Int32Array(this.members.length);
    const groupIndex = new Map<string, number>();
    if (this.dcReplication === undefined) {
      quotas.push(this.n);
      rackIds.push(new Map());
    } else {
      for (const [dc, k] of this.dcReplication) {
        if (k === 0) continue;
        groupIndex.set(dc, quotas.length);
        quotas.push(k);
        rackIds.push(new Map());
      }
    }
    const groupSize: number[] = quotas.map(() => 0);
    this.members.forEach((m, mi) => {
      if ((counts(m, this.vnodes)) === 0) return; // no tokens: never walked
      const g = this.dcReplication === undefined ? 0 : groupIndex.get(m.dc);
      if (g === undefined) return;
      groupOf[mi] = g;
      groupSize[g] = (groupSize[g] as number) + 1;
      const racks = rackIds[g] as Map<string, number>;
      const rackKey = `${m.dc}\u0000${m.rack}`;
      if (!racks.has(rackKey)) racks.set(rackKey, racks.size);
      rackOf[mi] = racks.get(rackKey) as number;
    });
    const want = quotas.map((q, g) => Math.min(q, groupSize[g] as number));
    const totalWant = want.reduce((a, b) => a + b, 0);
    const rackCount = rackIds.map((r) => r.size);

    const stamp = new Int32Array(this.members.length).fill(-1);
    const out: Array<readonly string[]> = new Array(SLOT_COUNT);
    const cache = new Map<string, readonly string[]>();
    const picked: number[] = [];
    const groupPicked = new Int32Array(quotas.length);
    const skipped: number[][] = quotas.map(() => []);
    const racksUsed: Array<Set<number>> = quotas.map(() => new Set());
    for (let s = 0; s < SLOT_COUNT; s++) {
      picked.length = 0;
      groupPicked.fill(0);
      for (const x of skipped) x.length = 0;
      for (const r of racksUsed) r.clear();
      const take = (g: number, mi: number): void => {
        picked.push(mi);
        groupPicked[g] = (groupPicked[g] as number) + 1;
      };
      if (totalWant > 0) {
        this.walk(
          s,
          (mi) => {
            const g = groupOf[mi] as number;
            if (g < 0 || (groupPicked[g] as number) >= (want[g] as number)) return false;
            const used = racksUsed[g] as Set<number>;
            const rack = rackOf[mi] as number;
            const saturated = used.size === rackCount[g];
            if (saturated) {
              take(g, mi);
            } else if (!used.has(rack)) {
              take(g, mi);
              used.add(rack);
              if (used.size === rackCount[g]) {
                const sk = skipped[g] as number[];
                while ((groupPicked[g] as number) < (want[g] as number) && sk.length > 0) take(g, sk.shift() as number);
              }
            } else {
              (skipped[g] as number[]).push(mi);
            }
            return picked.length >= totalWant;
          },
          stamp,
          s,
        );
        // Walked every node and some group is still short (cannot happen with want <= group
        // size, since every rack is then seen): take what was set aside, in walk order.
        skipped.forEach((sk, g) => {
          while ((groupPicked[g] as number) < (want[g] as number) && sk.length > 0) take(g, sk.shift() as number);
        });
      }
      const ids = picked.map((mi) => (this.members[mi] as RingMember).id);
      const key = ids.join('\u0000');
      let p = cache.get(key);
      if (p === undefined) {
        p = Object.freeze(ids);
        cache.set(key, p);
      }
      out[s] = p;
    }
    return out;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function counts(m: RingMember, vnodes: number): number {
  return Math.round(vnodes * m.weight);
}

export function buildRing(membership: readonly RingMember[], opts: RingOptions): Ring {
  return new Ring(membership, opts);
}
