/**
 * Hard limits of the storage engine's on-disk formats. Every length read from disk is checked
 * against one of these before anything is allocated, so a corrupt or hostile file can make an
 * open fail with ECORRUPT but never make the process allocate gigabytes or crash.
 * Configurable limits (EngineOptions.maxKeyBytes, ...) are clamped to these.
 */

/** Largest key the engine accepts (EngineOptions.maxKeyBytes is clamped to it). */
export const KEY_BYTES_HARD_MAX = 64 * 1024;
/** Largest value the engine accepts (EngineOptions.maxValueBytes is clamped to it). */
export const VALUE_BYTES_HARD_MAX = 64 * 1024 * 1024;
/** Largest data block, compressed or not: one oversized entry plus slack. */
export const BLOCK_BYTES_HARD_MAX = KEY_BYTES_HARD_MAX + VALUE_BYTES_HARD_MAX + 1024;
/** Largest commit-log record (one client write or batch). */
export const LOG_RECORD_BYTES_MAX = 256 * 1024 * 1024;
/** Largest commit-log file read at recovery (memtable bound plus one record, with margin). */
export const LOG_FILE_BYTES_MAX = 2 * 1024 * 1024 * 1024 - 1;
/** Largest table index block and bloom filter. */
export const TABLE_INDEX_BYTES_MAX = 256 * 1024 * 1024;
export const TABLE_FILTER_BYTES_MAX = 256 * 1024 * 1024;
/** Largest table file (offsets are stored as 48-bit integers; this is the practical cap). */
export const TABLE_FILE_BYTES_MAX = 2 ** 40;
/** Largest manifest body. */
export const MANIFEST_BYTES_MAX = 256 * 1024 * 1024;
/** Largest number of live tables a manifest may list. */
export const MANIFEST_TABLES_MAX = 1_000_000;
/** Sequence numbers stay below 2^53 so they fit a JS number exactly. */
export const SEQ_MAX = Number.MAX_SAFE_INTEGER;
