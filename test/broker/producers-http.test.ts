// Idempotent producers over HTTP on a single-node broker process: POST /producers hands out ids that are
// never handed out again (also after SIGKILL and a restart); a produce carrying Producer-Id, Producer-Epoch
// and Sequence is written once however often it is retried, before and after the restart; a sequence gap,
// an older epoch, incomplete headers and acks other than all are refused with a 4xx naming the problem and
// nothing written.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { call, tempDataDir } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const started: BrokerProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const broker of started) await killBroker(broker);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const headers = (id: number, epoch: number, sequence: number) => ({
  'producer-id': String(id),
  'producer-epoch': String(epoch),
  sequence: String(sequence),
});

test('POST /producers ids are unique across restarts; a retried idempotent produce is written once', async () => {
  const dataDir = tempDataDir('broker-producers-');
  dirs.push(dataDir);
  const first = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(first);
  assert.equal((await call(first.base, 'POST', '/topics/t', { num_partitions: 2 })).status, 201);

  const a = await call(first.base, 'POST', '/producers');
  const b = await call(first.base, 'POST', '/producers');
  assert.equal(a.status, 201, JSON.stringify(a.body));
  const idA = (a.body as { producer_id: number }).producer_id;
  const idB = (b.body as { producer_id: number }).producer_id;
  assert.notEqual(idA, idB);
  assert.equal((a.body as { producer_epoch: number }).producer_epoch, 0);

  const record = { value: 'once', partition: 1 };
  const sent = await call(first.base, 'POST', '/topics/t/produce', record, headers(idA, 0, 0));
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  assert.equal((sent.body as { offset: number }).offset, 0);
  assert.equal((sent.body as { duplicate?: boolean }).duplicate, undefined);
  const retried = await call(first.base, 'POST', '/topics/t/produce', record, headers(idA, 0, 0));
  assert.equal(retried.status, 201);
  assert.deepEqual(
    [(retried.body as { offset: number }).offset, (retried.body as { duplicate: boolean }).duplicate],
    [0, true],
  );

  // A batch of records is one idempotent batch; its retry is answered per record with the same offsets.
  const batch = { records: [1, 2, 3].map((i) => ({ value: `b${i}`, partition: 1 })) };
  const batchSent = await call(first.base, 'POST', '/topics/t/records', batch, headers(idA, 0, 1));
  assert.equal(batchSent.status, 200, JSON.stringify(batchSent.body));
  const batchRetried = await call(first.base, 'POST', '/topics/t/records', batch, headers(idA, 0, 1));
  assert.deepEqual(
    (batchRetried.body as { offsets: { offset: number }[] }).offsets.map((o) => o.offset),
    [1, 2, 3],
  );
  assert.equal((batchRetried.body as { duplicate: boolean }).duplicate, true);

  const gap = await call(first.base, 'POST', '/topics/t/produce', record, headers(idA, 0, 9));
  assert.equal(gap.status, 409, JSON.stringify(gap.body));
  assert.equal((gap.body as { error_code: number }).error_code, 40903);
  assert.match((gap.body as { message: string }).message, /expected 4/);

  const partial = await call(first.base, 'POST', '/topics/t/produce', record, { 'producer-id': String(idA) });
  assert.equal(partial.status, 400);
  assert.match((partial.body as { message: string }).message, /Producer-Epoch/);
  const acks1 = await call(first.base, 'POST', '/topics/t/produce?acks=1', record, headers(idA, 0, 4));
  assert.equal(acks1.status, 400);
  assert.match((acks1.body as { message: string }).message, /acks=all/);

  // SIGKILL: ids and the producers' state survive (the state is rebuilt from the log).
  await killBroker(first, 'SIGKILL');
  const second = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
  started.push(second);
  const c = await call(second.base, 'POST', '/producers');
  const idC = (c.body as { producer_id: number }).producer_id;
  assert.ok(idC !== idA && idC !== idB, `id ${idC} was handed out before the restart`);
  const afterRestart = await call(second.base, 'POST', '/topics/t/records', batch, headers(idA, 0, 1));
  assert.equal((afterRestart.body as { duplicate: boolean }).duplicate, true);
  const next = await call(second.base, 'POST', '/topics/t/produce', record, headers(idA, 0, 4));
  assert.equal((next.body as { offset: number }).offset, 4);
  const read = await call(second.base, 'GET', '/topics/t/partitions/1/consume?offset=0&limit=100');
  assert.equal(read.status, 200, JSON.stringify(read.body));
  const values = (read.body as { messages: { value: string }[] }).messages.map((r) => r.value);
  assert.deepEqual(values, ['once', 'b1', 'b2', 'b3', 'once']);
  await killBroker(second, 'SIGTERM');
});
