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
