/**
 * Wiring of elastic membership into a node (cluster_service.ts calls these three):
 *
 *   joinState(config, dir, log)        before membership starts: the state this node enters the
 *                                      ring in (`joining` while a join is unfinished, or for a
 *                                      fresh node with `join-streaming yes`) and its progress
 *   startStreamManager(...)            after membership started: the StreamManager on the bus,
 *                                      with its own current/target RingProviders
 *   streamOf(membership)               the node's StreamManager (coordinator's pending
 *                                      replicas, CLUSTER LEAVE / FORGET / INFO)
 */
import * as fs from 'node:fs';
import type { RingMember } from '../coordinator/ring.js';
import { RingProvider } from '../coordinator/ring_provider.js';
import type { Keyspace } from '../server/keyspace.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import type { ClusterMembership } from './cluster_node.js';
import type { MemberState } from './membership.js';
import { ringMemberOf } from './membership_weight.js';
import { joinStreamingMode } from './join_auto.js';
import { removedMessage, RemovedNodeError } from './rejoin_guard.js';
import { loadStreamProgress, saveStreamProgress, StreamManager } from './stream_manager.js';
import type { StreamProgress } from './stream_progress.js';

const managers = new WeakMap<ClusterMembership, StreamManager>();

/** The StreamManager started for this membership, if any. */
export function streamOf(membership: ClusterMembership): StreamManager | undefined {
  return managers.get(membership);
}

/**
 * The state to enter the ring in. A fresh node (no membership table persisted in `dir`) with
 * `join-streaming yes` starts a join; a node whose join was interrupted resumes it; a node
 * restarted during CLUSTER LEAVE resumes the leave. A node that left the ring throws
 * RemovedNodeError: its data dir must not come back as a member (rejoin_guard.ts).
 */
export function joinState(config: ConfigView, dir: string, membershipFile: string, log: LogFn): { state: MemberState; progress: StreamProgress; auto: boolean } {
  const progress = loadStreamProgress(dir, log);
  // `join-streaming auto` (join_auto.ts): a fresh node is marked joining here; the caller's
  // preflight then decides whether it streams (the cluster holds data) or enters up (a new cluster).
  const mode = joinStreamingMode(config);
  const auto = mode === 'auto' && !progress.joining && !fs.existsSync(membershipFile);
  if (progress.left) throw new RemovedNodeError(removedMessage('this node', dir, 'it left with CLUSTER LEAVE'));
  if (!progress.joining && mode !== 'no' && !fs.existsSync(membershipFile)) {
    progress.joining = true;
    saveStreamProgress(dir, progress);
  }
  if (progress.joining) log('info', `stream: entering the ring as joining (${progress.tasks.length} unfinished tasks, ${progress.streamed.size} slots streamed so far)`);
  if (progress.leaving && !progress.joining) log('info', 'stream: entering the ring as leaving (CLUSTER LEAVE was in progress when this node stopped)');
  return { state: progress.joining ? 'joining' : progress.leaving ? 'leaving' : 'up', progress, auto };
}

export function startStreamManager(o: {
  membership: ClusterMembership;
  keyspace: Keyspace;
  config: ConfigView;
  log: LogFn;
  dir: string;
  progress: StreamProgress;
  onLeft?: () => void;
}): StreamManager {
  const table = o.membership.table;
  // The target ring places a member at its target weight (a weight change in progress).
  const members = (view: 'current' | 'target') => (): RingMember[] => table.members().map((m) => ringMemberOf(m, view));
  const current = new RingProvider(members('current'), () => ({ vnodes: o.config.getNumber('vnodes'), n: o.config.getNumber('replication-factor') }));
  const target = new RingProvider(members('target'), () => ({ vnodes: o.config.getNumber('vnodes'), n: o.config.getNumber('replication-factor'), view: 'target' }));
  const selfId = table.selfId;
  const m = new StreamManager({
    selfId,
    table,
    updateSelf: (change) => {
      o.membership.gossiper.updateSelf(change);
      // State and weight changes reach the membership file at once: a restart must not bring
      // back a state or weight the rest of the cluster has already moved past.
      o.membership.flushNow();
    },
    rings: { current: () => current.current(), target: () => target.current() },
    isUp: (id) => {
      const x = table.get(id);
      return id === selfId || (x !== undefined && x.liveness !== 'down');
    },
    bus: o.membership.bus,
    keyspace: o.keyspace,
    maxBytesPerSec: () => o.config.getNumber('stream-max-bytes-per-sec'),
    gossipIntervalMs: o.config.getNumber('gossip-interval-ms'),
    dir: o.dir,
    progress: o.progress,
    log: o.log,
    onLeft: o.onLeft ?? (() => o.log('warn', 'stream: this node left the ring; stop it')),
  });
  managers.set(o.membership, m);
  m.start();
  return m;
}

