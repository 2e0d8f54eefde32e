import t from 'tap';
import { CommandClock } from '../../src/server/command_clock.js';

t.test('outside a hold now() reads the source; inside, the time the hold read', async (t) => {
  let ms = 1000;
  let reads = 0;
  const clock = new CommandClock(() => {
    reads++;
    return ms;
  });
  t.equal(clock.now(), 1000);
  ms = 1005;
  t.equal(clock.now(), 1005, 'no hold: a fresh reading');
  const held = clock.hold();
  t.equal(held, true, 'this call started the hold');
  const readsAtHold = reads;
  ms = 1010;
  t.equal(clock.now(), 1005, 'held');
  t.equal(clock.now(), 1005);
  t.equal(reads, readsAtHold, 'a held now() does not read the source');
  clock.release(held);
  t.equal(clock.now(), 1010, 'released: fresh again');
});

t.test('holds nest: an inner hold keeps the outer time and does not end it', async (t) => {
  let ms = 1;
  const clock = new CommandClock(() => ms);
  const outer = clock.hold();
  ms = 2;
  const inner = clock.hold();
  t.equal(inner, false, 'joined the running hold');
  t.equal(clock.now(), 1);
  clock.release(inner);
  t.equal(clock.now(), 1, 'still held by the outer hold');
  clock.release(outer);
  t.equal(clock.now(), 2);
});

t.test('now is bound: it can be passed around as a function', async (t) => {
  const clock = new CommandClock(() => 42);
  const now = clock.now;
  t.equal(now(), 42);
});
