// `npm test`: every test file under test/, in two lanes that run side by side so the suite fits its time on
// 2 cores. The first lane holds what runs real brokers, clusters, sockets and fault injection, whose time
// budgets need the CPU when they ask for it: it runs at normal priority and its output streams live. The second
// holds the pure tests (cores, codecs, storage over files, seeded simulations on virtual time), which only need
// CPU: it runs at the lowest priority (nice 19), so it takes the cores only when the first lane leaves them
// idle (mostly waiting on timers and processes), and its output is printed when it ends. Each lane is one
// `node --import tsx --test` over its files, sorted. Exits non-zero when either lane fails.
// Plain JavaScript, so that starting it costs no compile; runs in its own process.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const pureDirs = new Set([
  'config',
  'core',
  'gossip',
  'groups',
  'messages',
  'metadata',
  'raft',
  'replication',
  'ring',
  'sim',
  'storage',
]);

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const all = testFiles('test').sort();
const pure = all.filter((f) => pureDirs.has(f.split('/')[1]));
const live = all.filter((f) => !pure.includes(f));
const children = new Set();

function run(label, files, niceness, stream) {
  const args = ['--import', 'tsx', '--test', ...files];
  const [command, commandArgs] =
    niceness > 0 ? ['nice', ['-n', String(niceness), process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const chunks = [];
  const take = (target) => (chunk) => {
    if (stream) target.write(chunk);
    else chunks.push(chunk);
  };
  child.stdout.on('data', take(process.stdout));
  child.stderr.on('data', take(process.stderr));
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({
        label,
        code: code ?? (signal === null ? 1 : 128),
        output: Buffer.concat(chunks),
        files: files.length,
      });
    });
  });
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(130);
  });
}

const startedAt = Date.now();
console.log(`# ${live.length} files at normal priority, ${pure.length} pure files beside them at nice 19`);
const [liveResult, pureResult] = await Promise.all([
  run('processes, clusters and faults', live, 0, true),
  run('pure tests and simulations', pure, 19, false),
]);
process.stdout.write(`\n# ---- ${pureResult.label} (${pureResult.files} files) ----\n`);
process.stdout.write(pureResult.output);
const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
for (const r of [liveResult, pureResult]) {
  console.log(
    `# lane "${r.label}": ${r.files} files, ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}`,
  );
}
console.log(`# whole suite: ${seconds} s`);
process.exit(liveResult.code !== 0 || pureResult.code !== 0 ? 1 : 0);
