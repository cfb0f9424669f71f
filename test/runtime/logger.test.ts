// The logger writes complete JSON lines at the configured level, stamps thread and component, loses nothing
// that was logged before flushSync()/close(), and switches to pino-pretty's human format when asked.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { componentLogger, createLogger } from '../../src/runtime/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'logger-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function readLines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('logger', () => {
  test('writes JSON lines at or above the level, with thread, base fields and component', async () => {
    const path = join(dir, 'levels.log');
    const handle = createLogger({
      level: 'info',
      thread: 'acceptor',
      base: { node: 'broker-1' },
      destination: path,
    });
    const raft = componentLogger(handle.log, 'raft', { term: 3 });
    handle.log.debug('hidden');
    handle.log.info({ port: 8080 }, 'listening');
    raft.warn('election timeout');
    handle.log.error(new Error('boom'), 'failed');
    await handle.close();

    const lines = readLines(path);
    assert.deepEqual(
      lines.map((line) => line.msg),
      ['listening', 'election timeout', 'failed'],
    );
    for (const line of lines) {
      assert.equal(line.thread, 'acceptor');
      assert.equal(line.node, 'broker-1');
      assert.equal(typeof line.time, 'number');
    }
    assert.equal(lines[0]!.port, 8080);
    assert.equal(lines[1]!.component, 'raft');
    assert.equal(lines[1]!.term, 3);
    assert.equal((lines[2]!.err as { message: string }).message, 'boom');
  });

  test('flushSync hands every buffered line to the file before returning', () => {
    const path = join(dir, 'flush.log');
    const handle = createLogger({ level: 'trace', destination: path, pretty: false });
    for (let i = 0; i < 2000; i++) handle.log.trace({ i }, 'line');
    handle.flushSync();
    const lines = readLines(path);
    assert.equal(lines.length, 2000);
    assert.deepEqual(
      lines.map((line) => line.i),
      Array.from({ length: 2000 }, (_, i) => i),
    );
    return handle.close();
  });

  test('close is idempotent and logging stops at silent', async () => {
    const path = join(dir, 'silent.log');
    const handle = createLogger({ level: 'silent', destination: path });
    handle.log.fatal('not written');
    await handle.close();
    await handle.close();
    assert.equal(readFileSync(path, 'utf8'), '');
  });

  test('pretty mode writes human-readable lines instead of JSON', async () => {
    const path = join(dir, 'pretty.log');
    const handle = createLogger({ level: 'info', destination: path, pretty: true });
    handle.log.info({ topic: 'orders' }, 'topic created');
    await handle.close();
    const text = readFileSync(path, 'utf8');
    assert.match(text, /INFO/);
    assert.match(text, /topic created/);
    assert.match(text, /orders/);
    assert.throws(() => JSON.parse(text.split('\n')[0]!));
  });
});
