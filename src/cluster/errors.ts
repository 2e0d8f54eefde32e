/**
 * Typed operating errors of the cluster bus and gossip. Each has a stable `code` so callers map
 * them to replies and metrics (`NOQUORUM` counting, fallbacks). Programmer errors assert instead.
 */

export type ClusterErrorCode =
  | 'ERR_FRAME_TOO_LARGE' // a peer announced a frame past the limit (connection dropped)
  | 'ERR_FRAME_MALFORMED' // a frame that cannot be valid (length below the header, bad type)
  | 'ERR_HANDSHAKE' // the peer failed the handshake (wrong secret, bad message, timeout)
  | 'ERR_BUS_TIMEOUT' // no response within the request's timeout
  | 'ERR_BUS_CLOSED' // the connection or the bus closed before a response came
  | 'ERR_PEER_UNREACHABLE' // the link to the peer is down and waiting to reconnect
  | 'ERR_PEER_ID_MISMATCH' // the address answers with another node id than the caller expected
  | 'ERR_SELF_CONNECTION' // the address is this node itself (a seed list may contain it)
  | 'ERR_BUS_OVERLOADED' // too many pending requests or a full write buffer toward the peer
  | 'ERR_REMOTE' // the peer's handler failed; `remoteCode` says how
  | 'ERR_GOSSIP_DECODE'; // a gossip payload that does not decode within its limits

export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  constructor(code: ClusterErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'ClusterError';
  }
}

/** An error answered by the peer's handler (ERROR frame). `remoteCode` is the handler's error code. */
export class RemoteError extends ClusterError {
  readonly remoteCode: string;
  constructor(remoteCode: string, message: string) {
    super('ERR_REMOTE', message);
    this.remoteCode = remoteCode;
    this.name = 'RemoteError';
  }
}

export function isClusterError(e: unknown, code?: ClusterErrorCode): e is ClusterError {
  return e instanceof ClusterError && (code === undefined || e.code === code);
}
