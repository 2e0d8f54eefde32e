/**
 * Conversions between the text form of a config value (conf file, command line, CONFIG SET)
 * and its canonical typed form. Pure functions.
 */
import type { ConfigKey, ConfigValue } from './schema.js';

export type ParseResult = { ok: true; value: ConfigValue } | { ok: false; error: string };

const UNIT_MULTIPLIERS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['k', 1000],
  ['kb', 1024],
  ['m', 1000 * 1000],
  ['mb', 1024 * 1024],
  ['g', 1000 * 1000 * 1000],
  ['gb', 1024 * 1024 * 1024],
]);

/** Redis's memtoll: '64mb' -> 67108864; undefined when malformed. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+)([a-z]*)$/i.exec(text.trim());
  if (m === null) return undefined;
  const mult = UNIT_MULTIPLIERS.get((m[2] ?? '').toLowerCase());
  if (mult === undefined) return undefined;
  const n = Number(m[1]) * mult;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The shortest exact human form: 1073741824 -> '1gb', 1500 -> '1500'. */
export function formatBytes(n: number): string {
  for (const [unit, mult] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (n >= mult && n % mult === 0) return `${n / mult}${unit}`;
  }
  return String(n);
}

function parseInteger(text: string): number | undefined {
  if (!/^-?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function parseValue(key: ConfigKey, text: string): ParseResult {
  const t = key.type;
  let value: ConfigValue;
  switch (t.kind) {
    case 'int': {
      const n = parseInteger(text.trim());
      if (n === undefined) return { ok: false, error: `argument couldn't be parsed into an integer` };
      if (n < t.min || n > t.max) return { ok: false, error: `argument must be between ${t.min} and ${t.max} inclusive` };
      value = n;
      break;
    }
    case 'bytes': {
      const n = parseBytes(text);
      if (n === undefined) return { ok: false, error: `argument must be a memory value` };
      if (n < t.min || n > t.max) return { ok: false, error: `argument must be between ${t.min} and ${t.max} inclusive` };
      value = n;
      break;
    }
    case 'bool': {
      const v = text.trim().toLowerCase();
      if (v !== 'yes' && v !== 'no') return { ok: false, error: `argument must be 'yes' or 'no'` };
      value = v === 'yes';
      break;
    }
    case 'enum': {
      const v = text.trim().toLowerCase();
      if (!t.values.includes(v)) return { ok: false, error: `argument(s) must be one of the following: ${t.values.join(', ')}` };
      value = v;
      break;
    }
    case 'string':
      value = text;
      break;
  }
  const problem = key.validate?.(value);
  if (problem !== undefined) return { ok: false, error: problem };
  return { ok: true, value };
}

/** The text CONFIG GET returns (sizes in plain bytes, booleans yes/no). */
export function formatValue(key: ConfigKey, value: ConfigValue): string {
  if (key.type.kind === 'bool') return value ? 'yes' : 'no';
  return String(value);
}

/** The text CONFIG REWRITE writes (sizes with units when exact). */
export function formatValueForFile(key: ConfigKey, value: ConfigValue): string {
  if (key.type.kind === 'bytes' && typeof value === 'number') return formatBytes(value);
  return formatValue(key, value);
}
