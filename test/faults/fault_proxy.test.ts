// The bus fault proxy (test/helpers/fault_proxy.ts) against a plain TCP echo server standing in
// for a node's bus: the dialer is known from its HELLO frame, bytes flow both ways when healthy,
// `drop` blackholes (and a healed blackholed connection is closed, its framing being lost),
// `reset` closes at once, delays hold bytes, sliced bytes arrive intact.
import t, { type Test } from 'tap';
import * as net from 'node:net';
import { FRAME_HEADER_BYTES, FrameType } from '../../src/cluster/frame.js';
import { NONCE_BYTES } from '../../src/cluster/handshake.js';
import { BusFaultProxy, parseHelloNodeId } from '../helpers/fault_proxy.js';
import { LOOPBACK_HOST } from '../helpers/ports.js';

function hello(id: string): Buffer {
  const payload = Buffer.concat([Buffer.from([1]), Buffer.alloc(NONCE_BYTES, 7), Buffer.from([id.length]), Buffer.from(id, 'latin1')]);
  const frame = Buffer.alloc(FRAME_HEADER_BYTES);
  frame.writeUInt32BE(FRAME_HEADER_BYTES - 4 + payload.length, 0);
  frame[4] = FrameType.HELLO;
  return Buffer.concat([frame, payload]);
}

async function echoServer(t: Test): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, LOOPBACK_HOST, () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

/** A dialer through the proxy: collects what comes back, knows when it was closed. */
async function dial(t: Test, port: number): Promise<{ sock: net.Socket; got: () => Buffer; closed: () => boolean }> {
  const sock = net.connect(port, LOOPBACK_HOST);
  let got = Buffer.alloc(0);
  let closed = false;
  sock.on('data', (d) => (got = Buffer.concat([got, d])));
  sock.on('error', () => undefined);
  sock.on('close', () => (closed = true));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  t.teardown(() => void sock.destroy());
  return { sock, got: () => got, closed: () => closed };
}

async function until(pred: () => boolean, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return pred();
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('parseHelloNodeId', async (t) => {
  const h = hello('node-a');
  t.equal(parseHelloNodeId(h), 'node-a');
  t.equal(parseHelloNodeId(h.subarray(0, 5)), null, 'header incomplete');
  t.equal(parseHelloNodeId(h.subarray(0, h.length - 1)), null, 'id incomplete');
  const notHello = Buffer.from(h);
  notHello[4] = FrameType.AUTH;
  t.type(parseHelloNodeId(notHello), Error);
  const huge = Buffer.from(h);
  huge.writeUInt32BE(1_000_000, 0);
  t.type(parseHelloNodeId(huge), Error, 'a length no HELLO has is refused before waiting for it');
});

t.test('healthy, drop, heal, reset, delay, slice', async (t) => {
  const echo = await echoServer(t);
  const proxy = new BusFaultProxy();
  t.teardown(() => proxy.close());
  const port = await proxy.addTarget('B', echo.port);
  proxy.nameNode('id-a', 'A');

  const c1 = await dial(t, port);
  c1.sock.write(Buffer.concat([hello('id-a'), Buffer.from('ping')]));
  t.ok(await until(() => c1.got().toString('latin1').endsWith('ping')), 'bytes reach the target and come back');
  t.equal(proxy.accepted.get('A>B'), 1, 'the dialer was recognised as A');

  proxy.cut(['A'], ['B']);
  c1.sock.write('lost');
  await sleep(150);
  t.notOk(c1.got().toString('latin1').includes('lost'), 'drop: nothing comes back');
  t.notOk(c1.closed(), 'drop: the connection stays open (a silent partition)');
  const before = echo.accepted();
  const c2 = await dial(t, port);
  c2.sock.write(hello('id-a'));
  await sleep(150);
  t.equal(echo.accepted(), before, 'drop: a new connection never reaches the target');
  t.equal(c2.got().length, 0);

  proxy.healAll();
  t.ok(await until(() => c1.closed() && c2.closed()), 'heal closes blackholed connections (their framing is lost)');

  const c3 = await dial(t, port);
  c3.sock.write(hello('id-a'));
  t.ok(await until(() => c3.got().length > 0), 'after the heal new connections work');
  proxy.cut(['A'], ['B'], 'reset');
  t.ok(await until(() => c3.closed()), 'reset closes live connections');
  const c4 = await dial(t, port);
  c4.sock.write(hello('id-a'));
  t.ok(await until(() => c4.closed()), 'reset refuses new ones');
  proxy.healAll();

  proxy.setFault('A', 'B', { mode: 'ok', delayMs: 200 });
  const c5 = await dial(t, port);
  const sent = Date.now();
  c5.sock.write(Buffer.concat([hello('id-a'), Buffer.from('slow')]));
  t.ok(await until(() => c5.got().toString('latin1').endsWith('slow')));
  t.ok(Date.now() - sent >= 190, `delay: held about 200 ms (${Date.now() - sent} ms)`);

  proxy.setFault('A', 'B', { mode: 'ok', slice: true });
  proxy.setFault('B', 'A', { mode: 'ok', slice: true });
  const c6 = await dial(t, port);
  const body = Buffer.from('x'.repeat(300) + 'end');
  c6.sock.write(Buffer.concat([hello('id-a'), body]));
  t.ok(await until(() => c6.got().length === hello('id-a').length + body.length), 'sliced bytes all arrive');
  t.ok(c6.got().subarray(-body.length).equals(body), 'in order');

  const other = await dial(t, port);
  other.sock.write(hello('id-unknown'));
  t.ok(await until(() => other.got().length > 0), 'an unnamed dialer is proxied too');
  t.equal(proxy.accepted.get('id-unknown>B'), 1, 'under its raw id');
});
