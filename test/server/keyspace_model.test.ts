// Random command histories against a plain model of Redis strings with TTLs (fast-check):
// GET, EXISTS, TTL, DBSIZE, KEYS and INFO keyspace counts must agree after every step, with the
// clock moving, on the real engine.
import t from 'tap';
import fc from 'fast-check';
import { openFixture } from './keyspace_fixture.js';

type Cmd =
  | { op: 'set'; key: number; value: number; px: number }
  | { op: 'del'; key: number }
  | { op: 'incr'; key: number }
  | { op: 'append'; key: number }
  | { op: 'pexpire'; key: number; ms: number }
  | { op: 'persist'; key: number }
  | { op: 'getdel'; key: number }
  | { op: 'tick'; ms: number };

const KEYS = 6;

t.test('keyspace agrees with a model of Redis strings', async (t) => {
  const fx = await openFixture(t);
  const key = fc.nat(KEYS - 1);
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key, value: fc.nat(99), px: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })) }),
    fc.record({ op: fc.constant('del' as const), key }),
    fc.record({ op: fc.constant('incr' as const), key }),
    fc.record({ op: fc.constant('append' as const), key }),
    fc.record({ op: fc.constant('pexpire' as const), key, ms: fc.integer({ min: -5, max: 40 }) }),
    fc.record({ op: fc.constant('persist' as const), key }),
    fc.record({ op: fc.constant('getdel' as const), key }),
    fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 25 }) }),
  );
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
      runs++;
      await fx.run('FLUSHALL');
      const model = new Map<string, { value: string; expiresAtMs: number }>();
      const live = (k: string) => {
        const e = model.get(k);
        if (e === undefined) return undefined;
        if (e.expiresAtMs > 0 && fx.clock.ms > e.expiresAtMs) {
          model.delete(k);
          return undefined;
        }
        return e;
      };
      for (const c of cmds) {
        if (c.op === 'tick') {
          fx.clock.advance(c.ms);
          continue;
        }
        const k = `k${c.key}`;
        const cur = live(k);
        let got: unknown;
        let want: unknown;
        switch (c.op) {
          case 'set':
            got = c.px > 0 ? await fx.run('SET', k, String(c.value), 'PX', String(c.px)) : await fx.run('SET', k, String(c.value));
            want = 'OK';
            model.set(k, { value: String(c.value), expiresAtMs: c.px > 0 ? fx.clock.ms + c.px : 0 });
            break;
          case 'del':
            got = await fx.run('DEL', k);
            want = cur === undefined ? 0 : 1;
            model.delete(k);
            break;
          case 'getdel':
            got = await fx.run('GETDEL', k);
            want = cur?.value ?? null;
            model.delete(k);
            break;
          case 'incr': {
            got = await fx.run('INCR', k);
            const n = cur === undefined ? 0 : /^(0|-?[1-9][0-9]*)$/.test(cur.value) ? Number(cur.value) : undefined;
            if (n === undefined) want = { error: 'ERR value is not an integer or out of range' };
            else {
              want = n + 1;
              model.set(k, { value: String(n + 1), expiresAtMs: cur?.expiresAtMs ?? 0 });
            }
            break;
          }
          case 'append': {
            got = await fx.run('APPEND', k, 'x');
            const value = (cur?.value ?? '') + 'x';
            want = value.length;
            model.set(k, { value, expiresAtMs: cur?.expiresAtMs ?? 0 });
            break;
          }
          case 'pexpire':
            got = await fx.run('PEXPIRE', k, String(c.ms));
            if (cur === undefined) want = 0;
            else {
              want = 1;
              if (c.ms <= 0) model.delete(k);
              else cur.expiresAtMs = fx.clock.ms + c.ms;
            }
            break;
          case 'persist':
            got = await fx.run('PERSIST', k);
            want = cur !== undefined && cur.expiresAtMs > 0 ? 1 : 0;
            if (cur !== undefined) cur.expiresAtMs = 0;
            break;
        }
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${JSON.stringify(c)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
        // Observe everything after each step.
        const liveKeys = [...Array(KEYS).keys()].map((i) => `k${i}`).filter((kk) => live(kk) !== undefined);
        for (let i = 0; i < KEYS; i++) {
          const kk = `k${i}`;
          const e = live(kk);
          const g = await fx.run('GET', kk);
          if (g !== (e?.value ?? null)) throw new Error(`after ${JSON.stringify(c)}: GET ${kk} = ${JSON.stringify(g)}, want ${e?.value}`);
          const pttl = await fx.run('PTTL', kk);
          const wantTtl = e === undefined ? -2 : e.expiresAtMs === 0 ? -1 : e.expiresAtMs - fx.clock.ms;
          if (pttl !== wantTtl) throw new Error(`after ${JSON.stringify(c)}: PTTL ${kk} = ${pttl}, want ${wantTtl}`);
        }
        const info = await fx.ks.keyspaceInfo();
        const wantInfo = { keys: liveKeys.length, expires: liveKeys.filter((kk) => live(kk)!.expiresAtMs > 0).length };
        if (JSON.stringify(info) !== JSON.stringify(wantInfo)) throw new Error(`after ${JSON.stringify(c)}: info ${JSON.stringify(info)}, want ${JSON.stringify(wantInfo)}`);
        const keys = ((await fx.run('KEYS', '*')) as string[]).sort();
        if (JSON.stringify(keys) !== JSON.stringify(liveKeys)) throw new Error(`KEYS ${keys} want ${liveKeys}`);
      }
    }),
    { numRuns: 150 },
  );
  t.equal(runs >= 150, true, `${runs} histories agree with the model`);
});
