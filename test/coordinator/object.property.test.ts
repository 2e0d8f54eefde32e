// Property tests (fast-check) of the versioned object against a naive model of histories.
//
// The model keeps, per replica, the explicit set of writes it has seen, and per write the set
// of writes its client had seen (its causal past). A write is current at a replica when no other
// write the replica has seen has it in its past. The DVV object must agree: its siblings are
// exactly the current writes, its clock covers exactly the seen writes, and `descends` between
// clocks is set inclusion of what was seen.
import t from 'tap';
import fc from 'fast-check';
import {
  applyWrite,
  checkObjectInvariants,
  concurrent,
  ContextError,
  contextOf,
  CorruptObjectError,
  covers,
  decodeContext,
  decodeObject,
  descends,
  EMPTY_OBJECT,
  encodeContext,
  encodeObject,
  mergeObjects,
  type Context,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';

/** RINGKV_PROPERTY_SCALE=20 multiplies every run count (a soak run; the default keeps npm test fast). */
const SCALE = Math.max(1, Number(process.env.RINGKV_PROPERTY_SCALE ?? 1) || 1);
const runs = (n: number): number => Math.round(n * SCALE);

const REPLICAS = ['A', 'B', 'C', 'D'] as const;
const CLIENTS = 3;

type Cmd =
  | { k: 'read'; c: number; r: number }
  | { k: 'write'; c: number; r: number; plain: boolean; tomb: boolean; skew: number }
  | { k: 'sync'; r: number; q: number };

const cmdArb = (replicas: number): fc.Arbitrary<Cmd> =>
  fc.oneof(
    fc.record({ k: fc.constant('read' as const), c: fc.nat(CLIENTS - 1), r: fc.nat(replicas - 1) }),
    fc.record({
      k: fc.constant('write' as const),
      c: fc.nat(CLIENTS - 1),
      r: fc.nat(replicas - 1),
      plain: fc.boolean(),
      tomb: fc.boolean(),
      skew: fc.integer({ min: -3, max: 3 }),
    }),
    fc.record({ k: fc.constant('sync' as const), r: fc.nat(replicas - 1), q: fc.nat(replicas - 1) }),
  );
const historyArb = (replicas = 3, max = 40): fc.Arbitrary<Cmd[]> => fc.array(cmdArb(replicas), { maxLength: max });

const key = (actor: string, counter: number): string => `${counter}@${actor}`;
const isSuperset = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => [...b].every((x) => a.has(x));

interface Snapshot { ctx: Context; seen: Set<string> }

/** Runs a history against the real object and the model side by side; `check` sees every step. */
class Sim {
  readonly objs: VersionedObject[];
  readonly seen: Set<string>[];
  readonly past = new Map<string, Set<string>>();
  readonly dots: Array<{ actor: string; counter: number }> = [];
  readonly clients: Array<Snapshot | undefined> = [];
  readonly pool: Array<{ obj: VersionedObject; actor: string }> = [];
  lastWrite: string | undefined;
  step = 0;
  constructor(readonly n: number, readonly opts: WriteOptions, readonly skewed: boolean) {
    this.objs = Array.from({ length: n }, () => EMPTY_OBJECT);
    this.seen = Array.from({ length: n }, () => new Set<string>());
  }
  actor(r: number): string { return REPLICAS[r] as string; }
  local(r: number): WriteOptions { return { ...this.opts, localActor: this.actor(r) }; }

  run(cmd: Cmd): void {
    this.step++;
    if (cmd.k === 'read') {
      this.clients[cmd.c] = { ctx: contextOf(this.objs[cmd.r]!), seen: new Set(this.seen[cmd.r]) };
    } else if (cmd.k === 'write') {
      const snap = cmd.plain
        ? { ctx: contextOf(this.objs[cmd.r]!), seen: new Set(this.seen[cmd.r]) }
        : this.clients[cmd.c] ?? { ctx: new Map(), seen: new Set<string>() };
      const at = 1000 + this.step * 10 + (this.skewed ? cmd.skew * 15 : 0);
      const actor = this.actor(cmd.r);
      const before = this.objs[cmd.r]!;
      const obj = applyWrite(before, snap.ctx, actor, { value: cmd.tomb ? null : Buffer.from(`s${this.step}`), writtenAtMs: at, expiresAtMs: 0 }, this.opts);
      const counter = obj.clock.get(actor)!;
      const d = key(actor, counter);
      if (this.past.has(d)) throw new Error(`dot ${d} minted twice`);
      this.past.set(d, new Set(snap.seen));
      this.dots.push({ actor, counter });
      const seen = this.seen[cmd.r]!;
      for (const x of snap.seen) seen.add(x);
      seen.add(d);
      this.objs[cmd.r] = obj;
      this.lastWrite = d;
      if (!obj.siblings.some((s) => key(s.dot.actor, s.dot.counter) === d)) throw new Error('the minted sibling was dropped');
    } else {
      const m = mergeObjects(this.objs[cmd.r]!, this.objs[cmd.q]!, this.local(cmd.r));
      const m2 = mergeObjects(this.objs[cmd.q]!, this.objs[cmd.r]!, this.local(cmd.q));
      this.objs[cmd.r] = m;
      this.objs[cmd.q] = m2;
      const u = new Set([...this.seen[cmd.r]!, ...this.seen[cmd.q]!]);
      this.seen[cmd.r] = u;
      this.seen[cmd.q] = new Set(u);
    }
    for (let r = 0; r < this.n; r++) {
      const bad = checkObjectInvariants(this.objs[r]!);
      if (bad !== null) throw new Error(`replica ${r}: ${bad}`);
      if (this.objs[r]!.siblings.length > this.opts.maxSiblings) throw new Error('sibling cap exceeded');
      this.pool.push({ obj: this.objs[r]!, actor: this.actor(r) });
    }
  }

  /** The writes a replica has seen that no other seen write supersedes. */
  current(seen: ReadonlySet<string>): Set<string> {
    const out = new Set(seen);
    for (const w of seen) for (const p of this.past.get(w) ?? []) out.delete(p);
    return out;
  }
  liveDots(r: number): Set<string> {
    return new Set(this.objs[r]!.siblings.map((s) => key(s.dot.actor, s.dot.counter)));
  }
}

const exact: WriteOptions = { maxSiblings: 256, conflictPolicy: 'siblings', vclockMaxEntries: 64 };

t.test('DVV agrees with the model of histories: siblings, covers, descends, concurrent', async (t) => {
  let checked = 0;
  fc.assert(
    fc.property(historyArb(3, 40), (cmds) => {
      const sim = new Sim(3, exact, true);
      for (const cmd of cmds) {
        sim.run(cmd);
        for (let r = 0; r < 3; r++) {
          const seen = sim.seen[r]!;
          const clock = sim.objs[r]!.clock;
          if (!setEq(sim.liveDots(r), sim.current(seen))) return false;
          for (const d of sim.dots) if (covers(clock, d) !== seen.has(key(d.actor, d.counter))) return false;
          for (let q = 0; q < 3; q++) {
            const other = sim.objs[q]!.clock;
            if (descends(clock, other) !== isSuperset(seen, sim.seen[q]!)) return false;
            const conc = !isSuperset(seen, sim.seen[q]!) && !isSuperset(sim.seen[q]!, seen);
            if (concurrent(clock, other) !== conc) return false;
          }
          for (const snap of sim.clients) {
            if (snap && descends(clock, snap.ctx) !== isSuperset(seen, snap.seen)) return false;
          }
        }
        checked++;
      }
      return true;
    }),
    { numRuns: runs(300) },
  );
  t.ok(checked > 1000, `checked ${checked} steps`);
});

t.test('two clients doing read-modify-write through one coordinator never exceed 2 siblings', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(1), fc.boolean()), { maxLength: 200 }), (ops) => {
      const sim = new Sim(1, exact, false);
      // Each client alternates read and write (a write without a fresh read reads first), the
      // two clients' steps interleaved at random.
      for (const [c, isRead] of ops) {
        if (isRead || sim.clients[c] === undefined) sim.run({ k: 'read', c, r: 0 });
        if (!isRead) {
          sim.run({ k: 'write', c, r: 0, plain: false, tomb: false, skew: 0 });
          sim.clients[c] = undefined;
        }
        if (sim.objs[0]!.siblings.length > 2) return false;
        if (!setEq(sim.liveDots(0), sim.current(sim.seen[0]!))) return false;
      }
      return true;
    }),
    { numRuns: runs(300) },
  );
  t.pass('no explosion');
});

/** Histories under a set of options, with the pool of every object they produced. */
function poolArb(opts: fc.Arbitrary<WriteOptions>): fc.Arbitrary<{ sim: Sim; i: number; j: number; k: number }> {
  return fc.tuple(historyArb(4, 30), opts, fc.nat(), fc.nat(), fc.nat()).map(([cmds, o, i, j, k]) => {
    const sim = new Sim(4, o, true);
    for (const c of cmds) sim.run(c);
    return { sim, i, j, k };
  });
}
const pick = (sim: Sim, i: number): { obj: VersionedObject; actor: string } =>
  sim.pool.length === 0 ? { obj: EMPTY_OBJECT, actor: 'A' } : sim.pool[i % sim.pool.length]!;
const same = (x: VersionedObject, y: VersionedObject): boolean => encodeObject(x).equals(encodeObject(y));

const anyOpts: fc.Arbitrary<WriteOptions> = fc.record({
  maxSiblings: fc.integer({ min: 1, max: 4 }),
  conflictPolicy: fc.constantFrom('siblings' as const, 'lww' as const),
  vclockMaxEntries: fc.integer({ min: 1, max: 4 }),
});

t.test('merge is commutative and idempotent under every policy, cap and pruning limit', async (t) => {
  fc.assert(
    fc.property(poolArb(anyOpts), ({ sim, i, j }) => {
      const a = pick(sim, i);
      const b = pick(sim, j);
      const opts = sim.opts;
      if (!same(mergeObjects(a.obj, b.obj, opts), mergeObjects(b.obj, a.obj, opts))) return false;
      if (!same(mergeObjects(a.obj, a.obj, { ...opts, localActor: a.actor }), a.obj)) return false;
      return checkObjectInvariants(mergeObjects(a.obj, b.obj, opts)) === null;
    }),
    { numRuns: runs(300) },
  );
  t.pass();
});

t.test('merge is associative and absorptive when neither the cap nor pruning binds', async (t) => {
  fc.assert(
    fc.property(poolArb(fc.constant(exact)), ({ sim, i, j, k }) => {
      const [a, b, c] = [pick(sim, i).obj, pick(sim, j).obj, pick(sim, k).obj];
      const left = mergeObjects(mergeObjects(a, b, exact), c, exact);
      const right = mergeObjects(a, mergeObjects(b, c, exact), exact);
      if (!same(left, right)) return false;
      const ab = mergeObjects(a, b, exact);
      return same(mergeObjects(a, ab, exact), ab);
    }),
    { numRuns: runs(300) },
  );
  t.pass();
});

t.test('pruning never loses a write: every current write stays a sibling (false siblings allowed)', async (t) => {
  fc.assert(
    fc.property(historyArb(4, 40), fc.integer({ min: 1, max: 3 }), (cmds, v) => {
      const sim = new Sim(4, { maxSiblings: 256, conflictPolicy: 'siblings', vclockMaxEntries: v }, true);
      for (const cmd of cmds) {
        sim.run(cmd);
        for (let r = 0; r < 4; r++) {
          const live = sim.liveDots(r);
          for (const d of sim.current(sim.seen[r]!)) if (!live.has(d)) return false;
          for (const d of live) if (!sim.seen[r]!.has(d)) return false;
        }
      }
      return true;
    }),
    { numRuns: runs(300) },
  );
  t.pass();
});

t.test('with the sibling cap or lww, siblings stay current and the last write survives everywhere it went', async (t) => {
  const capped = fc.record({
    maxSiblings: fc.integer({ min: 1, max: 3 }),
    conflictPolicy: fc.constantFrom('siblings' as const, 'lww' as const),
    vclockMaxEntries: fc.constant(64),
  });
  fc.assert(
    fc.property(historyArb(3, 40), capped, (cmds, opts) => {
      const sim = new Sim(3, opts, false); // writtenAtMs increases with real time here
      for (const cmd of cmds) {
        sim.run(cmd);
        for (let r = 0; r < 3; r++) {
          const live = sim.liveDots(r);
          const cur = sim.current(sim.seen[r]!);
          for (const d of live) if (!cur.has(d)) return false;
          if (opts.conflictPolicy === 'lww' && live.size > 1) return false;
          if (sim.lastWrite !== undefined && sim.seen[r]!.has(sim.lastWrite) && !live.has(sim.lastWrite)) return false;
        }
      }
      return true;
    }),
    { numRuns: runs(600) },
  );
  t.pass();
});

t.test('encode/decode round-trips every object a history produces', async (t) => {
  fc.assert(
    fc.property(poolArb(anyOpts), ({ sim }) => {
      for (const { obj } of sim.pool.slice(-8)) {
        const bytes = encodeObject(obj);
        const back = decodeObject(bytes);
        if (!bytes.equals(encodeObject(back))) return false;
        if (checkObjectInvariants(back) !== null) return false;
        const ctx = decodeContext(encodeContext(contextOf(obj)));
        if (ctx.size !== obj.clock.size || !descends(ctx, obj.clock) || !descends(obj.clock, ctx)) return false;
      }
      return true;
    }),
    { numRuns: runs(200) },
  );
  t.pass();
});

/** Decoding either yields a valid object whose encoding is the input, or throws the typed error. */
function decodesSafely(buf: Buffer): boolean {
  let obj: VersionedObject;
  try {
    obj = decodeObject(buf);
  } catch (e) {
    if (e instanceof CorruptObjectError) return true;
    throw e;
  }
  return checkObjectInvariants(obj) === null && encodeObject(obj).equals(buf);
}
function tokenSafely(token: string): boolean {
  try {
    return encodeContext(decodeContext(token)) === token;
  } catch (e) {
    if (e instanceof ContextError) return true;
    throw e;
  }
}

t.test('decode never crashes on random bytes, random mutations of real objects, or random tokens', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (u) => decodesSafely(Buffer.from(u))), { numRuns: runs(5000) });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (u) => decodesSafely(Buffer.concat([Buffer.from([0xd7, 0x01]), Buffer.from(u)]))),
    { numRuns: runs(5000) },
  );
  const samples: Buffer[] = [];
  const sim = new Sim(3, exact, true);
  fc.sample(historyArb(3, 30), { numRuns: 20, seed: 42 }).forEach((cmds) => cmds.forEach((c) => sim.run(c)));
  for (const { obj } of sim.pool) if (obj.siblings.length > 0) samples.push(encodeObject(obj));
  t.ok(samples.length > 10);
  fc.assert(
    fc.property(
      fc.nat(),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      (si, flips, cut) => {
        const buf = Buffer.from(samples[si % samples.length]!);
        for (const [pos, val] of flips) buf[pos % buf.length] = val;
        return decodesSafely(buf) && decodesSafely(buf.subarray(0, cut % (buf.length + 1)));
      },
    ),
    { numRuns: runs(5000) },
  );
  fc.assert(fc.property(fc.string({ maxLength: 40 }), tokenSafely), { numRuns: runs(3000) });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (u) => tokenSafely(Buffer.from([1, ...u]).toString('base64url'))), { numRuns: runs(3000) });
});

function setEq(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
