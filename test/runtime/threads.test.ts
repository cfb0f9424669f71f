import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { spawnThread } from '../../src/runtime/threads.js';

test('a worker spawned from source loads its TypeScript entry and sees its data', async () => {
  const worker = spawnThread('test/runtime/fixtures/echo-worker', { greeting: 'hello' });
  const [reply] = await once(worker, 'message');
  assert.deepEqual(reply, { echoed: 'hello', typed: true });
  await worker.terminate();
});
