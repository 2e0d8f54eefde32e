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
 *        [--rounds 6] [--ops 100000] [--inflight 800]
 *
 * Per round and build (order swapped each round), in a fresh process: warm-up, then SET and GET
 * of `--ops` requests each over 10,000 keys, `--inflight` at once (50 clients x -P 16 by
 * default: that many requests are started in one synchronous stretch, the next batch once they
 * all settled). Reported: CPU microseconds per request of the MAIN thread (the bound in a
 * cluster; /proc/self/task/PID/schedstat, so the engine's flush and compaction threads are left
 * out), medians over rounds, B/A per round.
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

async function startNode0(build: string, dir: string): Promise<Node0> {
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
    // What the server's SET calls: Coordinator.write where the build has it (no decode of the
    // result), put before it.
    put: typeof co.write === 'function' ? (key, value) => co.write(key, { value, expiresAtMs: 0 }) : (key, value) => co.put(key, { value, expiresAtMs: 0 }),
    // What the server's GET calls: Coordinator.getValue where the build has it, get before it.
    get: typeof co.getValue === 'function' ? (key) => co.getValue(key, Date.now()) : (key) => co.get(key),
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

/** One build in this process: warm-up, then SET and GET measured; prints {set, get} as JSON. */
async function child(build: string, ops: number, inflight: number): Promise<void> {
  const keys = Array.from({ length: KEYSPACE }, (_, i) => Buffer.from(`key:${String(i).padStart(12, '0')}`));
  // A fixed shuffle (redis-benchmark -r picks keys at random).
  for (let i = keys.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  const value = Buffer.alloc(VALUE_BYTES, 0x78);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ringkv-coord-inproc-'));
  try {
    const node = await startNode0(build, root);
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ops = Number(flagValue(argv, '--ops') ?? 100_000);
  const inflight = Number(flagValue(argv, '--inflight') ?? 800);
  const only = flagValue(argv, '--child');
  if (only !== undefined) return child(only, ops, inflight);
  const a = flagValue(argv, '--a');
  const b = flagValue(argv, '--b');
  if (a === undefined || b === undefined) throw new Error('usage: cluster_coord_inproc.js --a BUILD --b BUILD [--rounds N] [--ops N] [--inflight N]');
  const rounds = Number(flagValue(argv, '--rounds') ?? 6);
  const samples: Record<'A' | 'B', { set: number[]; get: number[] }> = { A: { set: [], get: [] }, B: { set: [], get: [] } };
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) {
    const order: Array<'A' | 'B'> = r % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const x of order) {
      const out = execFileSync(process.execPath, [self, '--child', x === 'A' ? a : b, '--ops', String(ops), '--inflight', String(inflight)], { encoding: 'utf8' });
      const { set, get } = JSON.parse(out.trim().split('\n').pop()!) as { set: number; get: number };
      samples[x].set.push(set);
      samples[x].get.push(get);
      process.stderr.write(`round ${r + 1} ${x}: SET ${set.toFixed(2)} us/req, GET ${get.toFixed(2)} us/req\n`);
    }
  }
  const ratio = (op: 'set' | 'get'): number[] => samples.A[op].map((v, i) => samples.B[op][i]! / v);
  const line = (op: 'set' | 'get'): string =>
    `${op.toUpperCase()}: A ${median(samples.A[op]).toFixed(2)} us/req, B ${median(samples.B[op]).toFixed(2)} us/req, B/A median ${median(ratio(op)).toFixed(3)} (per round ${ratio(op)
      .map((v) => v.toFixed(2))
      .join(', ')})`;
  process.stdout.write(
    `A = ${a}, B = ${b}; ${rounds} rounds (a fresh process per build and round) of ${ops} requests, ${inflight} in flight; main-thread CPU us per request\n${line('set')}\n${line('get')}\n`,
  );
}

await main();
