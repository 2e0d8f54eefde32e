/**
 * CONFIG GET of the Redis parameters ringkv reports for Redis tools (redis_compat_config.ts):
 * byte-for-byte the replies of a live redis-server configured the way ringkv behaves (no RDB
 * snapshots, AOF on with everysec), and redis-benchmark no longer warns that it could not fetch
 * the server's CONFIG.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { startNode } from '../helpers/node_process.js';
import { redisBenchmarkPath, redisServerPath, startRedisServer } from '../helpers/redis_server.js';
import { exchange, respCommand } from '../helpers/raw_client.js';

const serverBin = redisServerPath();
const benchBin = redisBenchmarkPath();

const ask = async (port: number, ...args: string[]): Promise<string> =>
  (await exchange(port, respCommand(...args), { quietMs: 150 })).data.toString('latin1');

t.test('CONFIG GET save / appendonly answer as redis-server does', { skip: serverBin ? false : 'redis-server not installed' }, async (t) => {
  const node = await startNode(t, { config: { appendfsync: 'everysec' } });
  const redis = await startRedisServer(t, ['--appendonly', 'yes', '--appendfsync', 'everysec']);
  for (const args of [
    ['CONFIG', 'GET', 'save'],
    ['CONFIG', 'GET', 'appendonly'],
    ['config', 'get', 'appendfsync'],
    ['CONFIG', 'GET', 'no-such-parameter'],
  ]) {
    t.equal(await ask(node.port, ...args), await ask(redis.port, ...args), args.join(' '));
  }
  t.equal(await ask(node.port, 'CONFIG', 'GET', 'save'), '*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
  t.equal(await ask(node.port, 'CONFIG', 'GET', 'appendonly'), '*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n');
  t.match(await ask(node.port, 'CONFIG', 'SET', 'appendonly', 'no'), /^-ERR Unknown option/, 'read-only');
});

t.test('redis-benchmark fetches the CONFIG without a warning', { skip: benchBin ? false : 'redis-benchmark not installed' }, async (t) => {
  const node = await startNode(t);
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(benchBin!, ['-h', '127.0.0.1', '-p', String(node.port), '-t', 'ping', '-n', '200', '-c', '2', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.stderr.on('data', (d: Buffer) => (text += d.toString()));
    p.on('error', reject);
    p.on('close', () => resolve(text));
  });
  t.match(out, /PING_INLINE/, 'the benchmark ran');
  t.notMatch(out, /Could not fetch server CONFIG/);
});
