// Benchmark output: rows as a Markdown table (for closing notes and the README) next to the JSON file.
// Callable from any benchmark process.
import { writeFileSync } from 'node:fs';

export function markdownTable(rows: readonly Record<string, unknown>[]): string {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const cell = (value: unknown): string => (value === undefined ? '' : String(value).replaceAll('|', '\\|'));
  const lines = [`| ${columns.join(' | ')} |`, `| ${columns.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${columns.map((c) => cell(row[c])).join(' | ')} |`);
  return lines.join('\n');
}

/** Prints the table and writes `<base>.json` and `<base>.md`. */
export function report(
  base: string,
  rows: readonly Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): void {
  const markdown = markdownTable(rows);
  console.log(`\n${markdown}\n`);
  writeFileSync(`${base}.json`, JSON.stringify({ rows, ...extra }, null, 2));
  writeFileSync(`${base}.md`, `${markdown}\n`);
  console.log(`wrote ${base}.json and ${base}.md`);
}
