// The keyspace's write limits (max-key-bytes, max-value-bytes, gc-grace-seconds) from a config
// that reports its changes: read once and kept until one of them changes (CONFIG SET applies to
// the next write); from any other config, read on every write.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { Config, type ConfigListener } from '../../src/config/config.js';
import { Keyspace, KeyspaceError } from '../../src/server/keyspace.js';
import type { ConfigView } from '../../src/server/types.js';
import { TestConfig } from './keyspace_fixture.js';

/** The part of tap's Test used here. */
interface Tap {
  teardown(fn: () => Promise<void>): void;
}

const LIMIT_KEYS = ['max-key-bytes', 'max-value-bytes', 'gc-grace-seconds'];

/** A Config whose getNumber calls of the limit keys are counted. */
class CountingConfig implements ConfigView {
  reads = 0;
  constructor(readonly inner: Config) {}
  getString(key: string): string {
    return this.inner.getString(key);
  }
  getNumber(key: string): number {
    if (LIMIT_KEYS.includes(key)) this.reads++;
    return this.inner.getNumber(key);
  }
  getBool(key: string): boolean {
    return this.inner.getBool(key);
  }
  listeners = 0;
  onChange(listener: ConfigListener): () => void {
    this.listeners++;
    const off = this.inner.onChange(listener);
    return () => {
      this.listeners--;
      off();
    };
  }
}

async function open(t: Tap, config: ConfigView): Promise<Keyspace> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-limits-'));
  const ks = await Keyspace.open({ dir, config, now: () => Date.now(), log: () => undefined });
  t.teardown(async () => {
    await ks.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return ks;
}

const v = (n: number): Buffer => Buffer.alloc(n, 0x61);

t.test('a config that reports its changes: the limits are read once, and again after a change', async (t) => {
  const config = new CountingConfig(Config.fromOverrides([['appendfsync', 'no'], ['max-value-bytes', '64']]));
  const ks = await open(t, config);
  await ks.writeValue(Buffer.from('k0'), { value: v(10), expiresAtMs: 0 });
  const afterFirst = config.reads;
  for (let i = 0; i < 100; i++) await ks.writeValue(Buffer.from(`k${i}`), { value: v(64), expiresAtMs: 0 });
  ks.checkKey(Buffer.from('k'));
  ks.checkValue(64);
  t.equal(config.reads, afterFirst, 'no limit read by later writes and checks');
  t.throws(() => ks.checkValue(65), KeyspaceError);
  t.equal(config.inner.set([['max-value-bytes', '128']]), undefined);
  await ks.writeValue(Buffer.from('k1'), { value: v(128), expiresAtMs: 0 });
  t.ok(config.reads > afterFirst, 'read again after max-value-bytes changed');
  t.throws(() => ks.writeValue(Buffer.from('k1'), { value: v(129), expiresAtMs: 0 }), /over max-value-bytes \(128\)/);
  const afterChange = config.reads;
  t.equal(config.inner.set([['slowlog-max-len', '7']]), undefined);
  ks.checkValue(128);
  t.equal(config.reads, afterChange, 'a change of another key keeps them');
  t.equal(config.inner.set([['max-key-bytes', '4']]), undefined);
  t.throws(() => ks.checkKey(Buffer.from('kkkkk')), /over max-key-bytes \(4\)/, 'max-key-bytes applies to the next check');
  t.equal(config.listeners, 1, 'one listener');
  await ks.close();
  t.equal(config.listeners, 0, 'removed by close');
});

t.test('a config that does not report its changes is read on every write', async (t) => {
  const config = new TestConfig({ 'max-value-bytes': 64 });
  const ks = await open(t, config);
  await ks.writeValue(Buffer.from('k'), { value: v(64), expiresAtMs: 0 });
  config.values['max-value-bytes'] = 32;
  t.throws(() => ks.writeValue(Buffer.from('k'), { value: v(33), expiresAtMs: 0 }), /over max-value-bytes \(32\)/);
  config.values['max-key-bytes'] = 2;
  t.throws(() => ks.checkKey(3), /over max-key-bytes \(2\)/);
});
