// `npm run bench [name ...]`: runs the named benchmarks (all by default) one after the other, each in its own
// process so that one's threads and memory never skew the next. Each prints its table and writes JSON under
// bench/results/. Benchmarks are never part of `npm test`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const all = [
  'storage',
  'fetch-crc',
  'ring',
  'produce',
  'stream',
  'raft-sim',
  'gossip-sim',
  'metadata-commit',
  'raft-failover',
  'partitions',
  'log-growth',
  'index-memory',
  'idle-consumers',
  'replication',
  'groups',
  'moves',
  'kafka',
  'worker-balance',
  'acceptors',
  'sync-fanout',
];
// Flags (`--name value` or `--name=value`) pass through to every benchmark; other words name benchmarks.
const argv = process.argv.slice(2);
const isFlagValue = (i: number) => i > 0 && argv[i - 1]!.startsWith('--') && !argv[i - 1]!.includes('=');
const requested = argv.filter((a, i) => !a.startsWith('--') && !isFlagValue(i));
const passThrough = argv.filter((a, i) => a.startsWith('--') || isFlagValue(i));
const names = requested.length > 0 ? requested : all;
let failed = 0;
for (const name of names) {
  const file = `bench/${name}.ts`;
  if (!existsSync(`${root}/${file}`)) {
    console.error(`no benchmark ${file}; known: ${all.join(', ')}`);
    failed++;
    continue;
  }
  console.log(`\n== ${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', file, ...passThrough], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
