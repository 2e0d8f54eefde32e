/**
 * The fill and read phases of the storage benchmarks (bench/storage_run.ts), as the child
 * arguments bench/storage.ts (ringkv vs LevelDB) and bench/storage_ab.ts (build vs build) both
 * run, so the two measure exactly the same thing.
 */
const SINGLE_PUTS_MAX = 20_000;
const DURABLE_PUTS = 300;
const HOT_READS = 20_000;
const COLD_READS = 10_000;
const SCANS = 1_000;
/** Block cache of the read phase; the hot working set takes at most half of it in values. */
export const READ_CACHE_BYTES = 64 * 1024 * 1024;
export const PHASE_CHILD_TIMEOUT_MS = 30 * 60 * 1000;

/** storage_run.js arguments: fill (single puts, durable puts, batched fill of count values). */
export function fillArgs(engine: string, dir: string, count: number, valueBytes: number): string[] {
  return ['fill', engine, dir, String(count), String(valueBytes), String(Math.min(count, SINGLE_PUTS_MAX)), String(DURABLE_PUTS)];
}

/** storage_run.js arguments: read (hot gets over a working set that fits the cache, scans, cold gets). */
export function readArgs(engine: string, dir: string, count: number, valueBytes: number): string[] {
  const hot = Math.min(HOT_READS, count, Math.floor(READ_CACHE_BYTES / 2 / (valueBytes + 16)));
  return ['read', engine, dir, String(count), String(valueBytes), String(hot), String(COLD_READS), String(SCANS), String(READ_CACHE_BYTES)];
}

/** storage_run.js arguments: cold (the read phase's cold gets alone, on a filled directory). */
export function coldArgs(engine: string, dir: string, count: number, valueBytes: number): string[] {
  return ['cold', engine, dir, String(count), String(valueBytes), String(COLD_READS)];
}
