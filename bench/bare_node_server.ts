/**
 * The ceiling of the runtime: a bare Node TCP server answering RESP from a Map, with nothing
 * ringkv does (no command table, no storage engine, no versioning, no limits). bench/server.ts
 * runs redis-benchmark against it next to ringkv and redis-server, so "ringkv / bare node"
 * says how much of the gap to Redis is ringkv's own and how much is Node's.
 *
 *   node bench/bare_node_server.js --port 7000
 *
 * Speaks just enough for redis-benchmark and redis-cli --pipe: multibulk and inline requests;
 * SET, GET, PING, ECHO, INCR, CONFIG (empty answers), anything else `+OK`. Replies to all requests found in one read
 * are written with a single socket.write, as a real server batches them. Bench-only code: the
 * input is trusted (redis-benchmark), so it has no protocol-error handling to speak of.
 */
import * as net from 'node:net';

const CRLF = Buffer.from('\r\n');
const OK = Buffer.from('+OK\r\n');
const PONG = Buffer.from('+PONG\r\n');
const NIL = Buffer.from('$-1\r\n');
const EMPTY_ARRAY = Buffer.from('*0\r\n');

const data = new Map<string, Buffer>();

/** Parses complete requests from buf starting at 0; returns [requests, bytes consumed]. */
function parse(buf: Buffer): [Buffer[][], number] {
  const requests: Buffer[][] = [];
  let pos = 0;
  outer: while (pos < buf.length) {
    if (buf[pos] !== 0x2a /* '*' */) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      const line = buf.toString('latin1', pos, nl).trim();
      pos = nl + 1;
      if (line) requests.push(line.split(/\s+/).map((s) => Buffer.from(s, 'latin1')));
      continue;
    }
    const start = pos;
    let nl = buf.indexOf(13, pos);
    if (nl < 0 || nl + 1 >= buf.length) break;
    const count = Number(buf.toString('latin1', pos + 1, nl));
    pos = nl + 2;
    const args: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      nl = buf.indexOf(13, pos);
      if (nl < 0 || nl + 1 >= buf.length) {
        pos = start;
        break outer;
      }
      const len = Number(buf.toString('latin1', pos + 1, nl));
      const dataStart = nl + 2;
      if (dataStart + len + 2 > buf.length) {
        pos = start;
        break outer;
      }
      args.push(buf.subarray(dataStart, dataStart + len));
      pos = dataStart + len + 2;
    }
    requests.push(args);
  }
  return [requests, pos];
}

function execute(args: Buffer[], out: Buffer[]): void {
  const name = args[0]?.toString('latin1').toLowerCase();
  switch (name) {
    case 'get': {
      const v = data.get(args[1]!.toString('latin1'));
      if (v === undefined) out.push(NIL);
      else out.push(Buffer.from(`$${v.length}\r\n`), v, CRLF);
      return;
    }
    case 'set':
      // Copy: the value is a view into the read buffer.
      data.set(args[1]!.toString('latin1'), Buffer.from(args[2]!));
      out.push(OK);
      return;
    case 'ping':
      out.push(PONG);
      return;
    case 'echo': // redis-cli --pipe ends with an ECHO to find the last reply
      out.push(Buffer.from(`$${args[1]!.length}\r\n`), args[1]!, CRLF);
      return;
    case 'incr': {
      const key = args[1]!.toString('latin1');
      const n = Number(data.get(key)?.toString() ?? '0') + 1;
      data.set(key, Buffer.from(String(n)));
      out.push(Buffer.from(`:${n}\r\n`));
      return;
    }
    case 'config':
      out.push(EMPTY_ARRAY);
      return;
    default:
      out.push(OK);
  }
}

function main(): void {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      const [requests, consumed] = parse(buf);
      pending = consumed < buf.length ? Buffer.from(buf.subarray(consumed)) : Buffer.alloc(0);
      if (requests.length === 0) return;
      const out: Buffer[] = [];
      for (const r of requests) execute(r, out);
      socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, '127.0.0.1', () => {
    const addr = server.address() as net.AddressInfo;
    process.stdout.write(`Ready to accept connections tcp port=${addr.port}\n`);
  });
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
