// Test fixture for the keyspace and its commands: a Keyspace on the real storage engine in a
// temp dir, an injected clock, and `run(...)` that dispatches to the command specs the way the
// server does (arity checked first), returning replies as plain values for easy assertions.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Reply } from '../../src/resp/reply.js';
import { Keyspace } from '../../src/server/keyspace.js';
import { causalCommands } from '../../src/server/commands/causal.js';
import { clusterCommands } from '../../src/server/commands/cluster.js';
import { keyCommands } from '../../src/server/commands/keys.js';
import { stringCommands } from '../../src/server/commands/strings.js';
import type { ClientState, CommandSpec, ConfigView, ServerContext } from '../../src/server/types.js';

/** The config keys the keyspace reads, with the schema's defaults (gc grace shortened). */
export const TEST_CONFIG_DEFAULTS: Readonly<Record<string, string | number>> = {
  'max-key-bytes': 1024,
  'max-value-bytes': 1024 * 1024,
  'proto-max-bulk-len': 1024 * 1024,
  appendfsync: 'no',
  'memtable-bytes': 4 * 1024 * 1024,
  'block-cache-bytes': 8 * 1024 * 1024,
  'bloom-bits-per-key': 10,
  'gc-grace-seconds': 864000,
  'conflict-policy': 'siblings',
  'max-siblings': 100,
  'vclock-max-entries': 50,
};

export class TestConfig implements ConfigView {
  readonly values: Record<string, string | number>;
  constructor(overrides: Record<string, string | number> = {}) {
    this.values = { ...TEST_CONFIG_DEFAULTS, ...overrides };
  }
  getString(key: string): string {
    const v = this.values[key];
    if (v === undefined) throw new Error(`test config has no ${key}`);
    return String(v);
  }
  getNumber(key: string): number {
    const v = this.values[key];
    if (typeof v !== 'number') throw new Error(`test config has no number ${key}`);
    return v;
  }
  getBool(key: string): boolean {
    return this.values[key] === 'yes';
  }
}

export type Plain = string | number | bigint | null | { error: string } | Plain[];

/** A reply as a plain value: bulk/simple -> string, integer -> number, nil -> null, error -> {error}. */
export function plain(r: Reply): Plain {
  switch (r.kind) {
    case 'simple':
      return r.value;
    case 'error':
      return { error: r.message };
    case 'integer':
      return typeof r.value === 'bigint' && r.value <= BigInt(Number.MAX_SAFE_INTEGER) && r.value >= BigInt(Number.MIN_SAFE_INTEGER)
        ? Number(r.value)
        : r.value;
    case 'bulk':
    case 'verbatim':
      return typeof r.value === 'string' ? r.value : r.value.toString('latin1');
    case 'null':
    case 'nullArray':
      return null;
    case 'array':
    case 'set':
      return r.items.map(plain);
    case 'map':
      return r.entries.flatMap(([k, v]) => [plain(k), plain(v)]);
    case 'double':
      return r.value;
    case 'bool':
      return r.value ? 1 : 0;
  }
}

const TABLE = new Map<string, CommandSpec>();
for (const s of [...stringCommands, ...keyCommands, ...causalCommands, ...clusterCommands]) TABLE.set(s.name, s);

export interface Clock {
  ms: number;
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): Clock {
  const c: Clock = {
    ms: start,
    now: () => c.ms,
    advance: (ms: number) => {
      c.ms += ms;
    },
  };
  return c;
}

export function testClient(): ClientState {
  return {
    id: 1,
    name: '',
    protocol: 2,
    authenticated: true,
    addr: '127.0.0.1:50000',
    laddr: '127.0.0.1:7001',
    createdAtMs: 0,
    lastCommandAtMs: 0,
    lastCommand: '',
    closeAfterReply: false,
  };
}

export interface Fixture {
  dir: string;
  clock: Clock;
  config: TestConfig;
  ks: Keyspace;
  logs: string[];
  /** Runs a command (strings are latin1) and returns the plain reply. */
  run(...args: (string | Buffer)[]): Promise<Plain>;
  /** Runs a command and returns the handler's Reply as is. */
  runReply(...args: (string | Buffer)[]): Promise<Reply>;
  /** Closes the keyspace and opens it again on the same dir. */
  reopen(): Promise<void>;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

export async function openFixture(t: Tap, options: { config?: Record<string, string | number>; clock?: Clock; dir?: string; maxTrackedExpiringKeys?: number } = {}): Promise<Fixture> {
  const dir = options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-keyspace-')));
  const clock = options.clock ?? testClock();
  const config = new TestConfig(options.config);
  const logs: string[] = [];
  const open = (): Promise<Keyspace> =>
    Keyspace.open({
      dir,
      config,
      now: clock.now,
      log: (level, msg) => logs.push(`${level} ${msg}`),
      ...(options.maxTrackedExpiringKeys === undefined ? {} : { maxTrackedExpiringKeys: options.maxTrackedExpiringKeys }),
    });
  const client = testClient();
  const fx: Fixture = {
    dir,
    clock,
    config,
    ks: await open(),
    logs,
    async run(...raw) {
      return plain(await fx.runReply(...raw));
    },
    async runReply(...raw) {
      const args = raw.map((a) => (typeof a === 'string' ? Buffer.from(a, 'latin1') : a));
      const name = args[0]!.toString('latin1').toLowerCase();
      let spec = TABLE.get(name);
      if (spec === undefined) return { kind: 'error', message: `ERR unknown command '${name}'` };
      if (spec.subcommands !== undefined) {
        const subName = `${name}|${(args[1] ?? Buffer.alloc(0)).toString('latin1').toLowerCase()}`;
        spec = spec.subcommands.find((s) => s.name === subName);
        if (spec === undefined) return { kind: 'error', message: `ERR unknown subcommand` };
      }
      const ok = spec.arity > 0 ? args.length === spec.arity : args.length >= -spec.arity;
      if (!ok) return { kind: 'error', message: `ERR wrong number of arguments for '${spec.name}' command` };
      const server: ServerContext = { config, keyspace: fx.ks, now: clock.now };
      return spec.handler!({ client, server }, args);
    },
    async reopen() {
      await fx.ks.close();
      fx.ks = await open();
    },
  };
  t.teardown(async () => {
    await fx.ks.close();
    if (options.dir === undefined) await fsp.rm(dir, { recursive: true, force: true });
  });
  return fx;
}
