/**
 * DeferredReply (deferred_reply.ts): settled once; each listener is called synchronously inside
 * resolve/reject with its own token, in the order they listened; a late listener at once; a
 * throw does not keep the others from being called and is thrown again after them.
 */
import t from 'tap';
import { DeferredReply, type ReplyListener } from '../../src/server/deferred_reply.js';
import { OK, error, type Reply } from '../../src/resp/reply.js';

type Seen = { token: unknown; reply: Reply | undefined; err: unknown };

function recorder(seen: Seen[], throwing?: string): ReplyListener {
  return {
    replySettled(token, reply, err): void {
      seen.push({ token, reply, err });
      if (throwing !== undefined) throw new Error(throwing);
    },
  };
}

t.test('resolve: every listener with its token, in order, once', async (t) => {
  const d = new DeferredReply();
  const seen: Seen[] = [];
  const l = recorder(seen);
  d.listen(l, 'first');
  d.listen(recorder(seen), 2);
  d.listen(l, { third: true });
  t.same(seen, []);
  d.resolve(OK);
  t.same(seen.map((s) => s.token), ['first', 2, { third: true }]);
  t.ok(seen.every((s) => s.reply === OK && s.err === undefined));
  d.resolve(error('ERR again'));
  d.reject(new Error('again'));
  t.equal(seen.length, 3, 'settled once');
  d.listen(l, 'late');
  t.same(seen[3], { token: 'late', reply: OK, err: undefined }, 'a listener after settle is called at once');
  t.equal(await d.promise(), OK, 'promise() of a resolved reply');
});

t.test('reject: listeners get the error and no reply; promise() rejects', async (t) => {
  const d = new DeferredReply();
  const seen: Seen[] = [];
  const p = d.promise();
  d.listen(recorder(seen), 'x');
  d.reject(new Error('disk on fire'));
  t.equal(seen.length, 1);
  t.equal(seen[0]!.reply, undefined);
  t.match(String(seen[0]!.err), /disk on fire/);
  await t.rejects(p, /disk on fire/);
  const u = new DeferredReply();
  u.listen(recorder(seen), 'y');
  u.reject(undefined);
  t.ok(seen[1]!.err instanceof Error, 'a rejection with undefined still reads as an error');
});

t.test("a listener's throw: the others are still called, then the first throw surfaces", async (t) => {
  const d = new DeferredReply();
  const seen: Seen[] = [];
  d.listen(recorder(seen, 'one broke'), 1);
  d.listen(recorder(seen), 2);
  d.listen(recorder(seen, 'three broke'), 3);
  t.throws(() => d.resolve(OK), /one broke/);
  t.same(seen.map((s) => s.token), [1, 2, 3]);
});
