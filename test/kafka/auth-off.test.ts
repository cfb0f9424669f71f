// With authentication on, the Kafka port (no SASL yet) is not opened: it would let any client past the ACLs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { killBroker, spawnBroker } from '../broker/process.js';
import { authFiles } from '../security/fixture.js';

test('a broker with authentication on keeps its Kafka port shut and says why', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kafka-auth-'));
  const files = await authFiles();
  const broker = await spawnBroker([
    '--data-dir',
    dataDir,
    '--threads',
    '1',
    '--kafka-port',
    '0',
    ...files.flags,
  ]);
  try {
    assert.equal(broker.kafkaPort, 0, 'no Kafka port is reported');
    assert.match(broker.output(), /the Kafka listener is off: authentication is on/);
    const status = await fetch(`${broker.base}/health`);
    assert.equal(status.status, 200, 'the broker serves HTTP');
  } finally {
    await killBroker(broker, 'SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(files.dir, { recursive: true, force: true });
  }
});

test('a Kafka port that is taken stops the start with a message naming the option', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kafka-taken-'));
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const taken = (holder.address() as { port: number }).port;
  try {
    await assert.rejects(
      spawnBroker(['--data-dir', dataDir, '--threads', '1', '--kafka-port', String(taken)], 20_000),
      /Kafka port \d+ could not be bound[^\n]*--kafka-port/,
    );
  } finally {
    holder.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
