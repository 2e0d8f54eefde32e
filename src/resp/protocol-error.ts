/**
 * A request the client sent breaks the RESP grammar or a parser limit. Redis answers with the
 * error reply and closes the connection after writing it; the server does the same.
 *
 * `message` is the exact Redis 7 reply text without the leading '-', e.g.
 * `ERR Protocol error: invalid bulk length`. `reply` is the exact reply bytes: use it to answer
 * byte for byte, because `expected '$', got 'X'` carries the offending raw byte (Redis prints it
 * with %c), which a UTF-8 encoding of `message` would change when the byte is >= 0x80.
 */
export class ProtocolError extends Error {
  readonly code = 'ERR_RESP_PROTOCOL';
  readonly reply: Buffer;

  /** `detail` is the text after `ERR Protocol error: `, one byte per char (latin1). */
  constructor(detail: string) {
    // Redis's addReplyErrorFormat turns CR and LF into spaces so the reply stays one line.
    super(`ERR Protocol error: ${detail.replace(/[\r\n]/g, ' ')}`);
    this.name = 'ProtocolError';
    this.reply = Buffer.from(`-${this.message}\r\n`, 'latin1');
  }
}

/** The texts of networking.c (Redis 7.0), as ProtocolError details. */
export const PROTOCOL_ERROR = {
  tooBigInline: 'too big inline request',
  unbalancedQuotes: 'unbalanced quotes in request',
  tooBigMultibulkCount: 'too big mbulk count string',
  invalidMultibulkLength: 'invalid multibulk length',
  unauthenticatedMultibulkLength: 'unauthenticated multibulk length',
  tooBigBulkCount: 'too big bulk count string',
  invalidBulkLength: 'invalid bulk length',
  unauthenticatedBulkLength: 'unauthenticated bulk length',
  /** `expected '$', got 'X'` with X the raw byte found where a bulk header should start. */
  expectedDollar: (byte: number): string => `expected '$', got '${String.fromCharCode(byte)}'`,
} as const;
