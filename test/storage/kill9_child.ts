/**
 * Child process for kill9.test.ts and the storage soak: opens an engine on a real directory with
 * appendfsync 'always' and writes until it is killed, keeping WINDOW writes in flight so group
 * commit is exercised. It reports on stdout with a synchronous write(2) to fd 1 (report()), never
 * process.stdout: on POSIX, process.stdout on a pipe is an asynchronous socket whose queued lines
 * die with a SIGKILL, and a lost "del-issued" line would make a legitimate delete look like a
 * lost write. A line is in the pipe before the operation it announces starts:
 *   ready                      engine open
 *   del-issued <i>             about to delete key i (outcome unknown until acked)
 *   ack put <i>                put of key i acknowledged (durable)
 *   ack del <i>                delete of key i acknowledged
 * Keys and values are a pure function of i (kill9Key / kill9Value) so the parent can check
 * every value it reads back. Exits when stdin closes (the parent is gone).
 *
 * usage: node kill9_child.js <dir> <firstIndex> [window] [memtableBytes]
 */
import { writeSync } from 'node:fs';
import { openEngine } from '../../src/storage/engine.js';

const STDOUT_FD = 1;

/** Writes a whole line to fd 1 before returning (retries a non-blocking pipe that is full). */
function report(line: string): void {
  const buf = Buffer.from(`${line}\n`);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(STDOUT_FD, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

export function kill9Key(i: number): Buffer {
  return Buffer.from(`key-${String(i).padStart(10, '0')}`);
}

/** 40 .. ~1,500 bytes, varied so memtables fill at different record counts. */
export function kill9Value(i: number): Buffer {
  const len = 40 + ((i * 7919) % 1460);
  const b = Buffer.alloc(len, i % 251);
  b.write(`value-${i}-`, 0);
  return b;
}

/** Every DELETE_EVERY-th write deletes an earlier acknowledged key instead of putting. */
export const DELETE_EVERY = 5;

async function main(): Promise<void> {
  const [dir, firstArg, windowArg, memArg] = process.argv.slice(2);
  if (!dir || !firstArg) throw new Error('usage: kill9_child.js <dir> <firstIndex> [window] [memtableBytes]');
  const window = Number(windowArg ?? 4);
  const engine = await openEngine({
    dir,
    appendfsync: 'always',
    memtableBytes: Number(memArg ?? 64 * 1024),
    blockBytes: 1024,
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  report('ready');
  let next = Number(firstArg);
  const ackedPuts: number[] = [];
  const writer = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i % DELETE_EVERY === 0 && ackedPuts.length > 0) {
        const victim = ackedPuts.splice(Math.floor(Math.random() * ackedPuts.length), 1)[0]!;
        report(`del-issued ${victim}`);
        await engine.delete(kill9Key(victim));
        report(`ack del ${victim}`);
      } else {
        await engine.put(kill9Key(i), kill9Value(i));
        report(`ack put ${i}`);
        ackedPuts.push(i);
      }
    }
  };
  await Promise.all(Array.from({ length: window }, writer));
}

// Run only as a script, not when the test imports kill9Key/kill9Value.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`kill9_child: ${String(err)}\n`);
    process.exit(1);
  });
}
