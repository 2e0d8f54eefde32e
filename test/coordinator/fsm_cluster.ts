// A cluster of Coordinators in one process for the request-path tests: each node has a real
// Keyspace (storage engine in a temp dir) and talks to the others through MemNet, an in-memory
// ReplicaTransport that can partition, refuse, blackhole and delay messages per directed link.
// Objects cross as bytes (encodeObject/decodeObject), as on the real bus.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Test } from 'tap';
import { Coordinator, type CoordinatorSettings } from '../../src/coordinator/coordinator.js';
import { decodeObject, encodeObject, type VersionedObject } from '../../src/coordinator/object.js';
import {
  ReplicaCallError,
  ReplicaUnreachableError,
  settleReplicaGetBytes,
  settleReplicaPut,
  type ReplicaPutOptions,
  type ReplicaTransport,
  type WriteRequestWire,
  type WriteResult,
} from '../../src/coordinator/replica_transport.js';
import type { Ring, RingMember } from '../../src/coordinator/ring.js';
import { RingProvider } from '../../src/coordinator/ring_provider.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { Keyspace } from '../../src/server/keyspace.js';
import { TestConfig } from '../server/keyspace_fixture.js';

/** How a blocked link fails: at once (connection refused) or silently (timeout). */
export type LinkFault = 'refuse' | 'blackhole';

type Kind = 'put' | 'get' | 'forward';

export class MemNet {
  readonly coordinators = new Map<string, Coordinator>();
  /** "from>to" -> fault. */
  readonly faults = new Map<string, LinkFault>();
  /** "from>to" -> delivery delay, ms (the reply comes back without extra delay). */
  readonly delays = new Map<string, number>();
  /** "from>to" -> deliveries held back until release() (deterministic "slow link"). */
  readonly held = new Map<string, Array<() => void>>();
  /** viewer -> nodes it believes down. */
  readonly downIn = new Map<string, Set<string>>();
  /** Messages delivered, by kind. */
  readonly delivered: Record<Kind, number> = { put: 0, get: 0, forward: 0 };
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Nodes whose replica get answers arrive corrupt (bytes that do not decode), with getsAsBytes. */
  readonly corruptGetsFrom = new Set<string>();

  /**
   * `getsAsBytes`: the transports also offer replicaGetBytesNotify (answers as the bytes the
   * replica sends, onReplicaGetEncoded, as the cluster bus does), which reads then use; and
   * replicaPutBytesNotify (a write's fan-out sends the coordinator's stored bytes, which the
   * replica merges through onReplicaPutBatch with those bytes as `encoded`, as the bus does).
   */
  constructor(readonly getsAsBytes = false) {}

  isUp(viewer: string): (id: string) => boolean {
    return (id) => !(this.downIn.get(viewer)?.has(id) ?? false);
  }

  /** Cuts every link between the groups; with `detect`, each side also sees the other as down. */
  partition(groups: readonly (readonly string[])[], fault: LinkFault = 'refuse', detect = true): void {
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) {
          for (const b of h) {
            this.faults.set(`${a}>${b}`, fault);
            if (detect) this.#down(a).add(b);
          }
        }
      }
    }
  }

  /** Cuts the links from and to `node` (others may or may not notice, per `detect`). */
  isolate(node: string, fault: LinkFault = 'refuse', detect = true): void {
    const others = [...this.coordinators.keys()].filter((x) => x !== node);
    this.partition([[node], others], fault, detect);
  }

  heal(): void {
    this.faults.clear();
    this.downIn.clear();
    this.delays.clear();
  }

  /** Holds messages on the link from `from` to `to` until release (their timeouts still run). */
  hold(from: string, to: string): void {
    if (!this.held.has(`${from}>${to}`)) this.held.set(`${from}>${to}`, []);
  }

  /** Delivers what the link held, in order, and stops holding. Returns how many. */
  release(from: string, to: string): number {
    const q = this.held.get(`${from}>${to}`) ?? [];
    this.held.delete(`${from}>${to}`);
    for (const deliver of q) deliver();
    return q.length;
  }

  #down(viewer: string): Set<string> {
    let s = this.downIn.get(viewer);
    if (s === undefined) this.downIn.set(viewer, (s = new Set()));
    return s;
  }

  /** Delivers `fn` on `to`, applying the link's fault and delay; `timeoutMs` bounds the call. */
  #call<T>(from: string, to: string, kind: Kind, timeoutMs: number, fn: (c: Coordinator) => Promise<T>): Promise<T> {
    const link = `${from}>${to}`;
    const fault = this.faults.get(link);
    const target = this.coordinators.get(to);
    if (fault === 'refuse' || target === undefined) return Promise.reject(new ReplicaUnreachableError(to, `connection to ${to} refused`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (settled) return;
        settled = true;
        reject(new ReplicaCallError(to, `${kind} to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#timers.add(timer);
      if (fault === 'blackhole') return;
      const deliver = (): void => {
        this.delivered[kind]++;
        fn(target).then(
          (v) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            this.#timers.delete(timer);
            resolve(v);
          },
          (err: unknown) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            this.#timers.delete(timer);
            reject(err);
          },
        );
      };
      const delay = this.delays.get(link) ?? 0;
      const queue = this.held.get(link);
      if (queue !== undefined) {
        queue.push(deliver);
      } else if (delay > 0) {
        const d = setTimeout(() => {
          this.#timers.delete(d);
          deliver();
        }, delay);
        this.#timers.add(d);
      } else {
        queueMicrotask(deliver);
      }
    });
  }

  transportFor(from: string): ReplicaTransport {
    const asBytes: Pick<ReplicaTransport, 'replicaGetBytesNotify' | 'replicaPutBytesNotify'> = !this.getsAsBytes
      ? {}
      : {
          replicaPutBytesNotify: (node, key, objectBytes, opts, done) => {
            const k = Buffer.from(key);
            const bytes = Buffer.from(objectBytes);
            this.#call(from, node, 'put', opts.timeoutMs, async (c) => {
              const [err] = await c.onReplicaPutBatch([
                { key: k, object: decodeObject(bytes), ...(opts.hintFor === undefined ? { encoded: bytes } : { hintFor: opts.hintFor }) },
              ]);
              if (err !== undefined) throw err;
            }).then(
              () => settleReplicaPut(done, node, undefined),
              (err: unknown) => settleReplicaPut(done, node, err),
            );
          },
          replicaGetBytesNotify: (node, key, opts, done) => {
            const k = Buffer.from(key);
            this.#call(from, node, 'get', opts.timeoutMs, async (c) => {
              const bytes = Buffer.from(await c.onReplicaGetEncoded(k));
              // A truncated object: decodeObject refuses it.
              return this.corruptGetsFrom.has(node) ? bytes.subarray(0, bytes.length - 1) : bytes;
            }).then(
              (bytes) => settleReplicaGetBytes(done, node, bytes, undefined),
              (err: unknown) => settleReplicaGetBytes(done, node, undefined, err),
            );
          },
        };
    return {
      ...asBytes,
      replicaPut: (node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions): Promise<void> => {
        const bytes = encodeObject(object);
        const k = Buffer.from(key);
        return this.#call(from, node, 'put', opts.timeoutMs, (c) =>
          c.onReplicaPut(k, decodeObject(bytes), opts.hintFor === undefined ? {} : { hintFor: opts.hintFor }),
        );
      },
      replicaGet: (node: string, key: Buffer, opts: { timeoutMs: number }): Promise<VersionedObject> => {
        const k = Buffer.from(key);
        return this.#call(from, node, 'get', opts.timeoutMs, async (c) => decodeObject(encodeObject(await c.onReplicaGet(k))));
      },
      forwardWrite: (node: string, req: WriteRequestWire, opts: { timeoutMs: number }): Promise<WriteResult> => {
        const copy: WriteRequestWire = {
          ...req,
          key: Buffer.from(req.key),
          value: req.value === null ? null : Buffer.from(req.value),
          ...(req.context === undefined ? {} : { context: new Map(req.context) }),
        };
        return this.#call(from, node, 'forward', opts.timeoutMs, async (c) => decodeObject(encodeObject(await c.onForwardWrite(copy))));
      },
    };
  }

  clearTimers(): void {
    for (const h of this.#timers) clearTimeout(h);
    this.#timers.clear();
  }
}

export interface TestCluster {
  readonly net: MemNet;
  /** Node ids in creation order. */
  readonly ids: readonly string[];
  readonly ks: ReadonlyMap<string, Keyspace>;
  readonly co: ReadonlyMap<string, Coordinator>;
  /** Mutable: every coordinator reads it on every request. */
  settings: CoordinatorSettings;
  /** Mutable: replication factor of the ring (RingProvider rebuilds on change). */
  n: number;
  ring(): Ring;
  node(id: string): Coordinator;
  keyspace(id: string): Keyspace;
  /** Waits until every coordinator's background work is done. */
  idle(): Promise<void>;
  /** A key whose preference list (at the current n) is exactly `pref` in that order, if any. */
  keyWithPreflist(pred: (pref: readonly string[]) => boolean, prefix?: string): Buffer;
}

export const DEFAULT_TEST_SETTINGS: CoordinatorSettings = {
  readQuorum: 'quorum',
  writeQuorum: 'quorum',
  sloppyQuorum: true,
  notfoundOk: true,
  requestTimeoutMs: 2000,
};

export async function startCluster(
  t: Test,
  opts: { nodes: number; n: number; settings?: Partial<CoordinatorSettings>; config?: Record<string, string | number>;
    maxReadRepairsInFlight?: number;
    /** Multi-DC: node i's datacenter, and replicas per datacenter (then `n` is ignored). */
    dcOf?: (i: number) => string;
    dcReplication?: ReadonlyMap<string, number>;
    /** Replica gets answered as bytes (MemNet getsAsBytes). */
    getsAsBytes?: boolean;
    /** What node `id`'s Coordinator is given as its keyspace (e.g. a proxy counting calls); default the keyspace. */
    coordinatorKeyspace?: (id: string, ks: Keyspace) => Keyspace;
  },
): Promise<TestCluster> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-fsm-'));
  const net = new MemNet(opts.getsAsBytes ?? false);
  const ks = new Map<string, Keyspace>();
  const co = new Map<string, Coordinator>();
  const ids: string[] = [];
  const logs: string[] = [];
  const config = new TestConfig(opts.config);
  t.teardown(async () => {
    for (const c of co.values()) await c.whenIdle();
    net.clearTimers();
    for (const k of ks.values()) await k.close();
    await fsp.rm(root, { recursive: true, force: true });
  });
  for (let i = 0; i < opts.nodes; i++) {
    const k = await Keyspace.open({ dir: path.join(root, `node${i}`), config, now: () => Date.now(), log: (l, m) => logs.push(`${l} ${m}`) });
    ks.set(k.nodeId, k);
    ids.push(k.nodeId);
  }
  const members: RingMember[] = ids.map((id, i) => ({ id, weight: 1, dc: opts.dcOf?.(i) ?? 'dc1', rack: '', state: 'up' }));
  const cluster: TestCluster = {
    net,
    ids,
    ks,
    co,
    settings: { ...DEFAULT_TEST_SETTINGS, ...opts.settings },
    n: opts.n,
    ring: () => provider.current(),
    node(id) {
      const c = co.get(id);
      if (c === undefined) throw new Error(`no node ${id}`);
      return c;
    },
    keyspace(id) {
      const k = ks.get(id);
      if (k === undefined) throw new Error(`no node ${id}`);
      return k;
    },
    async idle() {
      // A late answer may start a read repair, which is more work: settle until all are quiet.
      while ([...co.values()].some((c) => c.backgroundInflight > 0)) {
        await Promise.all([...co.values()].map((c) => c.whenIdle()));
        await new Promise((r) => setImmediate(r));
      }
    },
    keyWithPreflist(pred, prefix = 'k') {
      const ring = provider.current();
      for (let i = 0; i < 100_000; i++) {
        const key = Buffer.from(`${prefix}${i}`);
        if (pred(ring.preflist(keySlot(key)))) return key;
      }
      throw new Error('no key with such a preflist');
    },
  };
  const provider = new RingProvider(
    () => members,
    () => (opts.dcReplication === undefined ? { vnodes: 16, n: cluster.n } : { vnodes: 16, dcReplication: opts.dcReplication }),
  );
  for (const id of ids) {
    const c = new Coordinator({
      self: id,
      ring: () => provider.current(),
      isUp: net.isUp(id),
      keyspace: opts.coordinatorKeyspace?.(id, cluster.keyspace(id)) ?? cluster.keyspace(id),
      transport: net.transportFor(id),
      settings: () => cluster.settings,
      log: (l, m) => logs.push(`${id.slice(0, 6)} ${l} ${m}`),
      ...(opts.maxReadRepairsInFlight === undefined ? {} : { maxReadRepairsInFlight: opts.maxReadRepairsInFlight }),
    });
    co.set(id, c);
    net.coordinators.set(id, c);
  }
  return cluster;
}

/** Live values of an object as strings, canonical order. */
export function values(obj: VersionedObject, nowMs: number = Date.now()): string[] {
  return obj.siblings.filter((s) => s.value !== null && (s.expiresAtMs === 0 || nowMs <= s.expiresAtMs)).map((s) => (s.value as Buffer).toString());
}
