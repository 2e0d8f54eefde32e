/**
 * Parsing of expiry arguments with Redis 7.0's exact rules and error texts (pure):
 *  - SET / GETEX options (t_string.c parseExtendedStringArgumentsOrReply): NX XX GET KEEPTTL
 *    PERSIST EX PX EXAT PXAT, which combinations are a syntax error, and repeats (the last
 *    value of a repeated EX wins, as in Redis);
 *  - the expire value of SET/SETEX/PSETEX/GETEX/SETCTX (getExpireMillisecondsOrReply): > 0, no
 *    64-bit overflow after unit conversion and adding now;
 *  - EXPIRE family (expire.c expireGenericCommand): NX XX GT LT and the overflow checks.
 *
 * Times past MAX_TIME_MS (2^53 - 1 ms, the year 287396) are stored as MAX_TIME_MS: the object
 * model keeps times as JS safe integers. Only TTL/PTTL of such absurd expiries differ from Redis.
 */
import { MAX_TIME_MS } from '../../coordinator/limits.js';
import { invalidExpireError, LLONG_MAX, LLONG_MIN, NOT_INTEGER_ERROR, optionName, parseLongLong, SYNTAX_ERROR } from './redis_numbers.js';

export type ExpireUnit = 'EX' | 'PX' | 'EXAT' | 'PXAT';

export interface StringOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expire?: { unit: ExpireUnit; arg: Buffer };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Options of SET (from args[3]) or GETEX (from args[2]); `kind` says which words are allowed.
 * Like Redis, a word is accepted only when it does not conflict with what came before.
 */
export function parseStringOptions(args: readonly Buffer[], start: number, kind: 'set' | 'getex'): Parsed<StringOptions> {
  const o: StringOptions = { nx: false, xx: false, get: false, keepTtl: false, persist: false };
  const isSet = kind === 'set';
  for (let j = start; j < args.length; j++) {
    const opt = optionName(args[j]!);
    const next = j + 1 < args.length ? args[j + 1] : undefined;
    const unit = o.expire?.unit;
    if (opt === 'nx' && isSet && !o.xx) o.nx = true;
    else if (opt === 'xx' && isSet && !o.nx) o.xx = true;
    else if (opt === 'get' && isSet) o.get = true;
    else if (opt === 'keepttl' && isSet && !o.persist && unit === undefined) o.keepTtl = true;
    else if (opt === 'persist' && !isSet && unit === undefined && !o.keepTtl) o.persist = true;
    else if (
      (opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') &&
      !o.keepTtl &&
      !o.persist &&
      (unit === undefined || unit === opt.toUpperCase()) &&
      next !== undefined
    ) {
      o.expire = { unit: opt.toUpperCase() as ExpireUnit, arg: next };
      j++;
    } else {
      return { ok: false, error: SYNTAX_ERROR };
    }
  }
  return { ok: true, value: o };
}

/**
 * The absolute expiry in ms of an EX/PX/EXAT/PXAT value (Redis getExpireMillisecondsOrReply):
 * not an integer -> NOT_INTEGER_ERROR; <= 0 or overflowing -> invalid expire time in '<command>'.
 */
export function resolveStringExpire(arg: Buffer, unit: ExpireUnit, nowMs: number, command: string): Parsed<number> {
  let ms = parseLongLong(arg);
  if (ms === undefined) return { ok: false, error: NOT_INTEGER_ERROR };
  const seconds = unit === 'EX' || unit === 'EXAT';
  if (ms <= 0n || (seconds && ms > LLONG_MAX / 1000n)) return { ok: false, error: invalidExpireError(command) };
  if (seconds) ms *= 1000n;
  if (unit === 'EX' || unit === 'PX') {
    ms += BigInt(nowMs);
    // Redis adds in 64-bit arithmetic and rejects the overflow (it wraps to <= 0).
    if (ms > LLONG_MAX) return { ok: false, error: invalidExpireError(command) };
  }
  return { ok: true, value: clampTime(ms) };
}

export interface ExpireFlags {
  nx: boolean;
  xx: boolean;
  gt: boolean;
  lt: boolean;
}

/** NX XX GT LT from args[3] on (Redis parseExtendedExpireArgumentsOrReply). */
export function parseExpireFlags(args: readonly Buffer[]): Parsed<ExpireFlags> {
  const f: ExpireFlags = { nx: false, xx: false, gt: false, lt: false };
  for (let j = 3; j < args.length; j++) {
    const opt = optionName(args[j]!);
    if (opt === 'nx') f.nx = true;
    else if (opt === 'xx') f.xx = true;
    else if (opt === 'gt') f.gt = true;
    else if (opt === 'lt') f.lt = true;
    else return { ok: false, error: `ERR Unsupported option ${args[j]!.toString()}` };
  }
  if (f.nx && (f.xx || f.gt || f.lt)) return { ok: false, error: 'ERR NX and XX, GT or LT options at the same time are not compatible' };
  if (f.gt && f.lt) return { ok: false, error: 'ERR GT and LT options at the same time are not compatible' };
  return { ok: true, value: f };
}

/**
 * The absolute time in ms an EXPIRE-family argument names (may be in the past: the key is then
 * deleted). `relative`: EXPIRE/PEXPIRE (adds now); `seconds`: EXPIRE/EXPIREAT.
 */
export function resolveExpireWhen(arg: Buffer, seconds: boolean, relative: boolean, nowMs: number, command: string): Parsed<bigint> {
  let when = parseLongLong(arg);
  if (when === undefined) return { ok: false, error: NOT_INTEGER_ERROR };
  if (seconds) {
    if (when > LLONG_MAX / 1000n || when < LLONG_MIN / 1000n) return { ok: false, error: invalidExpireError(command) };
    when *= 1000n;
  }
  const base = relative ? BigInt(nowMs) : 0n;
  if (when > LLONG_MAX - base) return { ok: false, error: invalidExpireError(command) };
  return { ok: true, value: when + base };
}

/** EXPIRE's NX/XX/GT/LT verdict against the key's current expiry (0 = none): may it change? */
export function expireAllowed(f: ExpireFlags, currentMs: number, when: bigint): boolean {
  const has = currentMs > 0;
  if (f.nx && has) return false;
  if (f.xx && !has) return false;
  // GT: no expiry counts as infinite, so GT never applies to a persistent key.
  if (f.gt && (!has || when <= BigInt(currentMs))) return false;
  if (f.lt && has && when >= BigInt(currentMs)) return false;
  return true;
}

/** A positive time in ms as a safe integer (see the header for the clamp). */
export function clampTime(ms: bigint): number {
  return ms > BigInt(MAX_TIME_MS) ? MAX_TIME_MS : Number(ms);
}
