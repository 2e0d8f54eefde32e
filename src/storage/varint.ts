/**
 * LEB128-style unsigned varints for integers up to 2^53 (JS numbers), and a bounds-checked
 * reader over a byte range. Every read past the range or malformed varint throws FormatError,
 * which callers turn into StorageError('ECORRUPT', ...) naming the file.
 */

/** A malformed byte sequence: decoding code throws it, I/O code turns it into ECORRUPT. */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

/** Most bytes a varint of a safe integer can take (8 x 7 = 56 bits >= 53). */
export const VARINT_BYTES_MAX = 8;

export function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Writes n at buf[pos] and returns the position after it; the caller sized buf. */
export function putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 128) {
    // Not n % 128: a time in ms is over 2^31, so n is a double, and V8 compiles a double's % to
    // a call of C's fmod (as in coordinator/bytes.ts).
    const high = Math.floor(n / 128);
    buf[pos++] = (n - high * 128) | 0x80;
    n = high;
  }
  buf[pos++] = n;
  return pos;
}

/** Sequential, bounds-checked reader over buf[pos, end). */
export class ByteReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos >= this.end) throw new FormatError('byte past end');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.pos >= this.end) throw new FormatError('varint past end');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new FormatError('varint over 2^53');
        return result;
      }
      mul *= 128;
    }
    throw new FormatError('varint too long');
  }

  /** A view (not a copy) of the next n bytes; n is checked against what is left first. */
  bytes(n: number): Buffer {
    if (n < 0 || n > this.end - this.pos) throw new FormatError(`length ${n} past end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}
