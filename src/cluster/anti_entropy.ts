/**
 * Anti-entropy between replicas (ARCHITECTURE.md section 5): every `anti-entropy-interval-ms`
 * and on CLUSTER REPAIR, this node compares its Merkle tree (merkle_store.ts) with each peer
 * that replicates some of the same slots, and merges the objects that differ with the dotted
 * version vectors (Keyspace.mergeObject: sibling union; last-write-wins only under
 * `conflict-policy lww`).
 *
 * One exchange, initiator I and responder R, over the slots both hold (the mask):
 *
 *   I ── AE_HASHES(mask, level 0, [])          ──▶ R   root of R's tree
 *      roots equal: done (one round trip)
 *   I ── AE_HASHES(mask, level d, parents)     ──▶ R   4 child hashes per parent
 *      I keeps the children whose hashes differ from its own; d = 0 .. 9, leaves at level 10
 *   I ── AE_KEYS(leaves, my (key, entryHash, clockSum)) ──▶ R
 *        ◀── R's objects that differ and that I's version cannot dominate (I merges them)
 *            + the keys R wants
 *   I ── AE_PUSH(wanted objects, as merged)    ──▶ R   R merges them
 *        ◀── R's merge results that differ from what was pushed (concurrent versions; I merges)
 *
 * Only hashes of differing subtrees, the keys of differing leaves with a 64-bit hash and the
 * clock sum of their version, and the objects that actually differ cross the wire: a missing or
 * stale copy costs one object in either direction (bench/anti_entropy.ts measures both), and
 * concurrent versions converge within the same round through the push reply.
 *
 * Pacing: requests are bounded (MAX_AE_PARENTS_PER_REQUEST, MAX_AE_LEAVES_PER_REQUEST,
 * MAX_AE_REPLY_OBJECT_BYTES), exchanges run one at a time, and a background round waits as long
 * as each request took before the next, and as long as merging a reply's objects took (at most
 * half of the time busy), so client traffic keeps the event loop. CLUSTER REPAIR runs unpaced (still in bounded steps, yielding between them).
 */
import type { Ring } from '../coordinator/ring.js';
import { decodeObject, encodeObject } from '../coordinator/object.js';
import { keySlot } from '../coordinator/slot.js';
import { dataKey, DATA_KEY_PREFIX_BYTES, slotRangeBounds } from '../server/key_layout.js';
import type { Keyspace } from '../server/keyspace.js';
import type { LogFn } from '../server/logger.js';
import type { ConfigView } from '../server/types.js';
import type { ClusterBus } from './bus.js';
import { ClusterError } from './errors.js';
import type { BusAddressBook } from './cluster_keys_transport.js';
import {
  AntiEntropyMessageType,
  decodeHashesRequest,
  decodeHashesResponse,
  decodeKeysRequest,
  decodeKeysResponse,
  decodePush,
  decodePushResponse,
  encodeHashesRequest,
  encodeHashesResponse,
  encodeKeysRequest,
  encodeKeysResponse,
  encodePush,
  encodePushResponse,
  MAX_AE_LEAVES_PER_REQUEST,
  MAX_AE_PARENTS_PER_REQUEST,
  MAX_AE_REPLY_OBJECT_BYTES,
  MAX_CLOCK_SUM,
  type KeyedObject,
  type LeafListing,
} from './anti_entropy_codec.js';
import { clockSum, compareLeaf, replicaPeers, sharedSlots, type LocalEntry } from './anti_entropy_plan.js';
import { childHashes, differingChildren, entryHash, keyBucket, LEAF_LEVEL, leafIndex, maskOf, nodeHash, rangesOf, slotDigest, slotOfLeaf, type SlotMask } from './merkle.js';
import type { MerkleStore } from './merkle_store.js';

/** How long one anti-entropy request may take, ms (a leaf batch can carry MAX_AE_REPLY_OBJECT_BYTES). */
export const AE_REQUEST_TIMEOUT_MS = 30_000;
/** Re-asks of one leaf batch whose reply was truncated (each carries at least one object). */
export const AE_TRUNCATED_RETRIES_MAX = 10_000;
/** Delay before the first background round after start, ms (lets gossip settle the ring). */
export const AE_FIRST_ROUND_DELAY_MS = 5_000;

export interface AntiEntropyStats {
  rounds: number;
  exchanges: number;
  exchangeErrors: number;
  /** Leaves found different (summed over exchanges). */
  differingLeaves: number;
  /** Objects received from peers and merged here. */
  keysPulled: number;
  /** Objects sent to peers for them to merge. */
  keysPushed: number;
  /**
   * Objects a peer sent (or wanted to send) for slots this node holds in neither its current nor
   * its target ring, refused: a peer on an older view (e.g. a node back from a crash that has not
   * heard of a join yet) would otherwise put a copy on a node that gave the slot up, after that
   * node's sweep (stream_manager.ts), leaving N+1 copies for good.
   */
  keysRefused: number;
  bytesSent: number;
  bytesReceived: number;
  lastRoundMs: number;
  lastRoundAtMs: number;
  running: boolean;
}

/** What one round did (CLUSTER REPAIR's reply). A type, not an interface: it is a Record<string, number>. */
export type RoundSummary = {
  peers: number;
  errors: number;
  differingLeaves: number;
  keysPulled: number;
  keysPushed: number;
  bytesSent: number;
  bytesReceived: number;
  ms: number;
};

export interface AntiEntropyOptions {
  bus: ClusterBus;
  addressOf: BusAddressBook;
  selfId: string;
  keyspace: Keyspace;
  store: MerkleStore;
  ring: () => Ring;
  /** True when this node holds `slot` in its current or target ring (objects of other slots are refused). */
  owns: (slot: number) => boolean;
  isUp: (id: string) => boolean;
  config: ConfigView;
  log: LogFn;
  now: () => number;
}

/** The clock sum of a stored encoding; an object that does not decode is offered as if newest. */
function clockSumOf(bytes: Buffer): number {
  try {
    return clockSum(decodeObject(bytes));
  } catch {
    return MAX_CLOCK_SUM;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class AntiEntropy {
  readonly stats: AntiEntropyStats = {
    rounds: 0,
    exchanges: 0,
    exchangeErrors: 0,
    differingLeaves: 0,
    keysPulled: 0,
    keysPushed: 0,
    keysRefused: 0,
    bytesSent: 0,
    bytesReceived: 0,
    lastRoundMs: 0,
    lastRoundAtMs: 0,
    running: false,
  };
  readonly #o: AntiEntropyOptions;
  #timer: NodeJS.Timeout | undefined;
  #current: Promise<RoundSummary> | undefined;
  #closed = false;

  constructor(o: AntiEntropyOptions) {
    this.#o = o;
    const bus = o.bus;
    bus.handle(AntiEntropyMessageType.AE_HASHES, (p) => this.#count(p, this.#serveHashes(p)));
    bus.handle(AntiEntropyMessageType.AE_KEYS, (p) => this.#count(p, this.#serveKeys(p)));
    bus.handle(AntiEntropyMessageType.AE_PUSH, (p) => this.#count(p, this.#servePush(p)));
  }

  /** Starts the background rounds and the first build of the Merkle leaves. */
  start(): void {
    void this.#o.store.ensureClean().catch((err: Error) => this.#o.log('error', `anti-entropy: building the Merkle tree failed: ${err.message}`));
    const graceMs = this.#o.config.getNumber('gc-grace-seconds') * 1000;
    const intervalMs = this.#o.config.getNumber('anti-entropy-interval-ms');
    if (intervalMs > 0 && graceMs <= intervalMs) {
      this.#o.log('warn', `anti-entropy: gc-grace-seconds (${graceMs / 1000}) is not longer than anti-entropy-interval-ms (${intervalMs}): a delete may be resurrected by repair`);
    }
    this.#schedule(AE_FIRST_ROUND_DELAY_MS);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** Runs a round now (after the one in progress, if any) and resolves with what it did. */
  async repair(): Promise<RoundSummary> {
    while (this.#current !== undefined) await this.#current.catch(() => undefined);
    return this.#runRound(false);
  }

  /** INFO fields (the `# Cluster` section): `antientropy_*`. */
  infoFields(): Array<readonly [string, number]> {
    const s = this.stats;
    return [
      ['antientropy_rounds', s.rounds],
      ['antientropy_running', s.running ? 1 : 0],
      ['antientropy_exchanges', s.exchanges],
      ['antientropy_exchange_errors', s.exchangeErrors],
      ['antientropy_differing_leaves', s.differingLeaves],
      ['antientropy_keys_repaired', s.keysPulled],
      ['antientropy_keys_sent', s.keysPushed],
      ['antientropy_keys_refused', s.keysRefused],
      ['antientropy_bytes_sent', s.bytesSent],
      ['antientropy_bytes_received', s.bytesReceived],
      ['antientropy_last_round_ms', s.lastRoundMs],
      ['antientropy_last_round_at_ms', s.lastRoundAtMs],
      ['antientropy_dirty_slots', this.#o.store.dirtySlots()],
      ['antientropy_tree_rebuilds', this.#o.store.stats.rebuilds],
    ];
  }

  /** CLUSTER DIGEST: one string per slot of [first, last] (merkle.ts slotDigest). */
  async digest(first: number, last: number): Promise<string[]> {
    const mask = maskOf([[first, last]]);
    await this.#o.store.ensureClean(mask);
    const out: string[] = [];
    for (let s = first; s <= last; s++) out.push(slotDigest(this.#o.store.leaves, s));
    return out;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const interval = this.#o.config.getNumber('anti-entropy-interval-ms');
      if (interval <= 0 || this.#current !== undefined) {
        this.#schedule(interval > 0 ? interval : AE_FIRST_ROUND_DELAY_MS);
        return;
      }
      this.#runRound(true)
        .catch((err: Error) => this.#o.log('warn', `anti-entropy: round failed: ${err.message}`))
        .finally(() => this.#schedule(this.#o.config.getNumber('anti-entropy-interval-ms') || AE_FIRST_ROUND_DELAY_MS));
    }, delayMs);
    this.#timer.unref();
  }

  #runRound(paced: boolean): Promise<RoundSummary> {
    const run = this.#round(paced);
    this.#current = run;
    this.stats.running = true;
    return run.finally(() => {
      if (this.#current === run) this.#current = undefined;
      this.stats.running = false;
    });
  }

  async #round(paced: boolean): Promise<RoundSummary> {
    const o = this.#o;
    const started = o.now();
    const before = { ...this.stats };
    const ring = o.ring();
    const peers = replicaPeers(ring, o.selfId).filter((p) => o.isUp(p));
    let errors = 0;
    for (const peer of peers) {
      if (this.#closed) break;
      try {
        await this.#exchange(peer, sharedSlots(ring, o.selfId, peer), paced);
        this.stats.exchanges++;
      } catch (err) {
        errors++;
        this.stats.exchangeErrors++;
        o.log('warn', `anti-entropy: exchange with ${peer} failed: ${(err as Error).message}`);
      }
    }
    const ms = o.now() - started;
    this.stats.rounds++;
    this.stats.lastRoundMs = ms;
    this.stats.lastRoundAtMs = o.now();
    return {
      peers: peers.length,
      errors,
      differingLeaves: this.stats.differingLeaves - before.differingLeaves,
      keysPulled: this.stats.keysPulled - before.keysPulled,
      keysPushed: this.stats.keysPushed - before.keysPushed,
      bytesSent: this.stats.bytesSent - before.bytesSent,
      bytesReceived: this.stats.bytesReceived - before.bytesReceived,
      ms,
    };
  }

  // ---- initiator ---------------------------------------------------------------------------

  async #exchange(peer: string, mask: SlotMask, paced: boolean): Promise<void> {
    const store = this.#o.store;
    const ranges = rangesOf(mask);
    if (ranges.length === 0) return;
    await store.ensureClean(mask);
    const first = decodeHashesResponse(await this.#call(peer, AntiEntropyMessageType.AE_HASHES, encodeHashesRequest({ ranges, parentLevel: 0, parents: [] }), paced), 0);
    if (first.root === nodeHash(store.leaves, mask, 0, 0)) return;
    // Descend level by level into the differing subtrees only.
    let frontier = [0];
    for (let level = 0; level < LEAF_LEVEL && frontier.length > 0; level++) {
      const next: number[] = [];
      for (let i = 0; i < frontier.length; i += MAX_AE_PARENTS_PER_REQUEST) {
        const parents = frontier.slice(i, i + MAX_AE_PARENTS_PER_REQUEST);
        const res = decodeHashesResponse(await this.#call(peer, AntiEntropyMessageType.AE_HASHES, encodeHashesRequest({ ranges, parentLevel: level, parents }), paced), parents.length);
        await store.ensureClean(mask);
        for (const c of differingChildren(parents, childHashes(store.leaves, mask, level, parents), res.children)) next.push(c);
      }
      frontier = next;
    }
    this.stats.differingLeaves += frontier.length;
    for (let i = 0; i < frontier.length; i += MAX_AE_LEAVES_PER_REQUEST) {
      await this.#repairLeaves(peer, frontier.slice(i, i + MAX_AE_LEAVES_PER_REQUEST), paced);
    }
  }

  /** AE_KEYS for a batch of differing leaves, merge what comes back, push what the peer wants. */
  async #repairLeaves(peer: string, leaves: number[], paced: boolean): Promise<void> {
    for (let attempt = 0; attempt < AE_TRUNCATED_RETRIES_MAX; attempt++) {
      const mine = await this.#leafEntries(leaves);
      const listing: LeafListing[] = leaves.map((leaf) => ({ leaf, entries: (mine.get(leaf) ?? []).map((e) => ({ key: e.key, hash: e.hash, clockSum: e.clockSum })) }));
      const res = decodeKeysResponse(await this.#call(peer, AntiEntropyMessageType.AE_KEYS, encodeKeysRequest(listing), paced));
      const theirs = new Map<string, Buffer>();
      const mergeStarted = this.#o.now();
      for (const obj of res.objects) {
        theirs.set(obj.key.toString('latin1'), obj.bytes);
        if (await this.#merge(obj, peer)) this.stats.keysPulled++;
      }
      // The merges (engine read + write per key) are most of a pulling round's local work:
      // a paced round rests as long after them as after a request (see #call).
      if (paced) await sleep(this.#o.now() - mergeStarted);
      if (res.wants.length > 0) {
        const push: KeyedObject[] = [];
        let bytes = 0;
        const flush = async (): Promise<void> => {
          if (push.length === 0) return;
          const back = decodePushResponse(await this.#call(peer, AntiEntropyMessageType.AE_PUSH, encodePush(push), paced));
          this.stats.keysPushed += push.length;
          // Concurrent versions: the peer's merge differs from what was pushed; take it back.
          for (const obj of back.objects) if (await this.#merge(obj, peer)) this.stats.keysPulled++;
          push.length = 0;
          bytes = 0;
        };
        for (const key of res.wants) {
          const e = await this.#o.keyspace.engine.get(dataKey(key));
          if (e === undefined) continue; // gone meanwhile (tombstone past its grace)
          // The peer sent its version and mine merged into exactly it: the peer has it already.
          if (theirs.get(key.toString('latin1'))?.equals(e) === true) continue;
          push.push({ key, bytes: e });
          bytes += key.length + e.length;
          if (bytes >= MAX_AE_REPLY_OBJECT_BYTES) await flush();
        }
        await flush();
      }
      if (!res.truncated) return;
    }
    throw new ClusterError('ERR_BUS_TIMEOUT', `AE_KEYS with ${peer} still truncated after ${AE_TRUNCATED_RETRIES_MAX} tries`);
  }

  /** Merges a peer's object; true when it changed what this node stores. */
  async #merge(obj: KeyedObject, peer: string): Promise<boolean> {
    return (await this.#mergeStored(obj, peer)) !== undefined;
  }

  /** Merges a peer's object; the encoding stored when that changed this node's copy, else undefined. */
  async #mergeStored(obj: KeyedObject, peer: string): Promise<Buffer | undefined> {
    if (!this.#o.owns(keySlot(obj.key))) {
      this.stats.keysRefused++;
      return undefined;
    }
    try {
      const ks = this.#o.keyspace;
      const before = await ks.engine.get(dataKey(obj.key));
      if (before !== undefined && before.equals(obj.bytes)) return undefined;
      return encodeObject(await ks.mergeObject(obj.key, decodeObject(obj.bytes)));
    } catch (err) {
      this.#o.log('warn', `anti-entropy: object from ${peer} not merged: ${(err as Error).message}`);
      return undefined;
    }
  }

  async #call(peer: string, type: number, payload: Buffer, paced: boolean): Promise<Buffer> {
    const addr = this.#o.addressOf(peer);
    if (addr === undefined) throw new ClusterError('ERR_PEER_UNREACHABLE', `node ${peer} is not in the membership table`);
    const started = this.#o.now();
    this.stats.bytesSent += payload.length;
    const res = await this.#o.bus.request({ host: addr.host, port: addr.busPort, id: peer }, type, payload, AE_REQUEST_TIMEOUT_MS);
    this.stats.bytesReceived += res.length;
    if (paced) await sleep(this.#o.now() - started);
    else await immediate();
    return res;
  }

  // ---- responder ---------------------------------------------------------------------------

  async #count(payload: Buffer, reply: Promise<Buffer>): Promise<Buffer> {
    this.stats.bytesReceived += payload.length;
    const res = await reply;
    this.stats.bytesSent += res.length;
    return res;
  }

  async #serveHashes(payload: Buffer): Promise<Buffer> {
    const req = decodeHashesRequest(payload);
    const mask = maskOf(req.ranges);
    await this.#o.store.ensureClean(mask);
    const leaves = this.#o.store.leaves;
    return encodeHashesResponse({
      root: nodeHash(leaves, mask, 0, 0),
      children: req.parents.length === 0 ? [] : childHashes(leaves, mask, req.parentLevel, req.parents),
    });
  }

  async #serveKeys(payload: Buffer): Promise<Buffer> {
    const listing = decodeKeysRequest(payload);
    const mine = await this.#leafEntries(listing.map((l) => l.leaf));
    const objects: KeyedObject[] = [];
    const wants: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    for (const l of listing) {
      const { send, want } = compareLeaf(mine.get(l.leaf) ?? [], l.entries);
      // A leaf is one slot's: a slot this node gave up (or never held) wants nothing.
      if (want.length > 0 && this.#o.owns(slotOfLeaf(l.leaf))) for (const k of want) wants.push(k);
      else this.stats.keysRefused += want.length;
      for (const e of send) {
        if (objects.length > 0 && bytes + e.key.length + e.bytes.length > MAX_AE_REPLY_OBJECT_BYTES) {
          truncated = true;
          break;
        }
        objects.push({ key: e.key, bytes: e.bytes });
        bytes += e.key.length + e.bytes.length;
      }
    }
    this.stats.keysPushed += objects.length;
    return encodeKeysResponse({ truncated, objects, wants });
  }

  async #servePush(payload: Buffer): Promise<Buffer> {
    let merged = 0;
    const back: KeyedObject[] = [];
    for (const obj of decodePush(payload)) {
      const stored = await this.#mergeStored(obj, 'a peer');
      if (stored === undefined) continue;
      merged++;
      if (!stored.equals(obj.bytes)) back.push({ key: obj.key, bytes: stored });
    }
    this.stats.keysPulled += merged;
    this.stats.keysPushed += back.length;
    return encodePushResponse({ merged, objects: back });
  }

  /** This node's stored entries of `leaves`, by leaf: one range scan per slot involved. */
  async #leafEntries(leaves: readonly number[]): Promise<Map<number, LocalEntry[]>> {
    const wanted = new Set(leaves);
    const slots = [...new Set(leaves.map(slotOfLeaf))].sort((a, b) => a - b);
    const out = new Map<number, LocalEntry[]>();
    for (const slot of slots) {
      for await (const e of this.#o.keyspace.engine.range(slotRangeBounds(slot))) {
        const key = Buffer.from(e.key.subarray(DATA_KEY_PREFIX_BYTES));
        const leaf = leafIndex(slot, keyBucket(key));
        if (!wanted.has(leaf)) continue;
        let list = out.get(leaf);
        if (list === undefined) out.set(leaf, (list = []));
        list.push({ key, hash: entryHash(key, e.value), clockSum: clockSumOf(e.value), bytes: e.value });
      }
    }
    return out;
  }
}
