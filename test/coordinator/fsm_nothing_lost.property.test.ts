// Random histories through the coordinators (clients reading contexts and writing with them via
// any node, partitions that refuse or blackhole and are or are not detected, W and R per call),
// then heal, let late messages land, and converge.
// Checked with the set-style definition of TESTING.md ("nothing lost"), not linearizability:
//  - every replica ends with identical bytes;
//  - every acknowledged write is live at the end, or its dot is covered by the context of some
//    write that may have been applied (acknowledged, or NOQUORUM: indeterminate);
//  - every live value at the end was written, and no write that certainly landed superseded it.
// RINGKV_PROPERTY_SCALE multiplies the run count (soak).
import fc from 'fast-check';
import t from 'tap';
import { covers, type Context } from '../../src/coordinator/dvv.js';
import { NoQuorumError, UnavailableError } from '../../src/coordinator/fsm_errors.js';
import { contextOf, EMPTY_CONTEXT, encodeObject, type VersionedObject } from '../../src/coordinator/object.js';
import { keySlot } from '../../src/coordinator/slot.js';
import { startCluster } from './fsm_cluster.js';

const SCALE = Math.max(1, Number(process.env.RINGKV_PROPERTY_SCALE ?? 1) || 1);
const NODES = 4;
const CLIENTS = 3;

type Op =
  | { kind: 'read'; client: number; node: number; r: 1 | 2 }
  | { kind: 'write'; client: number; node: number; w: 1 | 2 | 3; del: boolean }
  | { kind: 'split'; side: number[]; detect: boolean; fault: 'refuse' | 'blackhole' }
  | { kind: 'heal' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), client: fc.nat(CLIENTS - 1), node: fc.nat(NODES - 1), r: fc.constantFrom(1 as const, 2 as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      client: fc.nat(CLIENTS - 1),
      node: fc.nat(NODES - 1),
      w: fc.constantFrom(1 as const, 2 as const, 3 as const),
      del: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('split' as const),
      side: fc.uniqueArray(fc.nat(NODES - 1), { minLength: 1, maxLength: NODES - 1 }),
      detect: fc.boolean(),
      fault: fc.constantFrom('refuse' as const, 'blackhole' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'heal' as const }) },
);

interface Issued {
  readonly value: string | null;
  readonly ctx: Context;
  /**
   * 'acked': W met; 'maybe': NOQUORUM (indeterminate: stored by its coordinator, or a forward
   * that timed out and may land later); 'none': CLUSTERDOWN, certainly not applied.
   */
  readonly outcome: 'acked' | 'maybe' | 'none';
  /** The minted dot, known for acknowledged value writes. */
  readonly dot?: { actor: string; counter: number };
}

/** The sibling a value write minted, found by its value (values are unique per history). */
function mintedDot(obj: VersionedObject, value: string): { actor: string; counter: number } {
  const s = obj.siblings.find((x) => x.value !== null && x.value.toString() === value);
  if (s === undefined) throw new Error(`write result lacks its own value ${value}`);
  return s.dot;
}

t.test('nothing lost under partitions, through any coordinator', async (t) => {
  const c = await startCluster(t, { nodes: NODES, n: 3, settings: { requestTimeoutMs: 40 } });
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30 }), async (ops) => {
      c.net.heal();
      const key = Buffer.from(`prop-${run++}`);
      const ctx: Context[] = Array.from({ length: CLIENTS }, () => EMPTY_CONTEXT);
      const issued: Issued[] = [];
      let seq = 0;
      for (const op of ops) {
        if (op.kind === 'heal') {
          c.net.heal();
        } else if (op.kind === 'split') {
          c.net.heal();
          const a = op.side.map((i) => c.ids[i]!);
          const b = c.ids.filter((id) => !a.includes(id));
          c.net.partition([a, b], op.fault, op.detect);
        } else if (op.kind === 'read') {
          try {
            ctx[op.client] = contextOf(await c.node(c.ids[op.node]!).get(key, { r: op.r }));
          } catch (err) {
            if (!(err instanceof NoQuorumError)) throw err;
          }
        } else {
          const value = op.del ? null : `v${seq++}`;
          const used = ctx[op.client]!;
          const via = c.node(c.ids[op.node]!);
          try {
            const obj = await via.put(key, { value: value === null ? null : Buffer.from(value), expiresAtMs: 0, context: used }, { w: op.w });
            // Deletes mint an anonymous tombstone: their dot is not tracked, only their context.
            issued.push({ value, ctx: used, outcome: 'acked', ...(value === null ? {} : { dot: mintedDot(obj, value) }) });
          } catch (err) {
            if (err instanceof NoQuorumError) issued.push({ value, ctx: used, outcome: 'maybe' });
            else if (err instanceof UnavailableError) issued.push({ value, ctx: used, outcome: 'none' });
            else throw err;
          }
        }
      }

      // Heal, let everything land, then converge with full reads (read repair) from every node.
      c.net.heal();
      await c.idle();
      for (const id of c.ids) await c.node(id).get(key, { r: 3, timeoutMs: 10_000 });
      await c.idle();
      const ring = c.ring();
      const pref = ring.preflist(keySlot(key));
      const finals = await Promise.all(pref.map((id) => c.keyspace(id).readObject(key)));
      const bytes = new Set(finals.map((o) => encodeObject(o).toString('hex')));
      if (bytes.size !== 1) throw new Error(`replicas differ after convergence (${bytes.size} versions)`);
      const final = finals[0]!;
      const live = new Map(final.siblings.filter((s) => s.value !== null).map((s) => [s.value!.toString(), s.dot]));

      const mayHaveLanded = issued.filter((w) => w.outcome !== 'none');
      for (const w of issued) {
        if (w.outcome !== 'acked' || w.dot === undefined) continue;
        if (!covers(final.clock, w.dot)) throw new Error(`acked write ${w.value} (dot ${w.dot.actor}:${w.dot.counter}) not in the final clock`);
        const present = w.value !== null && live.has(w.value);
        if (!present && !mayHaveLanded.some((x) => covers(x.ctx, w.dot!))) throw new Error(`acked write ${w.value} lost without being superseded`);
      }
      const written = new Set(issued.map((w) => w.value));
      for (const [v, dot] of live) {
        if (!written.has(v)) throw new Error(`value ${v} was never written`);
        if (issued.some((x) => x.outcome === 'acked' && covers(x.ctx, dot))) throw new Error(`value ${v} survived an acked write that superseded it`);
      }
    }),
    { numRuns: 15 * SCALE, seed: Number(process.env.RINGKV_PROPERTY_SEED ?? 20261201) },
  );
  t.pass(`${run} random histories converged with nothing lost`);
});
