// A topic that a broker cannot serve is refused up front (issue 10, item 6): creating it would put more
// partitions on a broker than --max-partitions-per-thread x --threads, so it answers 422 / 42202 naming the
// limit, writes nothing, and a topic that fits (or the same topic again) still works.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call, startTestBroker, type TestBroker } from './harness.js';

let broker: TestBroker;

before(async () => {
  broker = await startTestBroker({ maxPartitionsPerThread: 10, threads: 2 });
});
after(async () => {
  await broker.stop();
});

test('a topic past the per-broker partition limit is refused with 422 naming the limit; one that fits is created', async () => {
  const tooMany = await call(broker.base, 'POST', '/topics/huge', { num_partitions: 21 });
  assert.equal(tooMany.status, 422, JSON.stringify(tooMany.body));
  assert.equal(tooMany.body.error_code, 42202);
  assert.match(
    tooMany.body.message,
    /would put 21 partitions on broker .* at most 20 \(--max-partitions-per-thread 10 x --threads 2\)/,
  );
  assert.equal((await call(broker.base, 'GET', '/topics/huge')).status, 404, 'nothing was created');

  assert.equal((await call(broker.base, 'POST', '/topics/fits', { num_partitions: 15 })).status, 201);
  assert.equal(
    (await call(broker.base, 'POST', '/topics/fits', { num_partitions: 15 })).status,
    200,
    'again: same topic',
  );
  const more = await call(broker.base, 'POST', '/topics/more', { num_partitions: 6 });
  assert.equal(more.status, 422, 'counts the partitions the broker holds already');
  assert.match(more.body.message, /would put 21 partitions/);
  assert.equal((await call(broker.base, 'POST', '/topics/last', { num_partitions: 5 })).status, 201);
});
