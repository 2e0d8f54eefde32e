/**
 * One ringkv node: checks the data directory, opens the keyspace, starts the RESP server and
 * logs `Ready to accept connections tcp port=<P>`; shutdown() stops accepting, lets in-flight
 * commands finish, closes the keyspace (flushing its log) and resolves `closed`.
 */
import { mkdir, access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { CommandClock } from './command_clock.js';
import { Keyspace } from './keyspace.js';
import type { LogFn, Logger } from './logger.js';
import { RingkvServer } from './server.js';
import { RINGKV_VERSION } from './version.js';
import { ClusterService, clusterConfigured } from '../cluster/cluster_service.js';

export class NodeStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NodeStartError';
  }
}

export interface NodeOptions {
  readonly config: Config;
  readonly log: LogFn;
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Called when a SHUTDOWN command asks the node to stop (after it has stopped). */
  readonly onShutdown?: (reason: string) => void;
}

export interface RunningNode {
  readonly port: number;
  readonly server: RingkvServer;
  readonly keyspace: Keyspace;
  /** The node's cluster when `seeds` is set; undefined for a lone node. */
  readonly cluster?: ClusterService;
  /** Stops the node cleanly; idempotent; resolves once everything is closed. */
  shutdown(reason: string): Promise<void>;
  /** Resolves once the node has stopped, whoever asked. */
  readonly closed: Promise<void>;
}

/** Creates `dir` if needed and checks it is a writable directory; throws NodeStartError. */
export async function prepareDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NodeStartError(`data dir ${path.resolve(dir)} is not writable: ${e.code ?? e.message}`, { cause: err });
  }
}

export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const { config, log } = options;
  // One clock for the commands and the keyspace under them, held per synchronous command run.
  const clock = new CommandClock(options.now ?? Date.now);
  const now = clock.now;
  const dir = config.getString('dir');
  await prepareDataDir(dir);
  let keyspace: Keyspace;
  try {
    keyspace = await Keyspace.open({ dir, config, now, log });
  } catch (err) {
    const e = err as Error;
    throw new NodeStartError(`cannot open data dir ${path.resolve(dir)}: ${e.message}`, { cause: err });
  }
  // Cluster mode (seeds set): bus + gossip + coordinator, started before clients are served.
  let cluster: ClusterService | undefined;
  if (clusterConfigured(config)) {
    try {
      cluster = await ClusterService.start({ config, keyspace, log, dir, clientPort: config.getNumber('port'), onLeft: () => void shutdown('this node left the cluster (CLUSTER LEAVE)') });
    } catch (err) {
      await keyspace.close().catch(() => undefined);
      throw new NodeStartError(`cannot start the cluster bus: ${(err as Error).message}`, { cause: err });
    }
  }
  let stopping: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log('info', `shutting down (${reason})`);
      await server.close();
      await cluster?.close().catch((err: Error) => log('error', `closing the cluster failed: ${err.message}`));
      try {
        await keyspace.close();
      } catch (err) {
        log('error', `closing the keyspace failed: ${(err as Error).message}`);
      }
      log('info', 'ringkv is now ready to exit, bye bye...');
      resolveClosed();
      options.onShutdown?.(reason);
    })();
    return stopping;
  };
  const server = new RingkvServer({ config, keyspace, log, logger: options.logger, clock, onShutdownRequest: (reason) => void shutdown(reason), ...(cluster === undefined ? {} : { cluster }) });
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    await cluster?.close().catch(() => undefined);
    await keyspace.close().catch(() => undefined);
    throw err;
  }
  cluster?.setClientPort(port);
  log('info', `ringkv ${RINGKV_VERSION} node ${keyspace.nodeId} pid=${process.pid} dir=${path.resolve(dir)} appendfsync=${config.getString('appendfsync')}`);
  log('info', `Ready to accept connections tcp port=${port}`);
  return { port, server, keyspace, ...(cluster === undefined ? {} : { cluster }), shutdown, closed };
}
