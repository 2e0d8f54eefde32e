import t from 'tap';
import { formatLogLine, Logger } from '../../src/server/logger.js';
import { Config } from '../../src/config/config.js';
import { RingkvServer } from '../../src/server/server.js';
import { standInKeyspace } from './server_harness.js';

t.test('log lines: ISO time, level, message on one line', async (t) => {
  t.equal(formatLogLine(Date.UTC(2026, 0, 2, 3, 4, 5, 6), 'warn', 'a\r\nb'), '2026-01-02T03:04:05.006Z warn a b\n');
});

t.test('levels filter, and CONFIG SET loglevel applies at once', async (t) => {
  const lines: string[] = [];
  const logger = new Logger({ level: 'info', file: '', now: () => 0, sink: (l) => lines.push(l) });
  logger.log('debug', 'hidden');
  logger.log('info', 'shown');
  logger.log('error', 'bad');
  t.same(lines, ['1970-01-01T00:00:00.000Z info shown\n', '1970-01-01T00:00:00.000Z error bad\n']);
  const config = Config.fromOverrides([['port', '0'], ['bind', '127.0.0.1']]);
  const server = new RingkvServer({ config, keyspace: standInKeyspace(), log: logger.log, logger });
  t.teardown(() => server.close());
  t.equal(config.set([['loglevel', 'error']]), undefined);
  logger.log('warn', 'now hidden');
  t.equal(lines.length, 2);
  t.equal(config.set([['loglevel', 'debug']]), undefined);
  logger.log('debug', 'now shown');
  t.equal(lines.at(-1), '1970-01-01T00:00:00.000Z debug now shown\n');
});
