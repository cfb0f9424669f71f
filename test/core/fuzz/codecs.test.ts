// Fuzzing the gossip and Raft wire codecs (issue 16): every property of codec-properties.ts at its default
// budget (FUZZ_RUNS / FUZZ_SEED / FUZZ_PATH to scale or replay).
import { describe, test } from 'node:test';
import { codecProperties } from './codec-properties.js';
import { assertProperty } from './fuzz-support.js';

describe('gossip and Raft codecs under fuzzing', () => {
  for (const property of codecProperties) test(property.name, () => assertProperty(property));
});
