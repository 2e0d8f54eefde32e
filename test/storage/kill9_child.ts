/**
 * Child process for kill9.test.ts and the storage soak: opens an engine on a real directory with
 * appendfsync 'always' and writes until it is killed, keeping WINDOW writes in flight so group
 * commit is exercised. It reports on stdout (a pipe, written synchronously on Linux, so a line
 * printed before the kill is never lost):
 *   ready                      engine open
 *   del-issued <i>             about to delete key i (outcome unknown until acked)
 *   ack put <i>                put of key i acknowledged (durable)
 *   ack del <i>                delete of key i acknowledged
 * Keys and values are a pure function of i (kill9Key / kill9Value) so the parent can check
 * every value it reads back. Exits when stdin closes (the parent is gone).
 *
 * usage: node kill9_child.js <dir> <firstIndex> [window] [memtableBytes]
 */
import { openEngine } from '../../src/storage/engine.js';

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
  process.stdout.write('ready\n');
  let next = Number(firstArg);
  const ackedPuts: number[] = [];
  const writer = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i % DELETE_EVERY === 0 && ackedPuts.length > 0) {
        const victim = ackedPuts.splice(Math.floor(Math.random() * ackedPuts.length), 1)[0]!;
        process.stdout.write(`del-issued ${victim}\n`);
        await engine.delete(kill9Key(victim));
        process.stdout.write(`ack del ${victim}\n`);
      } else {
        await engine.put(kill9Key(i), kill9Value(i));
        process.stdout.write(`ack put ${i}\n`);
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
