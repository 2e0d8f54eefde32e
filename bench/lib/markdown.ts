/** Markdown output for bench/results/*.md. Pure string building. */
import assert from 'node:assert/strict';

export type Align = 'left' | 'right' | 'center';

/** Escapes a cell so a '|' or newline in it cannot break the table. */
function cell(value: string | number): string {
  return String(value).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A GitHub-flavoured markdown table. Every row must have as many cells as there are headers.
 * Alignment defaults to left for the first column and right for the rest (numbers).
 */
export function markdownTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  align?: readonly Align[],
): string {
  assert.ok(headers.length > 0, 'table without headers');
  const aligns = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'left' : 'right'));
  const sep = aligns.map((a) => (a === 'left' ? ':---' : a === 'right' ? '---:' : ':---:'));
  const lines = [`| ${headers.map(cell).join(' | ')} |`, `| ${sep.join(' | ')} |`];
  for (const row of rows) {
    assert.equal(row.length, headers.length, `row has ${row.length} cells, want ${headers.length}`);
    lines.push(`| ${row.map(cell).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

/** A fenced code block, e.g. for the command that produced the results. */
export function codeBlock(text: string, lang = ''): string {
  return '```' + lang + '\n' + text.replace(/\n$/, '') + '\n```\n';
}
