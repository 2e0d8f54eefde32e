// tap's t.throws() takes a pattern, not a predicate: this checks a thrown (or rejected) error's code.
import type { Test } from 'tap';
import { isClusterError, type ClusterErrorCode } from '../../src/cluster/errors.js';

type Asserter = Pick<Test, 'ok' | 'fail'>;

export function throwsCode(t: Asserter, fn: () => unknown, code: ClusterErrorCode, msg?: string): void {
  try {
    fn();
  } catch (e) {
    t.ok(isClusterError(e, code), `${msg ?? 'throws'} ${code} (got ${String(e)})`);
    return;
  }
  t.fail(`${msg ?? 'expected'} ${code}, nothing thrown`);
}

export async function rejectsCode(t: Asserter, p: Promise<unknown>, code: ClusterErrorCode, msg?: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    t.ok(isClusterError(e, code), `${msg ?? 'rejects'} ${code} (got ${(e as { code?: string }).code ?? ''} ${String(e)})`);
    return e;
  }
  t.fail(`${msg ?? 'expected'} ${code}, it resolved`);
  return undefined;
}
