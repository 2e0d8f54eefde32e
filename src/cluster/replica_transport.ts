/**
 * The coordinator's ReplicaTransport (src/coordinator/replica_transport.ts) over the real cluster
 * bus, and the bus handlers that serve those calls from this node's Coordinator.
 *
 *   BusReplicaTransport.replicaPut/replicaGet/forwardWrite(node id, ...)
 *     ─▶ address of `node` from the membership (host, bus port) ─▶ bus.request(type, payload)
 *   (replicaPut is coalesced per peer and event-loop turn: replica_put_batcher.ts)
 *   attachReplicaHandlers(bus, coordinator): REPLICA_PUT ─▶ coordinator.onReplicaPut (a plain
 *                                              object: as REPLICA_PUT_BATCH's entries)
 *                                            REPLICA_PUT_BATCH ─▶ rounds (replica_put_rounds.ts)
 *                                              ─▶ coordinator.onReplicaPutBatch
 *                                            REPLICA_GET ─▶ coordinator.onReplicaGetEncoded
 *                                            FORWARD_WRITE ─▶ coordinator.onForwardWriteEncoded
 *
 * Error mapping (the transport contract):
 *  - no address for the node, or the bus says the request never left (peer unreachable, link in
 *    backoff, handshake refused, the address is another node or this one, our bus closed):
 *    ReplicaUnreachableError, safe to send elsewhere;
 *  - the peer's handler answered a typed error the client must see (NOQUORUM, CLUSTERDOWN,
 *    ERR_BAD_QUORUM, TOOLARGE, ...): the same class with the same message;
 *  - anything else (timeout, connection lost after sending): ReplicaCallError.
 */
import { NoQuorumError, UnavailableError } from '../coordinator/fsm_errors.js';
import type { Coordinator, ReplicaPutItem } from '../coordinator/coordinator.js';
import { ContextError, decodeObject, encodeObject, type VersionedObject } from '../coordinator/object.js';
import { isPlainObjectBytes } from '../coordinator/object_plain_write.js';
import { QuorumError } from '../coordinator/quorum.js';
import {
  ReplicaCallError,
  ReplicaUnreachableError,
  decodeReplicaAnswer,
  settleReplicaGetBytes,
  settleReplicaPut,
  type ReplicaGetBytesCallback,
  type ReplicaGetBytesListener,
  type ReplicaGetDone,
  type ReplicaPutCallback,
  type ReplicaPutDone,
  type ReplicaPutOptions,
  type ReplicaTransport,
  type WriteRequestWire,
  type WriteResult,
} from '../coordinator/replica_transport.js';
import { KeyspaceError, type KeyspaceErrorCode } from '../server/keyspace.js';
import type { ClusterBus, PeerAddress } from './bus.js';
import type { BusAnswerListener } from './connection.js';
import { ClusterError, RemoteError } from './errors.js';
import { decodeErrorPayload, encodeErrorPayload } from './connection.js';
import {
  decodeForwardWrite,
  decodeReplicaGet,
  decodeReplicaPut,
  decodeReplicaPutBatch,
  decodeReplicaPutBatchAnswer,
  encodeForwardWrite,
  encodeReplicaGet,
  encodeReplicaPut,
  encodeReplicaPutBatch,
  encodeReplicaPutBatchAnswer,
  ReplicaMessageType,
  replicaGetBytes,
  writeReplicaGet,
  type ReplicaPutEntry,
} from './replica_codec.js';
import { ReplicaPutBatcher } from './replica_put_batcher.js';
import { ReplicaPutRounds } from './replica_put_rounds.js';

/** Where a node id listens on the bus, from the membership table; undefined: unknown node. */
export type AddressBook = (nodeId: string) => { readonly host: string; readonly busPort: number } | undefined;

/** Bus error codes that mean the request certainly did not reach the peer. */
const NOT_SENT: ReadonlySet<string> = new Set(['ERR_PEER_UNREACHABLE', 'ERR_SELF_CONNECTION', 'ERR_PEER_ID_MISMATCH', 'ERR_HANDSHAKE', 'ERR_BUS_OVERLOADED']);

const KEYSPACE_CODES: ReadonlySet<string> = new Set<KeyspaceErrorCode>(['TOOLARGE', 'CORRUPT', 'CLOSED']);

const NOQUORUM_TEXT = /^NOQUORUM (read|write): (\d+) of (\d+) replicas (?:acknowledged|answered)(?: in datacenter (\S+))?/;

/** The typed error a remote coordinator answered, rebuilt with the same class and message. */
export function remoteToTyped(node: string, err: RemoteError): Error {
  const { remoteCode: code, message } = err;
  if (code === 'NOQUORUM') {
    const m = NOQUORUM_TEXT.exec(message);
    const e = m
      ? new NoQuorumError(m[1] as 'read' | 'write', { got: Number(m[2]), need: Number(m[3]), ...(m[4] === undefined ? {} : { dc: m[4] }) })
      : new NoQuorumError('write', { got: 0, need: 0 });
    e.message = message;
    return e;
  }
  if (code === 'CLUSTERDOWN') {
    const e = new UnavailableError('');
    e.message = message;
    return e;
  }
  if (code === 'ERR_BAD_QUORUM') return new QuorumError(message);
  if (code === 'ERR_BAD_CONTEXT') return new ContextError(message);
  if (KEYSPACE_CODES.has(code)) return new KeyspaceError(code as KeyspaceErrorCode, message);
  return new ReplicaCallError(node, `${node} failed: ${code} ${message}`, { cause: err });
}

export class BusReplicaTransport implements ReplicaTransport {
  constructor(
    private readonly bus: ClusterBus,
    private readonly addressOf: AddressBook,
  ) {}

  /**
   * The last object encoded for a replica put. A write's fan-out (put_fsm) and a read repair send
   * ONE object to every other replica in one synchronous loop, so it is encoded once and the bytes
   * reused for the other replicas. Objects are immutable once built (object.ts), so identity is
   * equality here; one entry keeps at most one encoding alive.
   */
  #lastObject: { object: VersionedObject; bytes: Buffer } | undefined;

  /** Replica puts of one event-loop turn go to each peer as one REPLICA_PUT_BATCH. */
  readonly #batcher = new ReplicaPutBatcher({
    single: async (node, e, timeoutMs) => {
      await this.#call(node, ReplicaMessageType.REPLICA_PUT, encodeReplicaPut(e.key, e.objectBytes, e.hintFor), timeoutMs);
    },
    // The bus's callback form when it has one: one closure per put, no promise or async frame.
    singleNotify: (node, e, timeoutMs, done) => {
      const peer = this.#peer(node);
      if (peer === undefined) {
        const err = unknownNode(node);
        queueMicrotask(() => settleReplicaPut(done, node, err));
        return;
      }
      // The same entry for each other replica (see #lastBatch): encoded once.
      let payload = this.#lastSingle?.entry === e ? this.#lastSingle.payload : undefined;
      if (payload === undefined) {
        payload = encodeReplicaPut(e.key, e.objectBytes, e.hintFor);
        this.#lastSingle = { entry: e, payload };
      }
      const ms = Math.max(1, Math.round(timeoutMs));
      if (typeof this.bus.requestNotify !== 'function') {
        // A bus without it (a stand-in in benchmarks and tests).
        this.bus.request(peer, ReplicaMessageType.REPLICA_PUT, payload, ms).then(
          () => settleReplicaPut(done, node, undefined),
          (err: unknown) => settleReplicaPut(done, node, mapCallError(node, err)),
        );
        return;
      }
      this.bus.requestNotify(peer, ReplicaMessageType.REPLICA_PUT, payload, ms, (_answer, err) =>
        settleReplicaPut(done, node, err === undefined ? undefined : mapCallError(node, err)),
      );
    },
    batch: async (node, entries, timeoutMs) => {
      const answer = await this.#call(node, ReplicaMessageType.REPLICA_PUT_BATCH, this.#batchPayload(entries), timeoutMs);
      let errors: (Buffer | undefined)[];
      try {
        errors = decodeReplicaPutBatchAnswer(answer, entries.length);
      } catch (err) {
        throw new ReplicaCallError(node, `${node} answered a replica put batch that does not decode: ${(err as Error).message}`, { cause: err });
      }
      return errors.map((e) => (e === undefined ? undefined : remoteToTyped(node, decodeErrorPayload(e))));
    },
  });

  /**
   * The last REPLICA_PUT_BATCH payload and the entries it encodes. Every write of a loop iteration
   * queues the same entry object for each other replica, in the same order, so the batches of one
   * flush to the different peers usually hold the very same entries: encoded once, the bytes sent
   * to each (the bus never writes into a payload). Holds at most one batch until the next.
   */
  #lastBatch: { entries: readonly ReplicaPutEntry[]; payload: Buffer } | undefined;
  /** The same for a put sent alone (REPLICA_PUT). */
  #lastSingle: { entry: ReplicaPutEntry; payload: Buffer } | undefined;

  #batchPayload(entries: readonly ReplicaPutEntry[]): Buffer {
    const last = this.#lastBatch;
    if (last !== undefined && sameEntries(last.entries, entries)) return last.payload;
    const payload = encodeReplicaPutBatch(entries);
    this.#lastBatch = { entries, payload };
    return payload;
  }

  /** Batches sent and the puts they carried (a batch of one is a plain REPLICA_PUT, not counted). */
  get batchStats(): { readonly batches: number; readonly puts: number } {
    return { batches: this.#batcher.batchesSent, puts: this.#batcher.batchedPuts };
  }

  replicaPut(node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions): Promise<void> {
    return this.#batcher.put(node, this.#putEntry(key, object, opts), opts.timeoutMs);
  }

  replicaPutNotify(node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions, done: ReplicaPutDone): void {
    this.#batcher.putNotify(node, this.#putEntry(key, object, opts), opts.timeoutMs, done);
  }

  /**
   * The last entry queued by replicaPutBytesNotify: a write's fan-out sends the same key and bytes
   * to every other replica in one loop, so they share one entry (entries are never written into).
   */
  #lastEntry: ReplicaPutEntry | undefined;

  /** replicaPutNotify of an object already encoded (a write's stored bytes): sent as they are. */
  replicaPutBytesNotify(node: string, key: Buffer, objectBytes: Buffer, opts: ReplicaPutOptions, done: ReplicaPutCallback): void {
    let e = this.#lastEntry;
    if (e === undefined || e.objectBytes !== objectBytes || e.key !== key || e.hintFor !== opts.hintFor) {
      e = { key, objectBytes, hintFor: opts.hintFor };
      this.#lastEntry = e;
    }
    this.#batcher.putNotify(node, e, opts.timeoutMs, done);
  }

  #putEntry(key: Buffer, object: VersionedObject, opts: ReplicaPutOptions): ReplicaPutEntry {
    let last = this.#lastObject;
    if (last === undefined || last.object !== object) {
      last = { object, bytes: encodeObject(object) };
      this.#lastObject = last;
    }
    return { key, objectBytes: last.bytes, hintFor: opts.hintFor };
  }

  async replicaGet(node: string, key: Buffer, opts: { readonly timeoutMs: number }): Promise<VersionedObject> {
    const bytes = await this.#call(node, ReplicaMessageType.REPLICA_GET, encodeReplicaGet(key), opts.timeoutMs);
    return this.#decode(node, bytes);
  }

  /** replicaGet without its two async frames: one bus request and one continuation per read. */
  replicaGetNotify(node: string, key: Buffer, opts: { readonly timeoutMs: number }, done: ReplicaGetDone): void {
    const peer = this.#peer(node);
    if (peer === undefined) {
      const err = unknownNode(node);
      queueMicrotask(() => done(undefined, err));
      return;
    }
    this.bus.request(peer, ReplicaMessageType.REPLICA_GET, encodeReplicaGet(key), Math.max(1, Math.round(opts.timeoutMs))).then(
      (bytes) => {
        let obj: VersionedObject;
        try {
          obj = this.#decode(node, bytes);
        } catch (err) {
          done(undefined, err);
          return;
        }
        done(obj);
      },
      (err: unknown) => done(undefined, mapCallError(node, err)),
    );
  }

  /**
   * replicaGetNotify without the decode: the answer's bytes as the bus delivered them (get_fsm
   * compares them first). A listener (get_fsm) goes to the bus as the token of one shared bus
   * listener (GET_ANSWERS): no closure per read, the transport's nor the caller's.
   */
  replicaGetBytesNotify(node: string, key: Buffer, opts: { readonly timeoutMs: number }, done: ReplicaGetBytesCallback): void {
    const peer = this.#peer(node);
    if (peer === undefined) {
      const err = unknownNode(node);
      queueMicrotask(() => settleReplicaGetBytes(done, node, undefined, err));
      return;
    }
    const timeoutMs = Math.max(1, Math.round(opts.timeoutMs));
    if (typeof done !== 'function' && typeof this.bus.requestListenWrite === 'function') {
      // The key written straight into the outbound frame batch, the answer to `done` itself.
      this.bus.requestListenWrite(peer, ReplicaMessageType.REPLICA_GET, replicaGetBytes(key), writeReplicaGet, key, timeoutMs, GET_ANSWERS, done);
      return;
    }
    if (typeof this.bus.requestNotifyWrite === 'function') {
      // The bus's callback form, the key written straight into the outbound frame batch: one
      // closure per read, no promise, no payload buffer.
      this.bus.requestNotifyWrite(peer, ReplicaMessageType.REPLICA_GET, replicaGetBytes(key), writeReplicaGet, key, timeoutMs, (bytes, err) => {
        if (err === undefined) settleReplicaGetBytes(done, node, bytes, undefined);
        else settleReplicaGetBytes(done, node, undefined, mapCallError(node, err));
      });
      return;
    }
    // A bus without either (a stand-in in benchmarks and tests).
    this.bus.request(peer, ReplicaMessageType.REPLICA_GET, encodeReplicaGet(key), timeoutMs).then(
      (bytes) => settleReplicaGetBytes(done, node, bytes, undefined),
      (err: unknown) => settleReplicaGetBytes(done, node, undefined, mapCallError(node, err)),
    );
  }

  async forwardWrite(node: string, req: WriteRequestWire, opts: { readonly timeoutMs: number }): Promise<WriteResult> {
    const bytes = await this.#call(node, ReplicaMessageType.FORWARD_WRITE, encodeForwardWrite(req), opts.timeoutMs);
    return this.#decode(node, bytes);
  }

  #decode(node: string, bytes: Buffer): VersionedObject {
    return decodeReplicaAnswer(node, bytes);
  }

  /** The address object last made per node id: one per node, not one per request. */
  readonly #peers = new Map<string, PeerAddress>();

  #peer(node: string): PeerAddress | undefined {
    const addr = this.addressOf(node);
    if (addr === undefined) return undefined;
    const known = this.#peers.get(node);
    if (known !== undefined && known.host === addr.host && known.port === addr.busPort) return known;
    // Moved (a restart on another port) or new: a fresh object, the bus finds its link anew.
    const peer: PeerAddress = Object.freeze({ host: addr.host, port: addr.busPort, id: node });
    this.#peers.set(node, peer);
    return peer;
  }

  async #call(node: string, type: number, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    const peer = this.#peer(node);
    if (peer === undefined) throw unknownNode(node);
    try {
      return await this.bus.request(peer, type, payload, Math.max(1, Math.round(timeoutMs)));
    } catch (err) {
      throw mapCallError(node, err);
    }
  }
}

/** The same entry objects in the same order (entries are never written into). */
function sameEntries(a: readonly ReplicaPutEntry[], b: readonly ReplicaPutEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The bus listener of every replica read made with a ReplicaGetBytesListener (the token): the
 * answer goes to it with the node the read went to (the link's node: the one asked, since a link
 * is used only when its node is the one the request names), an error mapped as for every call.
 */
const GET_ANSWERS: BusAnswerListener<ReplicaGetBytesListener> = {
  busAnswered(listener, payload, err, node) {
    if (err === undefined) listener.replicaGetBytesDone(node, payload, undefined);
    else listener.replicaGetBytesDone(node, undefined, mapCallError(node, err));
  },
};

function unknownNode(node: string): ReplicaUnreachableError {
  return new ReplicaUnreachableError(node, `node ${node} is not in the membership table`);
}

/** A bus request's failure as the transport contract types it (see the header). */
function mapCallError(node: string, err: unknown): Error {
  if (err instanceof RemoteError) return remoteToTyped(node, err);
  if (err instanceof ClusterError && NOT_SENT.has(err.code)) return new ReplicaUnreachableError(node, `${node}: ${err.message}`);
  return new ReplicaCallError(node, `${node}: ${(err as Error).message}`, { cause: err });
}

const EMPTY = Buffer.alloc(0);

/** A handler error as the bus would answer it (code from `err.code`, else ERR). */
function errorPayloadOf(err: unknown): Buffer {
  const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'ERR';
  return encodeErrorPayload(code, err instanceof Error ? err.message : String(err));
}

/** Serves the coordinator's calls arriving on `bus` from this node's Coordinator. */
export function attachReplicaHandlers(bus: Pick<ClusterBus, 'handle'>, coordinator: () => Coordinator): void {
  // Replica puts merged a round at a time, each key once a round (replica_put_rounds.ts).
  const rounds = new ReplicaPutRounds((items) => coordinator().onReplicaPutBatch(items));
  bus.handle(ReplicaMessageType.REPLICA_PUT, async (payload) => {
    const m = decodeReplicaPut(payload);
    if (m.hintFor === undefined && isPlainObjectBytes(m.objectBytes)) {
      // The usual put at -P 1 (the batcher sends a batch of one as REPLICA_PUT): merged on its
      // bytes as a batch's entry is (Keyspace.mergeObjectsBatch: the same stored result as
      // mergeObject's, without decoding, merging and encoding again when the put supersedes).
      // The key is a view into the frame: the merge holds it only while it runs.
      const [err] = await rounds.put([{ key: m.key, encoded: m.objectBytes }]);
      if (err !== undefined) throw err;
      return EMPTY;
    }
    const object = decodeObject(m.objectBytes);
    // A copy of the key: a hint store may keep it (the frame must not stay alive with it).
    await coordinator().onReplicaPut(Buffer.from(m.key), object, m.hintFor === undefined ? {} : { hintFor: m.hintFor });
    return EMPTY;
  });
  bus.handle(ReplicaMessageType.REPLICA_PUT_BATCH, async (payload) => {
    const entries = decodeReplicaPutBatch(payload);
    const results: (Buffer | undefined)[] = new Array<Buffer | undefined>(entries.length);
    const items: ReplicaPutItem[] = [];
    const at: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      try {
        // `encoded`: an unchanged merge (the usual replica put: the incoming object supersedes)
        // stores these bytes instead of encoding the object again. A view into the frame, which
        // the engine copies into its log record (nothing keeps the frame alive). Bytes of the
        // plain shape are known to decode: the store decodes them only if it needs the object.
        // The key is a view too (the merge holds it only while it runs), copied where a hint
        // store may keep it, as on every path but the usual one.
        if (e.hintFor === undefined && isPlainObjectBytes(e.objectBytes)) items.push({ key: e.key, encoded: e.objectBytes });
        else {
          const object = decodeObject(e.objectBytes);
          const key = Buffer.from(e.key);
          items.push(e.hintFor === undefined ? { key, object, encoded: e.objectBytes } : { key, object, hintFor: e.hintFor });
        }
        at.push(i);
      } catch (err) {
        results[i] = errorPayloadOf(err);
      }
    }
    const errors = await rounds.put(items);
    for (let j = 0; j < errors.length; j++) if (errors[j] !== undefined) results[at[j]!] = errorPayloadOf(errors[j]);
    return encodeReplicaPutBatchAnswer(results);
  });
  // Synchronous when the replica answers from memory: the bus answers at once, no promise.
  bus.handle(ReplicaMessageType.REPLICA_GET, (payload) => coordinator().onReplicaGetEncoded(decodeReplicaGet(payload)));
  bus.handle(ReplicaMessageType.FORWARD_WRITE, async (payload) => {
    const req = decodeForwardWrite(payload);
    return coordinator().onForwardWriteEncoded(req);
  });
}
