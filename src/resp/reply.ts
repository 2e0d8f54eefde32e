/**
 * A reply as a value. Command handlers return these; the connection encodes them for the
 * client's protocol (RESP2, or RESP3 after `HELLO 3`), so handlers never care which one.
 *
 * RESP2 renderings of the RESP3-only kinds: null -> `$-1`, nullArray -> `*-1`, map -> flat
 * array of key, value, ..., set -> array, double -> bulk string, bool -> integer 1/0,
 * verbatim -> bulk string, bigNumber -> bulk string.
 */

export type Reply =
  | { readonly kind: 'simple'; readonly value: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'integer'; readonly value: number | bigint }
  | { readonly kind: 'bulk'; readonly value: Buffer | string }
  | { readonly kind: 'null' }
  | { readonly kind: 'nullArray' }
  | { readonly kind: 'array'; readonly items: readonly Reply[] }
  | { readonly kind: 'map'; readonly entries: readonly (readonly [Reply, Reply])[] }
  | { readonly kind: 'set'; readonly items: readonly Reply[] }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'verbatim'; readonly format: 'txt' | 'mkd'; readonly value: string };

export const OK: Reply = Object.freeze({ kind: 'simple', value: 'OK' });
export const NIL: Reply = Object.freeze({ kind: 'null' });
export const NIL_ARRAY: Reply = Object.freeze({ kind: 'nullArray' });
export const EMPTY_ARRAY: Reply = Object.freeze({ kind: 'array', items: Object.freeze([]) });

export const simple = (value: string): Reply => ({ kind: 'simple', value });
/** `message` is the whole error line without the leading '-', e.g. 'ERR syntax error'. */
export const error = (message: string): Reply => ({ kind: 'error', message });
export const integer = (value: number | bigint): Reply => ({ kind: 'integer', value });
export const bulk = (value: Buffer | string): Reply => ({ kind: 'bulk', value });
export const bulkOrNil = (value: Buffer | string | undefined | null): Reply =>
  value === undefined || value === null ? NIL : { kind: 'bulk', value };
export const array = (items: readonly Reply[]): Reply => ({ kind: 'array', items });
export const bulks = (values: readonly (Buffer | string)[]): Reply => ({
  kind: 'array',
  items: values.map((value) => ({ kind: 'bulk', value })),
});
export const map = (entries: readonly (readonly [Reply, Reply])[]): Reply => ({ kind: 'map', entries });
export const set = (items: readonly Reply[]): Reply => ({ kind: 'set', items });
export const double = (value: number): Reply => ({ kind: 'double', value });
export const bool = (value: boolean): Reply => ({ kind: 'bool', value });
export const verbatim = (value: string, format: 'txt' | 'mkd' = 'txt'): Reply => ({
  kind: 'verbatim',
  format,
  value,
});
