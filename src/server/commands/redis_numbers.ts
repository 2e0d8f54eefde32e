/**
 * Redis's number parsing and the error texts that go with it, shared by the key and string
 * commands. `parseLongLong` is util.c string2ll exactly: optional '-', no '+', no leading zeros,
 * no spaces, at most 20 characters, inside the signed 64-bit range. "-0" is not a number.
 */
export const LLONG_MAX = (1n << 63n) - 1n;
export const LLONG_MIN = -(1n << 63n);
/** Redis's LONG_STR_SIZE: strings this long or longer are never numbers. */
const LONG_STR_SIZE = 21;

export const SYNTAX_ERROR = 'ERR syntax error';
export const NOT_INTEGER_ERROR = 'ERR value is not an integer or out of range';
export const OVERFLOW_ERROR = 'ERR increment or decrement would overflow';
export const DECREMENT_OVERFLOW_ERROR = 'ERR decrement would overflow';
export const INVALID_CURSOR_ERROR = 'ERR invalid cursor';

/** `ERR invalid expire time in '<cmd>' command` (Redis: addReplyErrorExpireTime). */
export function invalidExpireError(command: string): string {
  return `ERR invalid expire time in '${command}' command`;
}

const INTEGER_RE = /^(?:0|-?[1-9][0-9]*)$/;

/** The signed 64-bit integer `b` spells, or undefined (Redis string2ll). */
export function parseLongLong(b: Buffer): bigint | undefined {
  if (b.length === 0 || b.length >= LONG_STR_SIZE) return undefined;
  const s = b.toString('latin1');
  if (!INTEGER_RE.test(s)) return undefined;
  const v = BigInt(s);
  return v > LLONG_MAX || v < LLONG_MIN ? undefined : v;
}

/** Lower-case ASCII name of an argument, for option matching. */
export function optionName(b: Buffer): string {
  return b.toString('latin1').toLowerCase();
}
