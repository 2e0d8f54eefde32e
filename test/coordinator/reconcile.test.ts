// read_repair.reconcile: the merge of the replicas' answers and the stale list. Its shortcut for
// answers that all hold the same version must give exactly the full merge's object (same bytes),
// and must not be taken when merging would change the object (max-siblings, lww, pruning).
import t from 'tap';
import { applyWrite, contextOf, decodeObject, EMPTY_OBJECT, EMPTY_CONTEXT, encodeObject, mergeObjects, type VersionedObject, type WriteOptions } from '../../src/coordinator/object.js';
import { reconcile, sameContent } from '../../src/coordinator/read_repair.js';

const OPTS: WriteOptions = { maxSiblings: 8, conflictPolicy: 'siblings', vclockMaxEntries: 16 };
const A = 'a'.repeat(40) + '.00000001';
const B = 'b'.repeat(40) + '.00000001';
const C = 'c'.repeat(40) + '.00000001';

const write = (obj: VersionedObject, actor: string, value: string | null, at: number, ctx = contextOf(obj), expiresAtMs = 0): VersionedObject =>
  applyWrite(obj, ctx, actor, { value: value === null ? null : Buffer.from(value), writtenAtMs: at, expiresAtMs }, OPTS);
const copy = (o: VersionedObject): VersionedObject => decodeObject(encodeObject(o));
const fold = (answers: ReadonlyMap<string, VersionedObject | null>, opts: WriteOptions): VersionedObject => {
  let m = EMPTY_OBJECT;
  for (const o of answers.values()) if (o !== null) m = mergeObjects(m, o, opts);
  return m;
};

const plain = write(EMPTY_OBJECT, A, 'v1', 1000);
const withTtl = write(plain, A, 'v2', 2000, contextOf(plain), 99_000);
const siblings = mergeObjects(write(plain, B, 'from-b', 3000), write(plain, C, 'from-c', 3001, contextOf(plain)), OPTS);
const tombstone = write(siblings, A, null, 4000);
const threeSiblings = mergeObjects(siblings, write(plain, A, 'from-a', 3002, EMPTY_CONTEXT), OPTS);

t.test('same version everywhere: the merge is that version, byte for byte as the full merge; nothing stale', async (t) => {
  for (const [name, obj] of Object.entries({ plain, withTtl, siblings, tombstone, threeSiblings })) {
    const answers = new Map<string, VersionedObject | null>([['x', copy(obj)], ['y', copy(obj)], ['z', copy(obj)]]);
    const r = reconcile(answers, OPTS);
    t.same(encodeObject(r.merged), encodeObject(fold(answers, OPTS)), `${name}: same bytes as the full merge`);
    t.same(r.stale, [], `${name}: nothing to repair`);
    t.ok(sameContent(answers.get('x')!, answers.get('y')!), `${name}: copies have the same content`);
  }
});

t.test('different versions, or a notfound: the full merge and the stale replicas', async (t) => {
  const answers = new Map<string, VersionedObject | null>([['x', copy(withTtl)], ['y', copy(plain)], ['z', null]]);
  const r = reconcile(answers, OPTS);
  t.same(encodeObject(r.merged), encodeObject(fold(answers, OPTS)), 'the full merge');
  t.same(r.stale, ['y', 'z'], 'the older copy and the notfound are stale');
  t.notOk(sameContent(plain, withTtl), 'different versions differ');
  t.notOk(sameContent(siblings, threeSiblings), 'a sibling more differs');
});

t.test('the shortcut is not taken where merging changes even one version: max-siblings, lww', async (t) => {
  const answers = new Map<string, VersionedObject | null>([['x', copy(threeSiblings)], ['y', copy(threeSiblings)]]);
  for (const opts of [{ ...OPTS, maxSiblings: 2 }, { ...OPTS, conflictPolicy: 'lww' as const }]) {
    const r = reconcile(answers, opts);
    const full = fold(answers, opts);
    t.same(encodeObject(r.merged), encodeObject(full), `${JSON.stringify(opts)}: the full merge`);
    t.ok(full.siblings.length < threeSiblings.siblings.length, 'which truncated the siblings');
  }
});
