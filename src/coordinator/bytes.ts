/**
 * Byte-level helpers for the coordinator's binary formats: unsigned LEB128 varints limited to
 * 2^53 - 1 (JS safe integers), and a bounds-checked reader that never allocates on a length it
 * has not checked against the bytes that remain and a named limit.
 *
 * Varints are canonical: the shortest encoding only (a trailing 0x00 group is rejected), so one
 * value has one encoding and decode(encode(x)) is byte-identical, which Merkle hashing relies on.
 */

import assert from 'node:assert';

/** A varint of a safe integer takes at most 8 bytes (8 x 7 = 56 bits >= 53). */
const MAX_VARINT_BYTES = 8;

export function varintLength(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes `value` as a varint at `pos` (the caller sized `buf` with varintLength); returns the next position. */
export function writeVarint(buf: Buffer, pos: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, 'varint out of range');
  let v = value;
  while (v >= 0x80) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** Appends bytes into a growable list; cheap enough for objects of a few KB. */
export class ByteWriter {
  private chunks: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(MAX_VARINT_BYTES);
  length = 0;

  u8(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, 'u8 out of range');
    const b = Buffer.allocUnsafe(1);
    b[0] = value;
    this.push(b);
  }

  varint(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) assert.fail(`varint out of range: ${value}`);
    let v = value;
    let i = 0;
    while (v >= 0x80) {
      this.scratch[i++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.scratch[i++] = v;
    this.push(Buffer.from(this.scratch.subarray(0, i)));
  }

  bytes(data: Buffer): void {
    this.push(data);
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
}

/**
 * Reads a buffer front to back. Every failure throws the error built by `fail`, so one reader
 * serves both objects (CorruptObjectError) and context tokens (ContextError).
 */
export class ByteReader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly fail: (message: string) => Error,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(what: string): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw this.fail(`truncated reading ${what}`);
    this.pos++;
    return b;
  }

  /** A canonical varint no greater than `max`. */
  varint(what: string, max: number): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.buf[this.pos];
      if (b === undefined) throw this.fail(`truncated reading ${what}`);
      this.pos++;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw this.fail(`non-canonical varint for ${what}`);
        if (value > max) throw this.fail(`${what} ${value} exceeds limit ${max}`);
        return value;
      }
      scale *= 128;
    }
    throw this.fail(`varint too long for ${what}`);
  }

  /** A copy of the next `length` bytes; `length` was read with a limit, and is checked here against what remains. */
  bytes(length: number, what: string): Buffer {
    if (length > this.remaining) {
      throw this.fail(`${what} length ${length} exceeds the ${this.remaining} bytes that remain`);
    }
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length;
    return out;
  }

  /** Strict UTF-8 text of `length` bytes (invalid UTF-8 is corruption: it would not round-trip). */
  utf8(length: number, what: string): string {
    if (length > this.remaining) {
      throw this.fail(`${what} length ${length} exceeds the ${this.remaining} bytes that remain`);
    }
    const view = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    try {
      return STRICT_UTF8.decode(view);
    } catch {
      throw this.fail(`${what} is not valid UTF-8`);
    }
  }

  end(what: string): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} trailing bytes after ${what}`);
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
