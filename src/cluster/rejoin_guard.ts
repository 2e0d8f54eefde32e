/**
 * A node removed from the cluster must not come back with its old data dir (issue 6).
 *
 *   removed by CLUSTER LEAVE (it streamed its slots out, then stopped): it knows, its progress
 *     file says `left` (stream_progress.ts); it refuses to start.
 *   removed by CLUSTER FORGET while it was down: only the others know. Before its first gossip
 *     round (cluster_node.ts beforeGossip) it asks the members of its persisted table what they
 *     hold about it (a GOSSIP_SYNC carrying no records: the peer merges nothing and answers with
 *     its whole table); if any says `left`, it refuses to start.
 *
 * Why refuse rather than re-enter: its slots were re-replicated to others; coming back `up` (the
 * gossip rule would let its higher incarnation refute the `left` record) would move slots back to
 * a node holding stale data, and tombstones it missed may have been collected by then. The safe
 * way back is as a new node: wipe the data dir (a fresh dir gets a new node id) and start it with
 * `seeds`; it then joins and streams like any new node.
 */
import { decodeSync, encodeSync } from './gossip_codec.js';
import { MessageType } from './message_types.js';
import type { ClusterBus } from './bus.js';
import type { MembershipTable, MemberRecord } from './membership.js';
import type { LogFn } from '../server/logger.js';

/** Deadline of the startup question to each known peer, ms (unreachable peers are skipped). */
export const REJOIN_CHECK_TIMEOUT_MS = 1_500;

export class RemovedNodeError extends Error {
  readonly code = 'ERR_REMOVED_NODE';
}

/** The operator-facing text: what happened and the two ways forward. */
export function removedMessage(who: string, dir: string, how: string): string {
  return (
    `${who} was removed from the cluster (${how}); its data dir ${dir} holds stale data and it will not rejoin with it. ` +
    `To bring this machine back, stop it, wipe the data dir (or point --dir at an empty one) and start it again with seeds: it joins as a new node with a new id.`
  );
}

/** PURE: the peer (if any) whose record of `selfId` says it is gone from the ring. */
export function removedBy(selfId: string, answers: ReadonlyArray<{ readonly peer: string; readonly records: readonly MemberRecord[] }>): string | undefined {
  for (const a of answers) if (a.records.some((r) => r.id === selfId && r.state === 'left')) return a.peer;
  return undefined;
}

/**
 * Asks every member of the restored table (not self, not left) for its table; throws
 * RemovedNodeError when one of them holds this node as `left`. A fresh node (alone in its table)
 * has nothing to ask. Peers that do not answer in REJOIN_CHECK_TIMEOUT_MS are skipped (a whole
 * cluster restarting at once).
 */
export async function checkNotRemoved(bus: ClusterBus, table: MembershipTable, dir: string, log: LogFn): Promise<void> {
  const peers = table.members().filter((m) => m.id !== table.selfId && m.state !== 'left');
  if (peers.length === 0) return;
  const ask = encodeSync({ senderId: table.selfId, records: [] });
  const answers = await Promise.all(
    peers.map(async (p) => {
      try {
        const reply = decodeSync(await bus.request({ host: p.host, port: p.busPort, id: p.id }, MessageType.GOSSIP_SYNC, ask, REJOIN_CHECK_TIMEOUT_MS));
        return { peer: p.id, records: reply.records };
      } catch (err) {
        log('debug', `cluster: rejoin check: ${p.id} did not answer (${(err as Error).message})`);
        return { peer: p.id, records: [] };
      }
    }),
  );
  const by = removedBy(table.selfId, answers);
  if (by !== undefined) throw new RemovedNodeError(removedMessage(`this node (${table.selfId})`, dir, `node ${by} holds it as left: CLUSTER FORGET or LEAVE`));
}
