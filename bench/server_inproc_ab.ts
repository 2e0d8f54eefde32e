/**
 * Before/after of the single node's own request path with no sockets: each run is a child
 * process that starts a node of one build (its keyspace and RingkvServer, appendfsync everysec,
 * a fresh data dir), attaches CLIENTS Connections to in-memory sockets, preloads 100k keys with
 * SET -P 16, then drives the measured workload the way redis-benchmark does (every client sends
 * PIPELINE requests, waits for their replies, sends again; a client's requests arrive as one
 * 'data' event, each client's in its own event-loop callback) and prints the process's CPU time
 * per request (user + system, every thread: the table-build worker and GC helpers too).
 *
 * What it leaves out is what both builds share: the kernel's socket work (read/write on
 * loopback: 20-60% of a node's CPU under redis-benchmark) and the benchmark client competing for
 * the cores. So a ratio here is of the user-space request path (parser, dispatcher, commands,
 * keyspace, storage engine, encoder, the driver's own small share). It is NOT quieter on the
 * shared 2-core VM: session 9 saw one build's rounds differ by up to 40% at load 8-12 and B/A
 * per round from 0.84 to 1.22 at load 1-5 (GET -P 16), as wide as bench/server_ab.sh's. Take
 * many rounds, pair them, and confirm a change with bench/server_ab.sh.
 *
 *   node .build/x/bench/server_inproc_ab.js --rounds 6 --workloads set:16,get:16,set:1,get:1 BUILD_A BUILD_B
 *   (BUILD = a tsc outDir holding src/server/node.js; runs alternate A, B, A, B, ...)
 *   REQUESTS=n (measured requests per run; default 60k at -P 1, 400k at -P 16; a quarter as
 *   many again run first, unmeasured, to warm the JIT), KEYS=n (default 100000)
 *   CALLGRIND=1: each run under valgrind's callgrind, counting instructions per request of the
 *   measured part only (user space, every thread); e.g. KEYS=20000 REQUESTS=10000 (~1-2 min a
 *   run). The counts still move between runs of one build (JIT and GC timing): the same build
 *   in two directories, side by side, gave 92.8k vs 85.5k per SET -P 1 (0.92x), and one build's
 *   SET -P 16 runs ranged 78-89k. Under valgrind a clock read (Date.now ~300 instructions,
 *   performance.now ~460) weighs more than on the CPU (~60 ns each), so a change that saves
 *   clock reads looks bigger here than it is.
 *
 * Keys are redis-benchmark's (`key:` + 12 digits, random in [0, 100000)), values 100 bytes; GET
 * reads keys that all exist (the preload writes every key once).
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** redis-benchmark -r 100000 (KEYS=n for fewer, e.g. under valgrind). */
const KEYSPACE_KEYS = Number(process.env.KEYS ?? 100_000);
const VALUE_BYTES = 100;
const CLIENTS = 50;
const PRELOAD_PIPELINE = 16;
const DEFAULT_REQUESTS: Record<string, number> = { 1: 60_000, 16: 400_000 };

/** The part of net.Socket a Connection uses, in memory: counts what the server writes. */
class MemorySocket extends EventEmitter {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 50000;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 6379;
  writableLength = 0;
  written = 0;
  onWrite: (() => void) | undefined;
  write(b: Buffer): boolean {
    this.written += b.length;
    this.onWrite?.();
    return true;
  }
  cork(): void {}
  uncork(): void {}
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    return this;
  }
}

function key(n: number): string {
  return `key:${String(n).padStart(12, '0')}`;
}

const VALUE = 'x'.repeat(VALUE_BYTES);
const SET_REPLY_BYTES = 5; // +OK\r\n
const GET_REPLY_BYTES = `$${VALUE_BYTES}\r\n`.length + VALUE_BYTES + 2;

function request(test: string, n: number): string {
  const k = key(n);
  if (test === 'set') return `*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${VALUE_BYTES}\r\n${VALUE}\r\n`;
  return `*2\r\n$3\r\nGET\r\n$${k.length}\r\n${k}\r\n`;
}

interface Client {
  readonly socket: MemorySocket;
  /** Kept so the connection lives as long as the run. */
  readonly connection: unknown;
}

/** Chunks of requests built before the measured run (so building them is not measured), used in turn. */
const CHUNK_POOL = 4096;

/** A deterministic PRNG (mulberry32): every build sees the same key sequence. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sends `total` requests of `test` over the clients, `pipeline` per client at a time; resolves when all are answered. */
function drive(clients: Client[], test: string, pipeline: number, total: number, nextKey: () => number, poolMax = CHUNK_POOL): Promise<void> {
  const replyBytes = test === 'set' ? SET_REPLY_BYTES : GET_REPLY_BYTES;
  const pool: Buffer[] = [];
  const poolSize = Math.min(poolMax, Math.ceil(total / pipeline));
  for (let j = 0; j < poolSize; j++) {
    let text = '';
    for (let i = 0; i < pipeline; i++) text += request(test, nextKey());
    pool.push(Buffer.from(text, 'latin1'));
  }
  let chunk = 0;
  let sent = 0;
  let answered = 0;
  return new Promise((resolve, reject) => {
    const send = (c: Client, expectAt: number): void => {
      const n = Math.min(pipeline, total - sent);
      if (n <= 0) return;
      sent += n;
      // A fresh copy per send: the parser may keep views of what it was fed.
      const whole = pool[chunk++ % pool.length]!;
      const data = n === pipeline ? Buffer.from(whole) : Buffer.from(whole.subarray(0, whole.length / pipeline * n));
      const target = expectAt + n * replyBytes;
      c.socket.onWrite = () => {
        if (c.socket.written < target) return;
        if (c.socket.written > target) reject(new Error(`unexpected reply bytes: ${c.socket.written} > ${target}`));
        c.socket.onWrite = undefined;
        answered += n;
        if (answered === total) resolve();
        // The next request arrives in a callback of its own, as a socket read would.
        else setImmediate(() => send(c, target));
      };
      c.socket.emit('data', data);
    };
    for (const c of clients) setImmediate(() => send(c, c.socket.written));
  });
}

async function child(build: string, test: string, pipeline: number, requests: number): Promise<void> {
  type NodeModule = typeof import('../src/server/node.js');
  type ConfigModule = typeof import('../src/config/config.js');
  type ConnectionModule = typeof import('../src/server/connection.js');
  const root = path.resolve(build);
  const { startNode } = (await import(pathToFileURL(path.join(root, 'src/server/node.js')).href)) as NodeModule;
  const { Config } = (await import(pathToFileURL(path.join(root, 'src/config/config.js')).href)) as ConfigModule;
  const { Connection } = (await import(pathToFileURL(path.join(root, 'src/server/connection.js')).href)) as ConnectionModule;
  const dir = mkdtempSync(path.join(tmpdir(), 'ringkv-inproc.'));
  try {
    const config = Config.fromOverrides([
      ['dir', dir],
      ['port', '0'],
      ['bind', '127.0.0.1'],
      ['appendfsync', 'everysec'],
    ]);
    const node = await startNode({ config, log: () => undefined });
    const clients: Client[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const socket = new MemorySocket();
      const now = Date.now();
      const connection = new Connection(node.server, socket as unknown as import('node:net').Socket, {
        id: i + 1,
        name: '',
        protocol: 2,
        authenticated: true,
        addr: `127.0.0.1:${50000 + i}`,
        laddr: '127.0.0.1:6379',
        createdAtMs: now,
        lastCommandAtMs: now,
        lastCommand: 'NULL',
        closeAfterReply: false,
      });
      clients.push({ socket, connection });
    }
    let seq = 0;
    await drive(clients, 'set', PRELOAD_PIPELINE, KEYSPACE_KEYS, () => seq++, Infinity);
    const next = prng(42);
    const random = (): number => Math.floor(next() * KEYSPACE_KEYS);
    // The same workload first, unmeasured, so the JIT has optimized its path.
    await drive(clients, test, pipeline, Math.ceil(requests / 4), random);
    const callgrind = process.env.CALLGRIND_PID !== undefined;
    if (callgrind) spawnSync('callgrind_control', ['--zero', String(process.pid)]);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await drive(clients, test, pipeline, requests, random);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = process.cpuUsage(c0);
    if (callgrind) spawnSync('callgrind_control', ['--dump=measured', String(process.pid)]);
    const cpuUs = (c1.user + c1.system) / requests;
    process.stdout.write(`${(requests / wallS).toFixed(0)} ${cpuUs.toFixed(3)} ${(c1.user / requests).toFixed(3)}\n`);
    await node.shutdown('bench done');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    void child(argv[1]!, argv[2]!, Number(argv[3]), Number(argv[4])).catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    });
    return;
  }
  let rounds = 4;
  let workloads = ['set:16', 'get:16', 'set:1', 'get:1'];
  const builds: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--rounds') rounds = Number(argv[++i]);
    else if (a === '--workloads') workloads = argv[++i]!.split(',');
    else builds.push(a);
  }
  if (builds.length < 1) throw new Error('usage: server_inproc_ab.js [--rounds N] [--workloads set:16,get:1] BUILD_A [BUILD_B ...]');
  const self = fileURLToPath(import.meta.url);
  for (const w of workloads) {
    const [test, p] = w.split(':') as [string, string];
    const requests = Number(process.env.REQUESTS ?? DEFAULT_REQUESTS[p] ?? 100_000);
    const cpu: number[][] = builds.map(() => []);
    for (let r = 1; r <= rounds; r++) {
      builds.forEach((b, i) => {
        if (process.env.CALLGRIND === '1') {
          const cg = mkdtempSync(path.join(tmpdir(), 'ringkv-inproc-cg.'));
          const out = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${cg}/cg.%p`, process.execPath, self, '--child', b, test, p, String(requests)], {
            encoding: 'utf8',
            env: { ...process.env, CALLGRIND_PID: '1' },
          });
          if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
          const file = readdirSync(cg).map((f) => path.join(cg, f)).find((f) => readFileSync(f, 'latin1').includes('measured'));
          const totals = file === undefined ? undefined : /^(?:summary|totals): (\d+)/m.exec(readFileSync(file, 'latin1'));
          rmSync(cg, { recursive: true, force: true });
          if (totals === undefined || totals === null) throw new Error('no callgrind dump of the measured run');
          const ir = Number(totals[1]) / requests;
          cpu[i]!.push(ir);
          process.stdout.write(`${test.toUpperCase()} -P ${p} round ${r} ${b} ${ir.toFixed(0)} instructions/req\n`);
          return;
        }
        const out = spawnSync(process.execPath, [self, '--child', b, test, p, String(requests)], { encoding: 'utf8' });
        if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
        const [rps, us, userUs] = out.stdout.trim().split(' ').map(Number) as [number, number, number];
        cpu[i]!.push(us);
        process.stdout.write(`${test.toUpperCase()} -P ${p} round ${r} ${b} ${rps} req/s ${us} us/req (user ${userUs})\n`);
      });
    }
    const base = median(cpu[0]!);
    const unit = process.env.CALLGRIND === '1' ? 'instructions' : 'us';
    const summary = builds.map((b, i) => `${b} ${median(cpu[i]!).toFixed(3)} ${unit} (${(median(cpu[i]!) / base).toFixed(3)}x)`).join(', ');
    // Pairwise: B/A of each round, so a loaded stretch shared by both runs of a round cancels.
    const pairs = builds.slice(1).map((b, i) => `${b} B/A per round: ${cpu[i + 1]!.map((x, r) => (x / cpu[0]![r]!).toFixed(3)).join(' ')} (median ${median(cpu[i + 1]!.map((x, r) => x / cpu[0]![r]!)).toFixed(3)})`);
    process.stdout.write(`${test.toUpperCase()} -P ${p} medians: ${summary}\n${pairs.join('\n')}\n`);
  }
}

main();
