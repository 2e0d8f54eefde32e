/**
 * What the request paths (put_fsm, get_fsm) need from the network: three node-to-node calls.
 * The coordinator owns no sockets; the cluster bus implements this interface for real, and
 * tests plug in an in-memory one that can drop, delay and partition messages, so a whole
 * cluster of coordinators runs in one process (ARCHITECTURE.md sections 10, 11).
 *
 * Contract for implementations:
 *  - Every call settles: it resolves, or rejects, at the latest about `timeoutMs` after it was
 *    made (the fsm keeps its own deadline as well, so a late settle is harmless, never a crash).
 *  - A rejection is a ReplicaUnreachableError when the request certainly did NOT reach the
 *    peer (no connection, refused, handshake failed): the caller may safely send it elsewhere.
 *    Anything else (timeout, connection lost after sending, remote failure) is a
 *    ReplicaCallError (or any other Error): the request may have been applied there.
 *  - forwardWrite rejects with the remote's typed error when the remote coordinator answered
 *    with one: NoQuorumError / UnavailableError / QuorumError (coordinator_errors.ts,
 *    quorum.ts) must come back as the same classes with the same message, since the client
 *    sees that text. Other remote errors may come back as ReplicaCallError.
 *  - Objects cross the wire as bytes (object_codec.ts): the receiver never shares structure
 *    with the sender. Keys are at most max-key-bytes; the bus checks its frame limits.
 *
 * The receiving side of each call is a Coordinator method (coordinator.ts): onReplicaPut,
 * onReplicaGet, onForwardWrite.
 */

import type { Context } from './dvv.js';
import { decodeObject, type VersionedObject } from './object.js';
import type { QuorumSpec } from './quorum.js';

/** A client write forwarded from a node that cannot coordinate it to one that can. */
export interface WriteRequestWire {
  readonly key: Buffer;
  /** null: a delete (tombstone). */
  readonly value: Buffer | null;
  /** Absolute ms; 0: no expiry. */
  readonly expiresAtMs: number;
  /** SETCTX/DELCTX: supersede exactly this context. Absent: what the coordinator has seen. */
  readonly context?: Context;
  /** The client's write quorum override (CLIENT QUORUM); absent: the coordinator's config. */
  readonly w?: QuorumSpec;
  /** Budget left for the remote coordinator, ms. */
  readonly timeoutMs: number;
  /** Forwards this request has already made (loop guard, MAX_FORWARD_HOPS). */
  readonly hops: number;
}

/** What a coordinated write answers: the object as stored by its coordinator after the write. */
export type WriteResult = VersionedObject;

export interface ReplicaPutOptions {
  readonly timeoutMs: number;
  /**
   * Set when `node` is a sloppy-quorum fallback: the primary this copy stands in for. The
   * receiver stores it as a hint for handoff to that primary.
   */
  readonly hintFor?: string;
}

/** How a replica get ends: the replica's object, or undefined and the error. */
export type ReplicaGetDone = (obj: VersionedObject | undefined, err?: unknown) => void;

/** How a replica get ends when answered as bytes: the object bytes the replica sent, or undefined and the error. */
export type ReplicaGetBytesDone = (bytes: Buffer | undefined, err?: unknown) => void;

/**
 * ReplicaGetBytesDone as an object: `replicaGetBytesDone(node, bytes, err)` is called instead of a
 * closure made per asked replica (every GET of a cluster asks at least one other replica; the
 * closure, and the transport's own one around it, were allocated per read).
 */
export interface ReplicaGetBytesListener {
  replicaGetBytesDone(node: string, bytes: Buffer | undefined, err: unknown): void;
}

/** Either form of a replica get's callback (replicaGetBytesNotify takes both). */
export type ReplicaGetBytesCallback = ReplicaGetBytesDone | ReplicaGetBytesListener;

/** Calls `done` for the get from `node`, in whichever form it was given. */
export function settleReplicaGetBytes(done: ReplicaGetBytesCallback, node: string, bytes: Buffer | undefined, err: unknown): void {
  if (typeof done === 'function') done(bytes, err);
  else done.replicaGetBytesDone(node, bytes, err);
}

/** How a replica put ends: undefined when it is durable on the replica, else the error. */
export type ReplicaPutDone = (err: unknown) => void;

/**
 * ReplicaPutDone as an object: `replicaPutDone(node, err)` is called instead of a closure made per
 * target (a write's fan-out, put_fsm: every SET of a cluster sends N-1 puts, and one closure and
 * its context each were a visible share of the coordinator's allocation).
 */
export interface ReplicaPutListener {
  replicaPutDone(node: string, err: unknown): void;
}

/** Either form of a replica put's callback (replicaPutBytesNotify takes both). */
export type ReplicaPutCallback = ReplicaPutDone | ReplicaPutListener;

/** Calls `done` for the put to `node`, in whichever form it was given. */
export function settleReplicaPut(done: ReplicaPutCallback, node: string, err: unknown): void {
  if (typeof done === 'function') done(err);
  else done.replicaPutDone(node, err);
}

export interface ReplicaTransport {
  /** Ask replica `node` to merge `object` for `key` into its store; resolves when durable there. */
  replicaPut(node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions): Promise<void>;
  /**
   * Optional: replicaPut with a callback instead of a promise, under the same contract (`done`
   * runs exactly once, never synchronously, with undefined when durable there or the error
   * replicaPut would reject with). A write's fan-out uses it when present (replicaPutThen): a
   * promise and its continuation per target and write cost the coordinator measurable GC.
   */
  replicaPutNotify?(node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions, done: ReplicaPutDone): void;
  /**
   * Optional: replicaPutNotify with the object as its encoding (encodeObject's bytes, e.g. what
   * the coordinator's own replica stored), sent as they are: a write's fan-out uses it when
   * present (replicaPutBytesThen), so the object is neither decoded nor encoded again to be sent.
   * Same contract as replicaPutNotify (`done` settled through settleReplicaPut, in either form);
   * the bytes are not written into.
   */
  replicaPutBytesNotify?(node: string, key: Buffer, objectBytes: Buffer, opts: ReplicaPutOptions, done: ReplicaPutCallback): void;
  /** Ask replica `node` for its object for `key` (EMPTY_OBJECT when absent). */
  replicaGet(node: string, key: Buffer, opts: { readonly timeoutMs: number }): Promise<VersionedObject>;
  /**
   * Optional: replicaGet with a callback (`done` runs exactly once, never synchronously, with the
   * object, or undefined and the error replicaGet would reject with). Reads use it when present
   * (replicaGetThen), for the same reason as replicaPutNotify.
   */
  replicaGetNotify?(node: string, key: Buffer, opts: { readonly timeoutMs: number }, done: ReplicaGetDone): void;
  /**
   * Optional: replicaGetNotify with the answer as the object bytes the replica sent (object_codec.ts,
   * not decoded; the caller decodes them with decodeReplicaAnswer). A read compares them with its
   * own replica's stored bytes and decodes only an answer that differs: a replica answers with
   * its stored bytes, and replicas in sync store identical bytes, so the usual answer needs no
   * decode. `done` runs exactly once, never synchronously, in either form (settleReplicaGetBytes:
   * bytes undefined with the error); the bytes are the caller's to keep.
   */
  replicaGetBytesNotify?(node: string, key: Buffer, opts: { readonly timeoutMs: number }, done: ReplicaGetBytesCallback): void;
  /** Forward a client write to a node that can coordinate it; resolves with its result. */
  forwardWrite(node: string, req: WriteRequestWire, opts: { readonly timeoutMs: number }): Promise<WriteResult>;
}

/** The request certainly did not reach `node` (safe to retry elsewhere). */
export class ReplicaUnreachableError extends Error {
  readonly code = 'ERR_REPLICA_UNREACHABLE';
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicaUnreachableError';
  }
}

/** The call failed after it may have reached `node` (timeout, lost connection, remote error). */
export class ReplicaCallError extends Error {
  readonly code = 'ERR_REPLICA_CALL';
  constructor(
    readonly node: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReplicaCallError';
  }
}

/** One replica put, reported to `done` (the transport's callback form when it has one). */
export function replicaPutThen(transport: ReplicaTransport, node: string, key: Buffer, object: VersionedObject, opts: ReplicaPutOptions, done: ReplicaPutDone): void {
  if (transport.replicaPutNotify !== undefined) {
    transport.replicaPutNotify(node, key, object, opts, done);
    return;
  }
  transport.replicaPut(node, key, object, opts).then(
    () => done(undefined),
    (err: unknown) => done(err ?? new ReplicaCallError(node, `replica put to ${node} failed`)),
  );
}

/**
 * One replica put of an object given as its bytes, reported to `done`: sent as the bytes when the
 * transport takes them (replicaPutBytesNotify), else as `objectOf()` (the decoded object; the
 * caller decodes once for all targets).
 */
export function replicaPutBytesThen(
  transport: ReplicaTransport,
  node: string,
  key: Buffer,
  objectBytes: Buffer,
  objectOf: () => VersionedObject,
  opts: ReplicaPutOptions,
  done: ReplicaPutCallback,
): void {
  if (transport.replicaPutBytesNotify !== undefined) {
    transport.replicaPutBytesNotify(node, key, objectBytes, opts, done);
    return;
  }
  replicaPutThen(transport, node, key, objectOf(), opts, typeof done === 'function' ? done : (err) => done.replicaPutDone(node, err));
}

/** A replica's answer bytes decoded; throws ReplicaCallError when they do not decode (a corrupt answer). */
export function decodeReplicaAnswer(node: string, bytes: Buffer): VersionedObject {
  try {
    return decodeObject(bytes);
  } catch (err) {
    throw new ReplicaCallError(node, `${node} answered an object that does not decode: ${(err as Error).message}`, { cause: err });
  }
}

/** One replica get, reported to `done` (the transport's callback form when it has one). */
export function replicaGetThen(transport: ReplicaTransport, node: string, key: Buffer, opts: { readonly timeoutMs: number }, done: ReplicaGetDone): void {
  if (transport.replicaGetNotify !== undefined) {
    transport.replicaGetNotify(node, key, opts, done);
    return;
  }
  transport.replicaGet(node, key, opts).then(
    (obj) => done(obj),
    (err: unknown) => done(undefined, err),
  );
}
