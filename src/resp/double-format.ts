/**
 * Formats a double the way Redis 7.0's addReplyDouble does: C's `%.17g` (17 significant digits,
 * exact decimal value rounded half-to-even as glibc does, trailing zeros dropped, exponent form
 * when the exponent is < -4 or >= 17, at least two exponent digits), with infinities as `inf` /
 * `-inf`, and NaN as glibc prints it: `nan`, or `-nan` when its sign bit is set (Lua's 0/0 in
 * Redis gives `-nan`). Pure; no I/O.
 *
 * Why not `toPrecision(17)`: JavaScript rounds exact ties away from zero and prints exponents
 * without zero padding; glibc rounds ties to even and prints `e+05`. Ties are rare but real
 * (1234567890123456.25 -> `1234567890123456.2`).
 */

/** Significant digits of `%.17g`. */
const G17_PRECISION_DIGITS = 17;
/** Digits asked of V8's exact formatter; enough to see whether the rest after digit 17 is a tie. */
const EXACT_PROBE_DIGITS = 40;

const signProbe = new Float64Array(1);
const signProbeBytes = new Uint8Array(signProbe.buffer);
/** Index of the byte holding the sign bit of a float64 in this machine's byte order. */
const SIGN_BYTE_INDEX = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 7 : 0;

export function formatDouble(value: number): string {
  if (Number.isNaN(value)) {
    signProbe[0] = value;
    return (signProbeBytes[SIGN_BYTE_INDEX]! & 0x80) !== 0 ? '-nan' : 'nan';
  }
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';

  const negative = value < 0;
  // V8's toExponential/toPrecision with an explicit precision are exact (bignum based).
  const probe = Math.abs(value).toExponential(EXACT_PROBE_DIGITS - 1); // "d.ddd...e+X"
  const ePos = probe.indexOf('e');
  let exponent = Number(probe.slice(ePos + 1));
  const allDigits = probe[0]! + probe.slice(2, ePos);
  const digits = allDigits.slice(0, G17_PRECISION_DIGITS).split('').map(Number);
  const rest = allDigits.slice(G17_PRECISION_DIGITS);

  // Round the 17 digits by the rest: above half up, below half down, exact half to even.
  const first = rest.charCodeAt(0) - 48;
  const restAfterFirstIsZero = /^0*$/.test(rest.slice(1));
  const roundUp = first > 5 || (first === 5 && (!restAfterFirstIsZero || digits[G17_PRECISION_DIGITS - 1]! % 2 === 1));
  if (roundUp) {
    let i = G17_PRECISION_DIGITS - 1;
    while (i >= 0) {
      const d = digits[i]! + 1;
      if (d < 10) {
        digits[i] = d;
        break;
      }
      digits[i] = 0;
      i--;
    }
    if (i < 0) {
      // 99...9 rounded up to 100...0: one more power of ten.
      digits.unshift(1);
      digits.pop();
      exponent++;
    }
  }

  let text: string;
  const d = digits.join('');
  if (exponent < -4 || exponent >= G17_PRECISION_DIGITS) {
    const mantissa = stripZeros(d[0]! + '.' + d.slice(1));
    const absExp = Math.abs(exponent);
    text = `${mantissa}e${exponent < 0 ? '-' : '+'}${absExp < 10 ? '0' : ''}${absExp}`;
  } else if (exponent >= 0) {
    text = stripZeros(d.slice(0, exponent + 1) + '.' + d.slice(exponent + 1));
  } else {
    text = stripZeros('0.' + '0'.repeat(-exponent - 1) + d);
  }
  return negative ? '-' + text : text;
}

/** "1.2300" -> "1.23", "5.000" -> "5" (only called on strings that contain a '.'). */
function stripZeros(s: string): string {
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* '0' */) end--;
  if (s.charCodeAt(end - 1) === 46 /* '.' */) end--;
  return s.slice(0, end);
}
