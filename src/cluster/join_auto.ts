/**
 * `join-streaming auto` (the default, issue 6): does a fresh node stream the slots it takes over,
 * or own them at once? It streams when the cluster it joins already holds data; a brand-new
 * cluster of empty nodes started together (`ringkv cluster`, npm start, test helpers) forms
 * without streaming, exactly as before.
 *
 * The decision is taken BEFORE the node announces itself (before its first gossip round), so no
 * member ever sees it in a state it then leaves: a node of a new cluster enters `up` directly, a
 * node joining a cluster with data enters `joining` and the StreamManager streams as for
 * `join-streaming yes`.
 *
 *   fresh node (no membership file, no join in progress), auto:
 *     every seed is this node itself            -> up       (a one-node cluster)
 *     a seed holds this node's id as up/leaving -> up       (a member restarted before it wrote
 *                                                            its membership file)
 *     ask every other seed for its table with an EMPTY gossip SYNC (it learns nothing of us and
 *     answers with all its records), PREFLIGHT_TIMEOUT_MS per seed, all at once:
 *       no seed answered                        -> up       (the first node of a new cluster;
 *                                                            also a node whose seeds are all down)
 *       no member owns slots (up or leaving)    -> up       (a new cluster forming)
 *       ask each owner for one stored key (SCAN_RANGE count 1 over all slots, live or tombstone;
 *       an owner that does not answer is asked again, PREFLIGHT_PROBE_ATTEMPTS tries in all):
 *         some owner holds a key, or one never answered  -> joining (stream)
 *         every owner is empty                           -> up
 *
 * Why it is safe: a node comes up without streaming only when no owner it could reach holds
 * data. The window left: a key written to an owner after it answered "empty" and before the
 * new node's first gossip reaches the coordinators lands on the old placement only; read repair
 * and anti-entropy copy it (the same window as the settle delay of any join). A seed list that
 * reaches none of the cluster makes the node start a cluster of its own, as with `no`.
 */
import type { RangeScanRequest } from '../server/commands/cluster_keyspace.js';
import { slotStartCursor } from '../server/commands/cluster_scan_plan.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import { SLOT_COUNT } from '../coordinator/slot.js';
import { ClusterBus } from './bus.js';
import type { GossipPeer } from './gossip.js';
import { decodeSync, encodeSync } from './gossip_codec.js';
import type { MemberInfo, MemberRecord } from './membership.js';
import { MessageType } from './message_types.js';
import { decodeScanRangeResult, encodeScanRange } from './scan_range_codec.js';

/** Deadline of the empty SYNC to one seed, and of one owner's data probe, ms. */
export const PREFLIGHT_TIMEOUT_MS = 1_500;
/** Tries of an owner's data probe before its silence counts as "holds data". */
export const PREFLIGHT_PROBE_ATTEMPTS = 3;

export type JoinStreamingMode = 'yes' | 'no' | 'auto';

/** The configured `join-streaming` (schema: an enum of these three). */
export function joinStreamingMode(config: ConfigView): JoinStreamingMode {
  const v = config.getString('join-streaming');
  return v === 'yes' || v === 'no' ? v : 'auto';
}

/** What the preflight learnt. */
export interface PreflightView {
  /** Every seed names this node (or there are none). */
  readonly onlySelfSeeds: boolean;
  /** Some seed answered the empty SYNC. */
  readonly seedAnswered: boolean;
  /** Members that own slots (up or leaving), other than this node: holds data? (undefined: no answer). */
  readonly owners: ReadonlyArray<boolean | undefined>;
  /**
   * Some seed already holds THIS node's id as a slot owner (up or leaving): a member restarted
   * before it ever wrote its membership file (e.g. kill -9 soon after its first start), not a
   * new node. It re-enters as the member it was; streaming would make it `joining` and drop it
   * from the current ring its peers' writes and hints use.
   */
  readonly knownOwner?: boolean;
}

/** The decision (pure; see the header). */
export function decideAutoJoin(v: PreflightView): 'up' | 'joining' {
  if (v.onlySelfSeeds || !v.seedAnswered || v.knownOwner === true || v.owners.length === 0) return 'up';
  return v.owners.every((d) => d === false) ? 'up' : 'joining';
}

/** True when every seed names this node (host and bus port), or there are none. */
export function onlySelfSeeds(seeds: readonly GossipPeer[], self: Pick<MemberInfo, 'host' | 'busPort'>): boolean {
  return seeds.every((s) => isSelf(s, self));
}

function isSelf(s: GossipPeer, self: Pick<MemberInfo, 'host' | 'busPort'>): boolean {
  return s.busPort === self.busPort && (s.host === self.host || (isLoopback(s.host) && isLoopback(self.host)));
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The request that asks a member whether it stores any key at all. */
export function anyKeyProbe(): RangeScanRequest {
  return { cursor: slotStartCursor(0), lastSlot: SLOT_COUNT - 1, count: 1, pattern: undefined, matchNone: false, countOnly: false };
}

export interface PreflightOptions {
  readonly nodeId: string;
  /** This node's bus address as peers know it (seeds naming it are skipped). */
  readonly self: Pick<MemberInfo, 'host' | 'busPort'>;
  /** Address to bind the temporary bus's connections from. */
  readonly bindHost: string;
  readonly secret?: string;
  readonly seeds: readonly GossipPeer[];
  readonly log: LogFn;
}

/**
 * Runs the preflight on a temporary bus (it dials out only; closed before returning) and
 * returns the state a fresh node enters the ring in.
 */
export async function preflightAutoJoin(o: PreflightOptions): Promise<'up' | 'joining'> {
  const seeds = o.seeds.filter((s) => !isSelf(s, o.self));
  if (seeds.length === 0) {
    o.log('info', 'join-streaming auto: every seed is this node; up (a one-node cluster)');
    return 'up';
  }
  const bus = new ClusterBus({ nodeId: o.nodeId, host: o.bindHost, port: 0, ...(o.secret === undefined ? {} : { secret: o.secret }), log: o.log });
  try {
    const empty = encodeSync({ senderId: o.nodeId, records: [] });
    const tables = await Promise.all(
      seeds.map((s) =>
        bus.request({ host: s.host, port: s.busPort }, MessageType.GOSSIP_SYNC, empty, PREFLIGHT_TIMEOUT_MS).then(
          (reply) => decodeSync(reply).records,
          () => undefined,
        ),
      ),
    );
    const owners = new Map<string, MemberRecord>();
    const knownOwner = tables.some((records) => (records ?? []).some((r) => r.id === o.nodeId && (r.state === 'up' || r.state === 'leaving')));
    for (const records of tables) for (const r of records ?? []) if (r.id !== o.nodeId && (r.state === 'up' || r.state === 'leaving')) owners.set(r.id, r);
    const probe = (m: MemberRecord): Promise<boolean | undefined> =>
      bus.request({ host: m.host, port: m.busPort, id: m.id }, MessageType.SCAN_RANGE, encodeScanRange(anyKeyProbe()), PREFLIGHT_TIMEOUT_MS).then(
        (reply) => {
          const r = decodeScanRangeResult(reply);
          return r.examined > 0 || r.keys.length > 0;
        },
        () => undefined,
      );
    const members = [...owners.values()];
    const holds = await Promise.all(members.map(probe));
    // An owner that did not answer counts as holding data (stream, to be safe); ask it again
    // first, so that one slow answer on a loaded machine does not make a node of a new, empty
    // cluster stream (seen in cluster_3node at load 20).
    for (let attempt = 1; attempt < PREFLIGHT_PROBE_ATTEMPTS && holds.includes(undefined); attempt++) {
      await Promise.all(members.map(async (m, i) => {
        if (holds[i] === undefined) holds[i] = await probe(m);
      }));
    }
    const view: PreflightView = { onlySelfSeeds: false, seedAnswered: tables.some((x) => x !== undefined), owners: holds, knownOwner };
    const state = decideAutoJoin(view);
    const why = !view.seedAnswered
      ? 'no seed answered (the first node of a new cluster)'
      : knownOwner
        ? 'the cluster already knows this node id as a member (a restart before its membership file was written)'
        : owners.size === 0
        ? 'no member owns slots yet (a new cluster)'
        : state === 'up'
          ? `the ${owners.size} owning members hold no data`
          : `the cluster holds data (${holds.filter((h) => h === true).length} of ${owners.size} owners hold keys, ${holds.filter((h) => h === undefined).length} did not answer)`;
    o.log('info', `join-streaming auto: ${why}; ${state === 'up' ? 'up without streaming' : 'joining with streaming'}`);
    return state;
  } finally {
    await bus.close();
  }
}
