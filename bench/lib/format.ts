/** Human-readable numbers for result tables. Pure. */

/** 12345.6 -> "12,346"; small numbers keep up to `digits` significant decimals. */
export function formatNumber(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'n/a' : String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n === 0) return '0';
  return Number(n.toPrecision(digits)).toString();
}

/** 0.734 -> "0.73x". */
export function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  let v = bytes;
  let unit = 0;
  while (Math.abs(v) >= 1024 && unit < BYTE_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${unit === 0 ? v.toFixed(0) : v.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** Milliseconds -> "850 ms" / "12.3 s". */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 1000 ? `${formatNumber(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
