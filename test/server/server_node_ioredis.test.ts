/**
 * End to end in one process: startNode (real keyspace on a temp dir) on 127.0.0.1 port 0,
 * driven by ioredis: data commands through the whole stack, pipelining, INFO, CONFIG, CLIENT,
 * SLOWLOG, COMMAND, and a clean SHUTDOWN with data still there after a restart.
 */
import t from 'tap';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Config } from '../../src/config/config.js';
import { startNode, type RunningNode } from '../../src/server/node.js';

async function boot(t: { teardown(fn: () => unknown): void }, dir: string, confFile?: string): Promise<{ node: RunningNode; logs: string[] }> {
  const config = await Config.load(confFile, [['port', '0'], ['bind', '127.0.0.1'], ['dir', dir]]);
  const logs: string[] = [];
  const node = await startNode({ config, log: (level, msg) => logs.push(`${level} ${msg}`) });
  t.teardown(() => node.shutdown('test teardown'));
  return { node, logs };
}

function client(t: { teardown(fn: () => unknown): void }, port: number): Redis {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => undefined);
  t.teardown(() => r.disconnect());
  return r;
}

t.test('ioredis against an in-process node', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ringkv-node-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'node.conf');
  await writeFile(conf, '# test node\nslowlog-log-slower-than 0\n');
  const { node, logs } = await boot(t, path.join(dir, 'data'), conf);
  t.ok(logs.includes(`info Ready to accept connections tcp port=${node.port}`), 'logs the ready line with the port');
  const r = client(t, node.port);
  await r.connect();

  t.equal(await r.ping(), 'PONG');
  t.equal(await r.set('greeting', 'hello'), 'OK');
  t.equal(await r.get('greeting'), 'hello');
  t.equal(await r.echo('x'), 'x');

  // A pipeline of mixed async (storage) and sync commands keeps its order.
  const p = r.pipeline();
  for (let i = 0; i < 1000; i++) {
    p.set(`k${i}`, `v${i}`);
    p.get(`k${i}`);
    p.ping(`p${i}`);
  }
  const results = (await p.exec()) ?? [];
  t.equal(results.length, 3000);
  let inOrder = true;
  for (let i = 0; i < 1000; i++) {
    const [s, g, pg] = [results[3 * i], results[3 * i + 1], results[3 * i + 2]];
    if (s?.[1] !== 'OK' || g?.[1] !== `v${i}` || pg?.[1] !== `p${i}`) inOrder = false;
  }
  t.ok(inOrder, '3000 pipelined replies in order');

  const info = await r.info();
  for (const section of ['# Server', '# Clients', '# Memory', '# Persistence', '# Stats', '# Replication', '# CPU', '# Keyspace', '# Storage']) {
    t.ok(info.includes(`${section}\r\n`), `INFO has ${section}`);
  }
  t.match(info, /\r\ndb0:keys=1001,expires=0,avg_ttl=0\r\n/, 'keyspace line counts the keys');
  t.match(info, /\r\nconnected_clients:1\r\n/);
  t.notMatch(info, /# Commandstats/, 'commandstats only on request');
  const cs = await r.info('commandstats');
  t.match(cs, /^# Commandstats\r\n/);
  t.match(cs, /\r\ncmdstat_set:calls=1001,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=0\r\n/);

  t.same(await r.config('GET', 'maxclients'), ['maxclients', '10000']);
  t.equal(await r.config('SET', 'maxclients', '50', 'timeout', '100'), 'OK');
  t.same(await r.config('GET', 'maxclients'), ['maxclients', '50']);
  await t.rejects(r.config('SET', 'port', '1'), { message: "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config" });
  t.equal(await r.config('REWRITE'), 'OK');
  const rewritten = await readFile(conf, 'utf8');
  t.match(rewritten, /^# test node\nslowlog-log-slower-than 0\n/, 'comments and existing lines kept');
  t.match(rewritten, /\nmaxclients 50\n/);
  t.match(rewritten, /\ntimeout 100\n/);

  t.equal(await r.client('SETNAME', 'tester'), 'OK');
  t.equal(await r.client('GETNAME'), 'tester');
  const list = (await r.client('LIST')) as string;
  t.match(list, /^id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ name=tester age=\d+ idle=\d+ /);
  t.equal(await r.call('client', 'QUORUM', 'one', 'all'), 'OK');
  t.same(await r.call('client', 'QUORUM'), ['one', 'all']);
  await t.rejects(r.call('client', 'QUORUM', 'most', '1'), { message: /^ERR invalid quorum 'most'/ });
  await t.rejects(r.call('select', '1'), { message: 'ERR DB index is out of range' });
  t.equal(await r.call('select', '0'), 'OK');

  const slow = (await r.slowlog('GET', 2)) as unknown[][];
  t.equal(slow.length, 2, 'slowlog-log-slower-than 0 from the file logs every command');
  t.same(slow[0]?.[3], ['select', '0'], 'newest first, with its arguments');
  t.ok(Number(await r.command('COUNT')) > 20, 'COMMAND COUNT');
  const [getInfo] = (await r.command('INFO', 'get')) as unknown[][];
  t.same(getInfo?.slice(0, 2), ['get', 2]);
  const docs = (await r.call('command', 'docs', 'get')) as unknown[];
  t.equal(docs[0], 'get');

  const time = (await r.time()) as unknown[];
  t.ok(Math.abs(Number(time[0]) * 1000 - Date.now()) < 5000, 'TIME is now');

  const closed = new Promise<void>((resolve) => r.once('end', () => resolve()));
  await r.call('shutdown').catch(() => undefined);
  await closed;
  await node.closed;
  t.ok(logs.some((l) => l.includes('shutting down (SHUTDOWN command)')));

  // Restart on the same directory: the data is there.
  const again = await boot(t, path.join(dir, 'data'), conf);
  const r2 = client(t, again.node.port);
  await r2.connect();
  t.equal(await r2.get('k999'), 'v999', 'data survives a clean shutdown');
  t.same(await r2.config('GET', 'maxclients'), ['maxclients', '50'], 'CONFIG REWRITE survives a restart');
  r2.disconnect();
  await again.node.shutdown('done');
});
