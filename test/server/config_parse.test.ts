import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config, ConfigError } from '../../src/config/config.js';
import { parseConfText, rewriteConfText, splitArgs, quoteArg } from '../../src/config/conf_file.js';
import { CONFIG_SCHEMA, configKey } from '../../src/config/schema.js';
import { formatBytes, parseBytes, parseValue } from '../../src/config/values.js';

/** The repository root: the first ancestor of this compiled file holding conf/ringkv.conf. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'conf', 'ringkv.conf')) && existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'ringkv-config-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

t.test('splitArgs follows sdssplitargs', async (t) => {
  t.same(splitArgs('port 7001'), ['port', '7001']);
  t.same(splitArgs('  bind  127.0.0.1   -::1 '), ['bind', '127.0.0.1', '-::1']);
  t.same(splitArgs('requirepass "a b\\n\\x41"'), ['requirepass', 'a b\nA']);
  t.same(splitArgs("requirepass 'it\\'s'"), ['requirepass', "it's"]);
  t.same(splitArgs('requirepass ""'), ['requirepass', '']);
  t.equal(splitArgs('requirepass "open'), undefined, 'unbalanced double quote');
  t.equal(splitArgs("requirepass 'open"), undefined, 'unbalanced single quote');
  t.equal(splitArgs('requirepass "a"b'), undefined, 'closing quote must end the argument');
  for (const v of ['plain', 'with space', 'quote"s', "single'", 'back\\slash', '', 'tab\tnl\n', '#hash']) {
    t.same(splitArgs(`k ${quoteArg(v)}`), ['k', v], `quoteArg round-trips ${JSON.stringify(v)}`);
  }
});

t.test('values: sizes, bools, enums and ranges', async (t) => {
  t.equal(parseBytes('1k'), 1000);
  t.equal(parseBytes('1kb'), 1024);
  t.equal(parseBytes('64MB'), 64 * 1024 * 1024);
  t.equal(parseBytes('2g'), 2e9);
  t.equal(parseBytes('12'), 12);
  t.equal(parseBytes('-1'), undefined);
  t.equal(parseBytes('1tb'), undefined);
  t.equal(formatBytes(1024 ** 3), '1gb');
  t.equal(formatBytes(1500), '1500');
  const port = configKey('port')!;
  t.same(parseValue(port, '7001'), { ok: true, value: 7001 });
  t.match(parseValue(port, '70000'), { ok: false, error: /between 0 and 65535/ });
  t.match(parseValue(port, 'abc'), { ok: false, error: /integer/ });
  t.same(parseValue(configKey('protected-mode')!, 'YES'), { ok: true, value: true });
  t.match(parseValue(configKey('protected-mode')!, 'maybe'), { ok: false });
  t.same(parseValue(configKey('appendfsync')!, 'Always'), { ok: true, value: 'always' });
  t.match(parseValue(configKey('conflict-policy')!, 'newest'), { ok: false, error: /siblings, lww/ });
  t.match(parseValue(configKey('bind')!, '127.0.0.1 bad/addr'), { ok: false, error: /invalid address/ });
  t.same(parseValue(configKey('memtable-bytes')!, '1mb'), { ok: true, value: 1048576 });
  for (const key of CONFIG_SCHEMA) t.ok(parseValue(key, key.default).ok, `default of ${key.name} is valid`);
});

t.test('load: file then command line; errors name the file and line', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'a.conf');
  await writeFile(file, '# comment\n\nPort 7001\nbind 127.0.0.1 ::1\nrequirepass "s e c"\nmemtable-bytes 1mb\n');
  const c = await Config.load(file, [['port', '7002'], ['loglevel', 'debug']]);
  t.equal(c.getNumber('port'), 7002, 'command line wins');
  t.equal(c.getString('bind'), '127.0.0.1 ::1');
  t.equal(c.getString('requirepass'), 's e c');
  t.equal(c.getNumber('memtable-bytes'), 1048576);
  t.equal(c.getString('loglevel'), 'debug');
  t.equal(c.getBool('protected-mode'), true, 'default kept');

  await writeFile(file, 'port 1\nfoo bar\n');
  await t.rejects(Config.load(file, []), new ConfigError(`${file} line 2: unknown config key 'foo'`));
  await writeFile(file, 'port 1\n\nport banana\n');
  await t.rejects(Config.load(file, []), { message: /line 3: bad value 'banana' for 'port'/ });
  await writeFile(file, 'requirepass "x\n');
  await t.rejects(Config.load(file, []), { message: /line 1: unbalanced quotes/ });
  await writeFile(file, 'port 1 2\n');
  await t.rejects(Config.load(file, []), { message: /line 1: 'port' takes one value/ });
  await t.rejects(Config.load(path.join(dir, 'missing.conf'), []), { message: /cannot read config file .*ENOENT/ });
  await t.rejects(Config.load(undefined, [['nope', '1']]), { message: "--nope: unknown config key 'nope'" });
  await t.rejects(Config.load(undefined, [['appendfsync', 'sometimes']]), { message: /--appendfsync: bad value 'sometimes'/ });
});

t.test('CONFIG SET: validated, all or nothing, run-time keys only, listeners told', async (t) => {
  const c = Config.fromOverrides([]);
  const heard: [string, unknown][] = [];
  c.onChange((k, v) => heard.push([k, v]));
  t.equal(c.set([['maxclients', '5'], ['timeout', '30']]), undefined);
  t.equal(c.getNumber('maxclients'), 5);
  t.equal(c.getNumber('timeout'), 30);
  t.same(heard, [['maxclients', 5], ['timeout', 30]]);
  t.equal(c.set([['timeout', '1'], ['maxclients', 'x']]), "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer");
  t.equal(c.getNumber('timeout'), 30, 'nothing applied when one pair fails');
  t.equal(c.set([['port', '1']]), "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
  t.equal(c.set([['bogus', '1']]), "ERR Unknown option or number of arguments for CONFIG SET - 'bogus'");
  t.equal(c.set([['timeout', '1'], ['TIMEOUT', '2']]), "ERR CONFIG SET failed (possibly related to argument 'TIMEOUT') - duplicate parameter");
  t.equal(c.set([['Slowlog-Max-Len', '10kb']]), "ERR CONFIG SET failed (possibly related to argument 'Slowlog-Max-Len') - argument couldn't be parsed into an integer");
  t.equal(c.set([['client-output-buffer-limit', '2mb']]), undefined);
  t.equal(c.getString('client-output-buffer-limit'), String(2 * 1024 * 1024), 'CONFIG GET shows bytes');
});

t.test('CONFIG GET patterns', async (t) => {
  const c = Config.fromOverrides([]);
  t.same(c.match(['port']), [['port', '6379']]);
  // Redis 7 (config.c configGetCommand): an exact name is found case-insensitively and echoed
  // as sent; a glob reports the parameter's own (lower-case) name; each parameter once.
  t.same(c.match(['PORT']), [['PORT', '6379']], 'exact name: case-insensitive, echoed as sent');
  t.same(c.match(['Port', 'port', 'P*RT']), [['Port', '6379']], 'reported once, by its first spelling');
  t.same(c.match(['PO?T', 'Port']), [['port', '6379']], 'a glob reports the lower-case name');
  t.same(c.match(['port', 'Appendonly'], [['appendonly', 'yes']]), [['port', '6379'], ['Appendonly', 'yes']], 'extra pairs answer like parameters');
  t.same(c.match(['slowlog-*']).map(([k]) => k), ['slowlog-log-slower-than', 'slowlog-max-len']);
  t.same(c.match(['max*-bytes']).map(([k]) => k), ['max-key-bytes', 'max-value-bytes']);
  t.same(c.match(['port', 'bind']).map(([k]) => k), ['port', 'bind']);
  t.same(c.match(['nothing-like-this']), []);
  t.equal(c.match(['*']).length, CONFIG_SCHEMA.length);
  t.same(c.match(['protected-mode']), [['protected-mode', 'yes']]);
});

t.test('CONFIG REWRITE keeps comments, updates lines in place, appends new keys', async (t) => {
  const text = '# top comment\nport 7001\n\n# pass\nrequirepass old\ntimeout 5\ntimeout 6\n';
  const lines = new Map([['port', 'port 7001'], ['requirepass', 'requirepass new'], ['timeout', 'timeout 9'], ['maxclients', 'maxclients 7']]);
  t.equal(
    rewriteConfText(text, lines, ['maxclients']),
    '# top comment\nport 7001\n\n# pass\nrequirepass new\ntimeout 9\n# Generated by CONFIG REWRITE\nmaxclients 7\n',
  );

  const dir = await tempDir(t);
  const file = path.join(dir, 'node.conf');
  await writeFile(file, '# my node\nport 7001\ndir ./d\n');
  const c = await Config.load(file, []);
  t.equal(c.set([['maxclients', '42'], ['requirepass', 'p w']]), undefined);
  await c.rewrite();
  const out = await readFile(file, 'utf8');
  t.equal(out, '# my node\nport 7001\ndir ./d\n# Generated by CONFIG REWRITE\nrequirepass "p w"\nmaxclients 42\n');
  const again = await Config.load(file, []);
  t.equal(again.getNumber('maxclients'), 42, 'the rewritten file loads back');
  t.equal(again.getString('requirepass'), 'p w');
  // A second rewrite with no change is a fixed point.
  await again.rewrite();
  t.equal(await readFile(file, 'utf8'), out);
  await t.rejects(Config.fromOverrides([]).rewrite(), { message: 'The server is running without a config file' });
});

t.test('conf/ringkv.conf documents every key with its default, and loads', async (t) => {
  const file = path.join(repoRoot(), 'conf', 'ringkv.conf');
  const text = await readFile(file, 'utf8');
  const directives = parseConfText(text, file);
  const seen = new Map(directives.map((d) => [d.key, d.args.join(' ')]));
  for (const key of CONFIG_SCHEMA) {
    t.ok(seen.has(key.name), `${key.name} is in conf/ringkv.conf`);
    const v = seen.get(key.name);
    if (v !== undefined) t.same(parseValue(key, v), parseValue(key, key.default), `${key.name} shows its default`);
    // The comment block right above the key says [runtime] exactly when CONFIG SET may change it.
    const lines = text.split('\n');
    const at = directives.find((d) => d.key === key.name)?.line ?? 1;
    let doc = '';
    for (let i = at - 2; i >= 0 && (lines[i] ?? '').startsWith('#'); i--) doc = (lines[i] ?? '') + doc;
    t.equal(doc.includes('[runtime]'), key.runtime, `${key.name}: [runtime] marker matches the schema`);
  }
  t.equal(directives.length, CONFIG_SCHEMA.length, 'no key the schema lacks');
  const c = await Config.load(file, []);
  t.same(c.changedKeys(), [], 'the shipped file is all defaults');
});
