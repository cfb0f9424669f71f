// Seeded fast-check runs for the consumer-group tests. Every run prints its seed; a failing run prints the seed
// and the shrink path, and `FC_SEED=<seed> FC_PATH=<path>` replays exactly that case.
import type { Parameters } from 'fast-check';

export function fcOptions<T>(numRuns: number): Parameters<T> {
  const seed =
    process.env.FC_SEED === undefined
      ? Date.now() ^ (Math.random() * 0x100000000)
      : Number(process.env.FC_SEED);
  const path = process.env.FC_PATH;
  return path === undefined ? { seed, numRuns } : { seed, path, numRuns, endOnFailure: true };
}
