// Fuzzing the record-batch decoder and segment recovery on the simulated disk (issue 16): every property of
// log-properties.ts at its default budget (FUZZ_RUNS / FUZZ_SEED / FUZZ_PATH to scale or replay).
import { describe, test } from 'node:test';
import { assertProperty } from './fuzz-support.js';
import { logProperties } from './log-properties.js';

describe('record-batch decoder and segment recovery under fuzzing', () => {
  for (const property of logProperties) test(property.name, () => assertProperty(property));
});
