// `ringkv cluster join|leave|wait` (issue 6: a progress bar for a join or leave it waits on):
// the pure parsing, progress and rendering, then the real CLI spawned against a real cluster:
// `join` on a 4th node that streams the data of 3 others prints progress lines and "done" when
// it is up, `wait` after CONFIG SET weight redraws one TTY line, and `leave` sends CLUSTER LEAVE
// and prints progress until the node has left and stopped.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Redis } from 'ioredis';
import { parseCli } from '../../src/cli/args.js';
import { finished, parseStreamSample, plainLineDue, progressOf, renderProgress, type StreamSample } from '../../src/cli/cluster_progress.js';
import { memberAddresses, runClusterWait } from '../../src/cli/cluster_wait.js';
import { cmd, connectIoredis } from '../helpers/ioredis_client.js';
import { startNode, startNodes } from '../helpers/node_process.js';
import { freePorts, LOOPBACK_HOST } from '../helpers/ports.js';
import type { TeardownOwner } from '../helpers/server_process.js';
import { clusterInfo, elasticConfig, nodeFlags, waitUntil, Workload } from '../cluster/elastic_harness.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BAR_LINE = /^(join|leave|wait) 127\.0\.0\.1:\d+ \[[#-]{30}\] +\d+%  \d+\/\d+ slots  [\d.]+ (B|KB|MB)  \S+/;

const s = (over: Partial<StreamSample> = {}): StreamSample => ({ state: 'idle', slotsStreamed: 0, slotsRemaining: 0, bytesStreamed: 0, ringSlotsMoving: 0, ringFingerprint: 'f1', ...over });

t.test('pure: fields, progress, bar, end conditions, arguments', async (t) => {
  t.same(parseStreamSample('cluster_state:ok\r\nstream_state:joining\r\nstream_slots_remaining:30\r\nstream_slots_streamed:10\r\nstream_bytes_streamed:2048\r\nstream_ring_slots_moving:40\r\ncluster_ring_fingerprint:f1\r\n'), s({ state: 'joining', slotsRemaining: 30, slotsStreamed: 10, bytesStreamed: 2048, ringSlotsMoving: 40 }));
  t.equal(parseStreamSample('cluster_state:ok\r\n'), undefined, 'no stream fields: undefined');
  const join = progressOf('join', new Map([['target', s({ slotsStreamed: 10, slotsRemaining: 30, bytesStreamed: 2048 })]]), new Map([['target', s({ slotsStreamed: 5 })]]));
  t.same(join, { done: 10, remaining: 30, bytes: 2048, fraction: 0.25 }, 'join counts from the start of the join');
  const leave = progressOf('leave', new Map([['a', s({ slotsStreamed: 110, slotsRemaining: 50 })], ['b', s({ slotsStreamed: 20, slotsRemaining: 0 })]]), new Map([['a', s({ slotsStreamed: 100 })], ['b', s({ slotsStreamed: 0 })]]));
  t.same([leave.done, leave.remaining], [30, 50], 'leave sums the other members since the wait began');
  t.equal(renderProgress('join 127.0.0.1:7004', join, 'joining', false), `join 127.0.0.1:7004 [${'#'.repeat(8)}${'-'.repeat(22)}]  25%  10/40 slots  2.0 KB  joining`);
  t.match(renderProgress('join 127.0.0.1:7004', join, 'idle', true), /\[#{30}\] 100%/, 'done: a full bar');
  t.ok(finished('join', s({ state: 'idle' }), false, new Map()));
  t.notOk(finished('join', s({ state: 'joining' }), false, new Map()));
  t.notOk(finished('join', s({ state: 'streaming', slotsRemaining: 3 }), false, new Map()));
  t.ok(finished('leave', undefined, true, new Map()), 'leave: the node stopped');
  t.ok(finished('leave', s({ state: 'left' }), false, new Map()));
  t.notOk(finished('leave', s({ state: 'leaving' }), false, new Map()));
  t.notOk(finished('wait', s({ ringSlotsMoving: 5 }), false, new Map([['a', s()]])));
  t.notOk(finished('wait', s(), false, new Map([['a', s({ slotsRemaining: 1 })]])));
  t.ok(finished('wait', s(), false, new Map([['a', s()]])));
  t.notOk(finished('wait', s(), false, new Map([['a', s({ ringSlotsMoving: 7 })]])), 'wait: another node still sees slots moving');
  t.notOk(finished('wait', s(), false, new Map([['a', s({ ringFingerprint: 'f0' })]])), 'wait: another node has not heard of the change');
  t.ok(plainLineDue(undefined, 0, 0));
  t.notOk(plainLineDue(20, 25, 100));
  t.ok(plainLineDue(20, 30, 100));
  t.ok(plainLineDue(20, 20, 6000));
  t.same(memberAddresses('abc 127.0.0.1:7001@17001 myself,master - 0 0 0 connected 0-5\ndef 127.0.0.1:7002@17002 master,joining - 0 0 0 connected\nxyz :0@0 noaddr - 0 0 0 disconnected\n'), [
    { host: '127.0.0.1', port: 7001 },
    { host: '127.0.0.1', port: 7002 },
  ]);
  t.same(parseCli(['cluster', 'leave', '--port', '7003']), { kind: 'cluster-wait', action: 'leave', host: '127.0.0.1', port: 7003, timeoutSec: 0 });
  t.same(parseCli(['cluster', 'join', '--port', '7004', '--host', '::1', '--timeout-sec', '60']), { kind: 'cluster-wait', action: 'join', host: '::1', port: 7004, timeoutSec: 60 });
  t.throws(() => parseCli(['cluster', 'wait']), { message: /needs --port/ });
  t.throws(() => parseCli(['cluster', 'join', '--port', '1', '--nodes', '3']), { message: /not --nodes/ });
  t.equal(parseCli(['cluster', '--nodes', '2']).kind, 'cluster', 'the local cluster command is unchanged');
});

/** Runs the CLI to its end; resolves with its exit code and stdout lines. */
function runCli(t: TeardownOwner, args: string[], timeoutMs: number): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ringkv ${args.join(' ')} did not end within ${timeoutMs} ms; output:\n${out}`));
    }, timeoutMs);
    t.teardown(() => {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: out.split('\n').filter((l) => l.length > 0) });
    });
  });
}

t.test('ringkv cluster join / wait / leave on a real cluster', async (t) => {
  const busPorts = await freePorts(4);
  const seedOf = (port: number, bus: number): string => `${LOOPBACK_HOST}:${port}@${bus}`;
  // Slow streaming (about 10 s for the join's share of 600 KB) so the CLI, which takes a moment
  // to start on a loaded machine, sees the join in progress.
  const extra = { 'stream-max-bytes-per-sec': '48kb' };
  const nodes = await startNodes(t, 3, (i, ports) => ({ config: elasticConfig(busPorts[i]!, ports.map((p, j) => seedOf(p, busPorts[j]!)).join(','), extra) }));
  const seeds = nodes.map((n, i) => seedOf(n.port, busPorts[i]!)).join(',');
  const clients: Redis[] = await Promise.all(nodes.map((n) => connectIoredis(t, n.port)));
  await waitUntil('3 nodes up', async () => (await Promise.all(clients.map(nodeFlags))).every((f) => f.size === 3 && [...f.values()].every((x) => !x.includes('joining'))));
  const w = new Workload('pk', 1000);
  await w.preload(clients, 600);
  t.same(w.failures, [], 'preload acknowledged');

  // join: a 4th node (join-streaming auto: the cluster holds data, so it streams)
  const d = await startNode(t, { config: elasticConfig(busPorts[3]!, seeds, extra) });
  const join = await runCli(t, ['cluster', 'join', '--port', String(d.port), '--timeout-sec', '120'], 150_000);
  t.equal(join.code, 0, 'join: exit 0');
  const bars = join.lines.filter((l) => BAR_LINE.test(l));
  t.ok(bars.length >= 2, `join: ${bars.length} progress lines, e.g. ${JSON.stringify(bars[0])}`);
  t.notOk(join.lines.some((l) => l.includes('\r')), 'not a TTY: plain lines, no carriage returns');
  t.match(bars[bars.length - 1] ?? '', /\[#{30}\] 100%/, 'the last bar is full');
  t.match(join.lines[join.lines.length - 1] ?? '', /^join 127\.0\.0\.1:\d+: done in [\d.]+ s$/, 'join: done line');
  const dc = await connectIoredis(t, d.port);
  const di = await clusterInfo(dc);
  t.equal(di.get('stream_state'), 'idle', 'the node is up and idle once join returned');
  const streamed = Number(di.get('stream_slots_streamed'));
  t.match(bars[bars.length - 1] ?? '', new RegExp(` ${streamed}/${streamed} slots `), `the last bar counts the ${streamed} slot copies the node streamed`);

  // wait (in-process, as a TTY): a weight change on node 1
  t.equal(String(await cmd(clients[1]!, 'CONFIG', 'SET', 'weight', '2')), 'OK');
  let tty = '';
  const code = await runClusterWait({ action: 'wait', host: LOOPBACK_HOST, port: nodes[1]!.port, timeoutSec: 120 }, { tty: true, write: (x) => (tty += x) });
  t.equal(code, 0, 'wait: done');
  t.ok(tty.startsWith('\r') && tty.includes('\x1b[K'), 'TTY: the bar is redrawn in place');
  t.match(tty, /\n.*wait 127\.0\.0\.1:\d+: done in/, 'TTY: a newline after the bar, then the done line');
  t.equal((await clusterInfo(clients[0]!)).get('stream_ring_slots_moving'), '0', 'nothing moving after wait');

  // leave: the 4th node leaves again and stops
  const leave = await runCli(t, ['cluster', 'leave', '--port', String(d.port), '--timeout-sec', '120'], 150_000);
  t.equal(leave.code, 0, `leave: exit 0 (${leave.lines.slice(-2).join(' | ')})`);
  t.ok(leave.lines.filter((l) => BAR_LINE.test(l)).length >= 1, 'leave: progress lines');
  t.match(leave.lines[leave.lines.length - 1] ?? '', /^leave 127\.0\.0\.1:\d+: done in/, 'leave: done line');
  await waitUntil('the left node stopped', async () => !d.running);
  const bad = await runCli(t, ['cluster', 'join', '--port', String(d.port)], 30_000);
  t.equal(bad.code, 1, 'join on a port nobody listens on: exit 1');
  t.match(bad.lines.join('\n'), /cannot reach/, 'and says why');
});
