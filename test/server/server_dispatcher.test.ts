import { performance } from 'node:perf_hooks';
import t from 'tap';
import { Config } from '../../src/config/config.js';
import { bulk, error, OK, simple, type Reply } from '../../src/resp/reply.js';
import { CommandTable } from '../../src/server/command_table.js';
import { Dispatcher, plansCommute, unknownCommandError, type OverlapPlan } from '../../src/server/dispatcher.js';
import type { Keyspace } from '../../src/server/keyspace.js';
import { Slowlog } from '../../src/server/slowlog.js';
import { ServerStats } from '../../src/server/stats.js';
import type { ClientState, CommandContext, CommandSpec } from '../../src/server/types.js';

const b = (...words: string[]): Buffer[] => words.map((w) => Buffer.from(w));

function specOf(name: string, arity: number, handler: CommandSpec['handler'], extra: Partial<CommandSpec> = {}): CommandSpec {
  return { name, arity, flags: [], firstKey: 0, lastKey: 0, keyStep: 0, summary: name, group: 'test', handler, ...extra };
}

function setup(overrides: [string, string][] = []) {
  const config = Config.fromOverrides(overrides);
  let nowMs = 1_700_000_000_000;
  const specs: CommandSpec[] = [
    specOf('get', 2, (_c, a) => bulk(a[1] as Buffer)),
    specOf('ping', -1, () => simple('PONG'), { flags: ['fast'] }),
    specOf('auth', -2, (c) => {
      c.client.authenticated = true;
      return OK;
    }, { flags: ['noauth'] }),
    // Timings are tens of milliseconds apart so a loaded machine's preemption cannot blur them.
    specOf('later', 1, () => new Promise<Reply>((resolve) => setTimeout(() => resolve(simple('LATER')), 100))),
    // Runs 30 ms on the thread, then waits 100 ms for its answer.
    specOf('spinlater', 1, () => {
      const until = performance.now() + 30;
      while (performance.now() < until);
      return new Promise<Reply>((resolve) => setTimeout(() => resolve(simple('LATER')), 100));
    }),
    specOf('boom', 1, () => {
      throw new Error('kaput\r\nsecond line');
    }),
    specOf('reject', 1, () => Promise.reject(new Error('async kaput'))),
    specOf('fail', 1, () => error('WRONGTYPE nope')),
    specOf('client', -2, undefined, {
      subcommands: [specOf('client|setname', 3, () => OK), specOf('client|id', 2, () => simple('1'), { flags: ['noauth'] })],
    }),
  ];
  const stats = new ServerStats();
  const slowlog = new Slowlog();
  const logs: string[] = [];
  const d = new Dispatcher({ table: new CommandTable(specs), stats, slowlog, log: (_l, m) => logs.push(m) });
  const client: ClientState = {
    id: 7, name: 'n', protocol: 2, authenticated: config.getString('requirepass') === '', addr: '127.0.0.1:1', laddr: '127.0.0.1:2',
    createdAtMs: nowMs, lastCommandAtMs: nowMs, lastCommand: 'NULL', closeAfterReply: false,
  };
  const ctx: CommandContext = { client, server: { config, keyspace: {} as unknown as Keyspace, now: () => nowMs } };
  return { d, ctx, stats, slowlog, config, logs, advance: (ms: number) => (nowMs += ms) };
}

t.test('unknown command: Redis 7 text', async (t) => {
  const { d, ctx } = setup();
  t.same(d.dispatch(ctx, b('foo', 'a', 'b')), error("ERR unknown command 'foo', with args beginning with: 'a' 'b' "));
  t.same(d.dispatch(ctx, b('foo')), error("ERR unknown command 'foo', with args beginning with: "));
  t.same(d.dispatch(ctx, b('x\r\ny')), error("ERR unknown command 'x  y', with args beginning with: "), 'CR/LF replaced');
  // The argument list is cut at 128 characters as Redis does.
  const long = 'z'.repeat(200);
  const msg = unknownCommandError(b('foo', long, 'more'));
  t.equal(msg, `ERR unknown command 'foo', with args beginning with: '${'z'.repeat(128)}' `);
});

t.test('lookup is case-insensitive; arity exact and at-least', async (t) => {
  const { d, ctx } = setup();
  t.same(d.dispatch(ctx, b('GeT', 'k')), bulk(Buffer.from('k')));
  t.same(d.dispatch(ctx, b('get')), error("ERR wrong number of arguments for 'get' command"));
  t.same(d.dispatch(ctx, b('GET', 'a', 'b')), error("ERR wrong number of arguments for 'get' command"));
  t.same(d.dispatch(ctx, b('ping')), simple('PONG'));
  t.same(d.dispatch(ctx, b('ping', 'x', 'y')), simple('PONG'), 'negative arity is a minimum');
});

t.test('subcommands', async (t) => {
  const { d, ctx } = setup();
  t.same(d.dispatch(ctx, b('client', 'SETNAME', 'x')), OK);
  t.same(d.dispatch(ctx, b('client', 'nope')), error("ERR unknown subcommand 'nope'. Try CLIENT HELP."));
  t.same(d.dispatch(ctx, b('client', 'setname')), error("ERR wrong number of arguments for 'client|setname' command"));
  t.same(d.dispatch(ctx, b('CLIENT')), error("ERR wrong number of arguments for 'client' command"));
});

t.test('authentication gating: NOAUTH after the unknown and arity checks', async (t) => {
  const { d, ctx, stats } = setup([['requirepass', 'secret']]);
  t.equal(ctx.client.authenticated, false);
  t.same(d.dispatch(ctx, b('get', 'k')), error('NOAUTH Authentication required.'));
  t.same(d.dispatch(ctx, b('client', 'setname', 'x')), error('NOAUTH Authentication required.'));
  t.same(d.dispatch(ctx, b('client', 'id')), simple('1'), 'noauth subcommand allowed');
  t.same(d.dispatch(ctx, b('nope')), error("ERR unknown command 'nope', with args beginning with: "));
  t.same(d.dispatch(ctx, b('get')), error("ERR wrong number of arguments for 'get' command"));
  t.equal(stats.command('get').rejectedCalls, 2);
  t.same(d.dispatch(ctx, b('auth', 'secret')), OK);
  t.same(d.dispatch(ctx, b('get', 'k')), bulk(Buffer.from('k')));
  t.equal(stats.errors.get('NOAUTH'), 2);
});

t.test('async handlers, exceptions and failed calls', async (t) => {
  const { d, ctx, stats, logs } = setup();
  const p = d.dispatch(ctx, b('later'));
  t.ok(p instanceof Promise, 'async handler gives a promise');
  t.same(await p, simple('LATER'));
  t.same(d.dispatch(ctx, b('boom')), error('ERR kaput  second line'), 'a throw becomes one error line');
  t.same(await d.dispatch(ctx, b('reject')), error('ERR async kaput'));
  t.same(d.dispatch(ctx, b('fail')), error('WRONGTYPE nope'));
  t.equal(stats.command('boom').failedCalls, 1);
  t.equal(stats.command('fail').failedCalls, 1);
  t.equal(stats.command('later').calls, 1);
  t.ok(stats.command('later').usec < 50_000, 'an async command\'s wait is not execution time (Redis leaves out blocked time)');
  t.equal(logs.length, 2, 'handler failures are logged');
  t.equal(ctx.client.lastCommand, 'fail');
  t.equal(stats.totalCommandsProcessed, 4);
});

t.test('slowlog: threshold, truncation, max length', async (t) => {
  const { d, ctx, slowlog, config } = setup([['slowlog-log-slower-than', '0'], ['slowlog-max-len', '2']]);
  d.dispatch(ctx, b('get', 'x'.repeat(300)));
  d.dispatch(ctx, b('ping', ...Array.from({ length: 40 }, (_, i) => String(i))));
  d.dispatch(ctx, b('ping'));
  t.equal(slowlog.length, 2, 'capped at slowlog-max-len');
  const r = slowlog.toReply(-1);
  t.equal(r.kind, 'array');
  if (r.kind !== 'array') return;
  const [newest, older] = r.items;
  t.match(newest, { kind: 'array', items: [{ value: 2 }, {}, {}, { items: [{ value: Buffer.from('ping') }] }, { value: '127.0.0.1:1' }, { value: 'n' }] });
  t.match(older, { kind: 'array', items: [{ value: 1 }, {}, {}, { items: { length: 32 } }] });
  if (older?.kind === 'array' && older.items[3]?.kind === 'array') {
    t.same(older.items[3].items[31], bulk(Buffer.from('... (10 more arguments)')));
  }
  config.set([['slowlog-log-slower-than', '-1']]);
  d.dispatch(ctx, b('ping'));
  t.equal(slowlog.length, 2, '-1 logs nothing');
  slowlog.reset();
  config.set([['slowlog-log-slower-than', '0']]);
  d.dispatch(ctx, b('get', 'x'.repeat(300)));
  const e = slowlog.toReply(1);
  if (e.kind === 'array' && e.items[0]?.kind === 'array' && e.items[0].items[3]?.kind === 'array') {
    t.same(e.items[0].items[3].items[1], bulk(Buffer.from('x'.repeat(128) + '... (172 more bytes)')));
  } else t.fail('entry shape');
});

t.test('slowlog: the threshold is read once from a config that reports changes, again after its change', async (t) => {
  const { d, ctx, slowlog, config } = setup([['slowlog-log-slower-than', '-1']]);
  let reads = 0;
  const counting = {
    getString: (k: string) => config.getString(k),
    getBool: (k: string) => config.getBool(k),
    getNumber: (k: string) => {
      if (k === 'slowlog-log-slower-than') reads++;
      return config.getNumber(k);
    },
    onChange: (l: (key: string) => void) => config.onChange(l),
  };
  const c: CommandContext = { client: ctx.client, server: { ...ctx.server, config: counting } };
  for (let i = 0; i < 10; i++) d.dispatch(c, b('ping'));
  t.same(await d.dispatch(c, b('later')), simple('LATER'));
  t.equal(reads, 1, 'read by the first command only');
  t.equal(slowlog.length, 0);
  config.set([['slowlog-max-len', '5']]);
  d.dispatch(c, b('ping'));
  t.equal(reads, 1, 'another key changed: not read again');
  config.set([['slowlog-log-slower-than', '0']]);
  d.dispatch(c, b('ping'));
  t.equal(reads, 2, 'read again after its change');
  t.equal(slowlog.length, 1, 'the new threshold applies to the next command');
});

t.test('slowlog: an async command is timed by its run on the thread, not by its wait', async (t) => {
  const { d, ctx, stats, slowlog } = setup([['slowlog-log-slower-than', '20000']]);
  t.same(await d.dispatch(ctx, b('later')), simple('LATER'));
  t.equal(slowlog.length, 0, 'a 100 ms wait with no work is not slow');
  t.same(await d.dispatch(ctx, b('spinlater')), simple('LATER'));
  t.equal(slowlog.length, 1, '30 ms on the thread is slow');
  const usec = stats.command('spinlater').usec;
  t.ok(usec >= 30_000 && usec < 100_000, `spinlater counted ${usec} us: its run, not its 100 ms wait`);
});

t.test("chained timing: a command of a run is timed from the previous handler's end", async (t) => {
  const { d, ctx, stats } = setup();
  const spin = (ms: number): void => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  // Not chained: the gap before a command is not its time.
  d.start(ctx, b('ping'));
  spin(30);
  d.start(ctx, b('get', 'k'));
  t.ok(stats.command('get').usec < 20_000, `unchained get counted ${stats.command('get').usec} us, not the 30 ms before it`);
  // Chained: the work between two commands of one run counts to the second.
  d.start(ctx, b('ping'));
  spin(30);
  d.start(ctx, b('get', 'k'), true);
  t.ok(stats.command('get').usec >= 30_000, `chained get counted ${stats.command('get').usec} us`);
  // A command that ran no handler (unknown, arity) breaks the chain: the next one reads the clock.
  const before = stats.command('ping').usec;
  d.start(ctx, b('get', 'k'));
  d.start(ctx, b('nosuch'), true);
  spin(30);
  d.start(ctx, b('ping'), true);
  t.ok(stats.command('ping').usec - before < 20_000, 'no chain across a command without a handler');
  t.equal(stats.command('get').calls, 3);
});

t.test('table rejects bad specs', async (t) => {
  t.throws(() => new CommandTable([specOf('Get', 2, () => OK)]));
  t.throws(() => new CommandTable([specOf('get', 2, () => OK), specOf('get', 2, () => OK)]));
  t.throws(() => new CommandTable([specOf('x', -2, undefined, { subcommands: [specOf('y|z', 2, () => OK)] })]));
});

t.test('plansCommute: a write conflicts with any command sharing a key; reads commute', async (t) => {
  const one = (key: string, write: boolean): OverlapPlan => ({ key, keys: undefined, write });
  const many = (keys: string[], write: boolean): OverlapPlan => ({ key: undefined, keys, write });
  const cases: [OverlapPlan, OverlapPlan, boolean][] = [
    [one('a', true), one('a', true), false],
    [one('a', true), one('a', false), false],
    [one('a', false), one('a', true), false],
    [one('a', false), one('a', false), true],
    [one('a', true), one('b', true), true],
    [one('a', true), many(['b', 'a'], false), false],
    [many(['b', 'a'], true), one('a', false), false],
    [many(['b', 'c'], true), one('a', true), true],
    [many(['b', 'c'], true), many(['d', 'c'], false), false],
    [many(['b', 'c'], true), many(['d', 'e'], true), true],
    [many(['b', 'c'], false), many(['b', 'c'], false), true],
  ];
  for (const [a, b, want] of cases) t.equal(plansCommute(a, b), want, `${JSON.stringify(a)} / ${JSON.stringify(b)}`);
});

t.test('overlapPlan: one-key commands name their key, multi-key ones list them', async (t) => {
  const specs: CommandSpec[] = [
    { name: 'k1', arity: 3, flags: ['write'], firstKey: 1, lastKey: 1, keyStep: 1, summary: '', group: 'test', handler: () => OK },
    { name: 'kn', arity: -2, flags: ['readonly'], firstKey: 1, lastKey: -1, keyStep: 1, summary: '', group: 'test', handler: () => OK },
  ];
  const d = new Dispatcher({ table: new CommandTable(specs), stats: new ServerStats(), slowlog: new Slowlog(), log: () => undefined });
  t.same(d.overlapPlan(b('k1', 'x', 'v')), { key: 'x', keys: undefined, write: true });
  t.same(d.overlapPlan(b('kn', 'x', 'y')), { key: undefined, keys: ['x', 'y'], write: false });
});
