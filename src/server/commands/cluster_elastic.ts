/**
 * CLUSTER subcommands of elastic membership (issue 6), hooked into cluster.ts:
 *   LEAVE          decommission the node it is sent to: its slots stream to their new owners,
 *                  then it leaves the ring and stops (progress in CLUSTER INFO stream_*)
 *   FORGET <id>    remove a dead node for good; the survivors re-replicate its slots
 *   HOLDERS <key>  every member's own copy of the key: [id, live values | -1 error] per member
 *                  that is not `left` (where the key physically lives, strays included)
 * and the `stream_*` lines CLUSTER INFO appends.
 */
import { liveValues } from '../../coordinator/object.js';
import { array, bulk, error, integer, simple, type Reply } from '../../resp/reply.js';
import type { ClusterView } from '../cluster_view.js';
import type { Keyspace } from '../keyspace.js';
import type { CommandContext, CommandSpec } from '../types.js';

/** How long CLUSTER HOLDERS waits for each member's copy, ms. */
export const HOLDERS_READ_TIMEOUT_MS = 1_000;

const NOT_CLUSTER = 'ERR This instance has cluster support disabled (start it with seeds to join a cluster)';

type Sub = (
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  summary: string,
  handler: (ks: Keyspace, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
) => CommandSpec;

function elasticOf(ctx: CommandContext): { cluster: ClusterView; stream: NonNullable<ClusterView['stream']> } | undefined {
  const cluster = ctx.server.cluster;
  const stream = cluster?.stream;
  return cluster === undefined || stream === undefined ? undefined : { cluster, stream };
}

async function leave(_ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const e = elasticOf(ctx);
  if (e === undefined) return error(NOT_CLUSTER);
  try {
    e.stream.leave();
  } catch (err) {
    return error((err as Error).message);
  }
  return simple('OK');
}

async function forget(_ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const e = elasticOf(ctx);
  if (e === undefined) return error(NOT_CLUSTER);
  try {
    e.stream.forget((args[2] as Buffer).toString('utf8'));
  } catch (err) {
    return error((err as Error).message);
  }
  return simple('OK');
}

async function holders(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const c = ctx.server.cluster;
  if (c === undefined) return error(NOT_CLUSTER);
  const key = args[2] as Buffer;
  ks.checkKey(key);
  const now = ctx.server.now();
  const members = c.members().filter((m) => m.state !== 'left');
  const rows = await Promise.all(
    members.map(async (m) => {
      try {
        const obj = await c.readReplica(m.id, key, HOLDERS_READ_TIMEOUT_MS);
        return array([bulk(m.id), integer(liveValues(obj, now).length)]);
      } catch {
        return array([bulk(m.id), integer(-1)]);
      }
    }),
  );
  return array(rows);
}

/** CLUSTER INFO's additions: `stream_*` progress lines, CRLF-terminated ("" without a cluster). */
export function elasticInfoText(c: ClusterView): string {
  const lines = c.stream?.infoLines() ?? [];
  return lines.map((l) => `${l}\r\n`).join('');
}

export const ELASTIC_HELP_LINES: readonly string[] = [
  'LEAVE',
  '    Decommission this node: stream its slots to their new owners, leave the ring, stop.',
  'FORGET <node-id>',
  '    Remove a dead node for good; its slots are re-replicated from the survivors.',
  'HOLDERS <key>',
  '    Return every member\'s own copy of <key>: [id, live values (-1: no answer)].',
];

export function elasticSubcommands(sub: Sub): CommandSpec[] {
  return [
    sub('leave', 2, ['admin'], 'Decommissions this node: streams its slots out, then leaves the ring.', leave),
    sub('forget', 3, ['admin', 'stale'], 'Removes a dead node from the cluster for good.', forget),
    sub('holders', 3, ['stale'], 'Returns which members hold a copy of a key.', holders),
  ];
}
