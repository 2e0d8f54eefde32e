// Frame decoding: round-trips at every split point, the limit checked on the 4 length bytes before
// anything is allocated, malformed lengths, and the backoff schedule.
import t from 'tap';
import { throwsCode } from './expect_error.js';
import { backoffDelayMs } from '../../src/cluster/backoff.js';
import { isClusterError } from '../../src/cluster/errors.js';
import { encodeFrame, FrameDecoder, MIN_FRAME_LENGTH, type Frame } from '../../src/cluster/frame.js';
import { MAX_FRAME_BYTES_LIMIT } from '../../src/cluster/limits.js';

const decodeAll = (d: FrameDecoder, chunks: Buffer[]): Frame[] => {
  const out: Frame[] = [];
  for (const c of chunks) d.push(c, (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
  return out;
};

t.test('frames survive being split at every byte boundary', async (t) => {
  const frames = [
    encodeFrame(0x10, 1, Buffer.from('hello')),
    encodeFrame(0x05, 0xffff_ffff, Buffer.alloc(0)),
    encodeFrame(0x20, 7, Buffer.alloc(300, 0xab)),
  ];
  const stream = Buffer.concat(frames);
  let splits = 0;
  let bad = 0;
  for (let a = 0; a <= stream.length; a++) {
    for (const b of [a, Math.min(stream.length, a + 1), Math.min(stream.length, a + 13)]) {
      const d = new FrameDecoder({ maxFrameBytes: 1024 });
      const got = decodeAll(d, [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
      splits++;
      if (got.length !== 3 || d.bufferedBytes !== 0 || !got[2]!.payload.equals(Buffer.alloc(300, 0xab)) || got[0]!.payload.toString() !== 'hello') bad++;
      if (a === 5 && b === 6) {
        t.same(got.map((f) => [f.type, f.requestId, f.payload.length]), [[0x10, 1, 5], [5, 0xffff_ffff, 0], [0x20, 7, 300]]);
        t.equal(got[0]!.payload.toString(), 'hello');
      }
    }
  }
  t.equal(bad, 0, `all ${splits} three-way splits decode to the same 3 frames`);
  // One byte at a time.
  const d = new FrameDecoder({ maxFrameBytes: 1024 });
  const got = decodeAll(d, [...stream].map((x) => Buffer.from([x])));
  t.equal(got.length, 3);
  t.ok(got[2]!.payload.equals(Buffer.alloc(300, 0xab)));
});

t.test('an oversize length is refused from its 4 bytes alone, with no allocation', async (t) => {
  for (const len of [1025, 0xffff_ffff, MAX_FRAME_BYTES_LIMIT + 1]) {
    const allocations: number[] = [];
    const d = new FrameDecoder({ maxFrameBytes: 1024, allocate: (n) => (allocations.push(n), Buffer.allocUnsafe(n)) });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(len);
    // Split the length field itself: the check happens once all 4 bytes are in, not before.
    d.push(header.subarray(0, 2), () => t.fail('no frame'));
    throwsCode(t, () => d.push(header.subarray(2), () => t.fail('no frame')), 'ERR_FRAME_TOO_LARGE');
    t.same(allocations, [], `nothing allocated for a ${len}-byte frame`);
    t.ok(d.bufferedBytes <= 4);
  }
  // A legal frame split across chunks allocates exactly its own size.
  const allocations: number[] = [];
  const d = new FrameDecoder({ maxFrameBytes: 1024, allocate: (n) => (allocations.push(n), Buffer.allocUnsafe(n)) });
  const f = encodeFrame(0x10, 3, Buffer.alloc(1019));
  t.equal(f.length, 4 + 1024);
  decodeAll(d, [f.subarray(0, 100), f.subarray(100)]);
  t.same(allocations, [1028]);
});

t.test('lengths below the header are malformed; the limit can change between frames', async (t) => {
  for (let len = 0; len < MIN_FRAME_LENGTH; len++) {
    const d = new FrameDecoder({ maxFrameBytes: 1024 });
    const b = Buffer.alloc(9);
    b.writeUInt32BE(len);
    throwsCode(t, () => d.push(b, () => {}), 'ERR_FRAME_MALFORMED');
  }
  const d = new FrameDecoder({ maxFrameBytes: 16 });
  const big = encodeFrame(0x10, 1, Buffer.alloc(100));
  const small = encodeFrame(0x10, 2, Buffer.alloc(1));
  const seen: number[] = [];
  d.push(Buffer.concat([small, big]), (f) => {
    seen.push(f.requestId);
    d.setMaxFrameBytes(1024); // e.g. the handshake just completed
  });
  t.same(seen, [2, 1]);
  const stopped = new FrameDecoder({ maxFrameBytes: 1024 });
  const after: number[] = [];
  stopped.push(Buffer.concat([small, small]), (f) => {
    after.push(f.requestId);
    stopped.stop();
  });
  t.same(after, [2], 'stop() inside onFrame ends delivery');
});

t.test('backoff: exponential, capped, jittered within [step/2, step)', async (t) => {
  t.equal(backoffDelayMs(0, 50, 5000, () => 0), 25);
  t.equal(backoffDelayMs(0, 50, 5000, () => 0.999999) < 50, true);
  t.equal(backoffDelayMs(3, 50, 5000, () => 0), 200);
  t.equal(backoffDelayMs(20, 50, 5000, () => 0), 2500);
  t.equal(backoffDelayMs(10_000, 50, 5000, () => 0.5), 3750);
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) seen.add(Math.round(backoffDelayMs(4, 50, 5000, Math.random)));
  t.ok(seen.size > 10, 'jitter spreads retries');
});
