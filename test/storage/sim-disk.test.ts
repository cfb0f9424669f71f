// The simulated disk's crash model, which other components' tests rely on: what was fsynced survives any
// crash untouched; what was not is lost, kept as a prefix of the writes, torn or bit-flipped; directory
// entries not fsynced may vanish; crash points stop a caller mid-operation. Plus the seeded PRNG.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPrng } from '../../src/core/prng.js';
import { SimDisk, SimulatedCrash } from '../../src/storage/sim-disk.js';
import { testSeed } from './helpers.js';

function fill(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

test('fsynced bytes survive every crash; unsynced writes survive only as a possibly torn prefix', () => {
  const seed = testSeed();
  const rng = createPrng(seed);
  let sawLoss = false;
  let sawTear = false;
  let sawFlip = false;
  for (let round = 0; round < 300; round++) {
    const disk = new SimDisk();
    disk.mkdir('/d');
    const fd = disk.open('/d/f', true);
    disk.fsyncDir('/d');
    disk.write(fd, fill(100, 1), null);
    disk.fsync(fd);
    disk.write(fd, fill(50, 2), null);
    disk.write(fd, fill(50, 3), null);
    const report = disk.crash(rng, { flipProbability: 0.3 });
    const bytes = disk.fileBytes('/d/f');
    const context = `seed ${seed} round ${round} ${JSON.stringify(report)}`;
    assert.ok(bytes.length >= 100 && bytes.length <= 200, context);
    assert.deepEqual(bytes.subarray(0, 100), fill(100, 1), `${context}: the synced part is untouched`);
    let differences = 0;
    for (let i = 100; i < bytes.length; i++) if (bytes[i] !== (i < 150 ? 2 : 3)) differences++;
    assert.ok(differences <= 1, `${context}: at most one flipped byte`);
    assert.equal(differences, report.flippedBits, context);
    sawLoss ||= report.lostWrites > 0;
    sawTear ||= report.tornWrites > 0;
    sawFlip ||= report.flippedBits > 0;
  }
  assert.ok(sawLoss && sawTear && sawFlip, `seed ${seed}: every kind of damage happened`);
});

test('a file whose directory was not fsynced may vanish; after fsyncDir it stays', () => {
  let vanished = 0;
  for (let seed = 0; seed < 50; seed++) {
    const disk = new SimDisk();
    disk.mkdir('/d');
    disk.fsync(disk.open('/d/kept', true));
    disk.fsyncDir('/d');
    disk.fsync(disk.open('/d/maybe', true));
    disk.crash(createPrng(seed));
    assert.ok(disk.exists('/d/kept'));
    if (!disk.exists('/d/maybe')) vanished++;
  }
  assert.ok(vanished > 0 && vanished < 50, 'an unsynced entry is sometimes lost, sometimes kept');
});

test('a rename is atomic: after a crash the target holds the old or the new file, never a mix', () => {
  for (let seed = 0; seed < 50; seed++) {
    const disk = new SimDisk();
    disk.mkdir('/d');
    const old = disk.open('/d/cp', true);
    disk.write(old, fill(4, 1), 0);
    disk.fsync(old);
    disk.fsyncDir('/d');
    const tmp = disk.open('/d/cp.tmp', true);
    disk.write(tmp, fill(4, 2), 0);
    disk.fsync(tmp);
    disk.rename('/d/cp.tmp', '/d/cp');
    disk.crash(createPrng(seed));
    const bytes = disk.fileBytes('/d/cp');
    assert.ok(bytes.every((b) => b === 1) || bytes.every((b) => b === 2), `seed ${seed}: ${bytes.join(',')}`);
  }
});

test('an armed crash point stops the caller at the n-th mutating call without applying it', () => {
  const disk = new SimDisk();
  disk.mkdir('/d');
  const fd = disk.open('/d/f', true);
  disk.armCrash(2);
  disk.write(fd, fill(10, 1), null);
  assert.throws(() => disk.write(fd, fill(10, 2), null), SimulatedCrash);
  assert.throws(() => disk.read(fd, new Uint8Array(1), 0), SimulatedCrash, 'the machine stays down');
  disk.crash(createPrng(1), { tearProbability: 0, flipProbability: 0 });
  const after = disk.exists('/d/f') ? disk.fileBytes('/d/f') : new Uint8Array(0);
  assert.ok(
    after.every((b) => b === 1),
    'the second write never happened',
  );
});

test('the PRNG replays from its seed and stays within its bounds', () => {
  const a = createPrng(42);
  const b = createPrng(42);
  const c = createPrng(43);
  const seqA = Array.from({ length: 100 }, () => a.nextU32());
  assert.deepEqual(
    seqA,
    Array.from({ length: 100 }, () => b.nextU32()),
  );
  assert.notDeepEqual(
    seqA,
    Array.from({ length: 100 }, () => c.nextU32()),
  );
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const n = a.nextInt(10);
    assert.ok(Number.isInteger(n) && n >= 0 && n < 10);
    counts[n]!++;
    const f = a.nextFloat();
    assert.ok(f >= 0 && f < 1);
  }
  for (const count of counts) assert.ok(count > 800 && count < 1200, `roughly uniform: ${counts}`);
  assert.throws(() => a.nextInt(0));
});
