/**
 * When a joining node may start scanning (issue 6): only once every live coordinator routes the
 * joiner's writes to it. Replaces a settle delay (a guess at how long gossip takes).
 *
 *   joiner J                                    each up/leaving member M that is not down
 *   STREAM_VIEW (empty) ───────────────────────▶ M's write path (StreamManager.pendingReplicas,
 *                                                computed from M's live rings) sends J the writes
 *                      ◀─────────────────────── u8 1: J is in M's target ring (pending replica or
 *                                                     owner), 0: M has not heard of J joining yet
 *   J scans only when every such M answered 1 (once M answered 1 it stays counted: M only drops J
 *   from its target ring if J leaves or is forgotten, and then J's join is over anyway).
 *
 * Why this is sound: a write to a slot J gains is coordinated by a current replica of the slot
 * (up or leaving: joining members never coordinate). If that coordinator answered 1, every write
 * it coordinates from then on reaches J (or a durable hint for J, put_fsm pendingMissed), and
 * every write it coordinated before is already on the current replicas J scans afterwards.
 * Not covered: a member that is DOWN when J asks and comes back with a table that does not know J
 * yet; until gossip tells it (a round or two), writes it coordinates reach only the current
 * replicas, which keep the slot until J is up plus the drop grace, and anti-entropy repairs J.
 *
 * Wire: STREAM_VIEW request: empty (the asker is the bus peer's id); response: u8 0|1.
 */
import { ByteReader, ByteWriter } from './wire.js';

export const JoinGateMessageType = {
  STREAM_VIEW: 0x5d,
} as const;

/** Deadline of one STREAM_VIEW, ms (the answer is computed locally, no I/O). */
export const STREAM_VIEW_TIMEOUT_MS = 2_000;
/** Least time between two rounds of STREAM_VIEW asks from a joiner, ms. */
export const STREAM_VIEW_EVERY_MS = 200;

export function encodeStreamViewReply(routesToAsker: boolean): Buffer {
  const w = new ByteWriter(1);
  w.u8(routesToAsker ? 1 : 0);
  return w.finish();
}

export function decodeStreamViewReply(payload: Buffer): boolean {
  const r = new ByteReader(payload);
  const v = r.u8('stream view');
  r.end('stream view');
  return v === 1;
}

/** What the joiner knows of one member, for the gate. */
export interface GateMember {
  readonly id: string;
  readonly state: 'joining' | 'up' | 'leaving' | 'left';
  readonly down: boolean;
}

/**
 * The members that must still answer 1 before `self` may scan: live coordinators (up or leaving,
 * not down, not self) not yet in `confirmed`. PURE. The gate is open when this is empty and the
 * joiner knows at least one other member (a node alone has heard of no cluster yet).
 */
export function membersToAsk(members: readonly GateMember[], self: string, confirmed: ReadonlySet<string>): string[] {
  return members.filter((m) => m.id !== self && !m.down && (m.state === 'up' || m.state === 'leaving') && !confirmed.has(m.id)).map((m) => m.id);
}

export function gateOpen(members: readonly GateMember[], self: string, confirmed: ReadonlySet<string>): boolean {
  const others = members.filter((m) => m.id !== self && m.state !== 'left');
  return others.length > 0 && membersToAsk(members, self, confirmed).length === 0 && members.some((m) => m.id !== self && confirmed.has(m.id));
}
