/**
 * Limits of the cluster bus and of gossip: every size a peer can send and every queue a peer can
 * grow has a named cap here, checked before anything is allocated. Units are last in the name.
 * Shared by frame.ts, handshake.ts, connection.ts, bus.ts, gossip_codec.ts and membership.ts.
 */

/** Hard ceiling of one bus frame (length field value); `maxFrameBytes` may be set lower, never higher. */
export const MAX_FRAME_BYTES_LIMIT = 64 * 1024 * 1024;
/** Default frame limit: the ceiling. Object transfers are far smaller (max-value-bytes 1 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = MAX_FRAME_BYTES_LIMIT;
/**
 * Frame limit while the handshake runs: an unauthenticated peer can make us buffer at most this.
 * The largest handshake message is CHALLENGE: 1 + 32 + 1 + 255 bytes.
 */
export const MAX_HANDSHAKE_FRAME_BYTES = 512;

/** Time a dialer or an accepted socket has to complete the handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Time a TCP connect may take before the attempt counts as failed. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Reconnect backoff: first retry after about this (equal jitter: half fixed, half random). */
export const DEFAULT_RECONNECT_BASE_MS = 50;
/** Reconnect backoff ceiling: a dead peer costs one connect attempt per this interval at most. */
export const DEFAULT_RECONNECT_MAX_MS = 5_000;

/**
 * A link that is not connected and has carried no request for this long stops reconnecting and
 * is forgotten (addresses of departed nodes do not cost connect attempts forever).
 */
export const DEFAULT_LINK_IDLE_MS = 60_000;

/** Requests of ours awaiting a response on one connection; more is refused with BusOverloadedError. */
export const DEFAULT_MAX_PENDING_REQUESTS = 65_536;
/** Requests of a peer being handled at once on one connection; past it we stop reading its socket. */
export const DEFAULT_MAX_INFLIGHT_INCOMING = 1_024;
/** Bytes queued in a socket's write buffer past which new requests are refused (peer not reading). */
export const DEFAULT_MAX_OUTBOUND_BUFFER_BYTES = 128 * 1024 * 1024;
/** Accepted sockets still in their handshake; more are closed at once (connection floods). */
export const MAX_UNAUTHENTICATED_CONNECTIONS = 128;
/** Authenticated inbound connections; a cluster of MAX_MEMBERS nodes needs one per peer. */
export const MAX_INBOUND_CONNECTIONS = 4_096;

/** Node ids: printable ASCII without spaces (they appear in CLUSTER NODES lines). */
export const MAX_NODE_ID_BYTES = 64;
/** Host names or addresses in handshake and gossip records. */
export const MAX_HOST_BYTES = 255;
/** Datacenter and rack names in gossip records. */
export const MAX_DC_BYTES = 64;
export const MAX_RACK_BYTES = 64;
/** Error text carried by an ERROR response frame (longer texts are cut). */
export const MAX_ERROR_TEXT_BYTES = 1_024;

/** Members one table may hold (the ring accepts MAX_RING_MEMBERS = 4096 as well). */
export const MAX_MEMBERS = 4_096;
/** Relative capacity of one node (ring tokens = round(vnodes x weight)). */
export const MAX_WEIGHT = 1_000;
/** Heartbeat and incarnation counters travel as 48-bit unsigned integers. */
export const MAX_COUNTER = 2 ** 48 - 1;
