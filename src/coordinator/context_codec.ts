/**
 * The causal context token clients carry between GETCTX and SETCTX/DELCTX: opaque, printable,
 * bounded. It is base64url (no padding) of:
 *
 *   context = version:u8(0x01) count:varint entry{count}   ; count <= MAX_CLOCK_ENTRIES
 *   entry   = actorLen:varint actor:utf8{actorLen}         ; 1..MAX_ACTOR_BYTES, strict UTF-8,
 *                                                          ; actors strictly ascending
 *             counter:varint                               ; 1..2^53-1
 *   varint  = unsigned LEB128, shortest form
 *
 * decodeContext rejects anything else with ContextError: characters outside base64url, a token
 * longer than MAX_CONTEXT_TOKEN_CHARS, non-canonical base64, lengths past their limits, trailing
 * bytes. A token is not authenticated: a client can forge one, which lets it supersede what it
 * names, no more than a DEL could.
 */

import { ByteReader, ByteWriter } from './bytes.js';
import { compareActors, type Context } from './dvv.js';
import { ContextError } from './errors.js';
import { MAX_ACTOR_BYTES, MAX_CLOCK_ENTRIES, MAX_CONTEXT_TOKEN_CHARS, MAX_COUNTER } from './limits.js';

export const CONTEXT_FORMAT_VERSION = 1;

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function encodeContext(ctx: Context): string {
  const w = new ByteWriter();
  w.u8(CONTEXT_FORMAT_VERSION);
  const actors = [...ctx.keys()].sort(compareActors);
  w.varint(actors.length);
  for (const actor of actors) {
    const bytes = Buffer.from(actor, 'utf8');
    w.varint(bytes.length);
    w.bytes(bytes);
    w.varint(ctx.get(actor) as number);
  }
  return w.finish().toString('base64url');
}

export function decodeContext(token: string): Context {
  if (token.length > MAX_CONTEXT_TOKEN_CHARS) {
    throw new ContextError(`context token longer than ${MAX_CONTEXT_TOKEN_CHARS} characters`);
  }
  if (!BASE64URL.test(token)) throw new ContextError('context token is not base64url');
  const buf = Buffer.from(token, 'base64url');
  if (buf.toString('base64url') !== token) throw new ContextError('context token is not canonical base64url');
  const r = new ByteReader(buf, (m) => new ContextError(`context token: ${m}`));
  const version = r.u8('version');
  if (version !== CONTEXT_FORMAT_VERSION) throw new ContextError(`context token: unsupported version ${version}`);
  const n = r.varint('entry count', MAX_CLOCK_ENTRIES);
  const out = new Map<string, number>();
  let prev: string | undefined;
  for (let i = 0; i < n; i++) {
    const len = r.varint('actor length', MAX_ACTOR_BYTES);
    if (len === 0) throw new ContextError('context token: empty actor');
    const actor = r.utf8(len, 'actor');
    if (prev !== undefined && compareActors(prev, actor) >= 0) {
      throw new ContextError('context token: actors not strictly ascending');
    }
    prev = actor;
    const counter = r.varint('counter', MAX_COUNTER);
    if (counter === 0) throw new ContextError('context token: counter 0');
    out.set(actor, counter);
  }
  r.end('context');
  return out;
}
