// INFO `# Cluster` fields (cluster_info.ts): counts by state and liveness, ring, N/R/W, sloppy
// quorum, and the provider hook other subsystems add their fields through.
import t from 'tap';
import { ClusterInfoProviders, coreClusterInfoFields, type ClusterInfoInput } from '../../src/cluster/cluster_info.js';
import { newBusStats } from '../../src/cluster/connection.js';
import { FsmStats } from '../../src/coordinator/fsm_env.js';
import { buildRing } from '../../src/coordinator/ring.js';
import type { ClusterMemberView } from '../../src/server/cluster_view.js';
import { formatInfo } from '../../src/server/info.js';

const member = (id: string, state: string, liveness: ClusterMemberView['liveness']): ClusterMemberView => ({
  id, host: '127.0.0.1', port: 1, busPort: 2, dc: '', rack: '', weight: 1, state, liveness,
});

function input(): ClusterInfoInput {
  const members = [member('n1', 'up', 'suspect'), member('n2', 'up', 'down'), member('n3', 'joining', 'alive'), member('n4', 'leaving', 'suspect')];
  const stats = new FsmStats();
  stats.puts = 7;
  stats.writeNoQuorum = 2;
  return {
    selfId: 'n1',
    members,
    ring: buildRing(members.map((m) => ({ id: m.id, weight: 1, dc: '', rack: '', state: m.state as 'up' })), { vnodes: 8, n: 3 }),
    ringVersion: 4,
    n: 3,
    r: 'quorum',
    w: '2',
    sloppyQuorum: false,
    coordinator: stats,
    bus: newBusStats(),
  };
}

t.test('core fields', async (t) => {
  const f = new Map(coreClusterInfoFields(input()).map(([k, v]) => [k, String(v)]));
  t.same(
    Object.fromEntries(['cluster_enabled', 'cluster_node_id', 'cluster_members_total', 'cluster_members_joining', 'cluster_members_up', 'cluster_members_leaving', 'cluster_members_left', 'cluster_members_alive', 'cluster_members_suspect', 'cluster_members_down', 'cluster_ring_version', 'cluster_replication_factor', 'cluster_read_quorum', 'cluster_write_quorum', 'cluster_sloppy_quorum', 'cluster_coordinated_puts', 'cluster_write_noquorum'].map((k) => [k, f.get(k)])),
    {
      cluster_enabled: '1', cluster_node_id: 'n1', cluster_members_total: '4',
      cluster_members_joining: '1', cluster_members_up: '2', cluster_members_leaving: '1', cluster_members_left: '0',
      // n1 is this node: alive whatever its own row says.
      cluster_members_alive: '2', cluster_members_suspect: '1', cluster_members_down: '1',
      cluster_ring_version: '4', cluster_replication_factor: '3', cluster_read_quorum: 'quorum', cluster_write_quorum: '2',
      cluster_sloppy_quorum: 'no', cluster_coordinated_puts: '7', cluster_write_noquorum: '2',
    },
  );
  t.equal(f.get('cluster_ring_fingerprint'), input().ring.fingerprint);
});

t.test('providers add their fields after the core ones; a repeated name is a programmer error', async (t) => {
  const p = new ClusterInfoProviders();
  let pending = 3;
  p.add(() => [['hints_pending', pending], ['hints_bytes', 10]]);
  p.add(() => [['antientropy_rounds', 1]]);
  const core = coreClusterInfoFields(input());
  const out = p.fields(core);
  t.same(out.slice(core.length), [['hints_pending', 3], ['hints_bytes', 10], ['antientropy_rounds', 1]]);
  pending = 0;
  t.same(p.fields(core).slice(core.length)[0], ['hints_pending', 0], 'providers are read on every call');
  p.add(() => [['cluster_enabled', 1]]);
  t.throws(() => p.fields(core), /share a name/);
});

t.test('INFO text: # Cluster with cluster_enabled:0 on a lone node, the fields in a cluster', async (t) => {
  const base = { engine: {} } as unknown as Parameters<typeof formatInfo>[1];
  t.equal(formatInfo(['cluster'], base), '# Cluster\r\ncluster_enabled:0\r\n');
  const withCluster = { ...base, cluster: [['cluster_enabled', 1], ['cluster_members_total', 3]] as const };
  t.equal(formatInfo(['cluster'], withCluster), '# Cluster\r\ncluster_enabled:1\r\ncluster_members_total:3\r\n');
});
