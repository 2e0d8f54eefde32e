/**
 * The server's own commands over a real socket, checking exact reply bytes against Redis 7's
 * (compared by hand with redis-server 7.0.15): connection, CLIENT, CONFIG, INFO, SLOWLOG,
 * COMMAND, TIME.
 */
import t from 'tap';
import { command, RawClient, startServer } from './server_harness.js';

/** Sends one command and waits for `lines` CRLF-terminated lines of reply. */
async function ask(c: RawClient, lines: number, ...args: string[]): Promise<string> {
  c.received = Buffer.alloc(0);
  c.send(command(...args));
  return c.until((s) => s.split('\r\n').length > lines);
}

t.test('connection commands', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.connect(t, h.port);
  t.equal(await ask(c, 1, 'PING'), '+PONG\r\n');
  t.equal(await ask(c, 2, 'ping', 'hi'), '$2\r\nhi\r\n');
  t.equal(await ask(c, 1, 'ping', 'a', 'b'), "-ERR wrong number of arguments for 'ping' command\r\n");
  t.equal(await ask(c, 1, 'auth', 'x'), '-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n');
  t.equal(await ask(c, 1, 'auth', 'default', 'anything'), '+OK\r\n', 'the nopass default user accepts any password');
  t.equal(await ask(c, 1, 'auth', 'bob', 'x'), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
  t.equal(await ask(c, 1, 'auth', 'a', 'b', 'c'), '-ERR syntax error\r\n');
  t.equal(await ask(c, 1, 'select', '0'), '+OK\r\n');
  t.equal(await ask(c, 1, 'select', '1'), '-ERR DB index is out of range\r\n');
  t.equal(await ask(c, 1, 'select', 'x'), '-ERR value is not an integer or out of range\r\n');
  t.equal(await ask(c, 1, 'hello', '4'), '-NOPROTO unsupported protocol version\r\n');
  t.equal(await ask(c, 1, 'hello', 'x'), '-ERR Protocol version is not an integer or out of range\r\n');
  t.equal(await ask(c, 1, 'hello', '3', 'auth', 'default'), "-ERR Syntax error in HELLO option 'auth'\r\n");
  const hello2 = await ask(c, 26, 'hello', '2');
  t.equal(hello2, '*14\r\n$6\r\nserver\r\n$6\r\nringkv\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n');
  t.equal(await ask(c, 1, 'client', 'setname', 'a b'), '-ERR Client names cannot contain spaces, newlines or special characters.\r\n');
  t.equal(await ask(c, 1, 'client', 'setname', 'alice'), '+OK\r\n');
  t.equal(await ask(c, 2, 'client', 'getname'), '$5\r\nalice\r\n');
  t.equal(await ask(c, 1, 'client', 'id'), ':1\r\n');
  t.equal(await ask(c, 1, 'client', 'foo'), "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
  t.equal(await ask(c, 1, 'client', 'kill', '1.2.3.4:5'), '-ERR No such client\r\n');
  t.equal(await ask(c, 1, 'client', 'kill', 'id', 'x'), '-ERR client-id should be greater than 0\r\n');
  t.equal(await ask(c, 1, 'client', 'kill', 'foo', 'bar'), '-ERR syntax error\r\n');
  t.equal(await ask(c, 1, 'client', 'list', 'type', 'foo'), "-ERR Unknown client type 'foo'\r\n");
  t.equal(await ask(c, 1, 'client', 'quorum', '0', 'all'), "-ERR invalid quorum '0': expected a replica count (1-255) or one|quorum|all|local_one|local_quorum|each_quorum\r\n");
  t.equal(await ask(c, 1, 'client', 'quorum', '2', 'QUORUM'), '+OK\r\n');
  t.equal(await ask(c, 5, 'client', 'quorum'), '*2\r\n$1\r\n2\r\n$6\r\nquorum\r\n');
  t.equal(await ask(c, 1, 'client', 'quorum', 'default', 'default'), '+OK\r\n');
  t.equal(await ask(c, 3, 'client', 'quorum'), '*2\r\n$-1\r\n$-1\r\n');
  t.equal(await ask(c, 1, 'reset'), '+RESET\r\n');
  t.equal(await ask(c, 1, 'client', 'getname'), '$-1\r\n', 'RESET clears the name');

  const other = await RawClient.connect(t, h.port);
  t.equal(await ask(other, 1, 'client', 'id'), ':2\r\n');
  const list = await ask(c, 1, 'client', 'list');
  t.match(list, /^\$\d+\r\nid=1 addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ name= age=\d+ idle=\d+ flags=N db=0 .* cmd=client\|list user=default redir=-1 resp=2 /);
  t.match(list, /\nid=2 addr=/);
  t.equal(await ask(c, 1, 'client', 'kill', 'id', '2'), ':1\r\n');
  await other.untilClosed();
  t.equal(await ask(c, 1, 'client', 'kill', 'id', '1'), ':0\r\n', 'SKIPME yes by default');
  t.equal(await ask(c, 1, 'client', 'kill', 'id', '1', 'skipme', 'no'), ':1\r\n');
  t.equal(await c.untilClosed(), ':1\r\n', 'killing itself: the reply, then the close');
});

t.test('CONFIG, INFO, SLOWLOG, COMMAND, TIME', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.connect(t, h.port);
  t.equal(await ask(c, 5, 'config', 'get', 'maxclients'), '*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n');
  t.equal(await ask(c, 1, 'config', 'get'), "-ERR wrong number of arguments for 'config|get' command\r\n");
  t.equal(await ask(c, 1, 'config', 'set', 'timeout'), "-ERR wrong number of arguments for 'config|set' command\r\n");
  t.equal(await ask(c, 1, 'config', 'set', 'timeout', '1', 'maxclients'), "-ERR wrong number of arguments for 'config|set' command\r\n");
  t.equal(await ask(c, 1, 'config', 'set', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '3'), '+OK\r\n');
  t.equal(await ask(c, 1, 'config', 'rewrite'), '-ERR The server is running without a config file\r\n');
  const info = await ask(c, 1, 'info');
  const body = info.slice(info.indexOf('\r\n') + 2);
  t.match(body, /^# Server\r\nredis_version:7\.0\.0\r\n/);
  t.match(body, /\r\n\r\n# Clients\r\nconnected_clients:1\r\n/);
  t.match(body, /\r\n# Persistence\r\nloading:0\r\n/);
  t.notMatch(body, /# Commandstats/);
  const only = await ask(c, 1, 'info', 'CLIENTS', 'cpu');
  t.match(only, /^\$\d+\r\n# Clients\r\n[^#]*\r\n\r\n# CPU\r\nused_cpu_sys:[\d.]+\r\nused_cpu_user:[\d.]+\r\n\r\n$/);
  t.equal(await ask(c, 1, 'info', 'nosuchsection'), '$0\r\n\r\n');
  t.match(await ask(c, 1, 'info', 'commandstats'), /cmdstat_config\|set:calls=2,usec=\d+,usec_per_call=[\d.]+,rejected_calls=1,failed_calls=1\r\n/);
  t.equal(await ask(c, 1, 'slowlog', 'len'), ':3\r\n', 'capped at slowlog-max-len');
  t.match(await ask(c, 3, 'slowlog', 'get', '1'), /^\*1\r\n\*6\r\n:\d+\r\n:\d+\r\n:\d+\r\n\*2\r\n\$7\r\nslowlog\r\n\$3\r\nlen\r\n\$15\r\n127\.0\.0\.1:\d+\r\n\$0\r\n\r\n$/);
  t.equal(await ask(c, 1, 'slowlog', 'get', '-5'), '-ERR count should be greater than or equal to -1\r\n');
  t.equal(await ask(c, 1, 'slowlog', 'reset'), '+OK\r\n');
  t.equal(await ask(c, 1, 'command', 'foo'), "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n");
  const count = Number(/^:(\d+)\r\n$/.exec(await ask(c, 1, 'command', 'count'))?.[1]);
  t.ok(count >= 15, `COMMAND COUNT ${count}`);
  t.match(await ask(c, 1, 'command', 'info', 'ping', 'nosuch'), /^\*2\r\n\*10\r\n\$4\r\nping\r\n:-1\r\n\*1\r\n\+fast\r\n:0\r\n:0\r\n:0\r\n/);
  t.match(await ask(c, 1, 'command', 'docs', 'echo'), /^\*2\r\n\$4\r\necho\r\n\*10\r\n\$7\r\nsummary\r\n/);
  t.match(await ask(c, 1, 'command', 'list'), /\$4\r\nping\r\n/);
  const time = /^\*2\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n$/.exec(await ask(c, 5, 'time'));
  t.ok(time !== null && Math.abs(Number(time[1]) - Date.now() / 1000) < 5 && Number(time[2]) < 1e6, 'TIME: seconds and microseconds');
  t.equal(await ask(c, 1, 'readonly'), '+OK\r\n');
  t.equal(await ask(c, 1, 'config', 'resetstat'), '+OK\r\n');
  t.notMatch(await ask(c, 1, 'info', 'commandstats'), /cmdstat_config\|set/, 'RESETSTAT clears the counters');
});
