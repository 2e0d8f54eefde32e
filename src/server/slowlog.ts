/**
 * The SLOWLOG: the most recent commands that took longer than slowlog-log-slower-than
 * microseconds, newest first, at most slowlog-max-len entries. Arguments are stored truncated
 * as Redis does (32 arguments, 128 bytes each) so a slow MSET of huge values costs little memory.
 */
import { array, bulk, integer, type Reply } from '../resp/reply.js';

export const SLOWLOG_ENTRY_MAX_ARGC = 32;
export const SLOWLOG_ENTRY_MAX_ARG_BYTES = 128;

export interface SlowlogEntry {
  readonly id: number;
  readonly timeSec: number;
  readonly durationUsec: number;
  /** The stored arguments back to back (one copy per entry, not one Buffer per argument). */
  readonly argBytes: Buffer;
  /** Where each stored argument ends in argBytes. */
  readonly argEnds: readonly number[];
  readonly addr: string;
  readonly name: string;
}

/** The stored form of argument i of argv (argc of them kept): truncated as Redis does. */
function storedArg(argv: readonly Buffer[], argc: number, i: number): Buffer {
  const a = argv[i] as Buffer;
  if (argc !== argv.length && i === argc - 1) return Buffer.from(`... (${argv.length - argc + 1} more arguments)`);
  if (a.length > SLOWLOG_ENTRY_MAX_ARG_BYTES) {
    return Buffer.concat([a.subarray(0, SLOWLOG_ENTRY_MAX_ARG_BYTES), Buffer.from(`... (${a.length - SLOWLOG_ENTRY_MAX_ARG_BYTES} more bytes)`)]);
  }
  return a;
}

export class Slowlog {
  #entries: SlowlogEntry[] = [];
  #nextId = 0;

  record(maxLen: number, timeMs: number, durationUsec: number, argv: readonly Buffer[], addr: string, name: string): void {
    if (maxLen <= 0) return;
    const argc = Math.min(argv.length, SLOWLOG_ENTRY_MAX_ARGC);
    let total = 0;
    let plain = argc === argv.length;
    for (let i = 0; i < argc; i++) {
      const n = (argv[i] as Buffer).length;
      if (n > SLOWLOG_ENTRY_MAX_ARG_BYTES) plain = false;
      total += n;
    }
    // The usual entry (few short arguments) is copied as is; otherwise the truncated forms.
    const args = plain ? argv : Array.from({ length: argc }, (_, i) => storedArg(argv, argc, i));
    if (!plain) total = args.reduce((sum, a) => sum + a.length, 0);
    const argBytes = Buffer.allocUnsafe(total);
    const argEnds: number[] = new Array<number>(argc);
    let pos = 0;
    for (let i = 0; i < argc; i++) {
      const a = args[i] as Buffer;
      argBytes.set(a, pos);
      pos += a.length;
      argEnds[i] = pos;
    }
    this.#entries.unshift({ id: this.#nextId++, timeSec: Math.floor(timeMs / 1000), durationUsec, argBytes, argEnds, addr, name });
    this.trim(maxLen);
  }

  trim(maxLen: number): void {
    if (this.#entries.length > maxLen) this.#entries.length = Math.max(0, maxLen);
  }

  get length(): number {
    return this.#entries.length;
  }

  reset(): void {
    this.#entries = [];
  }

  /** SLOWLOG GET [count]: count < 0 means all. */
  toReply(count: number): Reply {
    const list = count < 0 ? this.#entries : this.#entries.slice(0, count);
    return array(
      list.map((e) =>
        array([integer(e.id), integer(e.timeSec), integer(e.durationUsec), array(e.argEnds.map((end, i) => bulk(e.argBytes.subarray(i === 0 ? 0 : (e.argEnds[i - 1] as number), end)))), bulk(e.addr), bulk(e.name)]),
      ),
    );
  }
}
