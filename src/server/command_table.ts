/**
 * The command table: every command as data (a CommandSpec), looked up case-insensitively.
 * Subcommands are looked up under their container ('client' + 'setname' -> 'client|setname').
 * Registration checks the specs (programmer errors assert), so a bad table fails at startup.
 */
import assert from 'node:assert';
import type { CommandSpec } from './types.js';

export class CommandTable {
  readonly #byName = new Map<string, CommandSpec>();
  readonly #subByName = new Map<string, CommandSpec>();

  constructor(specs: Iterable<CommandSpec>) {
    for (const spec of specs) this.#register(spec);
  }

  #register(spec: CommandSpec): void {
    assert(spec.name === spec.name.toLowerCase() && !spec.name.includes('|'), `command name ${spec.name} must be lower case`);
    assert(!this.#byName.has(spec.name), `command ${spec.name} registered twice`);
    assert(spec.arity !== 0, `command ${spec.name}: arity 0 is invalid`);
    assert(spec.handler !== undefined || (spec.subcommands?.length ?? 0) > 0, `command ${spec.name} has no handler`);
    this.#byName.set(spec.name, spec);
    for (const sub of spec.subcommands ?? []) {
      assert(sub.name.startsWith(`${spec.name}|`) && sub.name === sub.name.toLowerCase(), `subcommand ${sub.name} must be named '${spec.name}|x'`);
      assert(sub.handler !== undefined, `subcommand ${sub.name} has no handler`);
      assert(Math.abs(sub.arity) >= 2, `subcommand ${sub.name}: arity counts the container and the subcommand`);
      assert(!this.#subByName.has(sub.name), `subcommand ${sub.name} registered twice`);
      this.#subByName.set(sub.name, sub);
    }
  }

  /** The command named `name` (any case), or undefined. */
  lookup(name: string): CommandSpec | undefined {
    return this.#byName.get(name) ?? this.#byName.get(name.toLowerCase());
  }

  lookupSub(container: CommandSpec, sub: string): CommandSpec | undefined {
    return this.#subByName.get(`${container.name}|${sub.toLowerCase()}`);
  }

  /** Every top-level command, in registration order. */
  all(): CommandSpec[] {
    return [...this.#byName.values()];
  }

  get size(): number {
    return this.#byName.size;
  }
}

/** True when `argc` (the name included) satisfies Redis arity `arity`. */
export function arityOk(arity: number, argc: number): boolean {
  return arity > 0 ? argc === arity : argc >= -arity;
}
