/**
 * RESP reply encoder: Reply values -> bytes, in RESP2 or RESP3 (src/resp/reply.ts documents
 * how the RESP3-only kinds render in RESP2).
 *
 * A connection keeps one ReplyBuffer and pushes the replies of one pipelined read batch into
 * it, then writes `take()` with a single socket write (or writev for an array). Small replies
 * are copied into a slab shared by all ReplyBuffers of the process (like Node's Buffer pool),
 * which is only ever written forward: bytes already handed out are never written again, so a
 * Buffer returned by take() stays valid while the socket still holds it, and an idle connection
 * holds no slab of its own (1,000 idle clients cost no reply memory). Each ReplyBuffer's
 * pending bytes are one segment of the slab until another ReplyBuffer writes in between; then
 * its next write starts a new segment. Bulk Buffers of COPY_THRESHOLD_BYTES or more are not
 * copied but passed through as their own segment, so the caller must not modify such a Buffer
 * until it has been written; other large encodings get a buffer of their own.
 *
 * Formats (Redis 7.0, networking.c):
 * - error / simple: `-message\r\n` / `+value\r\n`; CR and LF in the text are replaced with
 *   spaces (as addReplyErrorFormat does) so a reply can never break the framing.
 * - integer: `:<n>\r\n` for numbers (safe integers) and bigints.
 * - double: RESP3 `,<%.17g>\r\n` (`,inf`, `,-inf`, `,nan` or `,-nan` as glibc prints NaN); RESP2
 *   the same text as a bulk string (checked against redis-server in test/resp/redis-compare).
 * - null / nullArray: RESP3 `_\r\n`; RESP2 `$-1\r\n` / `*-1\r\n`.
 * - bool: RESP3 `#t` / `#f`; RESP2 `:1` / `:0`.
 * - map: RESP3 `%<n>` then key, value, ...; RESP2 `*<2n>` flat. set: RESP3 `~<n>`; RESP2 `*<n>`.
 * - verbatim: RESP3 `=<len>\r\ntxt:<value>\r\n`; RESP2 a bulk string of the value.
 */
import assert from 'node:assert/strict';
import type { Reply } from './reply.js';
import { formatDouble } from './double-format.js';

/** Size of a fresh shared slab for small replies. */
export const REPLY_SLAB_BYTES = 64 * 1024;
/** Bulk Buffers at least this long are referenced, not copied (Redis's PROTO_REPLY_CHUNK_BYTES). */
export const COPY_THRESHOLD_BYTES = 16 * 1024;
/** A single write larger than this gets its own buffer instead of a piece of the shared slab. */
const OWN_BUFFER_MIN_BYTES = 16 * 1024;
/** Strings up to this many chars are tried as ASCII by a copy loop before the native path. */
const SHORT_TEXT_MAX_CHARS = 64;
/** Longest header: one type byte, '-' and 20 digits of a 64-bit integer, CRLF. */
const MAX_HEADER_BYTES = 24;

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
const CRLF_PATTERN = /[\r\n]/g;

/**
 * The shared slab. Its free space starts at `pos`, except while `owner` is appending to it: then
 * the free space starts at owner.pos (synced here when another ReplyBuffer takes over).
 */
const pool: { slab: Buffer; pos: number; owner: ReplyBuffer | null } = {
  slab: EMPTY,
  pos: 0,
  owner: null,
};

export class ReplyBuffer {
  protocol: 2 | 3;
  /** Where this buffer writes; [start, pos) is its pending segment there. */
  private slab: Buffer = EMPTY;
  private start = 0;
  private pos = 0;
  /** Pending segments before the current one, in order. */
  private parts: Buffer[] = [];
  private partsBytes = 0;

  constructor(protocol: 2 | 3 = 2) {
    this.protocol = protocol;
  }

  /** Appends the encoding of `reply` in the current protocol. */
  push(reply: Reply): void {
    switch (reply.kind) {
      case 'bulk':
        if (typeof reply.value === 'string') this.writeStringBulk(reply.value);
        else this.writeBufferBulk(reply.value);
        return;
      case 'simple':
        this.writeLine(0x2b /* + */, reply.value);
        return;
      case 'error':
        this.writeLine(0x2d /* - */, reply.message);
        return;
      case 'integer':
        this.writeInteger(0x3a /* : */, reply.value);
        return;
      case 'null':
        if (this.protocol === 3) this.writeNull3();
        else this.writeHeader(0x24 /* $ */, -1);
        return;
      case 'nullArray':
        if (this.protocol === 3) this.writeNull3();
        else this.writeHeader(0x2a /* * */, -1);
        return;
      case 'array':
        this.writeHeader(0x2a /* * */, reply.items.length);
        for (const item of reply.items) this.push(item);
        return;
      case 'set':
        this.writeHeader(this.protocol === 3 ? 0x7e /* ~ */ : 0x2a /* * */, reply.items.length);
        for (const item of reply.items) this.push(item);
        return;
      case 'map':
        if (this.protocol === 3) this.writeHeader(0x25 /* % */, reply.entries.length);
        else this.writeHeader(0x2a /* * */, reply.entries.length * 2);
        for (const [key, value] of reply.entries) {
          this.push(key);
          this.push(value);
        }
        return;
      case 'double': {
        const text = formatDouble(reply.value);
        if (this.protocol === 3) this.writeLine(0x2c /* , */, text);
        else this.writeStringBulk(text);
        return;
      }
      case 'bool':
        if (this.protocol === 3) this.writeLine(0x23 /* # */, reply.value ? 't' : 'f');
        else this.writeHeader(0x3a /* : */, reply.value ? 1 : 0);
        return;
      case 'verbatim':
        if (this.protocol === 3) this.writeVerbatim(reply.format, reply.value);
        else this.writeStringBulk(reply.value);
        return;
      default: {
        const unknown: never = reply;
        assert.fail(`unknown reply kind ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** Bytes pending (pushed and not yet taken). */
  get byteLength(): number {
    return this.partsBytes + (this.pos - this.start);
  }

  /**
   * Everything pending, then the buffer is empty. A single Buffer when the pending bytes are one
   * segment (the usual case), else the segments in order (for socket.cork()+write or writev).
   * An empty Buffer when nothing is pending.
   */
  take(): Buffer | Buffer[] {
    let out: Buffer | Buffer[];
    if (this.parts.length === 0) {
      // The usual case, one segment (every flush at -P 1): handed out as it is, without going
      // through `parts` (a new array and its backing store per take, ~170 B per flush).
      out = this.pos > this.start ? this.slab.subarray(this.start, this.pos) : EMPTY;
      this.start = this.pos;
    } else {
      this.flushSlab();
      const parts = this.parts;
      this.parts = [];
      this.partsBytes = 0;
      out = parts.length === 1 ? (parts[0] as Buffer) : parts;
    }
    if (pool.owner !== this) {
      // Do not keep a buffer of our own (or an old slab) alive while idle.
      this.slab = EMPTY;
      this.start = 0;
      this.pos = 0;
    }
    return out;
  }

  // ---- writing primitives -------------------------------------------------------------------

  /** Moves the pending segment into `parts` (those bytes are never written again). */
  private flushSlab(): void {
    if (this.pos > this.start) {
      this.parts.push(this.slab.subarray(this.start, this.pos));
      this.partsBytes += this.pos - this.start;
      this.start = this.pos;
    }
  }

  /** Makes room for `bytes` contiguous bytes at `pos`. */
  private ensure(bytes: number): void {
    if (pool.owner === this && this.slab.length - this.pos >= bytes) return;
    this.acquire(bytes);
  }

  private acquire(bytes: number): void {
    this.flushSlab();
    if (pool.owner !== null) {
      pool.pos = pool.owner.pos; // whoever appended last (maybe us) ends the used part
      pool.owner = null;
    }
    if (bytes > OWN_BUFFER_MIN_BYTES) {
      this.slab = Buffer.allocUnsafe(bytes);
      this.start = 0;
      this.pos = 0;
      return;
    }
    if (pool.slab.length - pool.pos < bytes) {
      pool.slab = Buffer.allocUnsafe(REPLY_SLAB_BYTES);
      pool.pos = 0;
    }
    this.slab = pool.slab;
    this.start = pool.pos;
    this.pos = pool.pos;
    pool.owner = this;
  }

  /** `<type><n>\r\n` for a safe integer n (lengths, counts, -1). */
  private writeHeader(type: number, n: number): void {
    this.ensure(MAX_HEADER_BYTES);
    const slab = this.slab;
    let p = this.pos;
    slab[p++] = type;
    p = writeDecimal(slab, p, n);
    slab[p++] = CR;
    slab[p++] = LF;
    this.pos = p;
  }

  private writeInteger(type: number, value: number | bigint): void {
    if (typeof value === 'number' && Number.isSafeInteger(value)) {
      this.writeHeader(type, value);
      return;
    }
    if (typeof value === 'number') assert.ok(Number.isInteger(value), `integer reply of non-integer ${value}`);
    const text = BigInt(value).toString();
    this.ensure(text.length + 3);
    this.slab[this.pos++] = type;
    this.pos += this.slab.write(text, this.pos, 'latin1');
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  /** `<type><text>\r\n` with CR/LF in the text replaced by spaces. */
  private writeLine(type: number, text: string): void {
    // Fast path: short ASCII text without CR/LF (OK, PONG, QUEUED, most errors) copied by a
    // loop; a native write plus byteLength costs more than the copy for a few bytes.
    if (text.length <= SHORT_TEXT_MAX_CHARS) {
      this.ensure(text.length + 3);
      const p = writeShortAscii(this.slab, this.pos + 1, text, true);
      if (p >= 0) {
        this.slab[this.pos] = type;
        this.slab[p] = CR;
        this.slab[p + 1] = LF;
        this.pos = p + 2;
        return;
      }
    }
    if (text.indexOf('\r') !== -1 || text.indexOf('\n') !== -1) text = text.replace(CRLF_PATTERN, ' ');
    const bytes = Buffer.byteLength(text, 'utf8');
    this.ensure(bytes + 3);
    this.slab[this.pos++] = type;
    this.pos += this.slab.write(text, this.pos, 'utf8');
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  private writeStringBulk(value: string): void {
    if (value.length <= SHORT_TEXT_MAX_CHARS) {
      // Header for the ASCII case first; if the text is not ASCII the bytes written past pos
      // are simply overwritten by the general path below.
      this.ensure(MAX_HEADER_BYTES + value.length + 2);
      const headerStart = this.pos;
      this.writeHeader(0x24 /* $ */, value.length);
      const p = writeShortAscii(this.slab, this.pos, value, false);
      if (p >= 0) {
        this.slab[p] = CR;
        this.slab[p + 1] = LF;
        this.pos = p + 2;
        return;
      }
      this.pos = headerStart;
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.writeHeader(0x24 /* $ */, bytes);
    this.ensure(bytes + 2);
    this.pos += this.slab.write(value, this.pos, 'utf8');
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  private writeBufferBulk(value: Buffer): void {
    this.writeHeader(0x24 /* $ */, value.length);
    if (value.length >= COPY_THRESHOLD_BYTES) {
      this.flushSlab();
      this.parts.push(value);
      this.partsBytes += value.length;
    } else {
      this.ensure(value.length);
      this.pos += value.copy(this.slab, this.pos);
    }
    this.ensure(2);
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  private writeVerbatim(format: 'txt' | 'mkd', value: string): void {
    const bytes = Buffer.byteLength(value, 'utf8');
    this.writeHeader(0x3d /* = */, bytes + 4);
    this.ensure(bytes + 6);
    this.pos += this.slab.write(format, this.pos, 'latin1');
    this.slab[this.pos++] = 0x3a; // ':'
    this.pos += this.slab.write(value, this.pos, 'utf8');
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  private writeNull3(): void {
    this.ensure(3);
    this.slab[this.pos++] = 0x5f; // '_'
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }
}

/**
 * Copies `text` as bytes at `p` if every char is ASCII (and, with `line`, not CR or LF);
 * returns the position after it, or -1 (the caller then takes the general path; the bytes
 * written are in free space it owns). The caller has ensured room for text.length bytes.
 */
function writeShortAscii(buf: Buffer, p: number, text: string, line: boolean): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 || (line && (c === CR || c === LF))) return -1;
    buf[p++] = c;
  }
  return p;
}

/** Writes the decimal digits of a safe integer at `p`; returns the position after them. */
function writeDecimal(buf: Buffer, p: number, n: number): number {
  if (n < 0) {
    buf[p++] = 0x2d; // '-'
    n = -n;
  }
  if (n < 10) {
    buf[p++] = 48 + n;
    return p;
  }
  // Count digits, then fill from the right.
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  let q = p + digits - 1;
  while (n >= 10) {
    const next = Math.floor(n / 10);
    buf[q--] = 48 + (n - next * 10);
    n = next;
  }
  buf[q] = 48 + n;
  return p + digits;
}

/** Encoder for one-off replies (on the shared slab, like every ReplyBuffer). */
const oneOff = new ReplyBuffer(2);

/** The complete encoding of one reply as one Buffer (tests, error paths; not the hot path). */
export function encodeReply(reply: Reply, protocol: 2 | 3): Buffer {
  oneOff.protocol = protocol;
  try {
    oneOff.push(reply);
  } catch (err) {
    oneOff.take(); // drop a partial encoding so it cannot prefix the next one
    throw err;
  }
  const out = oneOff.take();
  return Array.isArray(out) ? Buffer.concat(out) : out;
}
