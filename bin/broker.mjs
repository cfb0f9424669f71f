#!/usr/bin/env node
// The `broker` executable. From a source checkout (a `src/` directory beside `bin/`) it registers tsx and runs
// the TypeScript entry directly; with BROKER_COMPILED=1, or when only the compiled tree is installed, it runs
// `dist/src/cli/main.js`. Runs on the main thread, once, before anything else.
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../src', import.meta.url)) && process.env.BROKER_COMPILED !== '1';
let cli;
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../src/cli/main.ts');
} else {
  cli = await import('../dist/src/cli/main.js');
}
await cli.runCli(process.argv.slice(2));
