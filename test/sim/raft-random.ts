// The Raft simulation's randomness: the project's seeded PRNG (src/core/prng.ts) with the few helpers the
// scenarios use (chance, pick, fork). Every choice derives from the seed, so a run replays exactly.
// Single-threaded; one instance per simulation.

import { createPrng, type Prng } from '../../src/core/prng.js';

export class SimRandom {
  private readonly prng: Prng;

  constructor(seed: number) {
    this.prng = createPrng(seed);
  }

  nextU32(): number {
    return this.prng.nextU32();
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng.nextFloat();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.prng.nextInt(n);
  }

  chance(p: number): boolean {
    return p > 0 && this.prng.nextFloat() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.prng.nextInt(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** A new generator derived from this one, so that independent streams do not shift each other. */
  fork(): SimRandom {
    return new SimRandom(this.prng.nextU32());
  }
}
