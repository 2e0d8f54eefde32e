// Settings come from the running config on every call; CLIENT QUORUM overrides become call options.
import t from 'tap';
import { callOptionsFor, settingsFromConfig } from '../../src/coordinator/coordinator_settings.js';
import { QuorumError } from '../../src/coordinator/quorum.js';
import { TestConfig } from '../server/keyspace_fixture.js';

t.test('settingsFromConfig reads the config each time', async (t) => {
  const config = new TestConfig({ 'read-quorum': 'quorum', 'write-quorum': '2', 'sloppy-quorum': 'yes', 'request-timeout-ms': 750 });
  t.same(settingsFromConfig(config), { readQuorum: 'quorum', writeQuorum: 2, sloppyQuorum: true, notfoundOk: true, requestTimeoutMs: 750, readFanout: 'quorum' });
  config.values['read-quorum'] = 'ALL';
  config.values['sloppy-quorum'] = 'no';
  t.same(settingsFromConfig(config), { readQuorum: 'all', writeQuorum: 2, sloppyQuorum: false, notfoundOk: true, requestTimeoutMs: 750, readFanout: 'quorum' }, 'a change shows at once');
  config.values['write-quorum'] = 'most';
  t.throws(() => settingsFromConfig(config), QuorumError);
});

t.test('callOptionsFor', async (t) => {
  t.same(callOptionsFor({}), {});
  t.same(callOptionsFor({ readQuorum: 'one', writeQuorum: '3' }), { r: 'one', w: 3 });
  t.same(callOptionsFor({ writeQuorum: 'each_quorum' }), { w: 'each_quorum' });
  t.throws(() => callOptionsFor({ readQuorum: '0' }), QuorumError);
});

t.test('a config that reports its changes is read again only after a change of these keys', async (t) => {
  const { Config } = await import('../../src/config/config.js');
  const config = Config.fromOverrides([
    ['read-quorum', 'quorum'],
    ['write-quorum', '2'],
  ]);
  let reads = 0;
  const listeners: Array<(key: string) => void> = [];
  // The real Config behind a counter of its reads and its listeners.
  const view = {
    getString: (k: string) => (reads++, config.getString(k)),
    getNumber: (k: string) => (reads++, config.getNumber(k)),
    getBool: (k: string) => (reads++, config.getBool(k)),
    onChange: (l: (key: string) => void) => (listeners.push(l), config.onChange(l)),
  };
  const first = settingsFromConfig(view);
  t.equal(first.readQuorum, 'quorum');
  const readsOnce = reads;
  t.ok(readsOnce > 0);
  for (let i = 0; i < 10; i++) t.equal(settingsFromConfig(view), first, 'the same settings object');
  t.equal(reads, readsOnce, 'no config value read while nothing changed');
  t.equal(listeners.length, 1, 'one listener per config');

  t.equal(config.set([['maxclients', '5000']]), undefined);
  t.equal(settingsFromConfig(view), first, 'another key changed: kept');
  t.equal(config.set([['read-quorum', 'all']]), undefined);
  t.equal(settingsFromConfig(view).readQuorum, 'all', 'CONFIG SET applies to the next request');
  t.equal(config.set([['sloppy-quorum', 'no']]), undefined);
  t.equal(settingsFromConfig(view).sloppyQuorum, false);

  // A second config in the same process (several nodes in one test) keeps its own settings.
  const other = Config.fromOverrides([['read-quorum', 'one']]);
  for (let i = 0; i < 5; i++) {
    t.equal(settingsFromConfig(other).readQuorum, 'one');
    t.equal(settingsFromConfig(view).readQuorum, 'all');
  }
  t.equal(listeners.length, 1, 'no listener added by switching configs');
});
