// Redis glob matching (KEYS / SCAN MATCH). Expected values were taken from redis-server 7.0.15
// (`KEYS pattern` against a one-key database), including its corner cases.
import t from 'tap';
import { globMatch, matchesEverything } from '../../src/server/glob.js';

const CASES: readonly [string, string, boolean][] = [
  ['h?llo', 'hello', true], ['h?llo', 'hllo', false], ['h*llo', 'hllo', true], ['h*llo', 'heeeello', true],
  ['h[ae]llo', 'hello', true], ['h[ae]llo', 'hillo', false], ['h[^e]llo', 'hallo', true], ['h[^e]llo', 'hello', false],
  ['h[a-b]llo', 'hbllo', true], ['h[b-a]llo', 'hbllo', true], ['h[a-b]llo', 'hcllo', false],
  ['a\\*b', 'a*b', true], ['a\\*b', 'axb', false], ['a[\\]]b', 'a]b', true], ['a[', 'a[', false], ['a[', 'a', false],
  ['ab[c', 'abc', true], ['[]', '[', false], ['*a', 'ba', true], ['a*', 'a', true], ['**b', 'ab', true],
  ['a?', 'a', false], ['[a-', 'a', true], ['[a-', '-', true], ['[^', 'x', true], ['\\', '\\', true],
  ['a\\', 'a\\', true], ['*[a', 'xa', true], ['[\\', '\\', true],
];

t.test('matches as redis-server does', async (t) => {
  for (const [p, s, want] of CASES) {
    t.equal(globMatch(Buffer.from(p, 'latin1'), Buffer.from(s, 'latin1')), want, `${JSON.stringify(p)} ~ ${JSON.stringify(s)}`);
  }
});

t.test('binary bytes and signed-char ranges', async (t) => {
  t.ok(globMatch(Buffer.from([0x61, 0x3f]), Buffer.from([0x61, 0x00])), 'a? matches a\\0');
  // Redis compares range ends as signed chars: [\x01-\xff] is the range -1..1 after the swap.
  t.ok(globMatch(Buffer.from([0x5b, 0x01, 0x2d, 0xff, 0x5d]), Buffer.from([0x00])));
  t.notOk(globMatch(Buffer.from([0x5b, 0x01, 0x2d, 0xff, 0x5d]), Buffer.from([0x41])));
});

t.test('abusive patterns finish quickly', async (t) => {
  const pattern = Buffer.from('a*'.repeat(40) + 'b');
  const subject = Buffer.from('a'.repeat(200));
  const start = Date.now();
  t.notOk(globMatch(pattern, subject));
  t.ok(Date.now() - start < 1000, 'no exponential backtracking');
});

t.test('only "*" is the all-keys fast path', async (t) => {
  t.ok(matchesEverything(Buffer.from('*')));
  t.notOk(matchesEverything(Buffer.from('**')));
  t.notOk(globMatch(Buffer.from('**'), Buffer.alloc(0)), 'stringmatchlen("**", "") is false in Redis too');
});
