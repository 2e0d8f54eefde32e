// Seed list parsing: client ports map to port + 10000, '@' gives the bus port, IPv6 in brackets,
// duplicates dropped, bad entries refused with ERR_BAD_SEEDS.
import t from 'tap';
import { defaultBusPort, parseSeed, parseSeeds, SeedParseError } from '../../src/cluster/seeds.js';

t.test('valid seed lists', async (t) => {
  t.same(parseSeeds(''), []);
  t.same(parseSeeds('127.0.0.1:7001,127.0.0.1:7002'), [
    { host: '127.0.0.1', busPort: 17001 },
    { host: '127.0.0.1', busPort: 17002 },
  ]);
  t.same(parseSeeds(' a:7001  b:7002@30000, a:7001 '), [
    { host: 'a', busPort: 17001 },
    { host: 'b', busPort: 30000 },
  ]);
  t.same(parseSeed('[::1]:7001'), { host: '::1', busPort: 17001 });
  t.same(parseSeed('[fe80::1]:6379@16380'), { host: 'fe80::1', busPort: 16380 });
  t.equal(defaultBusPort(6379), 16379);
});

t.test('bad entries are refused with a typed error', async (t) => {
  for (const bad of ['host', ':7001', 'h:', 'h:0', 'h:65536', 'h:7001@', 'h:7001@70000', 'h:x', '::1:7001', '[::1]7001', 'h:60000', 'h:+7001']) {
    try {
      parseSeeds(bad);
      t.fail(`accepted '${bad}'`);
    } catch (e) {
      t.ok(e instanceof SeedParseError && e.code === 'ERR_BAD_SEEDS', `'${bad}': ${(e as Error).message}`);
    }
  }
  try {
    parseSeeds(Array.from({ length: 300 }, (_, i) => `h${i}:7001`).join(','));
    t.fail('accepted 300 seeds');
  } catch (e) {
    t.ok(e instanceof SeedParseError);
  }
});
