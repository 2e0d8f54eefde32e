// Placement: a brute-force reference for the ring walk, balance at 3/10/100 nodes, what moves
// when a node joins, weights, racks, datacenters, member states, and fallbacks.
import t from 'tap';
import xxhash from 'xxhash-addon';
import { buildRing, DEFAULT_VNODES, MembershipError, type MemberState, type RingMember } from '../../src/coordinator/ring.js';
import { SLOT_COUNT } from '../../src/coordinator/slot.js';

const nodes = (k: number, f: (i: number) => Partial<RingMember> = () => ({}), prefix = 'node'): RingMember[] =>
  Array.from({ length: k }, (_, i) => ({ id: `${prefix}${i + 1}`, weight: 1, dc: 'dc1', rack: '', state: 'up' as MemberState, ...f(i) }));

/** Straightforward BigInt ring walk without racks, for comparison. */
function referencePreflists(members: RingMember[], vnodes: number, n: number): string[][] {
  const toks: Array<{ pos: bigint; id: string }> = [];
  for (const m of members) {
    for (let i = 0; i < Math.round(vnodes * m.weight); i++) {
      toks.push({ pos: xxhash.XXHash64.hash(Buffer.from(`${m.id}:${i}`)).readBigUInt64BE(0), id: m.id });
    }
  }
  toks.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : a.id < b.id ? -1 : 1));
  const out: string[][] = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    const pos = (BigInt(s) * 2n ** 64n) / 16384n;
    let start = toks.findIndex((x) => x.pos >= pos);
    if (start < 0) start = 0;
    const ids: string[] = [];
    for (let k = 0; k < toks.length && ids.length < n; k++) {
      const id = toks[(start + k) % toks.length]!.id;
      if (!ids.includes(id)) ids.push(id);
    }
    out.push(ids);
  }
  return out;
}

t.test('matches a brute-force BigInt ring walk', async (t) => {
  for (const [k, v, n] of [[5, 8, 3], [4, 3, 2], [7, 16, 5], [2, 1, 3]] as const) {
    const mem = nodes(k, (i) => ({ weight: i === 0 ? 2 : 1 }));
    const ring = buildRing(mem, { vnodes: v, n });
    const ref = referencePreflists(mem, v, n);
    let diff = 0;
    for (let s = 0; s < SLOT_COUNT; s++) if (ring.preflist(s).join() !== ref[s]!.join()) diff++;
    t.equal(diff, 0, `${k} nodes, vnodes ${v}, n ${n}: all 16384 preflists equal`);
  }
});

t.test('independent of membership order; distinct nodes; length min(n, nodes)', async (t) => {
  const mem = nodes(6, (i) => ({ rack: `r${i % 2}` }));
  const a = buildRing(mem, { vnodes: 32, n: 3 });
  const b = buildRing([...mem].reverse(), { vnodes: 32, n: 3 });
  let same = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    const p = a.preflist(s);
    if (p.join() === b.preflist(s).join()) same++;
    if (new Set(p).size !== 3) t.fail(`slot ${s}: ${p.join()}`);
  }
  t.equal(same, SLOT_COUNT);
  const two = buildRing(nodes(2), { vnodes: 8, n: 3 });
  t.same([...two.preflist(0)].sort(), ['node1', 'node2'], 'fewer nodes than n: all of them');
  t.same(buildRing([], { vnodes: 8, n: 3 }).preflist(5), [], 'empty ring');
});

t.test(`balance at the default vnodes (${DEFAULT_VNODES})`, async (t) => {
  const rows: string[] = ['| nodes | primaries max/mean | replicas max/mean (N=3) | min/mean primaries | build ms |', '|---|---|---|---|---|'];
  const limits: Record<number, number> = { 3: 1.15, 10: 1.25, 100: 1.3 };
  for (const k of [3, 10, 100]) {
    const t0 = performance.now();
    const ring = buildRing(nodes(k), { vnodes: DEFAULT_VNODES, n: 3 });
    const ms = performance.now() - t0;
    const own = [...ring.ownership().values()];
    const mean = SLOT_COUNT / k;
    const maxP = Math.max(...own.map((o) => o.primary)) / mean;
    const minP = Math.min(...own.map((o) => o.primary)) / mean;
    const maxR = Math.max(...own.map((o) => o.replica)) / ((mean * Math.min(3, k)));
    t.equal(own.reduce((a, o) => a + o.primary, 0), SLOT_COUNT, 'every slot has one primary');
    t.ok(maxP <= limits[k]!, `${k} nodes: primaries max/mean ${maxP.toFixed(3)} <= ${limits[k]}`);
    t.ok(maxR <= limits[k]!, `${k} nodes: replicas max/mean ${maxR.toFixed(3)} <= ${limits[k]}`);
    rows.push(`| ${k} | ${maxP.toFixed(3)} | ${maxR.toFixed(3)} | ${minP.toFixed(3)} | ${ms.toFixed(0)} |`);
  }
  t.comment(`\n${rows.join('\n')}`);
});

t.test('adding a node moves about 1/(n+1) of the slots, and only slots that gain it', async (t) => {
  const cases: Array<[string, RingMember[], RingMember]> = [
    ['10 nodes, no racks', nodes(10), { id: 'node11', weight: 1, dc: 'dc1', rack: '', state: 'up' }],
    ['20 nodes, 3 racks, new node in rack r1', nodes(20, (i) => ({ rack: `r${i % 3}` })), { id: 'node21', weight: 1, dc: 'dc1', rack: 'r1', state: 'up' }],
    ['3 nodes', nodes(3), { id: 'node4', weight: 1, dc: 'dc1', rack: '', state: 'up' }],
    ['100 nodes', nodes(100), { id: 'node101', weight: 1, dc: 'dc1', rack: '', state: 'up' }],
  ];
  for (const [name, before, added] of cases) {
    const n = 3;
    const a = buildRing(before, { vnodes: DEFAULT_VNODES, n });
    const b = buildRing([...before, added], { vnodes: DEFAULT_VNODES, n });
    let primaryMoved = 0;
    let replicasMoved = 0;
    let changedWithoutNew = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const p = a.preflist(s);
      const q = b.preflist(s);
      if (p[0] !== q[0]) primaryMoved++;
      if (p.join() === q.join()) continue;
      if (!q.includes(added.id)) changedWithoutNew++;
      replicasMoved += q.filter((id) => !p.includes(id)).length;
    }
    const k = before.length + 1;
    const frac = primaryMoved / SLOT_COUNT;
    const rfrac = replicasMoved / (SLOT_COUNT * n);
    t.equal(changedWithoutNew, 0, `${name}: every changed preflist gained the new node`);
    t.ok(frac > 0.7 / k && frac < 1.3 / k, `${name}: primaries moved ${(frac * 100).toFixed(2)}% vs 1/(n+1) = ${(100 / k).toFixed(2)}%`);
    t.ok(rfrac > 0.7 / k && rfrac < 1.3 / k, `${name}: replicas moved ${(rfrac * 100).toFixed(2)}% of ${n}x16384`);
  }
});

t.test('weight scales ownership; weight 0 owns nothing', async (t) => {
  const mem = nodes(10, (i) => ({ weight: i === 0 ? 2 : i === 1 ? 0 : 1 }));
  const own = buildRing(mem, { vnodes: DEFAULT_VNODES, n: 3 }).ownership();
  const mean = SLOT_COUNT / 10; // 10 units of weight
  const heavy = own.get('node1')!.primary / mean;
  t.ok(heavy > 1.7 && heavy < 2.3, `weight 2 owns ${heavy.toFixed(2)}x a unit share`);
  t.equal(own.get('node2')!.replica, 0);
});

t.test('racks first: distinct racks when there are enough, every rack used when not', async (t) => {
  const mem = nodes(9, (i) => ({ rack: `r${i % 3}` }));
  const ring = buildRing(mem, { vnodes: 64, n: 3 });
  const rack = (id: string): string => ring.member(id)!.rack;
  let bad = 0;
  for (let s = 0; s < SLOT_COUNT; s++) if (new Set(ring.preflist(s).map(rack)).size !== 3) bad++;
  t.equal(bad, 0, 'N=3 over 3 racks: one replica per rack in every slot');
  const two = buildRing(nodes(6, (i) => ({ rack: `r${i % 2}` })), { vnodes: 64, n: 3 });
  let bad2 = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    const p = two.preflist(s);
    if (p.length !== 3 || new Set(p).size !== 3 || new Set(p.map((id) => two.member(id)!.rack)).size !== 2) bad2++;
  }
  t.equal(bad2, 0, 'N=3 over 2 racks: 3 distinct nodes covering both racks');
  // Unbalanced racks: one node alone in its rack is in every preflist.
  const lone = buildRing(nodes(5, (i) => ({ rack: i === 0 ? 'solo' : 'big' })), { vnodes: 32, n: 2 });
  let withSolo = 0;
  for (let s = 0; s < SLOT_COUNT; s++) if (lone.preflist(s).includes('node1')) withSolo++;
  t.equal(withSolo, SLOT_COUNT, 'the only node of a rack holds a replica of every slot (N=2, 2 racks)');
});

t.test('dcReplication: N per datacenter, racks per datacenter', async (t) => {
  const mem = [
    ...nodes(6, (i) => ({ dc: 'east', rack: `e${i % 3}` }), 'e'),
    ...nodes(4, (i) => ({ dc: 'west', rack: `w${i % 2}` }), 'w'),
    ...nodes(2, () => ({ dc: 'lab' }), 'l'),
  ];
  const ring = buildRing(mem, { vnodes: 64, dcReplication: new Map([['east', 3], ['west', 2]]) });
  t.equal(ring.n, 5);
  let bad = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    const p = ring.preflist(s).map((id) => ring.member(id)!);
    const east = p.filter((m) => m.dc === 'east');
    const west = p.filter((m) => m.dc === 'west');
    if (east.length !== 3 || west.length !== 2 || p.length !== 5) bad++;
    if (new Set(east.map((m) => m.rack)).size !== 3 || new Set(west.map((m) => m.rack)).size !== 2) bad++;
  }
  t.equal(bad, 0, 'every slot: 3 in east over 3 racks, 2 in west over 2 racks, none in lab');
  const short = buildRing(mem, { vnodes: 16, dcReplication: new Map([['west', 9]]) });
  t.equal(short.preflist(7).length, 4, 'a dc with fewer nodes than asked gives all it has');
});

t.test('member states: current view owns up+leaving, target view up+joining', async (t) => {
  const states: MemberState[] = ['up', 'up', 'joining', 'leaving', 'left'];
  const mem = nodes(5, (i) => ({ state: states[i] }));
  const cur = buildRing(mem, { vnodes: 32, n: 5 });
  const tgt = buildRing(mem, { vnodes: 32, n: 5, view: 'target' });
  t.same([...cur.preflist(100)].sort(), ['node1', 'node2', 'node4']);
  t.same([...tgt.preflist(100)].sort(), ['node1', 'node2', 'node3']);
  t.equal(cur.member('node5'), undefined, 'left members are not in the ring');
  t.throws(() => buildRing(nodes(2, () => ({ id: 'dup' })), { vnodes: 8, n: 1 }), MembershipError);
  t.throws(() => buildRing(nodes(2, () => ({ id: 'dup' })), { vnodes: 8, n: 1 }), /duplicate member id dup/);
  t.throws(() => buildRing(nodes(2, () => ({ weight: Number.NaN })), { vnodes: 8, n: 1 }), MembershipError);
  t.throws(() => buildRing(nodes(1, () => ({ weight: 1e9 })), { vnodes: 8, n: 1 }), /more than .* tokens/);
  t.throws(() => buildRing(nodes(2), { vnodes: 8 }), /exactly one/);
});

t.test('slot ranges and fingerprint', async (t) => {
  const ring = buildRing(nodes(3), { vnodes: 16, n: 2 });
  const ranges = ring.slotRanges();
  t.equal(ranges[0]?.start, 0);
  t.equal(ranges.at(-1)?.end, SLOT_COUNT - 1);
  let bad = 0;
  ranges.forEach((r, i) => {
    if (i > 0 && r.start !== ranges[i - 1]!.end + 1) bad++;
    if (i > 0 && r.preflist.join() === ranges[i - 1]!.preflist.join()) bad++;
    for (let s = r.start; s <= r.end; s++) if (ring.preflist(s).join() !== r.preflist.join()) bad++;
  });
  t.equal(bad, 0, `${ranges.length} contiguous maximal ranges, each slot's preflist matching`);
  const same = buildRing([...nodes(3)].reverse(), { vnodes: 16, n: 2 });
  t.equal(same.fingerprint, ring.fingerprint, 'membership order does not matter');
  t.not(buildRing(nodes(3), { vnodes: 17, n: 2 }).fingerprint, ring.fingerprint, 'vnodes matter');
  t.not(buildRing(nodes(3, (i) => ({ rack: i === 0 ? 'x' : '' })), { vnodes: 16, n: 2 }).fingerprint, ring.fingerprint, 'racks matter');
  t.equal(buildRing([...nodes(3), { id: 'j', weight: 1, dc: 'dc1', rack: '', state: 'joining' }], { vnodes: 16, n: 2 }).fingerprint, ring.fingerprint, 'a joining node does not change the current ring');
});

t.test('fallbacks for sloppy quorum', async (t) => {
  const ring = buildRing(nodes(6), { vnodes: 32, n: 3 });
  const all = new Set(nodes(6).map((m) => m.id));
  for (const s of [0, 1, 5000, 16383]) {
    const pref = ring.preflist(s);
    const down = new Set([pref[1]!]);
    const isUp = (id: string): boolean => !down.has(id);
    const fb = ring.fallbacks(s, isUp, 10);
    t.same(new Set(fb), new Set([...all].filter((id) => !pref.includes(id))), `slot ${s}: every non-preflist node, once`);
    // The first fallback is the first node past the preflist on the walk: the 4th node of an n=6 preflist.
    const wide = buildRing(nodes(6), { vnodes: 32, n: 6 }).preflist(s);
    t.same(fb, wide.slice(3), 'fallbacks continue the clockwise walk');
    const apl = ring.annotatedPreflist(s, isUp);
    t.same(apl, [
      { id: pref[0], role: 'primary' },
      { id: pref[2], role: 'primary' },
      { id: wide[3], role: 'fallback', forId: pref[1] },
    ]);
    t.same(ring.annotatedPreflist(s, () => true).map((e) => e.id), pref, 'all up: just the primaries');
    const onlyTwo = new Set([pref[0]!, wide[4]!]);
    t.same(ring.annotatedPreflist(s, (id) => onlyTwo.has(id)), [
      { id: pref[0], role: 'primary' },
      { id: wide[4], role: 'fallback', forId: pref[1] },
    ], 'not enough healthy nodes: shorter list');
  }
  // With datacenters, a down primary's fallback comes from its own dc.
  const mem = [...nodes(4, () => ({ dc: 'a' }), 'a'), ...nodes(4, () => ({ dc: 'b' }), 'b')];
  const dcRing = buildRing(mem, { vnodes: 16, dcReplication: new Map([['a', 2], ['b', 1]]) });
  const p = dcRing.preflist(42);
  const downB = p.find((id) => id.startsWith('b'))!;
  const apl = dcRing.annotatedPreflist(42, (id) => id !== downB);
  const f = apl.find((e) => e.role === 'fallback')!;
  t.equal(f.forId, downB);
  t.ok(f.id.startsWith('b') && !p.includes(f.id), `fallback ${f.id} is in dc b`);
});
