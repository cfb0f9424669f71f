// A tiny seeded pseudo-random generator (mulberry32) for deterministic simulation: the simulated disk's crash
// choices, model-based tests and any other test that must replay from a printed seed. It is not
// cryptographic; it is small, fast and identical on every platform because it only uses 32-bit integer maths.
// Pure: callable from any thread; one instance must not be shared between threads.
import { assert } from './assert.js';

export interface Prng {
  /** The next value, uniform over [0, 2^32). */
  nextU32(): number;
  /** The next value, uniform over [0, 1). */
  nextFloat(): number;
  /** The next value, uniform over the integers [0, maxExclusive); maxExclusive must be in [1, 2^32]. */
  nextInt(maxExclusive: number): number;
}

/** Creates a generator whose whole sequence is fixed by `seed` (any integer; only its low 32 bits count). */
export function createPrng(seed: number): Prng {
  assert(Number.isInteger(seed), `prng seed must be an integer, got ${seed}`);
  let state = seed >>> 0;
  const nextU32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const nextFloat = (): number => nextU32() / 4294967296;
  const nextInt = (maxExclusive: number): number => {
    assert(
      Number.isInteger(maxExclusive) && maxExclusive >= 1 && maxExclusive <= 4294967296,
      `prng bound must be an integer in [1, 2^32], got ${maxExclusive}`,
    );
    return Math.floor(nextFloat() * maxExclusive);
  };
  return { nextU32, nextFloat, nextInt };
}
