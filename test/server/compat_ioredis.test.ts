/**
 * Compatibility with ioredis (npm), black-box against a running ringkv node: the single-node
 * commands of ARCHITECTURE.md section 9 with Redis's exact replies and error texts, 10k-command
 * pipelines, binary values, the value size limit, TTL expiry, restart with data intact, RESP3
 * after HELLO 3, and requirepass.
 *
 * Run with RINGKV_SUITE_TARGET=redis-server to check the suite against real Redis 7 (cases
 * marked ringkvOnly are then skipped).
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { startTarget, ringkvOnly, TARGET_KIND, type Target } from '../helpers/target.js';
import { connectIoredis, cmd } from '../helpers/ioredis_client.js';
import { makeTempDir } from '../helpers/node_process.js';

/** Default proto-max-bulk-len / max-value-bytes of ringkv (ARCHITECTURE.md section 1). */
const VALUE_BYTES_MAX = 1024 * 1024;
const PIPELINE_COMMANDS = 10_000;
/** Writes before the kill -9 (appendfsync always: each one is fsynced before its reply). */
const CRASH_WRITES = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sortedStrings(p: Promise<unknown>): Promise<string[]> {
  const v = (await p) as string[];
  return [...v].sort();
}

t.test('single node, default config', async (t) => {
  const target: Target = await startTarget(t, {
    persistent: true,
    // A value of exactly 1 MiB must be storable on the reference too.
    config: TARGET_KIND === 'redis-server' ? { 'proto-max-bulk-len': VALUE_BYTES_MAX } : {},
  });

  for (const protocol of [2, 3] as const) {
    t.test(`connection commands (RESP${protocol})`, async (t) => {
      const c = await connectIoredis(t, target.port, { protocol });
      t.equal(await c.ping(), 'PONG');
      t.equal(await cmd(c, 'PING', 'hello'), 'hello');
      t.equal(await cmd(c, 'ECHO', 'hi there'), 'hi there');
      t.equal(await cmd(c, 'SELECT', '0'), 'OK');
      await t.rejects(cmd(c, 'SELECT', 'x'), { message: 'ERR value is not an integer or out of range' });
      await t.rejects(cmd(c, 'ECHO'), { message: "ERR wrong number of arguments for 'echo' command" });
      await t.rejects(cmd(c, 'NOSUCHCMD', 'a', 'b'), {
        message: "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' ",
      });
      t.equal(await cmd(c, 'CLIENT', 'SETNAME', `conn-${protocol}`), 'OK');
      t.equal(await cmd(c, 'CLIENT', 'GETNAME'), `conn-${protocol}`);
      await t.rejects(cmd(c, 'CLIENT', 'SETNAME', 'a b'), {
        message: 'ERR Client names cannot contain spaces, newlines or special characters.',
      });
      const id = (await cmd(c, 'CLIENT', 'ID')) as number;
      t.type(id, 'number');
      t.ok(id > 0);
      const info = (await cmd(c, 'CLIENT', 'INFO')) as string;
      t.match(info, new RegExp(`^id=${id} addr=127\\.0\\.0\\.1:\\d+ laddr=127\\.0\\.0\\.1:${target.port} `));
      t.match(info, new RegExp(` name=conn-${protocol} `));
      t.match(info, new RegExp(` resp=${protocol}(\\s|$)`), `CLIENT INFO shows resp=${protocol}`);
      const list = (await cmd(c, 'CLIENT', 'LIST')) as string;
      t.match(list, new RegExp(`(^|\\n)id=${id} .*name=conn-${protocol} `));
      const time = (await cmd(c, 'TIME')) as string[];
      t.equal(time.length, 2);
      t.ok(Math.abs(Number(time[0]) - Date.now() / 1000) < 60, 'TIME seconds near now');
      t.match(time[1], /^\d{1,6}$/);
      t.equal(await cmd(c, 'RESET'), 'RESET');
      t.equal(await cmd(c, 'CLIENT', 'GETNAME'), null, 'RESET clears the name');
    });
  }

  t.test('SELECT other than 0 is refused', ringkvOnly, async (t) => {
    const c = await connectIoredis(t, target.port);
    await t.rejects(cmd(c, 'SELECT', '1'), { message: 'ERR DB index is out of range' });
  });

  t.test('CLIENT QUORUM overrides the quorums of one connection', ringkvOnly, async (t) => {
    const c = await connectIoredis(t, target.port, { protocol: 2 });
    t.same(await cmd(c, 'CLIENT', 'QUORUM'), [null, null], 'no override by default');
    t.equal(await cmd(c, 'CLIENT', 'QUORUM', '1', 'all'), 'OK');
    t.same(await cmd(c, 'CLIENT', 'QUORUM'), ['1', 'all']);
    t.match(await cmd(c, 'CLIENT', 'INFO'), / read-quorum=1 write-quorum=all/);
    await t.rejects(cmd(c, 'CLIENT', 'QUORUM', 'most', '1'), { message: /^ERR invalid quorum 'most': / });
    t.equal(await c.set('quorum:k', 'v'), 'OK', 'a single node meets any quorum');
    t.equal(await c.get('quorum:k'), 'v');
    t.equal(await cmd(c, 'CLIENT', 'QUORUM', 'default', 'default'), 'OK');
    t.same(await cmd(c, 'CLIENT', 'QUORUM'), [null, null]);
  });

  t.test('QUIT replies OK and closes', async (t) => {
    const c = await connectIoredis(t, target.port);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    t.equal(await c.quit(), 'OK');
    await ended;
  });

  t.test('CLIENT KILL closes the other connection', async (t) => {
    const a = await connectIoredis(t, target.port);
    const b = await connectIoredis(t, target.port);
    const idB = (await cmd(b, 'CLIENT', 'ID')) as number;
    const closed = new Promise<void>((resolve) => b.once('end', () => resolve()));
    t.equal(await cmd(a, 'CLIENT', 'KILL', 'ID', String(idB)), 1);
    await closed;
    t.equal(await cmd(a, 'CLIENT', 'KILL', 'ID', String(idB)), 0, 'no such client any more');
    t.equal(await a.ping(), 'PONG');
  });

  t.test('SET and its options', async (t) => {
    const c = await connectIoredis(t, target.port);
    const k = 'set:opts';
    t.equal(await c.set(k, 'v1'), 'OK');
    t.equal(await c.get(k), 'v1');
    t.equal(await cmd(c, 'SET', k, 'v2', 'NX'), null, 'NX on existing key');
    t.equal(await c.get(k), 'v1');
    t.equal(await cmd(c, 'SET', 'set:missing', 'v', 'XX'), null, 'XX on missing key');
    t.equal(await c.exists('set:missing'), 0);
    t.equal(await cmd(c, 'SET', k, 'v3', 'XX'), 'OK');
    t.equal(await cmd(c, 'SET', k, 'v4', 'GET'), 'v3', 'GET returns the old value');
    t.equal(await cmd(c, 'SET', 'set:new', 'n', 'GET'), null, 'GET on missing key');
    t.equal(await cmd(c, 'SET', 'set:new', 'n2', 'NX', 'GET'), 'n', 'NX GET on existing: old value, not set');
    t.equal(await c.get('set:new'), 'n');

    t.equal(await cmd(c, 'SET', k, 'e', 'EX', '100'), 'OK');
    let ttl = await c.ttl(k);
    t.ok(ttl >= 98 && ttl <= 100, `EX ttl ${ttl}`);
    t.equal(await cmd(c, 'SET', k, 'p', 'PX', '100000'), 'OK');
    let pttl = await c.pttl(k);
    t.ok(pttl > 98_000 && pttl <= 100_000, `PX pttl ${pttl}`);
    const atS = Math.floor(Date.now() / 1000) + 200;
    t.equal(await cmd(c, 'SET', k, 'a', 'EXAT', String(atS)), 'OK');
    ttl = await c.ttl(k);
    t.ok(ttl >= 197 && ttl <= 200, `EXAT ttl ${ttl}`);
    const atMs = Date.now() + 300_000;
    t.equal(await cmd(c, 'SET', k, 'b', 'PXAT', String(atMs)), 'OK');
    pttl = await c.pttl(k);
    t.ok(pttl > 297_000 && pttl <= 300_000, `PXAT pttl ${pttl}`);
    t.equal(await cmd(c, 'SET', k, 'kept', 'KEEPTTL'), 'OK');
    pttl = await c.pttl(k);
    t.ok(pttl > 290_000 && pttl <= 300_000, `KEEPTTL keeps the ttl (${pttl})`);
    t.equal(await c.get(k), 'kept');
    t.equal(await c.set(k, 'plain'), 'OK');
    t.equal(await c.ttl(k), -1, 'plain SET clears the ttl');

    await t.rejects(cmd(c, 'SET', k, 'v', 'NX', 'XX'), { message: 'ERR syntax error' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'EX', '10', 'PX', '100'), { message: 'ERR syntax error' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'KEEPTTL', 'EX', '10'), { message: 'ERR syntax error' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'BOGUS'), { message: 'ERR syntax error' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'EX'), { message: 'ERR syntax error' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'EX', 'ten'), { message: 'ERR value is not an integer or out of range' });
    await t.rejects(cmd(c, 'SET', k, 'v', 'EX', '0'), { message: "ERR invalid expire time in 'set' command" });
    await t.rejects(cmd(c, 'SET', k, 'v', 'PX', '-5'), { message: "ERR invalid expire time in 'set' command" });
    await t.rejects(cmd(c, 'SET', k), { message: "ERR wrong number of arguments for 'set' command" });
    t.equal(await c.get(k), 'plain', 'failed SETs changed nothing');
  });

  t.test('string commands', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await cmd(c, 'SETNX', 's:nx', 'a'), 1);
    t.equal(await cmd(c, 'SETNX', 's:nx', 'b'), 0);
    t.equal(await c.get('s:nx'), 'a');
    t.equal(await cmd(c, 'SETEX', 's:ex', '50', 'x'), 'OK');
    const ttl = await c.ttl('s:ex');
    t.ok(ttl > 45 && ttl <= 50);
    await t.rejects(cmd(c, 'SETEX', 's:ex', '0', 'x'), { message: "ERR invalid expire time in 'setex' command" });
    t.equal(await cmd(c, 'PSETEX', 's:pex', '50000', 'y'), 'OK');
    const pttl = await c.pttl('s:pex');
    t.ok(pttl > 45_000 && pttl <= 50_000);
    t.equal(await cmd(c, 'GETDEL', 's:nx'), 'a');
    t.equal(await cmd(c, 'GETDEL', 's:nx'), null);
    t.equal(await c.exists('s:nx'), 0);

    t.equal(await c.set('s:gex', 'g'), 'OK');
    t.equal(await cmd(c, 'GETEX', 's:gex', 'EX', '30'), 'g');
    const gttl = await c.ttl('s:gex');
    t.ok(gttl > 25 && gttl <= 30);
    t.equal(await cmd(c, 'GETEX', 's:gex', 'PERSIST'), 'g');
    t.equal(await c.ttl('s:gex'), -1);
    t.equal(await cmd(c, 'GETEX', 's:nokey'), null);
    await t.rejects(cmd(c, 'GETEX', 's:gex', 'EX', '0'), { message: "ERR invalid expire time in 'getex' command" });

    t.equal(await c.mset('m:1', 'one', 'm:2', 'two', 'm:3', 'three'), 'OK');
    t.same(await c.mget('m:1', 'm:nope', 'm:3', 'm:2'), ['one', null, 'three', 'two']);
    await t.rejects(cmd(c, 'MSET', 'm:1', 'x', 'm:2'), { message: "ERR wrong number of arguments for 'mset' command" });
    t.equal(await c.exists('m:1', 'm:1', 'm:nope', 'm:2'), 3, 'EXISTS counts repeats');
    t.equal(await c.del('m:1', 'm:nope', 'm:1'), 1);
    t.equal(await c.unlink('m:2', 'm:3'), 2);
    t.same(await c.mget('m:1', 'm:2', 'm:3'), [null, null, null]);

    t.equal(await c.set('s:str', 'hello'), 'OK');
    t.equal(await c.type('s:str'), 'string');
    t.equal(await c.type('s:none'), 'none');
    t.equal(await c.strlen('s:str'), 5);
    t.equal(await c.strlen('s:none'), 0);
    t.equal(await c.append('s:str', ' world'), 11);
    t.equal(await c.get('s:str'), 'hello world');
    t.equal(await c.append('s:app', 'new'), 3);
    t.equal(await c.get('s:app'), 'new');
    await t.rejects(cmd(c, 'GET'), { message: "ERR wrong number of arguments for 'get' command" });
    await t.rejects(cmd(c, 'GET', 'a', 'b'), { message: "ERR wrong number of arguments for 'get' command" });
  });

  t.test('TTL commands and real expiry', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.set('ttl:a', 'v'), 'OK');
    t.equal(await c.ttl('ttl:a'), -1);
    t.equal(await c.pttl('ttl:a'), -1);
    t.equal(await c.ttl('ttl:none'), -2);
    t.equal(await c.pttl('ttl:none'), -2);
    t.equal(await c.expire('ttl:a', 100), 1);
    t.ok((await c.ttl('ttl:a')) > 95);
    t.equal(await c.expire('ttl:none', 100), 0);
    t.equal(await c.pexpire('ttl:a', 200_000), 1);
    t.ok((await c.pttl('ttl:a')) > 195_000);
    t.equal(await c.expireat('ttl:a', Math.floor(Date.now() / 1000) + 300), 1);
    const t1 = await c.ttl('ttl:a');
    t.ok(t1 > 295 && t1 <= 300, `EXPIREAT ttl ${t1}`);
    t.equal(await c.pexpireat('ttl:a', Date.now() + 400_000), 1);
    const t2 = await c.pttl('ttl:a');
    t.ok(t2 > 395_000 && t2 <= 400_000, `PEXPIREAT pttl ${t2}`);
    t.equal(await c.persist('ttl:a'), 1);
    t.equal(await c.persist('ttl:a'), 0, 'no ttl to remove');
    t.equal(await c.ttl('ttl:a'), -1);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '100', 'NX'), 1);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '50', 'NX'), 0);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '200', 'GT'), 1);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '10', 'GT'), 0);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '10', 'LT'), 1);
    t.equal(await cmd(c, 'EXPIRE', 'ttl:a', '20', 'XX'), 1);
    await t.rejects(cmd(c, 'EXPIRE', 'ttl:a', '10', 'NX', 'XX'), {
      message: 'ERR NX and XX, GT or LT options at the same time are not compatible',
    });
    await t.rejects(cmd(c, 'EXPIRE', 'ttl:a', 'soon'), { message: 'ERR value is not an integer or out of range' });
    t.equal(await c.expire('ttl:a', 0), 1, 'EXPIRE 0 deletes');
    t.equal(await c.exists('ttl:a'), 0);

    // Real expiry: gone for GET, EXISTS, TTL, KEYS and MGET once the time has passed.
    t.equal(await cmd(c, 'SET', 'ttl:short', 'v', 'PX', '300'), 'OK');
    t.equal(await c.set('ttl:short2', 'w'), 'OK');
    t.equal(await c.pexpire('ttl:short2', 300), 1);
    t.equal(await c.get('ttl:short'), 'v');
    await sleep(700);
    t.equal(await c.get('ttl:short'), null);
    t.equal(await c.exists('ttl:short', 'ttl:short2'), 0);
    t.equal(await c.ttl('ttl:short'), -2);
    t.same(await c.mget('ttl:short', 'ttl:short2'), [null, null]);
    t.same(await c.keys('ttl:short*'), []);
    t.equal(await cmd(c, 'SET', 'ttl:short', 'again', 'NX'), 'OK', 'an expired key counts as missing for NX');
  });

  t.test('INCR family', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.incr('n:a'), 1);
    t.equal(await c.incr('n:a'), 2);
    t.equal(await c.incrby('n:a', 40), 42);
    t.equal(await c.decr('n:a'), 41);
    t.equal(await c.decrby('n:a', 50), -9);
    t.equal(await c.get('n:a'), '-9');
    t.equal(await c.decr('n:b'), -1);
    t.equal(await c.set('n:s', 'abc'), 'OK');
    await t.rejects(c.incr('n:s'), { message: 'ERR value is not an integer or out of range' });
    t.equal(await c.set('n:sp', ' 1'), 'OK');
    await t.rejects(c.incr('n:sp'), { message: 'ERR value is not an integer or out of range' });
    await t.rejects(cmd(c, 'INCRBY', 'n:a', 'x'), { message: 'ERR value is not an integer or out of range' });
    t.equal(await c.set('n:max', '9223372036854775807'), 'OK');
    await t.rejects(c.incr('n:max'), { message: 'ERR increment or decrement would overflow' });
    t.equal(await c.set('n:min', '-9223372036854775808'), 'OK');
    await t.rejects(c.decr('n:min'), { message: 'ERR increment or decrement would overflow' });
    t.equal(await c.get('n:max'), '9223372036854775807', 'a failed INCR changes nothing');
    t.equal(await c.set('n:ttl', '5', 'EX', 100), 'OK');
    t.equal(await c.incr('n:ttl'), 6);
    t.ok((await c.ttl('n:ttl')) > 90, 'INCR keeps the ttl');
  });

  t.test('SCAN, KEYS, DBSIZE, RANDOMKEY, FLUSHALL', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.flushall(), 'OK');
    t.equal(await c.dbsize(), 0);
    t.equal(await c.randomkey(), null);
    const want: string[] = [];
    const p = c.pipeline();
    for (let i = 0; i < 250; i++) {
      want.push(`scan:${i}`);
      p.set(`scan:${i}`, String(i));
    }
    for (let i = 0; i < 20; i++) p.set(`other:${i}`, 'x');
    await p.exec();
    t.equal(await c.dbsize(), 270);
    const seen = new Set<string>();
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = (await c.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 50)) as [string, string[]];
      for (const k of keys) seen.add(k);
      cursor = next;
      rounds++;
    } while (cursor !== '0' && rounds < 1000);
    t.equal(cursor, '0', 'SCAN terminates');
    t.same([...seen].sort(), [...want].sort(), 'SCAN MATCH returns every key exactly in the set');
    const all = new Set<string>();
    cursor = '0';
    do {
      const [next, keys] = (await c.scan(cursor)) as [string, string[]];
      for (const k of keys) all.add(k);
      cursor = next;
    } while (cursor !== '0');
    t.equal(all.size, 270);
    const scanAll = async (...opts: string[]): Promise<string[]> => {
      const found: string[] = [];
      let cur = '0';
      do {
        const [next, keys] = (await cmd(c, 'SCAN', cur, ...opts)) as [string, string[]];
        found.push(...keys);
        cur = next;
      } while (cur !== '0');
      return found;
    };
    t.equal(new Set(await scanAll('TYPE', 'string', 'COUNT', '100')).size, 270, 'SCAN TYPE string');
    t.same(await scanAll('TYPE', 'hash'), [], 'SCAN TYPE hash finds nothing');
    t.same(await sortedStrings(c.keys('other:1*')), ['other:1', ...Array.from({ length: 10 }, (_, i) => `other:1${i}`)].sort());
    t.same(await c.keys('nomatch*'), []);
    const rk = await c.randomkey();
    t.ok(rk !== null && (all.has(rk)), `RANDOMKEY ${rk} is an existing key`);
    await t.rejects(cmd(c, 'SCAN', 'notacursor'), { message: 'ERR invalid cursor' });
    t.equal(await c.flushall(), 'OK');
    t.equal(await c.dbsize(), 0);
    t.same(await c.keys('*'), []);
  });

  t.test('INFO format', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.flushall(), 'OK');
    t.equal(await c.set('info:a', '1'), 'OK');
    t.equal(await c.set('info:b', '1', 'EX', 100), 'OK');
    const info = await c.info();
    t.match(info, /^# Server\r\n/, 'starts with the Server section');
    const lines = info.split('\r\n');
    t.equal(lines.at(-1), '', 'ends with CRLF');
    const sections: string[] = [];
    const fields = new Map<string, string>();
    for (const line of lines) {
      if (line === '') continue;
      if (line.startsWith('# ')) {
        sections.push(line.slice(2));
        continue;
      }
      const m = /^([A-Za-z0-9_-]+):(.*)$/.exec(line);
      t.ok(m, `line "${line}" is key:value`);
      if (m) fields.set(m[1]!, m[2]!);
    }
    for (const s of ['Server', 'Clients', 'Memory', 'Persistence', 'Stats', 'Keyspace']) {
      t.ok(sections.includes(s), `section ${s}`);
    }
    t.equal(fields.get('tcp_port'), String(target.port));
    t.equal(fields.get('process_id'), String(target.pid));
    t.match(fields.get('connected_clients') ?? '', /^\d+$/);
    t.ok(Number(fields.get('connected_clients')) >= 1);
    t.match(fields.get('used_memory') ?? '', /^\d+$/);
    t.match(fields.get('db0') ?? '', /^keys=\d+,expires=\d+/);
    const server = await c.info('server');
    t.match(server, /^# Server\r\n/);
    t.notMatch(server, /# Clients/, 'INFO server has only that section');
    const ks = await c.info('keyspace');
    t.match(ks, /^# Keyspace\r\ndb0:keys=2,expires=1(,avg_ttl=\d+)?\r\n/, 'exact key and expires counts');
  });

  t.test('CONFIG GET and SET', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.same(await cmd(c, 'CONFIG', 'GET', 'maxclients'), ['maxclients', '10000']);
    t.same(await cmd(c, 'CONFIG', 'GET', 'timeout'), ['timeout', '0']);
    t.same(await cmd(c, 'CONFIG', 'GET', 'port'), ['port', String(target.port)]);
    t.same(await cmd(c, 'CONFIG', 'GET', 'appendfsync'), ['appendfsync', 'everysec']);
    t.same(await cmd(c, 'CONFIG', 'GET', 'nosuchkey'), []);
    const glob = (await cmd(c, 'CONFIG', 'GET', 'maxc*')) as string[];
    t.same(glob, ['maxclients', '10000'], 'glob pattern');
    t.equal(await cmd(c, 'CONFIG', 'SET', 'timeout', '321'), 'OK');
    t.same(await cmd(c, 'CONFIG', 'GET', 'timeout'), ['timeout', '321']);
    t.equal(await cmd(c, 'CONFIG', 'SET', 'timeout', '0'), 'OK');
    await t.rejects(cmd(c, 'CONFIG', 'SET', 'nosuchkey', '1'), {
      message: "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchkey'",
    });
    await t.rejects(cmd(c, 'CONFIG', 'SET', 'maxclients', 'many'), {
      message: /^ERR CONFIG SET failed \(possibly related to argument 'maxclients'\)/,
    });
    await t.rejects(cmd(c, 'CONFIG', 'GET'), { message: "ERR wrong number of arguments for 'config|get' command" });
    t.equal(await cmd(c, 'CONFIG', 'RESETSTAT'), 'OK');
  });

  t.test('COMMAND COUNT, INFO, DOCS', async (t) => {
    const c = await connectIoredis(t, target.port);
    const count = (await cmd(c, 'COMMAND', 'COUNT')) as number;
    t.type(count, 'number');
    t.ok(count >= 40, `COMMAND COUNT ${count} covers section 9`);
    const all = (await cmd(c, 'COMMAND')) as unknown[][];
    t.equal(all.length, count, 'COMMAND lists COUNT entries');
    const [get] = (await cmd(c, 'COMMAND', 'INFO', 'get')) as unknown[][];
    t.equal(get?.[0], 'get');
    t.equal(get?.[1], 2);
    t.ok((get?.[2] as string[]).includes('readonly'));
    t.ok((get?.[2] as string[]).includes('fast'));
    t.same(get?.slice(3, 6), [1, 1, 1]);
    const [set] = (await cmd(c, 'COMMAND', 'INFO', 'SET')) as unknown[][];
    t.equal(set?.[1], -3);
    t.ok((set?.[2] as string[]).includes('write'));
    const [mset] = (await cmd(c, 'COMMAND', 'INFO', 'mset')) as unknown[][];
    t.same(mset?.slice(1, 2), [-3]);
    t.same(mset?.slice(3, 6), [1, -1, 2]);
    t.same(await cmd(c, 'COMMAND', 'INFO', 'nosuchcommand'), [null]);
    const docs = (await cmd(c, 'COMMAND', 'DOCS', 'get')) as unknown[];
    t.equal(docs[0], 'get');
    const getDocs = docs[1] as unknown[];
    const summaryAt = getDocs.indexOf('summary');
    t.ok(summaryAt >= 0 && typeof getDocs[summaryAt + 1] === 'string' && (getDocs[summaryAt + 1] as string).length > 0);
    t.ok(getDocs.includes('group'));
  });

  t.test('SLOWLOG', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await cmd(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '0'), 'OK');
    t.teardown(async () => {
      await cmd(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
    });
    t.equal(await cmd(c, 'SLOWLOG', 'RESET'), 'OK');
    t.equal(await c.set('slowlog:key', 'slowvalue'), 'OK');
    const entries = (await cmd(c, 'SLOWLOG', 'GET', '10')) as unknown[][];
    const entry = entries.find((e) => JSON.stringify(e[3]) === JSON.stringify(['set', 'slowlog:key', 'slowvalue']));
    t.ok(entry, `SLOWLOG GET has the SET: ${JSON.stringify(entries)}`);
    if (entry) {
      t.type(entry[0], 'number', 'id');
      t.ok(Math.abs((entry[1] as number) - Date.now() / 1000) < 60, 'timestamp in seconds');
      t.type(entry[2], 'number', 'duration in microseconds');
      t.match(entry[4], /^127\.0\.0\.1:\d+$/);
    }
    t.ok(((await cmd(c, 'SLOWLOG', 'LEN')) as number) >= 1);
    t.equal(await cmd(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '-1'), 'OK');
    t.equal(await cmd(c, 'SLOWLOG', 'RESET'), 'OK');
    t.equal(await cmd(c, 'SLOWLOG', 'LEN'), 0);
    t.same(await cmd(c, 'SLOWLOG', 'GET'), []);
  });

  t.test('GETCTX, SETCTX, DELCTX on one node', ringkvOnly, async (t) => {
    const c = await connectIoredis(t, target.port, { protocol: 2 });
    const [emptyCtx, emptyValues] = (await cmd(c, 'GETCTX', 'ctx:none')) as [string, string[]];
    t.type(emptyCtx, 'string');
    t.same(emptyValues, [], 'no values for a missing key');
    t.equal(await c.set('ctx:k', 'v1'), 'OK');
    const [ctx1, values1] = (await cmd(c, 'GETCTX', 'ctx:k')) as [string, string[]];
    t.match(ctx1, /^[\x21-\x7e]+$/, 'context is a printable token');
    t.same(values1, ['v1']);
    t.equal(await cmd(c, 'SETCTX', 'ctx:k', ctx1, 'v2'), 'OK');
    t.equal(await c.get('ctx:k'), 'v2', 'SETCTX with the current context supersedes');
    const [ctx2, values2] = (await cmd(c, 'GETCTX', 'ctx:k')) as [string, string[]];
    t.not(ctx2, ctx1);
    t.same(values2, ['v2']);
    // A write with the stale context ctx1 did not see v2: both survive as siblings.
    t.equal(await cmd(c, 'SETCTX', 'ctx:k', ctx1, 'v3'), 'OK');
    const siblings = (await c.get('ctx:k')) as unknown;
    t.ok(Array.isArray(siblings), `GET of concurrent versions is an array: ${JSON.stringify(siblings)}`);
    t.same([...(siblings as string[])].sort(), ['v2', 'v3']);
    t.same(await c.get('ctx:k'), siblings, 'sibling order is deterministic');
    const [ctxBoth, valuesBoth] = (await cmd(c, 'GETCTX', 'ctx:k')) as [string, string[]];
    t.same([...valuesBoth].sort(), ['v2', 'v3']);
    // ctx2 covers v2 but not v3: DELCTX removes exactly one version.
    t.equal(await cmd(c, 'DELCTX', 'ctx:k', ctx2), 1, 'DELCTX counts the versions it removed');
    t.equal(await c.get('ctx:k'), 'v3');
    t.equal(await cmd(c, 'SETCTX', 'ctx:k', ctxBoth, 'merged', 'EX', '100'), 'OK');
    t.equal(await c.get('ctx:k'), 'merged', 'a context covering every sibling resolves them');
    t.ok((await c.ttl('ctx:k')) > 90, 'SETCTX EX sets a ttl');
    const [ctx4] = (await cmd(c, 'GETCTX', 'ctx:k')) as [string, string[]];
    t.equal(await cmd(c, 'DELCTX', 'ctx:k', ctx4), 1);
    t.equal(await c.get('ctx:k'), null, 'DELCTX with the current context deletes');
    t.equal(await c.exists('ctx:k'), 0);
    t.equal(await cmd(c, 'DELCTX', 'ctx:k', ctx4), 0, 'nothing left to delete');
    await t.rejects(cmd(c, 'SETCTX', 'ctx:k', 'not a context!', 'v'), { message: /^ERR invalid context: / });
    await t.rejects(cmd(c, 'GETCTX'), { message: "ERR wrong number of arguments for 'getctx' command" });
  });

  t.test(`pipeline of ${PIPELINE_COMMANDS} commands, replies in order`, async (t) => {
    const c = await connectIoredis(t, target.port);
    const p = c.pipeline();
    for (let i = 0; i < PIPELINE_COMMANDS / 2; i++) p.set(`pipe:${i}`, `value-${i}`);
    for (let i = 0; i < PIPELINE_COMMANDS / 2; i++) p.get(`pipe:${i}`);
    const replies = (await p.exec())!;
    t.equal(replies.length, PIPELINE_COMMANDS);
    let bad = 0;
    for (let i = 0; i < PIPELINE_COMMANDS / 2; i++) {
      const [errSet, okSet] = replies[i]!;
      const [errGet, value] = replies[PIPELINE_COMMANDS / 2 + i]!;
      if (errSet || okSet !== 'OK' || errGet || value !== `value-${i}`) bad++;
    }
    t.equal(bad, 0, 'every reply matches its command');
    const q = c.pipeline();
    for (let i = 0; i < PIPELINE_COMMANDS; i++) q.incr('pipe:counter');
    const counts = (await q.exec())!.map(([err, v]) => (err ? -1 : v));
    t.same(counts, Array.from({ length: PIPELINE_COMMANDS }, (_, i) => i + 1), 'INCR replies 1..N in order');
  });

  t.test('binary keys and values', async (t) => {
    const c = await connectIoredis(t, target.port);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const tricky = Buffer.from('a\r\nb\x00c\r\n\r\n$3\r\n*1\r\n\x00', 'latin1');
    const key = Buffer.from([0, 13, 10, 255, 0x80, 0x24]);
    t.equal(await c.set('bin:all', all), 'OK');
    t.ok((await c.getBuffer('bin:all'))?.equals(all), 'all 256 byte values round-trip');
    t.equal(await c.set(key, tricky), 'OK');
    t.ok((await c.getBuffer(key))?.equals(tricky), 'NULs and CRLF inside key and value');
    t.equal(await c.strlen(key), tricky.length);
    t.equal(await c.append(key, Buffer.from([0, 0])), tricky.length + 2);
    t.equal(await c.set('bin:empty', ''), 'OK');
    t.equal(await c.get('bin:empty'), '', 'empty value is not nil');
    t.equal(await c.exists('bin:empty'), 1);
    const [v] = (await c.mgetBuffer(key)) as (Buffer | null)[];
    t.ok(v?.equals(Buffer.concat([tricky, Buffer.from([0, 0])])));
  });

  t.test('values near the size limit accepted, over it refused', async (t) => {
    const c = await connectIoredis(t, target.port);
    const atLimit = Buffer.alloc(VALUE_BYTES_MAX, 0x61);
    atLimit[0] = 0;
    atLimit[VALUE_BYTES_MAX - 1] = 0xff;
    t.equal(await c.set('big:at', atLimit), 'OK');
    t.ok((await c.getBuffer('big:at'))?.equals(atLimit), `${VALUE_BYTES_MAX} bytes round-trip`);
    const near = Buffer.alloc(VALUE_BYTES_MAX - 10, 0x62);
    t.equal(await c.set('big:near', near), 'OK');
    t.equal(await c.strlen('big:near'), VALUE_BYTES_MAX - 10);
    // One byte over proto-max-bulk-len: Redis's protocol error, the connection is closed.
    const over = await connectIoredis(t, target.port);
    const ended = new Promise<void>((resolve) => over.once('end', () => resolve()));
    await t.rejects(over.set('big:over', Buffer.alloc(VALUE_BYTES_MAX + 1, 0x63)), {
      message: 'ERR Protocol error: invalid bulk length',
    });
    await ended;
    t.equal(await c.exists('big:over'), 0, 'nothing stored');
    t.equal(await c.ping(), 'PONG', 'other client unaffected');
  });

  t.test('APPEND past the value limit is refused', ringkvOnly, async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.set('big:app', Buffer.alloc(VALUE_BYTES_MAX - 1, 0x61)), 'OK');
    await t.rejects(c.append('big:app', 'xx'), {
      message: `TOOLARGE value is ${VALUE_BYTES_MAX + 1} bytes, over max-value-bytes (${VALUE_BYTES_MAX})`,
    });
    t.equal(await c.strlen('big:app'), VALUE_BYTES_MAX - 1);
    await t.rejects(
      c.set(Buffer.alloc(1025, 0x6b), 'v'),
      { message: 'TOOLARGE key is 1025 bytes, over max-key-bytes (1024)' },
      'key over max-key-bytes',
    );
    t.equal(await c.set(Buffer.alloc(1024, 0x6b), 'v'), 'OK', 'a key of exactly max-key-bytes is fine');
  });

  t.test('HELLO 3 and RESP3 replies', async (t) => {
    const c = await connectIoredis(t, target.port, { protocol: 3, replyMapping: 'resp3' });
    const hello = (await cmd(c, 'HELLO', '3')) as Record<string, unknown>;
    t.equal(hello.proto, 3);
    t.equal(hello.mode, 'standalone');
    t.equal(hello.role, 'master');
    t.type(hello.id, 'number');
    t.type(hello.server, 'string');
    t.type(hello.version, 'string');
    t.same(hello.modules, []);
    t.same(await cmd(c, 'CONFIG', 'GET', 'maxclients'), { maxclients: '10000' }, 'CONFIG GET is a map');
    t.equal(await c.get('resp3:none'), null);
    t.equal(await c.set('resp3:a', 'x'), 'OK');
    t.same(await c.mget('resp3:a', 'resp3:none'), ['x', null]);
    t.equal(await c.exists('resp3:a'), 1);
    await t.rejects(cmd(c, 'HELLO', '4'), { message: 'NOPROTO unsupported protocol version' });
    const two = (await cmd(c, 'HELLO', '2')) as unknown[];
    t.ok(Array.isArray(two), 'HELLO 2 replies with a flat array');
    t.equal(two[two.indexOf('proto') + 1], 2);
  });

  t.test('restart with the same dir keeps the data', async (t) => {
    const c = await connectIoredis(t, target.port);
    t.equal(await c.flushall(), 'OK');
    const p = c.pipeline();
    for (let i = 0; i < 500; i++) p.set(`persist:${i}`, `v${i}`);
    p.set('persist:ttl', 'x', 'EX', 1000);
    p.set('persist:bin', Buffer.from([0, 1, 2, 13, 10, 255]));
    p.set('persist:gone', 'soon', 'PX', 200);
    p.set('persist:deleted', 'x');
    p.del('persist:deleted');
    p.incrby('persist:n', 77);
    await p.exec();
    c.disconnect();
    const status = await target.stop();
    t.same(status, { code: 0, signal: null }, 'SIGTERM exits cleanly with status 0');
    await sleep(300);
    await target.start();
    const d = await connectIoredis(t, target.port);
    const values = await d.mget(...Array.from({ length: 500 }, (_, i) => `persist:${i}`));
    t.same(values, Array.from({ length: 500 }, (_, i) => `v${i}`), 'every key back');
    const ttl = await d.ttl('persist:ttl');
    t.ok(ttl > 900 && ttl <= 1000, `ttl survives (${ttl})`);
    t.ok((await d.getBuffer('persist:bin'))?.equals(Buffer.from([0, 1, 2, 13, 10, 255])));
    t.equal(await d.get('persist:gone'), null, 'expired while down stays expired');
    t.equal(await d.get('persist:deleted'), null, 'delete survives restart');
    t.equal(await d.get('persist:n'), '77');
    t.equal(await d.dbsize(), 503);
  });
});

t.test('CONFIG REWRITE writes the config file back', async (t) => {
  const dir = await makeTempDir('ringkv-conf-');
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const confFile = path.join(dir, 'node.conf');
  await fs.writeFile(confFile, '# test config\ntimeout 0\nslowlog-max-len 128\n');
  const target = await startTarget(t, { confFile, persistent: true });
  const c = await connectIoredis(t, target.port);
  t.equal(await cmd(c, 'CONFIG', 'SET', 'timeout', '77'), 'OK');
  t.equal(await cmd(c, 'CONFIG', 'SET', 'slowlog-max-len', '64'), 'OK');
  t.equal(await cmd(c, 'CONFIG', 'REWRITE'), 'OK');
  const text = await fs.readFile(confFile, 'utf8');
  t.match(text, /^timeout 77$/m);
  t.match(text, /^slowlog-max-len 64$/m);
  t.notMatch(text, /^timeout 0$/m, 'old value replaced, not duplicated');
  c.disconnect();
  await target.restart();
  const d = await connectIoredis(t, target.port);
  t.same(await cmd(d, 'CONFIG', 'GET', 'timeout'), ['timeout', '77'], 'rewritten value read at start');
  t.same(await cmd(d, 'CONFIG', 'GET', 'slowlog-max-len'), ['slowlog-max-len', '64']);
});

t.test('requirepass: NOAUTH, WRONGPASS, AUTH and HELLO AUTH', async (t) => {
  const target = await startTarget(t, { config: { requirepass: 's3cret pass' } });
  const anon = await connectIoredis(t, target.port, { protocol: 2, enableReadyCheck: false });
  await t.rejects(anon.get('a'), { message: 'NOAUTH Authentication required.' });
  await t.rejects(anon.set('a', 'b'), { message: 'NOAUTH Authentication required.' });
  await t.rejects(cmd(anon, 'AUTH', 'wrong'), {
    message: 'WRONGPASS invalid username-password pair or user is disabled.',
  });
  await t.rejects(cmd(anon, 'AUTH', 'default', 'wrong'), {
    message: 'WRONGPASS invalid username-password pair or user is disabled.',
  });
  await t.rejects(cmd(anon, 'HELLO', '3'), {
    message: /^NOAUTH HELLO must be called with the client already authenticated/,
  });
  await t.rejects(cmd(anon, 'HELLO', '3', 'AUTH', 'default', 'nope'), {
    message: 'WRONGPASS invalid username-password pair or user is disabled.',
  });
  t.equal(await cmd(anon, 'AUTH', 's3cret pass'), 'OK');
  t.equal(await anon.set('a', 'b'), 'OK');
  t.equal(await anon.get('a'), 'b');

  const viaHello = await connectIoredis(t, target.port, { protocol: 2, enableReadyCheck: false });
  const hello = (await cmd(viaHello, 'HELLO', '3', 'AUTH', 'default', 's3cret pass')) as unknown[];
  t.equal(hello[hello.indexOf('proto') + 1], 3);
  t.equal(await viaHello.get('a'), 'b');

  const withPassword = await connectIoredis(t, target.port, { password: 's3cret pass' });
  t.equal(await withPassword.get('a'), 'b', 'ioredis password option (HELLO 3 AUTH) works');

  // ioredis reports the AUTH failure as an 'error' event and then fails the connect.
  const wrong = new Redis({
    host: '127.0.0.1',
    port: target.port,
    password: 'wrong',
    protocol: 2,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  const errors: string[] = [];
  wrong.on('error', (e: Error) => errors.push(e.message));
  t.teardown(() => wrong.disconnect());
  await wrong.connect().catch((e: Error) => errors.push(e.message));
  await sleep(200);
  t.ok(
    errors.some((m) => m.includes('WRONGPASS invalid username-password pair or user is disabled.')),
    `wrong password reported as WRONGPASS: ${errors.join(' | ')}`,
  );
});

t.test('kill -9 then start: acknowledged writes are there (appendfsync always)', async (t) => {
  const target = await startTarget(t, { config: { appendfsync: 'always' }, persistent: true });
  const c = await connectIoredis(t, target.port);
  const p = c.pipeline();
  for (let i = 0; i < CRASH_WRITES; i++) p.set(`crash:${i}`, `v${i}`);
  p.del('crash:0');
  const replies = (await p.exec())!;
  t.equal(replies.filter(([err]) => err).length, 0, 'every write acknowledged');
  c.disconnect();
  await target.kill9();
  await target.start();
  const d = await connectIoredis(t, target.port);
  const values = await d.mget(...Array.from({ length: CRASH_WRITES }, (_, i) => `crash:${i}`));
  t.same(values, [null, ...Array.from({ length: CRASH_WRITES - 1 }, (_, i) => `v${i + 1}`)], 'every acknowledged write, and the delete');
  t.equal(await d.dbsize(), CRASH_WRITES - 1);
});

t.test('SHUTDOWN flushes, exits 0, and the data is back after a start', async (t) => {
  const target = await startTarget(t, { persistent: true });
  const c = await connectIoredis(t, target.port);
  t.equal(await c.set('shutdown:k', 'kept'), 'OK');
  await t.rejects(cmd(c, 'SHUTDOWN'), { message: 'Connection is closed.' }, 'no reply: the connection closes');
  const status = await target.stop(); // already exiting: just waits
  t.same(status, { code: 0, signal: null }, 'exit status 0');
  await target.start();
  const d = await connectIoredis(t, target.port);
  t.equal(await d.get('shutdown:k'), 'kept');
});
