/**
 * COMMAND's replies, built from the command table: COMMAND INFO entries in Redis 7's ten-field
 * form (name, arity, flags, first key, last key, step, ACL categories, tips, key specs,
 * subcommands) and COMMAND DOCS maps (summary, since, group, complexity, arguments,
 * subcommands), which redis-cli reads at startup for its hints.
 */
import { array, bulk, integer, map, set, simple, type Reply } from '../resp/reply.js';
import type { CommandSpec } from './types.js';

function aclCategories(spec: CommandSpec): string[] {
  const cats: string[] = [];
  if (spec.flags.includes('write')) cats.push('@write');
  if (spec.flags.includes('readonly')) cats.push('@read');
  if (spec.flags.includes('admin')) cats.push('@admin', '@dangerous');
  cats.push(spec.flags.includes('fast') ? '@fast' : '@slow');
  if (spec.group === 'string') cats.push('@string');
  if (spec.group === 'generic' || spec.firstKey > 0) cats.push('@keyspace');
  if (spec.group === 'connection') cats.push('@connection');
  return [...new Set(cats)];
}

function keySpecs(spec: CommandSpec): Reply {
  if (spec.firstKey <= 0) return array([]);
  const lastKey = spec.lastKey < 0 ? spec.lastKey : spec.lastKey - spec.firstKey;
  const access = spec.flags.includes('write') ? ['RW', 'UPDATE'] : ['RO', 'ACCESS'];
  return array([
    map([
      [bulk('flags'), set(access.map(simple))],
      [bulk('begin_search'), map([[bulk('type'), bulk('index')], [bulk('spec'), map([[bulk('index'), integer(spec.firstKey)]])]])],
      [
        bulk('find_keys'),
        map([
          [bulk('type'), bulk('range')],
          [bulk('spec'), map([[bulk('lastkey'), integer(lastKey)], [bulk('keystep'), integer(spec.keyStep)], [bulk('limit'), integer(0)]])],
        ]),
      ],
    ]),
  ]);
}

export function commandInfo(spec: CommandSpec): Reply {
  return array([
    bulk(spec.name),
    integer(spec.arity),
    set(spec.flags.map(simple)),
    integer(spec.firstKey),
    integer(spec.lastKey),
    integer(spec.keyStep),
    set(aclCategories(spec).map(simple)),
    set([]),
    keySpecs(spec),
    array((spec.subcommands ?? []).map(commandInfo)),
  ]);
}

export function commandDocs(spec: CommandSpec): Reply {
  const entries: [Reply, Reply][] = [
    [bulk('summary'), bulk(spec.summary)],
    [bulk('since'), bulk(spec.since ?? '1.0.0')],
    [bulk('group'), bulk(spec.group)],
    [bulk('complexity'), bulk(spec.flags.includes('fast') ? 'O(1)' : 'O(N)')],
    [bulk('arguments'), array([])],
  ];
  const subs = spec.subcommands ?? [];
  if (subs.length > 0) entries.push([bulk('subcommands'), map(subs.map((s) => [bulk(s.name), commandDocs(s)] as [Reply, Reply]))]);
  return map(entries);
}
