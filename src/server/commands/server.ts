/**
 * Server commands: INFO CONFIG TIME SHUTDOWN SLOWLOG COMMAND READONLY READWRITE.
 */
import { array, bulk, bulks, error, integer, map, NIL, OK, simple, verbatim, type Reply } from '../../resp/reply.js';
import { ConfigError } from '../../config/config.js';
import { REDIS_COMPAT_CONFIG } from '../redis_compat_config.js';
import { commandDocs, commandInfo } from '../command_docs.js';
import { formatInfo, selectSections, type InfoSnapshot } from '../info.js';
import { NO_REPLY, type NodeServices } from '../services.js';
import type { CommandContext, CommandSpec } from '../types.js';
import { RINGKV_VERSION, REDIS_COMPAT_VERSION } from '../version.js';
import { wrongArityError } from '../dispatcher.js';

export const SLOWLOG_GET_DEFAULT_COUNT = 10;

const spec = (
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  summary: string,
  handler: CommandSpec['handler'],
  extra: Partial<CommandSpec> = {},
): CommandSpec => ({ name, arity, flags, firstKey: 0, lastKey: 0, keyStep: 0, summary, group: 'server', since: '1.0.0', handler, ...extra });

const help = (lines: string[]): Reply => array(lines.map(simple));

function parseInteger(b: Buffer | undefined): number | undefined {
  if (b === undefined) return undefined;
  const s = b.toString('latin1');
  return /^-?\d{1,15}$/.test(s) ? Number(s) : undefined;
}

/** INFO's `# Cluster` fields when the node runs in a cluster (cluster_enabled:1 first). */
function clusterInfoOf(ctx: CommandContext): Pick<InfoSnapshot, 'cluster'> {
  const c = ctx.server.cluster;
  if (c === undefined) return {};
  const fields = c.infoFields?.() ?? [];
  return { cluster: fields.length > 0 && fields[0]?.[0] === 'cluster_enabled' ? fields : [['cluster_enabled', 1], ...fields] };
}

export function serverCommands(node: NodeServices): CommandSpec[] {
  const snapshot = async (ctx: CommandContext): Promise<InfoSnapshot> => {
    const ks = ctx.server.keyspace;
    const c = node.config;
    return {
      version: RINGKV_VERSION,
      redisCompatVersion: REDIS_COMPAT_VERSION,
      nodeId: ks.nodeId,
      port: node.port(),
      configFile: c.filePath ?? '',
      nowMs: ctx.server.now(),
      startedAtMs: node.startedAtMs,
      connectedClients: [...node.clients()].length,
      maxclients: c.getNumber('maxclients'),
      maxQueryBufferBytes: c.getNumber('client-query-buffer-limit'),
      maxOutputBufferBytes: c.getNumber('client-output-buffer-limit'),
      memory: process.memoryUsage(),
      cpu: process.cpuUsage(),
      appendfsync: c.getString('appendfsync'),
      stats: node.stats,
      commands: node.stats.commands,
      errors: node.stats.errors,
      keyspace: await ks.keyspaceInfo(),
      engine: ks.engineStats(),
      ...clusterInfoOf(ctx),
    };
  };

  const configSubs: CommandSpec[] = [
    spec('config|get', -3, ['admin', 'stale'], 'Returns the effective values of configuration parameters.', (_ctx, args) => {
      const patterns = args.slice(2).map((a) => a.toString());
      const pairs = node.config.match(patterns, REDIS_COMPAT_CONFIG);
      return map(pairs.map(([k, v]) => [bulk(k), bulk(v)] as [Reply, Reply]));
    }, { since: '2.0.0' }),
    spec('config|set', -4, ['admin'], 'Sets configuration parameters in-flight.', (_ctx, args) => {
      if ((args.length - 2) % 2 !== 0) return error(wrongArityError('config|set'));
      const pairs: [string, string][] = [];
      for (let i = 2; i < args.length; i += 2) pairs.push([(args[i] as Buffer).toString(), (args[i + 1] as Buffer).toString()]);
      const failure = node.config.set(pairs);
      if (failure !== undefined) return error(failure);
      node.log('info', `CONFIG SET ${pairs.map(([k]) => k).join(' ')}`);
      return OK;
    }, { since: '2.0.0' }),
    spec('config|rewrite', 2, ['admin'], 'Persists the effective configuration to file.', async () => {
      try {
        await node.config.rewrite();
      } catch (err) {
        if (err instanceof ConfigError) return error(`ERR ${err.message}`);
        const e = err as NodeJS.ErrnoException;
        node.log('warn', `CONFIG REWRITE failed: ${e.message}`);
        return error(`ERR Rewriting config file: ${e.code ?? e.message}`);
      }
      node.log('info', `CONFIG REWRITE executed with success (${node.config.filePath ?? ''})`);
      return OK;
    }, { since: '2.8.0' }),
    spec('config|resetstat', 2, ['admin'], 'Resets the server\'s statistics.', () => {
      node.stats.reset();
      return OK;
    }, { since: '2.0.0' }),
    spec('config|help', 2, [], 'Returns helpful text about the different subcommands.', () =>
      help([
        'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        'GET <pattern>', '    Return parameters matching the glob-like <pattern> and their values.',
        'SET <directive> <value>', '    Set the configuration <directive> to <value>.',
        'RESETSTAT', '    Reset statistics reported by the INFO command.',
        'REWRITE', '    Rewrite the configuration file.',
        'HELP', '    Print this help.',
      ]),
    ),
  ];

  const slowlogSubs: CommandSpec[] = [
    spec('slowlog|get', -2, ['admin'], 'Returns the slow log\'s entries.', (_ctx, args) => {
      let count = SLOWLOG_GET_DEFAULT_COUNT;
      if (args.length === 3) {
        const n = parseInteger(args[2]);
        if (n === undefined || n < -1) return error('ERR count should be greater than or equal to -1');
        count = n;
      } else if (args.length > 3) return error(wrongArityError('slowlog|get'));
      return node.slowlog.toReply(count);
    }, { since: '2.2.12' }),
    spec('slowlog|len', 2, ['admin'], 'Returns the number of entries in the slow log.', () => integer(node.slowlog.length), { since: '2.2.12' }),
    spec('slowlog|reset', 2, ['admin'], 'Clears all entries from the slow log.', () => {
      node.slowlog.reset();
      return OK;
    }, { since: '2.2.12' }),
    spec('slowlog|help', 2, [], 'Show helpful text about the different subcommands.', () =>
      help([
        'SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        'GET [<count>]', '    Return top <count> entries from the slowlog (default: 10, -1 mean all).',
        'LEN', '    Return the length of the slowlog.',
        'RESET', '    Reset the slowlog.',
        'HELP', '    Print this help.',
      ]),
    ),
  ];

  const lookupAll = (names: readonly Buffer[], f: (s: CommandSpec) => Reply): Reply[] =>
    names.map((n) => {
      const parts = n.toString().toLowerCase().split('|');
      const top = node.table().lookup(parts[0] ?? '');
      if (top === undefined) return NIL;
      if (parts.length === 1) return f(top);
      const sub = node.table().lookupSub(top, parts[1] ?? '');
      return sub === undefined ? NIL : f(sub);
    });

  const commandSubs: CommandSpec[] = [
    spec('command|count', 2, [], 'Returns a count of commands.', () => integer(node.table().size), { since: '2.8.13' }),
    spec('command|info', -2, [], 'Returns information about one, multiple or all commands.', (_ctx, args) => {
      if (args.length === 2) return array(node.table().all().map(commandInfo));
      return array(lookupAll(args.slice(2), commandInfo));
    }, { since: '2.8.13' }),
    spec('command|docs', -2, [], 'Returns documentary information about one, multiple or all commands.', (_ctx, args) => {
      const specs = args.length === 2 ? node.table().all() : args.slice(2).map((a) => node.table().lookup(a.toString())).filter((s): s is CommandSpec => s !== undefined);
      return map(specs.map((s) => [bulk(s.name), commandDocs(s)] as [Reply, Reply]));
    }, { since: '7.0.0' }),
    spec('command|list', -2, [], 'Returns a list of command names.', (_ctx, args) => {
      if (args.length === 2) return bulks(node.table().all().map((s) => s.name));
      if (args.length !== 5 || (args[2] as Buffer).toString().toLowerCase() !== 'filterby') return error('ERR syntax error');
      const kind = (args[3] as Buffer).toString().toLowerCase();
      const value = (args[4] as Buffer).toString().toLowerCase();
      let specs = node.table().all();
      if (kind === 'pattern') specs = specs.filter((s) => new RegExp(`^${value.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s.name));
      else if (kind === 'aclcat') specs = specs.filter((s) => commandInfoHasCategory(s, value));
      else if (kind === 'module') specs = [];
      else return error('ERR syntax error');
      return bulks(specs.map((s) => s.name));
    }, { since: '7.0.0' }),
    spec('command|help', 2, [], 'Returns helpful text about the different subcommands.', () =>
      help([
        'COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        '(no subcommand)', '    Return details about all commands.',
        'COUNT', '    Return the total number of commands.',
        'INFO [<command-name> ...]', '    Return details about multiple commands.',
        'DOCS [<command-name> ...]', '    Return documentation details about multiple commands.',
        'LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]', '    Return a list of all commands in this server.',
        'HELP', '    Print this help.',
      ]),
    ),
  ];

  return [
    spec('info', -1, ['stale'], 'Returns information and statistics about the server.', async (ctx, args) => {
      const sections = selectSections(args.slice(1).map((a) => a.toString()));
      return verbatim(formatInfo(sections, await snapshot(ctx)));
    }),
    spec('config', -2, [], 'A container for server configuration commands.', undefined, { subcommands: configSubs, since: '2.0.0' }),
    spec('time', 1, ['fast', 'random'], 'Returns the server time.', (ctx) => {
      const ms = ctx.server.now();
      const usec = Math.floor(ms * 1000);
      return bulks([String(Math.floor(usec / 1e6)), String(usec % 1e6)]);
    }, { since: '2.6.0' }),
    spec('shutdown', -1, ['admin', 'stale', 'loading'], 'Flushes the data to disk and shuts down the server.', (ctx, args) => {
      for (const a of args.slice(1)) {
        const opt = a.toString().toLowerCase();
        if (opt === 'abort') return error('ERR No shutdown in progress.');
        if (opt !== 'nosave' && opt !== 'save' && opt !== 'now' && opt !== 'force') return error('ERR syntax error');
      }
      // Every acknowledged write is already in the commit log; SAVE and NOSAVE both flush it on close.
      node.log('warn', `User requested shutdown from ${ctx.client.addr}`);
      ctx.client.closeAfterReply = true;
      setImmediate(() => node.requestShutdown('SHUTDOWN command'));
      return NO_REPLY;
    }),
    spec('slowlog', -2, ['admin'], 'A container for slow log commands.', undefined, { subcommands: slowlogSubs, since: '2.2.12' }),
    spec('command', -1, ['random', 'loading', 'stale'], 'Returns detailed information about all commands.', () => array(node.table().all().map(commandInfo)), {
      subcommands: commandSubs,
      since: '2.8.13',
    }),
    spec('readonly', 1, ['fast'], 'Enables read-only queries for a connection to a replica (always allowed in ringkv).', () => OK, { group: 'cluster', since: '3.0.0' }),
    spec('readwrite', 1, ['fast'], 'Enables read-write queries for a connection (the default).', () => OK, { group: 'cluster', since: '3.0.0' }),
  ];
}

function commandInfoHasCategory(s: CommandSpec, cat: string): boolean {
  const c = cat.replace(/^@/, '');
  if (c === 'write') return s.flags.includes('write');
  if (c === 'read') return s.flags.includes('readonly');
  if (c === 'fast') return s.flags.includes('fast');
  if (c === 'slow') return !s.flags.includes('fast');
  if (c === 'admin' || c === 'dangerous') return s.flags.includes('admin');
  if (c === 'connection') return s.group === 'connection';
  if (c === 'string') return s.group === 'string';
  if (c === 'keyspace') return s.group === 'generic' || s.firstKey > 0;
  return false;
}
