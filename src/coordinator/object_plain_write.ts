/**
 * The plain write (a SET/DEL that supersedes everything the local object has seen) done on the
 * stored bytes, without decoding into a VersionedObject and encoding back; and the plain read
 * (GET's one live value) of the same shape (plainValueView, below).
 *
 * Contract: for every input it accepts, `plainWriteBytes(stored, actor, w)` returns exactly
 *
 *   encodeObject(applyWrite(obj, contextOf(obj), actor, w, opts))   with obj = decodeObject(stored)
 *                                                                   (EMPTY_OBJECT when absent)
 *
 * for any valid `opts` (the plain write of such an object is the same under every conflict
 * policy, sibling cap and clock cap, see below), plus the liveness of the object it replaces.
 * It accepts only the shape one node's own plain writes leave, which is nearly every write:
 * no stored object, or a clock of ONE entry (this actor) and at most one sibling. It returns
 * undefined for everything else (other actors in the clock, siblings, a counter at its limit, or
 * bytes decodeObject would reject as corrupt): the caller then takes the general path, which
 * gives the same result or the same error. So the fast path changes no outcome; it skips the
 * Maps, arrays and sibling objects of decode + applyWrite + encode (the GC share of every SET).
 *
 * Why the result does not depend on opts for this shape: the minted sibling is the only one
 * (the context is the object's own clock, which covers every stored sibling), the clock keeps
 * one entry (<= any vclock-max-entries), and one sibling is within any max-siblings and lww.
 *
 * object_plain_write.test.ts checks both contracts against the general path with fast-check.
 */
import { varintLength } from './bytes.js';
import { MAX_ACTOR_BYTES, MAX_COUNTER, MAX_SIBLING_VALUE_BYTES, MAX_TIME_MS } from './limits.js';
import { OBJECT_FORMAT_VERSION, OBJECT_MAGIC } from './object_codec.js';

const KIND_TOMBSTONE = 0;
const KIND_VALUE = 1;
/** A varint of a safe integer takes at most 8 bytes (bytes.ts). */
const MAX_VARINT_BYTES = 8;

/** The write: a value (null: tombstone), its time and its expiry (0: none). */
export interface PlainWrite {
  readonly value: Buffer | null;
  readonly writtenAtMs: number;
  readonly expiresAtMs: number;
}

/** What the fast path produced: the bytes to store and whether the replaced object was live. */
export interface PlainWriteResult {
  readonly bytes: Buffer;
  /** The replaced object had a live value at `writtenAtMs` (a value sibling not expired). */
  readonly beforeLive: boolean;
  /** Its expiry when live (0: none). */
  readonly beforeExpiresAtMs: number;
}

/**
 * See the header. `actorUtf8` is the writing actor's UTF-8 bytes (1..MAX_ACTOR_BYTES; the
 * caller encodes it once). undefined: take the general path.
 */
export function plainWriteBytes(stored: Buffer | undefined, actorUtf8: Buffer, w: PlainWrite): PlainWriteResult | undefined {
  const actorLen = actorUtf8.length;
  if (actorLen < 1 || actorLen > MAX_ACTOR_BYTES) return undefined;
  if (!validTime(w.writtenAtMs) || !validTime(w.expiresAtMs)) return undefined;
  if (w.value !== null && w.value.length > MAX_SIBLING_VALUE_BYTES) return undefined;
  let oldCounter = 0;
  let oldTime = 0;
  let beforeLive = false;
  let beforeExpiresAtMs = 0;
  if (stored !== undefined) {
    const p = parseOwnObject(stored, actorUtf8);
    if (p === undefined) return undefined;
    oldCounter = p.counter;
    oldTime = p.timeMs;
    if (p.liveValue && (p.expiresAtMs === 0 || w.writtenAtMs <= p.expiresAtMs)) {
      beforeLive = true;
      beforeExpiresAtMs = p.expiresAtMs;
    }
  }
  if (oldCounter >= MAX_COUNTER) return undefined; // applyWrite asserts: let it
  const counter = oldCounter + 1;
  // The actor's entry advanced: its time is the newest write's (applyWrite: max(old, writtenAt)).
  const timeMs = Math.max(oldTime, w.writtenAtMs);
  const value = w.value;
  const size =
    2 + 1 + varintLength(actorLen) + actorLen + varintLength(counter) + varintLength(timeMs) + 1 +
    1 + varintLength(counter) + varintLength(w.writtenAtMs) + varintLength(w.expiresAtMs) + 1 +
    (value === null ? 0 : varintLength(value.length) + value.length);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  out[pos++] = OBJECT_MAGIC;
  out[pos++] = OBJECT_FORMAT_VERSION;
  out[pos++] = 1; // one clock entry
  pos = putVarint(out, pos, actorLen);
  out.set(actorUtf8, pos);
  pos += actorLen;
  pos = putVarint(out, pos, counter);
  pos = putVarint(out, pos, timeMs);
  out[pos++] = 1; // one sibling
  out[pos++] = 0; // its actor: clock entry 0
  pos = putVarint(out, pos, counter);
  pos = putVarint(out, pos, w.writtenAtMs);
  pos = putVarint(out, pos, w.expiresAtMs);
  if (value === null) {
    out[pos++] = KIND_TOMBSTONE;
  } else {
    out[pos++] = KIND_VALUE;
    pos = putVarint(out, pos, value.length);
    out.set(value, pos);
    pos += value.length;
  }
  if (pos !== size) return undefined; // cannot happen (sized above); never store a short buffer
  return { bytes: out, beforeLive, beforeExpiresAtMs };
}

/**
 * bytes.ts writeVarint without its range assertion (an assert call per field of every SET): every
 * value written here is a safe integer >= 0, checked above (validTime, MAX_COUNTER, the value
 * length within MAX_SIBLING_VALUE_BYTES, the actor length within MAX_ACTOR_BYTES). The low 7
 * bits as v - 128 * floor(v / 128), not v % 128: a time in ms is over 2^31, so v is a double,
 * and V8 compiles a double's % to a call of C's fmod (two times of 6 bytes per SET: ~40% of
 * plainWriteBytes' time); the subtraction is exact for safe integers.
 */
function putVarint(buf: Buffer, pos: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    const high = Math.floor(v / 128);
    buf[pos++] = (v - high * 128) | 0x80;
    v = high;
  }
  buf[pos++] = v;
  return pos;
}

function validTime(ms: number): boolean {
  return Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIME_MS;
}

/**
 * An object of the plain shape (one clock entry, at most one sibling), as parsePlainObject reads
 * it. One shared record (`own`), overwritten by the next parse: read it before parsing again.
 */
export interface PlainObject {
  /** Where the clock's one actor (UTF-8) starts in the buffer, and its length. */
  actorStart: number;
  actorLen: number;
  /** The clock's counter and time (clockTimesMs) of that actor. */
  counter: number;
  timeMs: number;
  /** Whether there is a sibling (of that actor, counter siblingCounter <= counter). */
  hasSibling: boolean;
  siblingCounter: number;
  writtenAtMs: number;
  /** The one sibling is a value (not a tombstone; false when there is no sibling). */
  liveValue: boolean;
  expiresAtMs: number;
  /** Where the value's bytes start (they run to the end of the buffer); only when liveValue. */
  valueStart: number;
}

/**
 * The read side of the same shape: the live value of `stored` at `nowMs` as decodeObject +
 * liveSiblings would give it, without building the object. A Buffer: the only live value, a
 * VIEW into `stored` (not a copy: it shares stored's memory and lifetime); null: no live value
 * (a tombstone, an expired value, no sibling); undefined: not this node's own one-sibling
 * object, or bytes decodeObject rejects (take the general path, which decodes or reports them).
 */
export function plainValueView(stored: Buffer, actorUtf8: Buffer, nowMs: number): Buffer | null | undefined {
  const p = parseOwnObject(stored, actorUtf8);
  if (p === undefined) return undefined;
  if (!p.liveValue || (p.expiresAtMs !== 0 && nowMs > p.expiresAtMs)) return null;
  return stored.subarray(p.valueStart);
}

/**
 * Whether `buf` is an object of the plain shape of any ASCII actor (see parsePlainObject): then
 * decodeObject accepts it, so a receiver may keep the bytes and decode them only if needed.
 */
export function isPlainObjectBytes(buf: Buffer): boolean {
  return parsePlainObject(buf, undefined, 0, 0) !== undefined;
}

/** The plain shape of this node's own object: parsePlainObject with this node's actor. */
function parseOwnObject(buf: Buffer, actorUtf8: Buffer): PlainObject | undefined {
  return parsePlainObject(buf, actorUtf8, 0, actorUtf8.length);
}

/**
 * Parses `buf` when it is an object of the plain shape whose actor is the bytes
 * actor[actorStart, actorStart + actorLen), or, when `actor` is undefined, of any ASCII actor
 * (ASCII is its own strict UTF-8, so decodeObject accepts it as an actor), with every check
 * decodeObject makes on it (canonical varints within their limits, counters >= 1, the sibling's
 * counter covered by the clock, a known kind, the value length within what remains, nothing
 * after the end). undefined for any other shape or any violation. The answer is one shared record
 * (`own`, see PlainObject): every caller reads it at once.
 */
export function parsePlainObject(buf: Buffer, actor: Uint8Array | undefined, actorStart: number, actorLen: number): PlainObject | undefined {
  const n = buf.length;
  if (n < 3 || buf[0] !== OBJECT_MAGIC || buf[1] !== OBJECT_FORMAT_VERSION || buf[2] !== 1) return undefined;
  at = 3;
  const len = readVarint(buf, MAX_ACTOR_BYTES);
  if (len < 1 || at + len > n) return undefined;
  const start = at;
  if (actor === undefined) {
    for (let i = 0; i < len; i++) if (buf[start + i]! >= 0x80) return undefined;
  } else {
    if (len !== actorLen) return undefined;
    for (let i = 0; i < len; i++) if (buf[start + i] !== actor[actorStart + i]) return undefined;
  }
  at += len;
  const counter = readVarint(buf, MAX_COUNTER);
  if (counter < 1) return undefined;
  const timeMs = readVarint(buf, MAX_TIME_MS);
  if (timeMs < 0) return undefined;
  const nSiblings = readVarint(buf, 1);
  if (nSiblings < 0) return undefined;
  own.actorStart = start;
  own.actorLen = len;
  own.counter = counter;
  own.timeMs = timeMs;
  if (nSiblings === 0) return at === n ? ownSibling(false, 0, 0, false, 0, 0) : undefined;
  if (readVarint(buf, 0) !== 0) return undefined; // sibling actor index: entry 0
  const sc = readVarint(buf, counter);
  if (sc < 1) return undefined;
  const writtenAtMs = readVarint(buf, MAX_TIME_MS);
  if (writtenAtMs < 0) return undefined;
  const expiresAtMs = readVarint(buf, MAX_TIME_MS);
  if (expiresAtMs < 0 || at >= n) return undefined;
  const kind = buf[at++];
  if (kind === KIND_TOMBSTONE) return at === n ? ownSibling(true, sc, writtenAtMs, false, expiresAtMs, 0) : undefined;
  if (kind !== KIND_VALUE) return undefined;
  const valueLen = readVarint(buf, MAX_SIBLING_VALUE_BYTES);
  if (valueLen < 0 || at + valueLen !== n) return undefined;
  return ownSibling(true, sc, writtenAtMs, true, expiresAtMs, at);
}

/** parsePlainObject's answer (module state: the parse is synchronous; no object per read or write). */
const own: PlainObject = {
  actorStart: 0,
  actorLen: 0,
  counter: 0,
  timeMs: 0,
  hasSibling: false,
  siblingCounter: 0,
  writtenAtMs: 0,
  liveValue: false,
  expiresAtMs: 0,
  valueStart: 0,
};

function ownSibling(hasSibling: boolean, siblingCounter: number, writtenAtMs: number, liveValue: boolean, expiresAtMs: number, valueStart: number): PlainObject {
  own.hasSibling = hasSibling;
  own.siblingCounter = siblingCounter;
  own.writtenAtMs = writtenAtMs;
  own.liveValue = liveValue;
  own.expiresAtMs = expiresAtMs;
  own.valueStart = valueStart;
  return own;
}

/** parsePlainObject's read position (module state: the parse is synchronous and allocates nothing). */
let at = 0;

/** A canonical varint <= max at `at` (advanced past it), or -1 (truncated, too long, non-canonical, over max). */
function readVarint(buf: Buffer, max: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const b = buf[at];
    if (b === undefined) return -1;
    at++;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) return -1;
      return value > max ? -1 : value;
    }
    scale *= 128;
  }
  return -1;
}
