// The cluster bus over real loopback sockets (dynamic ports): round-trips, many requests in
// flight answered out of order, timeouts, one-way messages, remote errors, oversize frames,
// reconnect after a restart, secrets refused both ways, garbage bytes, self and id checks.
import * as net from 'node:net';
import t, { type Test } from 'tap';
import { ClusterBus, type ClusterBusOptions, type PeerEvent } from '../../src/cluster/bus.js';
import { ClusterError, RemoteError } from '../../src/cluster/errors.js';
import { encodeFrame, FrameDecoder, FrameType, type Frame } from '../../src/cluster/frame.js';
import { ClientHandshake } from '../../src/cluster/handshake.js';
import { rejectsCode } from './expect_error.js';
import { freePorts } from '../helpers/ports.js';

const HOST = '127.0.0.1';
const ECHO = 0x10;
const SLOW = 0x11;
const FAIL = 0x12;
const NOTE = 0x13;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startBus(t: Test, opts: Partial<ClusterBusOptions> & { nodeId: string }, setup?: (b: ClusterBus) => void): Promise<ClusterBus> {
  const bus = new ClusterBus({ host: HOST, port: 0, ...opts });
  if (setup) setup(bus);
  else {
    bus.handle(ECHO, (p) => Buffer.concat([Buffer.from('echo:'), p]));
  }
  await bus.listen();
  t.teardown(() => bus.close());
  return bus;
}

const addr = (b: ClusterBus): { host: string; port: number } => ({ host: HOST, port: b.port });

/** A raw socket that completes the handshake by hand, then lets the test write anything. */
async function rawAuthenticated(port: number, secret: string): Promise<{ socket: net.Socket; frames: Frame[]; closed: Promise<void> }> {
  const socket = net.connect({ host: HOST, port });
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.on('error', () => {});
  const hs = new ClientHandshake({ selfId: 'raw-client', secret: Buffer.from(secret) });
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
  const frames: Frame[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(encodeFrame(FrameType.HELLO, 0, hs.hello())));
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk, (f) => {
        if (f.type === FrameType.CHALLENGE) socket.write(encodeFrame(FrameType.AUTH, 0, hs.onChallenge(f.payload)));
        else if (f.type === FrameType.WELCOME) {
          hs.onWelcome(f.payload);
          resolve();
        } else frames.push(f);
      });
    });
    socket.once('close', () => reject(new Error('closed during handshake')));
  });
  return { socket, frames, closed };
}


t.test('round trip, one-way messages and remote errors', async (t) => {
  const notes: string[] = [];
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(ECHO, (p, from) => Buffer.from(`${from.id}:${p.toString()}`));
    bus.handle(FAIL, () => {
      throw Object.assign(new Error('no such thing'), { code: 'ENOTHING' });
    });
    bus.handle(NOTE, (p) => {
      notes.push(p.toString());
      return Buffer.alloc(0);
    });
  });
  const a = await startBus(t, { nodeId: 'node-a' });
  const r = await a.request(addr(b), ECHO, Buffer.from('hi'), 2000);
  t.equal(r.toString(), 'node-a:hi', 'the handler sees the authenticated sender id');
  const empty = await a.request(addr(b), ECHO, Buffer.alloc(0), 2000);
  t.equal(empty.toString(), 'node-a:');
  const e = await rejectsCode(t, a.request(addr(b), FAIL, Buffer.alloc(0), 2000), 'ERR_REMOTE');
  t.ok(e instanceof RemoteError && e.remoteCode === 'ENOTHING' && e.message === 'no such thing', 'error code and text cross the wire');
  const unknown = await rejectsCode(t, a.request(addr(b), 0x77, Buffer.alloc(0), 2000), 'ERR_REMOTE');
  t.equal((unknown as RemoteError).remoteCode, 'ERR_UNKNOWN_TYPE');
  await a.send(addr(b), NOTE, Buffer.from('n1'));
  await a.send(addr(b), NOTE, Buffer.from('n2'));
  // A request after the notes on the same connection arrives after them (TCP order).
  await a.request(addr(b), ECHO, Buffer.alloc(0), 2000);
  t.same(notes, ['n1', 'n2']);
  t.equal(b.stats.framesOut, 5, 'one-way messages got no response frames');
  // A 4 MiB payload in both directions.
  const big = Buffer.alloc(4 << 20, 0x5a);
  const rb = await a.request(addr(b), ECHO, big, 5000);
  t.equal(rb.length, big.length + 'node-a:'.length);
});

t.test('many requests in flight on one connection, answered out of order', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(SLOW, async (p) => {
      const n = p.readUInt32BE(0);
      await sleep((n * 7919) % 23); // scrambled completion order
      const out = Buffer.alloc(4);
      out.writeUInt32BE(n * 3);
      return out;
    });
  });
  const a = await startBus(t, { nodeId: 'node-a' });
  const COUNT = 2000;
  const order: number[] = [];
  const results = await Promise.all(
    Array.from({ length: COUNT }, (_, i) => {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(i);
      return a.request(addr(b), SLOW, p, 10_000).then((r) => {
        order.push(i);
        return r.readUInt32BE(0);
      });
    }),
  );
  t.same(results, Array.from({ length: COUNT }, (_, i) => i * 3), 'every response matched its request');
  const displaced = order.filter((v, i) => v !== i).length;
  t.ok(displaced > COUNT / 10, `responses came out of order (${displaced} of ${COUNT} displaced), matched by id`);
});

/** SLOW handler: sleeps the milliseconds its payload names (ms(n)), then echoes the payload. */
function sleepyEcho(bus: ClusterBus): void {
  bus.handle(SLOW, async (p) => {
    await sleep(p.readUInt16BE(0));
    return p;
  });
}

/** A SLOW payload asking for an answer after n milliseconds. */
function ms(n: number): Buffer {
  const x = Buffer.alloc(2);
  x.writeUInt16BE(n);
  return x;
}

t.test('per-request timeouts; a late response is dropped; the connection stays usable', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, sleepyEcho);
  const a = await startBus(t, { nodeId: 'node-a' });
  // Connect first, so the 60 ms below are spent waiting for the response, not on the handshake.
  await a.request(addr(b), SLOW, ms(0), 5000);
  const started = Date.now();
  const slow = rejectsCode(t, a.request(addr(b), SLOW, ms(400), 60), 'ERR_BUS_TIMEOUT');
  const fast = a.request(addr(b), SLOW, ms(1), 2000);
  t.equal((await fast).readUInt16BE(0), 1, 'a fast request is not held up by a slow one');
  await slow;
  const took = Date.now() - started;
  t.ok(took >= 55 && took < 2000, `timed out after ${took} ms`);
  const deadline = Date.now() + 5000;
  while (a.stats.lateResponses === 0 && Date.now() < deadline) await sleep(20);
  t.equal(a.stats.lateResponses, 1, 'the late response was counted and dropped');
  t.equal(a.stats.requestTimeouts, 1);
  t.equal((await a.request(addr(b), SLOW, ms(0), 2000)).readUInt16BE(0), 0, 'the connection is still usable');
});

t.test('one deadline timer per connection: each request times out at its own deadline, out of order', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, sleepyEcho);
  const a = await startBus(t, { nodeId: 'node-a' });
  await a.request(addr(b), SLOW, ms(0), 5000);
  const started = Date.now();
  const when = async (p: Promise<Buffer>): Promise<number | string> => {
    try {
      await p;
      return 'answered';
    } catch (e) {
      return (e as ClusterError).code === 'ERR_BUS_TIMEOUT' ? Date.now() - started : String(e);
    }
  };
  // Sent longest deadline first: the timer armed for 900 ms must be re-armed for 150 and 400.
  const [late, early, middle, answered] = await Promise.all([
    when(a.request(addr(b), SLOW, ms(2000), 900)),
    when(a.request(addr(b), SLOW, ms(2000), 150)),
    when(a.request(addr(b), SLOW, ms(2000), 400)),
    when(a.request(addr(b), SLOW, ms(10), 3000)),
  ]);
  t.equal(answered, 'answered', 'a request answered in time is not timed out by the shared timer');
  // Lower bounds and order only: on a loaded machine a timer may fire late, never early.
  t.ok(typeof early === 'number' && early >= 140, `150 ms request timed out at ${String(early)} ms`);
  t.ok(typeof middle === 'number' && middle >= 390, `400 ms request timed out at ${String(middle)} ms`);
  t.ok(typeof late === 'number' && late >= 890 && late < 10_000, `900 ms request timed out at ${String(late)} ms`);
  t.ok((early as number) <= (middle as number) && (middle as number) <= (late as number), 'in deadline order');
  t.equal(a.stats.requestTimeouts, 3);
});

t.test('an oversize frame is refused before allocation and the connection dropped', async (t) => {
  const allocations: number[] = [];
  const LIMIT = 1 << 20;
  const b = await startBus(t, {
    nodeId: 'node-b',
    limits: { maxFrameBytes: LIMIT },
    allocate: (n) => (allocations.push(n), Buffer.allocUnsafe(n)),
  });
  // After the handshake: a header announcing 1 byte over the limit, then some bytes.
  const raw = await rawAuthenticated(b.port, '');
  const header = Buffer.alloc(9);
  header.writeUInt32BE(LIMIT + 1);
  header[4] = ECHO;
  header.writeUInt32BE(1, 5);
  raw.socket.write(header);
  raw.socket.write(Buffer.alloc(1000));
  await raw.closed;
  t.equal(b.stats.oversizeFrames, 1);
  t.ok(allocations.every((n) => n < 1024), `no large allocation (${JSON.stringify(allocations)})`);
  // Before the handshake the limit is MAX_HANDSHAKE_FRAME_BYTES: 4 GiB announced by a stranger.
  const s = net.connect({ host: HOST, port: b.port });
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]));
  await new Promise<void>((r) => s.once('close', () => r()));
  t.equal(b.stats.oversizeFrames, 2);
  t.ok(allocations.every((n) => n < 1024));
  // A frame at the limit is fine and the node still serves.
  const a = await startBus(t, { nodeId: 'node-a' });
  // (Its response, 'echo:' + payload, is then exactly a LIMIT-byte frame.)
  const atLimit = Buffer.alloc(LIMIT - 10, 1);
  const r = await a.request(addr(b), ECHO, atLimit, 5000);
  t.equal(r.length, LIMIT - 5);
  // Sending past the limit is refused before anything is written, as a typed error, both ways.
  const small = await startBus(t, { nodeId: 'node-c', limits: { maxFrameBytes: 1024 } }, (bus) => {
    bus.handle(ECHO, (p) => Buffer.concat([p, p]));
  });
  await rejectsCode(t, small.request(addr(b), ECHO, Buffer.alloc(1020), 2000), 'ERR_FRAME_TOO_LARGE', 'request payload over our limit');
  await rejectsCode(t, small.send(addr(b), ECHO, Buffer.alloc(1020)), 'ERR_FRAME_TOO_LARGE', 'one-way payload over our limit');
  t.equal((await small.request(addr(b), ECHO, Buffer.alloc(1014), 2000)).length, 1019, 'a request, and its response, at our limit go through');
  const aToSmall = await startBus(t, { nodeId: 'node-d', limits: { maxFrameBytes: 1024 } });
  const e = await rejectsCode(t, aToSmall.request(addr(small), ECHO, Buffer.alloc(600), 2000), 'ERR_REMOTE', 'a response over the limit');
  t.equal((e as RemoteError).remoteCode, 'ERR_FRAME_TOO_LARGE', 'is answered as an error, the connection kept');
  t.equal((await aToSmall.request(addr(small), ECHO, Buffer.alloc(10), 2000)).length, 20);
});

t.test('reconnects with backoff after the peer restarts; peer up/down events', async (t) => {
  const events: string[] = [];
  const a = await startBus(t, {
    nodeId: 'node-a',
    limits: { reconnectBaseMs: 20, reconnectMaxMs: 200 },
    onPeerUp: (p: PeerEvent) => events.push(`up:${p.id}`),
    onPeerDown: (p: PeerEvent) => events.push(`down:${p.id}`),
  });
  let b = await startBus(t, { nodeId: 'node-b' });
  const port = b.port;
  t.equal((await a.request(addr(b), ECHO, Buffer.from('1'), 2000)).toString(), 'echo:1');
  await b.close();
  // While it is down: requests fail fast (unreachable/closed), never hang.
  const t0 = Date.now();
  let failures = 0;
  for (let i = 0; i < 5; i++) {
    try {
      await a.request({ host: HOST, port }, ECHO, Buffer.from('x'), 1000);
    } catch (e) {
      failures++;
      t.ok(e instanceof ClusterError && ['ERR_PEER_UNREACHABLE', 'ERR_BUS_CLOSED', 'ERR_BUS_TIMEOUT'].includes(e.code), String(e));
    }
    await sleep(30);
  }
  t.equal(failures, 5);
  t.ok(Date.now() - t0 < 3000, 'failures are quick while the peer is down');
  // Restart on the same port with the same id.
  b = new ClusterBus({ nodeId: 'node-b', host: HOST, port });
  b.handle(ECHO, (p) => Buffer.concat([Buffer.from('again:'), p]));
  await b.listen();
  const restarted = b;
  t.teardown(() => restarted.close());
  const deadline = Date.now() + 5000;
  let reply = '';
  while (Date.now() < deadline) {
    try {
      reply = (await a.request({ host: HOST, port, id: 'node-b' }, ECHO, Buffer.from('2'), 1000)).toString();
      break;
    } catch {
      await sleep(20);
    }
  }
  t.equal(reply, 'again:2', 'the link came back by itself');
  t.same(events, ['up:node-b', 'down:node-b', 'up:node-b']);
});

t.test('a link in backoff dials at once when its node connects to us (restarted), not after its backoff', async (t) => {
  // A backoff far longer than the test: only the reset can bring the link back in time.
  const a = await startBus(t, { nodeId: 'node-a', limits: { reconnectBaseMs: 120_000, reconnectMaxMs: 120_000 } });
  const b = await startBus(t, { nodeId: 'node-b' });
  const port = b.port;
  t.equal((await a.request(addr(b), ECHO, Buffer.from('1'), 5000)).toString(), 'echo:1');
  await b.close();
  // Wait until a's link is in backoff (the close may reach a a moment after b.close() returns).
  const downBy = Date.now() + 10_000;
  let downCode = '';
  while (downCode !== 'ERR_PEER_UNREACHABLE' && Date.now() < downBy) {
    downCode = await a.request({ host: HOST, port }, ECHO, Buffer.from('x'), 2000).then(
      () => 'answered',
      async (e: unknown) => {
        await sleep(20);
        return e instanceof ClusterError ? e.code : String(e);
      },
    );
  }
  t.equal(downCode, 'ERR_PEER_UNREACHABLE', 'down: the link waits in backoff and fails fast');
  const b2 = new ClusterBus({ nodeId: 'node-b', host: HOST, port });
  b2.handle(ECHO, (p) => Buffer.concat([Buffer.from('again:'), p]));
  await b2.listen();
  t.teardown(() => b2.close());
  t.equal(a.stats.backoffResets, 0, 'no reset before the node shows up');
  // The restarted node talks to us first (as its gossip does).
  t.equal((await b2.request(addr(a), ECHO, Buffer.from('hi'), 5000)).toString(), 'echo:hi');
  const deadline = Date.now() + 10_000;
  let reply = '';
  while (reply === '' && Date.now() < deadline) {
    reply = await a.request({ host: HOST, port, id: 'node-b' }, ECHO, Buffer.from('2'), 2000).then(
      (r) => r.toString(),
      async () => {
        await sleep(20);
        return '';
      },
    );
  }
  t.equal(reply, 'again:2', 'the link is back long before its 120 s backoff');
  t.equal(a.stats.backoffResets, 1, 'one backoff reset counted');
});

t.test('a link that never connected (its seed started after us) dials at once when that node connects to us', async (t) => {
  // The seed-order race of replica_transport's CI failure: a's first dial is refused (nothing
  // listens yet), the link waits in a backoff longer than the test; b starts, talks to a first (as
  // its gossip does), and a's requests to b must then work, not fail with ERR_PEER_UNREACHABLE.
  const a = await startBus(t, { nodeId: 'node-a', limits: { reconnectBaseMs: 120_000, reconnectMaxMs: 120_000 } });
  const [port] = await freePorts(1);
  await rejectsCode(t, a.request({ host: HOST, port: port!, id: 'node-b' }, ECHO, Buffer.from('x'), 2000), 'ERR_PEER_UNREACHABLE', 'refused: nothing listens yet');
  await rejectsCode(t, a.request({ host: HOST, port: port!, id: 'node-b' }, ECHO, Buffer.from('x'), 2000), 'ERR_PEER_UNREACHABLE', 'then the link waits in backoff');
  const b = new ClusterBus({ nodeId: 'node-b', host: HOST, port: port! });
  b.handle(ECHO, (p) => Buffer.concat([Buffer.from('late:'), p]));
  await b.listen();
  t.teardown(() => b.close());
  t.equal(a.stats.backoffResets, 0, 'no reset before the node shows up');
  t.equal((await b.request(addr(a), ECHO, Buffer.from('hi'), 5000)).toString(), 'echo:hi');
  const deadline = Date.now() + 10_000;
  let reply = '';
  while (reply === '' && Date.now() < deadline) {
    reply = await a.request({ host: HOST, port: port!, id: 'node-b' }, ECHO, Buffer.from('2'), 2000).then(
      (r) => r.toString(),
      async () => {
        await sleep(20);
        return '';
      },
    );
  }
  t.equal(reply, 'late:2', 'the link is up long before its 120 s backoff');
  t.equal(a.stats.backoffResets, 1, 'one backoff reset counted');
});

t.test('cluster-secret: refused both ways, accepted when equal', async (t) => {
  let handled = 0;
  const setup = (bus: ClusterBus): void => bus.handle(ECHO, (p) => (handled++, p));
  const withSecret = await startBus(t, { nodeId: 'node-s', secret: 'right' }, setup);
  const noSecret = await startBus(t, { nodeId: 'node-n' }, setup);
  const wrong = await startBus(t, { nodeId: 'node-w', secret: 'wrong' }, setup);
  const right = await startBus(t, { nodeId: 'node-r', secret: 'right' }, setup);
  await rejectsCode(t, wrong.request(addr(withSecret), ECHO, Buffer.from('x'), 2000), 'ERR_HANDSHAKE', 'wrong secret -> secret');
  await rejectsCode(t, noSecret.request(addr(withSecret), ECHO, Buffer.from('x'), 2000), 'ERR_HANDSHAKE', 'no secret -> secret');
  await rejectsCode(t, withSecret.request(addr(noSecret), ECHO, Buffer.from('x'), 2000), 'ERR_HANDSHAKE', 'secret -> no secret');
  await rejectsCode(t, withSecret.request(addr(wrong), ECHO, Buffer.from('x'), 2000), 'ERR_HANDSHAKE', 'secret -> wrong secret');
  t.equal(handled, 0, 'no message was handled across mismatched secrets');
  t.ok(withSecret.stats.handshakeFailures >= 2);
  t.equal((await right.request(addr(withSecret), ECHO, Buffer.from('ok'), 2000)).toString(), 'ok');
  t.equal(handled, 1);
  // A raw client that skips the handshake and sends an application frame is dropped unanswered.
  const s = net.connect({ host: HOST, port: withSecret.port });
  s.on('error', () => {});
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(encodeFrame(ECHO, 1, Buffer.from('inject')));
  await new Promise<void>((r) => s.once('close', () => r()));
  t.equal(handled, 1, 'the injected frame was not handled');
  t.equal(Buffer.concat(got).length, 0, 'and nothing was answered');
});

t.test('a recorded handshake replayed byte for byte is refused', async (t) => {
  let handled = 0;
  const b = await startBus(t, { nodeId: 'node-b', secret: 's3cret' }, (bus) => bus.handle(ECHO, (p) => (handled++, p)));
  // A relay between node-a and node-b records everything node-a sends (HELLO, AUTH, a request).
  const recorded: Buffer[] = [];
  const relay = net.createServer((client) => {
    const upstream = net.connect({ host: HOST, port: b.port });
    client.on('data', (d: Buffer) => {
      recorded.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, HOST, () => r()));
  t.teardown(() => new Promise<void>((r) => relay.close(() => r())));
  const a = await startBus(t, { nodeId: 'node-a', secret: 's3cret' });
  const relayPort = (relay.address() as net.AddressInfo).port;
  t.equal((await a.request({ host: HOST, port: relayPort }, ECHO, Buffer.from('legit'), 2000)).toString(), 'legit');
  t.equal(handled, 1);
  await a.close();
  // Replay all of it on a fresh connection: the listener's nonce is new, so AUTH no longer fits.
  const s = net.connect({ host: HOST, port: b.port });
  s.on('error', () => {});
  const types: number[] = [];
  const dec = new FrameDecoder({ maxFrameBytes: 1024 });
  s.on('data', (d: Buffer) => dec.push(d, (f) => types.push(f.type)));
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(Buffer.concat(recorded));
  await new Promise<void>((r) => s.once('close', () => r()));
  t.same(types, [FrameType.CHALLENGE], 'a fresh CHALLENGE, then the connection closed: no WELCOME, no response');
  t.equal(handled, 1, 'the replayed request was not handled');
});

t.test('garbage from raw sockets does not crash the node', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b', limits: { handshakeTimeoutMs: 300 } });
  const inputs: Buffer[] = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Buffer.from('*1\r\n$4\r\nPING\r\n'),
    Buffer.alloc(0), // connect and say nothing: the handshake timeout closes it
    Buffer.from([0, 0, 0, 0]),
    Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 0]), // an empty HELLO
    Buffer.from([0, 0, 0, 6, 3, 0, 0, 0, 0, 9]), // AUTH before HELLO
    Buffer.from([0, 0, 1]), // a partial header, then close
  ];
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 10; i++) inputs.push(Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 5000) }, () => Math.floor(rnd() * 256))));
  await Promise.all(
    inputs.map(
      (bytes, i) =>
        new Promise<void>((resolve) => {
          const s = net.connect({ host: HOST, port: b.port });
          s.on('error', () => {});
          s.once('connect', () => {
            s.write(bytes);
            if (i === inputs.length - 1 || bytes.length === 3) s.end();
          });
          s.once('close', () => resolve());
        }),
    ),
  );
  const a = await startBus(t, { nodeId: 'node-a' });
  t.equal((await a.request(addr(b), ECHO, Buffer.from('alive'), 2000)).toString(), 'echo:alive', 'still serving');
  t.ok(b.stats.handshakeFailures + b.stats.malformedFrames + b.stats.oversizeFrames >= inputs.length - 1, JSON.stringify(b.stats));
  // Garbage after a good handshake drops only that connection.
  const raw = await rawAuthenticated(b.port, '');
  raw.socket.write(Buffer.from([0, 0, 0, 2, 9, 9]));
  await raw.closed;
  t.equal((await a.request(addr(b), ECHO, Buffer.from('still'), 2000)).toString(), 'echo:still');
});

t.test('a dead address unused for linkIdleMs is forgotten, not retried forever', async (t) => {
  const a = await startBus(t, { nodeId: 'node-a', limits: { reconnectBaseMs: 10, reconnectMaxMs: 20, linkIdleMs: 150 } });
  const gone = await startBus(t, { nodeId: 'node-gone' });
  const port = gone.port;
  await a.request(addr(gone), ECHO, Buffer.alloc(0), 2000);
  await gone.close();
  t.equal(a.linkCount, 1);
  const deadline = Date.now() + 5000;
  while (a.linkCount > 0 && Date.now() < deadline) await sleep(20);
  t.equal(a.linkCount, 0, 'the link stopped retrying and was dropped');
  await rejectsCode(t, a.request({ host: HOST, port }, ECHO, Buffer.alloc(0), 500), 'ERR_PEER_UNREACHABLE', 'a new request dials afresh');
});

t.test('self connection and id mismatch', async (t) => {
  const a = await startBus(t, { nodeId: 'node-a' });
  const b = await startBus(t, { nodeId: 'node-b' });
  await rejectsCode(t, a.request(addr(a), ECHO, Buffer.alloc(0), 2000), 'ERR_SELF_CONNECTION');
  await rejectsCode(t, a.request(addr(a), ECHO, Buffer.alloc(0), 2000), 'ERR_SELF_CONNECTION', 'and stays so (no retry loop)');
  await rejectsCode(t, a.request({ ...addr(b), id: 'node-c' }, ECHO, Buffer.alloc(0), 2000), 'ERR_PEER_ID_MISMATCH');
  t.equal((await a.request({ ...addr(b), id: 'node-b' }, ECHO, Buffer.from('y'), 2000)).toString(), 'echo:y');
  await a.close();
  await rejectsCode(t, a.request(addr(b), ECHO, Buffer.alloc(0), 2000), 'ERR_BUS_CLOSED', 'after close()');
});

t.test('requestNotify: request() in callback form, the same answers and errors, never synchronous', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(ECHO, (p, from) => Buffer.from(`${from.id}:${p.toString()}`));
    bus.handle(FAIL, () => {
      throw Object.assign(new Error('no such thing'), { code: 'ENOTHING' });
    });
    sleepyEcho(bus);
  });
  const a = await startBus(t, { nodeId: 'node-a', limits: { maxFrameBytes: 1 << 20 } });
  const call = (type: number, payload: Buffer, timeoutMs: number, peer: { host: string; port: number; id?: string } = addr(b)) =>
    new Promise<{ payload: Buffer | undefined; err: Error | undefined; sync: boolean }>((resolve) => {
      let returned = false;
      a.requestNotify(peer, type, payload, timeoutMs, (p, err) => resolve({ payload: p, err, sync: !returned }));
      returned = true;
    });
  // The first call dials (the connecting path), the next ones take the ready link.
  for (const i of [1, 2]) {
    const r = await call(ECHO, Buffer.from(`hi${i}`), 2000);
    t.equal(r.payload?.toString(), `node-a:hi${i}`, `answer ${i}`);
    t.equal(r.err, undefined);
    t.notOk(r.sync, 'not called synchronously');
  }
  const e = await call(FAIL, Buffer.alloc(0), 2000);
  t.ok(e.err instanceof RemoteError && e.err.remoteCode === 'ENOTHING' && e.err.message === 'no such thing', 'a remote error');
  t.equal(e.payload, undefined);
  const late = await call(SLOW, ms(300), 40);
  t.equal((late.err as ClusterError | undefined)?.code, 'ERR_BUS_TIMEOUT', 'a timeout');
  const tooBig = await call(ECHO, Buffer.alloc(2 << 20), 2000);
  t.ok(tooBig.err !== undefined, 'an oversize payload fails');
  t.notOk(tooBig.sync, 'even an error found before sending is not synchronous');
  const wrongId = await call(ECHO, Buffer.alloc(0), 2000, { ...addr(b), id: 'node-x' });
  t.equal((wrongId.err as ClusterError | undefined)?.code, 'ERR_PEER_ID_MISMATCH', 'another node at the address');
  // A callback that throws does not break the connection or the requests after it.
  const before = a.stats.malformedFrames;
  a.requestNotify(addr(b), ECHO, Buffer.from('x'), 2000, () => {
    throw new Error('a bug in the caller');
  });
  const after = await call(ECHO, Buffer.from('y'), 2000);
  t.equal(after.payload?.toString(), 'node-a:y', 'the connection still answers');
  t.equal(a.stats.malformedFrames, before, 'no frame counted malformed');
});

t.test('a node id reached again after its link is dropped, and at its new address after it moved', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => bus.handle(ECHO, (p) => Buffer.from(`b:${p.toString()}`)));
  const a = await startBus(t, { nodeId: 'node-a' });
  const at = { ...addr(b), id: 'node-b' };
  t.equal((await a.request(at, ECHO, Buffer.from('1'), 2000)).toString(), 'b:1', 'first request (dials)');
  t.equal((await a.request(at, ECHO, Buffer.from('2'), 2000)).toString(), 'b:2', 'the ready link');
  a.dropPeer(addr(b));
  t.equal((await a.request(at, ECHO, Buffer.from('3'), 2000)).toString(), 'b:3', 'after dropPeer: a new link to the same address');
  // The same node id now listening elsewhere (a restart on another port): the new address is used.
  const moved = await startBus(t, { nodeId: 'node-b' }, (bus) => bus.handle(ECHO, (p) => Buffer.from(`moved:${p.toString()}`)));
  const there = { ...addr(moved), id: 'node-b' };
  t.equal((await a.request(there, ECHO, Buffer.from('4'), 2000)).toString(), 'moved:4', 'the new address');
  const viaNotify = await new Promise<string | undefined>((resolve) => a.requestNotify(there, ECHO, Buffer.from('5'), 2000, (p) => resolve(p?.toString())));
  t.equal(viaNotify, 'moved:5', 'requestNotify too');
  t.equal((await a.request(at, ECHO, Buffer.from('6'), 2000)).toString(), 'b:6', 'the old address still reaches the old bus');
});

t.test('requestNotifyWrite: the payload written into the outbound batch, answered as requestNotify is', async (t) => {
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => bus.handle(ECHO, (p) => Buffer.from(p)));
  const a = await startBus(t, { nodeId: 'node-a', limits: { maxFrameBytes: 1 << 20 } });
  const at = { ...addr(b), id: 'node-b' };
  const fill = (out: Buffer, pos: number, src: Buffer): void => void out.set(src, pos);
  const call = (src: Buffer, bytes = src.length) =>
    new Promise<{ payload: Buffer | undefined; err: Error | undefined; sync: boolean }>((resolve) => {
      let returned = false;
      a.requestNotifyWrite(at, ECHO, bytes, fill, src, 2000, (p, err) => resolve({ payload: p, err, sync: !returned }));
      returned = true;
    });
  // The first call dials (the payload is encoded into a buffer of its own), the next take the ready link.
  for (const i of [1, 2, 3]) {
    const r = await call(Buffer.from(`payload ${i}`));
    t.equal(r.payload?.toString(), `payload ${i}`, `answer ${i}`);
    t.notOk(r.sync, 'not called synchronously');
  }
  // Many at once, mixed with plain requests: each answer is its own request's bytes.
  const mixed = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      i % 2 === 0 ? call(Buffer.from(`w${i}`)).then((r) => r.payload?.toString()) : a.request(at, ECHO, Buffer.from(`r${i}`), 2000).then(String),
    ),
  );
  t.same(mixed, Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? `w${i}` : `r${i}`)), 'frames keep their payloads and order');
  const big = Buffer.alloc(40 * 1024, 7);
  t.same((await call(big)).payload, big, 'a payload over the copied size goes as its own buffer');
  const tooBig = await call(Buffer.alloc(0), 2 << 20);
  t.equal((tooBig.err as ClusterError | undefined)?.code, 'ERR_FRAME_TOO_LARGE', 'an oversize payload fails before anything is written');
  t.notOk(tooBig.sync, 'and not synchronously');
  t.equal((await call(Buffer.from('after'))).payload?.toString(), 'after', 'the connection still answers');
});

t.test('requestListenWrite: answered to one listener with the token and the node, as requestNotifyWrite is', async (t) => {
  const FAILS = 0x7e;
  const b = await startBus(t, { nodeId: 'node-b' }, (bus) => {
    bus.handle(ECHO, (p) => Buffer.from(p));
    bus.handle(FAILS, () => {
      throw Object.assign(new Error('no such thing'), { code: 'ENOTHING' });
    });
  });
  const a = await startBus(t, { nodeId: 'node-a', limits: { maxFrameBytes: 1 << 20 } });
  const at = { ...addr(b), id: 'node-b' };
  const fill = (out: Buffer, pos: number, src: Buffer): void => void out.set(src, pos);
  interface Answer {
    token: number;
    payload: Buffer | undefined;
    err: Error | undefined;
    peerId: string;
    sync: boolean;
  }
  const waiting = new Map<number, (a: Answer) => void>();
  let returned = true;
  let calls = 0;
  // One listener for every request; the token tells them apart.
  const listener = {
    busAnswered(token: number, payload: Buffer | undefined, err: Error | undefined, peerId: string): void {
      calls++;
      waiting.get(token)!({ token, payload, err, peerId, sync: !returned });
      waiting.delete(token);
    },
  };
  let nextToken = 0;
  const call = (src: Buffer, bytes = src.length, type = ECHO) =>
    new Promise<Answer>((resolve) => {
      const token = nextToken++;
      waiting.set(token, resolve);
      returned = false;
      a.requestListenWrite(at, type, bytes, fill, src, 2000, listener, token);
      returned = true;
    });
  // The first call dials (the payload is encoded into a buffer of its own), the next take the ready link.
  for (const i of [1, 2, 3]) {
    const r = await call(Buffer.from(`payload ${i}`));
    t.equal(r.payload?.toString(), `payload ${i}`, `answer ${i}`);
    t.equal(r.err, undefined);
    t.equal(r.peerId, 'node-b', 'the node asked');
    t.notOk(r.sync, 'not called synchronously');
  }
  const mixed = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      i % 2 === 0 ? call(Buffer.from(`w${i}`)).then((r) => `${r.token}:${r.payload?.toString()}`) : a.request(at, ECHO, Buffer.from(`r${i}`), 2000).then(String),
    ),
  );
  t.same(
    mixed,
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? `${3 + i / 2}:w${i}` : `r${i}`)),
    'each answer goes with its own token and payload',
  );
  const remote = await call(Buffer.from('x'), 1, FAILS);
  t.equal(remote.payload, undefined);
  t.equal((remote.err as RemoteError | undefined)?.remoteCode, 'ENOTHING', 'a handler error arrives as the error');
  t.equal(remote.peerId, 'node-b');
  const big = Buffer.alloc(40 * 1024, 7);
  t.same((await call(big)).payload, big, 'a payload over the copied size goes as its own buffer');
  const tooBig = await call(Buffer.alloc(0), 2 << 20);
  t.equal((tooBig.err as ClusterError | undefined)?.code, 'ERR_FRAME_TOO_LARGE', 'an oversize payload fails before anything is written');
  t.notOk(tooBig.sync, 'and not synchronously');
  t.equal(tooBig.peerId, 'node-b');
  t.equal((await call(Buffer.from('after'))).payload?.toString(), 'after', 'the connection still answers');
  t.equal(calls, nextToken, 'one answer per request');
  t.equal(waiting.size, 0);
});
