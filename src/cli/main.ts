#!/usr/bin/env node
/**
 * The `ringkv` command: runs one node in the foreground (like redis-server) or, with `cluster`,
 * a local cluster of node processes. Bad configuration, a port in use or an unwritable data
 * directory print one line to stderr and exit 1. SIGINT/SIGTERM and SHUTDOWN stop the node
 * cleanly (in-flight commands finish, the keyspace is flushed and closed) and exit 0.
 */
import { fileURLToPath } from 'node:url';
import { Config, ConfigError } from '../config/config.js';
import { Logger, isLogLevel } from '../server/logger.js';
import { NodeStartError, startNode } from '../server/node.js';
import { ServerStartError } from '../server/server.js';
import { RINGKV_VERSION } from '../server/version.js';
import { CliUsageError, parseCli, USAGE } from './args.js';
import { runCluster } from './cluster.js';
import { runClusterWait } from './cluster_wait.js';

function fail(message: string): never {
  process.stderr.write(`ringkv: ${message}\n`);
  process.exit(1);
}

async function runNode(conf: string | undefined, overrides: [string, string][]): Promise<void> {
  const config = await Config.load(conf, overrides);
  const level = config.getString('loglevel');
  const logger = new Logger({ level: isLogLevel(level) ? level : 'info', file: config.getString('logfile') });
  const log = logger.log;
  const node = await startNode({ config, log, logger });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log('warn', `received ${sig} again, exiting now`);
      process.exit(1);
    }
    log('info', `received ${sig}, scheduling shutdown`);
    void node.shutdown(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await node.closed;
  process.exit(0);
}

async function main(argv: readonly string[]): Promise<void> {
  let cmd;
  try {
    cmd = parseCli(argv);
  } catch (err) {
    if (err instanceof CliUsageError) fail(`${err.message}\n${USAGE}`);
    throw err;
  }
  switch (cmd.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return;
    case 'version':
      process.stdout.write(`ringkv ${RINGKV_VERSION}\n`);
      return;
    case 'cluster': {
      const self = fileURLToPath(import.meta.url);
      const code = await runCluster(cmd, self, (line) => process.stdout.write(line + '\n'));
      process.exit(code);
      return;
    }
    case 'cluster-wait': {
      const code = await runClusterWait(cmd, { tty: process.stdout.isTTY === true, write: (text) => process.stdout.write(text) });
      process.exit(code);
      return;
    }
    case 'node':
      try {
        await runNode(cmd.conf, cmd.overrides);
      } catch (err) {
        if (err instanceof ConfigError || err instanceof NodeStartError || err instanceof ServerStartError) fail(err.message);
        fail(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
      }
  }
}

void main(process.argv.slice(2));
