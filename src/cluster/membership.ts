/**
 * The membership table: PURE decision logic of gossip membership and failure detection (no I/O,
 * no timers; every method that needs time takes `nowMs`). gossip.ts is the async shell around it.
 *
 * What a record says (gossiped, merged, persisted):
 *   id, host, port (client), busPort, dc, rack, weight, state joining|up|leaving|left  -- owner-set
 *   targetWeight -- owner-set, optional: a weight change in progress (membership_weight.ts).
 *                   The current ring uses `weight`, the target ring `targetWeight`; the owner
 *                   makes it current once the slots that change hands are streamed.
 *   incarnation  -- bumped by the owner on restart, on any change of its own info, and to refute
 *   heartbeat    -- bumped by the owner every gossip round
 *   suspectedAt  -- a SWIM suspicion claim: "some node suspects this one at incarnation c" (or null)
 * Liveness alive|suspect|down is LOCAL: each node decides it from what it observes; it is never
 * copied from a peer (only the claim travels, so the suspect can refute it).
 *
 * Merge rule for a received record r against the local one l (same id), version = (inc, hb):
 *   l missing            -> insert r (alive, fresh timeout)                       [joined]
 *   r.version > l.version -> take r's fields; the node showed activity: alive again [updated/alive]
 *   r.version = l.version -> state precedence left > leaving > up > joining        [updated]
 *   r.version < l.version -> keep l
 *   claims: keep max(l.claim, r.claim) while it is >= the incarnation; a newer incarnation clears it
 * The rule is commutative, associative and idempotent on (version, state, claim), so tables that
 * exchanged the same records hold the same versions whatever the order (membership.test.ts).
 * A record about ourselves is never taken: if it carries a claim >= our incarnation, or a version
 * above ours (we restarted and lost our table), we bump our incarnation past it (refutation).
 *
 * Failure detection (issue 5), per member, as seen by this node:
 *
 *   alive ──no version advance for nodeTimeoutMs──▶ suspect ──probe fails AND confirmed──▶ down
 *     ▲                                               │                                      │
 *     └──── version advances, or it answers a probe ──┴──────────────────────────────────────┘
 *
 * - suspect: the shell probes it directly and through k helpers (SWIM ping-req); the table
 *   records a claim at the member's incarnation so the member, if alive, hears of it and refutes.
 * - down only through probeFailed(), which re-checks that the member is still suspect AT THE
 *   VERSION THE PROBE WAS ARMED FOR (a timer that fires late re-checks its state) and needs the
 *   shell's confirmation that an independent node failed to reach it too.
 * - a node paused less than nodeTimeoutMs never reaches suspect+failed probe: its version
 *   advances (or it answers the probe) once it runs again.
 * - shiftTimeouts(): when the local node itself was paused (its timers fired late), the time it
 *   could not observe is credited to every member instead of being held against them.
 *
 * Time: every `nowMs` must come from one monotonic clock, the Gossiper's (realClock.now() in
 * production), so a wall-clock step (NTP, faketime) never suspects or revives anyone.
 *
 * Wiring (lead): build with MembershipTable.create(self, realClock.now(), opts, restored) where `restored`
 * comes from deserializeMembership() of the bytes the node persisted (write serialize() after
 * changes, e.g. in gossip's onChange); map members() to RingMember for placement (only `state`,
 * dc, rack, weight, id matter to the ring; liveness drives fallbacks).
 */
import assert from 'node:assert';
import { createHash } from 'node:crypto';
import type { MemberState } from '../coordinator/ring.js';
import { ClusterError } from './errors.js';
import { isValidNodeId } from './handshake.js';
import { MAX_COUNTER, MAX_MEMBERS, MAX_WEIGHT } from './limits.js';
import { decodeRecord, encodeRecord } from './gossip_codec.js';
import { ByteReader, ByteWriter } from './wire.js';

export type { MemberState };
export type Liveness = 'alive' | 'suspect' | 'down';

/** What the owner says about itself. */
export interface MemberInfo {
  readonly id: string;
  readonly host: string;
  /** Client (RESP) port. */
  readonly port: number;
  /** Cluster bus port. */
  readonly busPort: number;
  readonly dc: string;
  readonly rack: string;
  readonly weight: number;
  /**
   * The weight being moved to (issue 6): absent, or equal to `weight`, when no change is in
   * progress. Only the target ring uses it (ringMemberOf); see membership_weight.ts.
   */
  readonly targetWeight?: number;
  readonly state: MemberState;
}

/** What gossip carries and the node persists. */
export interface MemberRecord extends MemberInfo {
  readonly incarnation: number;
  readonly heartbeat: number;
  /** Incarnation at which some node suspects this member, or null. */
  readonly suspectedAt: number | null;
}

/** A row of the local table: the record plus this node's own observations. */
export interface Member extends MemberRecord {
  readonly liveness: Liveness;
  /** Local time the member's version last advanced (or it last answered a probe). */
  readonly lastAdvanceMs: number;
  /** Local time liveness last changed. */
  readonly livenessSinceMs: number;
}

export type ChangeKind =
  | 'joined' // a member we did not know
  | 'updated' // its info or state changed (ring inputs may have changed)
  | 'alive' // suspect/down -> alive
  | 'suspect' // alive -> suspect
  | 'down' // suspect -> down (confirmed)
  | 'refuted'; // we bumped our own incarnation to refute a claim or a newer record of us

export interface MemberChange {
  readonly kind: ChangeKind;
  readonly id: string;
  readonly member: Member;
}

/** What a probe was armed for: probeFailed() acts only if the member is still at this version. */
export interface ProbeTarget {
  readonly id: string;
  readonly host: string;
  readonly busPort: number;
  readonly incarnation: number;
  readonly heartbeat: number;
}

export interface MembershipOptions {
  /** Silence (no version advance) after which a member is suspected. */
  readonly nodeTimeoutMs: number;
  /** Default MAX_MEMBERS. */
  readonly maxMembers?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const STATE_RANK: Readonly<Record<MemberState, number>> = { joining: 0, up: 1, leaving: 2, left: 3 };

/** -1, 0, 1 as (incarnation, heartbeat) of a is below, equal to, above b's. */
export function compareVersion(a: { incarnation: number; heartbeat: number }, b: { incarnation: number; heartbeat: number }): number {
  if (a.incarnation !== b.incarnation) return a.incarnation < b.incarnation ? -1 : 1;
  if (a.heartbeat !== b.heartbeat) return a.heartbeat < b.heartbeat ? -1 : 1;
  return 0;
}

export function assertValidRecord(r: MemberRecord): void {
  assert(isValidNodeId(r.id), `invalid node id ${JSON.stringify(r.id)}`);
  assert(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535, 'bad port');
  assert(Number.isInteger(r.busPort) && r.busPort >= 0 && r.busPort <= 65535, 'bad bus port');
  assert(Number.isFinite(r.weight) && r.weight >= 0 && r.weight <= MAX_WEIGHT, 'bad weight');
  assert(r.targetWeight === undefined || (Number.isFinite(r.targetWeight) && r.targetWeight >= 0 && r.targetWeight <= MAX_WEIGHT), 'bad target weight');
  assert(Number.isInteger(r.incarnation) && r.incarnation >= 0 && r.incarnation <= MAX_COUNTER, 'bad incarnation');
  assert(Number.isInteger(r.heartbeat) && r.heartbeat >= 0 && r.heartbeat <= MAX_COUNTER, 'bad heartbeat');
  assert(r.suspectedAt === null || (Number.isInteger(r.suspectedAt) && r.suspectedAt >= 0 && r.suspectedAt <= MAX_COUNTER));
  assert(Object.prototype.hasOwnProperty.call(STATE_RANK, r.state), 'bad state');
}

function sameInfo(a: MemberInfo, b: MemberInfo): boolean {
  return (
    a.host === b.host && a.port === b.port && a.busPort === b.busPort && a.dc === b.dc && a.rack === b.rack && a.weight === b.weight && a.state === b.state &&
    targetWeightOf(a) === targetWeightOf(b)
  );
}

/** The weight a member is moving to: its targetWeight, or its weight when no change is in progress. */
export function targetWeightOf(m: Pick<MemberInfo, 'weight' | 'targetWeight'>): number {
  return m.targetWeight ?? m.weight;
}

/** True while a member's weight change is in progress (not yet current). */
export function weightPending(m: Pick<MemberInfo, 'weight' | 'targetWeight'>): boolean {
  return targetWeightOf(m) !== m.weight;
}

/** `targetWeight` only while it differs from `weight`: one canonical form for equal records. */
function withTargetWeight<T extends MemberInfo>(m: T): T {
  if (m.targetWeight === undefined || m.targetWeight !== m.weight) return m;
  const { targetWeight: _same, ...rest } = m;
  return rest as T;
}

function toRecord(m: Member): MemberRecord {
  return {
    id: m.id,
    host: m.host,
    port: m.port,
    busPort: m.busPort,
    dc: m.dc,
    rack: m.rack,
    weight: m.weight,
    ...(weightPending(m) ? { targetWeight: targetWeightOf(m) } : {}),
    state: m.state,
    incarnation: m.incarnation,
    heartbeat: m.heartbeat,
    suspectedAt: m.suspectedAt,
  };
}

/** Keeps a claim only while it applies to the current incarnation or a later one. */
function liveClaim(claim: number | null, incarnation: number): number | null {
  return claim !== null && claim >= incarnation ? claim : null;
}

function maxClaim(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

export class MembershipTable {
  readonly selfId: string;
  readonly #opts: Required<MembershipOptions>;
  /**
   * Rows are replaced on every change of liveness or info, but a plain version advance (the
   * heartbeat path, by far the most frequent) updates the row in place to spare the GC: a Member
   * from get()/members() is a view, valid until the table next changes. Change events carry copies.
   */
  readonly #members = new Map<string, Mutable<Member>>();
  #rowsVersion = 0;
  /** Records refused because the table was full (a metric). */
  droppedRecords = 0;

  private constructor(selfId: string, opts: MembershipOptions) {
    this.selfId = selfId;
    this.#opts = { maxMembers: MAX_MEMBERS, ...opts };
    assert(this.#opts.nodeTimeoutMs > 0, 'nodeTimeoutMs must be positive');
    assert(this.#opts.maxMembers >= 1 && this.#opts.maxMembers <= MAX_MEMBERS);
  }

  /**
   * A table for a node starting now. `restored` (from deserializeMembership) keeps the other
   * members across a restart; our own incarnation starts above any we ever had, because our
   * heartbeat restarts at 0 and must still read as newer than what peers remember.
   */
  static create(self: MemberInfo, nowMs: number, opts: MembershipOptions, restored: readonly MemberRecord[] = []): MembershipTable {
    const t = new MembershipTable(self.id, opts);
    let incarnation = 0;
    let restoredSelf: MemberRecord | undefined;
    for (const r of restored) {
      assertValidRecord(r);
      if (r.id === self.id) {
        incarnation = Math.max(incarnation, r.incarnation + 1, (r.suspectedAt ?? -1) + 1);
        restoredSelf = r;
        continue;
      }
      if (t.#members.size >= t.#opts.maxMembers - 1) break;
      t.#setRow(r.id, { ...r, suspectedAt: liveClaim(r.suspectedAt, r.incarnation), liveness: 'alive', lastAdvanceMs: nowMs, livenessSinceMs: nowMs });
    }
    const me: Member = withTargetWeight({
      ...self,
      ...restartWeights(self, restoredSelf),
      incarnation,
      heartbeat: 0,
      suspectedAt: null,
      liveness: 'alive',
      lastAdvanceMs: nowMs,
      livenessSinceMs: nowMs,
    });
    assertValidRecord(me);
    t.#setRow(self.id, me);
    return t;
  }

  get size(): number {
    return this.#members.size;
  }

  /**
   * Grows whenever a row is added or replaced: every change of a member's info (addresses, dc,
   * rack, weight, target weight, state) or liveness. A plain version advance (heartbeat,
   * incarnation, claim: updated in place) leaves it alone. Readers that derive something from
   * the rows' info (the ring's member list, on every request) recompute only when it moved.
   */
  get rowsVersion(): number {
    return this.#rowsVersion;
  }

  #setRow(id: string, m: Mutable<Member>): void {
    this.#members.set(id, m);
    this.#rowsVersion++;
  }

  get nodeTimeoutMs(): number {
    return this.#opts.nodeTimeoutMs;
  }

  self(): Member {
    return this.#members.get(this.selfId)!;
  }

  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  /** All members, ours included, sorted by id. */
  members(): Member[] {
    return [...this.#members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Our own record as gossip carries it. */
  selfRecord(): MemberRecord {
    return toRecord(this.self());
  }

  /** Records to gossip: every member, ours first. */
  records(): MemberRecord[] {
    const out = [toRecord(this.self())];
    for (const m of this.#members.values()) if (m.id !== this.selfId) out.push(toRecord(m));
    return out;
  }

  /** One gossip round began: our heartbeat advances. */
  tick(nowMs: number): void {
    const me = this.#members.get(this.selfId)!;
    if (me.heartbeat >= MAX_COUNTER) {
      // 2^48 rounds is millennia at any sane interval; roll into a new incarnation all the same.
      me.incarnation += 1;
      me.heartbeat = 0;
    } else {
      me.heartbeat += 1;
    }
    me.lastAdvanceMs = nowMs;
  }

  /** Changes our own info (state, weight, addresses): a new incarnation makes it win everywhere. */
  updateSelf(change: Partial<Omit<MemberInfo, 'id'>>, nowMs: number): MemberChange {
    const me = this.self();
    const next: Member = withTargetWeight({ ...me, ...change, id: me.id, incarnation: me.incarnation + 1, heartbeat: me.heartbeat, suspectedAt: null, lastAdvanceMs: nowMs });
    assertValidRecord(next);
    this.#setSelf(next);
    return { kind: 'updated', id: me.id, member: { ...next } };
  }

  #setSelf(m: Member): void {
    this.#setRow(this.selfId, m);
  }

  /** Merges records received by gossip (see the rule above); returns what changed, in input order. */
  merge(records: readonly MemberRecord[], nowMs: number): MemberChange[] {
    const changes: MemberChange[] = [];
    for (const r of records) {
      assertValidRecord(r);
      if (r.id === this.selfId) {
        const c = this.#mergeSelf(r, nowMs);
        if (c) changes.push(c);
        continue;
      }
      const l = this.#members.get(r.id);
      if (!l) {
        if (this.#members.size >= this.#opts.maxMembers) {
          this.droppedRecords++;
          continue;
        }
        const m: Member = { ...r, suspectedAt: liveClaim(r.suspectedAt, r.incarnation), liveness: 'alive', lastAdvanceMs: nowMs, livenessSinceMs: nowMs };
        this.#setRow(r.id, m);
        changes.push({ kind: 'joined', id: r.id, member: { ...m } });
        continue;
      }
      const cmp = compareVersion(r, l);
      if (cmp > 0) {
        const claim = liveClaim(maxClaim(l.suspectedAt, r.suspectedAt), r.incarnation);
        const revived = l.liveness !== 'alive';
        const infoChanged = !sameInfo(l, r);
        if (!revived && !infoChanged) {
          // The heartbeat path: in place.
          l.incarnation = r.incarnation;
          l.heartbeat = r.heartbeat;
          l.suspectedAt = claim;
          l.lastAdvanceMs = nowMs;
          continue;
        }
        const m: Member = {
          ...r,
          suspectedAt: claim,
          liveness: 'alive',
          lastAdvanceMs: nowMs,
          livenessSinceMs: revived ? nowMs : l.livenessSinceMs,
        };
        this.#setRow(r.id, m);
        if (infoChanged) changes.push({ kind: 'updated', id: r.id, member: { ...m } });
        if (revived) changes.push({ kind: 'alive', id: r.id, member: { ...m } });
      } else {
        // Equal or older version: only the state precedence (equal versions) and the claim merge.
        const state = cmp === 0 && STATE_RANK[r.state] > STATE_RANK[l.state] ? r.state : l.state;
        const claim = liveClaim(maxClaim(l.suspectedAt, r.suspectedAt), l.incarnation);
        if (state !== l.state || claim !== l.suspectedAt) {
          const m: Member = { ...l, state, suspectedAt: claim };
          this.#setRow(r.id, m);
          if (state !== l.state) changes.push({ kind: 'updated', id: r.id, member: { ...m } });
        }
      }
    }
    return changes;
  }

  /** A record about us: refute a claim against our incarnation, or outrun a newer version of us. */
  #mergeSelf(r: MemberRecord, nowMs: number): MemberChange | null {
    const me = this.self();
    let needed = me.incarnation;
    if (r.suspectedAt !== null && r.suspectedAt >= me.incarnation) needed = Math.max(needed, r.suspectedAt + 1);
    if (compareVersion(r, me) > 0) needed = Math.max(needed, r.incarnation + 1);
    if (needed === me.incarnation) return null;
    if (needed > MAX_COUNTER) {
      // Only a broken peer can claim an incarnation at the counter's end: refuse the record.
      this.droppedRecords++;
      return null;
    }
    const next: Member = { ...me, incarnation: needed, suspectedAt: null, lastAdvanceMs: nowMs };
    this.#setSelf(next);
    return { kind: 'refuted', id: me.id, member: { ...next } };
  }

  /**
   * Push-pull reply: our records the sender lacks or holds an older view of (version, state at
   * equal version, or a claim it has not seen). Call after merging the sender's records.
   */
  recordsNewerThan(theirs: readonly MemberRecord[]): MemberRecord[] {
    const seen = new Map<string, MemberRecord>();
    for (const r of theirs) seen.set(r.id, r);
    const out: MemberRecord[] = [];
    for (const m of this.#members.values()) {
      const r = seen.get(m.id);
      if (!r) {
        out.push(toRecord(m));
        continue;
      }
      const cmp = compareVersion(m, r);
      if (cmp > 0 || (cmp === 0 && (STATE_RANK[m.state] > STATE_RANK[r.state] || (m.suspectedAt ?? -1) > (r.suspectedAt ?? -1)))) {
        out.push(toRecord(m));
      }
    }
    return out;
  }

  /**
   * Members whose version has not advanced for nodeTimeoutMs become suspect (with a claim at
   * their incarnation). Returns the new suspects, each with the version to arm its probe for.
   */
  findSuspects(nowMs: number): ProbeTarget[] {
    const out: ProbeTarget[] = [];
    for (const m of this.#members.values()) {
      if (m.id === this.selfId || m.state === 'left' || m.liveness !== 'alive') continue;
      if (nowMs - m.lastAdvanceMs < this.#opts.nodeTimeoutMs) continue;
      const next: Member = { ...m, liveness: 'suspect', livenessSinceMs: nowMs, suspectedAt: maxClaim(m.suspectedAt, m.incarnation) };
      this.#setRow(m.id, next);
      out.push(probeTarget(next));
    }
    return out;
  }

  /** The version a probe of this member must be armed for now (suspect or down members). */
  probeTargetOf(id: string): ProbeTarget | undefined {
    const m = this.#members.get(id);
    return m ? probeTarget(m) : undefined;
  }

  /** The member answered us (directly or through a helper): alive, with a fresh timeout. */
  ackReceived(id: string, nowMs: number): MemberChange | null {
    const m = this.#members.get(id);
    if (!m || id === this.selfId) return null;
    const revived = m.liveness !== 'alive';
    const next: Member = { ...m, liveness: 'alive', lastAdvanceMs: nowMs, livenessSinceMs: revived ? nowMs : m.livenessSinceMs };
    this.#setRow(id, next);
    return revived ? { kind: 'alive', id, member: { ...next } } : null;
  }

  /**
   * The probe armed for `armed` failed and the shell has an independent confirmation. The member
   * goes down only if it is STILL suspect at the armed version: if it advanced or answered since
   * (or the probe's timer fired late after it did), nothing happens.
   */
  probeFailed(armed: ProbeTarget, nowMs: number): MemberChange | null {
    const m = this.#members.get(armed.id);
    if (!m || m.liveness !== 'suspect' || compareVersion(m, armed) !== 0) return null;
    const next: Member = { ...m, liveness: 'down', livenessSinceMs: nowMs };
    this.#setRow(m.id, next);
    return { kind: 'down', id: m.id, member: { ...next } };
  }

  /**
   * We were not running for `pausedMs` (our timers fired that late): credit that time to every
   * member rather than hold our own pause against them.
   */
  shiftTimeouts(pausedMs: number, nowMs: number): void {
    assert(pausedMs >= 0);
    for (const m of this.#members.values()) {
      if (m.id === this.selfId) continue;
      this.#setRow(m.id, { ...m, lastAdvanceMs: Math.min(nowMs, m.lastAdvanceMs + pausedMs) });
    }
  }

  /** The table in a checksummed binary form for the caller to persist. */
  serialize(): Buffer {
    return serializeMembership(this.records());
  }
}

/**
 * The weights a restarted node announces. `self.weight` is the configured (wanted) weight. A
 * member of the current ring keeps the weight the ring last held for it (the restored record's)
 * and moves to the configured one as a streamed change, so a restart with a new `weight` moves
 * slots exactly like CONFIG SET weight. A joining or fresh node is in no current ring: it simply
 * takes the configured weight.
 */
function restartWeights(self: MemberInfo, restored: MemberRecord | undefined): Pick<MemberInfo, 'weight' | 'targetWeight'> {
  if (restored === undefined || self.state === 'joining' || restored.state === 'joining' || restored.state === 'left') return { weight: self.weight };
  return { weight: restored.weight, targetWeight: self.weight };
}

function probeTarget(m: Member): ProbeTarget {
  return { id: m.id, host: m.host, busPort: m.busPort, incarnation: m.incarnation, heartbeat: m.heartbeat };
}

/**
 * Persisted form:  magic "RKMB" | u8 format 1 | 8 bytes sha256(body) prefix | body
 *                  body = u16 count | record*count   (records as gossip_codec.ts encodes them)
 */
const MAGIC = Buffer.from('RKMB', 'ascii');
const FORMAT_VERSION = 1;
const CHECKSUM_BYTES = 8;

const checksum = (body: Buffer): Buffer => createHash('sha256').update(body).digest().subarray(0, CHECKSUM_BYTES);

export function serializeMembership(records: readonly MemberRecord[]): Buffer {
  assert(records.length <= MAX_MEMBERS);
  const w = new ByteWriter(64 + records.length * 64);
  w.u16(records.length);
  for (const r of records) encodeRecord(w, r);
  const body = w.finish();
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION]), checksum(body), body]);
}

/** Reads serialize()'s bytes back; throws ClusterError (ERR_GOSSIP_DECODE) on any damage. */
export function deserializeMembership(bytes: Buffer): MemberRecord[] {
  const head = MAGIC.length + 1 + CHECKSUM_BYTES;
  if (bytes.length < head || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ClusterError('ERR_GOSSIP_DECODE', 'not a membership file (bad magic)');
  }
  if (bytes[MAGIC.length] !== FORMAT_VERSION) throw new ClusterError('ERR_GOSSIP_DECODE', `membership format ${bytes[MAGIC.length]} unknown`);
  const body = bytes.subarray(head);
  if (!checksum(body).equals(bytes.subarray(MAGIC.length + 1, head))) throw new ClusterError('ERR_GOSSIP_DECODE', 'membership checksum mismatch');
  const r = new ByteReader(body);
  const count = r.u16('record count');
  if (count > MAX_MEMBERS) throw new ClusterError('ERR_GOSSIP_DECODE', `${count} records exceed MAX_MEMBERS`);
  const out: MemberRecord[] = [];
  for (let i = 0; i < count; i++) out.push(decodeRecord(r));
  r.end('membership');
  return out;
}
