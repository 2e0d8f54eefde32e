// Anti-entropy takes in objects only for slots the receiving node holds (current or target
// ring). Two in-process nodes on real loopback buses: the initiator's ring (a stale view) says
// both replicate every slot, the responder holds only half of them. Without the check the
// responder took a copy of every key the initiator pushed, which is how a node back from a crash,
// not yet aware of a join, put back an (N+1)th copy on a node that had given the slot up
// (elastic_down_join failed in CI with keys on 4 of 4 nodes).
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { AntiEntropy } from '../../src/cluster/anti_entropy.js';
import { ClusterBus } from '../../src/cluster/bus.js';
import { MerkleStore } from '../../src/cluster/merkle_store.js';
import { buildRing } from '../../src/coordinator/ring.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { dataKey, SLOT_COUNT } from '../../src/server/key_layout.js';
import { Keyspace } from '../../src/server/keyspace.js';
import { TestConfig } from '../server/keyspace_fixture.js';

const HOST = '127.0.0.1';
const KEYS = 400;
/** The responder holds the lower half of the slots. */
const respOwns = (slot: number): boolean => slot < SLOT_COUNT / 2;

interface Node {
  id: string;
  ks: Keyspace;
  ae: AntiEntropy;
  bus: ClusterBus;
}

t.test('a peer on a stale view cannot put copies of slots the responder does not hold', async (t) => {
  const ports = new Map<string, number>();
  const ring = buildRing(
    ['init', 'resp'].map((id) => ({ id, weight: 1, dc: 'dc1', rack: id, state: 'up' as const })),
    { vnodes: 16, n: 2 },
  );
  const open = async (id: string, owns: (slot: number) => boolean): Promise<Node> => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-ae-own-'));
    const config = new TestConfig({ 'gc-grace-seconds': 3600, 'anti-entropy-interval-ms': 0 });
    const ks = await Keyspace.open({ dir, config, now: Date.now, log: () => undefined });
    const store = new MerkleStore(ks.engine, Date.now);
    ks.setWriteObserver(store);
    const bus = new ClusterBus({ nodeId: id, host: HOST, port: 0 });
    const ae = new AntiEntropy({
      bus,
      addressOf: (x) => (ports.has(x) ? { host: HOST, busPort: ports.get(x)! } : undefined),
      selfId: id,
      keyspace: ks,
      store,
      ring: () => ring,
      owns,
      isUp: () => true,
      config,
      log: () => undefined,
      now: Date.now,
    });
    await bus.listen();
    ports.set(id, bus.port);
    t.teardown(async () => {
      ae.close();
      await bus.close();
      await ks.close();
      await fsp.rm(dir, { recursive: true, force: true });
    });
    return { id, ks, ae, bus };
  };
  const init = await open('init', () => true);
  const resp = await open('resp', respOwns);

  const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`k:${i}`));
  for (const k of keys) await init.ks.writeObject(k, { value: Buffer.from(`v-${k.toString()}`), expiresAtMs: 0 });
  const owned = keys.filter((k) => respOwns(keySlot(k)));
  const notOwned = keys.filter((k) => !respOwns(keySlot(k)));
  t.ok(owned.length > 50 && notOwned.length > 50, `keys on both sides of the split (${owned.length} held, ${notOwned.length} not)`);

  const summary = await init.ae.repair();
  t.equal(summary.errors, 0, 'the exchange ran without errors');
  const present = async (k: Buffer): Promise<boolean> => (await resp.ks.engine.get(dataKey(k))) !== undefined;
  const missingOwned = [];
  for (const k of owned) if (!(await present(k))) missingOwned.push(k.toString());
  t.same(missingOwned, [], 'every key of a slot the responder holds was repaired onto it');
  const stray = [];
  for (const k of notOwned) if (await present(k)) stray.push(k.toString());
  t.same(stray, [], 'no key of a slot the responder does not hold was copied onto it');
  t.equal(resp.ae.stats.keysRefused, notOwned.length, 'each refused key is counted (antientropy_keys_refused)');
  t.ok(resp.ae.infoFields().some(([k, v]) => k === 'antientropy_keys_refused' && v === notOwned.length), 'and reported in INFO');

  // The other direction: a key only the responder has is pulled by the initiator, which holds
  // every slot, so nothing is refused there.
  const extra = Buffer.from('only-on-resp');
  const extraSlotOwned = respOwns(keySlot(extra));
  await resp.ks.writeObject(extra, { value: Buffer.from('x'), expiresAtMs: 0 });
  await init.ae.repair();
  t.ok((await init.ks.engine.get(dataKey(extra))) !== undefined, `a key only the responder had (slot held by responder: ${extraSlotOwned}) reaches the initiator, which holds every slot`);
  t.equal(init.ae.stats.keysRefused, 0, 'the initiator refused nothing');
});
