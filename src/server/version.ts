/** ringkv's version (keep in step with package.json) and the Redis version whose behaviour it follows. */
export const RINGKV_VERSION = '0.1.0';
export const REDIS_COMPAT_VERSION = '7.0.0';
