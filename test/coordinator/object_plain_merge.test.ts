// plainMergeResult (the replica merge decided on the bytes) against the general path it stands
// for: decodeObject on both sides + mergeObjects + encodeObject. Whenever it accepts, the merge
// must give the incoming bytes for every option set, and the fields it reports must be those of
// the two objects; bytes decodeObject rejects must be declined (isPlainObjectBytes too).
import t from 'tap';
import fc from 'fast-check';
import {
  applyWrite,
  contextOf,
  decodeObject,
  EMPTY_OBJECT,
  encodeObject,
  mergeObjects,
  type VersionedObject,
  type WriteOptions,
} from '../../src/coordinator/object.js';
import { damageArb, damaged, decodes } from './object_damage.js';
import { plainMergeResult } from '../../src/coordinator/object_plain_merge.js';
import { isPlainObjectBytes, type PlainWrite } from '../../src/coordinator/object_plain_write.js';

const ACTORS = ['n1.1', 'n2.1', 'é-node.7', 'z'] as const;
const OPTS: WriteOptions[] = [
  { maxSiblings: 100, conflictPolicy: 'siblings', vclockMaxEntries: 50 },
  { maxSiblings: 1, conflictPolicy: 'lww', vclockMaxEntries: 1 },
  { maxSiblings: 3, conflictPolicy: 'siblings', vclockMaxEntries: 2, localActor: 'n2.1' },
];

const timeArb = fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.constantFrom(0, 127, 128, 16383, 16384, 1_700_000_000_000, Number.MAX_SAFE_INTEGER));
const valueArb = fc.option(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), { nil: null, freq: 4 });
const writeArb: fc.Arbitrary<PlainWrite> = fc.record({ value: valueArb, writtenAtMs: timeArb, expiresAtMs: fc.oneof(fc.constant(0), timeArb) });

/** One step building an object: a plain write, a write with an empty context (a sibling), or a merge. */
type Step = { actor: number; w: PlainWrite; kind: 'plain' | 'blind' | 'merge' };
const stepArb: fc.Arbitrary<Step> = fc.record({
  actor: fc.constantFrom(0, 0, 0, 1, 2, 3),
  w: writeArb,
  kind: fc.constantFrom('plain' as const, 'plain' as const, 'plain' as const, 'blind' as const, 'merge' as const),
});

function apply(obj: VersionedObject, s: Step): VersionedObject {
  const opts = OPTS[0] as WriteOptions;
  const actor = ACTORS[s.actor] as string;
  if (s.kind === 'merge') return mergeObjects(obj, applyWrite(EMPTY_OBJECT, new Map(), actor, s.w, opts), opts);
  return applyWrite(obj, s.kind === 'plain' ? contextOf(obj) : new Map(), actor, s.w, opts);
}

const build = (steps: readonly Step[], from: VersionedObject = EMPTY_OBJECT): VersionedObject => steps.reduce(apply, from);

/**
 * The pair (stored, incoming) a replica sees: incoming is the stored object advanced by a few
 * steps (a coordinator's newer write: the usual case), or an unrelated history, or the stored
 * object itself (a put delivered twice), or older than the stored one.
 */
const pairArb = fc
  .record({
    base: fc.array(stepArb, { maxLength: 4 }),
    more: fc.array(stepArb, { minLength: 1, maxLength: 3 }),
    relation: fc.constantFrom('newer', 'newer', 'newer', 'unrelated', 'same', 'older', 'absent'),
    // Half the pairs are one coordinator's plain writes only (the usual history of a key).
    own: fc.boolean(),
  })
  .map(({ base: b0, more: m0, relation, own }) => {
    const base = own ? b0.map((s) => ({ ...s, actor: 0, kind: 'plain' as const })) : b0;
    const more = own ? m0.map((s) => ({ ...s, actor: 0, kind: 'plain' as const })) : m0;
    const s = build(base);
    const ahead = build(more, s);
    switch (relation) {
      case 'newer':
        return { stored: s, incoming: ahead };
      case 'unrelated':
        return { stored: s, incoming: build(more) };
      case 'same':
        return { stored: ahead, incoming: ahead };
      case 'older':
        return { stored: ahead, incoming: s };
      default:
        return { stored: undefined, incoming: ahead };
    }
  });

function check(stored: Buffer | undefined, incoming: Buffer): boolean {
  const m = plainMergeResult(stored, incoming);
  if (m === undefined) return false;
  const a = stored === undefined ? EMPTY_OBJECT : decodeObject(stored);
  const b = decodeObject(incoming);
  for (const o of OPTS) {
    const merged = encodeObject(mergeObjects(a, b, o));
    if (!merged.equals(incoming)) throw new Error(`merge ${JSON.stringify(o)} gives ${merged.toString('hex')}, not the incoming ${incoming.toString('hex')} (stored ${stored?.toString('hex')})`);
  }
  const before = a.siblings.find((s) => s.value !== null);
  if (m.beforeValue !== (before !== undefined) || m.beforeExpiresAtMs !== (before?.expiresAtMs ?? 0)) throw new Error('before fields differ');
  const after = b.siblings[0];
  if (b.siblings.length !== 1 || after === undefined) throw new Error('accepted an object without exactly one sibling');
  if (m.afterValue !== (after.value !== null) || m.afterWrittenAtMs !== after.writtenAtMs || m.afterExpiresAtMs !== after.expiresAtMs) throw new Error('after fields differ');
  return true;
}

t.test('accepted pairs merge to exactly the incoming bytes under every option set', (t) => {
  let accepted = 0;
  let declined = 0;
  fc.assert(
    fc.property(pairArb, ({ stored, incoming }) => {
      if (check(stored === undefined ? undefined : encodeObject(stored), encodeObject(incoming))) accepted++;
      else declined++;
    }),
    { numRuns: 4000 },
  );
  t.ok(accepted > 1000, `accepted ${accepted}`);
  t.ok(declined > 800, `declined ${declined}`);
  t.end();
});

t.test('the usual replica put is accepted; what it does not supersede is declined', (t) => {
  const opts = OPTS[0] as WriteOptions;
  const w = (ms: number, value: string | null, expiresAtMs = 0): PlainWrite => ({ value: value === null ? null : Buffer.from(value), writtenAtMs: ms, expiresAtMs });
  const v1 = applyWrite(EMPTY_OBJECT, new Map(), 'n1.1', w(10, 'a'), opts);
  const v2 = applyWrite(v1, contextOf(v1), 'n1.1', w(20, null), opts);
  const v3 = applyWrite(v2, contextOf(v2), 'n1.1', w(30, 'c', 99), opts);
  const e = encodeObject;
  t.ok(check(undefined, e(v1)), 'absent key');
  t.ok(check(e(v1), e(v2)), 'a tombstone over a value');
  t.ok(check(e(v2), e(v3)), 'a value with a TTL over a tombstone');
  t.ok(check(e(v1), e(v3)), 'a write skipped in between');
  t.notOk(check(e(v2), e(v2)), 'the same write again');
  t.notOk(check(e(v3), e(v2)), 'an older write');
  // The stored clock time ahead of the incoming one (a newer dot written at an earlier time):
  // the merge keeps the later time, so the result is not the incoming object.
  const late = applyWrite(EMPTY_OBJECT, new Map(), 'n1.1', w(50, 'x'), opts);
  const early = applyWrite(EMPTY_OBJECT, new Map(), 'n1.1', { ...w(40, 'y'), minCounter: 5 }, opts);
  t.notOk(check(e(late), e(early)), 'a stored clock time ahead');
  t.ok(check(e(late), e(applyWrite(late, contextOf(late), 'n1.1', w(40, 'y'), opts))), 'a write at an earlier time over its own history (the clock time stays)');
  t.notOk(check(e(v1), e(applyWrite(EMPTY_OBJECT, new Map(), 'n2.1', w(40, 'z'), opts))), 'another actor');
  t.notOk(check(e(v1), e(mergeObjects(v1, applyWrite(EMPTY_OBJECT, new Map(), 'n2.1', w(40, 'z'), opts), opts))), 'two actors');
  t.notOk(check(undefined, e(applyWrite(EMPTY_OBJECT, new Map(), 'é-node.7', w(1, 'v'), opts))), 'a non-ASCII actor');
  const twoSiblings = applyWrite(v1, new Map(), 'n1.1', w(40, 'z'), opts);
  t.notOk(check(undefined, e(twoSiblings)), 'two siblings');
  t.end();
});

t.test('bytes decodeObject rejects are declined, on either side', (t) => {
  let rejected = 0;
  fc.assert(
    fc.property(
      pairArb,
      fc.boolean(),
      damageArb,
      ({ stored, incoming }, damageIncoming, damage) => {
        const s = stored === undefined ? undefined : encodeObject(stored);
        const i = encodeObject(incoming);
        const good = damageIncoming || s === undefined ? i : s;
        const bad = damaged(good, damage);
        const decodesBad = decodes(bad);
        const [ss, ii] = good === i ? [s, bad] : [bad, i];
        if (good === i && isPlainObjectBytes(bad) && !decodesBad) throw new Error(`isPlainObjectBytes accepted corrupt bytes ${bad.toString('hex')}`);
        if (!decodesBad) {
          rejected++;
          if (plainMergeResult(ss, ii) !== undefined) throw new Error(`accepted corrupt bytes ${bad.toString('hex')}`);
          return;
        }
        check(ss, ii);
      },
    ),
    { numRuns: 4000 },
  );
  t.ok(rejected > 1000, `corrupt inputs seen: ${rejected}`);
  t.end();
});
