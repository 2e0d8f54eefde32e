// CLUSTER SLOTS / NODES / INFO / PREFLIST of a node in a cluster, from a ring and a membership
// snapshot (pure): every slot covered once, the first healthy replica listed as master, down
// nodes flagged, fallbacks shown for down primaries.
import t from 'tap';
import { buildRing } from '../../src/coordinator/ring.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';
import type { ClusterMemberView } from '../../src/server/cluster_view.js';
import { clusterInfoTextOf, clusterNodesText, clusterSlotsReply, preflistReply, slotShards, type TopologySnapshot } from '../../src/server/commands/cluster_topology.js';
import { plain } from './keyspace_fixture.js';

const ids = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd'.repeat(40)];

function snapshot(n: number, down: ReadonlySet<string>, count = 3): TopologySnapshot {
  const members: ClusterMemberView[] = ids.slice(0, count).map((id, i) => ({
    id,
    host: '127.0.0.1',
    port: 7001 + i,
    busPort: 17001 + i,
    dc: 'dc1',
    rack: '',
    weight: 1,
    state: 'up',
    liveness: down.has(id) ? 'down' : 'alive',
  }));
  const ring = buildRing(members.map((m) => ({ id: m.id, weight: 1, dc: 'dc1', rack: '', state: 'up' })), { vnodes: 32, n });
  return { selfId: ids[0]!, ring, members, isUp: (id) => !down.has(id) };
}

t.test('every slot is in exactly one shard; the master is the first up replica', async (t) => {
  const healthy = slotShards(snapshot(2, new Set()));
  let next = 0;
  for (const s of healthy) {
    t.equal(s.start, next, 'ranges are contiguous');
    next = s.end + 1;
  }
  t.equal(next, SLOT_COUNT, 'and cover all slots');
  const ring = snapshot(2, new Set()).ring;
  t.ok(healthy.every((s) => s.replicas[0] === ring.preflist(s.start)[0] && s.replicas.length === 2), 'healthy: the primary first');

  const downB = snapshot(2, new Set([ids[1]!]));
  const shards = slotShards(downB);
  t.ok(shards.every((s) => s.replicas[0] !== ids[1]), 'a down node is never listed first');
  t.ok(shards.some((s) => s.replicas[1] === ids[1]), 'it stays listed as a replica');
  const slots = plain(clusterSlotsReply(downB)) as unknown as Array<[number, number, [string, number, string, unknown[]], [string, number, string, unknown[]]]>;
  t.equal(slots.length, shards.length);
  t.same(slots[0]!.slice(0, 2), [shards[0]!.start, shards[0]!.end]);
  t.same(slots[0]![2].slice(0, 3), ['127.0.0.1', 7001 + ids.indexOf(shards[0]!.replicas[0]!), shards[0]!.replicas[0]]);
});

t.test('CLUSTER NODES flags and slot ownership, CLUSTER INFO counts', async (t) => {
  const snap = snapshot(3, new Set([ids[2]!]));
  const lines = clusterNodesText(snap).trimEnd().split('\n');
  t.equal(lines.length, 3);
  t.match(lines[0]!, new RegExp(`^${ids[0]} 127\\.0\\.0\\.1:7001@17001 myself,master - 0 0 0 connected \\d`));
  t.match(lines[2]!, new RegExp(`^${ids[2]} 127\\.0\\.0\\.1:7003@17003 master,fail - 0 0 0 disconnected$`), 'the down node owns no slots as master');
  const owned = lines.flatMap((l) => l.split(' ').slice(8));
  let total = 0;
  for (const r of owned) {
    const [a, b] = r.split('-').map(Number);
    total += (b ?? a!) - a! + 1;
  }
  t.equal(total, SLOT_COUNT, 'the masters own every slot once');
  for (const line of lines) {
    const runs = line.split(' ').slice(8).map((r) => r.split('-').map(Number));
    const touching = runs.filter((r, i) => i > 0 && r[0] === (runs[i - 1]!.at(-1)! + 1)).length;
    t.equal(touching, 0, `${line.slice(0, 8)}: no two listed ranges touch (maximal runs, as Redis prints them)`);
  }
  const info = clusterInfoTextOf(snap, { n: 3, r: 'quorum', w: '2' });
  t.match(info, /^cluster_state:ok\r\n/, 'every slot still has a replica up');
  t.match(info, /cluster_slots_pfail:16384\r\n/, 'N=3 over 3 nodes: every slot lost one replica');
  t.match(info, /cluster_members_down:1\r\n/);
  t.match(info, /cluster_read_quorum:quorum\r\ncluster_write_quorum:2\r\n/);
});

t.test('PREFLIST shows the primaries and a fallback for the down one', async (t) => {
  const snap = snapshot(2, new Set([ids[1]!]), 4);
  let slot = 0;
  while (!snap.ring.preflist(slot).includes(ids[1]!)) slot++;
  const reply = plain(preflistReply(snap, slot)) as unknown as [number, string[][]];
  t.equal(reply[0], slot);
  t.same(reply[1].slice(0, 2).map((e) => [e[0], e[1], e[4]]), snap.ring.preflist(slot).map((id) => [id, 'primary', id === ids[1] ? 'down' : 'up']));
  t.equal(reply[1].length, 3, 'one fallback');
  t.same(reply[1][2]!.slice(1, 3), ['fallback', ids[1]], 'standing in for the down primary');
});
