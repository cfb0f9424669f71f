// Development entry of the piscina pool that parses large produce bodies: registers tsx in the pool thread,
// then loads the TypeScript task on first use (no top-level await, which piscina task modules must avoid).
// Production points piscina at the compiled dist/src/http/produce-offload.js instead.
// Runs on: a piscina worker thread.
import { register } from 'tsx/esm/api';

register();
let task = null;

export default async function run(input) {
  task ??= (await import(new URL('../src/http/produce-offload.ts', import.meta.url).href)).default;
  return task(input);
}
