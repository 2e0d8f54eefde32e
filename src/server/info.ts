/**
 * INFO's text: Redis's `# Section` headers and `key:value` lines joined by CRLF, sections
 * separated by a blank line. Sections are built from a snapshot so formatting stays pure.
 */
import os from 'node:os';
import type { EngineStats } from '../storage/types.js';
import type { CommandStat } from './stats.js';

/** Sections INFO prints with no argument or `default` (commandstats only on request, as Redis). */
export const DEFAULT_SECTIONS: readonly string[] = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'errorstats', 'cluster', 'keyspace', 'storage'];
export const ALL_SECTIONS: readonly string[] = [...DEFAULT_SECTIONS, 'commandstats'];

export interface InfoSnapshot {
  readonly version: string;
  readonly redisCompatVersion: string;
  readonly nodeId: string;
  readonly port: number;
  readonly configFile: string;
  readonly nowMs: number;
  readonly startedAtMs: number;
  readonly connectedClients: number;
  readonly maxclients: number;
  readonly maxQueryBufferBytes: number;
  readonly maxOutputBufferBytes: number;
  readonly memory: NodeJS.MemoryUsage;
  readonly cpu: NodeJS.CpuUsage;
  readonly appendfsync: string;
  readonly stats: {
    totalConnectionsReceived: number;
    totalCommandsProcessed: number;
    rejectedConnections: number;
    netInputBytes: number;
    netOutputBytes: number;
    outputLimitDisconnections: number;
    queryLimitDisconnections: number;
    protocolErrors: number;
    outputWrites: number;
  };
  readonly commands: ReadonlyMap<string, CommandStat>;
  readonly errors: ReadonlyMap<string, number>;
  readonly keyspace: { keys: number; expires: number };
  readonly engine: EngineStats;
  /**
   * `# Cluster` fields of a node in a cluster (src/cluster/cluster_info.ts, starting with
   * cluster_enabled:1); undefined on a lone node, which prints `cluster_enabled:0` as Redis does.
   */
  readonly cluster?: ReadonlyArray<readonly [string, string | number]>;
}

/** The sections INFO's arguments select, in canonical order; unknown names select nothing. */
export function selectSections(args: readonly string[]): string[] {
  if (args.length === 0) return [...DEFAULT_SECTIONS];
  const wanted = new Set<string>();
  for (const raw of args) {
    const a = raw.toLowerCase();
    if (a === 'all' || a === 'everything') for (const s of ALL_SECTIONS) wanted.add(s);
    else if (a === 'default') for (const s of DEFAULT_SECTIONS) wanted.add(s);
    else wanted.add(a);
  }
  return ALL_SECTIONS.filter((s) => wanted.has(s));
}

const human = (bytes: number): string => {
  if (bytes < 1024) return `${bytes}B`;
  const units = ['K', 'M', 'G', 'T'];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(2)}${units[u]}`;
};

type Lines = [string, string | number][];

function sectionLines(name: string, s: InfoSnapshot): Lines | undefined {
  const uptimeSec = Math.floor((s.nowMs - s.startedAtMs) / 1000);
  switch (name) {
    case 'server':
      return [
        ['redis_version', s.redisCompatVersion],
        ['ringkv_version', s.version],
        ['redis_mode', 'standalone'],
        ['os', `${os.type()} ${os.release()} ${os.arch()}`],
        ['arch_bits', process.arch.endsWith('64') ? 64 : 32],
        ['node_version', process.version],
        ['process_id', process.pid],
        ['run_id', s.nodeId],
        ['node_id', s.nodeId],
        ['tcp_port', s.port],
        ['server_time_usec', s.nowMs * 1000],
        ['uptime_in_seconds', uptimeSec],
        ['uptime_in_days', Math.floor(uptimeSec / 86400)],
        ['executable', process.argv[1] ?? ''],
        ['config_file', s.configFile],
      ];
    case 'clients':
      return [
        ['connected_clients', s.connectedClients],
        ['maxclients', s.maxclients],
        ['client_query_buffer_limit', s.maxQueryBufferBytes],
        ['client_output_buffer_limit', s.maxOutputBufferBytes],
        ['blocked_clients', 0],
      ];
    case 'memory': {
      const used = s.memory.heapUsed + s.memory.external + s.memory.arrayBuffers;
      return [
        ['used_memory', used],
        ['used_memory_human', human(used)],
        ['used_memory_rss', s.memory.rss],
        ['used_memory_rss_human', human(s.memory.rss)],
        ['used_memory_heap', s.memory.heapUsed],
        ['used_memory_heap_total', s.memory.heapTotal],
        ['used_memory_external', s.memory.external],
        ['used_memory_array_buffers', s.memory.arrayBuffers],
        ['memtable_bytes', s.engine.memtableBytes],
        ['block_cache_bytes', s.engine.blockCacheBytes],
        ['total_system_memory', os.totalmem()],
        ['total_system_memory_human', human(os.totalmem())],
        ['maxmemory', 0],
        ['maxmemory_policy', 'noeviction'],
      ];
    }
    case 'persistence':
      return [
        ['loading', 0],
        ['aof_enabled', 1],
        ['aof_fsync', s.appendfsync],
        ['aof_last_write_status', s.engine.failed === null ? 'ok' : 'err'],
        ['storage_failed', s.engine.failed === null ? 0 : 1],
        ['rdb_changes_since_last_save', 0],
        ['rdb_bgsave_in_progress', 0],
        ['aof_rewrite_in_progress', 0],
      ];
    case 'stats':
      return [
        ['total_connections_received', s.stats.totalConnectionsReceived],
        ['total_commands_processed', s.stats.totalCommandsProcessed],
        ['total_net_input_bytes', s.stats.netInputBytes],
        ['total_net_output_bytes', s.stats.netOutputBytes],
        ['rejected_connections', s.stats.rejectedConnections],
        ['client_output_buffer_limit_disconnections', s.stats.outputLimitDisconnections],
        ['client_query_buffer_limit_disconnections', s.stats.queryLimitDisconnections],
        ['total_error_replies', [...s.errors.values()].reduce((a, b) => a + b, 0)],
        ['protocol_errors', s.stats.protocolErrors],
        ['total_output_writes', s.stats.outputWrites],
      ];
    case 'replication':
      return [
        ['role', 'master'],
        ['connected_slaves', 0],
      ];
    case 'cpu':
      return [
        ['used_cpu_sys', (s.cpu.system / 1e6).toFixed(6)],
        ['used_cpu_user', (s.cpu.user / 1e6).toFixed(6)],
      ];
    case 'cluster':
      return s.cluster === undefined ? [['cluster_enabled', 0]] : s.cluster.map(([k, v]) => [k, v]);
    case 'errorstats':
      return [...s.errors.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([prefix, n]) => [`errorstat_${prefix}`, `count=${n}`]);
    case 'commandstats':
      return [...s.commands.entries()]
        .filter(([, c]) => c.calls > 0 || c.rejectedCalls > 0 || c.failedCalls > 0)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([cmd, c]) => [
          `cmdstat_${cmd}`,
          `calls=${c.calls},usec=${c.usec},usec_per_call=${(c.calls === 0 ? 0 : c.usec / c.calls).toFixed(2)},rejected_calls=${c.rejectedCalls},failed_calls=${c.failedCalls}`,
        ]);
    case 'keyspace':
      // Redis lists only non-empty databases.
      return s.keyspace.keys > 0 ? [['db0', `keys=${s.keyspace.keys},expires=${s.keyspace.expires},avg_ttl=0`]] : [];
    case 'storage': {
      const e = s.engine;
      return [
        ['memtable_bytes', e.memtableBytes],
        ['tables_per_level', e.tablesPerLevel.join(',')],
        ['bytes_per_level', e.bytesPerLevel.join(',')],
        ['user_bytes_written', e.userBytesWritten],
        ['log_bytes_written', e.logBytesWritten],
        ['table_bytes_written', e.tableBytesWritten],
        ['write_amplification', e.userBytesWritten === 0 ? '0.00' : ((e.logBytesWritten + e.tableBytesWritten) / e.userBytesWritten).toFixed(2)],
        ['block_cache_bytes', e.blockCacheBytes],
        ['block_cache_hits', e.blockCacheHits],
        ['block_cache_misses', e.blockCacheMisses],
        ['bloom_checks', e.bloomChecks],
        ['bloom_negatives', e.bloomNegatives],
        ['flushes', e.flushes],
        ['compactions', e.compactions],
        ['pending_compaction_bytes', e.pendingCompactionBytes],
        ['failed', e.failed ?? ''],
        ['recovered_torn_bytes', e.recoveredTornBytes],
      ];
    }
    default:
      return undefined;
  }
}

const TITLES: Readonly<Record<string, string>> = {
  server: 'Server', clients: 'Clients', memory: 'Memory', persistence: 'Persistence', stats: 'Stats',
  replication: 'Replication', cpu: 'CPU', errorstats: 'Errorstats', commandstats: 'Commandstats',
  keyspace: 'Keyspace', storage: 'Storage', cluster: 'Cluster',
};

/** The INFO text for `sections` (already selected and ordered). */
export function formatInfo(sections: readonly string[], s: InfoSnapshot): string {
  const parts: string[] = [];
  for (const name of sections) {
    const lines = sectionLines(name, s);
    if (lines === undefined) continue;
    let text = `# ${TITLES[name] ?? name}\r\n`;
    for (const [k, v] of lines) text += `${k}:${v}\r\n`;
    parts.push(text);
  }
  return parts.join('\r\n');
}
