// Runner for long fuzzing searches (issue 16): runs every fuzz property of test/core/fuzz/ in turn, each time
// with a fresh seed, until the time is up; prints runs per second per property and every failure with its
// seed, path and shrunk counterexample, and exits with status 1 when any property failed.
//   nice -n 19 node --import tsx tools/fuzz.ts --minutes 60 [--only <name part>] [--chunk 500]
//   node --import tsx tools/fuzz.ts --replay <name part> --seed S --path P   (one failure, shrunk again)
// A failing property is reported once and left out of the rest of the search; the others go on.
// Runs on the main thread of its own process.
import fc from 'fast-check';
import { codecProperties } from '../test/core/fuzz/codec-properties.js';
import type { FuzzProperty } from '../test/core/fuzz/fuzz-support.js';
import { checkNastyCorpus, httpProperties } from '../test/core/fuzz/http-properties.js';
import { logProperties } from '../test/core/fuzz/log-properties.js';
import { wsOpsProperties } from '../test/core/fuzz/ws-ops-properties.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function numberFlag(name: string, fallback: number): number {
  const text = flag(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number, got '${text}'`);
    process.exit(2);
  }
  return value;
}

const only = flag('only') ?? flag('replay');
const all: readonly FuzzProperty[] = [
  ...httpProperties,
  ...wsOpsProperties,
  ...logProperties,
  ...codecProperties,
];
const chosen = all.filter((p) => only === undefined || p.name.includes(only));
if (chosen.length === 0) {
  console.error(
    `no fuzz property matches '${only}'; the properties are:\n${all.map((p) => `  ${p.name}`).join('\n')}`,
  );
  process.exit(2);
}

function report(property: FuzzProperty, details: fc.RunDetails<unknown>): void {
  console.log(`\nFAILED: ${property.name}`);
  console.log(`  seed ${details.seed}, path ${details.counterexamplePath ?? '(none)'}`);
  console.log((fc.defaultReportMessage(details) ?? '').replace(/^/gm, '  '));
  const error = details.errorInstance;
  if (error !== null)
    console.log(`  error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  console.log(
    `  replay: node --import tsx tools/fuzz.ts --replay '${property.name}' --seed ${details.seed} --path '${details.counterexamplePath ?? ''}'`,
  );
}

if (flag('replay') !== undefined) {
  const seed = Number(flag('seed'));
  if (!Number.isSafeInteger(seed)) {
    console.error('--replay needs --seed S (and --path P), as a failure prints them');
    process.exit(2);
  }
  const path = flag('path');
  let failed = false;
  for (const property of chosen) {
    const details = property.check({
      seed,
      ...(path !== undefined && path !== '' ? { path } : {}),
      numRuns: 1,
    });
    if (details.failed) {
      report(property, details);
      failed = true;
    } else console.log(`passes: ${property.name}`);
  }
  process.exit(failed ? 1 : 0);
}

const minutes = numberFlag('minutes', 1);
const chunk = Math.floor(numberFlag('chunk', 300));
const deadline = performance.now() + minutes * 60_000;
const stats = new Map<FuzzProperty, { runs: number; ms: number }>(chosen.map((p) => [p, { runs: 0, ms: 0 }]));
const failed = new Set<FuzzProperty>();

console.log(`fuzzing ${chosen.length} properties for ${minutes} min, ${chunk} runs per seed`);
if (only === undefined) {
  const started = performance.now();
  checkNastyCorpus();
  console.log(`nasty JSON corpus: ok (${Math.round(performance.now() - started)} ms)`);
}

let lastPrint = performance.now();
function printTable(): void {
  console.log(`\n${'runs'.padStart(10)} ${'runs/s'.padStart(8)}  property`);
  for (const [property, s] of stats) {
    const rate = s.ms > 0 ? ((s.runs * 1000) / s.ms).toFixed(0) : '-';
    const mark = failed.has(property) ? '  (FAILED)' : '';
    console.log(`${String(s.runs).padStart(10)} ${rate.padStart(8)}  ${property.name}${mark}`);
  }
}

search: while (performance.now() < deadline) {
  for (const property of chosen) {
    if (failed.has(property)) continue;
    if (performance.now() >= deadline) break search;
    const seed = (Math.random() * 0x7fffffff) | 0;
    const started = performance.now();
    const details = property.check({
      seed,
      numRuns: chunk,
      // Stop a chunk at the deadline rather than overrun it; what did not run is not a failure.
      interruptAfterTimeLimit: Math.max(1, deadline - started),
      markInterruptAsFailure: false,
    });
    const s = stats.get(property)!;
    s.runs += details.numRuns;
    s.ms += performance.now() - started;
    if (details.failed) {
      failed.add(property);
      report(property, details);
    }
  }
  if (performance.now() - lastPrint > 30_000) {
    lastPrint = performance.now();
    printTable();
  }
  if (failed.size === chosen.length) break;
}
printTable();
console.log(
  failed.size === 0 ? '\nno failure' : `\n${failed.size} propert${failed.size === 1 ? 'y' : 'ies'} failed`,
);
process.exit(failed.size === 0 ? 0 : 1);
