// ringOptionsFromConfig: the ring's options as RingProvider asks for them on every request, kept
// while a config that reports its changes reports none of their keys; CONFIG SET of either key
// applies to the next call (and so to the next request's ring).
import t from 'tap';
import { Config } from '../../src/config/config.js';
import { RingProvider, ringOptionsFromConfig } from '../../src/coordinator/ring_provider.js';
import { TestConfig } from '../server/keyspace_fixture.js';

const MEMBERS = Object.freeze(['a', 'b', 'c', 'd'].map((id) => Object.freeze({ id, weight: 1, dc: 'dc1', rack: '', state: 'up' as const })));

t.test('a config that reports its changes is read again only after a change of vnodes or replication-factor', async (t) => {
  const config = Config.fromOverrides([
    ['replication-factor', '3'],
    ['vnodes', '16'],
  ]);
  let reads = 0;
  // The real Config behind a counter of its reads.
  const view = {
    getString: (k: string) => (reads++, config.getString(k)),
    getNumber: (k: string) => (reads++, config.getNumber(k)),
    getBool: (k: string) => (reads++, config.getBool(k)),
    onChange: (l: (key: string) => void) => config.onChange(l),
  };
  const options = ringOptionsFromConfig(view);
  const first = options();
  t.same(first, { vnodes: 16, n: 3 });
  const readsOnce = reads;
  for (let i = 0; i < 10; i++) t.equal(options(), first, 'the same options object');
  t.equal(reads, readsOnce, 'no config value read while nothing changed');

  t.equal(config.set([['maxclients', '5000']]), undefined);
  t.equal(options(), first, 'another key changed: kept');
  const rings = new RingProvider(() => MEMBERS, options);
  t.equal(rings.current().n, 3);
  t.equal(config.set([['replication-factor', '2']]), undefined);
  t.same(options(), { vnodes: 16, n: 2 }, 'CONFIG SET replication-factor applies to the next call');
  t.equal(rings.current().n, 2, 'and to the next ring');
  t.equal(rings.current().preflist(0).length, 2);
});

t.test('a config that does not report its changes is read on every call', async (t) => {
  const config = new TestConfig({ 'replication-factor': 3, vnodes: 16 });
  const options = ringOptionsFromConfig(config);
  t.same(options(), { vnodes: 16, n: 3 });
  config.values['replication-factor'] = 2;
  t.same(options(), { vnodes: 16, n: 2 }, 'a change shows at once');
});
