/**
 * Binary format of a VersionedObject (stored on disk, sent between replicas). Canonical: an
 * object has exactly one encoding, so replicas holding equal objects hash equal bytes.
 *
 *   object     = magic:u8(0xD7) version:u8(0x01) clock siblings
 *   clock      = count:varint entry{count}            ; count <= MAX_CLOCK_ENTRIES,
 *                                                     ; actors strictly ascending (UTF-16 order)
 *   entry      = actorLen:varint actor:utf8{actorLen} ; 1 <= actorLen <= MAX_ACTOR_BYTES, strict UTF-8
 *                counter:varint                       ; 1 <= counter <= 2^53-1
 *                timeMs:varint                        ; clockTimesMs of the actor (0 if unknown)
 *   siblings   = count:varint sibling{count}          ; count <= MAX_SIBLINGS_LIMIT, canonical order
 *   sibling    = actorIndex:varint                    ; index into clock entries (< clock count)
 *                counter:varint                       ; 1 <= counter <= the clock's counter for actor
 *                writtenAtMs:varint expiresAtMs:varint
 *                kind:u8                              ; 0 = tombstone, 1 = value
 *                [valueLen:varint value:byte{valueLen}] ; only when kind = 1,
 *                                                     ; valueLen <= MAX_SIBLING_VALUE_BYTES
 *   varint     = unsigned LEB128, shortest form, at most 2^53-1
 *
 * Dots are unique. Nothing may follow the last sibling. decodeObject checks every count and
 * length against its limit and the bytes that remain before allocating, and every invariant
 * of object.ts; any violation throws CorruptObjectError.
 */

import assert from 'node:assert';
import { ByteReader, varintLength, writeVarint } from './bytes.js';
import { compareActors } from './dvv.js';
import { CorruptObjectError } from './errors.js';
import {
  MAX_ACTOR_BYTES,
  MAX_CLOCK_ENTRIES,
  MAX_COUNTER,
  MAX_SIBLINGS_LIMIT,
  MAX_SIBLING_VALUE_BYTES,
  MAX_TIME_MS,
} from './limits.js';
import type { Sibling, VersionedObject } from './object.js';

export const OBJECT_MAGIC = 0xd7;
export const OBJECT_FORMAT_VERSION = 1;

const KIND_TOMBSTONE = 0;
const KIND_VALUE = 1;

/** Up to this many clock actors a sibling's actor index is found by linear search, not a Map. */
const LINEAR_ACTOR_INDEX_MAX = 8;

/**
 * UTF-8 bytes of recently encoded actors. A node's objects carry a handful of actors (one per
 * coordinating node), encoded on every write: their bytes are made once, not per call (a
 * string's byteLength and utf8 write were a visible share of encodeObject). Bounded: cleared
 * when full.
 */
const actorUtf8Cache = new Map<string, Buffer>();
const ACTOR_UTF8_CACHE_MAX = 256;

function actorUtf8(actor: string): Buffer {
  let b = actorUtf8Cache.get(actor);
  if (b === undefined) {
    if (actorUtf8Cache.size >= ACTOR_UTF8_CACHE_MAX) actorUtf8Cache.clear();
    b = Buffer.from(actor, 'utf8');
    actorUtf8Cache.set(actor, b);
  }
  return b;
}

/** Index of `actor` in `actors` (sorted), or -1: linear for a few actors, a Map beyond. */
function actorIndex(actors: readonly string[], index: Map<string, number> | undefined, actor: string): number {
  if (index !== undefined) return index.get(actor) ?? -1;
  for (let i = 0; i < actors.length; i++) if (actors[i] === actor) return i;
  return -1;
}

export function encodeObject(obj: VersionedObject): Buffer {
  // Two passes: size everything, then write into one buffer (this runs on every write, so no
  // per-call closures or side arrays, and no index Map for the usual clock of a few actors).
  const actors = [...obj.clock.keys()];
  if (!isSorted(actors)) actors.sort(compareActors);
  const nActors = actors.length;
  let index: Map<string, number> | undefined;
  if (nActors > LINEAR_ACTOR_INDEX_MAX) {
    index = new Map<string, number>();
    for (let i = 0; i < nActors; i++) index.set(actors[i] as string, i);
  }
  const times = obj.clockTimesMs;
  let size = 2 + varintLength(nActors) + varintLength(obj.siblings.length);
  for (let i = 0; i < nActors; i++) {
    const actor = actors[i] as string;
    const len = actorUtf8(actor).length;
    size += varintLength(len) + len + varintLength(obj.clock.get(actor) as number) + varintLength(times?.get(actor) ?? 0);
  }
  const siblings = obj.siblings;
  for (let j = 0; j < siblings.length; j++) {
    const s = siblings[j] as Sibling;
    const i = actorIndex(actors, index, s.dot.actor);
    if (i < 0) throw new RangeError(`sibling actor ${s.dot.actor} is not in the clock`);
    size += varintLength(i) + varintLength(s.dot.counter) + varintLength(s.writtenAtMs) + varintLength(s.expiresAtMs) + 1;
    if (s.value !== null) size += varintLength(s.value.length) + s.value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  out[pos++] = OBJECT_MAGIC;
  out[pos++] = OBJECT_FORMAT_VERSION;
  pos = writeVarint(out, pos, nActors);
  for (let i = 0; i < nActors; i++) {
    const actor = actors[i] as string;
    const bytes = actorUtf8(actor);
    pos = writeVarint(out, pos, bytes.length);
    pos += bytes.copy(out, pos);
    pos = writeVarint(out, pos, obj.clock.get(actor) as number);
    pos = writeVarint(out, pos, times?.get(actor) ?? 0);
  }
  pos = writeVarint(out, pos, siblings.length);
  for (let j = 0; j < siblings.length; j++) {
    const s = siblings[j] as Sibling;
    pos = writeVarint(out, pos, actorIndex(actors, index, s.dot.actor));
    pos = writeVarint(out, pos, s.dot.counter);
    pos = writeVarint(out, pos, s.writtenAtMs);
    pos = writeVarint(out, pos, s.expiresAtMs);
    if (s.value === null) {
      out[pos++] = KIND_TOMBSTONE;
    } else {
      out[pos++] = KIND_VALUE;
      pos = writeVarint(out, pos, s.value.length);
      pos += s.value.copy(out, pos);
    }
  }
  if (pos !== size) assert.fail('object size miscomputed');
  return out;
}

function isSorted(actors: readonly string[]): boolean {
  for (let i = 1; i < actors.length; i++) if (compareActors(actors[i - 1] as string, actors[i] as string) >= 0) return false;
  return true;
}

/** The reader's error for a malformed object (one function, not a closure per decode). */
const corruptObject = (message: string): Error => new CorruptObjectError(`object: ${message}`);

export function decodeObject(buf: Buffer): VersionedObject {
  const r = new ByteReader(buf, corruptObject);
  const magic = r.u8('magic');
  if (magic !== OBJECT_MAGIC) throw new CorruptObjectError(`object: bad magic 0x${magic.toString(16)}`);
  const version = r.u8('version');
  if (version !== OBJECT_FORMAT_VERSION) throw new CorruptObjectError(`object: unsupported format version ${version}`);

  const nClock = r.varint('clock entry count', MAX_CLOCK_ENTRIES);
  const actors: string[] = [];
  const clock = new Map<string, number>();
  const times = new Map<string, number>();
  for (let i = 0; i < nClock; i++) {
    const len = r.varint('actor length', MAX_ACTOR_BYTES);
    if (len === 0) throw new CorruptObjectError('object: empty actor');
    const actor = r.utf8(len, 'actor');
    const prev = actors[actors.length - 1];
    if (prev !== undefined && compareActors(prev, actor) >= 0) {
      throw new CorruptObjectError('object: clock actors not strictly ascending');
    }
    const counter = r.varint('clock counter', MAX_COUNTER);
    if (counter === 0) throw new CorruptObjectError('object: clock counter 0');
    const t = r.varint('clock time', MAX_TIME_MS);
    actors.push(actor);
    clock.set(actor, counter);
    times.set(actor, t);
  }

  const nSiblings = r.varint('sibling count', MAX_SIBLINGS_LIMIT);
  const siblings: Sibling[] = [];
  // Duplicate dots need two siblings: one sibling (every plain write) allocates no set.
  const dots = nSiblings > 1 ? new Set<string>() : undefined;
  for (let i = 0; i < nSiblings; i++) {
    const ai = r.varint('sibling actor index', nClock === 0 ? 0 : nClock - 1);
    const actor = actors[ai];
    if (actor === undefined) throw new CorruptObjectError('object: sibling actor index with an empty clock');
    const counter = r.varint('sibling counter', clock.get(actor) as number);
    if (counter === 0) throw new CorruptObjectError('object: sibling counter 0');
    if (dots !== undefined) {
      const key = `${counter}@${actor}`;
      if (dots.has(key)) throw new CorruptObjectError(`object: duplicate dot ${key}`);
      dots.add(key);
    }
    const writtenAtMs = r.varint('writtenAtMs', MAX_TIME_MS);
    const expiresAtMs = r.varint('expiresAtMs', MAX_TIME_MS);
    const kind = r.u8('sibling kind');
    let value: Buffer | null;
    if (kind === KIND_TOMBSTONE) value = null;
    else if (kind === KIND_VALUE) value = r.bytes(r.varint('value length', MAX_SIBLING_VALUE_BYTES), 'value');
    else throw new CorruptObjectError(`object: bad sibling kind ${kind}`);
    const s: Sibling = { value, dot: { actor, counter }, writtenAtMs, expiresAtMs };
    const prev = siblings[siblings.length - 1];
    if (prev !== undefined && !siblingBefore(prev, s)) {
      throw new CorruptObjectError('object: siblings not in canonical order');
    }
    siblings.push(s);
  }
  r.end('object');
  return { clock, siblings: Object.freeze(siblings), clockTimesMs: times };
}

function siblingBefore(a: Sibling, b: Sibling): boolean {
  if (a.writtenAtMs !== b.writtenAtMs) return a.writtenAtMs < b.writtenAtMs;
  const c = compareActors(a.dot.actor, b.dot.actor);
  return c !== 0 ? c < 0 : a.dot.counter < b.dot.counter;
}
