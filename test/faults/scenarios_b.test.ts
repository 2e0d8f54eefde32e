// Issue 5's failure scenarios, short form, part B: one 5-node cluster (N=3, W=2, R=2, every bus
// link through the fault proxy) runs, one after another under a recording workload: a flapping
// link next to a slow, byte-sliced one; a node down while a fallback holding its hints is
// kill -9'd and restarted before handoff; a node's data dir wiped (identity kept: new actor
// epoch); deletes on both sides of a partition followed by flushes and compactions; the whole
// cluster kill -9'd and restarted. After each: heal, converge, nothing-lost checker clean.
import t from 'tap';
import { FaultCluster } from '../helpers/fault_cluster.js';
import { reportLine, runScenario } from './scenario.js';
import { deleteDuringPartition, fallbackKilled, flappingLink, wholeClusterRestart, wipedDataDir } from './scenarios.js';
import { assertClean } from './assert_clean.js';

t.test('5 nodes: flapping link, fallback killed, wiped dir, deletes + compaction, whole-cluster kill lose nothing', async (t) => {
  // Small memtables so the filler after the partition flushes and compacts on every node.
  const c = await FaultCluster.start(t, { nodes: 5, config: { 'memtable-bytes': '64kb' } });
  for (const spec of [
    flappingLink({ scale: 1, pick: [0, 1, 2] }),
    fallbackKilled({ scale: 1, pick: [3, 4] }),
    wipedDataDir({ scale: 1, pick: [2] }),
    deleteDuringPartition({ scale: 1, pick: [1, 3] }),
    wholeClusterRestart({ scale: 1, pick: [] }),
  ]) {
    const r = await runScenario(c, spec);
    t.comment(reportLine(r));
    assertClean(t, r);
  }
});
