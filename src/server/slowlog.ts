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
  readonly args: readonly Buffer[];
  readonly addr: string;
  readonly name: string;
}

export class Slowlog {
  #entries: SlowlogEntry[] = [];
  #nextId = 0;

  record(maxLen: number, timeMs: number, durationUsec: number, argv: readonly Buffer[], addr: string, name: string): void {
    if (maxLen <= 0) return;
    const argc = Math.min(argv.length, SLOWLOG_ENTRY_MAX_ARGC);
    const args: Buffer[] = [];
    for (let i = 0; i < argc; i++) {
      const a = argv[i] as Buffer;
      if (argc !== argv.length && i === argc - 1) {
        args.push(Buffer.from(`... (${argv.length - argc + 1} more arguments)`));
      } else if (a.length > SLOWLOG_ENTRY_MAX_ARG_BYTES) {
        args.push(Buffer.concat([a.subarray(0, SLOWLOG_ENTRY_MAX_ARG_BYTES), Buffer.from(`... (${a.length - SLOWLOG_ENTRY_MAX_ARG_BYTES} more bytes)`)]));
      } else {
        args.push(Buffer.from(a));
      }
    }
    this.#entries.unshift({ id: this.#nextId++, timeSec: Math.floor(timeMs / 1000), durationUsec, args, addr, name });
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
        array([integer(e.id), integer(e.timeSec), integer(e.durationUsec), array(e.args.map((a) => bulk(a))), bulk(e.addr), bulk(e.name)]),
      ),
    );
  }
}
