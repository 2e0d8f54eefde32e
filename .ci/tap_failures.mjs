// Reads the raw TAP log of a tap run (what `npm test` prints when stdout is not a terminal) and
// prints, for the end of a CI log, what failed and where: every failing assertion with the test
// file and subtest path it belongs to and its YAML diagnostics (at:, found/wanted, diff, source),
// every failing subtest or test file with no failing assertion inside it (a timeout, a non-zero
// exit code or a signal, a plan mismatch), and the slowest test files. A CI log is often
// truncated at the start, so this summary is what must be readable on its own.
//
//   node .ci/tap_failures.mjs LOGFILE
import { readFileSync } from 'node:fs';

/** YAML lines shown per failure; diagnostics beyond are cut (the full log has them). */
const YAML_LINES_MAX = 40;
/** Failures listed in full; beyond, only counted. */
const FAILURES_SHOWN_MAX = 30;
/** Slowest test files listed. */
const SLOWEST_SHOWN = 10;
/** Keys of a file-level result that only describe how tap ran it. */
const NOISE_KEYS = new Set(['stdio', 'cwd', 'externalID', 'command', 'args', 'jobId']);

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node .ci/tap_failures.mjs LOGFILE');
  process.exit(2);
}
const lines = readFileSync(file, 'utf8').split('\n');

const SUBTEST = /^(\s*)# Subtest: (.*)$/;
const RESULT = /^(\s*)(not ok|ok) \d+(?: - (.*?))?(?: # (.*))?$/;

/** Open subtests: { indent, name, failed } (failed: failures recorded inside it). */
const stack = [];
const failures = [];
const fileTimes = [];

/** The YAML block after line i at `indent` + 2 ("---" ... "..."), dedented, noise dropped. */
function yamlAfter(i, indent) {
  const pad = ' '.repeat(indent + 2);
  if (lines[i + 1] !== `${pad}---`) return [];
  const out = [];
  let skipping = false;
  for (let j = i + 2; j < lines.length; j++) {
    const l = lines[j];
    if (l === `${pad}...`) break;
    const body = l.startsWith(pad) ? l.slice(pad.length) : l.trimStart();
    const key = /^([A-Za-z]\w*):/.exec(body);
    if (key) skipping = NOISE_KEYS.has(key[1]);
    else if (!body.startsWith(' ') && !body.startsWith('-')) skipping = false;
    if (!skipping) out.push(body);
  }
  return out;
}

for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  const sub = SUBTEST.exec(line);
  if (sub) {
    stack.push({ indent: sub[1].length, name: sub[2], failed: 0 });
    continue;
  }
  const res = RESULT.exec(line);
  if (!res) continue;
  const indent = res[1].length;
  const ok = res[2] === 'ok';
  const name = res[3] ?? '(unnamed)';
  const directive = res[4] ?? '';
  // Close subtests that ended without a result line at their level (should not happen).
  while (stack.length > 0 && stack[stack.length - 1].indent > indent) stack.pop();
  const closes = stack.length > 0 && stack[stack.length - 1].indent === indent;
  const frame = closes ? stack.pop() : undefined;
  if (closes && indent === 0) {
    const ms = /time=([\d.]+)ms/.exec(directive);
    if (ms) fileTimes.push({ name, ms: Number(ms[1]) });
  }
  if (ok || /\b(SKIP|TODO)\b/i.test(directive)) continue;
  const path = [...stack.map((s) => s.name), name];
  for (const s of stack) s.failed++;
  // A subtest whose assertions failed is already explained by them.
  if (frame !== undefined && frame.failed > 0) continue;
  failures.push({ path, yaml: yamlAfter(i, indent), kind: frame === undefined ? 'assertion' : indent === 0 ? 'test file' : 'subtest' });
}

console.log('');
console.log('==================== test failures (from the TAP log above) ====================');
if (failures.length === 0) {
  console.log('no failing assertion, subtest or test file found in the TAP log');
} else {
  for (const [n, f] of failures.slice(0, FAILURES_SHOWN_MAX).entries()) {
    console.log(`--- ${n + 1}. not ok (${f.kind}): ${f.path.join(' > ')}`);
    for (const l of f.yaml.slice(0, YAML_LINES_MAX)) console.log(`    ${l}`);
    if (f.yaml.length > YAML_LINES_MAX) console.log(`    ... (${f.yaml.length - YAML_LINES_MAX} more lines in the log)`);
  }
  if (failures.length > FAILURES_SHOWN_MAX) console.log(`... and ${failures.length - FAILURES_SHOWN_MAX} more failures`);
  console.log('failing test files:');
  // tap's own "timeout!" entry names the test file that expired in its YAML.
  const fileOf = (x) => (x.path.length === 1 ? (/^expired: (.+)$/m.exec(x.yaml.join('\n'))?.[1] ?? x.path[0]) : x.path[0]);
  for (const f of new Set(failures.map(fileOf))) console.log(`  ${f}`);
}
if (fileTimes.length > 0) {
  console.log(`slowest test files (tap timeout per file: see package.json):`);
  for (const f of fileTimes.sort((a, b) => b.ms - a.ms).slice(0, SLOWEST_SHOWN)) {
    console.log(`  ${(f.ms / 1000).toFixed(1).padStart(7)} s  ${f.name}`);
  }
}
console.log('================================================================================');
