/**
 * Limits of the request parser: every length a client sends is checked against one of these
 * before the parser waits for (or assembles) that many bytes.
 *
 * Redis 7.0 semantics, which the parser follows:
 * - maxInlineBytes: PROTO_INLINE_MAX_SIZE, 64 KiB. An inline line, and the `*<n>` / `$<n>`
 *   header lines, longer than this get `too big inline request` / `too big mbulk count string`
 *   / `too big bulk count string`.
 * - maxBulkBytes: `proto-max-bulk-len`. A larger `$<n>` gets `invalid bulk length`.
 * - maxMultibulkLength: a larger `*<n>` gets `invalid multibulk length` (Redis 7: INT_MAX;
 *   Redis before 7 and ringkv's default: 1024*1024).
 * - unauthenticated: set while the client must still AUTH. Checked after the limits above (so
 *   `*3000000000` is still `invalid multibulk length`), with Redis's texts
 *   `unauthenticated multibulk length` (Redis: more than 10 arguments) and
 *   `unauthenticated bulk length` (Redis: more than 16384 bytes).
 *
 * Memory: after next() has returned undefined, the parser holds at most
 * (maxMultibulkLength - 1) * maxBulkBytes bytes of finished arguments of the command in
 * progress (its bufferedBytes also counts ARG_HEAP_OVERHEAD_BYTES per argument) plus
 * max(maxInlineBytes + 1, maxBulkBytes + 2) bytes of the part in progress. The server caps a
 * whole query (Redis's client-query-buffer-limit) by checking bufferedBytes.
 */
export interface ParserLimits {
  maxInlineBytes: number;
  maxBulkBytes: number;
  maxMultibulkLength: number;
  unauthenticated?: UnauthenticatedLimits | undefined;
}

export interface UnauthenticatedLimits {
  maxMultibulkLength: number;
  maxBulkBytes: number;
}

/** PROTO_INLINE_MAX_SIZE. */
export const INLINE_MAX_BYTES = 64 * 1024;
/** Redis's default proto-max-bulk-len (ringkv's server passes its own, smaller value). */
export const REDIS_PROTO_MAX_BULK_BYTES = 512 * 1024 * 1024;
/** Arguments per command for an authenticated client. */
export const MULTIBULK_MAX_LENGTH = 1024 * 1024;
/** Redis's limits before AUTH (networking.c: `ll > 10`, `ll > 16384` when authRequired). */
export const UNAUTHENTICATED_MULTIBULK_MAX_LENGTH = 10;
export const UNAUTHENTICATED_BULK_MAX_BYTES = 16384;

export const UNAUTHENTICATED_LIMITS: UnauthenticatedLimits = Object.freeze({
  maxMultibulkLength: UNAUTHENTICATED_MULTIBULK_MAX_LENGTH,
  maxBulkBytes: UNAUTHENTICATED_BULK_MAX_BYTES,
});

/** Redis's defaults for an authenticated client. */
export const DEFAULT_PARSER_LIMITS: Readonly<ParserLimits> = Object.freeze({
  maxInlineBytes: INLINE_MAX_BYTES,
  maxBulkBytes: REDIS_PROTO_MAX_BULK_BYTES,
  maxMultibulkLength: MULTIBULK_MAX_LENGTH,
});
