// Anti-entropy's wire formats (src/cluster/anti_entropy_codec.ts) and its pure per-leaf decision
// (anti_entropy_plan.ts compareLeaf): round trips, every count/length checked before allocating
// (truncations and oversize counts refused with ERR_GOSSIP_DECODE), and which objects cross.
import t from 'tap';
import fc from 'fast-check';
import {
  decodeHashesRequest,
  decodeHashesResponse,
  decodeKeysRequest,
  decodeKeysResponse,
  decodePush,
  decodePushResponse,
  encodeHashesRequest,
  encodeHashesResponse,
  encodeKeysRequest,
  encodeKeysResponse,
  encodePush,
  encodePushResponse,
  MAX_AE_LEAVES_PER_REQUEST,
} from '../../src/cluster/anti_entropy_codec.js';
import { compareLeaf } from '../../src/cluster/anti_entropy_plan.js';
import { LEAF_LEVEL } from '../../src/cluster/merkle.js';

const hashArb = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const keyArb = fc.uint8Array({ minLength: 0, maxLength: 20 }).map((a) => Buffer.from(a));

function decodeError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
  return 'no error';
}

t.test('round trips', async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 16383 }), { maxLength: 20 }), fc.integer({ min: 0, max: LEAF_LEVEL - 1 }), fc.array(hashArb, { maxLength: 8 }), (slots, level, hashes) => {
      const sorted = [...slots].sort((a, b) => a - b);
      const ranges = sorted.map((s) => [s, s] as const);
      const parents = hashes.map((_, i) => i % 4 ** level);
      const req = { ranges, parentLevel: level, parents };
      const back = decodeHashesRequest(encodeHashesRequest(req));
      const res = { root: hashes[0] ?? 0n, children: parents.flatMap(() => [1n, 2n, 3n, 2n ** 64n - 1n]) };
      return JSON.stringify(back) === JSON.stringify({ ranges: ranges.map((r) => [...r]), parentLevel: level, parents }) &&
        JSON.stringify(decodeHashesResponse(encodeHashesResponse(res), parents.length), (_, v) => (typeof v === 'bigint' ? v.toString() : v)) ===
          JSON.stringify(res, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    }),
  );
  fc.assert(
    fc.property(fc.array(fc.record({ leaf: fc.nat(2 ** 20 - 1), entries: fc.array(fc.record({ key: keyArb, hash: hashArb, clockSum: fc.nat() }), { maxLength: 4 }) }), { maxLength: 10 }), (leaves) => {
      const back = decodeKeysRequest(encodeKeysRequest(leaves));
      return back.length === leaves.length && back.every((l, i) => l.leaf === leaves[i]!.leaf && l.entries.every((e, j) => e.key.equals(leaves[i]!.entries[j]!.key) && e.hash === leaves[i]!.entries[j]!.hash && e.clockSum === leaves[i]!.entries[j]!.clockSum));
    }),
  );
  const objects = [{ key: Buffer.from('a'), bytes: Buffer.from([1, 2, 3]) }, { key: Buffer.alloc(0), bytes: Buffer.alloc(0) }];
  const kr = decodeKeysResponse(encodeKeysResponse({ truncated: true, objects, wants: [Buffer.from('w')] }));
  t.equal(kr.truncated, true);
  t.same(kr.objects.map((o) => [o.key.toString(), [...o.bytes]]), [['a', [1, 2, 3]], ['', []]]);
  t.same(kr.wants.map(String), ['w']);
  t.same(decodePush(encodePush(objects)).map((o) => o.key.toString()), ['a', '']);
  const pr = decodePushResponse(encodePushResponse({ merged: 7, objects: objects.slice(0, 1) }));
  t.equal(pr.merged, 7);
  t.equal(pr.objects.length, 1);
});

t.test('bad input is refused before allocating', async (t) => {
  const good = encodeKeysRequest([{ leaf: 5, entries: [{ key: Buffer.from('k'), hash: 9n, clockSum: 3 }] }]);
  for (let cut = 0; cut < good.length; cut++) t.equal(decodeError(() => decodeKeysRequest(good.subarray(0, cut))), 'ERR_GOSSIP_DECODE', `truncated at ${cut}`);
  t.equal(decodeError(() => decodeKeysRequest(Buffer.concat([good, Buffer.from([0])]))), 'ERR_GOSSIP_DECODE', 'trailing byte');
  const tooMany = Buffer.alloc(4);
  tooMany.writeUInt32BE(MAX_AE_LEAVES_PER_REQUEST + 1);
  t.equal(decodeError(() => decodeKeysRequest(tooMany)), 'ERR_GOSSIP_DECODE', 'leaf count over the cap');
  const huge = Buffer.alloc(9);
  huge.writeUInt32BE(0xffffffff, 5);
  t.equal(decodeError(() => decodeKeysResponse(huge)), 'ERR_GOSSIP_DECODE', 'object count larger than the payload');
  t.equal(decodeError(() => decodeHashesRequest(encodeHashesRequest({ ranges: [[5, 3]], parentLevel: 0, parents: [] }))), 'ERR_GOSSIP_DECODE', 'reversed slot range');
  t.equal(decodeError(() => decodeHashesRequest(encodeHashesRequest({ ranges: [], parentLevel: LEAF_LEVEL, parents: [] }))), 'ERR_GOSSIP_DECODE', 'no children below the leaves');
  t.equal(decodeError(() => decodeHashesRequest(encodeHashesRequest({ ranges: [], parentLevel: 1, parents: [4] }))), 'ERR_GOSSIP_DECODE', 'parent outside its level');
  t.equal(decodeError(() => decodeHashesResponse(encodeHashesResponse({ root: 1n, children: [1n] }), 1)), 'ERR_GOSSIP_DECODE', 'too few child hashes');
});

t.test('compareLeaf: which objects cross, and which keys are wanted', async (t) => {
  const e = (key: string, hash: bigint, clockSum: number) => ({ key: Buffer.from(key), hash, clockSum, bytes: Buffer.from(key + hash) });
  const mine = [e('same', 1n, 5), e('onlyMine', 2n, 1), e('mineNewer', 3n, 9), e('mineStale', 4n, 2), e('concurrentLow', 5n, 3)];
  const theirs = [
    { key: Buffer.from('same'), hash: 1n, clockSum: 5 },
    { key: Buffer.from('onlyTheirs'), hash: 7n, clockSum: 1 },
    { key: Buffer.from('mineNewer'), hash: 8n, clockSum: 4 },
    { key: Buffer.from('mineStale'), hash: 9n, clockSum: 6 },
    { key: Buffer.from('concurrentLow'), hash: 10n, clockSum: 4 },
  ];
  const { send, want } = compareLeaf(mine, theirs);
  t.same(send.map((x) => x.key.toString()).sort(), ['mineNewer', 'onlyMine'], 'sent: what they lack and what theirs cannot dominate');
  t.same(want.map(String).sort(), ['concurrentLow', 'mineNewer', 'mineStale', 'onlyTheirs'], 'wanted: every key that differs on their side');
});
