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
    // Not v % 128: a time in ms is over 2^31, so v is a double, and V8 compiles a double's % to
    // a call of C's fmod (object_plain_write.ts putVarint, 02f4101).
    const high = Math.floor(v / 128);
    buf[pos++] = (v - high * 128) | 0x80;
    v = high;
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
      const high = Math.floor(v / 128);
      this.scratch[i++] = (v - high * 128) | 0x80;
      v = high;
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
    const out = Buffer.allocUnsafe(length);
    this.buf.copy(out, 0, this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** Strict UTF-8 text of `length` bytes (invalid UTF-8 is corruption: it would not round-trip). */
  utf8(length: number, what: string): string {
    if (length > this.remaining) {
      throw this.fail(`${what} length ${length} exceeds the ${this.remaining} bytes that remain`);
    }
    const buf = this.buf;
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    const known = recentText(buf, start, end);
    if (known !== undefined) return known;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((buf[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    let text: string;
    if (ascii) {
      // ASCII is its own strict UTF-8 decoding, and latin1 decodes it without TextDecoder's cost.
      text = buf.toString('latin1', start, end);
    } else {
      try {
        text = STRICT_UTF8.decode(buf.subarray(start, end));
      } catch {
        throw this.fail(`${what} is not valid UTF-8`);
      }
    }
    rememberText(buf, start, end, text);
    return text;
  }

  end(what: string): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} trailing bytes after ${what}`);
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Texts ByteReader.utf8 decoded lately, with their bytes: the actors of objects (a handful per
 * cluster, in every object read) come back as the same strings without a decode or a new string
 * (which also keeps their hashes for the clock Maps). A few slots, replaced round-robin; only
 * short texts.
 */
const RECENT_TEXT_SLOTS = 8;
const RECENT_TEXT_MAX_BYTES = 64;
const recentBytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(RECENT_TEXT_SLOTS).fill(undefined);
const recentTexts: string[] = new Array<string>(RECENT_TEXT_SLOTS).fill('');
let recentNext = 0;

function recentText(buf: Buffer, start: number, end: number): string | undefined {
  const length = end - start;
  if (length > RECENT_TEXT_MAX_BYTES) return undefined;
  for (let k = 0; k < RECENT_TEXT_SLOTS; k++) {
    const b = recentBytes[k];
    if (b === undefined || b.length !== length) continue;
    let i = 0;
    while (i < length && b[i] === buf[start + i]) i++;
    if (i === length) return recentTexts[k];
  }
  return undefined;
}

function rememberText(buf: Buffer, start: number, end: number, text: string): void {
  if (end - start > RECENT_TEXT_MAX_BYTES) return;
  recentBytes[recentNext] = Buffer.from(buf.subarray(start, end));
  recentTexts[recentNext] = text;
  recentNext = (recentNext + 1) % RECENT_TEXT_SLOTS;
}
