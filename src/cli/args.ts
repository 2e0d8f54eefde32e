/**
 * Command-line parsing for `ringkv`, pure: no I/O, errors are thrown as CliUsageError.
 *
 *   ringkv [FILE | --conf FILE] [--<config-key> <value> ...]
 *   ringkv cluster --nodes K [--base-port P] [--dir DIR] [--conf FILE] [--<config-key> <value> ...]
 *   ringkv cluster join|leave|wait --port P [--host H] [--timeout-sec S]      (cluster_wait.ts)
 *
 * As with redis-server, `--key a b` gives a key a multi-word value (bind).
 */
import type { WaitAction } from './cluster_progress.js';

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

export const CLUSTER_NODES_MAX = 64;
export const DEFAULT_BASE_PORT = 7001;
export const DEFAULT_CLUSTER_DIR = './data';

export type CliCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'node'; conf: string | undefined; overrides: [string, string][] }
  | { kind: 'cluster'; nodes: number; basePort: number; dir: string; conf: string | undefined; overrides: [string, string][] }
  | { kind: 'cluster-wait'; action: WaitAction; host: string; port: number; timeoutSec: number };

/** Default of --timeout-sec for `ringkv cluster join|leave|wait`: 0 = wait as long as it takes. */
export const DEFAULT_WAIT_TIMEOUT_SEC = 0;
const WAIT_ACTIONS: readonly WaitAction[] = ['join', 'leave', 'wait'];

/** `--key v1 v2 --other v` -> [['key', 'v1 v2'], ['other', 'v']]. */
function parseOptions(argv: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i] as string;
    if (!a.startsWith('--') || a.length === 2) throw new CliUsageError(`unexpected argument '${a}' (options are --<config-key> <value>)`);
    const key = a.slice(2).toLowerCase();
    const values: string[] = [];
    i++;
    while (i < argv.length && !(argv[i] as string).startsWith('--')) values.push(argv[i++] as string);
    if (values.length === 0) {
      // `--requirepass ""` arrives as an empty word; a bare `--key` has no value at all.
      throw new CliUsageError(`option --${key} needs a value`);
    }
    out.push([key, values.join(' ')]);
  }
  return out;
}

function takeInt(opts: [string, string][], key: string, dflt: number, min: number, max: number): number {
  const i = opts.findIndex(([k]) => k === key);
  if (i < 0) return dflt;
  const text = (opts[i] as [string, string])[1];
  opts.splice(i, 1);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new CliUsageError(`--${key} must be a number from ${min} to ${max}, got '${text}'`);
  return Number(text);
}

function takeString(opts: [string, string][], key: string): string | undefined {
  const i = opts.findIndex(([k]) => k === key);
  if (i < 0) return undefined;
  const v = (opts[i] as [string, string])[1];
  opts.splice(i, 1);
  return v;
}

export function parseCli(argv: readonly string[]): CliCommand {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  if (argv.includes('--version') || argv.includes('-v')) return { kind: 'version' };
  if (argv[0] === 'cluster' && WAIT_ACTIONS.includes(argv[1] as WaitAction)) {
    const action = argv[1] as WaitAction;
    const opts = parseOptions(argv.slice(2));
    const port = takeInt(opts, 'port', 0, 1, 65535);
    if (port === 0) throw new CliUsageError(`ringkv cluster ${action} needs --port <client port of the node>`);
    const host = takeString(opts, 'host') ?? '127.0.0.1';
    const timeoutSec = takeInt(opts, 'timeout-sec', DEFAULT_WAIT_TIMEOUT_SEC, 0, 86_400 * 7);
    if (opts.length > 0) throw new CliUsageError(`ringkv cluster ${action} takes --port, --host and --timeout-sec, not --${opts[0]![0]}`);
    return { kind: 'cluster-wait', action, host, port, timeoutSec };
  }
  if (argv[0] === 'cluster') {
    const opts = parseOptions(argv.slice(1));
    const nodes = takeInt(opts, 'nodes', 0, 1, CLUSTER_NODES_MAX);
    if (nodes === 0) throw new CliUsageError('ringkv cluster needs --nodes <count>');
    const basePort = takeInt(opts, 'base-port', DEFAULT_BASE_PORT, 1, 65535);
    if (basePort + nodes - 1 > 65535) throw new CliUsageError(`ports ${basePort}..${basePort + nodes - 1} do not fit below 65536`);
    const dir = takeString(opts, 'dir') ?? DEFAULT_CLUSTER_DIR;
    const conf = takeString(opts, 'conf');
    if (opts.some(([k]) => k === 'port')) throw new CliUsageError('ringkv cluster sets each node\'s --port itself; use --base-port');
    // Node i's cluster bus port: --cluster-port + i when given, else its port + 10000.
    const busBase = opts.find(([k]) => k === 'cluster-port')?.[1];
    const firstBus = busBase === undefined ? basePort + 10000 : Number(busBase);
    if (!Number.isInteger(firstBus) || firstBus < 1 || firstBus + nodes - 1 > 65535) {
      throw new CliUsageError(`cluster bus ports ${firstBus}..${firstBus + nodes - 1} do not fit below 65536; give the first one with --cluster-port`);
    }
    return { kind: 'cluster', nodes, basePort, dir, conf, overrides: opts };
  }
  let rest = argv;
  let conf: string | undefined;
  if (rest[0] !== undefined && !rest[0].startsWith('--')) {
    conf = rest[0];
    rest = rest.slice(1);
  }
  const opts = parseOptions(rest);
  const confOpt = takeString(opts, 'conf');
  if (confOpt !== undefined) {
    if (conf !== undefined) throw new CliUsageError('give the config file once (FILE or --conf FILE)');
    conf = confOpt;
  }
  return { kind: 'node', conf, overrides: opts };
}

export const USAGE = `Usage:
  ringkv [FILE | --conf FILE] [--<config-key> <value> ...]
      Runs one node in the foreground, e.g. ringkv --port 7001 --dir ./data/7001 --appendfsync always
  ringkv cluster --nodes K [--base-port 7001] [--dir ./data] [--conf FILE] [--<config-key> <value> ...]
      Starts K nodes on ports base-port.. with data in DIR/<port>; Ctrl-C stops them all.
  ringkv cluster join|leave|wait --port P [--host 127.0.0.1] [--timeout-sec S]
      Shows a progress bar until the node at host:P has joined (started with --seeds), has left
      (leave sends it CLUSTER LEAVE), or no slot is moving any more (wait: a weight change).
Every config key is documented in conf/ringkv.conf.
`;
