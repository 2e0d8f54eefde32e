/**
 * Bus handshake: both sides prove knowledge of `cluster-secret` and learn each other's node id
 * before any application frame is accepted. Pure message logic (no sockets); connection.ts
 * drives it with frames of the types named here, under MAX_HANDSHAKE_FRAME_BYTES and a timeout.
 *
 *   dialer (client)                                      listener (server)
 *     HELLO      v, clientId, clientNonce(32)  ───────▶
 *                                              ◀───────  CHALLENGE  v, serverId, serverNonce(32)
 *     AUTH       clientProof(32)               ───────▶  verify clientProof, else close
 *                                              ◀───────  WELCOME    serverProof(32)
 *     verify serverProof, else close
 *
 *   proof(role) = HMAC-SHA256(key = secret, "ringkv-bus-v1" ‖ role ‖ transcript)
 *   role        = 0x43 'C' for the dialer, 0x53 'S' for the listener (a proof cannot be reflected)
 *   transcript  = clientNonce ‖ serverNonce ‖ u8 len ‖ clientId ‖ u8 len ‖ serverId
 *
 * Why it holds: each proof covers both fresh random nonces, so a recorded AUTH or WELCOME is
 * worthless in any other session (replay fails), and the ids are bound into the proof. The
 * listener reveals its proof only after the dialer proved itself, so a stranger dialing the bus
 * port learns nothing it could attack offline. With no secret set the key is empty: the exchange
 * still runs (ids are learned) but proves nothing, and a node with a secret refuses a node
 * without one in both directions. Not in scope: confidentiality or per-frame integrity against an
 * on-path attacker after the handshake; run the bus on a private network or a tunnel for that.
 *
 * Message payloads (all lengths checked against limits.ts before use):
 *   HELLO      u8 version | 32 nonce | u8 idLen | id
 *   CHALLENGE  u8 version | 32 nonce | u8 idLen | id
 *   AUTH       32 proof
 *   WELCOME    32 proof
 */
import assert from 'node:assert';
import { createHmac, randomBytes as cryptoRandomBytes, timingSafeEqual } from 'node:crypto';
import { ClusterError } from './errors.js';
import { MAX_NODE_ID_BYTES } from './limits.js';

export const HANDSHAKE_VERSION = 1;
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
const LABEL = Buffer.from('ringkv-bus-v1', 'ascii');
const ROLE_CLIENT = 0x43;
const ROLE_SERVER = 0x53;
const NODE_ID_RE = /^[\x21-\x7e]+$/;

/** A node id may go on the wire: 1..MAX_NODE_ID_BYTES printable ASCII characters, no spaces. */
export function isValidNodeId(id: string): boolean {
  return id.length >= 1 && id.length <= MAX_NODE_ID_BYTES && NODE_ID_RE.test(id);
}

export interface HandshakeOptions {
  readonly selfId: string;
  /** The cluster secret; empty = none. */
  readonly secret: Buffer;
  /** Injected for tests; default node:crypto randomBytes. */
  readonly randomBytes?: (n: number) => Buffer;
}

function fail(message: string): never {
  throw new ClusterError('ERR_HANDSHAKE', message);
}

function encodeHello(nonce: Buffer, id: string): Buffer {
  const idBytes = Buffer.from(id, 'ascii');
  return Buffer.concat([Buffer.from([HANDSHAKE_VERSION]), nonce, Buffer.from([idBytes.length]), idBytes]);
}

function decodeHello(payload: Buffer, what: string): { nonce: Buffer; id: string } {
  if (payload.length < 2 + NONCE_BYTES) fail(`${what} too short`);
  if (payload[0] !== HANDSHAKE_VERSION) fail(`${what} has unsupported version ${payload[0]}`);
  const idLen = payload[1 + NONCE_BYTES]!;
  if (idLen < 1 || idLen > MAX_NODE_ID_BYTES) fail(`${what} node id length ${idLen} out of range`);
  if (payload.length !== 2 + NONCE_BYTES + idLen) fail(`${what} length does not match its node id`);
  const id = payload.toString('latin1', 2 + NONCE_BYTES);
  if (!isValidNodeId(id)) fail(`${what} carries an invalid node id`);
  return { nonce: Buffer.from(payload.subarray(1, 1 + NONCE_BYTES)), id };
}

export function computeProof(
  secret: Buffer,
  role: 'client' | 'server',
  clientNonce: Buffer,
  serverNonce: Buffer,
  clientId: string,
  serverId: string,
): Buffer {
  const h = createHmac('sha256', secret);
  h.update(LABEL);
  h.update(Buffer.from([role === 'client' ? ROLE_CLIENT : ROLE_SERVER]));
  h.update(clientNonce);
  h.update(serverNonce);
  const c = Buffer.from(clientId, 'ascii');
  const s = Buffer.from(serverId, 'ascii');
  h.update(Buffer.from([c.length]));
  h.update(c);
  h.update(Buffer.from([s.length]));
  h.update(s);
  return h.digest();
}

function checkProof(payload: Buffer, expected: Buffer, what: string): void {
  if (payload.length !== PROOF_BYTES) fail(`${what} proof has ${payload.length} bytes, want ${PROOF_BYTES}`);
  if (!timingSafeEqual(payload, expected)) fail(`${what} proof does not match: wrong cluster-secret`);
}

/** The dialer's side: hello() -> onChallenge() -> onWelcome(). Each step may be called once, in order. */
export class ClientHandshake {
  readonly #opts: HandshakeOptions;
  readonly #nonce: Buffer;
  #step: 'new' | 'hello' | 'auth' | 'done' = 'new';
  #serverId = '';
  #serverNonce: Buffer = Buffer.alloc(0);

  constructor(opts: HandshakeOptions) {
    assert(isValidNodeId(opts.selfId), `invalid node id ${JSON.stringify(opts.selfId)}`);
    this.#opts = opts;
    this.#nonce = (opts.randomBytes ?? cryptoRandomBytes)(NONCE_BYTES);
    assert(this.#nonce.length === NONCE_BYTES);
  }

  /** HELLO payload. */
  hello(): Buffer {
    assert(this.#step === 'new', 'hello() twice');
    this.#step = 'hello';
    return encodeHello(this.#nonce, this.#opts.selfId);
  }

  /** Takes the CHALLENGE payload; returns the AUTH payload. */
  onChallenge(payload: Buffer): Buffer {
    if (this.#step !== 'hello') fail('unexpected CHALLENGE');
    const { nonce, id } = decodeHello(payload, 'CHALLENGE');
    this.#serverId = id;
    this.#serverNonce = nonce;
    this.#step = 'auth';
    return computeProof(this.#opts.secret, 'client', this.#nonce, nonce, this.#opts.selfId, id);
  }

  /** Takes the WELCOME payload; returns the verified peer id. */
  onWelcome(payload: Buffer): string {
    if (this.#step !== 'auth') fail('unexpected WELCOME');
    const expected = computeProof(this.#opts.secret, 'server', this.#nonce, this.#serverNonce, this.#opts.selfId, this.#serverId);
    checkProof(payload, expected, 'WELCOME');
    this.#step = 'done';
    return this.#serverId;
  }
}

/** The listener's side: onHello() -> onAuth(). */
export class ServerHandshake {
  readonly #opts: HandshakeOptions;
  readonly #nonce: Buffer;
  #step: 'new' | 'challenged' | 'done' = 'new';
  #clientId = '';
  #clientNonce: Buffer = Buffer.alloc(0);

  constructor(opts: HandshakeOptions) {
    assert(isValidNodeId(opts.selfId), `invalid node id ${JSON.stringify(opts.selfId)}`);
    this.#opts = opts;
    this.#nonce = (opts.randomBytes ?? cryptoRandomBytes)(NONCE_BYTES);
    assert(this.#nonce.length === NONCE_BYTES);
  }

  /** Takes the HELLO payload; returns the CHALLENGE payload. */
  onHello(payload: Buffer): Buffer {
    if (this.#step !== 'new') fail('unexpected HELLO');
    const { nonce, id } = decodeHello(payload, 'HELLO');
    this.#clientId = id;
    this.#clientNonce = nonce;
    this.#step = 'challenged';
    return encodeHello(this.#nonce, this.#opts.selfId);
  }

  /** Takes the AUTH payload; returns the verified peer id and the WELCOME payload. */
  onAuth(payload: Buffer): { peerId: string; welcome: Buffer } {
    if (this.#step !== 'challenged') fail('unexpected AUTH');
    const expected = computeProof(this.#opts.secret, 'client', this.#clientNonce, this.#nonce, this.#clientId, this.#opts.selfId);
    checkProof(payload, expected, 'AUTH');
    this.#step = 'done';
    const welcome = computeProof(this.#opts.secret, 'server', this.#clientNonce, this.#nonce, this.#clientId, this.#opts.selfId);
    return { peerId: this.#clientId, welcome };
  }
}
