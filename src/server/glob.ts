/**
 * Redis's glob-style pattern matching (util.c stringmatchlen), byte for byte, for KEYS and
 * SCAN MATCH: `*` any run, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges are
 * swapped), `\x` a literal x. Like Redis: an unclosed `[` matches as if closed at the end of
 * the pattern; bytes are compared as C `char` (signed) in ranges; a recursion guard returns
 * "no match" past MATCH_NESTING_MAX nested stars; once the rest of a pattern after a `*` failed
 * at every position, earlier stars stop trying longer matches (no exponential blow-up).
 */

/** Redis's guard against abusive patterns such as `a*a*a*...`. */
const MATCH_NESTING_MAX = 1000;

const STAR = 0x2a;
const QUESTION = 0x3f;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

/** A C `char` on x86/arm-linux builds of Redis is signed. */
const signed = (b: number): number => (b > 127 ? b - 256 : b);

export function globMatch(pattern: Buffer, subject: Buffer): boolean {
  const skip = { longer: false };
  return matchImpl(pattern, 0, subject, 0, skip, 0);
}

/**
 * KEYS and SCAN treat exactly `*` as "all keys" without matching (Redis's fast path, which also
 * returns the empty key that stringmatchlen itself would not match).
 */
export function matchesEverything(pattern: Buffer): boolean {
  return pattern.length === 1 && pattern[0] === STAR;
}

function matchImpl(pat: Buffer, pi: number, str: Buffer, si: number, skip: { longer: boolean }, nesting: number): boolean {
  if (nesting > MATCH_NESTING_MAX) return false;
  // Reads past the end see the sds NUL terminator, as in C.
  const p = (i: number): number => (i < pat.length ? pat[i]! : 0);
  let plen = pat.length - pi;
  let slen = str.length - si;
  while (plen > 0 && slen > 0) {
    const c = p(pi);
    if (c === STAR) {
      while (plen > 0 && p(pi + 1) === STAR) {
        pi++;
        plen--;
      }
      if (plen === 1) return true;
      while (slen > 0) {
        if (matchImpl(pat, pi + 1, str, si, skip, nesting + 1)) return true;
        if (skip.longer) return false;
        si++;
        slen--;
      }
      skip.longer = true;
      return false;
    } else if (c === QUESTION) {
      si++;
      slen--;
    } else if (c === LBRACKET) {
      pi++;
      plen--;
      const not = p(pi) === CARET;
      if (not) {
        pi++;
        plen--;
      }
      let match = false;
      const sc = str[si]!;
      for (;;) {
        if (p(pi) === BACKSLASH && plen >= 2) {
          pi++;
          plen--;
          if (p(pi) === sc) match = true;
        } else if (p(pi) === RBRACKET) {
          break;
        } else if (plen === 0) {
          pi--;
          plen++;
          break;
        } else if (plen >= 3 && p(pi + 1) === DASH) {
          let start = signed(p(pi));
          let end = signed(p(pi + 2));
          if (start > end) [start, end] = [end, start];
          const ch = signed(sc);
          pi += 2;
          plen -= 2;
          if (ch >= start && ch <= end) match = true;
        } else if (p(pi) === sc) {
          match = true;
        }
        pi++;
        plen--;
      }
      if (not) match = !match;
      if (!match) return false;
      si++;
      slen--;
    } else {
      if (c === BACKSLASH && plen >= 2) {
        pi++;
        plen--;
      }
      if (p(pi) !== str[si]) return false;
      si++;
      slen--;
    }
    pi++;
    plen--;
    if (slen === 0) {
      while (plen > 0 && p(pi) === STAR) {
        pi++;
        plen--;
      }
      break;
    }
  }
  return plen === 0 && slen === 0;
}
