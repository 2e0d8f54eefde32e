/**
 * Every configuration key ringkv understands, as data: its type, default, whether CONFIG SET may
 * change it at run time, a one-line doc and its validation. conf/ringkv.conf documents the same
 * keys for operators; a test checks the two agree.
 *
 * Values are held in a canonical form: numbers as numbers (sizes in bytes, times in the unit the
 * key's name says), booleans as booleans, everything else as strings. Size keys (`-bytes`,
 * `-len`, `-limit`) also accept Redis's units: 1k = 1000, 1kb = 1024, 1m, 1mb, 1g, 1gb.
 */

import { MAX_CLOCK_ENTRIES, MAX_SIBLINGS_LIMIT } from '../coordinator/limits.js';
import { parseQuorumSpec } from '../coordinator/quorum.js';
import { MAX_REPLICATION, MAX_VNODES } from '../coordinator/ring.js';
import { parseSeeds } from '../cluster/seeds.js';
import { MAX_HINT_BATCH_KEYS } from '../cluster/handoff_codec.js';

export type ConfigType =
  | { readonly kind: 'int'; readonly min: number; readonly max: number }
  | { readonly kind: 'bytes'; readonly min: number; readonly max: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'string' };

export type ConfigValue = string | number | boolean;

export interface ConfigKey {
  readonly name: string;
  readonly type: ConfigType;
  /** Default in the form a conf file would write it. */
  readonly default: string;
  /** True when CONFIG SET may change it while the node runs. */
  readonly runtime: boolean;
  readonly doc: string;
  /** Extra check on the canonical value; returns an error text or undefined. */
  readonly validate?: (value: ConfigValue) => string | undefined;
}

const INT32_MAX = 2 ** 31 - 1;
const GIB = 1024 * 1024 * 1024;
/** Largest size any byte-valued key accepts (a value larger than this is a typo). */
const BYTES_MAX = 64 * GIB;

const int = (min: number, max: number): ConfigType => ({ kind: 'int', min, max });
const bytes = (min: number, max: number = BYTES_MAX): ConfigType => ({ kind: 'bytes', min, max });
const bool: ConfigType = { kind: 'bool' };
const enumOf = (...values: string[]): ConfigType => ({ kind: 'enum', values });
const str: ConfigType = { kind: 'string' };

function validateBind(value: ConfigValue): string | undefined {
  const addrs = String(value).split(/\s+/).filter((a) => a.length > 0);
  if (addrs.length === 0) return 'bind needs at least one address';
  for (const a of addrs) {
    const addr = a.startsWith('-') ? a.slice(1) : a;
    if (!/^[0-9A-Za-z.:%*-]+$/.test(addr)) return `invalid address '${a}'`;
  }
  return undefined;
}

function validateQuorum(value: ConfigValue): string | undefined {
  try {
    parseQuorumSpec(String(value));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function validateSeeds(value: ConfigValue): string | undefined {
  try {
    parseSeeds(String(value));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export const CONFIG_SCHEMA: readonly ConfigKey[] = [
  // ---- network
  { name: 'port', type: int(0, 65535), default: '6379', runtime: false,
    doc: 'TCP port for clients (RESP); 0 picks a free port (logged at startup).' },
  { name: 'bind', type: str, default: '127.0.0.1 -::1', runtime: false, validate: validateBind,
    doc: 'Addresses to listen on, space separated; a leading "-" means skip it if unavailable; "*" is every IPv4 interface.' },
  { name: 'protected-mode', type: bool, default: 'yes', runtime: true,
    doc: 'With no requirepass, accept clients from loopback addresses only.' },
  { name: 'requirepass', type: str, default: '', runtime: true,
    doc: 'Password clients must give with AUTH or HELLO AUTH; empty: none.' },
  { name: 'maxclients', type: int(1, 1_000_000), default: '10000', runtime: true,
    doc: 'Connections beyond this many get "ERR max number of clients reached" and are closed.' },
  { name: 'timeout', type: int(0, INT32_MAX), default: '0', runtime: true,
    doc: 'Close a client idle for this many seconds; 0: never.' },
  { name: 'tcp-keepalive', type: int(0, INT32_MAX), default: '300', runtime: true,
    doc: 'TCP keepalive probe interval in seconds for new connections (finds dead peers); 0: off.' },
  // ---- protocol and client limits
  { name: 'proto-max-bulk-len', type: bytes(1024, 512 * 1024 * 1024), default: '1mb', runtime: true,
    doc: 'Largest bulk string a client may send, in bytes (bigger: protocol error, connection closed).' },
  { name: 'client-query-buffer-limit', type: bytes(1024 * 1024, 4 * GIB), default: '1gb', runtime: true,
    doc: 'Largest unparsed input held for one client, in bytes; beyond it the client is closed.' },
  { name: 'client-output-buffer-limit', type: bytes(0), default: '64mb', runtime: true,
    doc: 'Hard cap on replies queued for one client, in bytes; beyond it the client is closed (0: no cap). Reading from a client pauses well before, while its replies drain.' },
  // ---- data
  { name: 'dir', type: str, default: './data', runtime: false,
    doc: 'Data directory of this node (created if missing).' },
  { name: 'max-key-bytes', type: bytes(1, 64 * 1024 * 1024), default: '1kb', runtime: true,
    doc: 'Largest key accepted, in bytes.' },
  { name: 'max-value-bytes', type: bytes(1, 512 * 1024 * 1024), default: '1mb', runtime: true,
    doc: 'Largest value accepted, in bytes.' },
  { name: 'conflict-policy', type: enumOf('siblings', 'lww'), default: 'siblings', runtime: true,
    doc: 'siblings: keep concurrent writes as siblings (GET returns an array); lww: last write wins.' },
  { name: 'max-siblings', type: int(1, MAX_SIBLINGS_LIMIT), default: '100', runtime: true,
    doc: 'Most siblings kept per key; beyond it the oldest siblings are dropped.' },
  { name: 'vclock-max-entries', type: int(1, MAX_CLOCK_ENTRIES), default: '50', runtime: true,
    doc: 'Version vector entries kept per key; the oldest are pruned beyond it (may create false siblings, never loses writes).' },
  { name: 'gc-grace-seconds', type: int(0, INT32_MAX), default: '864000', runtime: false,
    doc: 'How long tombstones are kept before compaction may drop them, in seconds.' },
  { name: 'anti-entropy-interval-ms', type: int(0, 86_400_000), default: '60000', runtime: true,
    doc: 'How often each node compares its Merkle trees with the other replicas of its slots and repairs differences, in milliseconds; 0: only on CLUSTER REPAIR.' },
  // ---- storage engine
  { name: 'appendfsync', type: enumOf('always', 'everysec', 'no'), default: 'everysec', runtime: false,
    doc: 'When the commit log is fsynced: after every write (always), about once a second (everysec), or never explicitly (no).' },
  { name: 'memtable-bytes', type: bytes(64 * 1024), default: '64mb', runtime: false,
    doc: 'Memtable size in bytes; a full memtable is flushed to a table file.' },
  { name: 'block-cache-bytes', type: bytes(0), default: '128mb', runtime: false,
    doc: 'Cache of table blocks, in bytes.' },
  { name: 'bloom-bits-per-key', type: int(0, 64), default: '10', runtime: false,
    doc: 'Bloom filter bits per key in table files (10: about 1% false positives); 0: no filter.' },
  // ---- cluster (ARCHITECTURE.md sections 2-5; a node with empty `seeds` is a lone node)
  { name: 'seeds', type: str, default: '', runtime: false, validate: validateSeeds,
    doc: 'Nodes to join, "host:port[@busport],..." (client ports; bus port = port + 10000 unless given; may include this node). Empty: a lone node, no cluster bus.' },
  { name: 'cluster-port', type: int(0, 65535), default: '0', runtime: false,
    doc: 'Cluster bus port (node-to-node); 0: port + 10000.' },
  { name: 'cluster-announce-ip', type: str, default: '', runtime: false,
    doc: 'Address advertised to other nodes for the cluster bus (behind NAT, a proxy or a fault-injection proxy); empty: the bind address.' },
  { name: 'cluster-announce-bus-port', type: int(0, 65535), default: '0', runtime: false,
    doc: 'Cluster bus port advertised to other nodes; 0: the port the bus listens on.' },
  { name: 'cluster-secret', type: str, default: '', runtime: false,
    doc: 'Shared secret every node must prove on the cluster bus handshake; empty: none (ids are still exchanged).' },
  { name: 'replication-factor', type: int(1, MAX_REPLICATION), default: '3', runtime: true,
    doc: 'N: replicas per key (distinct nodes, distinct racks first).' },
  { name: 'read-quorum', type: str, default: 'quorum', runtime: true, validate: validateQuorum,
    doc: 'R: replicas that must answer a read: a number or one|quorum|all|local_one|local_quorum|each_quorum.' },
  { name: 'write-quorum', type: str, default: 'quorum', runtime: true, validate: validateQuorum,
    doc: 'W: replicas that must acknowledge a write: a number or one|quorum|all|local_one|local_quorum|each_quorum.' },
  { name: 'sloppy-quorum', type: bool, default: 'yes', runtime: true,
    doc: 'yes: healthy nodes past the preference list stand in for down replicas and count toward R/W; no: only the N primary replicas count.' },
  { name: 'hinted-handoff', type: bool, default: 'yes', runtime: true,
    doc: 'yes: a fallback keeps a durable hint of each write it takes for a down replica and hands it off when that replica is up again; no: no hints, the replica is repaired by anti-entropy.' },
  { name: 'max-hint-window-ms', type: int(0, INT32_MAX), default: '10800000', runtime: true,
    doc: 'Hints older than this (since their last write) are dropped and left to anti-entropy, in milliseconds; 0: never dropped.' },
  { name: 'hint-handoff-batch-keys', type: int(1, MAX_HINT_BATCH_KEYS), default: '128', runtime: true,
    doc: 'Hints sent to a recovered replica per handoff batch (one bus request).' },
  { name: 'hint-handoff-keys-per-second', type: int(0, INT32_MAX), default: '5000', runtime: true,
    doc: 'Rate limit of hinted handoff from this node, in hints per second over all targets; 0: unlimited.' },
  { name: 'request-timeout-ms', type: int(1, 86_400_000), default: '5000', runtime: true,
    doc: 'Deadline of one replicated read or write, in milliseconds (then NOQUORUM).' },
  { name: 'vnodes', type: int(1, MAX_VNODES), default: '256', runtime: false,
    doc: 'Ring tokens per node at weight 1 (every node of a cluster must use the same value).' },
  { name: 'weight', type: int(0, 1000), default: '1', runtime: true,
    doc: 'Relative capacity of this node: it owns vnodes x weight tokens. CONFIG SET moves the slots that change hands by streaming; the new weight is current once they are streamed.' },
  { name: 'dc', type: str, default: 'dc1', runtime: false,
    doc: 'Datacenter of this node (placement model).' },
  { name: 'rack', type: str, default: '', runtime: false,
    doc: 'Rack of this node; replicas go to distinct racks first.' },
  { name: 'gossip-interval-ms', type: int(10, 60_000), default: '1000', runtime: false,
    doc: 'How often this node gossips its membership table to a random peer, in milliseconds.' },
  { name: 'node-timeout-ms', type: int(100, 3_600_000), default: '5000', runtime: false,
    doc: 'Heartbeat silence after which a member is suspected (then confirmed down by an indirect probe), in milliseconds.' },
  { name: 'join-streaming', type: enumOf('auto', 'yes', 'no'), default: 'auto', runtime: false,
    doc: 'yes: a fresh node started with seeds enters the ring as joining and streams the slots it takes over before serving them; no: it owns its slots at once; auto: it streams when the cluster it joins holds data, and owns its slots at once in a new cluster of empty nodes.' },
  { name: 'stream-max-bytes-per-sec', type: bytes(0), default: '32mb', runtime: true,
    doc: 'Throttle of slot streaming (join, leave, forget) into this node, in bytes per second; 0: unlimited.' },
  // ---- observability
  { name: 'slowlog-log-slower-than', type: int(-1, INT32_MAX), default: '10000', runtime: true,
    doc: 'Log commands slower than this many microseconds to the SLOWLOG; 0: every command; -1: none.' },
  { name: 'slowlog-max-len', type: int(0, 1_000_000), default: '128', runtime: true,
    doc: 'Entries kept in the SLOWLOG.' },
  { name: 'loglevel', type: enumOf('debug', 'info', 'warn', 'error'), default: 'info', runtime: true,
    doc: 'Least severe log level written.' },
  { name: 'logfile', type: str, default: '', runtime: false,
    doc: 'File to append log lines to; empty: standard output.' },
];

const BY_NAME: ReadonlyMap<string, ConfigKey> = new Map(CONFIG_SCHEMA.map((k) => [k.name, k]));

/** The schema entry for a key (names are case-insensitive), or undefined. */
export function configKey(name: string): ConfigKey | undefined {
  return BY_NAME.get(name.toLowerCase());
}
