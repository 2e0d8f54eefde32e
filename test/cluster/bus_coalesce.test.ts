// Outbound frame coalescing on the cluster bus (connection.ts): frames queued in one tick leave as
// one socket write, in order, small and big payloads mixed; while the peer does not read, frames
// queue until 'drain' and then all arrive intact and in order; the overload limit counts frames
// queued for the next flush as well as the socket's unsent bytes.
import * as net from 'node:net';
import t, { type Test } from 'tap';
import { ClusterBus, type ClusterBusOptions } from '../../src/cluster/bus.js';
import { MAX_COPIED_PAYLOAD_BYTES } from '../../src/cluster/connection.js';
import { encodeFrame, FrameDecoder, FrameType, type Frame } from '../../src/cluster/frame.js';
import { ClientHandshake } from '../../src/cluster/handshake.js';
import { rejectsCode } from './expect_error.js';

const HOST = '127.0.0.1';
const ECHO = 0x10;
const NOTE = 0x13;
const BIG = 0x14;

async function startBus(t: Test, opts: Partial<ClusterBusOptions> & { nodeId: string }, setup?: (b: ClusterBus) => void): Promise<ClusterBus> {
  const bus = new ClusterBus({ host: HOST, port: 0, ...opts });
  if (setup) setup(bus);
  else bus.handle(ECHO, (p) => Buffer.concat([Buffer.from('echo:'), p]));
  await bus.listen();
  t.teardown(() => bus.close());
  return bus;
}

const addr = (b: ClusterBus): { host: string; port: number } => ({ host: HOST, port: b.port });

/** A raw authenticated client socket; frames after WELCOME are collected. */
async function rawAuthenticated(t: Test, port: number): Promise<{ socket: net.Socket; frames: Frame[] }> {
  const socket = net.connect({ host: HOST, port, noDelay: true });
  t.teardown(() => {
    socket.destroy();
  });
  socket.on('error', () => {});
  const hs = new ClientHandshake({ selfId: 'raw-client', secret: Buffer.alloc(0) });
  const decoder = new FrameDecoder({ maxFrameBytes: 64 << 20 });
  const frames: Frame[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(encodeFrame(FrameType.HELLO, 0, hs.hello())));
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk, (f) => {
        if (f.type === FrameType.CHALLENGE) socket.write(encodeFrame(FrameType.AUTH, 0, hs.onChallenge(f.payload)));
        else if (f.type === FrameType.WELCOME) {
          hs.onWelcome(f.payload);
          resolve();
        } else frames.push({ type: f.type, requestId: f.requestId, payload: Buffer.from(f.payload) });
      });
    });
    socket.once('close', () => reject(new Error('closed during handshake')));
  });
  return { socket, frames };
}

async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('responses produced in one tick leave as one write, in request order', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' });
  const raw = await rawAuthenticated(t, b.port);
  const COUNT = 200;
  // All requests in one write: they reach the bus in one read, so the handlers run in one tick.
  const reqs = Array.from({ length: COUNT }, (_, i) => encodeFrame(ECHO, i + 1, Buffer.from(`r${i}`)));
  // Count the bus's socket writes (every socket in this process but the raw client's).
  const proto = net.Socket.prototype as unknown as { write: (...args: unknown[]) => boolean };
  const realWrite = proto.write;
  let busWrites = 0;
  proto.write = function (this: net.Socket, ...args: unknown[]): boolean {
    if (this !== raw.socket) busWrites++;
    return realWrite.apply(this, args);
  };
  t.teardown(() => {
    proto.write = realWrite;
  });
  raw.socket.write(Buffer.concat(reqs));
  try {
    await until('all responses', () => raw.frames.length === COUNT);
  } finally {
    proto.write = realWrite;
  }
  // One per flush; per-frame writes (the old bus) made 2 * COUNT calls.
  t.ok(busWrites >= 1 && busWrites <= 4, `${COUNT} responses took ${busWrites} socket write(s)`);
  t.same(
    raw.frames.map((f) => [f.type, f.requestId, f.payload.toString()]),
    Array.from({ length: COUNT }, (_, i) => [FrameType.RESPONSE, i + 1, `echo:r${i}`]),
    'every response, in order',
  );
  t.equal(b.stats.framesOut, COUNT, 'one frame per response');
});

t.test('small and big payloads queued in one tick arrive intact and in order', async (t) => {
  const got: string[] = [];
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(NOTE, (p) => {
      got.push(`${p.length}:${p[0]}:${p[p.length - 1]}`);
      return Buffer.alloc(0);
    });
    bus.handle(ECHO, (p) => p);
  });
  const a = await startBus(t, { nodeId: 'node-a' });
  await a.request(addr(b), ECHO, Buffer.from('warm'), 5000);
  const sizes = [0, 1, 100, MAX_COPIED_PAYLOAD_BYTES, MAX_COPIED_PAYLOAD_BYTES + 1, 7, 100_000, 3, 70_000, 65_000, 2, 1 << 20, 5];
  const expect: string[] = [];
  const sends: Array<Promise<void>> = [];
  for (const [i, n] of sizes.entries()) {
    const p = Buffer.alloc(n, i + 1);
    if (n > 0) p[n - 1] = 200 + i;
    expect.push(n === 0 ? '0:undefined:undefined' : `${n}:${n === 1 ? 200 + i : i + 1}:${200 + i}`);
    sends.push(a.send(addr(b), NOTE, p));
  }
  await Promise.all(sends);
  // A request after the notes on the same connection is answered after they were handled.
  const echoed = await a.request(addr(b), ECHO, Buffer.alloc(300_000, 9), 5000);
  t.equal(echoed.length, 300_000);
  t.ok(echoed.every((x) => x === 9), 'big echo intact');
  t.same(got, expect, 'every one-way message, in order, first and last byte intact');
});

t.test('a peer that stops reading: frames wait for drain, then all arrive in order', async (t) => {
  const PAYLOAD_BYTES = 1 << 20;
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(BIG, (p) => Buffer.alloc(PAYLOAD_BYTES, p[0]!));
  });
  const raw = await rawAuthenticated(t, b.port);
  raw.socket.pause();
  const COUNT = 24;
  for (let i = 0; i < COUNT; i++) {
    raw.socket.write(encodeFrame(BIG, i + 1, Buffer.from([i])));
    // Spread over several ticks so later responses queue while the socket waits for 'drain'.
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 100));
  t.equal(raw.frames.length, 0, 'nothing read while paused');
  raw.socket.resume();
  await until('all big responses', () => raw.frames.length === COUNT, 30_000);
  t.same(
    raw.frames.map((f) => f.requestId),
    Array.from({ length: COUNT }, (_, i) => i + 1),
    'responses in order',
  );
  t.ok(
    raw.frames.every((f, i) => f.type === FrameType.RESPONSE && f.payload.length === PAYLOAD_BYTES && f.payload[0] === i && f.payload[PAYLOAD_BYTES - 1] === i),
    'every payload intact',
  );
});

t.test('the overload limit counts frames queued for the next flush', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' });
  const LIMIT = 1 << 20;
  const a = await startBus(t, { nodeId: 'node-a', limits: { maxOutboundBufferBytes: LIMIT } });
  await a.request(addr(b), ECHO, Buffer.from('warm'), 5000);
  const chunk = Buffer.alloc(600_000, 1);
  // Same tick: nothing has reached the socket yet, the queue alone must trip the limit.
  const first = a.request(addr(b), ECHO, chunk, 10_000);
  const second = a.request(addr(b), ECHO, chunk, 10_000);
  const third = a.request(addr(b), ECHO, chunk, 10_000);
  await rejectsCode(t, third, 'ERR_BUS_OVERLOADED');
  t.equal((await first).length, chunk.length + 5);
  t.equal((await second).length, chunk.length + 5);
  t.equal(a.stats.overloadRejections, 1);
  // Once flushed and drained, requests are accepted again.
  t.equal((await a.request(addr(b), ECHO, chunk, 10_000)).length, chunk.length + 5);
});

t.test('a one-way message still leaves when the link is dropped right after send() resolved', async (t) => {
  const got: string[] = [];
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(NOTE, (p) => {
      got.push(p.toString());
      return Buffer.alloc(0);
    });
  });
  const a = await startBus(t, { nodeId: 'node-a' });
  await a.send(addr(b), NOTE, Buffer.from('first'));
  await a.send(addr(b), NOTE, Buffer.from('last words'));
  a.dropPeer(addr(b));
  await until('both notes', () => got.length === 2);
  t.same(got, ['first', 'last words'], 'queued frames are handed to the socket before it closes');
});
