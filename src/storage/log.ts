/**
 * The commit log (write-ahead log): one file per memtable, named NNNNNN.log. Every client write
 * or batch is one record; a group commit appends several records with one write and (with
 * appendfsync 'always') one fsync.
 *
 * Format (all integers little-endian; varints as in varint.ts):
 *
 *   log     := record*
 *   record  := crc:u32 length:u32 payload[length]
 *              crc = CRC32(length:u32 ++ payload); 1 <= length <= LOG_RECORD_BYTES_MAX
 *   payload := firstSeq:varint count:varint op[count]
 *              op i of the record has sequence number firstSeq + i
 *   op      := kind:u8 keyLen:varint key[keyLen] time:varint value?
 *   kind    := 0 (delete; time = deleted-at ms) | 1 (put; time = expires-at ms or 0)
 *   value   := valueLen:varint value[valueLen]            (kind 1 only)
 *
 * A zero-filled or truncated tail never validates: the CRC covers the length, and CRC32 of four
 * zero bytes is not zero.
 *
 * Reading (parseLog): records are decoded in order. A record that fails (length past the end of
 * file, over the limit, bad CRC or undecodable payload) is either
 *  - a torn tail, when no valid record starts anywhere after it: the bytes from it to the end
 *    of file are dropped and reported (tornBytes); this is what a crash mid-append leaves;
 *  - damage in the middle, when a valid record starts later: parseLog throws
 *    StorageError('ECORRUPT') naming the file and offset, unless repair is set, in which case
 *    the damaged bytes are skipped, reported in `skipped`, and reading resumes at the next
 *    valid record. (Resynchronising scans byte by byte; it runs only on damage.)
 */
import { crc32 } from 'node:zlib';
import type { FileHandle } from './fs.js';
import { StorageError } from './types.js';
import { KIND_DELETE, KIND_PUT, type InternalEntry, type Kind } from './internal_entry.js';
import { LOG_RECORD_BYTES_MAX } from './limits.js';
import { ByteReader, FormatError, putVarint, varintLength } from './varint.js';

export const LOG_HEADER_BYTES = 8;

export interface LogOp {
  kind: Kind;
  key: Buffer;
  /** Empty for deletes. */
  value: Buffer;
  time: number;
}

export function logFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, '0')}.log`;
}

/** Bytes the record for ops takes, header included. */
export function recordLength(firstSeq: number, ops: readonly LogOp[]): number {
  let n = varintLength(firstSeq) + varintLength(ops.length);
  for (const op of ops) {
    n += 1 + varintLength(op.key.length) + op.key.length + varintLength(op.time);
    if (op.kind === KIND_PUT) n += varintLength(op.value.length) + op.value.length;
  }
  return LOG_HEADER_BYTES + n;
}

/**
 * Encodes one record at buf[pos] (the caller sized buf with recordLength) and, when `out` is
 * given, pushes the entries it holds onto it, with key and value as views into buf. Returns
 * the position after the record.
 */
export function writeRecord(
  buf: Buffer,
  pos: number,
  firstSeq: number,
  ops: readonly LogOp[],
  out?: InternalEntry[],
): number {
  const start = pos;
  let p = pos + LOG_HEADER_BYTES;
  p = putVarint(buf, p, firstSeq);
  p = putVarint(buf, p, ops.length);
  let seq = firstSeq;
  for (const op of ops) {
    buf[p++] = op.kind;
    p = putVarint(buf, p, op.key.length);
    const keyAt = p;
    // set, not Buffer#copy: copy's argument handling cost ~30 of its ~100 ns per op (a SET's
    // key and value); the caller sized buf, so no clamping is needed.
    buf.set(op.key, p);
    p += op.key.length;
    p = putVarint(buf, p, op.time);
    const valueAt = op.kind === KIND_PUT ? putVarint(buf, p, op.value.length) : p;
    if (op.kind === KIND_PUT) {
      buf.set(op.value, valueAt);
      p = valueAt + op.value.length;
    }
    out?.push({ key: buf.subarray(keyAt, keyAt + op.key.length), seq, kind: op.kind, time: op.time, value: op.kind === KIND_PUT ? buf.subarray(valueAt, p) : EMPTY });
    seq++;
  }
  const length = p - start - LOG_HEADER_BYTES;
  buf.writeUInt32LE(length, start + 4);
  // A plain Uint8Array view for the crc: a Buffer's subarray is a FastBuffer, made through the
  // species constructor (~10 ns more, once per record: per SET at -P 1).
  buf.writeUInt32LE(crc32(new Uint8Array(buf.buffer, buf.byteOffset + start + 4, p - start - 4)), start);
  return p;
}

const EMPTY = Buffer.alloc(0);

export interface LogBatch {
  firstSeq: number;
  entries: InternalEntry[];
}

export interface ParsedLog {
  batches: LogBatch[];
  /** Bytes dropped from the tail (a torn last write). */
  tornBytes: number;
  /** Offset where the torn tail starts (== file length when none). */
  validBytes: number;
  /** Damaged ranges skipped in the middle (repair mode only). */
  skipped: { offset: number; bytes: number }[];
}

/** Decodes the record at pos or returns undefined when it does not validate. */
function tryRecord(buf: Buffer, pos: number): { batch: LogBatch; end: number } | undefined {
  if (buf.length - pos < LOG_HEADER_BYTES) return undefined;
  const length = buf.readUInt32LE(pos + 4);
  if (length < 2 || length > LOG_RECORD_BYTES_MAX || length > buf.length - pos - LOG_HEADER_BYTES) return undefined;
  const end = pos + LOG_HEADER_BYTES + length;
  if (crc32(buf.subarray(pos + 4, end)) !== buf.readUInt32LE(pos)) return undefined;
  try {
    const entries: InternalEntry[] = [];
    const firstSeq = decodePayload(buf, pos + LOG_HEADER_BYTES, end, entries);
    return { batch: { firstSeq, entries }, end };
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  }
}

/** Decodes one record's payload, pushing its entries (views into buf) onto out; returns firstSeq. */
function decodePayload(buf: Buffer, pos: number, end: number, out: InternalEntry[]): number {
  const r = new ByteReader(buf, pos, end);
  const firstSeq = r.varint();
  const count = r.varint();
  // Each op takes at least 3 bytes: check before allocating anything per op.
  if (count > r.remaining / 3) throw new FormatError(`op count ${count} exceeds record`);
  for (let i = 0; i < count; i++) {
    const kind = r.u8();
    if (kind !== KIND_DELETE && kind !== KIND_PUT) throw new FormatError(`bad op kind ${kind}`);
    const key = r.bytes(r.varint());
    const time = r.varint();
    const value = kind === KIND_PUT ? r.bytes(r.varint()) : EMPTY;
    out.push({ key, seq: firstSeq + i, kind, time, value });
  }
  if (r.remaining !== 0) throw new FormatError('trailing bytes in record');
  return firstSeq;
}

/** Parses a whole log file's bytes; see the header comment for torn-tail and damage rules. */
export function parseLog(buf: Buffer, fileName: string, repair: boolean): ParsedLog {
  const batches: LogBatch[] = [];
  const skipped: { offset: number; bytes: number }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const rec = tryRecord(buf, pos);
    if (rec) {
      batches.push(rec.batch);
      pos = rec.end;
      continue;
    }
    let next = -1;
    for (let q = pos + 1; q + LOG_HEADER_BYTES <= buf.length; q++) {
      if (tryRecord(buf, q)) {
        next = q;
        break;
      }
    }
    if (next < 0) return { batches, tornBytes: buf.length - pos, validBytes: pos, skipped };
    if (!repair) {
      throw new StorageError(
        'ECORRUPT',
        `commit log ${fileName}: damaged record at offset ${pos} followed by valid records at offset ${next}; ` +
          `${next - pos} bytes unreadable (open with repair to drop them)`,
      );
    }
    skipped.push({ offset: pos, bytes: next - pos });
    pos = next;
  }
  return { batches, tornBytes: 0, validBytes: buf.length, skipped };
}

/** Appends pre-encoded records to an open log file. Owns the handle. */
export class LogWriter {
  bytesWritten = 0;
  /** True when bytes were appended since the last sync. */
  dirty = false;
  constructor(
    readonly fileNumber: number,
    private readonly handle: FileHandle,
  ) {}

  /** Appends records (synchronously when the handle can: see FileHandle.appendSync). */
  async append(records: Buffer): Promise<void> {
    this.dirty = true;
    if (this.handle.appendSync) this.handle.appendSync(records);
    else await this.handle.append(records);
    this.bytesWritten += records.length;
  }

  async sync(): Promise<void> {
    this.dirty = false;
    await this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
