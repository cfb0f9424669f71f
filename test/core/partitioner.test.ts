// Kafka compatibility of key placement (published murmur2 vectors) and the spread of the sticky partitioner.
// Property tests use fast-check: a failure prints its seed and path, and `{ seed, path }` replays it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { murmur2, partitionForKey, StickyPartitioner, toPositive } from '../../src/core/partitioner.js';

const utf8 = new TextEncoder();

// Kafka's UtilsTest.testMurmur2, plus values other Kafka clients generated with the Java client
// (kafkajs's JavaCompatiblePartitioner table, Akka's Murmur2Spec, a PHP client's vectors).
const javaVectors: ReadonlyArray<readonly [string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
  ['', 275646681],
  ['a', -1563381124],
  ['ab', 316155434],
  ['hello', 2132663229],
  ['123456789', -1822237082],
  ['0', 971027396],
  ['1', -1993445489],
  ['12', 126087238],
  ['123', -267702483],
  ['1234', -1614185708],
  ['12345', -1188365604],
  ['128', -326012175],
  ['2187', -1508407203],
  ['16384', -325739742],
  ['78125', -1654490814],
  ['279936', 1462227128],
  ['823543', -2014198330],
  ['2097152', 607668903],
  ['4782969', -1182699775],
  ['10000000', -1830336757],
  ['19487171', -1603849305],
  ['35831808', -857013643],
  ['62748517', -1167431028],
  ['105413504', -381294639],
  ['170859375', -1658323481],
  ['100:48069', 1009543857],
];

// Partitions over 12 as the Java producer places these keys (a published cross-check table).
const javaPartitionsOf12: ReadonlyArray<readonly [string, number]> = [
  ['1039-36302-36840-2-9f138052', 4],
  ['1182-07205-22440-2-0ad4507d', 9],
  ['1388-20023-36900-2-c9985f66', 0],
  ['1010-98110-23700-2-295bfb4c', 10],
  ['1175-03505-36600-2-126dd9ca', 1],
  ['1137-01302-23820-2-d560d49a', 4],
  ['1011-98208-36480-2-9eef750a', 8],
  ['599999', 3],
  ['233-75504-36900-2-609151bd', 10],
];

/** An independent model of Kafka's murmur2 in BigInt arithmetic modulo 2^32 (slow, obviously correct). */
function murmur2Model(data: Uint8Array): number {
  const mask = 0xffffffffn;
  const m = 0x5bd1e995n;
  const mul = (a: bigint, b: bigint): bigint => (a * b) & mask;
  let h = (0x9747b28cn ^ BigInt(data.length)) & mask;
  const whole = data.length - (data.length % 4);
  for (let i = 0; i < whole; i += 4) {
    let k =
      BigInt(data[i]!) |
      (BigInt(data[i + 1]!) << 8n) |
      (BigInt(data[i + 2]!) << 16n) |
      (BigInt(data[i + 3]!) << 24n);
    k = mul(k, m);
    k ^= k >> 24n;
    k = mul(k, m);
    h = mul(h, m) ^ k;
  }
  const rest = data.length % 4;
  if (rest >= 3) h ^= BigInt(data[whole + 2]!) << 16n;
  if (rest >= 2) h ^= BigInt(data[whole + 1]!) << 8n;
  if (rest >= 1) h = mul(h ^ BigInt(data[whole]!), m);
  h ^= h >> 13n;
  h = mul(h, m);
  h ^= h >> 15n;
  return Number(BigInt.asIntN(32, h));
}

describe('murmur2', () => {
  test("hashes every published vector exactly as Kafka's Utils.murmur2 does", () => {
    for (const [key, expected] of javaVectors) {
      assert.equal(murmur2(utf8.encode(key)), expected, `murmur2(${JSON.stringify(key)})`);
    }
  });

  test('agrees with an independent BigInt model on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        assert.equal(murmur2(bytes), murmur2Model(bytes));
      }),
      { numRuns: 500 },
    );
  });

  test('hashes a slice of a larger buffer in place like a copy of that slice', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 80 }).chain((buf) =>
          fc.tuple(
            fc.constant(buf),
            fc.nat(buf.length).chain((off) => fc.tuple(fc.constant(off), fc.nat(buf.length - off))),
          ),
        ),
        ([buf, [off, len]]) => {
          assert.equal(murmur2(buf, off, len), murmur2(buf.slice(off, off + len)));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a multi-byte UTF-8 key hashes its encoded bytes', () => {
    const key = 'clé-ü-🚀';
    assert.equal(murmur2(utf8.encode(key)), murmur2Model(utf8.encode(key)));
    assert.notEqual(utf8.encode(key).length, key.length);
  });

  test('refuses a range outside the buffer', () => {
    assert.throws(() => murmur2(new Uint8Array(4), 2, 3), /exceeds/);
    assert.throws(() => murmur2(new Uint8Array(4), -1, 1), /bad range/);
  });
});

describe('partitionForKey', () => {
  test('toPositive clears the sign bit like Kafka (INT_MIN -> 0, -1 -> 2^31-1)', () => {
    assert.equal(toPositive(-2147483648), 0);
    assert.equal(toPositive(-1), 2147483647);
    assert.equal(toPositive(0), 0);
    assert.equal(toPositive(2147483647), 2147483647);
    assert.equal(toPositive(-790332482), 1357151166);
  });

  test('places keys on the partitions the Java producer picks', () => {
    for (const [key, expected] of javaPartitionsOf12) {
      assert.equal(partitionForKey(utf8.encode(key), 12), expected, key);
    }
    assert.equal(partitionForKey(utf8.encode('foobar'), 50), 16);
    assert.equal(partitionForKey(utf8.encode('foobar'), 10), 6);
  });

  test('is in range, deterministic, and 0 for a single partition', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 10_000 }), (key, n) => {
        const p = partitionForKey(key, n);
        assert.ok(p >= 0 && p < n);
        assert.equal(partitionForKey(key, n), p);
        assert.equal(partitionForKey(key, 1), 0);
      }),
      { numRuns: 300 },
    );
  });

  test('asserts on a non-positive partition count', () => {
    assert.throws(() => partitionForKey(utf8.encode('k'), 0), /numPartitions/);
  });
});

describe('StickyPartitioner', () => {
  test('a batch smaller than the limit goes to one partition; the next batch to the next partition', () => {
    const sticky = new StickyPartitioner(3, 100, 1);
    const first = Array.from({ length: 10 }, () => sticky.partition());
    assert.deepEqual(new Set(first), new Set([1]));
    sticky.nextBatch();
    assert.equal(sticky.partition(), 2);
    sticky.nextBatch();
    assert.equal(sticky.partition(), 0);
  });

  test('moves on after stickyRecordsMax records even within one batch', () => {
    const sticky = new StickyPartitioner(4, 3);
    const placed = Array.from({ length: 8 }, () => sticky.partition());
    assert.deepEqual(placed, [0, 0, 0, 1, 1, 1, 2, 2]);
  });

  test('an empty batch does not skip a partition', () => {
    const sticky = new StickyPartitioner(3, 10);
    sticky.nextBatch();
    sticky.nextBatch();
    assert.equal(sticky.partition(), 0);
  });

  test('over random batches, partitions are visited round-robin and get equal turns (within one)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 120 }), { maxLength: 200 }),
        (numPartitions, stickyMax, batchSizes) => {
          const sticky = new StickyPartitioner(numPartitions, stickyMax);
          const turns = new Array<number>(numPartitions).fill(0);
          let previous = -1;
          for (const size of batchSizes) {
            const touched = new Set<number>();
            for (let i = 0; i < size; i++) {
              const p = sticky.partition();
              touched.add(p);
              if (p !== previous) {
                if (previous !== -1) assert.equal(p, (previous + 1) % numPartitions, 'round-robin order');
                turns[p]! += 1;
                previous = p;
              }
            }
            sticky.nextBatch();
            // A batch spans as few partitions as the limit allows.
            assert.ok(touched.size <= Math.min(numPartitions, Math.ceil(size / stickyMax) + 1));
          }
          assert.ok(Math.max(...turns) - Math.min(...turns) <= 1, `turns ${turns.join(',')}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('resize keeps the current partition when it still exists and wraps when it does not', () => {
    const sticky = new StickyPartitioner(4, 1, 3);
    sticky.resize(8);
    assert.equal(sticky.partition(), 3);
    assert.equal(sticky.partition(), 4);
    sticky.resize(2);
    assert.equal(sticky.peek(), 0);
  });

  test('asserts on bad construction', () => {
    assert.throws(() => new StickyPartitioner(0, 1), /numPartitions/);
    assert.throws(() => new StickyPartitioner(2, 0), /stickyRecordsMax/);
    assert.throws(() => new StickyPartitioner(2, 1, 2), /startPartition/);
  });

  test('keyless records go only to the eligible partitions (those led here), round-robin among them', () => {
    const sticky = new StickyPartitioner(6, 2, 0);
    sticky.setEligible([1, 4, 5]);
    assert.equal(sticky.peek(), 1, 'an ineligible current partition moves to the first eligible one');
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) seen.push(sticky.partition());
    assert.deepEqual(seen, [1, 1, 4, 4, 5, 5, 1, 1, 4, 4, 5, 5]);
    sticky.setEligible([]);
    const all = new Set<number>();
    for (let i = 0; i < 12; i++) all.add(sticky.partition());
    assert.equal(all.size, 6, 'an empty list lifts the restriction');
    assert.throws(() => sticky.setEligible([2, 1]), /sorted/);
    assert.throws(() => sticky.setEligible([6]), /out of range/);
  });
});
