/**
 * Runs a benchmark phase in its own child process so its peak RSS is attributable to it alone
 * (process.resourceUsage().maxRSS of a shared process mixes every contender). The child is a
 * compiled JS file that prints exactly one JSON line prefixed by RESULT_PREFIX on stdout;
 * anything else it prints (stderr) is passed through for progress.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Children started by runChildJson and not yet exited. */
const liveChildren = new Set<ChildProcess>();
let signalHandlersInstalled = false;

/**
 * On SIGINT/SIGTERM, kill the children this process started (by pid, through their handles)
 * before dying of the same signal, so an interrupted benchmark leaves no orphans behind.
 */
function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of liveChildren) c.kill('SIGKILL');
      process.kill(process.pid, sig);
    });
  }
}

export const RESULT_PREFIX = '@@BENCH_RESULT ';

/** Called in the child: emit the result (with the child's own peak RSS added). */
export function emitChildResult(result: Record<string, unknown>): void {
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(RESULT_PREFIX + JSON.stringify({ ...result, peakRssBytes }) + '\n');
}

/**
 * Spawns `node script ...args`, waits for it, and returns its parsed result line. Rejects if the
 * child exits non-zero or prints no result. The child is killed if the parent's promise is
 * abandoned by a timeout.
 */
export function runChildJson<T = Record<string, unknown>>(
  script: string | URL,
  args: readonly string[],
  options: { timeoutMs?: number; nodeArgs?: readonly string[] } = {},
): Promise<T & { peakRssBytes: number }> {
  const file = script instanceof URL ? script.pathname : script;
  return new Promise((resolve, reject) => {
    installSignalHandlers();
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), file, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    liveChildren.add(child);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`child ${file} timed out after ${options.timeoutMs} ms`));
          }, options.timeoutMs)
        : undefined;
    child.on('error', (err) => {
      liveChildren.delete(child);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      if (timer) clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`child ${file} ${args.join(' ')} exited with ${code ?? signal}`));
        return;
      }
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (!line) {
        reject(new Error(`child ${file} printed no result line`));
        return;
      }
      resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as T & { peakRssBytes: number });
    });
  });
}
