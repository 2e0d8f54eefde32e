/**
 * Reading the coordinator's settings from the running config (ConfigView), on every request, and
 * a connection's CLIENT QUORUM override. Kept apart from coordinator.ts so the server wires the
 * Coordinator as `settings: () => settingsFromConfig(config)`.
 *
 * Config keys (ARCHITECTURE.md section 4): `read-quorum`, `write-quorum` (a positive integer or
 * one|quorum|all|local_one|local_quorum|each_quorum), `sloppy-quorum` (yes|no), and
 * `request-timeout-ms` (the per-request deadline; not in the schema yet: the server adds it
 * next to the others). notfound_ok is Riak 2's default, true, and not configurable; neither is
 * the read fan-out ('quorum': get_fsm.ts ReadFanout).
 */

import { NO_CALL_OPTIONS, type CallOptions, type CoordinatorSettings } from './coordinator.js';
import { parseQuorumSpec } from './quorum.js';
import { reportsChanges } from '../config/config.js';
import type { ConfigView } from '../server/types.js';

export const READ_QUORUM_KEY = 'read-quorum';
export const WRITE_QUORUM_KEY = 'write-quorum';
export const SLOPPY_QUORUM_KEY = 'sloppy-quorum';
export const REQUEST_TIMEOUT_KEY = 'request-timeout-ms';

/** Suggested default for `request-timeout-ms`: well above a loaded loopback round trip. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** The last settings built, by the raw config values they came from (read on every request). */
let lastSettings: { r: string; w: string; sloppy: boolean; timeoutMs: number; settings: CoordinatorSettings } | undefined;

/**
 * The settings of a config that reports its changes, kept until it reports one of their keys:
 * then a request reads no config value at all (each getString was a key lookup, a toLowerCase
 * and two Map lookups, four reads per request on node 0: a visible share of its Map lookups).
 * One entry and one listener per config (several nodes may run in one process); the last one
 * used is checked first, by identity.
 */
interface Watched {
  readonly config: ConfigView;
  settings: CoordinatorSettings | undefined;
}

const watchedConfigs = new WeakMap<ConfigView, Watched>();
let lastWatched: Watched | undefined;

const SETTINGS_KEYS: ReadonlySet<string> = new Set([READ_QUORUM_KEY, WRITE_QUORUM_KEY, SLOPPY_QUORUM_KEY, REQUEST_TIMEOUT_KEY]);

/**
 * Throws QuorumError if a quorum value is malformed (the schema should have refused it).
 * CONFIG SET applies to the next request: a config without onChange is read on every call (the
 * parsed object reused while those values stay the same); one with it is read again after it
 * reported a change of one of these keys (its listeners run synchronously inside the change).
 */
export function settingsFromConfig(config: ConfigView): CoordinatorSettings {
  let w = lastWatched;
  if (w === undefined || w.config !== config) {
    if (!reportsChanges(config)) return readSettings(config);
    w = watchedConfigs.get(config);
    if (w === undefined) {
      const entry: Watched = { config, settings: undefined };
      config.onChange((key) => {
        if (SETTINGS_KEYS.has(key)) entry.settings = undefined;
      });
      watchedConfigs.set(config, entry);
      w = entry;
    }
    lastWatched = w;
  }
  return (w.settings ??= readSettings(config));
}

function readSettings(config: ConfigView): CoordinatorSettings {
  const r = config.getString(READ_QUORUM_KEY);
  const w = config.getString(WRITE_QUORUM_KEY);
  const sloppy = config.getBool(SLOPPY_QUORUM_KEY);
  const timeoutMs = config.getNumber(REQUEST_TIMEOUT_KEY);
  const last = lastSettings;
  if (last !== undefined && last.r === r && last.w === w && last.sloppy === sloppy && last.timeoutMs === timeoutMs) return last.settings;
  const settings: CoordinatorSettings = Object.freeze({
    readQuorum: parseQuorumSpec(r),
    writeQuorum: parseQuorumSpec(w),
    sloppyQuorum: sloppy,
    notfoundOk: true,
    requestTimeoutMs: timeoutMs,
    // R replicas first, the rest when needed (get_fsm.ts ReadFanout); not a config key yet.
    readFanout: 'quorum',
  });
  lastSettings = { r, w, sloppy, timeoutMs, settings };
  return settings;
}

/** A connection's CLIENT QUORUM override (ClientState.readQuorum/writeQuorum) as call options. */
export function callOptionsFor(client: { readonly readQuorum?: string; readonly writeQuorum?: string }): CallOptions {
  // No CLIENT QUORUM (nearly every connection): one shared object, not one per command.
  if (client.readQuorum === undefined && client.writeQuorum === undefined) return NO_CALL_OPTIONS;
  return {
    ...(client.readQuorum === undefined ? {} : { r: parseQuorumSpec(client.readQuorum) }),
    ...(client.writeQuorum === undefined ? {} : { w: parseQuorumSpec(client.writeQuorum) }),
  };
}
