// With authentication off, the Kafka port does not offer SASL: ApiVersions does not list SaslHandshake or
// SaslAuthenticate (so clients configured without SASL never try it), and a client that asks anyway is answered
// UNSUPPORTED_SASL_MECHANISM with no mechanisms (kafkajs and librdkafka then report that the broker does not
// support the mechanism, rather than a bare disconnect). A Kafka port that is taken stops the start.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiKey } from '../../src/core/kafka/api-keys.js';
import { kafkaErrors } from '../../src/core/kafka/error-codes.js';
import { killBroker, spawnBroker } from '../broker/process.js';
import { RawConnection } from './raw-connection.js';

test('with authentication off SASL is not offered, and a SaslHandshake is answered UNSUPPORTED_SASL_MECHANISM', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kafka-auth-off-'));
  const broker = await spawnBroker(['--data-dir', dataDir, '--threads', '1', '--kafka-port', '0']);
  const raw = new RawConnection(broker.kafkaPort);
  try {
    const versions = await raw.request<{ apiKeys: { apiKey: number }[] }>('ApiVersions', 0, {});
    const keys = versions!.apiKeys.map((k) => k.apiKey);
    assert.ok(!keys.includes(ApiKey.SaslHandshake) && !keys.includes(ApiKey.SaslAuthenticate));
    const handshake = await raw.request('SaslHandshake', 1, { mechanism: 'PLAIN' });
    assert.deepEqual(handshake, { errorCode: kafkaErrors.UNSUPPORTED_SASL_MECHANISM.code, mechanisms: [] });
    const metadata = await raw.request<{ brokers: unknown[] }>('Metadata', 1, { topics: null });
    assert.equal(metadata?.brokers.length, 1, 'the connection is still served without authentication');
  } finally {
    raw.destroy();
    await killBroker(broker, 'SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
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
