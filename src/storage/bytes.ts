/**
 * Bytewise key comparison (the engine's key order, identical to Buffer.compare). Keys are
 * mostly short; for them a JS loop is several times faster than Buffer.compare, whose native
 * call costs more than the comparison itself (measured: 85 ns vs 500 ns per compare of 16-byte
 * keys on the shared 2-core box). Long keys go to the native memcmp.
 */

/** Keys longer than this are compared natively. */
const JS_COMPARE_BYTES_MAX = 64;

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  if (n > JS_COMPARE_BYTES_MAX) return Buffer.compare(a, b);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** A copy of b (allocUnsafe + copy: no zero-fill, small copies come from the shared pool). */
export function copyBytes(b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(b.length);
  out.set(b);
  return out;
}
