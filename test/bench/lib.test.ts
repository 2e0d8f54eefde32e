import t from 'tap';
import {
  median,
  percentile,
  ratio,
  relativeSpread,
  runAlternating,
  medians,
  markdownTable,
  formatRatio,
  formatBytes,
  formatNumber,
  barChartSvg,
  lineChartSvg,
  niceTicks,
  shortNumber,
} from '../../bench/lib/index.js';

t.test('median and percentile', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9);
  t.equal(percentile([5], 99), 5);
  t.equal(percentile([1, 2, 3], 100), 3);
  t.throws(() => median([]));
  t.ok(Number.isNaN(ratio(1, 0)));
  t.equal(ratio(3, 2), 1.5);
  t.equal(relativeSpread([10, 10, 10]), 0);
  t.equal(relativeSpread([9, 10, 11]), 0.1);
});

t.test('alternating rounds rotate the order and drop warm-up rounds', async (t) => {
  const order: string[] = [];
  const mk = (name: string, v: number) => ({
    name,
    run: async (round: number) => {
      order.push(`${name}${round}`);
      return v + round;
    },
  });
  const s = await runAlternating([mk('a', 10), mk('b', 20)], { rounds: 3, warmupRounds: 1 });
  t.same(order, ['a0', 'b0', 'b1', 'a1', 'a2', 'b2', 'b3', 'a3']);
  t.same(s.get('a'), [11, 12, 13]);
  t.same(s.get('b'), [21, 22, 23]);
  t.same([...medians(s)], [['a', 12], ['b', 22]]);
});

t.test('markdown table', async (t) => {
  const md = markdownTable(['name', 'ops/s'], [['a|b', 1], ['c', 2]]);
  t.equal(md, '| name | ops/s |\n| :--- | ---: |\n| a\\|b | 1 |\n| c | 2 |\n');
  t.throws(() => markdownTable(['x', 'y'], [['only one']]));
});

t.test('formatting', async (t) => {
  t.equal(formatRatio(1.234), '1.23x');
  t.equal(formatRatio(Number.NaN), 'n/a');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatBytes(100), '100 B');
  t.equal(formatNumber(123456.7), '123,457');
  t.equal(formatNumber(0.012345), '0.0123');
  t.equal(shortNumber(1_200_000), '1.2M');
  t.equal(shortNumber(950), '950');
});

t.test('nice ticks cover the range', async (t) => {
  const ticks = niceTicks(0, 87);
  t.equal(ticks[0], 0);
  t.ok(ticks[ticks.length - 1]! >= 87);
  for (let i = 1; i < ticks.length; i++) t.ok(ticks[i]! > ticks[i - 1]!);
});

t.test('svg charts are well-formed and carry the data', async (t) => {
  const bar = barChartSvg({
    title: 'A <b> & c',
    categories: ['fill', 'read'],
    series: [
      { name: 'ringkv', values: [100, 2000] },
      { name: 'leveldb', values: [50, Number.NaN] },
    ],
    logScale: true,
  });
  t.match(bar, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(bar, /<\/svg>\n$/);
  t.match(bar, /A &lt;b&gt; &amp; c/);
  t.equal((bar.match(/<rect [^>]*fill="#/g) ?? []).length, 3 + 2, 'three bars plus two legend swatches');
  t.throws(() => barChartSvg({ title: 'x', categories: ['a'], series: [{ name: 's', values: [1, 2] }] }));
  const line = lineChartSvg({
    title: 'lag',
    series: [{ name: 'p99', points: [[0, 1], [1, 5], [2, 3]] }],
    referenceY: { value: 20, label: 'target' },
  });
  t.match(line, /<path d="M[^"]+L[^"]+L[^"]+"/);
  t.match(line, /target/);
});

t.test('runChildJson returns the child result line with its peak RSS, rejects on failure', async (t) => {
  const fsp = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { runChildJson } = await import('../../bench/lib/index.js');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ringkv-benchlib-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const childLib = new URL('../../bench/lib/child.js', import.meta.url).href;
  const ok = path.join(dir, 'ok.mjs');
  await fsp.writeFile(ok, `import { emitChildResult } from '${childLib}';\nconsole.log('noise');\nemitChildResult({ answer: Number(process.argv[2]) * 2 });\n`);
  const r = await runChildJson<{ answer: number }>(ok, ['21']);
  t.equal(r.answer, 42);
  t.ok(r.peakRssBytes > 1024 * 1024, `peak RSS ${r.peakRssBytes}`);
  const bad = path.join(dir, 'bad.mjs');
  await fsp.writeFile(bad, 'process.exit(3);\n');
  await t.rejects(runChildJson(bad, []), /exited with 3/);
  const silent = path.join(dir, 'silent.mjs');
  await fsp.writeFile(silent, 'console.log("no result");\n');
  await t.rejects(runChildJson(silent, []), /no result line/);
  const slow = path.join(dir, 'slow.mjs');
  await fsp.writeFile(slow, 'setTimeout(() => {}, 60000);\n');
  await t.rejects(runChildJson(slow, [], { timeoutMs: 300 }), /timed out/);
});

t.test('codeVersion names a commit', async (t) => {
  const { codeVersion } = await import('../../bench/lib/index.js');
  t.match(codeVersion(['package.json']), /^([0-9a-f]{7,}|uncommitted|unknown)/);
});
