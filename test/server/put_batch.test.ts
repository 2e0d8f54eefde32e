/**
 * PutBatch (put_batch.ts): a batch of plain puts settles once, by its promise (made only when
 * asked for) and by listener calls, synchronously inside settle, in the order they listened.
 */
import t from 'tap';
import { PutBatch, type WriteListener } from '../../src/server/put_batch.js';

function recorder(log: string[], name: string, throws = false): WriteListener {
  return {
    writeSettled(err: unknown): void {
      log.push(`${name}:${err === undefined ? 'ok' : String((err as Error).message)}`);
      if (throws) throw new Error(`${name} broke`);
    },
  };
}

t.test('listeners are called inside settle, in order, once; later ones at once', async (t) => {
  const batch = new PutBatch();
  const log: string[] = [];
  batch.listen(recorder(log, 'a'));
  batch.listen(recorder(log, 'b'));
  batch.listen(recorder(log, 'c'));
  t.same(log, [], 'nothing before settle');
  batch.settle(undefined, () => t.fail('no listener throws'));
  t.same(log, ['a:ok', 'b:ok', 'c:ok'], 'synchronously, in order');
  batch.settle(new Error('again'), () => undefined);
  t.same(log, ['a:ok', 'b:ok', 'c:ok'], 'a second settle changes nothing');
  batch.listen(recorder(log, 'late'));
  t.same(log, ['a:ok', 'b:ok', 'c:ok', 'late:ok'], 'a listener after settle is called at once');
  await t.resolves(batch.settled, 'asked after it settled: a resolved promise');
});

t.test('a failed batch: listeners get the error, the promise rejects with it', async (t) => {
  const batch = new PutBatch();
  const log: string[] = [];
  const early = batch.settled;
  batch.listen(recorder(log, 'a'));
  batch.settle(new Error('disk on fire'), () => undefined);
  t.same(log, ['a:disk on fire']);
  await t.rejects(early, /disk on fire/, 'the promise made before settle rejects');
  await t.rejects(batch.settled, /disk on fire/, 'the same promise when asked again');
  const late = new PutBatch();
  late.settle(new Error('late failure'), () => undefined);
  await t.rejects(late.settled, /late failure/, 'asked only after it failed: a rejected promise');
});

t.test('the promise is made only when asked for', async (t) => {
  const batch = new PutBatch();
  const a = batch.settled;
  t.equal(batch.settled, a, 'one promise per batch');
  batch.settle(undefined, () => undefined);
  await t.resolves(a);
});

t.test("a listener's throw goes to onListenerError; the others are still called", async (t) => {
  const batch = new PutBatch();
  const log: string[] = [];
  const thrown: string[] = [];
  batch.listen(recorder(log, 'a', true));
  batch.listen(recorder(log, 'b'));
  batch.listen(recorder(log, 'c', true));
  const p = batch.settled;
  batch.settle(undefined, (e) => thrown.push((e as Error).message));
  t.same(log, ['a:ok', 'b:ok', 'c:ok']);
  t.same(thrown, ['a broke', 'c broke']);
  await t.resolves(p, 'the promise settles before the listeners run');
});
