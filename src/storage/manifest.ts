/**
 * The manifest: the set of live tables and the engine's counters, replaced atomically as a
 * whole on every flush and compaction:
 *   write MANIFEST.tmp, fsync it, rename it over MANIFEST, fsync the directory.
 * A crash leaves either the old or the new file under the name MANIFEST; a leftover
 * MANIFEST.tmp is an orphan and is deleted at open.
 *
 * Format (little-endian; varints as in varint.ts):
 *   manifest := magic:"RKVMANIF" version:u32 bodyLen:u32 bodyCrc:u32 body[bodyLen]
 *   body     := nextFileNumber:varint lastSeq:varint logNumber:varint tableCount:varint table*
 *   table    := level:u8 fileNumber:varint size:varint smallestLen:varint smallest
 *               largestLen:varint largest smallestSeq:varint largestSeq:varint
 *               entries:varint tombstones:varint
 *   version 2 only (written when lost ranges exist; version 1 otherwise, so older builds
 *   still open a manifest without them):
 *   body    += lostCount:varint lost*
 *   lost     := smallestLen:varint smallest bounded:u8 [largestLen:varint largest] maxSeq:varint
 * logNumber: commit logs with a lower number are fully flushed into tables (obsolete).
 * lastSeq: highest sequence number stored in the tables.
 * lost: key ranges whose data `repair` dropped (lost_ranges.ts); bounded 0 = no upper bound.
 */
import { crc32 } from 'node:zlib';
import * as path from 'node:path';
import type { FileSystem } from './fs.js';
import { StorageError } from './types.js';
import { MANIFEST_BYTES_MAX, MANIFEST_TABLES_MAX } from './limits.js';
import type { TableMeta } from './table_format.js';
import { ByteReader, FormatError, putVarint, varintLength } from './varint.js';
import type { LostRange } from './lost_ranges.js';

export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_TMP_FILE = 'MANIFEST.tmp';
const MAGIC = Buffer.from('RKVMANIF', 'latin1');
const VERSION_PLAIN = 1;
const VERSION_WITH_LOST = 2;
/** Lost ranges one manifest may hold (one per table repair dropped, plus one for a lost manifest). */
export const MANIFEST_LOST_RANGES_MAX = 100_000;
const HEADER_BYTES = 20;
/** Levels 0..LEVELS-1. */
export const LEVELS = 7;

export interface ManifestTable extends TableMeta {
  level: number;
  fileNumber: number;
}

export interface ManifestState {
  nextFileNumber: number;
  lastSeq: number;
  logNumber: number;
  tables: ManifestTable[];
  /** Ranges repair dropped (lost_ranges.ts); absent or empty: none. */
  lostRanges?: LostRange[];
}

export function encodeManifest(m: ManifestState): Buffer {
  let len = varintLength(m.nextFileNumber) + varintLength(m.lastSeq) + varintLength(m.logNumber) + varintLength(m.tables.length);
  for (const t of m.tables) {
    len +=
      1 +
      varintLength(t.fileNumber) +
      varintLength(t.size) +
      varintLength(t.smallestKey.length) +
      t.smallestKey.length +
      varintLength(t.largestKey.length) +
      t.largestKey.length +
      varintLength(t.smallestSeq) +
      varintLength(t.largestSeq) +
      varintLength(t.entries) +
      varintLength(t.tombstones);
  }
  const lost = m.lostRanges ?? [];
  if (lost.length > 0) {
    len += varintLength(lost.length);
    for (const r of lost) {
      len += varintLength(r.smallestKey.length) + r.smallestKey.length + 1 + varintLength(r.maxSeq);
      if (r.largestKey !== null) len += varintLength(r.largestKey.length) + r.largestKey.length;
    }
  }
  const buf = Buffer.alloc(HEADER_BYTES + len);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(lost.length > 0 ? VERSION_WITH_LOST : VERSION_PLAIN, 8);
  buf.writeUInt32LE(len, 12);
  let p = HEADER_BYTES;
  p = putVarint(buf, p, m.nextFileNumber);
  p = putVarint(buf, p, m.lastSeq);
  p = putVarint(buf, p, m.logNumber);
  p = putVarint(buf, p, m.tables.length);
  for (const t of m.tables) {
    buf[p++] = t.level;
    p = putVarint(buf, p, t.fileNumber);
    p = putVarint(buf, p, t.size);
    p = putVarint(buf, p, t.smallestKey.length);
    p += t.smallestKey.copy(buf, p);
    p = putVarint(buf, p, t.largestKey.length);
    p += t.largestKey.copy(buf, p);
    p = putVarint(buf, p, t.smallestSeq);
    p = putVarint(buf, p, t.largestSeq);
    p = putVarint(buf, p, t.entries);
    p = putVarint(buf, p, t.tombstones);
  }
  if (lost.length > 0) {
    p = putVarint(buf, p, lost.length);
    for (const r of lost) {
      p = putVarint(buf, p, r.smallestKey.length);
      p += r.smallestKey.copy(buf, p);
      buf[p++] = r.largestKey === null ? 0 : 1;
      if (r.largestKey !== null) {
        p = putVarint(buf, p, r.largestKey.length);
        p += r.largestKey.copy(buf, p);
      }
      p = putVarint(buf, p, r.maxSeq);
    }
  }
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 16);
  return buf;
}

/** Decodes a manifest; throws FormatError on any damage. */
export function decodeManifest(buf: Buffer): ManifestState {
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) throw new FormatError('bad manifest magic');
  const version = buf.readUInt32LE(8);
  if (version !== VERSION_PLAIN && version !== VERSION_WITH_LOST) throw new FormatError(`unsupported manifest version ${version}`);
  const len = buf.readUInt32LE(12);
  if (len > MANIFEST_BYTES_MAX || len !== buf.length - HEADER_BYTES) throw new FormatError(`manifest length ${len} does not match file`);
  if (crc32(buf.subarray(HEADER_BYTES)) !== buf.readUInt32LE(16)) throw new FormatError('manifest checksum mismatch');
  const r = new ByteReader(buf, HEADER_BYTES);
  const nextFileNumber = r.varint();
  const lastSeq = r.varint();
  const logNumber = r.varint();
  const count = r.varint();
  if (count > MANIFEST_TABLES_MAX || count > r.remaining / 10) throw new FormatError(`manifest table count ${count} over limit`);
  const tables: ManifestTable[] = [];
  for (let i = 0; i < count; i++) {
    const level = r.u8();
    if (level >= LEVELS) throw new FormatError(`manifest table level ${level}`);
    const fileNumber = r.varint();
    const size = r.varint();
    const smallestKey = Buffer.from(r.bytes(r.varint()));
    const largestKey = Buffer.from(r.bytes(r.varint()));
    const smallestSeq = r.varint();
    const largestSeq = r.varint();
    const entries = r.varint();
    const tombstones = r.varint();
    if (fileNumber >= nextFileNumber) throw new FormatError(`manifest table ${fileNumber} >= next file number`);
    tables.push({ level, fileNumber, size, smallestKey, largestKey, smallestSeq, largestSeq, entries, tombstones });
  }
  if (version === VERSION_PLAIN) {
    if (r.remaining !== 0) throw new FormatError('trailing bytes in manifest');
    return { nextFileNumber, lastSeq, logNumber, tables };
  }
  const lostCount = r.varint();
  if (lostCount === 0 || lostCount > MANIFEST_LOST_RANGES_MAX || lostCount > r.remaining / 3) throw new FormatError(`manifest lost-range count ${lostCount} out of bounds`);
  const lostRanges: LostRange[] = [];
  for (let i = 0; i < lostCount; i++) {
    const smallestKey = Buffer.from(r.bytes(r.varint()));
    const bounded = r.u8();
    if (bounded > 1) throw new FormatError(`manifest lost-range bound flag ${bounded}`);
    const largestKey = bounded ? Buffer.from(r.bytes(r.varint())) : null;
    const maxSeq = r.varint();
    lostRanges.push({ smallestKey, largestKey, maxSeq });
  }
  if (r.remaining !== 0) throw new FormatError('trailing bytes in manifest');
  return { nextFileNumber, lastSeq, logNumber, tables, lostRanges };
}

/** Atomically replaces dir/MANIFEST (write tmp, fsync, rename, fsync dir). */
export async function writeManifest(fs: FileSystem, dir: string, m: ManifestState): Promise<void> {
  const tmp = path.join(dir, MANIFEST_TMP_FILE);
  const h = await fs.open(tmp, 'write');
  try {
    await h.append(encodeManifest(m));
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, path.join(dir, MANIFEST_FILE));
  await fs.syncDir(dir);
}

/** Reads dir/MANIFEST; undefined when absent; ECORRUPT when damaged. */
export async function readManifest(fs: FileSystem, dir: string): Promise<ManifestState | undefined> {
  const file = path.join(dir, MANIFEST_FILE);
  if (!(await fs.exists(file))) return undefined;
  const h = await fs.open(file, 'read');
  let buf: Buffer;
  try {
    const size = await h.size();
    if (size > MANIFEST_BYTES_MAX + HEADER_BYTES) throw new StorageError('ECORRUPT', `${MANIFEST_FILE}: ${size} bytes exceeds the manifest limit`);
    buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = await h.read(buf, done, size - done, done);
      if (n <= 0) break;
      done += n;
    }
    if (done !== size) throw new StorageError('ECORRUPT', `${MANIFEST_FILE}: short read`);
  } finally {
    await h.close();
  }
  try {
    return decodeManifest(buf);
  } catch (err) {
    if (err instanceof FormatError) throw new StorageError('ECORRUPT', `${MANIFEST_FILE} in ${dir}: ${err.message}`, { cause: err });
    throw err;
  }
}
