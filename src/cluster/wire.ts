/**
 * Bounded binary reading and writing for cluster payloads (gossip messages, the persisted table).
 * ByteReader checks every length against the bytes that remain and against a named cap before it
 * slices anything, and throws ClusterError('ERR_GOSSIP_DECODE') on any violation, so a peer's
 * bytes can never make us allocate or loop past a limit. Integers are big-endian; u48 carries the
 * heartbeat and incarnation counters (MAX_COUNTER).
 */
import assert from 'node:assert';
import { ClusterError } from './errors.js';

export class ByteWriter {
  #buf: Buffer;
  #pos = 0;

  constructor(initialBytes = 256) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  u8(v: number): this {
    // `if` + assert.fail, not assert(cond, `...`): that message string was built on every call (hot path).
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xff)) assert.fail(`u8 out of range: ${v}`);
    this.#room(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  u16(v: number): this {
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffff)) assert.fail(`u16 out of range: ${v}`);
    this.#room(2);
    this.#pos = this.#buf.writeUInt16BE(v, this.#pos);
    return this;
  }

  u32(v: number): this {
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff)) assert.fail(`u32 out of range: ${v}`);
    this.#room(4);
    this.#pos = this.#buf.writeUInt32BE(v, this.#pos);
    return this;
  }

  u48(v: number): this {
    if (!(Number.isInteger(v) && v >= 0 && v <= 2 ** 48 - 1)) assert.fail(`u48 out of range: ${v}`);
    this.#room(6);
    this.#pos = this.#buf.writeUIntBE(v, this.#pos, 6);
    return this;
  }

  f64(v: number): this {
    assert(Number.isFinite(v), 'f64 must be finite');
    this.#room(8);
    this.#pos = this.#buf.writeDoubleBE(v, this.#pos);
    return this;
  }

  bytes(b: Buffer): this {
    this.#room(b.length);
    b.copy(this.#buf, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** A string with a u8 length prefix; the caller's cap must be <= 255. */
  str8(s: string, maxBytes: number): this {
    // The empty string (a replica put with no hint: every write's fan-out) makes no Buffer.
    if (s.length === 0) return this.u8(0);
    const b = Buffer.from(s, 'utf8');
    if (!(b.length <= maxBytes && b.length <= 0xff)) assert.fail(`string of ${b.length} bytes over its cap ${maxBytes}`);
    return this.u8(b.length).bytes(b);
  }

  finish(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }
}

export class ByteReader {
  readonly #buf: Buffer;
  #pos = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  #need(n: number, what: string): void {
    if (this.#buf.length - this.#pos < n) fail(`truncated ${what}: need ${n} bytes, ${this.#buf.length - this.#pos} left`);
  }

  u8(what = 'u8'): number {
    this.#need(1, what);
    return this.#buf[this.#pos++]!;
  }

  u16(what = 'u16'): number {
    this.#need(2, what);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.#need(4, what);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u48(what = 'u48'): number {
    this.#need(6, what);
    const v = this.#buf.readUIntBE(this.#pos, 6);
    this.#pos += 6;
    return v;
  }

  f64(what = 'f64'): number {
    this.#need(8, what);
    const v = this.#buf.readDoubleBE(this.#pos);
    this.#pos += 8;
    return v;
  }

  bytes(n: number, what = 'bytes'): Buffer {
    this.#need(n, what);
    const b = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  /**
   * A u8-prefixed UTF-8 string of at most maxBytes; `minBytes` rejects empty ones where needed.
   * Decoded from the buffer's range, no view made; an empty one is '' with no decode at all (a
   * replica put's hint field: every entry of every REPLICA_PUT_BATCH, nearly always empty).
   */
  str8(maxBytes: number, what: string, minBytes = 0): string {
    const buf = this.#buf;
    const at = this.#pos;
    // The length's message built only when it is missing, not on every call.
    if (buf.length - at < 1) fail(`truncated ${what} length: need 1 bytes, ${buf.length - at} left`);
    const n = buf[at]!;
    this.#pos = at + 1;
    if (n > maxBytes || n < minBytes) fail(`${what} of ${n} bytes outside [${minBytes}, ${maxBytes}]`);
    if (n === 0) return '';
    this.#need(n, what);
    this.#pos = at + 1 + n;
    return buf.toString('utf8', at + 1, at + 1 + n);
  }

  /** Everything must have been read: trailing bytes mean a framing mismatch. */
  end(what: string): void {
    if (this.remaining !== 0) fail(`${this.remaining} trailing bytes after ${what}`);
  }
}

export function fail(message: string): never {
  throw new ClusterError('ERR_GOSSIP_DECODE', message);
}
