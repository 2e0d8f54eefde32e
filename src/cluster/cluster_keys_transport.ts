/**
 * The whole-keyspace calls of cluster_keyspace.ts (range scans and FLUSHALL of one node) over
 * the cluster bus, and their bus handlers served from this node's keyspace.
 *
 *   ClusterKeysTransport.scanRange(node, req) ─▶ this node: scanLocalRange(keyspace)
 *                                              ─▶ others: bus.request(SCAN_RANGE) ─▶ their handler
 *   ClusterKeysTransport.flushNode(node)       ─▶ this node: keyspace.flushAll(), then afterLocalFlush
 *                                              ─▶ others: bus.request(FLUSH_ALL) ─▶ the same there
 * afterLocalFlush clears state derived from the flushed data that lives outside the keyspace
 * (hinted handoff's hints); the flush is acknowledged only once it resolved.
 * Any failure of a remote call (unknown node, unreachable, timeout, remote error, a reply that
 * does not decode) rejects; the cluster scan then asks another replica.
 */
import type { ClusterKeyspaceAccess, RangeScanRequest, RangeScanResult } from '../server/commands/cluster_keyspace.js';
import type { Keyspace } from '../server/keyspace.js';
import type { ClusterBus } from './bus.js';
import { ClusterError } from './errors.js';
import { MessageType } from './message_types.js';
import { decodeScanRange, decodeScanRangeResult, encodeScanRange, encodeScanRangeResult } from './scan_range_codec.js';
import { scanLocalRange } from './scan_range_local.js';

const EMPTY = Buffer.alloc(0);

export type BusAddressBook = (nodeId: string) => { readonly host: string; readonly busPort: number } | undefined;

export class ClusterKeysTransport implements ClusterKeyspaceAccess {
  constructor(
    private readonly bus: ClusterBus,
    private readonly addressOf: BusAddressBook,
    private readonly selfId: string,
    private readonly keyspace: Keyspace,
    private readonly now: () => number,
    private readonly afterLocalFlush: () => Promise<unknown> = async () => undefined,
  ) {}

  async scanRange(node: string, req: RangeScanRequest, timeoutMs: number): Promise<RangeScanResult> {
    if (node === this.selfId) return scanLocalRange(this.keyspace, req, this.now());
    return decodeScanRangeResult(await this.#call(node, MessageType.SCAN_RANGE, encodeScanRange(req), timeoutMs));
  }

  async flushNode(node: string, timeoutMs: number): Promise<void> {
    if (node === this.selfId) {
      await this.keyspace.flushAll();
      await this.afterLocalFlush();
      return;
    }
    await this.#call(node, MessageType.FLUSH_ALL, EMPTY, timeoutMs);
  }

  #call(node: string, type: number, payload: Buffer, timeoutMs: number): Promise<Buffer> {
    const addr = this.addressOf(node);
    if (addr === undefined) return Promise.reject(new ClusterError('ERR_PEER_UNREACHABLE', `node ${node} is not in the membership table`));
    return this.bus.request({ host: addr.host, port: addr.busPort, id: node }, type, payload, Math.max(1, Math.round(timeoutMs)));
  }
}

/** Serves SCAN_RANGE and FLUSH_ALL arriving on `bus` from this node's keyspace. */
export function attachClusterKeysHandlers(
  bus: ClusterBus,
  keyspace: Keyspace,
  now: () => number,
  afterLocalFlush: () => Promise<unknown> = async () => undefined,
): void {
  bus.handle(MessageType.SCAN_RANGE, async (payload) => encodeScanRangeResult(await scanLocalRange(keyspace, decodeScanRange(payload), now())));
  bus.handle(MessageType.FLUSH_ALL, async (payload) => {
    if (payload.length !== 0) throw new ClusterError('ERR_GOSSIP_DECODE', `FLUSH_ALL carries ${payload.length} unexpected bytes`);
    await keyspace.flushAll();
    await afterLocalFlush();
    return EMPTY;
  });
}
