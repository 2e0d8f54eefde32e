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
import type { MemberRecord } from './membership.js';
import type { LogFn } from '../server/logger.js';

/** Deadline of one startup question to a known peer, ms. */
export const REJOIN_CHECK_TIMEOUT_MS = 1_500;
/** How long a start keeps asking peers that time out, while none has answered, ms. */
export const REJOIN_CHECK_DEADLINE_MS = 6_000;

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
 * has nothing to ask. A peer that is down or not serving gossip yet (connection refused, no
 * handler: a whole cluster restarting at once) fails fast and is skipped. A peer that times out
 * is alive but slow (a loaded machine): it is asked again, every REJOIN_CHECK_TIMEOUT_MS, until
 * one peer has answered or REJOIN_CHECK_DEADLINE_MS has passed. (Skipping timed-out peers after
 * one try let a forgotten node start with its old data on a loaded machine: a CI failure of
 * elastic_down_join.)
 */
export async function checkNotRemoved(
  bus: Pick<ClusterBus, 'request'>,
  table: { readonly selfId: string; members(): readonly MemberRecord[] },
  dir: string,
  log: LogFn,
  deadlineMs = REJOIN_CHECK_DEADLINE_MS,
): Promise<void> {
  let ask = table.members().filter((m) => m.id !== table.selfId && m.state !== 'left');
  if (ask.length === 0) return;
  const payload = encodeSync({ senderId: table.selfId, records: [] });
  const answers: Array<{ peer: string; records: readonly MemberRecord[] }> = [];
  const until = Date.now() + deadlineMs;
  for (;;) {
    const slow: typeof ask = [];
    await Promise.all(
      ask.map(async (p) => {
        try {
          const reply = decodeSync(await bus.request({ host: p.host, port: p.busPort, id: p.id }, MessageType.GOSSIP_SYNC, payload, REJOIN_CHECK_TIMEOUT_MS));
          answers.push({ peer: p.id, records: reply.records });
        } catch (err) {
          if ((err as { code?: unknown }).code === 'ERR_BUS_TIMEOUT') slow.push(p);
          log('debug', `cluster: rejoin check: ${p.id} did not answer (${(err as Error).message})`);
        }
      }),
    );
    const by = removedBy(table.selfId, answers);
    if (by !== undefined) throw new RemovedNodeError(removedMessage(`this node (${table.selfId})`, dir, `node ${by} holds it as left: CLUSTER FORGET or LEAVE`));
    if (answers.length > 0 || slow.length === 0) return;
    if (Date.now() >= until) {
      log('warn', `cluster: rejoin check: no member answered in ${deadlineMs} ms (${slow.map((p) => p.id).join(', ')} timed out); starting without knowing whether this node was removed`);
      return;
    }
    ask = slow;
  }
}
