/** The assertions every fault scenario must pass (issue 5's "nothing lost"). */
import type { Test } from 'tap';
import type { ScenarioReport } from './scenario.js';

export function assertClean(t: Test, r: ScenarioReport): void {
  t.ok(r.acknowledged > 0, `${r.name}: writes were acknowledged (${r.acknowledged})`);
  t.same(r.result.lost, [], `${r.name}: no acknowledged write lost`);
  t.same(r.result.resurrected, [], `${r.name}: no superseded or deleted value back`);
  t.same(r.result.phantoms, [], `${r.name}: no value nobody wrote`);
  t.same(r.result.divergent, [], `${r.name}: every key's replicas equal`);
  t.same(r.result.unreadable, [], `${r.name}: every key readable`);
  t.ok(r.convergeMs >= 0, `${r.name}: converged (${r.convergeMs} ms${r.passive ? ', passively' : ', after read repair'})`);
  t.ok(r.passive, `${r.name}: converged by hinted handoff and anti-entropy alone, no client read repairing`);
  t.ok(r.notes.includes('slot digests: equal'), `${r.name}: CLUSTER DIGEST of every key's slot equal on its replicas`);
}
