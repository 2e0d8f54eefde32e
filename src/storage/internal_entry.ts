/**
 * Internal entries: one version of a user key. Every write gets a sequence number; the internal
 * order is user key ascending (Buffer.compare, bytewise), then sequence number DESCENDING, so
 * the newest version of a key comes first and a reader at snapshot S takes the first version
 * with seq <= S.
 *
 * The same entry encoding is used in table data blocks and in the sorted runs handed to the
 * table-building worker:
 *
 *   entry := keyLen:varint valueLen:varint seq:varint kind:u8 time:varint key[keyLen] value[valueLen]
 *   kind  := 0 (tombstone; time = deleted-at ms) | 1 (value; time = expires-at ms, 0 = never)
 */
import { compareBytes } from './bytes.js';
import { ByteReader, FormatError, putVarint, varintLength } from './varint.js';

export const KIND_DELETE = 0;
export const KIND_PUT = 1;
export type Kind = typeof KIND_DELETE | typeof KIND_PUT;

export interface InternalEntry {
  key: Buffer;
  seq: number;
  kind: Kind;
  /** Tombstone: when it was deleted (ms). Value: when it expires (ms), 0 = never. */
  time: number;
  value: Buffer;
}

/** Internal order: key ascending, then seq descending. */
export function compareInternal(aKey: Buffer, aSeq: number, bKey: Buffer, bSeq: number): number {
  const c = compareBytes(aKey, bKey);
  if (c !== 0) return c;
  return aSeq > bSeq ? -1 : aSeq < bSeq ? 1 : 0;
}

/** True when the entry reads as absent at time nowMs (tombstone, or expired value). */
export function isDeadAt(e: InternalEntry, nowMs: number): boolean {
  return e.kind === KIND_DELETE || (e.time > 0 && nowMs >= e.time);
}

export function encodedEntryLength(e: InternalEntry): number {
  return (
    varintLength(e.key.length) +
    varintLength(e.value.length) +
    varintLength(e.seq) +
    1 +
    varintLength(e.time) +
    e.key.length +
    e.value.length
  );
}

/** Writes e at buf[pos] (room for encodedEntryLength(e) bytes); returns the position after it. */
export function encodeEntry(buf: Buffer, pos: number, e: InternalEntry): number {
  pos = putVarint(buf, pos, e.key.length);
  pos = putVarint(buf, pos, e.value.length);
  pos = putVarint(buf, pos, e.seq);
  buf[pos++] = e.kind;
  pos = putVarint(buf, pos, e.time);
  // set, not Buffer#copy (its argument handling, ~30 ns per call): the caller made room
  // (encodedEntryLength).
  buf.set(e.key, pos);
  pos += e.key.length;
  buf.set(e.value, pos);
  return pos + e.value.length;
}

/** Decodes the entry at r.pos; key and value are views into r.buf. */
export function decodeEntry(r: ByteReader): InternalEntry {
  const keyLen = r.varint();
  const valueLen = r.varint();
  const seq = r.varint();
  const kind = r.u8();
  if (kind !== KIND_DELETE && kind !== KIND_PUT) throw new FormatError(`bad entry kind ${kind}`);
  const time = r.varint();
  const key = r.bytes(keyLen);
  const value = r.bytes(valueLen);
  return { key, seq, kind, time, value };
}

/** Reads just the key of the entry at pos (for binary search inside a block). */
export function entryKeyAt(buf: Buffer, pos: number, end: number): { key: Buffer; seq: number } {
  const r = new ByteReader(buf, pos, end);
  const keyLen = r.varint();
  const valueLen = r.varint();
  const seq = r.varint();
  r.u8();
  r.varint();
  if (valueLen > r.remaining) throw new FormatError('value past end');
  return { key: r.bytes(keyLen), seq };
}
