/**
 * This node's replica store as the request paths see it: a thin wrapper over the Keyspace
 * (src/server/keyspace.ts, which serializes writes per key and persists WAL then memtable).
 *
 * A coordinated write needs what it stored, to fan it out: Keyspace.writeStored hands back the
 * stored bytes themselves (the plain SET's batched write, rewritten on the stored bytes when it
 * can be), so the coordinator sends them to the other replicas with no decode or encode of the
 * object (it used to get the object, which the transport encoded again per write).
 */
import { decodeObject, EMPTY_OBJECT, encodeObject, mergeObjects, type VersionedObject } from './object.js';
import type { Keyspace, MergeEntry, StoredWrite, WriteRequest } from '../server/keyspace.js';
import { dataKey } from '../server/key_layout.js';

/** encodeObject(EMPTY_OBJECT): a replica get of an absent key (the bus copies what it sends). */
export const EMPTY_OBJECT_BYTES = encodeObject(EMPTY_OBJECT);

export class LocalReplica {
  /**
   * `hintedCopy`: this node's hinted copies of a key (hinted handoff), merged into `read`;
   * returns undefined synchronously when it holds none, so the usual read costs nothing more.
   */
  constructor(
    readonly keyspace: Keyspace,
    private readonly hintedCopy?: (key: Buffer) => Promise<VersionedObject | undefined> | undefined,
  ) {}

  /** The actor this node mints dots with. */
  get actor(): string {
    return this.keyspace.actor;
  }

  #actorBytes: Buffer | undefined;

  /** The actor's UTF-8 bytes, encoded once (a keyspace's actor is fixed for its life). */
  get actorUtf8(): Buffer {
    return (this.#actorBytes ??= Buffer.from(this.keyspace.actor, 'utf8'));
  }

  /**
   * Coordinator write: mints a dot with this node's actor, superseding `w.context` (default:
   * everything this replica has seen), stores it, and gives the stored bytes and when they are
   * durable (Keyspace.writeStored: synchronously when it can, else a promise). Throws or rejects
   * with the Keyspace's typed errors (TOOLARGE, CLOSED, ...) unchanged.
   */
  coordinateWrite(key: Buffer, w: WriteRequest): StoredWrite | Promise<StoredWrite> {
    return this.keyspace.writeStored(key, w);
  }

  /** Replica sync: merges `incoming` into the stored object; returns what is stored. */
  merge(key: Buffer, incoming: VersionedObject): Promise<VersionedObject> {
    return this.keyspace.mergeObject(key, incoming);
  }

  /**
   * Replica sync of several keys with one engine write (Keyspace.mergeObjectsBatch): per key the
   * stored result is exactly merge()'s. Rejects as a whole (one atomic engine batch). `encoded`:
   * the bytes `object` was decoded from, stored as they are when the merge leaves it unchanged;
   * an entry may come with its bytes only (Keyspace MergeEntry: bytes that decode). Resolves
   * with mergeObjectsBatch's answer (no async wrapper: one promise per replica put round).
   */
  mergeBatch(entries: readonly MergeEntry[]): Promise<unknown> {
    return this.keyspace.mergeObjectsBatch(entries);
  }

  /**
   * read() without a promise when it can be: from memory (KVEngine.getSync) with no hinted copy
   * held (the usual case), the bytes the engine holds (null: absent), for the caller to decode
   * with decodeStored (a read keeps them to compare other replicas' answers with: get_fsm.ts);
   * else read()'s promise.
   * The bytes are a read-only view into an immutable engine buffer (KVEngine.getSync).
   */
  readStoredNow(key: Buffer): Buffer | null | Promise<VersionedObject> {
    const hinted = this.hintedCopy?.(key);
    if (hinted !== undefined) return this.#withHinted(key, hinted);
    const stored = this.keyspace.engine.getSync?.(dataKey(key));
    if (stored === undefined) return this.keyspace.readObject(key);
    return stored;
  }

  /**
   * The object of bytes readStoredNow returned (null: EMPTY_OBJECT). Bytes that do not decode
   * (a corrupt stored object) give read()'s promise instead, which rejects with the Keyspace's
   * CORRUPT error and logs it.
   */
  decodeStored(key: Buffer, stored: Buffer | null): VersionedObject | Promise<VersionedObject> {
    if (stored === null) return EMPTY_OBJECT;
    try {
      return decodeObject(stored);
    } catch {
      return this.keyspace.readObject(key);
    }
  }

  /**
   * What a peer's replica get is answered with: read()'s object encoded (encodeObject). From
   * memory with no hinted copy held (the usual case) that is the stored bytes themselves, handed
   * over without a decode and a re-encode (stored objects are encodeObject's canonical bytes; a
   * corrupt one then fails to decode at the coordinator, which counts this replica's answer as an
   * error, as it does a CORRUPT reply). Else a promise of read()'s object, for the caller to encode.
   */
  readEncodedNow(key: Buffer): Buffer | Promise<VersionedObject> {
    const hinted = this.hintedCopy?.(key);
    if (hinted !== undefined) return this.#withHinted(key, hinted);
    this.keyspace.checkKey(key);
    const stored = this.keyspace.engine.getSync?.(dataKey(key));
    if (stored === undefined) return this.keyspace.readObject(key);
    return stored ?? EMPTY_OBJECT_BYTES;
  }

  /** The stored object merged with any hinted copy, dead siblings included (EMPTY_OBJECT when absent). */
  read(key: Buffer): Promise<VersionedObject> {
    const hinted = this.hintedCopy?.(key);
    if (hinted === undefined) return this.keyspace.readObject(key);
    return this.#withHinted(key, hinted);
  }

  #withHinted(key: Buffer, hinted: Promise<VersionedObject | undefined>): Promise<VersionedObject> {
    return Promise.all([this.keyspace.readObject(key), hinted]).then(([own, h]) => (h === undefined ? own : mergeObjects(own, h, this.keyspace.writeOptions())));
  }
}
