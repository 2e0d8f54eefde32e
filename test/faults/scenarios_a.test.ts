// Issue 5's failure scenarios, short form, part A: one 5-node cluster (N=3, W=2, R=2, every bus
// link through the fault proxy) runs, one after another under a recording workload: a node
// kill -9'd and restarted under load; a node paused short of node-timeout-ms (never marked
// fail) and past it (marked fail, back on SIGCONT); a minority/majority partition; a coordinator
// isolated mid-write. After each: heal, converge, and the nothing-lost checker (checker.ts) must
// find 0 lost, 0 resurrected, no phantom, replicas equal. Figures go to the test output.
import t from 'tap';
import { FaultCluster } from '../helpers/fault_cluster.js';
import { reportLine, runScenario } from './scenario.js';
import { coordinatorIsolated, killRestart, minorityPartition, pauseLong, pauseShort } from './scenarios.js';
import { assertClean } from './assert_clean.js';

t.test('5 nodes: kill -9, pauses, partitions, isolated coordinator lose nothing', async (t) => {
  const c = await FaultCluster.start(t, { nodes: 5 });
  for (const spec of [
    killRestart({ scale: 1, pick: [2] }),
    pauseShort({ scale: 1, pick: [3] }),
    pauseLong({ scale: 1, pick: [3] }),
    minorityPartition({ scale: 1, pick: [0, 4] }),
    coordinatorIsolated({ scale: 1, pick: [1] }),
  ]) {
    const r = await runScenario(c, spec);
    t.comment(reportLine(r));
    assertClean(t, r);
  }
});
