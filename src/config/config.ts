/**
 * The running configuration: defaults from the schema, then the conf file, then `--key value`
 * overrides, then CONFIG SET at run time. Implements the ConfigView handlers read from.
 * Listeners registered with onChange hear every run-time change after it is applied.
 */
import assert from 'node:assert';
import { readFile, writeFile, rename, open } from 'node:fs/promises';
import type { ConfigView } from '../server/types.js';
import { CONFIG_SCHEMA, configKey, type ConfigKey, type ConfigValue } from './schema.js';
import { parseValue, formatValue, formatValueForFile } from './values.js';
import { ConfigError, parseConfText, rewriteConfText, formatDirective } from './conf_file.js';
import { globMatch } from '../server/glob.js';

export { ConfigError } from './conf_file.js';

export type ConfigListener = (key: string, value: ConfigValue) => void;

/** A config view that reports its run-time changes (Config does: onChange). */
export interface ChangeReportingConfig extends ConfigView {
  onChange(listener: ConfigListener): () => void;
}

/**
 * Whether `config` reports its changes: then a hot path may keep values it read until a
 * listener hears one of their keys change (listeners run inside CONFIG SET, after it applied).
 */
export function reportsChanges(config: ConfigView): config is ChangeReportingConfig {
  return typeof (config as Partial<ChangeReportingConfig>).onChange === 'function';
}

/** Outcome of CONFIG SET: undefined on success, else the whole error text for the reply. */
export type SetError = string;

export class Config implements ConfigView {
  readonly #values = new Map<string, ConfigValue>();
  readonly #listeners: ConfigListener[] = [];
  /** The conf file this config was loaded from; CONFIG REWRITE writes it. */
  readonly filePath: string | undefined;

  private constructor(filePath: string | undefined) {
    this.filePath = filePath;
    for (const key of CONFIG_SCHEMA) {
      const r = parseValue(key, key.default);
      assert(r.ok, `default of ${key.name} must parse`);
      this.#values.set(key.name, r.value);
    }
  }

  /** Defaults plus `overrides` (tests, embedding); throws ConfigError for a bad key or value. */
  static fromOverrides(overrides: readonly (readonly [string, string])[], filePath?: string): Config {
    const c = new Config(filePath);
    for (const [k, v] of overrides) c.#applyStartup(k, v, `--${k}`);
    return c;
  }

  /**
   * Loads `path` (when given) then applies the command-line overrides. Throws ConfigError with a
   * message naming the file and line, or the option.
   */
  static async load(path: string | undefined, overrides: readonly (readonly [string, string])[]): Promise<Config> {
    const c = new Config(path);
    if (path !== undefined) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      for (const d of parseConfText(text, path)) {
        const key = configKey(d.key);
        if (key === undefined) throw new ConfigError(`${path} line ${d.line}: unknown config key '${d.key}'`);
        if (d.args.length === 0) throw new ConfigError(`${path} line ${d.line}: '${d.key}' needs a value`);
        if (d.args.length > 1 && key.name !== 'bind') {
          throw new ConfigError(`${path} line ${d.line}: '${d.key}' takes one value (quote values with spaces)`);
        }
        c.#applyStartup(key.name, d.args.join(' '), `${path} line ${d.line}`);
      }
    }
    for (const [k, v] of overrides) c.#applyStartup(k, v, `--${k}`);
    return c;
  }

  #applyStartup(name: string, text: string, where: string): void {
    const key = configKey(name);
    if (key === undefined) throw new ConfigError(`${where}: unknown config key '${name}'`);
    const r = parseValue(key, text);
    if (!r.ok) throw new ConfigError(`${where}: bad value '${text}' for '${key.name}': ${r.error}`);
    this.#values.set(key.name, r.value);
  }

  // The getters are on per-request paths (e.g. gc-grace-seconds on every write): their error
  // texts are built only when a check fails, not on every call as assert(cond, `...`) would.
  get(name: string): ConfigValue {
    const v = this.#values.get(name);
    if (v === undefined) assert.fail(`unknown config key ${name}`);
    return v;
  }

  getString(name: string): string {
    const key = configKey(name);
    if (key === undefined) assert.fail(`unknown config key ${name}`);
    return formatValue(key, this.get(key.name));
  }

  getNumber(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number') assert.fail(`config key ${name} is not a number`);
    return v;
  }

  getBool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== 'boolean') assert.fail(`config key ${name} is not a boolean`);
    return v;
  }

  onChange(listener: ConfigListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /**
   * CONFIG GET, as Redis 7's configGetCommand (config.c): arguments are taken in order; one with
   * no glob character (`*`, `?`, `[`) names a parameter exactly (case-insensitively) and is
   * echoed AS SENT (`CONFIG GET MaxClients` -> "MaxClients"); a glob pattern matches names
   * case-insensitively and reports them in lower case. A parameter already reported (by any
   * spelling) is not reported again. `extra` are read-only (name, value) pairs answered like
   * parameters (redis_compat_config.ts).
   */
  match(patterns: readonly string[], extra: readonly (readonly [string, string])[] = []): [string, string][] {
    const params: [string, string][] = CONFIG_SCHEMA.map((key) => [key.name, formatValue(key, this.get(key.name))]);
    for (const [name, value] of extra) params.push([name, value]);
    const reported = new Set<string>();
    const out: [string, string][] = [];
    for (const pattern of patterns) {
      const lower = pattern.toLowerCase();
      if (!/[*?[]/.test(pattern)) {
        const found = params.find(([name]) => name === lower);
        if (found !== undefined && !reported.has(found[0])) {
          reported.add(found[0]);
          out.push([pattern, found[1]]);
        }
        continue;
      }
      const pat = Buffer.from(lower);
      for (const [name, value] of params) {
        if (reported.has(name) || !globMatch(pat, Buffer.from(name))) continue;
        reported.add(name);
        out.push([name, value]);
      }
    }
    return out;
  }

  /**
   * CONFIG SET with Redis's all-or-nothing semantics: every pair is checked before any is
   * applied. Returns the error reply text (without the leading '-') or undefined.
   */
  set(pairs: readonly (readonly [string, string])[]): SetError | undefined {
    const staged: [ConfigKey, ConfigValue][] = [];
    const names = new Set<string>();
    for (const [name, text] of pairs) {
      const key = configKey(name);
      if (key === undefined) return `ERR Unknown option or number of arguments for CONFIG SET - '${name}'`;
      const fail = (why: string): string => `ERR CONFIG SET failed (possibly related to argument '${name}') - ${why}`;
      if (names.has(key.name)) return fail('duplicate parameter');
      names.add(key.name);
      if (!key.runtime) return fail(`can't set immutable config`);
      const r = parseValue(key, text);
      if (!r.ok) return fail(r.error);
      staged.push([key, r.value]);
    }
    for (const [key, value] of staged) this.#values.set(key.name, value);
    for (const [key, value] of staged) for (const l of [...this.#listeners]) l(key.name, value);
    return undefined;
  }

  /** Keys whose value is not the default, in schema order. */
  changedKeys(): string[] {
    return CONFIG_SCHEMA.filter((k) => {
      const d = parseValue(k, k.default);
      return d.ok && d.value !== this.get(k.name);
    }).map((k) => k.name);
  }

  /** The line CONFIG REWRITE writes for a key. */
  directive(name: string): string {
    const key = configKey(name);
    assert(key !== undefined);
    return formatDirective(key.name, formatValueForFile(key, this.get(key.name)), key.name === 'bind');
  }

  /**
   * CONFIG REWRITE: updates the conf file in place (comments kept), appending changed keys that
   * have no line yet. Written to a temporary file, fsynced, then renamed over the original.
   */
  async rewrite(): Promise<void> {
    if (this.filePath === undefined) throw new ConfigError('The server is running without a config file');
    const original = await readFile(this.filePath, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const lines = new Map(CONFIG_SCHEMA.map((k) => [k.name, this.directive(k.name)] as const));
    const text = rewriteConfText(original, lines, this.changedKeys());
    const tmp = `${this.filePath}.tmp-${process.pid}`;
    await writeFile(tmp, text);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.filePath);
  }
}
