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

/** A RESP2 flat array of bulk strings (a CONFIG GET reply) as sorted "name=value" pairs. */
function pairsOf(reply: string): string[] {
  const lines = reply.split('\r\n');
  const bulks: string[] = [];
  for (let i = 1; i < lines.length - 1; i += 2) bulks.push(lines[i + 1] as string);
  const out: string[] = [];
  for (let i = 0; i + 1 < bulks.length; i += 2) out.push(`${bulks[i]}=${bulks[i + 1]}`);
  return out.sort();
}

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
  // An exact (non-glob) name is echoed as the client spelled it, as Redis 7 does.
  for (const args of [
    ['CONFIG', 'GET', 'AppendFsync'],
    ['CONFIG', 'GET', 'SAVE'],
    ['config', 'get', 'AppendOnly'],
  ]) {
    t.equal(await ask(node.port, ...args), await ask(redis.port, ...args), args.join(' '));
  }
  t.equal(await ask(node.port, 'CONFIG', 'GET', 'AppendFsync'), '*2\r\n$11\r\nAppendFsync\r\n$8\r\neverysec\r\n');
  // Several arguments naming one parameter: reported once, by the first spelling (Redis's reply
  // is a map in its own dict order: compared as a set of pairs).
  const several = ['CONFIG', 'GET', 'SAVE', 'save', 'appendfs*', 'APPENDFSYNC'];
  t.same(pairsOf(await ask(node.port, ...several)), pairsOf(await ask(redis.port, ...several)), several.join(' '));
  t.same(pairsOf(await ask(node.port, ...several)), ['SAVE=', 'appendfsync=everysec']);
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
