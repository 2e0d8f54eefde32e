/**
 * When a node that gains slots (a joiner, or the new owner in a leave or a weight change) may
 * start scanning them (issue 6): only once every live coordinator's write path uses the same
 * target ring as the gainer, so it sends the gainer (a pending replica) every write of those
 * slots. Replaces a settle delay (a guess at how long gossip takes).
 *
 *   gainer G                                    each up/leaving member M that is not down
 *   STREAM_VIEW (empty) ───────────────────────▶ M's write path (StreamManager.pendingReplicas,
 *                                                computed from M's live rings)
 *                      ◀─────────────────────── str8 fingerprint of M's live target ring
 *   G scans only when every such M reported the fingerprint of G's own target ring. A changed
 *   target (another join, a leave) needs new reports; members are re-asked every
 *   STREAM_VIEW_EVERY_MS while one differs.
 *
 * Why this is sound: a write to a slot G gains is coordinated by a current replica of the slot
 * (up or leaving: joining members never coordinate). Once that coordinator's target ring is G's,
 * every write it coordinates reaches G (or a durable hint for G, put_fsm pendingMissed), and
 * every write it coordinated before is already on the current replicas G scans afterwards.
 * Not covered: a member that is DOWN when G asks and comes back with a table that does not know
 * the change yet; until gossip tells it (a round or two), writes it coordinates reach only the
 * current replicas, which keep the slot until the change is done plus the drop grace, and
 * anti-entropy repairs G.
 *
 * Wire: STREAM_VIEW request: empty; response: u8 length | fingerprint (ASCII, at most
 * MAX_FINGERPRINT_BYTES).
 */
import { MAX_FINGERPRINT_BYTES } from './stream_codec.js';
import { ByteReader, ByteWriter } from './wire.js';

export const JoinGateMessageType = {
  STREAM_VIEW: 0x5d,
} as const;

/** Deadline of one STREAM_VIEW, ms (the answer is computed locally, no I/O). */
export const STREAM_VIEW_TIMEOUT_MS = 2_000;
/** Least time between two rounds of STREAM_VIEW asks from a joiner, ms. */
export const STREAM_VIEW_EVERY_MS = 200;

export function encodeStreamViewReply(targetFingerprint: string): Buffer {
  return new ByteWriter(1 + MAX_FINGERPRINT_BYTES).str8(targetFingerprint, MAX_FINGERPRINT_BYTES).finish();
}

export function decodeStreamViewReply(payload: Buffer): string {
  const r = new ByteReader(payload);
  const fp = r.str8(MAX_FINGERPRINT_BYTES, 'stream view fingerprint');
  r.end('stream view');
  return fp;
}

/** What the joiner knows of one member, for the gate. */
export interface GateMember {
  readonly id: string;
  readonly state: 'joining' | 'up' | 'leaving' | 'left';
  readonly down: boolean;
}

/**
 * The members that must still report `fingerprint` (the gainer's target ring) before `self` may
 * scan: live coordinators (up or leaving, not down, not self) whose last report differs. PURE.
 */
export function membersToAsk(members: readonly GateMember[], self: string, reports: ReadonlyMap<string, string>, fingerprint: string): string[] {
  return members.filter((m) => m.id !== self && !m.down && (m.state === 'up' || m.state === 'leaving') && reports.get(m.id) !== fingerprint).map((m) => m.id);
}

/**
 * Open when no live coordinator is left to ask and at least one other member reported the same
 * target (a node alone has heard of no cluster yet; one whose coordinators are all down has
 * nobody to stream from).
 */
export function gateOpen(members: readonly GateMember[], self: string, reports: ReadonlyMap<string, string>, fingerprint: string): boolean {
  return membersToAsk(members, self, reports, fingerprint).length === 0 && members.some((m) => m.id !== self && !m.down && reports.get(m.id) === fingerprint);
}
