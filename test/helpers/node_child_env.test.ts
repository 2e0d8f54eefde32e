// nodeSpawnCommand: ringkv nodes started by tests run without tap's NODE_OPTIONS hooks, as the
// same process (pid) the helper signals.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { ENV_BIN, nodeSpawnCommand } from './node_process.js';

t.test('plain node outside tap', async (t) => {
  t.same(nodeSpawnCommand(['a.js', '--x'], {}), { command: process.execPath, args: ['a.js', '--x'] });
  t.same(nodeSpawnCommand(['a.js'], { NODE_OPTIONS: '--max-old-space-size=100' }).command, process.execPath);
});

t.test('under tap: through env -u NODE_OPTIONS; the child sees no tap hooks and keeps the pid', async (t) => {
  t.match(process.env.NODE_OPTIONS ?? '', /@tapjs\//, 'tap puts its hooks in NODE_OPTIONS');
  const { command, args } = nodeSpawnCommand(['-e', 'process.stdout.write(JSON.stringify([process.pid, process.env.NODE_OPTIONS ?? null, process.execArgv]))']);
  t.equal(command, ENV_BIN);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  const [pid, options, execArgv] = JSON.parse(out) as [number, string | null, string[]];
  t.equal(pid, child.pid, 'env execs node in the same process');
  t.equal(options, null, 'no NODE_OPTIONS');
  t.notOk(execArgv.some((a) => a.startsWith('--import')), 'no --import hooks');
  // For contrast: a plain spawn under tap gets them back.
  t.match(execFileSync(process.execPath, ['-e', 'process.stdout.write(process.env.NODE_OPTIONS ?? "")']).toString(), /@tapjs\//);
});
