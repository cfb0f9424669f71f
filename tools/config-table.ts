// Prints the README's configuration table, generated from the configuration schema. With `--write` it
// replaces the table between the `<!-- config-table:start -->` and `<!-- config-table:end -->` markers of
// README.md in place, so a schema change is followed by one command and reviewed as a diff.
// Usage: node --import tsx tools/config-table.ts [--write]
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigTable } from '../src/config/config.js';

const startMarker = '<!-- config-table:start -->';
const endMarker = '<!-- config-table:end -->';
const table = renderConfigTable();

if (!process.argv.includes('--write')) {
  console.log(table);
} else {
  const readmeUrl = new URL('../README.md', import.meta.url);
  const readme = readFileSync(readmeUrl, 'utf8');
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start === -1 || end === -1 || end < start) {
    console.error(`README.md needs ${startMarker} and ${endMarker}, in that order`);
    process.exit(1);
  }
  const updated = `${readme.slice(0, start + startMarker.length)}\n${table}\n${readme.slice(end)}`;
  writeFileSync(readmeUrl, updated);
  console.log(updated === readme ? 'README.md table already up to date' : 'README.md table rewritten');
}
