/**
 * CONFIG GET answers for Redis parameters that ringkv has no setting for but Redis tools read.
 * redis-benchmark sends `CONFIG GET save` and `CONFIG GET appendonly` when it starts and prints
 * "WARNING: Could not fetch server CONFIG" unless each answers a (name, value) pair, as Redis
 * does. The values say what ringkv does, in Redis's terms:
 *   save        ""     no RDB snapshots are taken (what redis-server --save '' answers)
 *   appendonly  "yes"  every write is appended to the commit log before it is answered, always
 *                      (the AOF analogue; its fsync policy is the real `appendfsync` key)
 * They are read-only: CONFIG SET of them stays an unknown-option error, and they are not in the
 * config file (conf/ringkv.conf documents only what can be set). Config.match answers them.
 */
export const REDIS_COMPAT_CONFIG: readonly (readonly [string, string])[] = [
  ['save', ''],
  ['appendonly', 'yes'],
];
