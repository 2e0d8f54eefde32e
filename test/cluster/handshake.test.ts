// The handshake's message logic without sockets: success with and without a secret, wrong
// secrets refused on each side, replayed messages refused, malformed messages refused.
import t from 'tap';
import { throwsCode } from './expect_error.js';
import { isClusterError } from '../../src/cluster/errors.js';
import { ClientHandshake, computeProof, isValidNodeId, NONCE_BYTES, ServerHandshake } from '../../src/cluster/handshake.js';

const secret = (s: string): Buffer => Buffer.from(s, 'utf8');
const isHs = (e: unknown): boolean => isClusterError(e, 'ERR_HANDSHAKE');

function run(cSecret: string, sSecret: string): { clientSaw?: string; serverSaw?: string; failed: 'client' | 'server' | null } {
  const c = new ClientHandshake({ selfId: 'node-a', secret: secret(cSecret) });
  const s = new ServerHandshake({ selfId: 'node-b', secret: secret(sSecret) });
  const challenge = s.onHello(c.hello());
  const auth = c.onChallenge(challenge);
  let res: { peerId: string; welcome: Buffer };
  try {
    res = s.onAuth(auth);
  } catch (e) {
    if (!isHs(e)) throw e;
    return { failed: 'server' };
  }
  try {
    return { clientSaw: c.onWelcome(res.welcome), serverSaw: res.peerId, failed: null };
  } catch (e) {
    if (!isHs(e)) throw e;
    return { failed: 'client' };
  }
}

t.test('matching secrets (or none) succeed and exchange ids', async (t) => {
  t.same(run('s3cret', 's3cret'), { clientSaw: 'node-b', serverSaw: 'node-a', failed: null });
  t.same(run('', ''), { clientSaw: 'node-b', serverSaw: 'node-a', failed: null });
});

t.test('a wrong or missing secret is refused by the listener', async (t) => {
  t.equal(run('wrong', 's3cret').failed, 'server');
  t.equal(run('', 's3cret').failed, 'server');
  t.equal(run('s3cret', '').failed, 'server');
});

t.test('a listener with the wrong secret is refused by the dialer', async (t) => {
  // The WELCOME such a listener sends: its proof under its own (wrong) key over this session.
  const c = new ClientHandshake({ selfId: 'node-a', secret: secret('s3cret') });
  const impostor = new ServerHandshake({ selfId: 'node-b', secret: secret('guess') });
  const hello = c.hello();
  const challenge = impostor.onHello(hello);
  c.onChallenge(challenge);
  const clientNonce = hello.subarray(1, 1 + NONCE_BYTES);
  const serverNonce = challenge.subarray(1, 1 + NONCE_BYTES);
  const wrong = computeProof(secret('guess'), 'server', clientNonce, serverNonce, 'node-a', 'node-b');
  throwsCode(t, () => c.onWelcome(wrong), 'ERR_HANDSHAKE');
  // The same computation under the right key is accepted: the test checks the key, nothing else.
  const c2 = new ClientHandshake({ selfId: 'node-a', secret: secret('s3cret') });
  const h2 = c2.hello();
  const ch2 = new ServerHandshake({ selfId: 'node-b', secret: secret('x') }).onHello(h2);
  c2.onChallenge(ch2);
  const right = computeProof(secret('s3cret'), 'server', h2.subarray(1, 33), ch2.subarray(1, 33), 'node-a', 'node-b');
  t.equal(c2.onWelcome(right), 'node-b');
});

t.test('replayed AUTH and WELCOME fail in a new session (fresh nonces)', async (t) => {
  const key = secret('s3cret');
  const c1 = new ClientHandshake({ selfId: 'node-a', secret: key });
  const s1 = new ServerHandshake({ selfId: 'node-b', secret: key });
  const hello1 = c1.hello();
  const auth1 = c1.onChallenge(s1.onHello(hello1));
  const { welcome: welcome1 } = s1.onAuth(auth1);
  // An eavesdropper replays the recorded HELLO + AUTH to the listener: new server nonce, refused.
  const s2 = new ServerHandshake({ selfId: 'node-b', secret: key });
  s2.onHello(hello1);
  throwsCode(t, () => s2.onAuth(auth1), 'ERR_HANDSHAKE');
  // A fake listener replays the recorded CHALLENGE + WELCOME to the dialer: new client nonce, refused.
  const c2 = new ClientHandshake({ selfId: 'node-a', secret: key });
  c2.hello();
  const s1Challenge = new ServerHandshake({ selfId: 'node-b', secret: key, randomBytes: () => Buffer.alloc(NONCE_BYTES, 1) });
  c2.onChallenge(s1Challenge.onHello(hello1));
  throwsCode(t, () => c2.onWelcome(welcome1), 'ERR_HANDSHAKE');
  // Reflection: the client's own proof sent back as WELCOME is refused (role byte differs).
  const c3 = new ClientHandshake({ selfId: 'node-a', secret: key });
  const s3 = new ServerHandshake({ selfId: 'node-b', secret: key });
  const auth3 = c3.onChallenge(s3.onHello(c3.hello()));
  throwsCode(t, () => c3.onWelcome(auth3), 'ERR_HANDSHAKE');
});

t.test('malformed messages and out-of-order steps are handshake errors', async (t) => {
  const key = secret('k');
  const bad: Buffer[] = [
    Buffer.alloc(0),
    Buffer.alloc(10),
    Buffer.concat([Buffer.from([2]), Buffer.alloc(NONCE_BYTES), Buffer.from([1]), Buffer.from('x')]), // version 2
    Buffer.concat([Buffer.from([1]), Buffer.alloc(NONCE_BYTES), Buffer.from([0])]), // empty id
    Buffer.concat([Buffer.from([1]), Buffer.alloc(NONCE_BYTES), Buffer.from([5]), Buffer.from('ab')]), // short id
    Buffer.concat([Buffer.from([1]), Buffer.alloc(NONCE_BYTES), Buffer.from([3]), Buffer.from('a b')]), // space
    Buffer.concat([Buffer.from([1]), Buffer.alloc(NONCE_BYTES), Buffer.from([200]), Buffer.alloc(200, 0x41)]), // too long
  ];
  for (const b of bad) throwsCode(t, () => new ServerHandshake({ selfId: 'n', secret: key }).onHello(b), 'ERR_HANDSHAKE');
  const s = new ServerHandshake({ selfId: 'n', secret: key });
  throwsCode(t, () => s.onAuth(Buffer.alloc(32)), 'ERR_HANDSHAKE', 'AUTH before HELLO');
  const c = new ClientHandshake({ selfId: 'n', secret: key });
  throwsCode(t, () => c.onWelcome(Buffer.alloc(32)), 'ERR_HANDSHAKE', 'WELCOME before CHALLENGE');
  t.ok(isValidNodeId('a'.repeat(64)));
  t.notOk(isValidNodeId('a'.repeat(65)));
  t.notOk(isValidNodeId(''));
});
