/**
 * The node's identity: a 40-hex-character node id (the shape of a Redis Cluster node id) and an
 * actor epoch, persisted in the data directory as `identity.json`.
 *
 * Why an epoch (Riak's KV679): dots are (actor, counter) and a coordinator mints the next counter
 * from what its local object has seen. A node that lost its data would mint counters it already
 * used, and the new writes would be silently dominated by the old ones held by other replicas.
 * So whenever the local data may be gone, the node takes a fresh epoch and its actor string
 * (`<nodeId>.<epoch>`) is new: its counters start again in a name no replica has seen.
 *
 * Rules (pure, `decideIdentity`):
 * - no identity file: a new node id and a new epoch (the data dir was wiped or is new);
 * - identity file present but the engine's data is absent: same node id, NEW epoch;
 * - the previous run did not shut down cleanly (the file still says `running`): same node id,
 *   NEW epoch. With appendfsync everysec/no a crash may lose local writes whose dots already
 *   reached other replicas (or clients, in contexts); re-minting those counters is KV679 again.
 *   This is Riak's answer too (a new vnode id after an unclean shutdown). Each crash adds one
 *   actor to the clocks of keys written afterwards; vclock-max-entries pruning bounds that.
 * - the storage engine's repair dropped data at this open (a damaged table or log record):
 *   same node id, NEW epoch, for the same reason (the local object may have gone backwards).
 * - otherwise: the stored id and epoch.
 *
 * The file is rewritten with `running: true` at every open (before any dot is minted) and with
 * `running: false` by `markStopped` after a clean close. Durability: temp file + fsync + rename
 * + fsync(dir), so a crash leaves either the old file or the new one, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { nodeFileSystem, type FileSystem } from '../storage/fs.js';

export const IDENTITY_FILE_NAME = 'identity.json';
const IDENTITY_FORMAT_VERSION = 1;
/** Largest identity file we agree to read; a real one is ~150 bytes. */
const IDENTITY_FILE_MAX_BYTES = 4096;
const NODE_ID_BYTES = 20;
const EPOCH_BYTES = 4;

export interface Identity {
  /** 40 lower-case hex characters. */
  readonly nodeId: string;
  /** 8 lower-case hex characters, new after every loss of local data. */
  readonly epoch: string;
  /** The name in dots and version vectors: `<nodeId>.<epoch>`. */
  readonly actor: string;
  readonly createdAtMs: number;
}

export class IdentityError extends Error {
  readonly code = 'EIDENTITY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityError';
  }
}

const NODE_ID_RE = /^[0-9a-f]{40}$/;
const EPOCH_RE = /^[0-9a-f]{8}$/;

export function actorOf(nodeId: string, epoch: string): string {
  return `${nodeId}.${epoch}`;
}

export function newNodeId(random: (bytes: number) => Buffer = randomBytes): string {
  return random(NODE_ID_BYTES).toString('hex');
}

export function newEpoch(random: (bytes: number) => Buffer = randomBytes): string {
  return random(EPOCH_BYTES).toString('hex');
}

/** The file's content: the identity and whether a process was running with it. */
export interface StoredIdentity extends Identity {
  readonly running: boolean;
}

export type IdentityDecision =
  | { readonly action: 'keep'; readonly identity: Identity }
  | { readonly action: 'new-epoch' | 'new-node'; readonly identity: Identity; readonly reason: string };

/** Pure: what identity the node runs with, given what is on disk. */
export function decideIdentity(
  stored: StoredIdentity | undefined,
  dataPresent: boolean,
  nowMs: number,
  random: (bytes: number) => Buffer = randomBytes,
  /** Set when local data was lost at this open although the data dir is there (repair): why. */
  dataLoss?: string,
): IdentityDecision {
  if (stored === undefined) {
    const nodeId = newNodeId(random);
    const epoch = newEpoch(random);
    return {
      action: 'new-node',
      identity: { nodeId, epoch, actor: actorOf(nodeId, epoch), createdAtMs: nowMs },
      reason: dataPresent ? 'identity file missing (data present): new node id and epoch' : 'new data directory',
    };
  }
  if (!dataPresent || stored.running || dataLoss !== undefined) {
    let epoch = newEpoch(random);
    while (epoch === stored.epoch) epoch = newEpoch(random);
    return {
      action: 'new-epoch',
      identity: { nodeId: stored.nodeId, epoch, actor: actorOf(stored.nodeId, epoch), createdAtMs: nowMs },
      reason: !dataPresent
        ? 'local data missing: new actor epoch so dots never reuse counters'
        : dataLoss !== undefined
          ? `${dataLoss}: new actor epoch so dots of lost writes are never reused`
          : 'the previous run did not shut down cleanly: new actor epoch so dots of lost writes are never reused',
    };
  }
  const { running: _running, ...identity } = stored;
  return { action: 'keep', identity };
}

/** Parses the file's bytes; throws IdentityError on anything malformed. */
export function parseIdentity(bytes: Buffer): StoredIdentity {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IdentityError(`${IDENTITY_FILE_NAME} is not valid JSON`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new IdentityError(`${IDENTITY_FILE_NAME} is not an object`);
  const rec = parsed as Record<string, unknown>;
  const { version, nodeId, epoch, createdAtMs, running } = rec;
  if (version !== IDENTITY_FORMAT_VERSION) throw new IdentityError(`${IDENTITY_FILE_NAME}: unsupported version ${String(version)}`);
  if (typeof nodeId !== 'string' || !NODE_ID_RE.test(nodeId)) throw new IdentityError(`${IDENTITY_FILE_NAME}: bad nodeId`);
  if (typeof epoch !== 'string' || !EPOCH_RE.test(epoch)) throw new IdentityError(`${IDENTITY_FILE_NAME}: bad epoch`);
  if (typeof createdAtMs !== 'number' || !Number.isFinite(createdAtMs)) {
    throw new IdentityError(`${IDENTITY_FILE_NAME}: bad createdAtMs`);
  }
  if (running !== undefined && typeof running !== 'boolean') throw new IdentityError(`${IDENTITY_FILE_NAME}: bad running flag`);
  return { nodeId, epoch, actor: actorOf(nodeId, epoch), createdAtMs, running: running === true };
}

export function serializeIdentity(id: Identity, running: boolean): Buffer {
  return Buffer.from(
    JSON.stringify({ version: IDENTITY_FORMAT_VERSION, nodeId: id.nodeId, epoch: id.epoch, createdAtMs: id.createdAtMs, running }) + '\n',
  );
}

export interface LoadIdentityOptions {
  dir: string;
  /** Whether the node's stored data exists (e.g. the engine directory is there). */
  dataPresent: boolean;
  /** Why local data was lost at this open although present (e.g. storage repair dropped tables). */
  dataLoss?: string;
  nowMs: number;
  fs?: FileSystem;
  random?: (bytes: number) => Buffer;
  log?: (level: 'info' | 'warn', msg: string) => void;
}

/**
 * Reads the identity from `dir`, creating or re-epoching it as `decideIdentity` says, and records
 * durably that a process now runs with it (call `markStopped` after a clean close).
 */
export async function loadIdentity(options: LoadIdentityOptions): Promise<Identity> {
  const fs = options.fs ?? nodeFileSystem;
  const file = path.join(options.dir, IDENTITY_FILE_NAME);
  let stored: StoredIdentity | undefined;
  if (await fs.exists(file)) {
    const bytes = await fs.readFile(file);
    if (bytes.length > IDENTITY_FILE_MAX_BYTES) {
      throw new IdentityError(`${file} is ${bytes.length} bytes, over ${IDENTITY_FILE_MAX_BYTES}`);
    }
    try {
      stored = parseIdentity(bytes);
    } catch (err) {
      if (err instanceof IdentityError) throw new IdentityError(`${file}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  const decision = decideIdentity(stored, options.dataPresent, options.nowMs, options.random, options.dataLoss);
  await writeIdentity(fs, options.dir, decision.identity, true);
  if (decision.action !== 'keep') {
    options.log?.(decision.action === 'new-node' ? 'info' : 'warn', `identity: ${decision.reason}; node id ${decision.identity.nodeId} epoch ${decision.identity.epoch}`);
  }
  return decision.identity;
}

/** Records a clean shutdown: the next open keeps the epoch. Call after the data is closed. */
export async function markStopped(dir: string, identity: Identity, fs: FileSystem = nodeFileSystem): Promise<void> {
  await writeIdentity(fs, dir, identity, false);
}

async function writeIdentity(fs: FileSystem, dir: string, id: Identity, running: boolean): Promise<void> {
  await fs.mkdir(dir);
  const file = path.join(dir, IDENTITY_FILE_NAME);
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'write');
  try {
    await fh.append(serializeIdentity(id, running));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fs.syncDir(dir);
}
