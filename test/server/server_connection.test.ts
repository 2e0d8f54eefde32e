import t from 'tap';
import { bulk, simple, type Reply } from '../../src/resp/reply.js';
import net from 'node:net';
import { LINGER_AFTER_END_MS, OUTPUT_HIGH_WATER_BYTES, OUTPUT_FLUSH_BYTES } from '../../src/server/connection.js';
import { isLoopback, RingkvServer } from '../../src/server/server.js';
import { Config } from '../../src/config/config.js';
import type { CommandSpec } from '../../src/server/types.js';
import { command, RawClient, standInKeyspace, startServer } from './server_harness.js';

const testSpec = (name: string, arity: number, handler: CommandSpec['handler']): CommandSpec => ({
  name, arity, flags: [], firstKey: 0, lastKey: 0, keyStep: 0, summary: name, group: 'test', handler,
});

/** SLOW ms tag: replies tag after ms; BIG n: replies n bytes; SYNC tag: replies at once. */
const testCommands: CommandSpec[] = [
  testSpec('slow', 3, (_c, a) => new Promise<Reply>((resolve) => setTimeout(() => resolve(bulk(a[2] as Buffer)), Number((a[1] as Buffer).toString())))),
  testSpec('sync', 2, (_c, a) => simple((a[1] as Buffer).toString())),
  testSpec('big', 2, (_c, a) => bulk(Buffer.alloc(Number((a[1] as Buffer).toString()), 0x61))),
];

t.test('pipelined replies come back in order, async or not', async (t) => {
  const h = await startServer(t, [], testCommands);
  const c = await RawClient.connect(t, h.port);
  c.send(Buffer.concat([command('slow', '40', 'a'), command('sync', 'b'), command('slow', '5', 'c'), command('ping'), command('slow', '0', 'd')]));
  const text = await c.until((s) => s.endsWith('$1\r\nd\r\n'));
  t.equal(text, '$1\r\na\r\n+b\r\n$1\r\nc\r\n+PONG\r\n$1\r\nd\r\n');
});

/** KREAD key ms / KWRITE key ms: key commands that take ms; the log records start and end order. */
function keyCommands(log: string[]): CommandSpec[] {
  const keyed = (name: string, flag: 'readonly' | 'write'): CommandSpec => ({
    name, arity: 3, flags: [flag], firstKey: 1, lastKey: 1, keyStep: 1, summary: name, group: 'test',
    handler: (_c, a) => {
      const tag = `${name}:${(a[1] as Buffer).toString()}`;
      log.push(`start ${tag}`);
      return new Promise<Reply>((resolve) =>
        setTimeout(() => {
          log.push(`end ${tag}`);
          resolve(simple(tag));
        }, Number((a[2] as Buffer).toString())),
      );
    },
  });
  return [keyed('kread', 'readonly'), keyed('kwrite', 'write')];
}

t.test('pipelined key commands overlap only when they commute; barriers run alone', async (t) => {
  const log: string[] = [];
  const h = await startServer(t, [], [...testCommands, ...keyCommands(log)]);
  const c = await RawClient.connect(t, h.port);
  c.send(Buffer.concat([
    command('kwrite', 'a', '60'), // starts
    command('kwrite', 'b', '10'), // different key: starts beside it
    command('kread', 'b', '10'), // reads what the write of b wrote: waits for it
    command('kread', 'c', '10'),
    command('ping'), // barrier: after everything before it
    command('kread', 'd', '10'), // after the barrier
  ]));
  const text = await c.until((s) => s.split('\r\n').length === 7);
  t.equal(text, '+kwrite:a\r\n+kwrite:b\r\n+kread:b\r\n+kread:c\r\n+PONG\r\n+kread:d\r\n', 'replies in request order');
  t.same(log.slice(0, 2), ['start kwrite:a', 'start kwrite:b'], 'writes to different keys overlap');
  t.ok(log.indexOf('start kread:b') > log.indexOf('end kwrite:b'), 'a read waits for the write of its key');
  t.ok(log.indexOf('start kread:b') < log.indexOf('end kwrite:a'), '... but not for the write of another key');
  t.ok(log.indexOf('start kread:d') > log.indexOf('end kwrite:a'), 'nothing after a barrier starts before everything before it ended');
  t.equal(log.filter((l) => l.startsWith('start')).length, 5);

  log.length = 0;
  c.received = Buffer.alloc(0);
  c.send(Buffer.concat([command('kread', 'x', '30'), command('kread', 'x', '1'), command('kwrite', 'x', '1')]));
  await c.until((s) => s.split('\r\n').length === 4);
  t.same(log.slice(0, 2), ['start kread:x', 'start kread:x'], 'reads of one key overlap');
  t.equal(log.indexOf('start kwrite:x'), 4, 'a write waits for the reads of its key');
});

t.test('a command larger than the input high-water mark still arrives whole (no stall)', async (t) => {
  const h = await startServer(t, [['proto-max-bulk-len', '8mb']], testCommands);
  const c = await RawClient.connect(t, h.port);
  const payload = Buffer.alloc(3 * 1024 * 1024, 0x7a);
  const expected = `$${payload.length}\r\n`.length + payload.length + 2;
  c.send(command('echo', payload));
  await c.untilBytes(expected, 10000);
  t.equal(c.receivedBytes, expected, 'alone');
  c.received = Buffer.alloc(0);
  c.send(Buffer.concat([command('slow', '50', 'x'), command('echo', payload), command('ping')]));
  await c.untilBytes(7 + expected + 7, 10000);
  t.equal(c.received.subarray(0, 7).toString(), '$1\r\nx\r\n', 'behind a running command');
  t.equal(c.received.subarray(c.receivedBytes - 7).toString(), '+PONG\r\n');
});

t.test('a pipeline is answered in few writes, not one per reply', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.connect(t, h.port);
  const before = h.server.stats.outputWrites;
  const n = 2000;
  c.send(Buffer.concat(Array.from({ length: n }, () => command('ping'))));
  await c.until((s) => s.length === n * 7);
  const writes = h.server.stats.outputWrites - before;
  t.ok(writes >= 1 && writes <= 20, `2000 replies in ${writes} writes`);
});

t.test('output backpressure: a client that does not read stops being read, then catches up', async (t) => {
  const h = await startServer(t, [], testCommands);
  const c = await RawClient.connect(t, h.port);
  c.socket.pause(); // do not read replies
  const replyBytes = 100_000;
  const n = 300; // 30 MB of replies
  c.send(Buffer.concat(Array.from({ length: n }, () => command('big', String(replyBytes)))));
  await new Promise((r) => setTimeout(r, 500));
  const [conn] = [...h.server.clients()];
  t.ok(conn !== undefined, 'client is connected');
  const queued = conn!.outputBufferBytes();
  t.ok(queued <= OUTPUT_HIGH_WATER_BYTES + OUTPUT_FLUSH_BYTES + replyBytes + 64, `server holds ${queued} bytes of replies, bounded`);
  const served = h.server.stats.command('big').calls;
  t.ok(served < n, `only ${served} of ${n} commands run while the client does not read`);
  c.socket.resume();
  const expectedLen = n * (replyBytes + `$${replyBytes}\r\n`.length + 2);
  await c.untilBytes(expectedLen, 20000);
  t.equal(c.receivedBytes, expectedLen, 'every reply arrives once the client reads');
  t.equal(h.server.stats.command('big').calls, n);
});

t.test('client-output-buffer-limit closes a client whose reply does not fit', async (t) => {
  const h = await startServer(t, [['client-output-buffer-limit', '1mb']], testCommands);
  const c = await RawClient.connect(t, h.port);
  c.socket.pause();
  c.send(command('big', String(8 * 1024 * 1024)));
  await new Promise((r) => setTimeout(r, 300));
  c.socket.resume();
  await c.untilClosed();
  t.equal(h.server.stats.outputLimitDisconnections, 1);
  const other = await RawClient.connect(t, h.port);
  other.send(command('ping'));
  t.equal(await other.until((s) => s.includes('\r\n')), '+PONG\r\n', 'others unaffected');
});

t.test('protocol error: replies owed first, then the error, then close; others unaffected', async (t) => {
  const h = await startServer(t);
  const bystander = await RawClient.connect(t, h.port);
  const c = await RawClient.connect(t, h.port);
  c.send('PING\r\n*1\r\n$x\r\n');
  t.equal(await c.untilClosed(), '+PONG\r\n-ERR Protocol error: invalid bulk length\r\n');
  bystander.send(command('echo', 'still here'));
  t.equal(await bystander.until((s) => s.endsWith('\r\n') && s.length > 5), '$10\r\nstill here\r\n');
  t.equal(h.server.stats.protocolErrors, 1);
});

t.test('authentication: NOAUTH, WRONGPASS, tight limits before AUTH', async (t) => {
  const h = await startServer(t, [['requirepass', 's3cret']]);
  const c = await RawClient.connect(t, h.port);
  c.send(Buffer.concat([command('get', 'k'), command('auth', 'nope'), command('auth', 'default', 'nope'), command('ping')]));
  t.equal(
    await c.until((s) => s.split('\r\n').length > 4),
    '-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n' +
      '-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n',
  );
  c.received = Buffer.alloc(0);
  c.send(Buffer.concat([command('auth', 's3cret'), command('ping'), command('echo', 'x'.repeat(20000))]));
  await c.until((s) => s.endsWith('x\r\n'));
  t.equal(c.received.toString().slice(0, 14), '+OK\r\n+PONG\r\n$2', 'after AUTH, bulks past 16 KiB are fine');

  const u = await RawClient.connect(t, h.port);
  u.send(command(...Array.from({ length: 11 }, () => 'a')));
  t.equal(await u.untilClosed(), '-ERR Protocol error: unauthenticated multibulk length\r\n');
  const v = await RawClient.connect(t, h.port);
  v.send(command('auth', 'x'.repeat(16385)));
  t.equal(await v.untilClosed(), '-ERR Protocol error: unauthenticated bulk length\r\n');

  const w = await RawClient.connect(t, h.port);
  w.send(command('hello', '3', 'auth', 'default', 's3cret', 'setname', 'me'));
  const hello = await w.until((s) => s.includes('modules'));
  t.match(hello, /^%7\r\n\$6\r\nserver\r\n\$6\r\nringkv\r\n/, 'HELLO 3 replies with a RESP3 map');
  w.send(command('client', 'getname'));
  t.match(await w.until((s) => s.endsWith('me\r\n')), /\$2\r\nme\r\n$/);
});

t.test('maxclients', async (t) => {
  const h = await startServer(t, [['maxclients', '1']]);
  const a = await RawClient.connect(t, h.port);
  a.send(command('ping'));
  await a.until((s) => s === '+PONG\r\n');
  const b = await RawClient.connect(t, h.port);
  t.equal(await b.untilClosed(), '-ERR max number of clients reached\r\n');
  t.equal(h.server.stats.rejectedConnections, 1);
});

t.test('idle timeout closes idle clients only', async (t) => {
  const h = await startServer(t, [['timeout', '1']]);
  const idle = await RawClient.connect(t, h.port);
  const start = Date.now();
  await idle.untilClosed(5000);
  const took = Date.now() - start;
  t.ok(took >= 900 && took < 8000, `closed after ${took} ms`);
  h.config.set([['timeout', '0']]);
  const c = await RawClient.connect(t, h.port);
  await new Promise((r) => setTimeout(r, 2200));
  t.notOk(c.closed, 'timeout 0 never closes');
});

t.test('QUIT, half-close, SHUTDOWN', async (t) => {
  const h = await startServer(t);
  const q = await RawClient.connect(t, h.port);
  q.send(Buffer.concat([command('ping'), command('quit'), command('ping')]));
  t.equal(await q.untilClosed(), '+PONG\r\n+OK\r\n', 'nothing after QUIT runs');
  const e = await RawClient.connect(t, h.port);
  e.socket.end(command('echo', 'bye'));
  t.equal(await e.untilClosed(), '$3\r\nbye\r\n', 'a client that half-closes still gets its replies');
  const s = await RawClient.connect(t, h.port);
  s.send(command('shutdown', 'bogus'));
  t.equal(await s.until((x) => x.endsWith('\r\n')), '-ERR syntax error\r\n');
  s.received = Buffer.alloc(0);
  s.send(command('shutdown', 'nosave'));
  t.equal(await s.untilClosed(), '', 'SHUTDOWN closes without a reply');
  await new Promise((r) => setImmediate(r));
  t.same(h.shutdownRequests, ['SHUTDOWN command']);
});

t.test('after QUIT the server closes the socket even if the peer keeps its side open', async (t) => {
  const h = await startServer(t);
  const s = net.connect({ host: '127.0.0.1', port: h.port, allowHalfOpen: true });
  t.teardown(() => s.destroy());
  let got = '';
  let ended = false;
  s.on('data', (d: Buffer) => (got += d.toString()));
  s.on('end', () => (ended = true)); // the server's FIN; this side stays open
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(command('quit'));
  const start = Date.now();
  while (!ended && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 20));
  t.equal(got, '+OK\r\n');
  t.ok(ended, 'the reply, then FIN');
  // This side never closes; the server lets go of the socket anyway.
  while (h.server.connectionCount > 0 && Date.now() - start < LINGER_AFTER_END_MS + 3000) await new Promise((r) => setTimeout(r, 50));
  t.equal(h.server.connectionCount, 0, 'closed on the server within the linger time');
});

t.test('query buffer limit closes a client sending an oversized command', async (t) => {
  const h = await startServer(t, [['client-query-buffer-limit', '1mb'], ['proto-max-bulk-len', '512mb']]);
  const c = await RawClient.connect(t, h.port);
  c.send('*2\r\n$4\r\necho\r\n$4000000\r\n');
  c.send(Buffer.alloc(1_200_000, 0x62));
  await c.untilClosed();
  t.equal(h.server.stats.queryLimitDisconnections, 1);
});

t.test('loopback detection for protected mode', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(a), a);
  for (const a of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', 'fe80::1', '']) t.notOk(isLoopback(a), a);
});

t.test('the commands of one read see one clock reading; the next read sees a new one', async (t) => {
  let reads = 0;
  // A server whose clock counts its readings.
  const server = new RingkvServer({
    config: Config.fromOverrides([['port', '0'], ['bind', '127.0.0.1']]),
    keyspace: standInKeyspace(),
    log: () => undefined,
    now: () => ++reads,
    extraCommands: [testSpec('clock', 1, (ctx) => simple(String(ctx.server.now())))],
  });
  const port = await server.listen();
  t.teardown(() => server.close());
  const c = await RawClient.connect(t, port);
  c.send(Buffer.concat([command('clock'), command('clock'), command('clock')]));
  const first = await c.until((s) => s.split('\r\n').length >= 4);
  const times = first.split('\r\n').slice(0, 3);
  t.equal(new Set(times).size, 1, `one reading for the batch: ${times.join(' ')}`);
  c.received = Buffer.alloc(0);
  c.send(command('clock'));
  const second = await c.until((s) => s.endsWith('\r\n'));
  t.ok(Number(second.slice(1, -2)) > Number((times[0] ?? '').slice(1)), 'a later read reads the clock again');
});

/**
 * RREAD key ms / RWRITE key ms: keyCommands' commands with a raw handler (Dispatcher.startRaw),
 * which reads the key from the request's offsets; `ms` < 0 declines (the handler runs instead).
 */
function rawKeyCommands(log: string[]): CommandSpec[] {
  const keyed = (name: string, flag: 'readonly' | 'write'): CommandSpec => {
    const run = (path: string, key: string, ms: number): Promise<Reply> => {
      const tag = `${name}:${key}`;
      log.push(`start ${tag} ${path}`);
      return new Promise<Reply>((resolve) =>
        setTimeout(() => {
          log.push(`end ${tag}`);
          resolve(simple(tag));
        }, Math.abs(ms)),
      );
    };
    return {
      name, arity: 3, flags: [flag], firstKey: 1, lastKey: 1, keyStep: 1, summary: name, group: 'test',
      handler: (_c, a) => run('args', (a[1] as Buffer).toString(), Number((a[2] as Buffer).toString())),
      rawHandler: (_c, raw) => {
        const ms = Number(raw.view(2).toString());
        if (ms < 0) return undefined;
        return run('raw', raw.buf.toString('latin1', raw.starts[1], raw.ends[1]), ms);
      },
    };
  };
  return [keyed('rread', 'readonly'), keyed('rwrite', 'write')];
}

t.test('raw-handled key commands: the same overlap rules and holds as on arguments', async (t) => {
  const log: string[] = [];
  const h = await startServer(t, [], rawKeyCommands(log));
  const c = await RawClient.connect(t, h.port);
  // The first use of a name goes the general way (it teaches the dispatcher the spelling).
  c.send(Buffer.concat([command('rread', 'warm', '0'), command('rwrite', 'warm', '0')]));
  await c.until((s) => s.split('\r\n').length === 3);
  log.length = 0;
  c.received = Buffer.alloc(0);
  c.send(Buffer.concat([
    command('rwrite', 'a', '60'),
    command('rwrite', 'b', '10'),
    command('rread', 'b', '10'), // waits for the write of b: held, then run on its arguments
    command('rread', 'c', '-10'), // declines the raw path
    command('ping'),
    command('rread', 'd', '10'),
  ]));
  const text = await c.until((s) => s.split('\r\n').length === 7);
  t.equal(text, '+rwrite:a\r\n+rwrite:b\r\n+rread:b\r\n+rread:c\r\n+PONG\r\n+rread:d\r\n', 'replies in request order');
  t.same(log.slice(0, 2), ['start rwrite:a raw', 'start rwrite:b raw'], 'writes to different keys overlap, on the raw path');
  t.ok(log.indexOf('start rread:b args') > log.indexOf('end rwrite:b'), 'a read waits for the write of its key');
  t.ok(log.indexOf('start rread:b args') < log.indexOf('end rwrite:a'), '... but not for the write of another key');
  t.ok(log.includes('start rread:c args'), 'a declining raw handler has the handler run');
  t.ok(log.indexOf('start rread:d raw') > log.indexOf('end rwrite:a'), 'nothing after a barrier starts before everything before it ended');
  const stat = h.server.stats.command('rwrite');
  t.equal(stat.calls, 3, 'raw commands are counted');
});

t.test('raw-handled commands: SLOWLOG keeps the arguments of those over the threshold only', async (t) => {
  const log: string[] = [];
  const h = await startServer(t, [['slowlog-log-slower-than', '0']], rawKeyCommands(log));
  const c = await RawClient.connect(t, h.port);
  c.send(Buffer.concat([command('slowlog', 'reset'), command('rwrite', 'k0', '0'), command('rwrite', 'k1', '1'), command('rwrite', 'k2', '1')]));
  await c.until((s) => s.split('\r\n').length === 5);
  t.same(log.filter((l) => l.startsWith('start')), ['start rwrite:k0 args', 'start rwrite:k1 raw', 'start rwrite:k2 raw']);
  c.received = Buffer.alloc(0);
  c.send(command('slowlog', 'get', '10'));
  const text = await c.until((s) => s.includes('k0') && s.includes('k2'));
  for (const k of ['k0', 'k1', 'k2']) t.match(text, `$6\r\nrwrite\r\n$2\r\n${k}\r\n`, `${k} logged with its arguments`);
  h.config.set([['slowlog-log-slower-than', '1000000']]);
  c.received = Buffer.alloc(0);
  c.send(Buffer.concat([command('slowlog', 'reset'), command('rwrite', 'k3', '1'), command('slowlog', 'len')]));
  t.equal(await c.until((s) => s.endsWith(':0\r\n')), '+OK\r\n+rwrite:k3\r\n:0\r\n', 'under the threshold: not logged');
});
