// A transcript of key and string commands run against a real redis-server and against ringkv's
// handlers side by side: every reply must be the same bytes (RESP2, encoded by src/resp), except
// KEYS/SCAN results, compared as sets (lines starting with '~').
// Skipped, not faked, when redis-server is not installed.
import t from 'tap';
import { encodeReply } from '../../src/resp/encoder.js';
import { connectRaw, respCommand } from '../helpers/raw_client.js';
import { redisServerPath, startRedisServer } from '../helpers/redis_server.js';
import { openFixture } from './keyspace_fixture.js';

/** One command per line, arguments split on spaces; a leading '~' compares sorted arrays. */
const TRANSCRIPT = `
set k v ex 0
set k v ex -1
set k v ex abc
set k v px 0
set k v exat 0
set k v ex 10 px 10
set k v nx xx
set k v keepttl ex 10
set k v ex
set k v foo
set k v nx get
get k
set k v get
set k v ex 9223372036854775807
set k v px 9223372036854775807
set k v ex 9223372036854776
set k v ex 10 ex 20
ttl k
set k v xx xx
set k w keepttl
ttl k
setex k 0 v
setex k -5 v
setex k abc v
setex k 30 v
ttl k
psetex k 0 v
setnx k v2
setnx k2 v2
getex k ex 0
getex k ex abc
getex k persist ex 10
getex k foo
getex k ex
getex k ex 10 px 10
getex k persist persist
getex k ex 50
ttl k
getex k persist
ttl k
getex nokey ex 0
expire k abc
expire k 10 nx xx
expire k 10 gt lt
expire k 10 foo
expire nokey abc foo
expire k 10 nx nx
expire k 9223372036854775807
pexpire k 9223372036854775807
expireat k 9223372036854775807
expire k 100 xx
expire k 150 gt
expire k 100 gt
expire k 200 lt
expire k 50 lt
expire k 400 nx
ttl k
persist k
persist k
expire k -1
exists k
set n 9223372036854775807
incr n
decrby n -9223372036854775808
incrby n 1.5
incrby n abc
decrby n 9223372036854775808
decr n
decrby n 9223372036854775806
incrby n -5
set m -9223372036854775808
decr m
decrby m 1
incrby m -9223372036854775808
set z 01
incr z
set z +1
incr z
set z -0
incr z
incrby z2 +5
incrby z3 -0
incr z3
scan abc
scan 0 count 0
scan 0 count -1
scan 0 count abc
scan 0 match
scan 0 foo bar
scan 18446744073709551616
~scan 0 count 1000
~scan 0 count 1000 match z*
~scan 0 count 1000 type string
scan 0 count 1000 type hash
type n
type nokey
getdel n
getdel n
flushall foo
flushall async sync
mset a 1 b 2 a 3
mget a b c a
msetnx a 1 c 2
msetnx c 1 d 2
mget a b c d
append a 23
append new xyz
strlen a
strlen nokey
getrange a 0 -1
getrange a -2 -1
getrange a 5 1
setrange a 1 Z
setrange a 6 end
get a
setrange a -1 x
getset a fresh
getset nokey2 v
del a a b nokey
exists a a b c c
touch c d nokey
~keys *
~keys [cd]
~keys ?
keys nomatch
dbsize
flushall sync
dbsize
randomkey
keys *
`;

/** A RESP2 reply decoded with its type kept: ":5", "+OK", "-ERR ...", "$bulk", null, arrays. */
type Typed = string | null | Typed[];

/** Decodes one RESP2 reply at `pos`; undefined when the buffer does not hold all of it yet. */
function decodeOne(buf: Buffer, pos: number): { value: Typed; end: number } | undefined {
  const nl = buf.indexOf('\r\n', pos, 'latin1');
  if (nl < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('latin1', pos + 1, nl);
  if (type === '+' || type === '-' || type === ':') return { value: type + line, end: nl + 2 };
  const n = Number(line);
  if (type === '$') {
    if (n < 0) return { value: null, end: nl + 2 };
    if (buf.length < nl + 2 + n + 2) return undefined;
    return { value: '$' + buf.toString('latin1', nl + 2, nl + 2 + n), end: nl + 4 + n };
  }
  if (type === '*') {
    if (n < 0) return { value: null, end: nl + 2 };
    const items: Typed[] = [];
    let p = nl + 2;
    for (let i = 0; i < n; i++) {
      const r = decodeOne(buf, p);
      if (r === undefined) return undefined;
      items.push(r.value);
      p = r.end;
    }
    return { value: items, end: p };
  }
  throw new Error(`unexpected RESP type ${type}`);
}

const sortDeep = (v: Typed): Typed =>
  Array.isArray(v) ? v.map(sortDeep).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)) : v;

t.test('the transcript replies byte for byte as redis-server does', { skip: redisServerPath() === undefined ? 'redis-server is not installed' : false }, async (t) => {
  const redis = await startRedisServer(t);
  const socket = await connectRaw(redis.port);
  t.teardown(() => socket.destroy());
  let pending = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    waiter?.();
  });
  const redisCall = async (args: string[]): Promise<Buffer> => {
    socket.write(respCommand(...args));
    for (;;) {
      const r = pending.length > 0 ? decodeOne(pending, 0) : undefined;
      if (r !== undefined) {
        const frame = pending.subarray(0, r.end);
        pending = pending.subarray(r.end);
        return frame;
      }
      await new Promise<void>((resolve) => (waiter = resolve));
    }
  };
  const fx = await openFixture(t);
  await redisCall(['FLUSHALL']);
  let compared = 0;
  for (const raw of TRANSCRIPT.split('\n').map((l) => l.trim()).filter((l) => l !== '')) {
    const sorted = raw.startsWith('~');
    const args = (sorted ? raw.slice(1) : raw).split(' ');
    // Time moves for redis-server between commands; move the injected clock too.
    fx.clock.advance(1);
    const want = await redisCall(args);
    const got = encodeReply(await fx.runReply(...args), 2);
    if (sorted) t.same(sortDeep(decodeOne(got, 0)!.value), sortDeep(decodeOne(want, 0)!.value), raw);
    else t.equal(got.toString('latin1'), want.toString('latin1'), raw);
    compared++;
  }
  t.ok(compared > 100, `${compared} commands compared`);
});
