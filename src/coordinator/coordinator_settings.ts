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
 * Throws QuorumError if a quorum value is malformed (the schema should have refused it).
 * The config is read on every call (so CONFIG SET applies to the next request); the parsed
 * object is reused while those values stay the same (the request path runs this per request).
 */
export function settingsFromConfig(config: ConfigView): CoordinatorSettings {
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
