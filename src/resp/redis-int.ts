/**
 * Redis's string2ll (util.c) on a byte range: the only integers it accepts are `0` and an
 * optional '-' followed by a digit 1-9 and more digits, fitting a signed 64-bit integer, in
 * fewer than 21 bytes. So `+3`, `03`, `-0`, `1e3`, ` 3`, `` (empty) are all rejected. Pure.
 *
 * Returns the value, or undefined when string2ll would fail. Values beyond 2^53 in magnitude
 * come back rounded (still with the right sign and far above any parser limit).
 */

/** LONG_STR_SIZE: string2ll rejects inputs of this many bytes or more. */
const LONG_STR_MAX_BYTES = 20;
const INT64_MAX_DIGITS = '9223372036854775807';
const INT64_MIN_DIGITS = '9223372036854775808';

export function parseRedisInt(buf: Buffer, start: number, end: number): number | undefined {
  const len = end - start;
  if (len <= 0 || len > LONG_STR_MAX_BYTES) return undefined;
  if (len === 1 && buf[start] === 48 /* '0' */) return 0;
  let p = start;
  const negative = buf[p] === 45; /* '-' */
  if (negative) {
    p++;
    if (p === end) return undefined;
  }
  const first = buf[p]!;
  if (first < 49 /* '1' */ || first > 57) return undefined;
  let value = 0;
  for (let i = p; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return undefined;
    value = value * 10 + (c - 48);
  }
  const digits = end - p;
  if (digits > INT64_MAX_DIGITS.length) return undefined;
  if (digits === INT64_MAX_DIGITS.length) {
    const text = buf.toString('latin1', p, end);
    if (text > (negative ? INT64_MIN_DIGITS : INT64_MAX_DIGITS)) return undefined;
  }
  return negative ? -value : value;
}
