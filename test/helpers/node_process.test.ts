/**
 * The contracts of the process helpers the black-box and cluster suites rely on: distinct free
 * ports, readiness, restart on the same port and dir, kill -9, stop by pid, temp dirs removed,
 * and a clear error with the node's output when it cannot start.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import { freePorts } from './ports.js';
import { startNode, startNodes, createNode, CLI_PATH } from './node_process.js';
import { ProcessStartError, pingAnswers } from './server_process.js';
import { exchange, respCommand } from './raw_client.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

t.test('freePorts gives distinct ports', async (t) => {
  const ports = await freePorts(20);
  t.equal(new Set(ports).size, 20);
  for (const p of ports) t.ok(p > 0 && p < 65536);
});

t.test('the CLI path resolves next to the compiled helpers', async (t) => {
  t.match(CLI_PATH, /\/src\/cli\/main\.js$/);
  t.ok(await exists(CLI_PATH), `${CLI_PATH} exists`);
});

t.test('start N nodes, kill -9 one, start it again on the same port and dir', async (t) => {
  const nodes = await startNodes(t, 2);
  t.equal(new Set(nodes.map((n) => n.port)).size, 2, 'distinct ports');
  for (const n of nodes) t.ok(await pingAnswers(n.port), `node on ${n.port} answers PING`);
  const [a] = nodes as [NonNullable<(typeof nodes)[0]>];
  const set = await exchange(a.port, respCommand('SET', 'helper:k', 'v'), { quietMs: 100 });
  t.equal(set.data.toString(), '+OK\r\n');
  const { port, dir } = a;
  const pid1 = a.pid;
  await a.kill9();
  t.equal(a.running, false);
  t.equal(alive(pid1), false, 'the killed pid is gone');
  t.equal(a.process.exitStatus?.signal, 'SIGKILL');
  await a.start();
  t.not(a.pid, pid1, 'a new process');
  t.equal(a.port, port, 'same port');
  t.equal(a.dir, dir, 'same dir');
  const get = await exchange(a.port, respCommand('GET', 'helper:k'), { quietMs: 100 });
  t.equal(get.data.toString(), '$1\r\nv\r\n', 'data back after kill -9');
  t.match(a.fullLog, /Ready to accept connections tcp port=/);
});

t.test('restart stops with SIGTERM and keeps port and dir; dispose removes the temp dir', async (t) => {
  const node = await startNode(null);
  try {
    const pid1 = node.pid;
    await node.restart();
    t.equal(alive(pid1), false);
    t.equal(node.process.running, true);
    t.ok(await pingAnswers(node.port));
    t.ok(await exists(node.dir));
  } finally {
    await node.dispose();
  }
  t.equal(node.running, false);
  t.equal(await exists(node.dir), false, 'temp dir removed');
});

t.test('a dir passed in is not removed', async (t) => {
  const dir = await fs.mkdtemp('/tmp/ringkv-helper-own-');
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const node = await startNode(null, { dir });
  await node.dispose();
  t.equal(await exists(dir), true);
});

t.test('a node that cannot start fails with its output', async (t) => {
  const node = await createNode(t, { config: { 'no-such-config-key': 'x' }, readyTimeoutMs: 10_000 });
  const err = await node.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ProcessStartError, 'ProcessStartError');
  t.match((err as Error).message, /exited before it was ready/);
  t.match((err as ProcessStartError).output, /no-such-config-key/, 'the node says which key is wrong');
});
