/**
 * Compatibility with redis-cli and redis-benchmark (Debian redis-tools): commands and replies as
 * a user sees them (raw output when piped, `--no-raw` as on a terminal), `-x`, `--pipe` mass
 * insertion, `--scan`, `-a` with requirepass, `-3`; and redis-benchmark completing against the
 * node (a smoke test, not a measurement: bench/server.ts measures).
 * Skipped as a whole when redis-tools is not installed.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { startTarget } from '../helpers/target.js';
import { redisCliPath, redisBenchmarkPath } from '../helpers/redis_server.js';
import { connectIoredis } from '../helpers/ioredis_client.js';
import { respCommand } from '../helpers/raw_client.js';

const CLI_TIMEOUT_MS = 30_000;
const MASS_INSERT_KEYS = 20_000;

interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

function run(bin: string, args: readonly string[], stdin?: Buffer | string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: err, code });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

const cliBin = redisCliPath();
const benchBin = redisBenchmarkPath();

t.test('redis-cli', { skip: cliBin ? false : 'redis-cli not installed' }, async (t) => {
  const target = await startTarget(t);
  const cli = async (args: readonly string[], stdin?: Buffer | string): Promise<string> => {
    const r = await run(cliBin!, ['-h', '127.0.0.1', '-p', String(target.port), ...args], stdin);
    t.equal(r.code, 0, `redis-cli ${args.join(' ')} exits 0 (${r.stderr.trim()})`);
    return r.stdout.toString('latin1');
  };

  t.test('replies as printed when piped (raw)', async (t) => {
    t.equal(await cli(['PING']), 'PONG\n');
    t.equal(await cli(['SET', 'cli:k', 'hello world']), 'OK\n');
    t.equal(await cli(['GET', 'cli:k']), 'hello world\n');
    t.equal(await cli(['GET', 'cli:nokey']), '\n');
    t.equal(await cli(['INCR', 'cli:n']), '1\n');
    t.equal(await cli(['INCRBY', 'cli:n', '41']), '42\n');
    t.equal(await cli(['MGET', 'cli:k', 'cli:nokey', 'cli:n']), 'hello world\n\n42\n');
    t.equal(await cli(['GET']), "ERR wrong number of arguments for 'get' command\n\n");
    t.equal(await cli(['INCR', 'cli:k']), 'ERR value is not an integer or out of range\n\n');
    t.equal(await cli(['NOSUCH', 'x']), "ERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n");
    t.equal(await cli(['EXISTS', 'cli:k', 'cli:nokey']), '1\n');
    t.equal(await cli(['TTL', 'cli:k']), '-1\n');
  });

  t.test('replies as a user sees them on a terminal (--no-raw)', async (t) => {
    t.equal(await cli(['--no-raw', 'GET', 'cli:k']), '"hello world"\n');
    t.equal(await cli(['--no-raw', 'GET', 'cli:nokey']), '(nil)\n');
    t.equal(await cli(['--no-raw', 'INCR', 'cli:n']), '(integer) 43\n');
    t.equal(await cli(['--no-raw', 'MGET', 'cli:n', 'cli:nokey']), '1) "43"\n2) (nil)\n');
    t.equal(await cli(['--no-raw', 'GET']), "(error) ERR wrong number of arguments for 'get' command\n");
    t.equal(await cli(['--no-raw', 'CONFIG', 'GET', 'maxclients']), '1) "maxclients"\n2) "10000"\n');
    t.equal(await cli(['--no-raw', 'SET', 'cli:q', 'a"b\\c\x01']), 'OK\n');
    t.equal(await cli(['--no-raw', 'GET', 'cli:q']), '"a\\"b\\\\c\\x01"\n', 'redis-cli escaping of the stored bytes');
  });

  t.test('RESP3 (-3)', async (t) => {
    t.equal(await cli(['-3', '--no-raw', 'CONFIG', 'GET', 'maxclients']), '1# "maxclients" => "10000"\n');
    t.equal(await cli(['-3', '--no-raw', 'GET', 'cli:nokey']), '(nil)\n');
  });

  t.test('commands read from stdin', async (t) => {
    t.equal(await cli([], 'SET cli:s 1\nINCR cli:s\nGET cli:s\nDEL cli:s\nGET cli:s\n'), 'OK\n2\n2\n1\n\n');
  });

  t.test('-x takes the last argument from stdin, binary safe', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    t.equal(await cli(['-x', 'SET', 'cli:x'], bytes), 'OK\n');
    const c = await connectIoredis(t, target.port);
    t.ok((await c.getBuffer('cli:x'))?.equals(bytes), 'all 256 byte values stored as sent');
    t.equal(await cli(['-x', 'SET', 'cli:x2'], 'line one\nline two\n'), 'OK\n');
    t.equal(await c.get('cli:x2'), 'line one\nline two\n');
  });

  t.test(`--pipe mass insertion of ${MASS_INSERT_KEYS} keys`, async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.flushall(), 'OK');
    const parts: Buffer[] = [];
    for (let i = 0; i < MASS_INSERT_KEYS; i++) parts.push(respCommand('SET', `mass:${i}`, `value:${i}`));
    parts.push(respCommand('INCRBY', 'mass:counter', 'notanumber'));
    const r = await run(cliBin!, ['-h', '127.0.0.1', '-p', String(target.port), '--pipe'], Buffer.concat(parts));
    const out = r.stdout.toString();
    t.equal(r.code, 1, 'exit status 1: one reply was an error');
    t.match(out, 'All data transferred. Waiting for the last reply...\n');
    t.match(out, 'Last reply received from server.\n');
    t.match(out, `errors: 1, replies: ${MASS_INSERT_KEYS + 1}\n`);
    t.equal(r.stderr, 'ERR value is not an integer or out of range\n', 'the error reply is printed');
    t.equal(await c.dbsize(), MASS_INSERT_KEYS);
    t.equal(await c.get('mass:0'), 'value:0');
    t.equal(await c.get(`mass:${MASS_INSERT_KEYS - 1}`), `value:${MASS_INSERT_KEYS - 1}`);
  });

  t.test('--scan --pattern', async (t) => {
    const c = await connectIoredis(t, target.port);
    await c.mset('scanme:a', '1', 'scanme:b', '2', 'scanme:c', '3', 'other', '4');
    const out = await cli(['--scan', '--pattern', 'scanme:*']);
    t.same(out.split('\n').filter(Boolean).sort(), ['scanme:a', 'scanme:b', 'scanme:c']);
  });
});

t.test('redis-cli with requirepass', { skip: cliBin ? false : 'redis-cli not installed' }, async (t) => {
  const target = await startTarget(t, { config: { requirepass: 'hunter2' } });
  const base = ['-h', '127.0.0.1', '-p', String(target.port)];
  const anon = await run(cliBin!, [...base, 'GET', 'a']);
  t.equal(anon.stdout.toString(), 'NOAUTH Authentication required.\n\n');
  const wrong = await run(cliBin!, [...base, '-a', 'nope', '--no-auth-warning', 'GET', 'a']);
  t.match(wrong.stdout.toString() + wrong.stderr, 'WRONGPASS invalid username-password pair or user is disabled.');
  const ok = await run(cliBin!, [...base, '-a', 'hunter2', '--no-auth-warning', 'SET', 'a', 'b']);
  t.equal(ok.stdout.toString(), 'OK\n');
  const ok3 = await run(cliBin!, [...base, '-3', '-a', 'hunter2', '--no-auth-warning', 'GET', 'a']);
  t.equal(ok3.stdout.toString(), 'b\n', 'HELLO 3 with AUTH');
});

t.test('redis-benchmark runs to completion', { skip: benchBin ? false : 'redis-benchmark not installed' }, async (t) => {
  const target = await startTarget(t);
  for (const pipeline of ['1', '16']) {
    const r = await run(benchBin!, [
      '-h', '127.0.0.1', '-p', String(target.port),
      '-t', 'set,get,incr,mset', '-n', '3000', '-c', '20', '-d', '100', '-r', '1000', '-P', pipeline, '--csv',
    ]);
    t.equal(r.code, 0, `exit 0 (${r.stderr.slice(0, 300)})`);
    const rows = r.stdout.toString().trim().split('\n');
    t.equal(rows[0], '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"');
    const tests = rows.slice(1).map((row) => row.split(',')[0]);
    t.same(tests, ['"SET"', '"GET"', '"INCR"', '"MSET (10 keys)"'], `-P ${pipeline}: every test ran`);
    for (const row of rows.slice(1)) {
      const rps = Number(row.split(',')[1]?.replace(/"/g, ''));
      t.ok(rps > 0, `${row.split(',')[0]} -P ${pipeline}: ${rps} requests per second`);
    }
  }
  const c = await connectIoredis(t, target.port);
  t.equal(await c.get('counter:__rand_int__'), null, 'keys were randomised with -r');
  t.ok((await c.dbsize()) > 100, 'the benchmark wrote keys');
  const keys = await c.keys('key:*');
  t.ok(keys.length > 100 && keys.every((k) => /^key:\d{12}$/.test(k)), `keys like key:000000000042 (${keys.length})`);
  const value = await c.get(keys[0]!);
  t.equal(value?.length, 100, '-d 100 values stored whole');
});
