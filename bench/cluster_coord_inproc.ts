/**
 * CPU per request of the coordinating node's request path alone, in one process, for an A/B of
 * two builds: node 0's Keyspace (real engine in a temp dir, with the Merkle write hook), its
 * Coordinator, and the real BusReplicaTransport (replica put batcher, codecs) over a stand-in
 * bus that answers like two in-sync replicas: a REPLICA_GET with node 0's own stored bytes, a
 * REPLICA_PUT(_BATCH) with "merged", each on the next setImmediate (a network turn later). The
 * RESP server, sockets and the replicas' own work are left out, so the noise of a shared
 * machine's network and scheduling is too; what is left is the coordinator path this bench's
 * owners change (src/coordinator, src/cluster): use cluster_ab.ts for the whole cluster.
 *
 *   node .build/NAME/bench/cluster_coord_inproc.js --a .build/BEFORE --b .build/AFTER
 *        [--rounds 6] [--ops 100000] [--inflight 800] [--via coordinator|commands]
 *        [--same-process N]
 *
 * Per round and build (order swapped each round), in a fresh process: warm-up, then SET and GET
 * of `--ops` requests each over 10,000 keys, `--inflight` at once (50 clients x -P 16 by
 * default: that many requests are started in one synchronous stretch, the next batch once they
 * all settled). Reported: CPU microseconds per request of the MAIN thread (the bound in a
 * cluster; /proc/self/task/PID/schedstat, so the engine's flush and compaction threads are left
 * out), medians over rounds, B/A per round.
 *
 * --via commands: requests go through the server's SET and GET command handlers (strings.ts, the
 * cluster path; the raw handler on the request's bytes first, the handler on its arguments when
 * that declines, as Dispatcher.startRaw does) instead of Coordinator.write/getValue.
 * --same-process N: N processes, each with BOTH builds loaded (each its own keyspace), running
 * `--rounds` rounds of alternating segments (SET then GET, the order of A and B swapped each
 * round; which build is loaded first swapped each process); B/A per round pair. On a loaded
 * machine this resolves a few percent where a process per build and round swings +-20%.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { flagValue, median } from './lib/index.js';

const KEYSPACE = 10_000;
const VALUE_BYTES = 100;
const MEMBERS = ['node-b-000000000001', 'node-c-000000000002'];
const REPLICA_GET = 0x21;
const REPLICA_PUT = 0x20;
const REPLICA_PUT_BATCH = 0x25;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Mod = any;

interface Node0 {
  put(key: Buffer, value: Buffer): Promise<unknown>;
  get(key: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

async function load(build: string, rel: string): Promise<Mod> {
  return import(pathToFileURL(path.resolve(build, rel)).href);
}

type Via = 'coordinator' | 'commands';

/** A RawCommand as the parser fills one: the arguments' bytes in one buffer, with their offsets. */
function rawOf(RawCommand: Mod, args: readonly Buffer[]): Mod {
  const r = new RawCommand();
  r.buf = Buffer.concat(args);
  r.count = args.length;
  let o = 0;
  for (const [i, a] of args.entries()) {
    r.starts[i] = o;
    o += a.length;
    r.ends[i] = o;
  }
  return r;
}

/**
 * SET and GET through the build's strings.ts handlers on `co`: one RawCommand per key and
 * command, made at its first use (the parser reuses one of its own).
 */
async function commandsOf(build: string, co: Mod, ks: Mod): Promise<Pick<Node0, 'put' | 'get'>> {
  const { stringCommands } = await load(build, 'src/server/commands/strings.js');
  const { RawCommand } = await load(build, 'src/resp/parser.js');
  const specOf = (name: string): Mod => stringCommands.find((c: Mod) => c.name === name);
  const set = specOf('set');
  const get = specOf('get');
  const ctx = { client: {}, server: { cluster: { coordinator: co }, keyspace: ks, now: () => Date.now() } };
  const run = (spec: Mod, r: Mod): Promise<unknown> => (spec.rawHandler?.(ctx, r) ?? spec.handler(ctx, r.args())) as Promise<unknown>;
  const setRaws = new Map<Buffer, Mod>();
  const getRaws = new Map<Buffer, Mod>();
  return {
    put(key, value) {
      let r = setRaws.get(key);
      if (r === undefined) setRaws.set(key, (r = rawOf(RawCommand, [Buffer.from('set'), key, value])));
      return run(set, r);
    },
    get(key) {
      let r = getRaws.get(key);
      if (r === undefined) getRaws.set(key, (r = rawOf(RawCommand, [Buffer.from('get'), key])));
      return run(get, r);
    },
  };
}

async function startNode0(build: string, dir: string, via: Via): Promise<Node0> {
  const { Keyspace } = await load(build, 'src/server/keyspace.js');
  const { Coordinator } = await load(build, 'src/coordinator/coordinator.js');
  const { RingProvider } = await load(build, 'src/coordinator/ring_provider.js');
  const { BusReplicaTransport } = await load(build, 'src/cluster/replica_transport.js');
  const { MerkleStore } = await load(build, 'src/cluster/merkle_store.js');
  const { settingsFromConfig } = await load(build, 'src/coordinator/coordinator_settings.js');
  const codec = await load(build, 'src/cluster/replica_codec.js');
  const { dataKey } = await load(build, 'src/server/key_layout.js');
  const { TestConfig } = await load(build, 'test/server/keyspace_fixture.js');
  const config = new TestConfig({
    appendfsync: 'everysec',
    'read-quorum': 'quorum',
    'write-quorum': 'quorum',
    'sloppy-quorum': 'yes',
    'request-timeout-ms': 5000,
    'memtable-bytes': 64 * 1024 * 1024,
  });
  const ks = await Keyspace.open({ dir, config, now: () => Date.now(), log: () => undefined });
  const merkle = new MerkleStore(ks.engine, Date.now);
  ks.setWriteObserver(merkle);
  const self: string = ks.nodeId;
  const members = Object.freeze([self, ...MEMBERS].map((id) => Object.freeze({ id, weight: 1, dc: 'dc1', rack: '', state: 'up' })));
  const rings = new RingProvider(
    () => members,
    () => ({ vnodes: 16, n: 3 }),
  );
  const empty = Buffer.alloc(0);
  // Answers as an in-sync replica would, a turn later.
  const bus = {
    request(_peer: unknown, type: number, payload: Buffer): Promise<Buffer> {
      return new Promise<Buffer>((resolve) => {
        setImmediate(() => {
          if (type === REPLICA_GET) {
            const key: Buffer = codec.decodeReplicaGet(payload);
            const stored: Buffer | null | undefined = ks.engine.getSync(dataKey(key));
            resolve(Buffer.from(stored ?? EMPTY_BYTES));
          } else if (type === REPLICA_PUT_BATCH) {
            const n = payload.readUInt32BE(0);
            resolve(codec.encodeReplicaPutBatchAnswer(new Array(n).fill(undefined)));
          } else if (type === REPLICA_PUT) {
            resolve(empty);
          } else {
            throw new Error(`unexpected bus request type ${type}`);
          }
        });
      });
    },
  };
  const { encodeObject, EMPTY_OBJECT } = await load(build, 'src/coordinator/object.js');
  const EMPTY_BYTES: Buffer = encodeObject(EMPTY_OBJECT);
  const transport = new BusReplicaTransport(bus, (id: string) => (MEMBERS.includes(id) ? { host: '127.0.0.1', busPort: 1 } : undefined));
  const co = new Coordinator({
    self,
    ring: () => rings.current(),
    isUp: () => true,
    keyspace: ks,
    transport,
    settings: () => settingsFromConfig(config),
    pendingReplicas: () => [],
  });
  return {
    ...(via === 'commands'
      ? await commandsOf(build, co, ks)
      : {
          // What the server's SET calls: Coordinator.write where the build has it (no decode of
          // the result), put before it.
          put: typeof co.write === 'function' ? (key: Buffer, value: Buffer) => co.write(key, { value, expiresAtMs: 0 }) : (key: Buffer, value: Buffer) => co.put(key, { value, expiresAtMs: 0 }),
          // What the server's GET calls: Coordinator.getValue where the build has it, get before it.
          get: typeof co.getValue === 'function' ? (key: Buffer) => co.getValue(key, Date.now()) : (key: Buffer) => co.get(key),
        }),
    async close() {
      await co.whenIdle();
      await ks.close();
    },
  };
}

/** CPU time of this process's main thread so far, microseconds (schedstat: ns on the CPU). */
function mainThreadCpuUs(): number {
  const text = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
  return Number(text.split(' ')[0]) / 1000;
}

/** Main-thread CPU microseconds per request of `ops` requests, `inflight` started at once. */
async function run(node: Node0, op: 'set' | 'get', ops: number, inflight: number, keys: readonly Buffer[], value: Buffer): Promise<number> {
  const start = mainThreadCpuUs();
  let k = 0;
  for (let done = 0; done < ops; done += inflight) {
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < inflight && done + i < ops; i++) {
      const key = keys[k++ % keys.length]!;
      batch.push(op === 'set' ? node.put(key, value) : node.get(key));
    }
    await Promise.all(batch);
  }
  return (mainThreadCpuUs() - start) / ops;
}

function benchKeys(): Buffer[] {
  const keys = Array.from({ length: KEYSPACE }, (_, i) => Buffer.from(`key:${String(i).padStart(12, '0')}`));
  // A fixed shuffle (redis-benchmark -r picks keys at random).
  for (let i = keys.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  return keys;
}

/** One build in this process: warm-up, then SET and GET measured; prints {set, get} as JSON. */
async function child(build: string, ops: number, inflight: number, via: Via): Promise<void> {
  const keys = benchKeys();
  const value = Buffer.alloc(VALUE_BYTES, 0x78);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-coord-inproc-'));
  try {
    const node = await startNode0(build, root, via);
    await run(node, 'set', KEYSPACE * 3, inflight, keys, value);
    await run(node, 'get', KEYSPACE * 3, inflight, keys, value);
    const set = await run(node, 'set', ops, inflight, keys, value);
    const get = await run(node, 'get', ops, inflight, keys, value);
    await node.close();
    process.stdout.write(`${JSON.stringify({ set, get })}\n`);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

/**
 * --same-process: builds `first` and `second` both in this process, `rounds` rounds of SET then
 * GET segments, the two builds alternating (order swapped each round); prints one JSON line per
 * round: {set: [first, second], get: [first, second]}.
 */
async function pairChild(first: string, second: string, ops: number, inflight: number, via: Via, rounds: number): Promise<void> {
  const keys = benchKeys();
  const value = Buffer.alloc(VALUE_BYTES, 0x78);
  const roots = [await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-coord-inproc-')), await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-coord-inproc-'))];
  try {
    const nodes = [await startNode0(first, roots[0]!, via), await startNode0(second, roots[1]!, via)];
    for (const node of nodes) {
      await run(node, 'set', KEYSPACE * 3, inflight, keys, value);
      await run(node, 'get', KEYSPACE * 3, inflight, keys, value);
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      const out = { set: [0, 0], get: [0, 0] };
      for (const op of ['set', 'get'] as const) for (const i of order) out[op][i] = await run(nodes[i]!, op, ops, inflight, keys, value);
      process.stdout.write(`${JSON.stringify(out)}\n`);
    }
    for (const node of nodes) await node.close();
  } finally {
    for (const root of roots) await fs.rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ops = Number(flagValue(argv, '--ops') ?? 100_000);
  const inflight = Number(flagValue(argv, '--inflight') ?? 800);
  const via = (flagValue(argv, '--via') ?? 'coordinator') as Via;
  if (via !== 'coordinator' && via !== 'commands') throw new Error('--via is coordinator or commands');
  const rounds = Number(flagValue(argv, '--rounds') ?? 6);
  const only = flagValue(argv, '--child');
  const pairOf = flagValue(argv, '--pair-child');
  if (only !== undefined) return child(only, ops, inflight, via);
  const a = flagValue(argv, '--a');
  const b = flagValue(argv, '--b');
  if (a === undefined || b === undefined) throw new Error('usage: cluster_coord_inproc.js --a BUILD --b BUILD [--rounds N] [--ops N] [--inflight N] [--via coordinator|commands] [--same-process N]');
  if (pairOf !== undefined) return pairChild(a, b, ops, inflight, via, rounds);
  const samples: Record<'A' | 'B', { set: number[]; get: number[] }> = { A: { set: [], get: [] }, B: { set: [], get: [] } };
  const self = fileURLToPath(import.meta.url);
  const procs = Number(flagValue(argv, '--same-process') ?? 0);
  const common = ['--ops', String(ops), '--inflight', String(inflight), '--via', via];
  for (let p = 0; p < procs; p++) {
    const swapped = p % 2 === 1;
    const out = execFileSync(process.execPath, [self, '--pair-child', '1', '--a', swapped ? b : a, '--b', swapped ? a : b, '--rounds', String(rounds), ...common], { encoding: 'utf8' });
    for (const line of out.trim().split('\n')) {
      const got = JSON.parse(line) as { set: [number, number]; get: [number, number] };
      for (const op of ['set', 'get'] as const) {
        samples.A[op].push(got[op][swapped ? 1 : 0]);
        samples.B[op].push(got[op][swapped ? 0 : 1]);
      }
      process.stderr.write(`process ${p + 1} (${swapped ? 'B' : 'A'} loaded first): SET A ${samples.A.set.at(-1)!.toFixed(2)} B ${samples.B.set.at(-1)!.toFixed(2)}, GET A ${samples.A.get.at(-1)!.toFixed(2)} B ${samples.B.get.at(-1)!.toFixed(2)} us/req\n`);
    }
  }
  for (let r = 0; procs === 0 && r < rounds; r++) {
    const order: Array<'A' | 'B'> = r % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const x of order) {
      const out = execFileSync(process.execPath, [self, '--child', x === 'A' ? a : b, ...common], { encoding: 'utf8' });
      const { set, get } = JSON.parse(out.trim().split('\n').pop()!) as { set: number; get: number };
      samples[x].set.push(set);
      samples[x].get.push(get);
      process.stderr.write(`round ${r + 1} ${x}: SET ${set.toFixed(2)} us/req, GET ${get.toFixed(2)} us/req\n`);
    }
  }
  const ratio = (op: 'set' | 'get'): number[] => samples.A[op].map((v, i) => samples.B[op][i]! / v);
  const line = (op: 'set' | 'get'): string =>
    `${op.toUpperCase()}: A ${median(samples.A[op]).toFixed(2)} us/req, B ${median(samples.B[op]).toFixed(2)} us/req, B/A median ${median(ratio(op)).toFixed(3)}, B lower ${ratio(op).filter((v) => v < 1).length}/${ratio(op).length} (per round ${ratio(op)
      .map((v) => v.toFixed(2))
      .join(', ')})`;
  const how = procs > 0 ? `${procs} processes x ${rounds} rounds (both builds in each process, alternating)` : `${rounds} rounds (a fresh process per build and round)`;
  process.stdout.write(`A = ${a}, B = ${b}; ${how} of ${ops} requests via ${via}, ${inflight} in flight; main-thread CPU us per request\n${line('set')}\n${line('get')}\n`);
}

await main();
