/**
 * Bus frames: the unit on every node-to-node TCP connection (cluster-port).
 *
 *   offset 0        4        5                9
 *          +--------+--------+----------------+---------------------------+
 *          | length | type   | request id     | payload (length - 5 bytes) |
 *          | u32 BE | u8     | u32 BE         | opaque to the bus          |
 *          +--------+--------+----------------+---------------------------+
 *   length = bytes after the length field = 5 + payload length; 5 <= length <= maxFrameBytes
 *
 * Types: 0x01-0x04 handshake (handshake.ts), 0x05 RESPONSE and 0x06 ERROR (request id = the
 * request's), 0x07-0x0f reserved, 0x10-0xff application messages (message_types.ts).
 * An application frame with request id 0 is one-way (no response); any other id asks for exactly
 * one RESPONSE or ERROR frame carrying the same id, on the same connection.
 *
 * FrameDecoder contract: the length is checked against the limit as soon as its 4 bytes are in,
 * BEFORE any byte of the frame is buffered or allocated beyond what the socket already handed us;
 * a frame that fits in the chunk it arrived in is a zero-copy view of that chunk; otherwise
 * exactly `4 + length` bytes are allocated (through the injectable `allocate`). After a FrameError
 * the stream is unusable (framing is lost) and the caller must drop the connection.
 */
import assert from 'node:assert';
import { ClusterError } from './errors.js';
import { MAX_FRAME_BYTES_LIMIT } from './limits.js';

export const FRAME_LENGTH_BYTES = 4;
/** length + type + request id. */
export const FRAME_HEADER_BYTES = 9;
/** Smallest valid length field: type + request id, empty payload. */
export const MIN_FRAME_LENGTH = FRAME_HEADER_BYTES - FRAME_LENGTH_BYTES;

export const FrameType = {
  HELLO: 0x01,
  CHALLENGE: 0x02,
  AUTH: 0x03,
  WELCOME: 0x04,
  RESPONSE: 0x05,
  ERROR: 0x06,
} as const;

/** First type number free for application messages. */
export const FIRST_APP_FRAME_TYPE = 0x10;
export const MAX_FRAME_TYPE = 0xff;
export const MAX_REQUEST_ID = 0xffff_ffff;
/** Request id of one-way messages. */
export const ONE_WAY_REQUEST_ID = 0;

export interface Frame {
  readonly type: number;
  readonly requestId: number;
  readonly payload: Buffer;
}

/** The 9 header bytes of a frame whose payload is `payloadBytes` long. */
export function encodeFrameHeader(type: number, requestId: number, payloadBytes: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(h, 0, type, requestId, payloadBytes);
  return h;
}

/** Writes the 9 header bytes of a frame into `buf` at `offset` (the bus's outbound batches). */
export function writeFrameHeader(buf: Buffer, offset: number, type: number, requestId: number, payloadBytes: number): void {
  if (!(Number.isInteger(type) && type >= 0 && type <= MAX_FRAME_TYPE)) assert.fail(`bad frame type ${type}`);
  assert(Number.isInteger(requestId) && requestId >= 0 && requestId <= MAX_REQUEST_ID, 'bad request id');
  const length = MIN_FRAME_LENGTH + payloadBytes;
  if (!(length <= MAX_FRAME_BYTES_LIMIT)) assert.fail(`frame of ${length} bytes exceeds the bus ceiling`);
  assert(offset >= 0 && offset + FRAME_HEADER_BYTES <= buf.length, 'frame header does not fit');
  buf.writeUInt32BE(length, offset);
  buf[offset + 4] = type;
  buf.writeUInt32BE(requestId, offset + 5);
}

/** A whole frame in one buffer (handshake messages and tests; the bus appends frames to its outbound batch). */
export function encodeFrame(type: number, requestId: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeFrameHeader(type, requestId, payload.length), payload]);
}

export interface FrameDecoderOptions {
  maxFrameBytes: number;
  /** Allocation of multi-chunk frames; injectable so tests can prove what gets allocated. */
  allocate?: (bytes: number) => Buffer;
}

export class FrameDecoder {
  #chunks: Buffer[] = [];
  /** Offset of the first unread byte in #chunks[0]. */
  #head = 0;
  #buffered = 0;
  #maxFrameBytes: number;
  #stopped = false;
  readonly #allocate: (bytes: number) => Buffer;

  constructor(options: FrameDecoderOptions) {
    this.#maxFrameBytes = checkLimit(options.maxFrameBytes);
    this.#allocate = options.allocate ?? ((n) => Buffer.allocUnsafe(n));
  }

  /** Raises or lowers the limit for the frames still to come (e.g. after the handshake). */
  setMaxFrameBytes(bytes: number): void {
    this.#maxFrameBytes = checkLimit(bytes);
  }

  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /** Bytes received and not yet returned as frames (at most one partial frame plus the current chunk). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Stops delivering frames: bytes pushed later, or still buffered, are discarded. */
  stop(): void {
    this.#stopped = true;
    this.#chunks = [];
    this.#head = 0;
    this.#buffered = 0;
  }

  /**
   * Feeds bytes; calls onFrame for each complete frame in order. Throws ClusterError
   * (ERR_FRAME_TOO_LARGE / ERR_FRAME_MALFORMED) when the stream breaks a rule. onFrame may call
   * stop() or setMaxFrameBytes(); both take effect for the next frame.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.#stopped) return;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    while (!this.#stopped && this.#buffered >= FRAME_LENGTH_BYTES) {
      const length = this.#peekU32();
      if (length < MIN_FRAME_LENGTH) {
        throw new ClusterError('ERR_FRAME_MALFORMED', `frame length ${length} is below the ${MIN_FRAME_LENGTH}-byte header`);
      }
      if (length > this.#maxFrameBytes) {
        throw new ClusterError('ERR_FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.#maxFrameBytes}`);
      }
      const total = FRAME_LENGTH_BYTES + length;
      if (this.#buffered < total) return;
      const first = this.#chunks[0]!;
      const head = this.#head;
      if (first.length - head >= total) {
        // The whole frame in the first chunk (the usual case): its header read in place and one
        // view made, the payload's, where a view of the frame and then one of its payload were
        // two typed arrays per frame (every bus request and answer).
        this.#skip(first, total);
        onFrame({ type: first[head + 4]!, requestId: first.readUInt32BE(head + 5), payload: first.subarray(head + FRAME_HEADER_BYTES, head + total) });
        continue;
      }
      const bytes = this.#gather(total);
      onFrame({ type: bytes[4]!, requestId: bytes.readUInt32BE(5), payload: bytes.subarray(FRAME_HEADER_BYTES) });
    }
  }

  /** Consumes `n` bytes of `first` (#chunks[0], which holds them from #head on). */
  #skip(first: Buffer, n: number): void {
    this.#head += n;
    if (this.#head === first.length) {
      this.#chunks.shift();
      this.#head = 0;
    }
    this.#buffered -= n;
  }

  #peekU32(): number {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= 4) return first.readUInt32BE(this.#head);
    let value = 0;
    let got = 0;
    for (let c = 0; got < 4; c++) {
      const buf = this.#chunks[c]!;
      for (let i = c === 0 ? this.#head : 0; i < buf.length && got < 4; i++, got++) value = value * 256 + buf[i]!;
    }
    return value;
  }

  /** Removes and returns the next `n` buffered bytes, which span chunks, copied into one buffer (caller checked n <= buffered). */
  #gather(n: number): Buffer {
    const out = this.#allocate(n);
    let filled = 0;
    while (filled < n) {
      const buf = this.#chunks[0]!;
      const copy = Math.min(buf.length - this.#head, n - filled);
      buf.copy(out, filled, this.#head, this.#head + copy);
      filled += copy;
      this.#head += copy;
      if (this.#head === buf.length) {
        this.#chunks.shift();
        this.#head = 0;
      }
    }
    this.#buffered -= n;
    return out;
  }
}

function checkLimit(bytes: number): number {
  assert(
    Number.isInteger(bytes) && bytes >= MIN_FRAME_LENGTH && bytes <= MAX_FRAME_BYTES_LIMIT,
    `maxFrameBytes must be in [${MIN_FRAME_LENGTH}, ${MAX_FRAME_BYTES_LIMIT}]`,
  );
  return bytes;
}
