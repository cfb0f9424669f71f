// `npm test`: every test file under test/, in three lanes that run side by side so the suite fits its time on
// 2 cores. The first lane holds the multi-process cluster tests (test/cluster: kills, pauses, network splits,
// moves), whose time budgets need the CPU when they ask for it: it runs at normal priority and its output streams
// live. The second holds the other tests with real processes, sockets and fault injection (one broker, CLI, web
// console, deployments, transports): at nice 5, so the first lane wins when both want the CPU; both mostly wait
// on timers and processes. The third holds the pure tests (cores, codecs, storage over files, seeded
// simulations on virtual time), which only need CPU: at the lowest priority (nice 19), taking the cores only
// when the others leave them idle. The second and third lanes' output is printed when they end. Each lane is one
// `node --import tsx --test` over its files, sorted. Exits non-zero when any lane fails.
// Brokers started by the tests run the compiled tree (BROKER_COMPILED=1, as `npm start` does), built here first
// (incremental; a few seconds when nothing changed): a broker run from source registers tsx in each of its
// threads, and at about 2.4 s of CPU more per start, over the suite's few hundred starts, that was a third of
// its CPU on 2 cores. `BROKER_COMPILED=0 npm test` runs them from source instead. The test files themselves
// always run from source.
// Plain JavaScript, so that starting it costs no compile; runs in its own process.
import { spawn, spawnSync } from 'node:child_process';
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
const clusters = all.filter((f) => f.split('/')[1] === 'cluster');
const live = all.filter((f) => !pure.includes(f) && !clusters.includes(f));
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
        seconds: ((Date.now() - startedAt) / 1000).toFixed(1),
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
if (process.env.BROKER_COMPILED === undefined) {
  const build = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error('# the build failed: no test was run');
    process.exit(1);
  }
  process.env.BROKER_COMPILED = '1';
}
console.log(
  `# brokers run ${process.env.BROKER_COMPILED === '1' ? 'compiled (dist/)' : 'from source'}; ${clusters.length} cluster files at normal priority, ${live.length} process files at nice 5, ${pure.length} pure files at nice 19`,
);
const results = await Promise.all([
  run('clusters', clusters, 0, true),
  run('processes and faults', live, 5, false),
  run('pure tests and simulations', pure, 19, false),
]);
for (const r of results.slice(1)) {
  process.stdout.write(`\n# ---- ${r.label} (${r.files} files) ----\n`);
  process.stdout.write(r.output);
}
const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
for (const r of results) {
  console.log(
    `# lane "${r.label}": ${r.files} files, ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}, ended at ${r.seconds} s`,
  );
}
console.log(`# whole suite: ${seconds} s`);
process.exit(results.some((r) => r.code !== 0) ? 1 : 0);
