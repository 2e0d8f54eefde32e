// Quorum accounting: hand-written tables, then every sequence of answers for small n checked
// against a brute-force oracle that enumerates how the pending replicas could still answer.
import t from 'tap';
import {
  noQuorumMessage,
  parseQuorum,
  parseQuorumSpec,
  QuorumError,
  QuorumTally,
  resolveQuorum,
  type QuorumDecision,
  type QuorumRequirement,
  type QuorumTarget,
  type ReplicaResult,
  type TallyOptions,
} from '../../src/coordinator/quorum.js';

t.test('parseQuorum', async (t) => {
  const ok: Array<[string, number, number]> = [
    ['1', 3, 1], ['2', 3, 2], ['3', 3, 3], ['one', 5, 1], ['ONE', 5, 1], [' quorum ', 3, 2],
    ['quorum', 1, 1], ['quorum', 2, 2], ['quorum', 3, 2], ['quorum', 4, 3], ['quorum', 5, 3], ['quorum', 6, 4],
    ['all', 1, 1], ['all', 5, 5], ['local_one', 3, 1], ['local_quorum', 5, 3], ['each_quorum', 3, 2], ['03', 3, 3],
  ];
  for (const [spec, n, want] of ok) t.equal(parseQuorum(spec, n), want, `${spec} of ${n}`);
  const bad: Array<[string, number, RegExp]> = [
    ['4', 3, /quorum 4 is more than the 3 replicas/],
    ['0', 3, /must be at least 1/],
    ['-1', 3, /expected a positive integer or one of one\|quorum\|all/],
    ['1.5', 3, /expected a positive integer/],
    ['1e2', 3, /expected a positive integer/],
    ['', 3, /invalid quorum ''/],
    ['two', 3, /invalid quorum 'two'/],
    ['99999999999999999999', 3, /must be at least 1|more than/],
  ];
  for (const [spec, n, re] of bad) {
    t.throws(() => parseQuorum(spec, n), QuorumError, `${spec} rejected`);
    t.throws(() => parseQuorum(spec, n), re);
  }
  t.equal(parseQuorumSpec('quorum'), 'quorum');
  t.equal(parseQuorumSpec('7'), 7, 'syntax alone does not need n');
});

t.test('resolveQuorum with datacenters', async (t) => {
  const rep = { dcReplication: new Map([['east', 3], ['west', 2]]), localDc: 'west' };
  const show = (q: QuorumRequirement): string => `${q.total} ${JSON.stringify([...q.perDc])}`;
  t.equal(show(resolveQuorum('one', rep)), '1 []');
  t.equal(show(resolveQuorum('quorum', rep)), '3 []', 'majority of all 5');
  t.equal(show(resolveQuorum('all', rep)), '5 []');
  t.equal(show(resolveQuorum(4, rep)), '4 []');
  t.equal(show(resolveQuorum('local_one', rep)), '1 [["west",1]]');
  t.equal(show(resolveQuorum('local_quorum', rep)), '2 [["west",2]]');
  t.equal(show(resolveQuorum('each_quorum', rep)), '4 [["east",2],["west",2]]');
  t.throws(() => resolveQuorum('local_quorum', { ...rep, localDc: 'north' }), /no replicas in the local datacenter 'north'/);
  t.throws(() => resolveQuorum(6, rep), /more than the 5 replicas/);
});

const targets = (n: number, f = 0, dcOf: (i: number) => string = () => 'dc1'): QuorumTarget[] => [
  ...Array.from({ length: n }, (_, i) => ({ id: `p${i}`, dc: dcOf(i), primary: true })),
  ...Array.from({ length: f }, (_, i) => ({ id: `f${i}`, dc: dcOf(n + i), primary: false })),
];
const run = (tg: QuorumTarget[], need: QuorumRequirement, opts: TallyOptions, answers: Array<[string, ReplicaResult]>): QuorumDecision[] => {
  const tally = new QuorumTally(tg, need, opts);
  return answers.map(([id, r]) => tally.add(id, r));
};
const req = (total: number, perDc: Array<[string, number]> = []): QuorumRequirement => ({ total, perDc: new Map(perDc) });

t.test('hand-written cases', async (t) => {
  const read: TallyOptions = { op: 'read' };
  const write: TallyOptions = { op: 'write' };
  t.same(run(targets(3), req(2), read, [['p0', 'ok'], ['p1', 'notfound']]).map((d) => d.kind), ['pending', 'enough']);
  t.same(run(targets(3), req(2), read, [['p0', 'notfound'], ['p1', 'notfound']]).at(-1), { kind: 'enough', found: false }, 'both absent: a found-nothing answer');
  t.same(run(targets(3), req(2), read, [['p0', 'error'], ['p1', 'error']]).at(-1), { kind: 'insufficient', got: 0, need: 2 }, 'fails as soon as 2 is out of reach');
  t.same(run(targets(3), req(3), write, [['p0', 'ok'], ['p1', 'error']]).at(-1), { kind: 'insufficient', got: 1, need: 3 });
  t.same(run(targets(3), req(2), { op: 'read', notfoundOk: false }, [['p0', 'ok'], ['p1', 'notfound'], ['p2', 'notfound']]).map((d) => d.kind), ['pending', 'pending', 'notfound']);
  t.same(run(targets(3), req(2), { op: 'read', notfoundOk: false }, [['p0', 'notfound'], ['p1', 'error'], ['p2', 'notfound']]).map((d) => d.kind), ['pending', 'pending', 'notfound'], 'absent or failed: open until p2 answers');
  t.same(run(targets(3), req(2), { op: 'read', notfoundOk: false }, [['p0', 'notfound'], ['p1', 'error'], ['p2', 'error']]).at(-1), { kind: 'insufficient', got: 0, need: 2 }, 'errors made it impossible');
  t.same(run(targets(3), req(1), read, [['p2', 'ok']]).at(-1), { kind: 'enough', found: true });
  // Sticky decision, duplicates ignored.
  const tally = new QuorumTally(targets(3), req(2), write);
  tally.add('p0', 'error');
  tally.add('p0', 'ok');
  t.equal(tally.answers().get('p0'), 'error', 'the first answer of a replica stands');
  tally.add('p1', 'error');
  t.equal(tally.decide().kind, 'insufficient');
  t.equal(tally.add('p2', 'ok').kind, 'insufficient', 'a late ack does not undo the decision');
  t.ok(tally.allAnswered());
  // Sloppy quorum: a fallback's ack counts unless sloppy is off.
  t.equal(run(targets(2, 1), req(2), write, [['p0', 'ok'], ['f0', 'ok']]).at(-1)?.kind, 'enough');
  t.same(run(targets(2, 1), req(2), { op: 'write', sloppy: false }, [['p0', 'ok'], ['f0', 'ok'], ['p1', 'error']]).map((d) => d.kind), ['pending', 'pending', 'insufficient']);
  // each_quorum: a dc that cannot reach its majority fails the request even if the total is met.
  const dcs = targets(5, 0, (i) => (i < 3 ? 'east' : 'west'));
  t.same(run(dcs, req(4, [['east', 2], ['west', 2]]), write, [['p3', 'error']]).at(-1), { kind: 'insufficient', got: 0, need: 2, dc: 'west' });
  t.equal(run(dcs, req(4, [['east', 2], ['west', 2]]), write, [['p0', 'ok'], ['p1', 'ok'], ['p2', 'ok'], ['p3', 'ok']]).at(-1)?.kind, 'pending', 'total met, west not yet');
  t.same(new QuorumTally(targets(3), req(2), write).insufficient(), { kind: 'insufficient', got: 0, need: 2 }, 'a timeout with nothing in');
  t.throws(() => new QuorumTally(targets(1), req(1), write).add('zz', 'ok'), /not asked/);
  t.throws(() => new QuorumTally(targets(1), req(1), write).add('p0', 'notfound'), /ok or error/);
});

t.test('a requirement on the total only is one shared object per total', async (t) => {
  const a = resolveQuorum('quorum', { n: 3 });
  t.same(a, { total: 2, perDc: new Map() });
  t.equal(resolveQuorum('quorum', { n: 3 }), a, 'resolved twice per write: not a new object each time');
  t.equal(resolveQuorum(2, { n: 5 }), a, 'the same total from a number');
  t.ok(Object.isFrozen(a));
  t.equal(resolveQuorum('all', { n: 3 }).total, 3);
  t.equal(resolveQuorum('one', { n: 3 }).total, 1);
});

t.test('NOQUORUM message', async (t) => {
  t.equal(noQuorumMessage('write', { got: 1, need: 2 }), 'write: 1 of 2 replicas acknowledged (the write may be partially applied)');
  t.equal(noQuorumMessage('read', { got: 0, need: 2 }), 'read: 0 of 2 replicas answered');
  t.equal(noQuorumMessage('write', { got: 1, need: 2, dc: 'west' }), 'write: 1 of 2 replicas acknowledged in datacenter west (the write may be partially applied)');
});

// ---- Exhaustive check against a brute-force oracle ----


type Final = 'enough' | 'notfound' | 'insufficient';

/** Outcome once every target has answered, straight from the definitions. */
function finalOutcome(tg: QuorumTarget[], need: QuorumRequirement, opts: TallyOptions, res: Map<string, ReplicaResult>): Final {
  const nfOk = opts.notfoundOk ?? true;
  const sloppy = opts.sloppy ?? true;
  const groups: Array<[number, (x: QuorumTarget) => boolean]> = [[need.total, () => true], ...[...need.perDc].map(([dc, k]) => [k, (x: QuorumTarget) => x.dc === dc] as [number, (x: QuorumTarget) => boolean])];
  const tallyOf = (inGroup: (x: QuorumTarget) => boolean, countNotfound: boolean): number =>
    tg.filter((x) => inGroup(x) && (x.primary || sloppy)).filter((x) => res.get(x.id) === 'ok' || (countNotfound && res.get(x.id) === 'notfound')).length;
  if (groups.every(([k, g]) => tallyOf(g, nfOk) >= k)) return 'enough';
  if (opts.op === 'read' && !nfOk && groups.every(([k, g]) => tallyOf(g, true) >= k)) return 'notfound';
  return 'insufficient';
}

/** Decision at a prefix: decided when every way the rest could answer agrees (see quorum.ts). */
function oracle(tg: QuorumTarget[], need: QuorumRequirement, opts: TallyOptions, res: Map<string, ReplicaResult>, alphabet: ReplicaResult[]): Final | 'pending' {
  const rest = tg.filter((x) => !res.has(x.id));
  const outcomes = new Set<Final>();
  const m = new Map(res);
  const rec = (i: number): void => {
    if (outcomes.size > 1) return; // already undecided
    if (i === rest.length) {
      outcomes.add(finalOutcome(tg, need, opts, m));
      return;
    }
    for (const a of alphabet) {
      m.set(rest[i]!.id, a);
      rec(i + 1);
    }
    m.delete(rest[i]!.id);
  };
  rec(0);
  return outcomes.size === 1 ? ([...outcomes][0] as Final) : 'pending';
}

function* sequences(tg: QuorumTarget[], alphabet: ReplicaResult[], orders: QuorumTarget[][]): Generator<Array<[string, ReplicaResult]>> {
  for (const order of orders) {
    const total = alphabet.length ** order.length;
    for (let code = 0; code < total; code++) {
      let c = code;
      yield order.map((x) => {
        const a = alphabet[c % alphabet.length]!;
        c = Math.floor(c / alphabet.length);
        return [x.id, a] as [string, ReplicaResult];
      });
    }
  }
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

function exhaust(name: string, tg: QuorumTarget[], need: QuorumRequirement, opts: TallyOptions, orders: QuorumTarget[][]): [number, string] {
  const alphabet: ReplicaResult[] = opts.op === 'read' ? ['ok', 'notfound', 'error'] : ['ok', 'error'];
  let cases = 0;
  let wrong = 0;
  let firstWrong = '';
  for (const seq of sequences(tg, alphabet, orders)) {
    const tally = new QuorumTally(tg, need, opts);
    const res = new Map<string, ReplicaResult>();
    let decided: QuorumDecision = tally.decide();
    for (const [id, a] of seq) {
      const d = tally.add(id, a);
      res.set(id, a);
      if (decided.kind !== 'pending' && d !== decided) {
        wrong++;
        firstWrong ||= `decision changed: ${JSON.stringify(seq)}`;
      }
      if (decided.kind === 'pending') {
        const want = oracle(tg, need, opts, res, alphabet);
        const gotKind = d.kind === 'enough' ? 'enough' : d.kind;
        if (gotKind !== want) {
          wrong++;
          firstWrong ||= `${JSON.stringify(seq.slice(0, res.size))}: tally ${gotKind}, oracle ${want}`;
        }
        if (d.kind === 'enough' && d.found !== [...res.values()].includes('ok')) wrong++;
        if (d.kind === 'insufficient' && d.dc === undefined && d.got > need.total) wrong++;
        decided = d;
      }
      cases++;
    }
  }
  return [wrong, `${name}: ${cases} steps agree with the oracle${firstWrong ? ` (first: ${firstWrong})` : ''}`];
}

t.test('exhaustive: every answer sequence for n = 1..6, every r, reads and writes', async (t) => {
  for (let n = 1; n <= 6; n++) {
    const tg = targets(n);
    for (let r = 1; r <= n; r++) {
      for (const opts of [{ op: 'read', notfoundOk: true }, { op: 'read', notfoundOk: false }, { op: 'write' }] as TallyOptions[]) {
        {
      const [wrong, msg] = exhaust(`n=${n} r/w=${r} ${JSON.stringify(opts)}`, tg, req(r), opts, [tg]);
      t.equal(wrong, 0, msg);
    }
      }
    }
  }
});

t.test('exhaustive: sloppy quorum with fallbacks, in every arrival order', async (t) => {
  const tg = targets(3, 2);
  for (const sloppy of [true, false]) {
    for (let w = 1; w <= 3; w++) {
      {
      const [wrong, msg] = exhaust(`3 primaries + 2 fallbacks, w=${w}, sloppy=${sloppy}`, tg, req(w), { op: 'write', sloppy }, permutations(tg));
      t.equal(wrong, 0, msg);
    }
    }
  }
});

t.test('exhaustive: per-datacenter requirements, in every arrival order', async (t) => {
  const tg = targets(5, 0, (i) => (i < 3 ? 'east' : 'west'));
  const cases: Array<[string, QuorumRequirement]> = [
    ['each_quorum', req(4, [['east', 2], ['west', 2]])],
    ['local_quorum west', req(2, [['west', 2]])],
    ['local_one east', req(1, [['east', 1]])],
  ];
  for (const [name, need] of cases) {
    {
      const [wrong, msg] = exhaust(`${name} write`, tg, need, { op: 'write' }, permutations(tg));
      t.equal(wrong, 0, msg);
    }
    {
      const [wrong, msg] = exhaust(`${name} read notfoundOk=false`, tg, need, { op: 'read', notfoundOk: false }, [tg, [...tg].reverse()]);
      t.equal(wrong, 0, msg);
    }
  }
});
