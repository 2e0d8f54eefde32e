// plainWriteBytes (the SET fast path on stored bytes) against the general path it replaces:
// decodeObject + applyWrite(contextOf) + encodeObject. Every accepted input must give the same
// bytes and the same liveness; every input decodeObject rejects must be declined.
import t from 'tap';
import fc from 'fast-check';
import {
  applyWrite,
  contextOf,
  decodeObject,
  EMPTY_OBJECT,
  encodeObject,
  isLive,
  liveValues,
  mergeObjects,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';
import { damageArb, damaged, decodes } from './object_damage.js';
import { plainValueView, plainWriteBytes, type PlainWrite } from '../../src/coordinator/object_plain_write.js';

const ACTORS = ['n1.1', 'n2.1', 'é-node.7', 'z'] as const;
const OPTS: WriteOptions[] = [
  { maxSiblings: 100, conflictPolicy: 'siblings', vclockMaxEntries: 50 },
  { maxSiblings: 1, conflictPolicy: 'lww', vclockMaxEntries: 1 },
  { maxSiblings: 3, conflictPolicy: 'siblings', vclockMaxEntries: 2 },
];

const timeArb = fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.constantFrom(0, 127, 128, 16383, 16384, 1_700_000_000_000, Number.MAX_SAFE_INTEGER));
const valueArb = fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { nil: null, freq: 4 });
const writeArb: fc.Arbitrary<PlainWrite> = fc.record({ value: valueArb, writtenAtMs: timeArb, expiresAtMs: fc.oneof(fc.constant(0), timeArb) });

/** One step building a stored object: a plain write, a write with an empty context (a sibling), or a merge. */
type Step = { actor: number; w: PlainWrite; kind: 'plain' | 'blind' | 'merge' };
const stepArb: fc.Arbitrary<Step> = fc.record({
  actor: fc.nat(ACTORS.length - 1),
  w: writeArb,
  kind: fc.constantFrom('plain' as const, 'plain' as const, 'blind' as const, 'merge' as const),
});

function build(steps: readonly Step[]): VersionedObject {
  const opts = OPTS[0] as WriteOptions;
  let obj = EMPTY_OBJECT;
  for (const s of steps) {
    const actor = ACTORS[s.actor] as string;
    if (s.kind === 'merge') {
      const other = applyWrite(EMPTY_OBJECT, new Map(), actor, s.w, opts);
      obj = mergeObjects(obj, other, opts);
    } else {
      obj = applyWrite(obj, s.kind === 'plain' ? contextOf(obj) : new Map(), actor, s.w, opts);
    }
  }
  return obj;
}

/** The general path for `stored` (undefined: absent), for every option set: one result (asserted equal). */
function general(stored: Buffer | undefined, actor: string, w: PlainWrite): { bytes: Buffer; beforeLive: boolean; beforeExpiresAtMs: number; sameForAllOptions: boolean } {
  const obj = stored === undefined ? EMPTY_OBJECT : decodeObject(stored);
  const outs = OPTS.map((o) => encodeObject(applyWrite(obj, contextOf(obj), actor, w, { ...o, localActor: actor })));
  let live = false;
  let forever = false;
  let exp = 0;
  for (const s of obj.siblings) {
    if (!isLive(s, w.writtenAtMs)) continue;
    live = true;
    if (s.expiresAtMs === 0) forever = true;
    else exp = Math.max(exp, s.expiresAtMs);
  }
  const bytes = outs[0] as Buffer;
  return { bytes, beforeLive: live, beforeExpiresAtMs: live && !forever ? exp : 0, sameForAllOptions: outs.every((b) => b.equals(bytes)) };
}

t.test('accepted inputs give exactly the general path bytes and liveness', (t) => {
  let accepted = 0;
  let declined = 0;
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 6 }), fc.nat(ACTORS.length - 1), writeArb, fc.boolean(), (steps, a, w, absent) => {
      const actor = ACTORS[a] as string;
      const stored = absent ? undefined : encodeObject(build(steps));
      const fast = plainWriteBytes(stored, Buffer.from(actor, 'utf8'), w);
      if (fast === undefined) {
        declined++;
        return;
      }
      accepted++;
      const g = general(stored, actor, w);
      // The fast path ignores the options: valid only if they cannot change this write.
      if (!g.sameForAllOptions) throw new Error('options changed a plain write the fast path accepted');
      if (!fast.bytes.equals(g.bytes)) throw new Error(`bytes differ: ${fast.bytes.toString('hex')} vs ${g.bytes.toString('hex')}`);
      if (fast.beforeLive !== g.beforeLive || fast.beforeExpiresAtMs !== g.beforeExpiresAtMs) throw new Error('liveness differs');
    }),
    { numRuns: 3000 },
  );
  // Both branches are exercised (the generator makes own-actor one-sibling objects and others).
  t.ok(accepted > 500, `accepted ${accepted}`);
  t.ok(declined > 100, `declined ${declined}`);
  t.end();
});

t.test('the shapes a node leaves itself are always accepted', (t) => {
  const actor = 'n1.1';
  const me = Buffer.from(actor, 'utf8');
  const w: PlainWrite = { value: Buffer.from('v'), writtenAtMs: 1000, expiresAtMs: 0 };
  t.ok(plainWriteBytes(undefined, me, w), 'absent key');
  let obj = EMPTY_OBJECT;
  let declined = 0;
  for (let i = 0; i < 200; i++) {
    const stored = obj === EMPTY_OBJECT ? undefined : encodeObject(obj);
    const w2: PlainWrite = { value: i % 7 === 0 ? null : Buffer.alloc(i), writtenAtMs: 1000 + i, expiresAtMs: i % 3 === 0 ? 5000 : 0 };
    const fast = plainWriteBytes(stored, me, w2);
    if (fast === undefined) declined++;
    obj = fast === undefined ? applyWrite(obj, contextOf(obj), actor, w2, OPTS[0] as WriteOptions) : decodeObject(fast.bytes);
  }
  t.equal(declined, 0, 'every write on its own object (values, tombstones, TTLs) takes the fast path');
  t.equal(obj.clock.get(actor), 200, 'one counter per write');
  // Another actor in the clock, or two siblings: the general path.
  const mixed = applyWrite(obj, contextOf(obj), 'n2.1', w, OPTS[0] as WriteOptions);
  t.equal(plainWriteBytes(encodeObject(mixed), me, w), undefined, 'two clock entries');
  const siblings = applyWrite(obj, new Map(), actor, w, OPTS[0] as WriteOptions);
  t.equal(siblings.siblings.length, 2);
  t.equal(plainWriteBytes(encodeObject(siblings), me, w), undefined, 'two siblings');
  t.equal(plainWriteBytes(encodeObject(obj), Buffer.from('n2.1'), w), undefined, 'another actor writing');
  t.end();
});

t.test('times at every varint length boundary are accepted and match the general path', (t) => {
  const actor = 'n1.1';
  const me = Buffer.from(actor, 'utf8');
  const times = [0, Number.MAX_SAFE_INTEGER];
  for (let k = 1; k <= 7; k++) times.push(2 ** (7 * k) - 1, 2 ** (7 * k));
  let stored: Buffer | undefined;
  for (const writtenAtMs of times) {
    for (const expiresAtMs of [0, writtenAtMs]) {
      const w: PlainWrite = { value: Buffer.from('v'), writtenAtMs, expiresAtMs };
      const fast = plainWriteBytes(stored, me, w);
      if (fast === undefined) {
        t.fail(`declined time ${writtenAtMs}`);
        continue;
      }
      t.ok(fast.bytes.equals(general(stored, actor, w).bytes), `bytes of time ${writtenAtMs}, expiry ${expiresAtMs}`);
      stored = fast.bytes;
    }
  }
  t.end();
});

t.test('bytes decodeObject rejects are declined; damaged bytes it accepts still match', (t) => {
  const actor = 'n1.1';
  const me = Buffer.from(actor, 'utf8');
  let rejected = 0;
  fc.assert(
    fc.property(
      fc.array(stepArb.map((s) => ({ ...s, actor: 0 })), { minLength: 1, maxLength: 3 }),
      damageArb,
      writeArb,
      (steps, damage, w) => {
        const good = encodeObject(build(steps));
        const bad = damaged(good, damage);
        const decodesBad = decodes(bad);
        const fast = plainWriteBytes(bad, me, w);
        if (!decodesBad) {
          rejected++;
          if (fast !== undefined) throw new Error(`accepted corrupt bytes ${bad.toString('hex')}`);
          return;
        }
        if (fast !== undefined && !fast.bytes.equals(general(bad, actor, w).bytes)) throw new Error('bytes differ');
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(rejected > 1000, `corrupt inputs seen: ${rejected}`);
  t.end();
});

t.test('plainValueView gives liveValues of the decoded object, or declines', (t) => {
  let answered = 0;
  let declined = 0;
  fc.assert(
    fc.property(
      // Mostly one actor writing plainly: the shape this path answers.
      fc.array(fc.tuple(stepArb, fc.boolean()).map(([s, own]) => (own ? { ...s, actor: 0, kind: 'plain' as const } : s)), { minLength: 1, maxLength: 4 }),
      fc.constantFrom(0, 0, 0, 1),
      timeArb,
      fc.option(fc.record({ at: fc.nat(), byte: fc.nat(255) }), { nil: undefined, freq: 2 }),
      (steps, a, nowMs, damage) => {
        let stored = encodeObject(build(steps));
        if (damage !== undefined) {
          stored = Buffer.from(stored);
          stored[damage.at % stored.length] = damage.byte;
        }
        let expected: Buffer[] | undefined;
        try {
          expected = liveValues(decodeObject(stored), nowMs);
        } catch {
          expected = undefined;
        }
        const got = plainValueView(stored, Buffer.from(ACTORS[a] as string, 'utf8'), nowMs);
        if (got === undefined) {
          declined++;
          return;
        }
        answered++;
        if (expected === undefined) throw new Error(`answered for corrupt bytes ${stored.toString('hex')}`);
        if (got === null ? expected.length !== 0 : expected.length !== 1 || !got.equals(expected[0] as Buffer)) {
          throw new Error(`value differs for ${stored.toString('hex')} at ${nowMs}`);
        }
        if (got !== null && got.buffer !== stored.buffer) throw new Error('not a view of the stored bytes');
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(answered > 200, `answered ${answered}`);
  t.ok(declined > 100, `declined ${declined}`);
  t.end();
});
