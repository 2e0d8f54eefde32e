/**
 * Streaming parser of client requests (what a Redis server reads), following Redis 7.0's
 * networking.c (processInlineBuffer / processMultibulkBuffer) byte for byte:
 *
 *   request   = multibulk | inline
 *   multibulk = "*" count CR any-byte { "$" length CR any-byte data any-byte any-byte }
 *   inline    = line "\n"          (a "\r" right before the "\n" is dropped; args split as in
 *                                   sdssplitargs, see inline-args.ts; blank lines are skipped)
 *
 * A request is multibulk when its first byte is '*', else inline. Header lines end at the first
 * CR; Redis then skips two bytes without looking at the second (so "*1\rX" is a valid header),
 * and after bulk data it skips two bytes without checking they are CRLF. Counts and lengths
 * are parsed with Redis's string2ll (no '+', no leading zeros, no "-0"). `*0` and negative
 * counts are no-ops. Redis searches lines with strchr, which stops at a NUL byte: a NUL before
 * the terminator of an inline or header line hides the terminator, so such a line can only end
 * in a "too big" error once more than maxInlineBytes are buffered. NUL bytes inside bulk data
 * are ordinary data.
 *
 * One deliberate difference: Redis checks the 64 KiB line limit only when a read ends without
 * a terminator, so whether a 70 KiB line is accepted depends on how TCP split it. Here a line
 * longer than maxInlineBytes is always refused, so the result never depends on chunking: the
 * same byte stream split anywhere yields the same commands and the same error at the same point.
 *
 * Memory: no allocation is sized by a length read off the wire. A declared length above the
 * limit is refused before any data is read. A bulk whose data has not all arrived is kept as
 * the chunks received (big chunks zero-copy, small ones copied into 16 KiB tail buffers so a
 * byte-at-a-time sender cannot make a Buffer object per byte) and joined once complete. A
 * header or inline line cut by a chunk boundary is joined into a buffer that grows
 * geometrically (linear time even for 1-byte chunks). Arguments are zero-copy slices of the fed
 * chunks when a bulk lies inside one chunk, so a caller must not modify a chunk after feeding
 * it, and arguments keep their chunk alive while referenced; bytes of a handed-out argument are
 * never written again. nextRaw hands out the same command as offsets into those bytes (a
 * RawCommand, no Buffer per argument) for callers that read the bytes in place (SET, GET).
 */
import assert from 'node:assert/strict';
import { ProtocolError, PROTOCOL_ERROR } from './protocol-error.js';
import type { ParserLimits } from './parser-limits.js';
import { parseRedisInt } from './redis-int.js';
import { splitInlineArgs } from './inline-args.js';

export { ProtocolError, PROTOCOL_ERROR } from './protocol-error.js';
export {
  type ParserLimits,
  type UnauthenticatedLimits,
  DEFAULT_PARSER_LIMITS,
  UNAUTHENTICATED_LIMITS,
  INLINE_MAX_BYTES,
  REDIS_PROTO_MAX_BULK_BYTES,
  MULTIBULK_MAX_LENGTH,
  UNAUTHENTICATED_MULTIBULK_MAX_LENGTH,
  UNAUTHENTICATED_BULK_MAX_BYTES,
} from './parser-limits.js';

const STAR = 42;
const DOLLAR = 36;
const CR = 13;
const LF = 10;
const NUL = 0;
/** Header digits read by the fast path; 15 decimal digits are exact in a double. */
const FAST_PATH_DIGITS_MAX = 15;
/** Heap cost of one argument besides its data: a Buffer view plus its array slot (measured ~106). */
export const ARG_HEAP_OVERHEAD_BYTES = 100;
/** Commands with more arguments than this take the general path (no preallocated arrays). */
const FAST_PATH_ARGS_MAX = 64;
/** Chunks of bulk data smaller than this are copied into a tail buffer of this size. */
const PIECE_TAIL_BYTES = 16 * 1024;
/** Smallest buffer allocated to join a partial line with the next chunk. */
const JOIN_BUFFER_MIN_BYTES = 1024;
const EMPTY = Buffer.alloc(0);

/** Waiting for the first byte of a request. */
const PHASE_COMMAND = 0;
/** Inside a multibulk: waiting for a `$<length>` header (and its data). */
const PHASE_BULK_HEADER = 1;
/** Inside a multibulk: collecting the data of a bulk that spans chunks. */
const PHASE_BULK_PIECES = 2;
/** A multibulk is complete (its last bulk was finished by feed()); next() returns it. */
const PHASE_READY = 3;
type Phase = typeof PHASE_COMMAND | typeof PHASE_BULK_HEADER | typeof PHASE_BULK_PIECES | typeof PHASE_READY;

/**
 * One command as offsets into the bytes received: argument i is buf[starts[i], ends[i]) for
 * i < count. The parser reuses this object for every command (RequestParser.nextRaw), so a
 * caller reads it before asking for the next command; the bytes themselves stay valid as long
 * as `buf` is referenced (the parser never writes a byte it handed out). args() makes the
 * Buffers next() would have returned.
 */
export class RawCommand {
  buf: Buffer = EMPTY;
  count = 0;
  readonly starts = new Int32Array(FAST_PATH_ARGS_MAX);
  readonly ends = new Int32Array(FAST_PATH_ARGS_MAX);

  /** Argument i (< count) as a view of the received bytes. */
  view(i: number): Buffer {
    return this.buf.subarray(this.starts[i], this.ends[i]);
  }

  /** The arguments as views, what next() returns for the same command. */
  args(): Buffer[] {
    const n = this.count;
    const out: Buffer[] = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) out[i] = this.buf.subarray(this.starts[i], this.ends[i]);
    return out;
  }
}

export class RequestParser {
  private limits: ParserLimits;
  /** Unconsumed input is buf[pos, buf.length). */
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Our own allocation behind buf when buf joins several chunks; spare room after buf.length. */
  private join: Buffer | null = null;
  private phase: Phase = PHASE_COMMAND;
  /** Arguments of the multibulk in progress and how many are still to come. */
  private args: Buffer[] = [];
  private argsLeft = 0;
  private argsBytes = 0;
  /** PHASE_BULK_PIECES: the bulk's declared length and the chunks received for it so far. */
  private bulkLength = 0;
  private pieces: Buffer[] = [];
  /** Bytes in pieces plus the tail. */
  private piecesBytes = 0;
  /** Small chunks of the bulk are copied here; pushed to pieces when full or at the end. */
  private tail: Buffer | null = null;
  private tailUsed = 0;
  /**
   * For the line starting at pos: bytes [pos, pos + scanned) hold no terminator, so a search
   * after more input resumes there (1-byte feeds stay linear). -1: a NUL hides the terminator.
   */
  private scanned = 0;
  /** Set by the first protocol error; next() keeps throwing it. */
  private failure: ProtocolError | undefined;
  /** The offsets readWholeMultibulk found (handed out by nextRaw, reused). */
  private readonly raw = new RawCommand();

  constructor(limits: ParserLimits) {
    this.limits = checkLimits(limits);
  }

  /** New limits apply from the next header or line parsed (e.g. after AUTH). */
  setLimits(limits: ParserLimits): void {
    this.limits = checkLimits(limits);
  }

  /**
   * Adds bytes read from the socket. The parser keeps a reference to `chunk` (arguments may be
   * slices of it); the caller must not modify it afterwards. Ignored after a protocol error.
   */
  feed(chunk: Buffer): void {
    if (chunk.length === 0 || this.failure !== undefined) return;
    if (this.phase === PHASE_BULK_PIECES) {
      this.collectPiece(chunk);
      if (this.piecesBytes >= this.bulkLength + 2) this.settlePieces();
      return;
    }
    const live = this.buf.length - this.pos;
    if (live === 0) {
      this.buf = chunk;
      this.pos = 0;
      this.join = null;
      return;
    }
    this.append(chunk, live);
  }

  /**
   * The next complete command as its argument Buffers (never empty), or undefined when more
   * bytes are needed. Throws ProtocolError when the input breaks the protocol; after that every
   * call throws the same error (the connection is to be closed after replying).
   */
  next(): Buffer[] | undefined {
    if (this.phase === PHASE_COMMAND && this.failure === undefined && this.readWholeMultibulk()) return this.raw.args();
    if (this.failure !== undefined) throw this.failure;
    try {
      const command = this.parse();
      if (command === undefined && this.pos >= this.buf.length) {
        // Drained: drop references to consumed chunks.
        this.buf = EMPTY;
        this.pos = 0;
        this.join = null;
      }
      return command;
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.failure = err;
        this.buf = EMPTY;
        this.pos = 0;
        this.join = null;
        this.args = [];
        this.argsBytes = 0;
        this.pieces = [];
        this.piecesBytes = 0;
        this.tail = null;
        this.tailUsed = 0;
      }
      throw err;
    }
  }

  /**
   * Bytes the parser holds: unconsumed input plus the arguments of the command in progress,
   * each argument counted with ARG_HEAP_OVERHEAD_BYTES on top of its data (a million empty
   * arguments are tiny on the wire but not on the heap). The server compares this with its
   * query buffer cap (Redis's client-query-buffer-limit).
   */
  get bufferedBytes(): number {
    return (
      this.buf.length -
      this.pos +
      this.argsBytes +
      this.args.length * ARG_HEAP_OVERHEAD_BYTES +
      (this.phase === PHASE_BULK_PIECES ? this.piecesBytes : 0)
    );
  }

  // ---- parsing ---------------------------------------------------------------------------

  private parse(): Buffer[] | undefined {
    for (;;) {
      switch (this.phase) {
        case PHASE_READY:
          return this.finishCommand();
        case PHASE_BULK_PIECES:
          return undefined; // feed() settles the bulk once all of it is here
        case PHASE_BULK_HEADER:
          if (!this.readBulk()) return undefined;
          if (this.argsLeft === 0) return this.finishCommand();
          continue;
        default: {
          if (this.pos >= this.buf.length) return undefined;
          if (this.buf[this.pos] === STAR) {
            if (!this.readMultibulkCount()) return undefined;
            continue;
          }
          const args = this.readInline();
          if (args === undefined) return undefined;
          if (args.length > 0) return args;
          continue; // blank line
        }
      }
    }
  }

  /**
   * The next complete command as offsets into the received bytes (a RawCommand, the same object
   * every call: valid until the next call to nextRaw or next), or undefined when the command is
   * not a whole, well-formed multibulk of at most FAST_PATH_ARGS_MAX arguments already buffered
   * (then next() decides: the command, more bytes needed, or a protocol error). Consumes the
   * command like next(). No Buffer or array is made: a caller that needs them calls args().
   */
  nextRaw(): RawCommand | undefined {
    if (this.phase !== PHASE_COMMAND || this.failure !== undefined) return undefined;
    return this.readWholeMultibulk() ? this.raw : undefined;
  }

  /**
   * Fast path for the hot case: a whole, well-formed multibulk already in buf, parsed in one
   * pass with locals into this.raw's offsets. Returns false without changing any state when
   * anything is unusual (incomplete, a limit hit, odd syntax): the general path then decides,
   * errors included.
   */
  private readWholeMultibulk(): boolean {
    const buf = this.buf;
    const end = buf.length;
    const start = this.pos;
    if (start >= end || buf[start] !== STAR) return false;
    const limits = this.limits;
    const maxLine = limits.maxInlineBytes;
    const unauthenticated = limits.unauthenticated;
    const maxBulk = unauthenticated === undefined ? limits.maxBulkBytes : Math.min(limits.maxBulkBytes, unauthenticated.maxBulkBytes);
    const maxCount = Math.min(
      FAST_PATH_ARGS_MAX,
      unauthenticated === undefined ? limits.maxMultibulkLength : Math.min(limits.maxMultibulkLength, unauthenticated.maxMultibulkLength),
    );
    // The count: digits 1-9 first (0 and signs take the general path), then CR and one more byte.
    let p = start + 1;
    let c = buf[p];
    if (c === undefined || c < 49 || c > 57) return false;
    let count = 0;
    do {
      count = count * 10 + (c - 48);
      c = buf[++p];
    } while (c !== undefined && c >= 48 && c <= 57 && p - start <= FAST_PATH_DIGITS_MAX);
    if (c !== CR || p + 1 >= end || p - start > maxLine || count > maxCount) return false;
    p += 2;
    const raw = this.raw;
    const starts = raw.starts;
    const ends = raw.ends;
    for (let i = 0; i < count; i++) {
      const headerStart = p;
      if (buf[p] !== DOLLAR) return false;
      c = buf[++p];
      if (c === undefined || c < 48 || c > 57) return false;
      let length = c - 48;
      c = buf[++p];
      if (length !== 0) {
        while (c !== undefined && c >= 48 && c <= 57 && p - headerStart <= FAST_PATH_DIGITS_MAX) {
          length = length * 10 + (c - 48);
          c = buf[++p];
        }
      }
      // A leading zero leaves a digit here, so "$03" falls to the general path.
      if (c !== CR || p - headerStart > maxLine || length > maxBulk) return false;
      const dataStart = p + 2;
      const dataEnd = dataStart + length;
      if (dataEnd + 2 > end) return false;
      starts[i] = dataStart;
      ends[i] = dataEnd;
      p = dataEnd + 2;
    }
    raw.buf = buf;
    raw.count = count;
    this.pos = p;
    this.scanned = 0;
    return true;
  }

  /** `*<count>` header. False: need more bytes. */
  private readMultibulkCount(): boolean {
    const buf = this.buf;
    const pos = this.pos;
    let count: number;
    let after: number;
    const fast = readFastNumber(buf, pos, this.limits.maxInlineBytes);
    if (fast >= 0) {
      count = fastValue;
      after = fast;
    } else {
      const cr = this.findHeaderEnd(PROTOCOL_ERROR.tooBigMultibulkCount);
      if (cr < 0) return false;
      const value = parseRedisInt(buf, pos + 1, cr);
      if (value === undefined) throw new ProtocolError(PROTOCOL_ERROR.invalidMultibulkLength);
      count = value;
      after = cr + 2;
    }
    if (count > this.limits.maxMultibulkLength) throw new ProtocolError(PROTOCOL_ERROR.invalidMultibulkLength);
    const unauthenticated = this.limits.unauthenticated;
    if (unauthenticated !== undefined && count > unauthenticated.maxMultibulkLength) {
      throw new ProtocolError(PROTOCOL_ERROR.unauthenticatedMultibulkLength);
    }
    this.pos = after;
    this.scanned = 0;
    if (count <= 0) return true; // Redis: `*0` and `*-1` are no-ops
    this.argsLeft = count;
    this.phase = PHASE_BULK_HEADER;
    return true;
  }

  /** One `$<length>` header and its data. False: need more bytes (or collecting pieces). */
  private readBulk(): boolean {
    const buf = this.buf;
    const pos = this.pos;
    const end = buf.length;
    let length: number;
    let dataStart: number;
    const fast = buf[pos] === DOLLAR ? readFastNumber(buf, pos, this.limits.maxInlineBytes) : -1;
    if (fast >= 0) {
      length = fastValue;
      dataStart = fast;
    } else {
      const cr = this.findHeaderEnd(PROTOCOL_ERROR.tooBigBulkCount);
      if (cr < 0) return false;
      if (buf[pos] !== DOLLAR) throw new ProtocolError(PROTOCOL_ERROR.expectedDollar(buf[pos]!));
      const value = parseRedisInt(buf, pos + 1, cr);
      if (value === undefined || value < 0) throw new ProtocolError(PROTOCOL_ERROR.invalidBulkLength);
      length = value;
      dataStart = cr + 2;
    }
    if (length > this.limits.maxBulkBytes) throw new ProtocolError(PROTOCOL_ERROR.invalidBulkLength);
    const unauthenticated = this.limits.unauthenticated;
    if (unauthenticated !== undefined && length > unauthenticated.maxBulkBytes) {
      throw new ProtocolError(PROTOCOL_ERROR.unauthenticatedBulkLength);
    }
    this.scanned = 0;
    const dataEnd = dataStart + length;
    if (dataEnd + 2 <= end) {
      this.args.push(buf.subarray(dataStart, dataEnd));
      this.argsBytes += length;
      this.argsLeft--;
      this.pos = dataEnd + 2;
      return true;
    }
    // The data spans chunks: keep what is here and collect the rest as it arrives.
    this.bulkLength = length;
    this.pieces = dataStart < end ? [buf.subarray(dataStart)] : [];
    this.piecesBytes = end - dataStart;
    this.phase = PHASE_BULK_PIECES;
    this.buf = EMPTY;
    this.pos = 0;
    this.join = null;
    return false;
  }

  /**
   * Keeps a chunk of a bulk's data. Big chunks are kept as they are (zero-copy); small ones are
   * copied into a fixed-size tail buffer, so a client trickling a bulk a byte at a time costs
   * one Buffer object per PIECE_TAIL_BYTES, not one per byte.
   */
  private collectPiece(chunk: Buffer): void {
    this.piecesBytes += chunk.length;
    if (chunk.length >= PIECE_TAIL_BYTES) {
      this.flushTail();
      this.pieces.push(chunk);
      return;
    }
    let copied = 0;
    while (copied < chunk.length) {
      if (this.tail === null || this.tailUsed === this.tail.length) {
        this.flushTail();
        this.tail = Buffer.allocUnsafe(PIECE_TAIL_BYTES);
      }
      const n = chunk.copy(this.tail, this.tailUsed, copied);
      this.tailUsed += n;
      copied += n;
    }
  }

  private flushTail(): void {
    if (this.tail !== null && this.tailUsed > 0) this.pieces.push(this.tail.subarray(0, this.tailUsed));
    this.tail = null;
    this.tailUsed = 0;
  }

  /** All data of the bulk in pieces has arrived: make it an argument; the rest is input. */
  private settlePieces(): void {
    this.flushTail();
    const length = this.bulkLength;
    const pieces = this.pieces;
    const first = pieces[0]!;
    const arg = first.length >= length ? first.subarray(0, length) : Buffer.concat(pieces, length);
    // What follows the bulk and its two trailing bytes is input again. It starts in the last
    // piece, or (when the final small chunk was split over two tail buffers) the one before.
    const need = length + 2;
    let offset = 0;
    let i = 0;
    while (i < pieces.length && offset + pieces[i]!.length <= need) offset += pieces[i++]!.length;
    const rest: Buffer[] = [];
    if (i < pieces.length) {
      rest.push(pieces[i]!.subarray(need - offset));
      for (let j = i + 1; j < pieces.length; j++) rest.push(pieces[j]!);
    }
    this.pieces = [];
    this.piecesBytes = 0;
    this.args.push(arg);
    this.argsBytes += length;
    this.argsLeft--;
    this.buf = rest.length === 0 ? EMPTY : rest.length === 1 ? rest[0]! : Buffer.concat(rest);
    this.pos = 0;
    this.join = null;
    this.scanned = 0;
    this.phase = this.argsLeft === 0 ? PHASE_READY : PHASE_BULK_HEADER;
  }

  /** An inline line split into arguments ([] for a blank line). Undefined: need more bytes. */
  private readInline(): Buffer[] | undefined {
    const buf = this.buf;
    const pos = this.pos;
    const end = buf.length;
    const max = this.limits.maxInlineBytes;
    let lf = -1;
    if (this.scanned >= 0) {
      const from = pos + this.scanned;
      lf = from < end ? buf.indexOf(LF, from) : -1;
      if (lf === -1) {
        this.scanned = end - pos;
      } else if (lf - pos > max) {
        throw new ProtocolError(PROTOCOL_ERROR.tooBigInline);
      } else if (buf.subarray(pos, lf).indexOf(NUL) !== -1) {
        this.scanned = -1; // Redis's strchr never gets past the NUL
        lf = -1;
      }
    }
    if (lf === -1) {
      if (end - pos > max) throw new ProtocolError(PROTOCOL_ERROR.tooBigInline);
      return undefined;
    }
    const lineEnd = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
    const args = splitInlineArgs(buf, pos, lineEnd);
    if (args === undefined) throw new ProtocolError(PROTOCOL_ERROR.unbalancedQuotes);
    this.pos = lf + 1;
    this.scanned = 0;
    return args;
  }

  /**
   * The CR ending the header line at pos, with at least one byte after it (Redis skips two
   * bytes). -1: need more bytes. Throws `tooBig` past maxInlineBytes.
   */
  private findHeaderEnd(tooBig: string): number {
    const buf = this.buf;
    const pos = this.pos;
    const end = buf.length;
    const max = this.limits.maxInlineBytes;
    if (this.scanned >= 0) {
      const from = pos + this.scanned;
      const cr = from < end ? buf.indexOf(CR, from) : -1;
      if (cr === -1) {
        this.scanned = end - pos;
      } else if (cr - pos > max) {
        throw new ProtocolError(tooBig);
      } else if (buf.subarray(pos, cr).indexOf(NUL) !== -1) {
        this.scanned = -1; // Redis's strchr never gets past the NUL
      } else if (cr + 1 >= end) {
        this.scanned = cr - pos; // a line within the limit, waiting for the byte after its CR
        return -1;
      } else {
        return cr;
      }
    }
    if (end - pos > max) throw new ProtocolError(tooBig);
    return -1;
  }

  private finishCommand(): Buffer[] {
    const args = this.args;
    this.args = [];
    this.argsBytes = 0;
    this.phase = PHASE_COMMAND;
    return args;
  }

  /** Joins the unconsumed bytes with `chunk` so a line can be searched contiguously. */
  private append(chunk: Buffer, live: number): void {
    const used = this.buf.length;
    const join = this.join;
    if (join !== null && join.length - used >= chunk.length) {
      // Spare room after the data: bytes before `used` (maybe handed out) are not touched.
      chunk.copy(join, used);
      this.buf = join.subarray(0, used + chunk.length);
      return;
    }
    const size = live + chunk.length;
    // Geometric growth keeps a line fed one byte at a time linear; sized by bytes received.
    const next = Buffer.allocUnsafe(Math.max(size, 2 * live, JOIN_BUFFER_MIN_BYTES));
    this.buf.copy(next, 0, this.pos);
    chunk.copy(next, live);
    this.join = next;
    this.buf = next.subarray(0, size);
    this.pos = 0;
  }
}

/** Value of the last successful readFastNumber (avoids allocating a result object). */
let fastValue = 0;

/**
 * Fast path for the common header `<type><digits>\r?`: 1..15 digits, no leading zero (except
 * "0"), a CR within maxLineBytes, and one more byte present. Returns the position after the two
 * skipped bytes and sets fastValue, or -1 when the slow path must decide (anything else,
 * incomplete input too).
 */
function readFastNumber(buf: Buffer, pos: number, maxLineBytes: number): number {
  const end = buf.length;
  const first = pos + 1;
  const digitsEnd = Math.min(end, first + FAST_PATH_DIGITS_MAX);
  let p = first;
  let n = 0;
  while (p < digitsEnd) {
    const c = buf[p]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    p++;
  }
  if (p === first || p + 1 >= end || buf[p] !== CR || p - pos > maxLineBytes) return -1;
  if (buf[first] === 48 && p !== first + 1) return -1; // leading zero: string2ll refuses
  fastValue = n;
  return p + 2;
}

function checkLimits(limits: ParserLimits): ParserLimits {
  assert.ok(Number.isSafeInteger(limits.maxInlineBytes) && limits.maxInlineBytes > 0, 'maxInlineBytes');
  assert.ok(Number.isSafeInteger(limits.maxBulkBytes) && limits.maxBulkBytes >= 0, 'maxBulkBytes');
  assert.ok(Number.isSafeInteger(limits.maxMultibulkLength) && limits.maxMultibulkLength > 0, 'maxMultibulkLength');
  return limits;
}
