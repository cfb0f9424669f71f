// The data link on loopback: calls answered in any order over one connection, frames cut anywhere by TCP,
// every call answered exactly once (definite failures for calls never sent, indefinite ones for calls whose
// connection died or whose deadline passed), garbage ending a connection, and bounds refusing up front.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  DATA_LINK_DEFAULTS,
  DataLinkClient,
  DataLinkServer,
  type LinkConnection,
  LinkFailure,
  LinkFailureKind,
} from '../../src/link/data-link.js';

const servers: DataLinkServer[] = [];
const clients: DataLinkClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

/** Echoes the payload back with kind | 0x80; kind 9 is answered after a delay, kind 8 never. */
async function echoServer(): Promise<DataLinkServer> {
  const server = await DataLinkServer.listen('127.0.0.1', 0, {
    onRequest(connection: LinkConnection, kind, correlationId, _view, bytes, at, length) {
      const copy = Buffer.from(bytes.subarray(at, at + length));
      const answer = () =>
        connection.reply(kind | 0x80, correlationId, copy.byteLength, (out, _v, to) => {
          copy.copy(out, to);
        });
      if (kind === 8) return;
      if (kind === 9) setTimeout(answer, 20);
      else answer();
    },
  });
  servers.push(server);
  return server;
}

function call(client: DataLinkClient, kind: number, payload: Buffer, timeoutMs = 2000) {
  return new Promise<{ kind: number; payload: Buffer }>((resolve, reject) => {
    let answered = 0;
    const outcome = client.send(
      kind,
      payload.byteLength,
      (out, _v, at) => {
        payload.copy(out, at);
      },
      (k, _view, bytes, at, length) => {
        answered++;
        if (answered > 1) reject(new Error('answered twice'));
        resolve({ kind: k, payload: Buffer.from(bytes.subarray(at, at + length)) });
      },
      timeoutMs,
    );
    if (outcome === 'overloaded' || outcome === 'too_large') reject(new Error(outcome));
  });
}

describe('data link', () => {
  test('many calls share one connection and are answered out of order, payloads intact', async () => {
    const server = await echoServer();
    const client = new DataLinkClient('127.0.0.1', server.port, 'test');
    clients.push(client);
    const calls = Array.from({ length: 500 }, (_, i) => {
      const payload = Buffer.alloc((i * 7919) % 70_000, i % 251);
      return call(client, i % 2 === 0 ? 9 : 1, payload).then((answer) => {
        assert.equal(answer.kind, (i % 2 === 0 ? 9 : 1) | 0x80);
        assert.ok(answer.payload.equals(payload), `payload ${i} intact`);
      });
    });
    await Promise.all(calls);
    assert.equal(server.stats.connections, 1);
  });

  test('a call to a port nobody listens on fails definitely; a call whose deadline passes, indefinitely', async () => {
    const server = await echoServer();
    const port = server.port;
    await server.close();
    servers.pop();
    const nowhere = new DataLinkClient('127.0.0.1', port, 'test');
    clients.push(nowhere);
    const refused = await call(nowhere, 1, Buffer.from('x'));
    assert.deepEqual([refused.kind, refused.payload[0]], [LinkFailureKind, LinkFailure.unreachable]);

    const live = await echoServer();
    const client = new DataLinkClient('127.0.0.1', live.port, 'test');
    clients.push(client);
    const silent = await call(client, 8, Buffer.from('never answered'), 300);
    assert.deepEqual([silent.kind, silent.payload[0]], [LinkFailureKind, LinkFailure.timed_out]);
  });

  test('calls in flight when the server goes away are answered lost, and the client dials again later', async () => {
    const server = await echoServer();
    const client = new DataLinkClient('127.0.0.1', server.port, 'test');
    clients.push(client);
    await call(client, 1, Buffer.from('warm'));
    const inFlight = call(client, 8, Buffer.from('stuck'), 5000);
    await new Promise((r) => setTimeout(r, 50));
    await server.close();
    const lost = await inFlight;
    assert.deepEqual([lost.kind, lost.payload[0]], [LinkFailureKind, LinkFailure.lost]);
  });

  test('garbage and oversized frames end the connection and are counted', async () => {
    const server = await echoServer();
    for (const bytes of [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.concat([Buffer.from([0x4c, 0x42, 0x44, 0x31, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1])]),
    ]) {
      await new Promise<void>((resolve) => {
        const socket = connect(server.port, '127.0.0.1', () => socket.write(bytes));
        socket.on('close', () => resolve());
        socket.on('error', () => undefined);
      });
    }
    assert.equal(server.stats.malformed, 2);
  });

  test('a client at its pending bound refuses at once; an oversized call is refused before sending', async () => {
    const server = await echoServer();
    const client = new DataLinkClient('127.0.0.1', server.port, 'test', {
      ...DATA_LINK_DEFAULTS,
      pendingMax: 2,
      frameBytesMax: 1024,
    });
    clients.push(client);
    const a = call(client, 8, Buffer.from('a'), 200);
    const b = call(client, 8, Buffer.from('b'), 200);
    await assert.rejects(call(client, 1, Buffer.from('c')), /overloaded/);
    await assert.rejects(call(client, 1, Buffer.alloc(2000)), /too_large/);
    await Promise.all([a, b]);
  });
});
