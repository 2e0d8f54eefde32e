/**
 * The `ringkv` command as a process: starts, logs the ready line, answers, stops cleanly on
 * SIGTERM (exit 0); bad config, a port in use and an unusable data dir give one line on stderr
 * and exit 1; `ringkv cluster` starts K nodes and stops them all on SIGTERM.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../../src/cli/args.js';
import { nodeArgs } from '../../src/cli/cluster.js';
import { freePortRun } from '../helpers/ports.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** How long a process stopped in teardown gets after SIGTERM before SIGKILL. */
const TEARDOWN_GRACE_MS = 15_000;

function run(t: { teardown(fn: () => unknown): void }, args: string[]): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // SIGTERM first: `ringkv cluster` starts its nodes detached and stops them only on a signal it
  // can handle, so a SIGKILL alone would leave them running (and writing into the temp dir that
  // the next teardown removes). SIGKILL only if it has not exited after the grace period.
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), TEARDOWN_GRACE_MS);
    await exit;
    clearTimeout(timer);
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function ask(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(request));
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.endsWith('\r\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'ringkv-cli-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

t.test('argument parsing', async (t) => {
  t.same(parseCli(['--port', '7001', '--bind', '127.0.0.1', '::1']), { kind: 'node', conf: undefined, overrides: [['port', '7001'], ['bind', '127.0.0.1 ::1']] });
  t.same(parseCli(['my.conf', '--port', '1']), { kind: 'node', conf: 'my.conf', overrides: [['port', '1']] });
  t.same(parseCli(['--conf', 'a.conf']), { kind: 'node', conf: 'a.conf', overrides: [] });
  t.same(parseCli(['cluster', '--nodes', '3', '--appendfsync', 'always']), {
    kind: 'cluster', nodes: 3, basePort: 7001, dir: './data', conf: undefined, overrides: [['appendfsync', 'always']],
  });
  t.throws(() => parseCli(['--port']), { message: 'option --port needs a value' });
  t.throws(() => parseCli(['cluster']), { message: /needs --nodes/ });
  t.throws(() => parseCli(['cluster', '--nodes', '0']), { message: /--nodes must be a number from 1/ });
  t.throws(() => parseCli(['cluster', '--nodes', '2', '--port', '5']), { message: /use --base-port/ });
  t.same(nodeArgs({ nodes: 2, basePort: 7001, dir: 'd', conf: undefined, overrides: [['bind', '127.0.0.1 ::1']] }, 1), {
    port: 7002,
    dir: path.join('d', '7002'),
    args: ['--bind', '127.0.0.1', '::1', '--port', '7002', '--dir', path.join('d', '7002'), '--cluster-port', '17002', '--seeds', '127.0.0.1:7001@17001,127.0.0.1:7002@17002'],
  });
  t.same(nodeArgs({ nodes: 2, basePort: 7001, dir: 'd', conf: undefined, overrides: [['cluster-port', '9000']] }, 0).args.slice(-4), [
    '--cluster-port', '9000', '--seeds', '127.0.0.1:7001@9000,127.0.0.1:7002@9001',
  ], 'an explicit --cluster-port is the first node\'s; the others follow');
  t.throws(() => parseCli(['cluster', '--nodes', '2', '--base-port', '60000']), { message: /cluster bus ports 70000\.\.70001 do not fit below 65536; give the first one with --cluster-port/ });
});

t.test('a node starts, answers, and exits 0 on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const logfile = path.join(dir, 'node.log');
  const p = run(t, ['--port', '0', '--bind', '127.0.0.1', '--dir', path.join(dir, 'data'), '--logfile', logfile]);
  const readLog = (): string => {
    try {
      return readFileSync(logfile, 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor(() => p.child.exitCode !== null || /Ready to accept connections tcp port=\d+/.test(readLog()), 'ready line in the logfile');
  t.equal(p.stdout(), '', 'with logfile set, nothing goes to stdout');
  const log = readLog();
  const port = Number(/Ready to accept connections tcp port=(\d+)/.exec(log)?.[1]);
  t.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info /m, 'log lines: ISO time, level, message');
  t.equal(await ask(port, 'PING\r\n'), '+PONG\r\n');
  p.child.kill('SIGTERM');
  t.equal(await p.exit, 0, 'exit code 0');
  t.match(await readFile(logfile, 'utf8'), /received SIGTERM[\s\S]*ready to exit/);
});

t.test('SHUTDOWN stops the process with exit 0', async (t) => {
  const dir = await tempDir(t);
  const p = run(t, ['--port', '0', '--bind', '127.0.0.1', '--dir', path.join(dir, 'data')]);
  await waitFor(() => p.child.exitCode !== null || /Ready to accept connections tcp port=\d+/.test(p.stdout()), 'ready line');
  const port = Number(/Ready to accept connections tcp port=(\d+)/.exec(p.stdout())?.[1]);
  t.equal(await ask(port, 'SET k v\r\n'), '+OK\r\n');
  const s = net.connect({ host: '127.0.0.1', port }, () => s.write('SHUTDOWN NOSAVE\r\n'));
  s.on('error', () => undefined);
  let reply = '';
  s.on('data', (d: Buffer) => (reply += d.toString()));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  t.equal(await p.exit, 0, 'exit code 0');
  await closed;
  t.equal(reply, '', 'no reply, the connection is closed');
  t.match(p.stdout(), /User requested shutdown[\s\S]*ready to exit/);
});

t.test('startup errors: one line on stderr, exit 1', async (t) => {
  const dir = await tempDir(t);
  const bad = path.join(dir, 'bad.conf');
  await writeFile(bad, 'port 1\nnot-a-key 5\n');
  const cases: [string, string[], RegExp][] = [
    ['unknown key in file', ['--conf', bad], /^ringkv: .*bad\.conf line 2: unknown config key 'not-a-key'\n$/],
    ['unknown option', ['--no-such-key', '1'], /^ringkv: --no-such-key: unknown config key 'no-such-key'\n$/],
    ['bad value', ['--port', 'seven'], /^ringkv: --port: bad value 'seven' for 'port': argument couldn't be parsed into an integer\n$/],
    ['missing file', ['--conf', path.join(dir, 'nope.conf')], /^ringkv: cannot read config file .*nope\.conf: ENOENT\n$/],
    ['data dir not usable', ['--port', '0', '--dir', path.join(bad, 'sub')], /^ringkv: data dir .*bad\.conf\/sub is not writable: ENOTDIR\n$/],
  ];
  const procs = cases.map(([, args]) => run(t, args));
  for (const [i, [what, , expected]] of cases.entries()) {
    const p = procs[i]!;
    t.equal(await p.exit, 1, `${what}: exit 1`);
    t.match(p.stderr(), expected, `${what}: one clear line`);
  }
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => holder.close());
  const busy = (holder.address() as net.AddressInfo).port;
  const p = run(t, ['--port', String(busy), '--bind', '127.0.0.1', '--dir', path.join(dir, 'd2')]);
  t.equal(await p.exit, 1, 'port in use: exit 1');
  t.equal(p.stderr(), `ringkv: cannot listen on 127.0.0.1:${busy}: address already in use\n`);
});

t.test('ringkv cluster starts K nodes and stops them all on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  // Four consecutive free ports: the nodes' client ports base, base+1 and bus ports base+2, base+3.
  const base = await freePortRun(4);
  const bus = base + 2;
  const p = run(t, ['cluster', '--nodes', '2', '--base-port', String(base), '--cluster-port', String(bus), '--dir', dir, '--bind', '127.0.0.1']);
  await waitFor(() => p.stdout().includes('Press Ctrl-C') || p.child.exitCode !== null, 'cluster ready', 30000);
  t.match(p.stdout(), new RegExp(`127\\.0\\.0\\.1:${base} `));
  t.match(p.stdout(), new RegExp(`127\\.0\\.0\\.1:${base + 1} `));
  t.match(p.stdout(), /The nodes form one cluster/);
  t.equal(await ask(base, 'PING\r\n'), '+PONG\r\n');
  t.equal(await ask(base + 1, 'PING\r\n'), '+PONG\r\n');
  // Gossip joins them: each node's CLUSTER NODES lists both.
  let nodes = '';
  for (const deadline = Date.now() + 15000; Date.now() < deadline && !nodes.includes(`:${base + 1}@${bus + 1}`); ) {
    nodes = await ask(base, 'CLUSTER NODES\r\n');
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(nodes, `127.0.0.1:${base + 1}@${bus + 1}`, 'gossip joined the two nodes');
  p.child.kill('SIGTERM');
  t.equal(await p.exit, 0);
  t.match(p.stdout(), /all nodes stopped/);
  await t.rejects(ask(base, 'PING\r\n'), 'node 1 is gone');
  await t.rejects(ask(base + 1, 'PING\r\n'), 'node 2 is gone');
});
