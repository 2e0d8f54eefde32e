/**
 * Splits an inline request line into arguments exactly as Redis's sdssplitargs (sds.c) does.
 * Pure; operates on a byte range so it never converts the line to a string.
 *
 * - Arguments are separated by runs of C isspace bytes (space, \t, \n, \v, \f, \r); inside an
 *   unquoted argument only space, \n, \r, \t end it (\v and \f are kept as data, as in Redis).
 * - "double quotes": \xHH (two hex digits), \n \r \t \b \a, and \<any> for that byte.
 * - 'single quotes': only \' is an escape.
 * - A quote may start in the middle of an argument (ab"cd" is abcd); a closing quote must be
 *   followed by whitespace or the end of the line, and an unterminated quote is an error.
 *
 * Returns the arguments (an empty array for a blank line), or undefined for unbalanced quotes.
 * The caller guarantees the range has no NUL byte (Redis never sees one: its strchr stops there).
 * Plain arguments are zero-copy slices of `buf`; quoted ones are new Buffers.
 */

const SPACE = 32;
const TAB = 9;
const LF = 10;
const CR = 13;
const DQUOTE = 34;
const SQUOTE = 39;
const BACKSLASH = 92;

const isSpace = (c: number): boolean => c === SPACE || (c >= TAB && c <= CR); // \t \n \v \f \r

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function unescape(c: number): number {
  switch (c) {
    case 110: // n
      return LF;
    case 114: // r
      return CR;
    case 116: // t
      return TAB;
    case 98: // b
      return 8;
    case 97: // a
      return 7;
    default:
      return c;
  }
}

export function splitInlineArgs(buf: Buffer, start: number, end: number): Buffer[] | undefined {
  // `at(i)` is the C string view: 0 past the end of the line.
  const at = (i: number): number => (i < end ? buf[i]! : 0);
  const args: Buffer[] = [];
  let p = start;
  for (;;) {
    while (p < end && isSpace(buf[p]!)) p++;
    if (p >= end) return args;

    const tokenStart = p;
    let tokenEnd = -1; // set when a plain (never quoted) token ends
    let bytes: number[] | null = null; // the token's bytes once a quote made it non-plain
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = at(p);
      if (inDouble) {
        if (c === BACKSLASH && at(p + 1) === 120 /* x */ && hexValue(at(p + 2)) >= 0 && hexValue(at(p + 3)) >= 0) {
          bytes!.push(hexValue(at(p + 2)) * 16 + hexValue(at(p + 3)));
          p += 3;
        } else if (c === BACKSLASH && at(p + 1) !== 0) {
          p++;
          bytes!.push(unescape(at(p)));
        } else if (c === DQUOTE) {
          const after = at(p + 1);
          if (after !== 0 && !isSpace(after)) return undefined;
          done = true;
        } else if (c === 0) {
          return undefined;
        } else {
          bytes!.push(c);
        }
      } else if (inSingle) {
        if (c === BACKSLASH && at(p + 1) === SQUOTE) {
          p++;
          bytes!.push(SQUOTE);
        } else if (c === SQUOTE) {
          const after = at(p + 1);
          if (after !== 0 && !isSpace(after)) return undefined;
          done = true;
        } else if (c === 0) {
          return undefined;
        } else {
          bytes!.push(c);
        }
      } else {
        switch (c) {
          case SPACE:
          case LF:
          case CR:
          case TAB:
          case 0:
            done = true;
            tokenEnd = p;
            break;
          case DQUOTE:
          case SQUOTE:
            if (c === DQUOTE) inDouble = true;
            else inSingle = true;
            if (bytes === null) bytes = Array.from(buf.subarray(tokenStart, p));
            break;
          default:
            break; // part of the plain run; a token never goes back to unquoted after a quote
        }
      }
      if (c !== 0) p++;
    }
    args.push(bytes === null ? buf.subarray(tokenStart, tokenEnd) : Buffer.from(bytes));
  }
}
