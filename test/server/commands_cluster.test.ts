// CLUSTER subcommands of a cluster of one, in Redis 7.0's formats (compared with a real
// cluster-enabled redis-server 7.0.15 owning all slots).
import t from 'tap';
import { openFixture } from './keyspace_fixture.js';
import { splitAddress } from '../../src/server/commands/cluster.js';

t.test('KEYSLOT MYID COUNTKEYSINSLOT GETKEYSINSLOT', async (t) => {
  const fx = await openFixture(t);
  t.equal(await fx.run('CLUSTER', 'KEYSLOT', '{user}a'), 5474, 'hash tags as Redis (redis-server says 5474)');
  t.equal(await fx.run('CLUSTER', 'KEYSLOT', 'foo'), 12182);
  t.equal(await fx.run('CLUSTER', 'KEYSLOT', '{user}b'), 5474);
  t.same(await fx.run('CLUSTER', 'KEYSLOT'), { error: "ERR wrong number of arguments for 'cluster|keyslot' command" });
  const id = await fx.run('CLUSTER', 'MYID');
  t.match(id, /^[0-9a-f]{40}$/);
  t.equal(id, fx.ks.nodeId);

  await fx.run('MSET', '{user}a', '1', '{user}b', '2', '{user}c', '3', 'foo', '4');
  await fx.run('SET', '{user}t', 'v', 'PX', '5');
  t.equal(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', '5474'), 4);
  fx.clock.advance(6);
  await fx.run('DEL', '{user}c');
  t.equal(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', '5474'), 2, 'expired and deleted keys do not count');
  t.equal(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', '0'), 0);
  t.same(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', '16384'), { error: 'ERR Invalid slot' });
  t.same(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', '-1'), { error: 'ERR Invalid slot' });
  t.same(await fx.run('CLUSTER', 'COUNTKEYSINSLOT', 'abc'), { error: 'ERR value is not an integer or out of range' });
  t.same(((await fx.run('CLUSTER', 'GETKEYSINSLOT', '5474', '10')) as string[]).sort(), ['{user}a', '{user}b']);
  t.equal(((await fx.run('CLUSTER', 'GETKEYSINSLOT', '5474', '1')) as string[]).length, 1);
  t.same(await fx.run('CLUSTER', 'GETKEYSINSLOT', '1', '-1'), { error: 'ERR Invalid slot or number of keys' });
});

t.test('INFO NODES SLOTS SHARDS describe one node owning every slot', async (t) => {
  const fx = await openFixture(t);
  const info = (await fx.run('CLUSTER', 'INFO')) as string;
  t.match(info, /^cluster_state:ok\r\n/);
  t.match(info, /\r\ncluster_slots_assigned:16384\r\n/);
  t.match(info, /\r\ncluster_known_nodes:1\r\n/);
  t.match(info, /\r\ncluster_size:1\r\n/);
  const id = fx.ks.nodeId;
  t.equal(await fx.run('CLUSTER', 'NODES'), `${id} 127.0.0.1:7001@17001 myself,master - 0 0 0 connected 0-16383\n`);
  t.same(await fx.run('CLUSTER', 'SLOTS'), [[0, 16383, ['127.0.0.1', 7001, id, []]]]);
  t.same(await fx.run('CLUSTER', 'SHARDS'), [
    ['slots', [0, 16383], 'nodes', [['id', id, 'port', 7001, 'ip', '127.0.0.1', 'endpoint', '127.0.0.1', 'role', 'master', 'replication-offset', 0, 'health', 'online']]],
  ]);
  t.match(await fx.run('CLUSTER', 'HELP'), ['CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:']);
});

t.test('addresses', async (t) => {
  t.same(splitAddress('127.0.0.1:7001'), { ip: '127.0.0.1', port: 7001 });
  t.same(splitAddress('[::1]:6379'), { ip: '::1', port: 6379 });
  t.same(splitAddress('::ffff:127.0.0.1:6379'), { ip: '127.0.0.1', port: 6379 });
});
