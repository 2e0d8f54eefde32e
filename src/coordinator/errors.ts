/**
 * Typed operating errors of the coordinator's data model: bad bytes from a client, a peer or a
 * disk. They carry a stable `code` so callers can map them to replies and metrics.
 * Programmer errors (bad options, impossible states) use node:assert instead.
 */

/** A client-supplied context token that is malformed or exceeds a limit. */
export class ContextError extends Error {
  readonly code = 'ERR_BAD_CONTEXT';
  constructor(message: string) {
    super(message);
    this.name = 'ContextError';
  }
}

/** Stored or received object bytes that do not decode to a valid object. */
export class CorruptObjectError extends Error {
  readonly code = 'ERR_CORRUPT_OBJECT';
  constructor(message: string) {
    super(message);
    this.name = 'CorruptObjectError';
  }
}
