// Fuzzing the record-batch decoder and segment recovery on the simulated disk (issue 16): every property of
// log-properties.ts at its default budget (FUZZ_RUNS / FUZZ_SEED / FUZZ_PATH to scale or replay).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchField, validateBatch } from '../../../src/core/log/record-batch.js';
import { crc32 } from '../../../src/storage/crc.js';
import { encodeBatches } from '../../storage/helpers.js';
import { assertProperty } from './fuzz-support.js';
import { buildLog, checkRecovered, type Damage, damage, logProperties } from './log-properties.js';

describe('record-batch decoder and segment recovery under fuzzing', () => {
  for (const property of logProperties) test(property.name, () => assertProperty(property));
});

describe('regressions found by the log fuzzing', () => {
  test('a crashed log (seed 2147483626) with byte 0 of its first file and one more byte flipped recovers', () => {
    // tools/fuzz.ts, seed 135236353: the header-only walk of a trusted segment read a flipped timestamp as an
    // unsafe integer and the time index's assertion stopped PartitionLog.open.
    const { disk, records } = buildLog(2147483626, false);
    const damages: Damage[] = [
      { kind: 'flip', file: 343535265, at: 1091631602, width: 1, xor: 1 },
      { kind: 'flip', file: 0, at: 0, width: 1, xor: 1 },
    ];
    for (const what of damages) damage(disk, what);
    checkRecovered(disk, records);
  });

  test('a batch whose maxTimestamp high byte is flipped is corrupt even to a header-only check', () => {
    const bytes = encodeBatches([[{ timestampMs: 1000, key: null, value: null, headers: [] }]]);
    bytes[BatchField.maxTimestamp] = 0x40;
    const check = validateBatch(bytes, 0, bytes.length, crc32, { batchBytesMax: 1024, deep: false });
    assert.deepEqual(check, { kind: 'corrupt', reason: 'timestamp out of range' });
  });
});
