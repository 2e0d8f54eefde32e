/**
 * Wire formats of slot streaming on the cluster bus (issue 6, types 0x58-0x5f). Pure encode and
 * decode; every length and count read off the wire is checked against a named cap and against
 * the bytes that remain before anything is sliced (ByteReader throws ERR_GOSSIP_DECODE, which
 * the bus answers as an ERROR frame). Integers big-endian.
 *
 *   STREAM_SCAN    request : u16 firstSlot | u16 lastSlot | u32 maxBytes | u32 fromLen | from
 *                  response: u8 done | u32 nextLen | next | u32 count
 *                            | count x (u32 keyLen | key | u32 objectLen | object)
 *     `from` / `next` are engine-key positions (inclusive lower bound of the scan; empty = the
 *     start of firstSlot), so a receiver that persisted `next` resumes where it stopped. The
 *     source stops after maxBytes of objects (at least one entry) or at lastSlot's end (done).
 *   STREAM_CONFIRM request : u8 fpLen | target ring fingerprint      response: empty
 *     "I hold every slot I gain in the ring with this fingerprint" (to a leaving node).
 */
import assert from 'node:assert';
import { SLOT_COUNT } from '../coordinator/slot.js';
import { MAX_WIRE_KEY_BYTES } from './replica_codec.js';
import { ByteReader, ByteWriter, fail } from './wire.js';

export const StreamMessageType = {
  STREAM_SCAN: 0x58,
  STREAM_CONFIRM: 0x59,
} as const;

/** Largest chunk of objects a receiver may ask for in one STREAM_SCAN, bytes. */
export const MAX_STREAM_CHUNK_BYTES = 8 * 1024 * 1024;
/** Most entries in one STREAM_SCAN reply. */
export const MAX_STREAM_CHUNK_ENTRIES = 65_536;
/** Largest stored object accepted in a chunk (a frame is at most 64 MiB anyway). */
export const MAX_STREAM_OBJECT_BYTES = 64 * 1024 * 1024;
/** Longest scan position: the 3-byte slot prefix, the longest key and one byte past it. */
export const MAX_STREAM_POSITION_BYTES = MAX_WIRE_KEY_BYTES + 4;
/** Longest ring fingerprint (hex of a 64-bit hash today). */
export const MAX_FINGERPRINT_BYTES = 64;

export interface StreamScanRequest {
  readonly firstSlot: number;
  readonly lastSlot: number;
  readonly maxBytes: number;
  /** Engine-key position to scan from (inclusive); empty: the start of firstSlot. */
  readonly from: Buffer;
}

export interface StreamEntry {
  readonly key: Buffer;
  /** The stored object's encoding (object_codec.ts). */
  readonly object: Buffer;
}

export interface StreamScanReply {
  readonly done: boolean;
  /** Where the next request starts (meaningless when done). */
  readonly next: Buffer;
  readonly entries: readonly StreamEntry[];
}

export function encodeStreamScan(req: StreamScanRequest): Buffer {
  const w = new ByteWriter(16 + req.from.length);
  w.u16(req.firstSlot).u16(req.lastSlot).u32(req.maxBytes).u32(req.from.length).bytes(req.from);
  return w.finish();
}

export function decodeStreamScan(payload: Buffer): StreamScanRequest {
  const r = new ByteReader(payload);
  const firstSlot = r.u16('first slot');
  const lastSlot = r.u16('last slot');
  if (lastSlot >= SLOT_COUNT || firstSlot > lastSlot) fail(`bad slot range ${firstSlot}-${lastSlot}`);
  const maxBytes = r.u32('max bytes');
  if (maxBytes < 1 || maxBytes > MAX_STREAM_CHUNK_BYTES) fail(`chunk of ${maxBytes} bytes outside 1-${MAX_STREAM_CHUNK_BYTES}`);
  const fromLen = r.u32('position length');
  if (fromLen > MAX_STREAM_POSITION_BYTES) fail(`position of ${fromLen} bytes over ${MAX_STREAM_POSITION_BYTES}`);
  const from = Buffer.from(r.bytes(fromLen, 'position'));
  r.end('stream scan');
  return { firstSlot, lastSlot, maxBytes, from };
}

export function encodeStreamScanReply(rep: StreamScanReply): Buffer {
  let size = 16 + rep.next.length;
  for (const e of rep.entries) size += 8 + e.key.length + e.object.length;
  const w = new ByteWriter(size);
  w.u8(rep.done ? 1 : 0).u32(rep.next.length).bytes(rep.next).u32(rep.entries.length);
  for (const e of rep.entries) w.u32(e.key.length).bytes(e.key).u32(e.object.length).bytes(e.object);
  return w.finish();
}

/** Room reserved before the entries for the reply's header (done, next position, count). */
const REPLY_HEADER_MAX_BYTES = 1 + 4 + MAX_STREAM_POSITION_BYTES + 4;

/**
 * Builds a STREAM_SCAN reply while the source scans, with no StreamEntry objects and one copy
 * of each key and object (straight into the payload): entries first, behind room for the
 * header, which finish() writes once `done` and `next` are known.
 */
export class StreamScanReplyWriter {
  #buf: Buffer;
  #pos = REPLY_HEADER_MAX_BYTES;
  #count = 0;

  /** `expectedBytes`: the entry bytes the scan will likely write (its maxBytes). */
  constructor(expectedBytes: number) {
    this.#buf = Buffer.allocUnsafe(REPLY_HEADER_MAX_BYTES + expectedBytes + 64 * 1024);
  }

  get count(): number {
    return this.#count;
  }

  add(key: Buffer, object: Buffer): void {
    assert(key.length <= MAX_WIRE_KEY_BYTES && object.length <= MAX_STREAM_OBJECT_BYTES && this.#count < MAX_STREAM_CHUNK_ENTRIES);
    const need = 8 + key.length + object.length;
    if (this.#pos + need > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + need));
      this.#buf.copy(next, 0, 0, this.#pos);
      this.#buf = next;
    }
    this.#pos = this.#buf.writeUInt32BE(key.length, this.#pos);
    this.#pos += key.copy(this.#buf, this.#pos);
    this.#pos = this.#buf.writeUInt32BE(object.length, this.#pos);
    this.#pos += object.copy(this.#buf, this.#pos);
    this.#count++;
  }

  /** The payload (decodeStreamScanReply reads it back as the entries added, in order). */
  finish(done: boolean, next: Buffer): Buffer {
    assert(next.length <= MAX_STREAM_POSITION_BYTES);
    let at = REPLY_HEADER_MAX_BYTES - (1 + 4 + next.length + 4);
    const start = at;
    at = this.#buf.writeUInt8(done ? 1 : 0, at);
    at = this.#buf.writeUInt32BE(next.length, at);
    at += next.copy(this.#buf, at);
    this.#buf.writeUInt32BE(this.#count, at);
    return this.#buf.subarray(start, this.#pos);
  }
}

export function decodeStreamScanReply(payload: Buffer): StreamScanReply {
  const r = new ByteReader(payload);
  const doneByte = r.u8('done');
  if (doneByte > 1) fail(`done flag ${doneByte}`);
  const nextLen = r.u32('next length');
  if (nextLen > MAX_STREAM_POSITION_BYTES) fail(`position of ${nextLen} bytes over ${MAX_STREAM_POSITION_BYTES}`);
  const next = Buffer.from(r.bytes(nextLen, 'next position'));
  const count = r.u32('entry count');
  if (count > MAX_STREAM_CHUNK_ENTRIES) fail(`${count} entries over ${MAX_STREAM_CHUNK_ENTRIES}`);
  // Each entry takes at least its two 4-byte lengths: a count the payload cannot hold is refused first.
  if (count * 8 > r.remaining) fail(`${count} entries do not fit in ${r.remaining} bytes`);
  const entries: StreamEntry[] = [];
  for (let i = 0; i < count; i++) {
    const keyLen = r.u32('key length');
    if (keyLen > MAX_WIRE_KEY_BYTES) fail(`key of ${keyLen} bytes over ${MAX_WIRE_KEY_BYTES}`);
    const key = Buffer.from(r.bytes(keyLen, 'key'));
    const objLen = r.u32('object length');
    if (objLen > MAX_STREAM_OBJECT_BYTES) fail(`object of ${objLen} bytes over ${MAX_STREAM_OBJECT_BYTES}`);
    entries.push({ key, object: Buffer.from(r.bytes(objLen, 'object')) });
  }
  r.end('stream scan reply');
  return { done: doneByte === 1, next, entries };
}

export function encodeStreamConfirm(fingerprint: string): Buffer {
  return new ByteWriter(2 + fingerprint.length).str8(fingerprint, MAX_FINGERPRINT_BYTES).finish();
}

export function decodeStreamConfirm(payload: Buffer): string {
  const r = new ByteReader(payload);
  const fp = r.str8(MAX_FINGERPRINT_BYTES, 'fingerprint', 1);
  r.end('stream confirm');
  return fp;
}
