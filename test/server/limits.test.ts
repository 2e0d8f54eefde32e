/**
 * Limits under load, black-box: 1,000 idle connections plus a client that pipelines hundreds of
 * thousands of GETs without reading its replies. The node must bound its memory (VmRSS from
 * /proc/<pid>/status), either disconnect the non-reading client (output buffer limit) or stop
 * reading from it (backpressure), and keep serving everyone else. Also: `maxclients` with
 * Redis's error, and the idle `timeout`.
 */
import t, { type Test } from 'tap';
import type * as net from 'node:net';
import { startTarget, TARGET_KIND } from '../helpers/target.js';
import { connectRaw, collect, respCommand } from '../helpers/raw_client.js';

const MIB = 1024 * 1024;
const IDLE_CONNECTIONS = 1_000;
const VALUE_BYTES = 1_000;
/** GETs the greedy client tries to send; all their replies would be ~VALUE_BYTES x this. */
const GREEDY_GETS = 400_000;
const GETS_PER_WRITE = 5_000;
/** Replies if the node buffered them all: 400 MB. The node must stay far below. */
const RSS_GROWTH_BYTES_MAX = 160 * 1024 * 1024;
/** The greedy client counts as paused when its writes do not drain for this long. */
const STALL_MS = 2_000;
const GREEDY_PHASE_MS_MAX = 25_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ping(socket: net.Socket): Promise<string> {
  const reply = collect(socket, { quietMs: 30, maxWaitMs: 3_000 });
  socket.write('PING\r\n');
  return (await reply).data.toString();
}

async function openMany(t: Test, port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const BATCH = 100;
  for (let i = 0; i < count; i += BATCH) {
    const batch = await Promise.all(Array.from({ length: Math.min(BATCH, count - i) }, () => connectRaw(port)));
    for (const s of batch) {
      s.on('error', () => undefined);
      sockets.push(s);
    }
  }
  return sockets;
}

t.test('1,000 idle connections and a client that never reads', async (t) => {
  const target = await startTarget(t, {
    // Redis's default for normal clients is no limit at all; give the reference one.
    config: TARGET_KIND === 'redis-server' ? { 'client-output-buffer-limit': 'normal 64mb 32mb 10' } : {},
  });
  const control = await connectRaw(target.port);
  control.on('error', () => undefined);
  t.teardown(() => {
    control.destroy();
  });
  const setReply = collect(control, { quietMs: 50 });
  control.write(respCommand('SET', 'limits:big', Buffer.alloc(VALUE_BYTES, 0x76)));
  t.equal((await setReply).data.toString(), '+OK\r\n');

  const idle = await openMany(t, target.port, IDLE_CONNECTIONS);
  // Every idle connection is accepted and registered (the node may accept with some delay).
  let connected = 0;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(200)) {
    const infoReply = collect(control, { quietMs: 100 });
    control.write(respCommand('INFO', 'clients'));
    connected = Number(/connected_clients:(\d+)/.exec((await infoReply).data.toString())?.[1] ?? 0);
    if (connected >= IDLE_CONNECTIONS + 1) break;
  }
  t.ok(connected >= IDLE_CONNECTIONS + 1, `connected_clients ${connected}`);
  const baselineRss = target.rssBytes();

  const greedy = await connectRaw(target.port);
  greedy.on('error', () => undefined);
  t.teardown(() => {
    greedy.destroy();
  });
  greedy.pause(); // never read: replies pile up in the kernel, then in the node
  let greedyClosed = false;
  greedy.on('close', () => (greedyClosed = true));

  let maxRss = baselineRss;
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, target.rssBytes());
    } catch {
      /* process gone: the assertions below report it */
    }
  }, 50);
  t.teardown(() => clearInterval(sampler));

  const chunk = Buffer.from('GET limits:big\r\n'.repeat(GETS_PER_WRITE));
  let sent = 0;
  let stalled = false;
  const started = Date.now();
  while (sent < GREEDY_GETS && !greedyClosed && Date.now() - started < GREEDY_PHASE_MS_MAX) {
    const flushed = greedy.write(chunk);
    sent += GETS_PER_WRITE;
    if (!flushed) {
      const drained = await Promise.race([
        new Promise<boolean>((r) => greedy.once('drain', () => r(true))),
        new Promise<boolean>((r) => greedy.once('close', () => r(true))),
        sleep(STALL_MS).then(() => false),
      ]);
      if (!drained) {
        stalled = true;
        break;
      }
    }
  }
  t.comment(`greedy client: sent ${sent} GETs, closed=${greedyClosed}, stalled=${stalled}`);
  t.ok(greedyClosed || stalled, 'the non-reading client is disconnected or no longer read from');

  // Everyone else is still served while the greedy client sits there.
  t.equal(await ping(control), '+PONG\r\n', 'the control client is served');
  for (const i of [0, 499, IDLE_CONNECTIONS - 1]) {
    t.equal(await ping(idle[i]!), '+PONG\r\n', `idle connection ${i} is served`);
  }
  const fresh = await connectRaw(target.port);
  fresh.on('error', () => undefined);
  t.equal(await ping(fresh), '+PONG\r\n', 'a new client is accepted and served');
  fresh.destroy();

  await sleep(500);
  clearInterval(sampler);
  const growth = maxRss - baselineRss;
  t.comment(`RSS baseline ${(baselineRss / 2 ** 20).toFixed(1)} MiB, peak ${(maxRss / 2 ** 20).toFixed(1)} MiB`);
  t.ok(growth < RSS_GROWTH_BYTES_MAX, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB (bound ${RSS_GROWTH_BYTES_MAX / 2 ** 20} MiB)`);
  greedy.destroy();
  t.equal(await ping(control), '+PONG\r\n', 'still served after the greedy client left');
});

t.test('a reply over client-output-buffer-limit disconnects that client only', async (t) => {
  const target = await startTarget(t, {
    config: { 'client-output-buffer-limit': TARGET_KIND === 'redis-server' ? 'normal 1mb 1mb 0' : '1mb' },
  });
  const control = await connectRaw(target.port);
  control.on('error', () => undefined);
  t.teardown(() => {
    control.destroy();
  });
  const keys = ['obl:0', 'obl:1', 'obl:2', 'obl:3'];
  const value = Buffer.alloc(MIB, 0x6f);
  const setReplies = collect(control, { quietMs: 100, minBytes: 5 * keys.length });
  for (const k of keys) control.write(respCommand('SET', k, value));
  t.equal((await setReplies).data.toString(), '+OK\r\n'.repeat(keys.length));
  // One MGET whose reply (24 MiB) is far over the 1 MiB limit and over what the kernel buffers.
  const greedy = await connectRaw(target.port);
  greedy.on('error', () => undefined);
  t.teardown(() => {
    greedy.destroy();
  });
  greedy.pause();
  const mgetKeys = Array.from({ length: 24 }, (_, i) => keys[i % keys.length]!);
  const fullReplyBytes = `*${mgetKeys.length}\r\n`.length + mgetKeys.length * (`$${MIB}\r\n`.length + MIB + 2);
  greedy.write(respCommand('MGET', ...mgetKeys));
  // Not reading while the node builds and queues the reply; a paused socket cannot see the
  // close, so read afterwards: the node must have closed before sending the whole reply.
  await sleep(1_500);
  const rest = collect(greedy, { quietMs: 3_000, maxWaitMs: 15_000 });
  greedy.resume();
  const got = await rest;
  t.equal(got.closed, true, 'the client is disconnected');
  t.ok(got.data.length < fullReplyBytes, `it got ${got.data.length} of ${fullReplyBytes} reply bytes`);
  t.equal(await ping(control), '+PONG\r\n', 'other clients are served');
  const infoReply = collect(control, { quietMs: 100 });
  control.write(respCommand('INFO', 'clients'));
  t.match((await infoReply).data.toString(), /connected_clients:1\r\n/, 'the greedy client is gone');
});

t.test('maxclients is enforced with Redis error', async (t) => {
  const MAX = 8;
  const target = await startTarget(t, { config: { maxclients: MAX } });
  const sockets = await openMany(t, target.port, MAX);
  for (const s of sockets) t.equal(await ping(s), '+PONG\r\n');
  const extra = await connectRaw(target.port);
  extra.on('error', () => undefined);
  const got = await collect(extra, { quietMs: 500, maxWaitMs: 3_000 });
  t.equal(got.data.toString(), '-ERR max number of clients reached\r\n');
  t.equal(got.closed, true, 'the extra connection is closed');
  sockets[0]!.destroy();
  await sleep(300);
  const again = await connectRaw(target.port);
  again.on('error', () => undefined);
  t.equal(await ping(again), '+PONG\r\n', 'a slot freed by a disconnect is usable');
  again.destroy();
  t.equal(await ping(sockets[1]!), '+PONG\r\n', 'existing clients unaffected');
});

t.test('idle timeout closes idle clients only', async (t) => {
  const target = await startTarget(t, { config: { timeout: 1 } });
  const idle = await connectRaw(target.port);
  idle.on('error', () => undefined);
  const busy = await connectRaw(target.port);
  busy.on('error', () => undefined);
  t.teardown(() => {
    idle.destroy();
    busy.destroy();
  });
  t.equal(await ping(idle), '+PONG\r\n');
  let idleClosedAt = 0;
  idle.on('close', () => (idleClosedAt = Date.now()));
  const start = Date.now();
  while (Date.now() - start < 4_500 && idleClosedAt === 0) {
    t.equal(await ping(busy), '+PONG\r\n');
    await sleep(250);
  }
  t.ok(idleClosedAt > 0, 'the idle client was closed');
  t.ok(idleClosedAt - start >= 900, `not before the timeout (${idleClosedAt - start} ms)`);
  t.equal(busy.destroyed, false, 'the busy client stays connected');
  t.equal(await ping(busy), '+PONG\r\n');
});
