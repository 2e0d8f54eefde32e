/**
 * Hard limits of the coordinator's data model. They bound what a peer, a disk or a client
 * token can make us allocate; configuration (`max-siblings`, `vclock-max-entries`) must stay
 * within them. Every length decoded from bytes is checked against one of these before use.
 */

/** Longest actor id (node id plus epoch), in UTF-8 bytes. Redis-style node ids are 40 hex chars. */
export const MAX_ACTOR_BYTES = 64;

/** Most entries a clock or a context may hold (after pruning: max(vclock-max-entries, protected actors)). */
export const MAX_CLOCK_ENTRIES = 512;

/** Most siblings an object may hold; `max-siblings` must not exceed it. */
export const MAX_SIBLINGS_LIMIT = 256;

/** Largest sibling value, in bytes (Redis's own ceiling for proto-max-bulk-len). */
export const MAX_SIBLING_VALUE_BYTES = 512 * 1024 * 1024;

/** Counters and millisecond timestamps are JS numbers: integers in [0, 2^53 - 1]. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
export const MAX_TIME_MS = Number.MAX_SAFE_INTEGER;

/** Longest context token accepted from a client, in characters (base64url). */
export const MAX_CONTEXT_TOKEN_CHARS = 65536;
