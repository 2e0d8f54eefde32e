/**
 * CLUSTER INFO / NODES / SLOTS / SHARDS / PREFLIST replies of a node in a cluster, built from
 * the ring and the membership (ClusterView). Pure functions of a snapshot, so they are tested
 * without sockets.
 *
 * Mapping onto Redis Cluster's formats (ARCHITECTURE.md section 2): every slot range with one
 * preference list is one "shard"; its "master" is the first replica of the list that this node
 * believes up, the other replicas follow as "replicas". Any node accepts any key, so a client
 * routed by these replies never gets MOVED.
 */
import { array, bulk, integer, map, type Reply } from '../../resp/reply.js';
import { SLOT_COUNT } from '../../coordinator/slot.js';
import type { Ring } from '../../coordinator/ring.js';
import type { ClusterMemberView } from '../cluster_view.js';

export interface TopologySnapshot {
  readonly selfId: string;
  readonly ring: Ring;
  readonly members: readonly ClusterMemberView[];
  readonly isUp: (id: string) => boolean;
}

export interface SlotShard {
  readonly start: number;
  readonly end: number;
  /** Replicas in reply order: the first up replica first, then the rest in preference order. */
  readonly replicas: readonly string[];
}

/** Slot ranges with their replicas ordered for clients; ranges with no replica are left out. */
export function slotShards(t: TopologySnapshot): SlotShard[] {
  const out: SlotShard[] = [];
  for (const r of t.ring.slotRanges()) {
    if (r.preflist.length === 0) continue;
    const first = r.preflist.find((id) => t.isUp(id)) ?? r.preflist[0]!;
    const replicas = [first, ...r.preflist.filter((id) => id !== first)];
    const last = out[out.length - 1];
    if (last !== undefined && last.end === r.start - 1 && sameList(last.replicas, replicas)) {
      out[out.length - 1] = { ...last, end: r.end };
    } else out.push({ start: r.start, end: r.end, replicas });
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function memberMap(t: TopologySnapshot): Map<string, ClusterMemberView> {
  return new Map(t.members.map((m) => [m.id, m]));
}

export function clusterSlotsReply(t: TopologySnapshot): Reply {
  const byId = memberMap(t);
  return array(
    slotShards(t).map((s) =>
      array([
        integer(s.start),
        integer(s.end),
        ...s.replicas.flatMap((id) => {
          const m = byId.get(id);
          return m === undefined ? [] : [array([bulk(m.host), integer(m.port), bulk(m.id), array([])])];
        }),
      ]),
    ),
  );
}

export function clusterShardsReply(t: TopologySnapshot): Reply {
  const byId = memberMap(t);
  return array(
    slotShards(t).map((s) =>
      map([
        [bulk('slots'), array([integer(s.start), integer(s.end)])],
        [
          bulk('nodes'),
          array(
            s.replicas.flatMap((id, i) => {
              const m = byId.get(id);
              if (m === undefined) return [];
              return [
                map([
                  [bulk('id'), bulk(m.id)],
                  [bulk('port'), integer(m.port)],
                  [bulk('ip'), bulk(m.host)],
                  [bulk('endpoint'), bulk(m.host)],
                  [bulk('role'), bulk(i === 0 ? 'master' : 'replica')],
                  [bulk('replication-offset'), integer(0)],
                  [bulk('health'), bulk(t.isUp(id) ? 'online' : 'failed')],
                ]),
              ];
            }),
          ),
        ],
      ]),
    ),
  );
}

/** Redis's flags column: myself, master, fail?/fail, plus ringkv's joining/leaving. */
function flagsOf(t: TopologySnapshot, m: ClusterMemberView): string {
  const f: string[] = [];
  if (m.id === t.selfId) f.push('myself');
  f.push('master');
  if (m.id !== t.selfId && m.liveness === 'suspect') f.push('fail?');
  if (m.id !== t.selfId && m.liveness === 'down') f.push('fail');
  if (m.state === 'joining' || m.state === 'leaving') f.push(m.state);
  return f.join(',');
}

export function clusterNodesText(t: TopologySnapshot): string {
  // A node's slots as Redis prints them: maximal runs. Two shards next to each other with the same
  // first replica (they differ only in the other replicas) make one run here.
  const owned = new Map<string, Array<{ start: number; end: number }>>();
  for (const s of slotShards(t)) {
    const first = s.replicas[0]!;
    const list = owned.get(first) ?? [];
    const last = list[list.length - 1];
    if (last !== undefined && last.end === s.start - 1) last.end = s.end;
    else list.push({ start: s.start, end: s.end });
    owned.set(first, list);
  }
  let out = '';
  for (const m of t.members) {
    if (m.state === 'left') continue;
    const link = m.id === t.selfId || m.liveness !== 'down' ? 'connected' : 'disconnected';
    const slots = (owned.get(m.id) ?? []).map((r) => (r.start === r.end ? String(r.start) : `${r.start}-${r.end}`));
    out += `${m.id} ${m.host}:${m.port}@${m.busPort} ${flagsOf(t, m)} - 0 0 0 ${link}${slots.length > 0 ? ' ' + slots.join(' ') : ''}\n`;
  }
  return out;
}

export interface QuorumSettingsView {
  readonly n: number;
  readonly r: string;
  readonly w: string;
}

export function clusterInfoTextOf(t: TopologySnapshot, q: QuorumSettingsView): string {
  let slotsOk = 0;
  let slotsPfail = 0;
  let slotsFail = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    const p = t.ring.preflist(s);
    const up = p.filter((id) => t.isUp(id)).length;
    if (p.length === 0 || up === 0) slotsFail++;
    else if (up < p.length) slotsPfail++;
    else slotsOk++;
  }
  const count = (pred: (m: ClusterMemberView) => boolean): number => t.members.filter(pred).length;
  const lines = [
    `cluster_state:${slotsFail === 0 ? 'ok' : 'fail'}`,
    `cluster_slots_assigned:${SLOT_COUNT - (t.ring.members.length === 0 ? SLOT_COUNT : 0)}`,
    `cluster_slots_ok:${slotsOk}`,
    `cluster_slots_pfail:${slotsPfail}`,
    `cluster_slots_fail:${slotsFail}`,
    `cluster_known_nodes:${t.members.length}`,
    `cluster_size:${t.ring.members.length}`,
    'cluster_current_epoch:0',
    'cluster_my_epoch:0',
    'cluster_stats_messages_sent:0',
    'cluster_stats_messages_received:0',
    'total_cluster_links_buffer_limit_exceeded:0',
    `cluster_members_joining:${count((m) => m.state === 'joining')}`,
    `cluster_members_up:${count((m) => m.state === 'up' && (m.id === t.selfId || m.liveness !== 'down'))}`,
    `cluster_members_leaving:${count((m) => m.state === 'leaving')}`,
    `cluster_members_down:${count((m) => m.id !== t.selfId && m.liveness === 'down')}`,
    `cluster_members_suspect:${count((m) => m.id !== t.selfId && m.liveness === 'suspect')}`,
    'cluster_slots_streaming:0',
    `cluster_ring_fingerprint:${t.ring.fingerprint}`,
    `cluster_replication_factor:${q.n}`,
    `cluster_read_quorum:${q.r}`,
    `cluster_write_quorum:${q.w}`,
  ];
  return lines.join('\r\n') + '\r\n';
}

/** What one replica holds for the key: its context token and live value count, or why not known. */
export type ReplicaVersion = { readonly context: string; readonly values: number } | { readonly error: string };

/**
 * CLUSTER PREFLIST key -> [slot, [[id, role, for-id, "ip:port", up|suspect|down, context, values], ...]]:
 * every primary replica of the slot in preference order, then the fallbacks that stand in for
 * the down ones (sloppy quorum); with `versions`, each replica's own copy of the key (its
 * context token and live value count; "unreachable: ..." and -1 when it did not answer).
 */
export function preflistEntries(t: TopologySnapshot, slot: number): Array<{ id: string; role: string; forId: string | undefined }> {
  return [
    ...t.ring.preflist(slot).map((id) => ({ id, role: 'primary', forId: undefined as string | undefined })),
    ...t.ring
      .annotatedPreflist(slot, t.isUp)
      .filter((e) => e.role === 'fallback')
      .map((e) => ({ id: e.id, role: e.role as string, forId: e.forId })),
  ];
}

export function preflistReply(t: TopologySnapshot, slot: number, versions?: ReadonlyMap<string, ReplicaVersion>): Reply {
  const byId = memberMap(t);
  return array([
    integer(slot),
    array(
      preflistEntries(t, slot).map((e) => {
        const m = byId.get(e.id);
        const v = versions?.get(e.id);
        return array([
          bulk(e.id),
          bulk(e.role),
          bulk(e.forId ?? ''),
          bulk(m === undefined ? '?' : `${m.host}:${m.port}`),
          bulk(e.id === t.selfId ? 'up' : m === undefined ? 'unknown' : m.liveness === 'alive' ? 'up' : m.liveness),
          ...(versions === undefined ? [] : v === undefined || 'error' in v ? [bulk(`unreachable: ${v?.error ?? 'not asked'}`), integer(-1)] : [bulk(v.context), integer(v.values)]),
        ]);
      }),
    ),
  ]);
}
