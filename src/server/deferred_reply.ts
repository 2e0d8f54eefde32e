/**
 * A reply known later, told by callback instead of a promise. A handler may return one where it
 * would return a Promise<Reply> (Dispatcher.start wraps either in an AsyncCommand): the plain
 * SETs of one engine batch share one (strings.ts), so a batch costs no promise, closure or
 * microtask turn between the engine write settling and the connection writing the replies.
 *
 * Contract: settled once, by resolve(reply) or reject(err) (a reject is a handler's throw, as a
 * promise's rejection is: the connection answers it with Dispatcher.failure). Each listener's
 * replySettled(token, reply, err) is called synchronously inside that call, in the order they
 * listened, with the token it listened with; a listener added after it settled is called at once.
 * A listener's throw does not keep the others from being called; the first one is thrown again
 * once all were called.
 */
import type { Reply } from '../resp/reply.js';

export interface ReplyListener {
  /** `reply` when resolved, else `err` (undefined reply). `token` as given to listen. */
  replySettled(token: unknown, reply: Reply | undefined, err: unknown): void;
}

export class DeferredReply {
  #done = false;
  #reply: Reply | undefined;
  #error: unknown;
  /** The first listener and its token; later ones as pairs in #more (one listener is the usual case). */
  #listener: ReplyListener | undefined;
  #token: unknown;
  #more: unknown[] | undefined;

  listen(listener: ReplyListener, token: unknown): void {
    if (this.#done) {
      listener.replySettled(token, this.#reply, this.#error);
      return;
    }
    if (this.#listener === undefined) {
      this.#listener = listener;
      this.#token = token;
    } else {
      (this.#more ??= []).push(listener, token);
    }
  }

  resolve(reply: Reply): void {
    this.#settle(reply, undefined);
  }

  reject(err: unknown): void {
    this.#settle(undefined, err ?? new Error('rejected'));
  }

  /** A promise of the reply, for callers that await (Dispatcher.dispatch). */
  promise(): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.listen({ replySettled: (_token, reply, err) => (reply !== undefined ? resolve(reply) : reject(err)) }, undefined);
    });
  }

  #settle(reply: Reply | undefined, err: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#reply = reply;
    this.#error = err;
    const first = this.#listener;
    if (first === undefined) return;
    const token = this.#token;
    this.#listener = undefined;
    this.#token = undefined;
    let thrown: { err: unknown } | undefined;
    try {
      first.replySettled(token, reply, err);
    } catch (e) {
      thrown = { err: e };
    }
    const more = this.#more;
    if (more !== undefined) {
      this.#more = undefined;
      for (let i = 0; i < more.length; i += 2) {
        try {
          (more[i] as ReplyListener).replySettled(more[i + 1], reply, err);
        } catch (e) {
          thrown ??= { err: e };
        }
      }
    }
    if (thrown !== undefined) throw thrown.err;
  }
}
