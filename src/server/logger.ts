/**
 * Log lines: one per event, `<ISO time> <level> <message>`, to standard output or an appended
 * file. The level threshold can change at run time (CONFIG SET loglevel).
 */
import { appendFileSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string) => void;

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

export function isLogLevel(s: string): s is LogLevel {
  return Object.prototype.hasOwnProperty.call(RANK, s);
}

export function formatLogLine(nowMs: number, level: LogLevel, msg: string): string {
  // One event per line: embedded newlines would break line-oriented tools.
  return `${new Date(nowMs).toISOString()} ${level} ${msg.replace(/[\r\n]+/g, ' ')}\n`;
}

export class Logger {
  #threshold: number;
  readonly #file: string;
  readonly #now: () => number;
  readonly #write: (line: string) => void;

  /** `file` empty: standard output. Writes are synchronous so the last lines survive an exit. */
  constructor(options: { level: LogLevel; file: string; now?: () => number; sink?: (line: string) => void }) {
    this.#threshold = RANK[options.level];
    this.#file = options.file;
    this.#now = options.now ?? Date.now;
    this.#write =
      options.sink ??
      (this.#file === ''
        ? (line) => process.stdout.write(line)
        : (line) => appendFileSync(this.#file, line));
  }

  setLevel(level: LogLevel): void {
    this.#threshold = RANK[level];
  }

  readonly log: LogFn = (level, msg) => {
    if (RANK[level] < this.#threshold) return;
    try {
      this.#write(formatLogLine(this.#now(), level, msg));
    } catch {
      // A full disk must not take the node down through its logger.
    }
  };
}
