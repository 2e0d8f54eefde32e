/**
 * CLUSTER subcommands for a lone node: a cluster of one that owns all 16384 slots, in Redis
 * 7.0's reply formats, so cluster-aware clients (ioredis Cluster, redis-cli -c) work against it.
 * KEYSLOT MYID COUNTKEYSINSLOT GETKEYSINSLOT INFO SLOTS SHARDS NODES HELP.
 *
 * The node's address is the one the asking client connected to (its `laddr`), so the topology
 * a client reads back always points at an address it can reach. The bus port is shown as
 * port + 10000, Redis's default.
 */
import { array, bulk, error, integer, map, verbatim, bulks, simple, type Reply } from '../../resp/reply.js';
import { keySlot } from '../../coordinator/slot.js';
import { SLOT_COUNT } from '../key_layout.js';
import type { Keyspace } from '../keyspace.js';
import type { CommandContext, CommandSpec } from '../types.js';
import { NOT_INTEGER_ERROR, parseLongLong } from './redis_numbers.js';
import { guarded } from './strings.js';
import { clusterInfoTextOf, clusterNodesText, clusterShardsReply, clusterSlotsReply, preflistEntries, preflistReply, type ReplicaVersion, type TopologySnapshot } from './cluster_topology.js';
import { contextOf, encodeContext, liveValues } from '../../coordinator/object.js';
import { ELASTIC_HELP_LINES, elasticInfoText, elasticSubcommands } from './cluster_elastic.js';
import { UnavailableError } from '../../coordinator/fsm_errors.js';
import { clusterKeyspaceOf } from './cluster_keyspace.js';
import { clusterSlotKeys, type SlotKeysResult } from './cluster_slot_keys.js';

/** How long CLUSTER PREFLIST waits for each replica's copy of the key, ms. */
export const PREFLIST_READ_TIMEOUT_MS = 1_000;
import type { ClusterView } from '../cluster_view.js';

/** Redis's default distance between the client port and the cluster bus port. */
export const CLUSTER_BUS_PORT_OFFSET = 10000;

const arg = (args: readonly Buffer[], i: number): Buffer => args[i] as Buffer;

/** "ip:port" (IPv6 possibly bracketed) -> parts. */
export function splitAddress(addr: string): { ip: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) return { ip: addr, port: 0 };
  let ip = addr.slice(0, i);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ip.startsWith('::ffff:')) ip = ip.slice('::ffff:'.length);
  const port = Number(addr.slice(i + 1));
  return { ip, port: Number.isInteger(port) ? port : 0 };
}

export function clusterInfoText(): string {
  const lines = [
    'cluster_state:ok',
    `cluster_slots_assigned:${SLOT_COUNT}`,
    `cluster_slots_ok:${SLOT_COUNT}`,
    'cluster_slots_pfail:0',
    'cluster_slots_fail:0',
    'cluster_known_nodes:1',
    'cluster_size:1',
    'cluster_current_epoch:0',
    'cluster_my_epoch:0',
    'cluster_stats_messages_sent:0',
    'cluster_stats_messages_received:0',
    'total_cluster_links_buffer_limit_exceeded:0',
    // ringkv additions (ARCHITECTURE.md section 9): members by state, slots still streaming.
    'cluster_members_joining:0',
    'cluster_members_up:1',
    'cluster_members_leaving:0',
    'cluster_members_down:0',
    'cluster_slots_streaming:0',
  ];
  return lines.join('\r\n') + '\r\n';
}

export function clusterNodesLine(nodeId: string, ip: string, port: number): string {
  return `${nodeId} ${ip}:${port}@${port + CLUSTER_BUS_PORT_OFFSET} myself,master - 0 0 0 connected 0-${SLOT_COUNT - 1}\n`;
}

async function keyslot(_ks: Keyspace, args: Buffer[]): Promise<Reply> {
  return integer(keySlot(arg(args, 2)));
}

async function myid(ks: Keyspace): Promise<Reply> {
  return bulk(ks.nodeId);
}

/** In a cluster: the slot's keys merged from its replicas (cluster_slot_keys.ts); else local. */
async function countkeysinslot(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const slot = parseLongLong(arg(args, 2));
  if (slot === undefined) return error(NOT_INTEGER_ERROR);
  if (slot < 0n || slot >= BigInt(SLOT_COUNT)) return error('ERR Invalid slot');
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster === undefined) return integer(await ks.countKeysInSlot(Number(slot)));
  return slotKeysReply(() => clusterSlotKeys(cluster, Number(slot), { keep: 0, limit: Infinity, timeoutMs: requestTimeoutMs(ctx) }), (r) => integer(r.count));
}

async function getkeysinslot(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const slot = parseLongLong(arg(args, 2));
  const count = parseLongLong(arg(args, 3));
  if (slot === undefined || count === undefined) return error(NOT_INTEGER_ERROR);
  if (count < 0n || slot < 0n || slot >= BigInt(SLOT_COUNT)) return error('ERR Invalid slot or number of keys');
  const max = count > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(count);
  const cluster = clusterKeyspaceOf(ctx.server.cluster);
  if (cluster === undefined) return bulks(await ks.keysInSlot(Number(slot), max));
  return slotKeysReply(() => clusterSlotKeys(cluster, Number(slot), { keep: max, limit: max, timeoutMs: requestTimeoutMs(ctx) }), (r) => bulks(r.keys));
}

async function slotKeysReply(run: () => Promise<SlotKeysResult>, reply: (r: SlotKeysResult) => Reply): Promise<Reply> {
  try {
    return reply(await run());
  } catch (err) {
    if (err instanceof UnavailableError) return error(err.message);
    throw err;
  }
}

/** The budget of each replica call (config request-timeout-ms), as the other cluster-wide commands. */
function requestTimeoutMs(ctx: CommandContext): number {
  return ctx.server.config.getNumber('request-timeout-ms');
}

function snapshot(c: ClusterView): TopologySnapshot {
  return { selfId: c.selfId, ring: c.ring(), members: c.members(), isUp: (id) => c.isUp(id) };
}

async function info(_ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const c = ctx.server.cluster;
  if (c === undefined) return verbatim(clusterInfoText());
  const cfg = ctx.server.config;
  return verbatim(
    clusterInfoTextOf(snapshot(c), { n: cfg.getNumber('replication-factor'), r: cfg.getString('read-quorum'), w: cfg.getString('write-quorum') }) + elasticInfoText(c),
  );
}

async function nodes(ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  if (ctx.server.cluster !== undefined) return verbatim(clusterNodesText(snapshot(ctx.server.cluster)));
  const { ip, port } = splitAddress(ctx.client.laddr);
  return verbatim(clusterNodesLine(ks.nodeId, ip, port));
}

async function slots(ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  if (ctx.server.cluster !== undefined) return clusterSlotsReply(snapshot(ctx.server.cluster));
  const { ip, port } = splitAddress(ctx.client.laddr);
  return array([array([integer(0), integer(SLOT_COUNT - 1), array([bulk(ip), integer(port), bulk(ks.nodeId), array([])])])]);
}

async function shards(ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  if (ctx.server.cluster !== undefined) return clusterShardsReply(snapshot(ctx.server.cluster));
  const { ip, port } = splitAddress(ctx.client.laddr);
  const node = map([
    [bulk('id'), bulk(ks.nodeId)],
    [bulk('port'), integer(port)],
    [bulk('ip'), bulk(ip)],
    [bulk('endpoint'), bulk(ip)],
    [bulk('role'), bulk('master')],
    [bulk('replication-offset'), integer(0)],
    [bulk('health'), bulk('online')],
  ]);
  return array([
    map([
      [bulk('slots'), array([integer(0), integer(SLOT_COUNT - 1)])],
      [bulk('nodes'), array([node])],
    ]),
  ]);
}

/** CLUSTER MEET ip port [cluster-bus-port]: asks the node at that bus address to join us. */
async function meet(_ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const c = ctx.server.cluster;
  if (c === undefined) return error('ERR This instance has cluster support disabled (start it with seeds to join a cluster)');
  if (args.length > 5) return error("ERR wrong number of arguments for 'cluster|meet' command");
  const host = arg(args, 2).toString('utf8');
  const port = parseLongLong(arg(args, 3));
  const busArg = args.length === 5 ? parseLongLong(arg(args, 4)) : undefined;
  if (port === undefined || port < 1n || port > 65535n) return error(`ERR Invalid node address specified: ${host}:${arg(args, 3).toString('utf8')}`);
  const busPort = busArg === undefined ? Number(port) + CLUSTER_BUS_PORT_OFFSET : Number(busArg);
  if ((args.length === 5 && busArg === undefined) || busPort < 1 || busPort > 65535) return error('ERR Invalid cluster bus port');
  try {
    await c.meet(host, busPort);
    return simple('OK');
  } catch (err) {
    return error(`ERR cannot meet ${host}:${busPort}: ${(err as Error).message}`);
  }
}

/** CLUSTER PREFLIST key: where the key lives (slot, primaries, fallbacks, their liveness). */
async function preflist(ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const key = arg(args, 2);
  ks.checkKey(key);
  const slot = keySlot(key);
  const c = ctx.server.cluster;
  if (c !== undefined) {
    const snap = snapshot(c);
    const now = ctx.server.now();
    const versions = new Map<string, ReplicaVersion>();
    await Promise.all(
      preflistEntries(snap, slot).map(async (e) => {
        try {
          const obj = await c.readReplica(e.id, key, PREFLIST_READ_TIMEOUT_MS);
          versions.set(e.id, { context: encodeContext(contextOf(obj)), values: liveValues(obj, now).length });
        } catch (err) {
          versions.set(e.id, { error: (err as Error).message });
        }
      }),
    );
    // ringkv addition: a third element, the pending hints for the key ([holder, target] pairs).
    const hints = (await c.pendingHints?.(key, PREFLIST_READ_TIMEOUT_MS)) ?? [];
    const reply = preflistReply(snap, slot, versions);
    return reply.kind === 'array' ? array([...reply.items, array(hints.map(([holder, target]) => array([bulk(holder), bulk(target)])))]) : reply;
  }
  const { ip, port } = splitAddress(ctx.client.laddr);
  return array([integer(slot), array([array([bulk(ks.nodeId), bulk('primary'), bulk(''), bulk(`${ip}:${port}`), bulk('up')])])]);
}

/** CLUSTER REPAIR: one anti-entropy round with every replica peer now; replies when done. */
async function repair(_ks: Keyspace, _args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const ae = ctx.server.cluster?.antiEntropy;
  if (ae === undefined) return error('ERR This instance has cluster support disabled (start it with seeds to join a cluster)');
  const s = await ae.repair();
  return bulk(Object.entries(s).map(([k, v]) => `${k}=${v}`).join(' '));
}

/** CLUSTER DIGEST <start-slot> <end-slot>: this node's Merkle digest of each slot in the range. */
async function digest(_ks: Keyspace, args: Buffer[], ctx: CommandContext): Promise<Reply> {
  const ae = ctx.server.cluster?.antiEntropy;
  if (ae === undefined) return error('ERR This instance has cluster support disabled (start it with seeds to join a cluster)');
  const first = parseLongLong(arg(args, 2));
  const last = parseLongLong(arg(args, 3));
  if (first === undefined || last === undefined) return error(NOT_INTEGER_ERROR);
  if (first < 0n || last >= BigInt(SLOT_COUNT) || first > last) return error('ERR Invalid slot range');
  return bulks((await ae.digest(Number(first), Number(last))).map((d) => Buffer.from(d)));
}

const HELP_LINES = [
  'CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'COUNTKEYSINSLOT <slot>',
  '    Return the number of keys in <slot>.',
  'GETKEYSINSLOT <slot> <count>',
  '    Return key names stored in a slot (in a cluster: by its replicas, merged).',
  'INFO',
  '    Return information about the cluster.',
  'KEYSLOT <key>',
  '    Return the hash slot for <key>.',
  'MEET <ip> <port> [<bus-port>]',
  '    Connect nodes into a working cluster (bus port default: port + 10000).',
  'MYID',
  '    Return the node id.',
  'REPAIR',
    '    Run an anti-entropy round with every replica peer now; reply with what it did.',
  'DIGEST <start-slot> <end-slot>',
  '    Return this node\'s Merkle digest of each slot in the range ("" for an empty slot).',
  'PREFLIST <key>',
  '    Return the slot of <key>, its replicas (primary or fallback), their addresses, liveness and versions,',
  '    and the pending hints for <key> as [holder, target] pairs.',
  'NODES',
  '    Return cluster configuration seen by node. Output format:',
  '    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...',
  'SHARDS',
  '    Return information about slot range mappings and the nodes associated with them.',
  'SLOTS',
  '    Return information about slots range mappings. Each range is made of:',
  '    start, end, master and replicas IP addresses, ports and ids',
  ...ELASTIC_HELP_LINES,
  'HELP',
  '    Print this help.',
];

async function help(): Promise<Reply> {
  return array(HELP_LINES.map((l) => simple(l)));
}

function sub(
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  summary: string,
  handler: (ks: Keyspace, args: Buffer[], ctx: CommandContext) => Promise<Reply>,
): CommandSpec {
  return { name: `cluster|${name}`, arity, flags, firstKey: 0, lastKey: 0, keyStep: 0, summary, group: 'cluster', since: '3.0.0', handler: guarded(handler) };
}

export const clusterCommands: readonly CommandSpec[] = [
  {
    name: 'cluster',
    arity: -2,
    flags: [],
    firstKey: 0,
    lastKey: 0,
    keyStep: 0,
    summary: 'A container for Redis Cluster commands.',
    group: 'cluster',
    since: '3.0.0',
    subcommands: [
      sub('keyslot', 3, ['stale'], 'Returns the hash slot for a key.', keyslot),
      sub('myid', 2, ['stale'], 'Returns the ID of a node.', myid),
      sub('countkeysinslot', 3, ['stale'], 'Returns the number of keys in a hash slot.', countkeysinslot),
      sub('getkeysinslot', 4, ['stale'], 'Returns the key names in a hash slot.', getkeysinslot),
      sub('info', 2, ['stale'], 'Returns information about the state of a node.', info),
      sub('nodes', 2, ['stale'], 'Returns the cluster configuration for a node.', nodes),
      sub('slots', 2, ['stale'], 'Returns the mapping of cluster slots to nodes.', slots),
      sub('shards', 2, ['stale'], 'Returns the mapping of cluster slots to shards.', shards),
      sub('meet', -4, ['admin', 'stale'], 'Forces a node to handshake with another node.', meet),
      sub('preflist', 3, ['stale'], 'Returns where a key lives: its slot, primary replicas and fallbacks, their versions, and pending hints.', preflist),
      ...elasticSubcommands(sub),
      sub('repair', 2, ['admin', 'stale'], 'Runs an anti-entropy round with the other replicas now.', repair),
      sub('digest', 4, ['stale'], 'Returns the Merkle digest of each slot in a range.', digest),
      sub('help', 2, ['stale'], 'Returns helpful text about the different subcommands.', help),
    ],
  },
];
