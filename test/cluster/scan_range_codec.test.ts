// The SCAN_RANGE wire format round-trips and refuses every bad length or count before slicing;
// the cluster scan's replica choice and slot runs (cluster_scan_plan.ts).
import t from 'tap';
import { ClusterError } from '../../src/cluster/errors.js';
import {
  decodeScanRange,
  decodeScanRangeResult,
  encodeScanRange,
  encodeScanRangeResult,
  MAX_WIRE_PATTERN_BYTES,
  MAX_WIRE_SCAN_KEYS,
} from '../../src/cluster/scan_range_codec.js';
import { chooseReplica, cursorSlot, planSegment, slotStartCursor } from '../../src/server/commands/cluster_scan_plan.js';
import { SLOT_COUNT } from '../../src/server/key_layout.js';

function decodeError(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof ClusterError) return err.code;
    throw err;
  }
  return '(none)';
}

t.test('SCAN_RANGE request and reply round-trip', async (t) => {
  const req = { cursor: slotStartCursor(16383) + 0xabcdefn, lastSlot: 16383, count: 77, pattern: Buffer.from('k:*'), matchNone: false, countOnly: true };
  t.same(decodeScanRange(encodeScanRange(req)), req);
  const noPattern = { ...req, pattern: undefined, matchNone: true, countOnly: false };
  t.same(decodeScanRange(encodeScanRange(noPattern)), noPattern);
  const res = { cursor: slotStartCursor(9000) + 5n, examined: 3, live: 2, keys: [Buffer.from('a'), Buffer.alloc(0), Buffer.from([0, 255])] };
  t.same(decodeScanRangeResult(encodeScanRangeResult(res)), res);
  t.same(decodeScanRangeResult(encodeScanRangeResult({ cursor: 0n, examined: 0, live: 0, keys: [] })).cursor, 0n);
});

t.test('SCAN_RANGE refuses bad lengths, counts and values', async (t) => {
  const good = encodeScanRange({ cursor: 1n, lastSlot: 5, count: 10, pattern: Buffer.from('x'), matchNone: false, countOnly: false });
  for (let n = 0; n < good.length; n++) t.equal(decodeError(() => decodeScanRange(good.subarray(0, n))), 'ERR_GOSSIP_DECODE', `truncated at ${n}`);
  t.equal(decodeError(() => decodeScanRange(Buffer.concat([good, Buffer.from([0])]))), 'ERR_GOSSIP_DECODE', 'trailing byte');
  const patch = (offset: number, write: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    write(b.subarray(offset));
    return b;
  };
  t.equal(decodeError(() => decodeScanRange(patch(0, (b) => (b[0] = 4)))), 'ERR_GOSSIP_DECODE', 'unknown flag');
  t.equal(decodeError(() => decodeScanRange(patch(1, (b) => b.writeUInt32BE(0, 4)))), 'ERR_GOSSIP_DECODE', 'cursor 0');
  t.equal(decodeError(() => decodeScanRange(patch(1, (b) => b.writeUInt32BE(0x7fffffff, 0)))), 'ERR_GOSSIP_DECODE', 'cursor past the end');
  t.equal(decodeError(() => decodeScanRange(patch(9, (b) => b.writeUInt16BE(SLOT_COUNT, 0)))), 'ERR_GOSSIP_DECODE', 'last slot past the end');
  t.equal(decodeError(() => decodeScanRange(patch(11, (b) => b.writeUInt32BE(0, 0)))), 'ERR_GOSSIP_DECODE', 'count 0');
  t.equal(decodeError(() => decodeScanRange(patch(15, (b) => b.writeUInt32BE(MAX_WIRE_PATTERN_BYTES + 1, 0)))), 'ERR_GOSSIP_DECODE', 'pattern over the cap');
  t.equal(decodeError(() => decodeScanRange(patch(15, (b) => b.writeUInt32BE(2, 0)))), 'ERR_GOSSIP_DECODE', 'pattern longer than the payload');

  const reply = encodeScanRangeResult({ cursor: 0n, examined: 1, live: 1, keys: [Buffer.from('abc')] });
  for (let n = 0; n < reply.length; n++) t.equal(decodeError(() => decodeScanRangeResult(reply.subarray(0, n))), 'ERR_GOSSIP_DECODE', `reply truncated at ${n}`);
  const many = Buffer.from(reply);
  many.writeUInt32BE(MAX_WIRE_SCAN_KEYS + 1, 16);
  t.equal(decodeError(() => decodeScanRangeResult(many)), 'ERR_GOSSIP_DECODE', 'key count over the cap');
  const unfit = Buffer.from(reply);
  unfit.writeUInt32BE(1000, 16);
  t.equal(decodeError(() => decodeScanRangeResult(unfit)), 'ERR_GOSSIP_DECODE', 'key count the payload cannot hold');
  const longKey = Buffer.from(reply);
  longKey.writeUInt32BE(0xffffffff, 20);
  t.equal(decodeError(() => decodeScanRangeResult(longKey)), 'ERR_GOSSIP_DECODE', 'key length over the cap');
});

t.test('replica choice and slot runs', async (t) => {
  const up = (id: string): boolean => id !== 'down';
  t.equal(chooseReplica(['a', 'self', 'b'], 'self', up, new Set()), 'self', 'this node when it is a replica');
  t.equal(chooseReplica(['down', 'a', 'b'], 'self', up, new Set()), 'a', 'else the first replica seen up');
  t.equal(chooseReplica(['a', 'b'], 'self', up, new Set(['a'])), 'b', 'a replica that failed in this call is skipped');
  t.equal(chooseReplica(['down', 'a'], 'self', up, new Set(['a'])), 'down', 'a node seen down is still tried last');
  t.equal(chooseReplica(['a'], 'self', up, new Set(['a'])), undefined);

  const preflist = (s: number): readonly string[] => (s < 100 ? ['x', 'y'] : s < 200 ? ['y', 'self'] : ['z', 'x']);
  const choose = (p: readonly string[]): string | undefined => chooseReplica(p, 'self', up, new Set());
  t.same(planSegment(0, preflist, choose), { firstSlot: 0, lastSlot: 99, node: 'x' });
  t.same(planSegment(150, preflist, choose), { firstSlot: 150, lastSlot: 199, node: 'self' });
  t.same(planSegment(200, preflist, choose), { firstSlot: 200, lastSlot: SLOT_COUNT - 1, node: 'z' });

  t.equal(cursorSlot(slotStartCursor(1234)), 1234);
  t.equal(cursorSlot(slotStartCursor(1234) + (1n << 48n) - 1n), 1234, 'the last prefix of a slot');
  t.equal(slotStartCursor(SLOT_COUNT), 0n, 'past the last slot: done');
});
