/**
 * A tiny dependency-free SVG plot writer for bench/results: grouped bar charts (one group per
 * category, one bar per series, e.g. ops/s of ringkv vs LevelDB per workload) and line charts
 * (x numeric, one line per series, e.g. latency over time). Pure string building; the caller
 * writes the file. Values must be finite and >= 0 for bars; lines accept any finite values.
 *
 *   +------------------------------------------+
 *   | title                                    |
 *   |  y ^   legend                            |
 *   |    |  ## ##     ## ##                    |
 *   |    +--------------------> categories     |
 *   +------------------------------------------+
 */
import assert from 'node:assert/strict';

export interface BarChartSpec {
  title: string;
  /** One label per group along the x axis. */
  categories: readonly string[];
  /** Each series has one value per category (NaN = missing bar). */
  series: ReadonlyArray<{ name: string; values: readonly number[] }>;
  yLabel?: string;
  /** Logarithmic y axis (base 10); useful when workloads differ by orders of magnitude. */
  logScale?: boolean;
  width?: number;
  height?: number;
  /** Optional subtitle line (e.g. "higher is better"). */
  subtitle?: string;
}

export interface LineChartSpec {
  title: string;
  series: ReadonlyArray<{ name: string; points: ReadonlyArray<readonly [number, number]> }>;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  subtitle?: string;
  /** Draw a horizontal reference line (e.g. a target) at this y. */
  referenceY?: { value: number; label: string };
}

const DEFAULT_WIDTH_PX = 860;
const DEFAULT_HEIGHT_PX = 420;
const MARGIN = { top: 56, right: 24, bottom: 84, left: 78 } as const;
const TICK_COUNT = 5;
/** Colour-blind-safe palette (Okabe-Ito). */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function color(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Short tick label: 1200000 -> "1.2M". */
export function shortNumber(n: number): string {
  const a = Math.abs(n);
  const fmt = (v: number, s: string) => `${Number(v.toPrecision(3))}${s}`;
  if (a >= 1e9) return fmt(n / 1e9, 'G');
  if (a >= 1e6) return fmt(n / 1e6, 'M');
  if (a >= 1e3) return fmt(n / 1e3, 'k');
  if (a === 0) return '0';
  return String(Number(n.toPrecision(3)));
}

/** "Nice" linear ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = TICK_COUNT): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const rawStep = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(rawStep));
  const norm = rawStep / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const start = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function header(width: number, height: number, title: string, subtitle?: string): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  if (subtitle) out.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);
  return out;
}

function legend(names: readonly string[], x: number, y: number): string[] {
  const out: string[] = [];
  let cx = x;
  names.forEach((name, i) => {
    out.push(`<rect x="${cx}" y="${y - 10}" width="12" height="12" fill="${color(i)}"/>`);
    out.push(`<text x="${cx + 16}" y="${y}">${esc(name)}</text>`);
    cx += 28 + name.length * 7;
  });
  return out;
}

function yAxis(
  ticks: readonly number[],
  toY: (v: number) => number,
  left: number,
  right: number,
  label?: string,
  plotMidY?: number,
): string[] {
  const out: string[] = [];
  for (const t of ticks) {
    const y = toY(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${shortNumber(t)}</text>`);
  }
  if (label && plotMidY !== undefined) {
    out.push(`<text transform="translate(16 ${plotMidY}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`);
  }
  return out;
}

export function barChartSvg(spec: BarChartSpec): string {
  const width = spec.width ?? DEFAULT_WIDTH_PX;
  const height = spec.height ?? DEFAULT_HEIGHT_PX;
  assert.ok(spec.categories.length > 0, 'bar chart without categories');
  assert.ok(spec.series.length > 0, 'bar chart without series');
  for (const s of spec.series) {
    assert.equal(s.values.length, spec.categories.length, `series ${s.name}: one value per category`);
  }
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const values = spec.series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
  const log = spec.logScale === true;
  let toY: (v: number) => number;
  let ticks: number[];
  if (log) {
    const positive = values.filter((v) => v > 0);
    const lo = Math.floor(Math.log10(positive.length ? Math.min(...positive) : 1));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(positive.length ? Math.max(...positive) : 10)));
    ticks = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    toY = (v) => bottom - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (bottom - top);
  } else {
    ticks = niceTicks(0, values.length ? Math.max(...values) : 1);
    const hi = ticks[ticks.length - 1]!;
    toY = (v) => bottom - (v / hi) * (bottom - top);
  }
  const out = header(width, height, spec.title, spec.subtitle);
  out.push(...yAxis(ticks, toY, left, right, spec.yLabel, (top + bottom) / 2));
  const groupW = (right - left) / spec.categories.length;
  const barW = (groupW * 0.8) / spec.series.length;
  spec.categories.forEach((cat, ci) => {
    const gx = left + ci * groupW + groupW * 0.1;
    spec.series.forEach((s, si) => {
      const v = s.values[ci]!;
      if (!Number.isFinite(v)) return;
      const y = toY(v);
      const x = gx + si * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${Math.max(0, bottom - y).toFixed(1)}" fill="${color(si)}"><title>${esc(`${s.name} ${cat}: ${v}`)}</title></rect>`,
      );
      if (barW >= 26) {
        out.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="10">${shortNumber(v)}</text>`);
      }
    });
    const lx = left + ci * groupW + groupW / 2;
    out.push(`<text transform="translate(${lx.toFixed(1)} ${bottom + 14}) rotate(20)" text-anchor="start" font-size="11">${esc(cat)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
  out.push(...legend(spec.series.map((s) => s.name), left, height - 12));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function lineChartSvg(spec: LineChartSpec): string {
  const width = spec.width ?? DEFAULT_WIDTH_PX;
  const height = spec.height ?? DEFAULT_HEIGHT_PX;
  assert.ok(spec.series.length > 0, 'line chart without series');
  const pts = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  assert.ok(pts.length > 0, 'line chart without points');
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  if (spec.referenceY) ys.push(spec.referenceY.value);
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  const yTicks = niceTicks(Math.min(0, ...ys), Math.max(...ys));
  const [x0, x1] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const [y0, y1] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const toX = (v: number) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left);
  const toY = (v: number) => bottom - ((v - y0) / (y1 - y0 || 1)) * (bottom - top);
  const out = header(width, height, spec.title, spec.subtitle);
  out.push(...yAxis(yTicks, toY, left, right, spec.yLabel, (top + bottom) / 2));
  for (const t of xTicks) {
    out.push(`<text x="${toX(t).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${shortNumber(t)}</text>`);
  }
  if (spec.xLabel) out.push(`<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
  if (spec.referenceY) {
    const y = toY(spec.referenceY.value).toFixed(1);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#c00" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${right - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#c00">${esc(spec.referenceY.label)}</text>`);
  }
  spec.series.forEach((s, si) => {
    const d = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${toX(x).toFixed(1)} ${toY(y).toFixed(1)}`)
      .join(' ');
    if (d) out.push(`<path d="${d}" fill="none" stroke="${color(si)}" stroke-width="2"/>`);
  });
  out.push(...legend(spec.series.map((s) => s.name), left, height - 12));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
