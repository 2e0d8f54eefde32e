/**
 * Typed operating errors of the request paths (put_fsm, get_fsm, coordinator). Like
 * KeyspaceError, `message` is the whole error reply line a client sees, starting with its
 * prefix, so a command handler replies `-${err.message}` unchanged.
 */

import { noQuorumMessage } from './quorum.js';

/**
 * Fewer than R/W replicas answered in time (ARCHITECTURE.md section 3). Carries the numbers,
 * as Riak's `{insufficient_vnodes, Got, need, Need}`:
 *   NOQUORUM write: 1 of 2 replicas acknowledged (the write may be partially applied)
 *   NOQUORUM read: 1 of 2 replicas answered
 */
export class NoQuorumError extends Error {
  readonly code = 'NOQUORUM';
  readonly op: 'read' | 'write';
  readonly got: number;
  readonly need: number;
  readonly dc: string | undefined;
  constructor(op: 'read' | 'write', d: { got: number; need: number; dc?: string }) {
    super(`NOQUORUM ${noQuorumMessage(op, d)}`);
    this.name = 'NoQuorumError';
    this.op = op;
    this.got = d.got;
    this.need = d.need;
    this.dc = d.dc;
  }
}

/**
 * No node can coordinate the request: no primary replica of the slot is up (a fallback never
 * mints dots, route.ts), or every forward attempt failed to reach one, or a forwarded write
 * went around more than MAX_FORWARD_HOPS times because the nodes disagree on the ring.
 */
export class UnavailableError extends Error {
  readonly code = 'CLUSTERDOWN';
  constructor(message: string) {
    super(`CLUSTERDOWN ${message}`);
    this.name = 'UnavailableError';
  }
}
