/**
 * Connection commands: PING ECHO QUIT HELLO AUTH SELECT RESET CLIENT. Redis 7 semantics and
 * error texts; CLIENT QUORUM is ringkv's per-connection read/write quorum override.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { array, bulk, bulkOrNil, error, integer, map, NIL, OK, simple, verbatim, type Reply } from '../../resp/reply.js';
import type { ClientHandle, NodeServices } from '../services.js';
import type { ClientState, CommandContext, CommandSpec } from '../types.js';
import { formatClientLine } from '../client_list.js';

/** What HELLO reports; `version` is the Redis version whose behaviour ringkv follows. */
export const HELLO_SERVER_NAME = 'ringkv';
export { REDIS_COMPAT_VERSION } from '../version.js';
import { REDIS_COMPAT_VERSION } from '../version.js';

export const WRONGPASS_ERROR = 'WRONGPASS invalid username-password pair or user is disabled.';
export const AUTH_NO_PASSWORD_ERROR =
  'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';
export const HELLO_NOAUTH_ERROR =
  'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time';
export const SYNTAX_ERROR = 'ERR syntax error';
export const NOT_INTEGER_ERROR = 'ERR value is not an integer or out of range';
export const BAD_CLIENT_NAME_ERROR = 'ERR Client names cannot contain spaces, newlines or special characters.';

/** Quorum words CLIENT QUORUM accepts besides a replica count (ARCHITECTURE.md section 4). */
export const QUORUM_WORDS: readonly string[] = ['one', 'quorum', 'all', 'local_one', 'local_quorum', 'each_quorum'];
/** Largest replica count CLIENT QUORUM accepts as a number. */
export const QUORUM_NUMBER_MAX = 255;

/** A quorum value as stored in ClientState, or undefined when `text` is not one. */
export function parseQuorum(text: string): string | undefined {
  const t = text.toLowerCase();
  if (QUORUM_WORDS.includes(t)) return t;
  if (/^[1-9]\d{0,2}$/.test(t) && Number(t) <= QUORUM_NUMBER_MAX) return t;
  return undefined;
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

/** Constant-time password check (hashes first, so lengths do not leak either). */
export function passwordMatches(given: Buffer, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

/** Redis's client name rule: printable ASCII without spaces. */
export function validClientName(name: Buffer): boolean {
  for (const b of name) if (b < 0x21 || b > 0x7e) return false;
  return true;
}

function parseInt64(b: Buffer | undefined): number | undefined {
  if (b === undefined) return undefined;
  const s = b.toString('latin1');
  if (!/^-?\d{1,18}$/.test(s)) return undefined;
  return Number(s);
}

const spec = (
  name: string,
  arity: number,
  flags: CommandSpec['flags'],
  summary: string,
  handler: CommandSpec['handler'],
  extra: Partial<CommandSpec> = {},
): CommandSpec => ({ name, arity, flags, firstKey: 0, lastKey: 0, keyStep: 0, summary, group: 'connection', since: '1.0.0', handler, ...extra });

/** Library name/version a client reported with CLIENT SETINFO (shown by CLIENT LIST). */
const libInfo = new WeakMap<ClientState, { name: string; ver: string }>();

export function clientLibInfo(state: ClientState): { name: string; ver: string } {
  return libInfo.get(state) ?? { name: '', ver: '' };
}

export function connectionCommands(node: NodeServices): CommandSpec[] {
  const requirepass = (): string => node.config.getString('requirepass');

  const authenticate = (ctx: CommandContext, user: Buffer | undefined, pass: Buffer): Reply | undefined => {
    const expected = requirepass();
    if (user !== undefined && user.toString() !== 'default') return error(WRONGPASS_ERROR);
    if (expected === '') {
      // With no password the default user accepts any password (Redis's nopass user), but
      // AUTH <password> alone is an error so misconfiguration is visible.
      return undefined;
    }
    if (!passwordMatches(pass, expected)) {
      node.log('warn', `failed AUTH from ${ctx.client.addr}`);
      return error(WRONGPASS_ERROR);
    }
    ctx.client.authenticated = true;
    return undefined;
  };

  const helloReply = (ctx: CommandContext): Reply =>
    map([
      [bulk('server'), bulk(HELLO_SERVER_NAME)],
      [bulk('version'), bulk(REDIS_COMPAT_VERSION)],
      [bulk('proto'), integer(ctx.client.protocol)],
      [bulk('id'), integer(ctx.client.id)],
      [bulk('mode'), bulk('standalone')],
      [bulk('role'), bulk('master')],
      [bulk('modules'), array([])],
    ]);

  const handleOf = (ctx: CommandContext): ClientHandle | undefined => node.client(ctx.client.id);

  const clientLine = (h: ClientHandle): string => formatClientLine(h, clientLibInfo(h.state), Date.now());

  const clientSubs: CommandSpec[] = [
    spec('client|id', 2, ['fast', 'noauth'], 'Returns the unique client ID of the connection.', (ctx) => integer(ctx.client.id)),
    spec('client|getname', 2, ['fast'], "Returns the name of the connection.", (ctx) => (ctx.client.name === '' ? NIL : bulk(ctx.client.name))),
    spec('client|setname', 3, ['fast'], 'Sets the connection name.', (ctx, args) => {
      const name = args[2] as Buffer;
      if (!validClientName(name)) return error(BAD_CLIENT_NAME_ERROR);
      ctx.client.name = name.toString('latin1');
      return OK;
    }),
    spec('client|info', 2, [], 'Returns information about the connection.', (ctx) => {
      const h = handleOf(ctx);
      return h === undefined ? NIL : verbatim(clientLine(h) + '\n');
    }),
    spec('client|list', -2, ['admin'], 'Lists open connections.', (_ctx, args) => {
      let ids: Set<number> | undefined;
      let onlyNone = false;
      for (let i = 2; i < args.length; i++) {
        const opt = (args[i] as Buffer).toString().toLowerCase();
        if (opt === 'type' && i + 1 < args.length) {
          const type = (args[++i] as Buffer).toString().toLowerCase();
          if (type === 'normal') continue;
          if (type === 'master' || type === 'replica' || type === 'slave' || type === 'pubsub') {
            onlyNone = true;
            continue;
          }
          return error(`ERR Unknown client type '${type}'`);
        } else if (opt === 'id' && i + 1 < args.length) {
          ids = new Set();
          for (i++; i < args.length; i++) {
            const id = parseInt64(args[i]);
            if (id === undefined || id <= 0) return error('ERR Invalid client ID');
            ids.add(id);
          }
        } else {
          return error(SYNTAX_ERROR);
        }
      }
      let text = '';
      if (!onlyNone) {
        for (const h of node.clients()) {
          if (ids !== undefined && !ids.has(h.state.id)) continue;
          text += clientLine(h) + '\n';
        }
      }
      return verbatim(text);
    }),
    spec('client|kill', -3, ['admin'], 'Terminates open connections.', (ctx, args) => {
      if (args.length === 3) {
        const addr = (args[2] as Buffer).toString();
        for (const h of node.clients()) {
          if (h.state.addr === addr) {
            h.kill();
            return OK;
          }
        }
        return error('ERR No such client');
      }
      if ((args.length - 2) % 2 !== 0) return error(SYNTAX_ERROR);
      let id: number | undefined;
      let addr: string | undefined;
      let laddr: string | undefined;
      let skipMe = true;
      let maxAgeSec: number | undefined;
      let noneMatch = false;
      for (let i = 2; i < args.length; i += 2) {
        const opt = (args[i] as Buffer).toString().toLowerCase();
        const val = args[i + 1] as Buffer;
        if (opt === 'id') {
          const n = parseInt64(val);
          if (n === undefined || n <= 0) return error('ERR client-id should be greater than 0');
          id = n;
        } else if (opt === 'addr') addr = val.toString();
        else if (opt === 'laddr') laddr = val.toString();
        else if (opt === 'type') {
          const type = val.toString().toLowerCase();
          if (type === 'master' || type === 'replica' || type === 'slave' || type === 'pubsub') noneMatch = true;
          else if (type !== 'normal') return error(`ERR Unknown client type '${val.toString()}'`);
        } else if (opt === 'user') {
          if (val.toString() !== 'default') return error(`ERR No such user '${val.toString()}'`);
        } else if (opt === 'skipme') {
          const v = val.toString().toLowerCase();
          if (v === 'yes') skipMe = true;
          else if (v === 'no') skipMe = false;
          else return error(SYNTAX_ERROR);
        } else if (opt === 'maxage') {
          const n = parseInt64(val);
          if (n === undefined || n < 0) return error(NOT_INTEGER_ERROR);
          maxAgeSec = n;
        } else return error(SYNTAX_ERROR);
      }
      if (noneMatch) return integer(0);
      const now = ctx.server.now();
      const victims: ClientHandle[] = [];
      for (const h of node.clients()) {
        if (id !== undefined && h.state.id !== id) continue;
        if (addr !== undefined && h.state.addr !== addr) continue;
        if (laddr !== undefined && h.state.laddr !== laddr) continue;
        if (maxAgeSec !== undefined && now - h.state.createdAtMs < maxAgeSec * 1000) continue;
        if (skipMe && h.state.id === ctx.client.id) continue;
        victims.push(h);
      }
      for (const h of victims) h.kill();
      return integer(victims.length);
    }),
    spec('client|quorum', -2, ['fast'], 'Shows or sets this connection\'s read and write quorum (R W), overriding read-quorum/write-quorum; "default" clears an override.', (ctx, args) => {
      if (args.length === 2) return array([bulkOrNil(ctx.client.readQuorum), bulkOrNil(ctx.client.writeQuorum)]);
      if (args.length !== 4) return error(`ERR wrong number of arguments for 'client|quorum' command`);
      const values: (string | undefined)[] = [];
      for (const a of [args[2] as Buffer, args[3] as Buffer]) {
        const text = a.toString();
        if (text.toLowerCase() === 'default') {
          values.push(undefined);
          continue;
        }
        const q = parseQuorum(text);
        if (q === undefined) return error(`ERR invalid quorum '${text}': expected a replica count (1-${QUORUM_NUMBER_MAX}) or ${QUORUM_WORDS.join('|')}`);
        values.push(q);
      }
      ctx.client.readQuorum = values[0];
      ctx.client.writeQuorum = values[1];
      return OK;
    }),
    spec('client|no-evict', 3, ['fast'], 'Accepted for compatibility: ringkv never evicts clients.', (_ctx, args) => {
      const v = (args[2] as Buffer).toString().toLowerCase();
      return v === 'on' || v === 'off' ? OK : error(SYNTAX_ERROR);
    }),
    spec('client|no-touch', 3, ['fast'], 'Accepted for compatibility: ringkv keeps no access times.', (_ctx, args) => {
      const v = (args[2] as Buffer).toString().toLowerCase();
      return v === 'on' || v === 'off' ? OK : error(SYNTAX_ERROR);
    }),
    spec('client|setinfo', 4, ['fast'], 'Sets information about the client library (lib-name, lib-ver).', (ctx, args) => {
      const attr = (args[2] as Buffer).toString().toLowerCase();
      const value = args[3] as Buffer;
      if (attr !== 'lib-name' && attr !== 'lib-ver') return error(`ERR Unrecognized option '${(args[2] as Buffer).toString()}'`);
      if (!validClientName(value) && value.length > 0) return error(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
      const info = { ...clientLibInfo(ctx.client) };
      if (attr === 'lib-name') info.name = value.toString('latin1');
      else info.ver = value.toString('latin1');
      libInfo.set(ctx.client, info);
      return OK;
    }),
    spec('client|help', 2, ['fast'], 'Returns helpful text about the different subcommands.', () =>
      array(
        [
          'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
          'ID', '    Return the ID of the current connection.',
          'GETNAME', '    Return the name of the current connection.',
          'SETNAME <name>', '    Assign the name <name> to the current connection.',
          'INFO', '    Return information about the current client connection.',
          'LIST [TYPE <type>] [ID <id> [<id> ...]]', '    Return information about client connections.',
          'KILL <ip:port> | KILL <option> <value> [<option> <value> ...]', '    Kill connections (options: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE).',
          'QUORUM [<R> <W>]', '    Show or set this connection\'s read/write quorum: a count, one|quorum|all|local_one|local_quorum|each_quorum, or default.',
          'NO-EVICT (ON|OFF)', '    Accepted; ringkv never evicts clients.',
          'SETINFO <lib-name|lib-ver> <value>', '    Set client library information.',
          'HELP', '    Print this help.',
        ].map(simple),
      ),
    ),
  ];

  return [
    spec('ping', -1, ['fast'], 'Returns the server\'s liveliness response.', (_ctx, args) => {
      if (args.length > 2) return error(`ERR wrong number of arguments for 'ping' command`);
      return args.length === 2 ? bulk(args[1] as Buffer) : simple('PONG');
    }),
    spec('echo', 2, ['fast'], 'Returns the given string.', (_ctx, args) => bulk(args[1] as Buffer)),
    spec('quit', -1, ['fast', 'noauth'], 'Closes the connection.', (ctx) => {
      ctx.client.closeAfterReply = true;
      return OK;
    }),
    spec('hello', -1, ['fast', 'noauth'], 'Handshakes with the server (protocol version, AUTH, SETNAME).', (ctx, args) => {
      let proto: 2 | 3 | undefined;
      if (args.length >= 2) {
        const v = parseInt64(args[1]);
        if (v === undefined) return error('ERR Protocol version is not an integer or out of range');
        if (v < 2 || v > 3) return error('NOPROTO unsupported protocol version');
        proto = v === 2 ? 2 : 3;
      }
      let auth: [Buffer, Buffer] | undefined;
      let setname: Buffer | undefined;
      for (let i = 2; i < args.length; i++) {
        const opt = (args[i] as Buffer).toString();
        const remaining = args.length - i - 1;
        if (opt.toLowerCase() === 'auth' && remaining >= 2) {
          auth = [args[i + 1] as Buffer, args[i + 2] as Buffer];
          i += 2;
        } else if (opt.toLowerCase() === 'setname' && remaining >= 1) {
          setname = args[i + 1] as Buffer;
          i += 1;
        } else {
          return error(`ERR Syntax error in HELLO option '${opt}'`);
        }
      }
      if (auth !== undefined) {
        const failed = authenticate(ctx, auth[0], auth[1]);
        if (failed !== undefined) return failed;
      }
      if (!ctx.client.authenticated && requirepass() !== '') return error(HELLO_NOAUTH_ERROR);
      if (setname !== undefined) {
        if (!validClientName(setname)) return error(BAD_CLIENT_NAME_ERROR);
        ctx.client.name = setname.toString('latin1');
      }
      if (proto !== undefined) ctx.client.protocol = proto;
      return helloReply(ctx);
    }, { since: '6.0.0' }),
    spec('auth', -2, ['fast', 'noauth'], 'Authenticates the connection.', (ctx, args) => {
      if (args.length > 3) return error(SYNTAX_ERROR);
      if (requirepass() === '') {
        if (args.length === 2) return error(AUTH_NO_PASSWORD_ERROR);
      }
      const failed = authenticate(ctx, args.length === 3 ? args[1] : undefined, args[args.length - 1] as Buffer);
      return failed ?? OK;
    }),
    spec('select', 2, ['fast'], 'Changes the selected database (ringkv has database 0 only).', (_ctx, args) => {
      const n = parseInt64(args[1]);
      if (n === undefined) return error(NOT_INTEGER_ERROR);
      return n === 0 ? OK : error('ERR DB index is out of range');
    }),
    spec('reset', 1, ['fast', 'noauth'], 'Resets the connection.', (ctx) => {
      ctx.client.name = '';
      ctx.client.protocol = 2;
      ctx.client.readQuorum = undefined;
      ctx.client.writeQuorum = undefined;
      ctx.client.authenticated = requirepass() === '';
      libInfo.delete(ctx.client);
      return simple('RESET');
    }, { since: '6.2.0' }),
    spec('client', -2, [], 'A container for client connection commands.', undefined, { subcommands: clientSubs }),
  ];
}
