// Cluster RPC on 127.0.0.1: round trips, many concurrent calls matched by correlation id, a handler's error
// returned as 'remote', the in-flight bound answered 'overloaded', a call timing out, a server killed mid-call
// failing its calls as 'connection_lost', a dial to a closed port as 'unreachable', the client redialing a
// server restarted on the same number, and oversized frames refused on both sides.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { ClusterPort, ClusterTags, writeClusterTag } from '../../src/cluster/port.js';
import { RpcClient, RpcError, type RpcErrorCode, type RpcHandler, RpcServer } from '../../src/cluster/rpc.js';

const ports: ClusterPort[] = [];
const servers: RpcServer[] = [];
const clients: RpcClient[] = [];
/** Releases handlers that tests leave waiting, so that no promise outlives its test. */
const releases: (() => void)[] = [];

async function serve(
  handler: RpcHandler,
  limits: Parameters<typeof RpcServer.attach>[2] = {},
  portNumber = 0,
): Promise<{ port: ClusterPort; server: RpcServer; address: string }> {
  const port = await ClusterPort.open({ host: '127.0.0.1', port: portNumber });
  ports.push(port);
  const server = RpcServer.attach(port, handler, limits);
  servers.push(server);
  return { port, server, address: port.address() };
}

function client(limits: ConstructorParameters<typeof RpcClient>[0] = {}): RpcClient {
  const c = new RpcClient(limits);
  clients.push(c);
  return c;
}

/** A handler that waits until released; `started` counts the calls it received. */
function gate(): { handler: RpcHandler; started: () => number; release: () => void } {
  let started = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    for (const w of waiting.splice(0)) w();
  };
  releases.push(release);
  return {
    handler: (_method, payload) => {
      started++;
      return new Promise((resolve) => waiting.push(() => resolve(payload)));
    },
    started: () => started,
    release,
  };
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: RpcErrorCode,
  message?: RegExp,
): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `not an RpcError: ${String(error)}`);
    assert.equal(error.code, code, `code ${error.code}: ${error.message}`);
    if (message !== undefined) assert.match(error.message, message);
    return error;
  }
  assert.fail(`resolved where '${code}' was expected`);
}

async function waitFor(what: string, deadlineMs: number, condition: () => boolean): Promise<void> {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const bytes = (text: string) => Buffer.from(text, 'utf8');
const text = (payload: Uint8Array) => Buffer.from(payload).toString('utf8');

const echo: RpcHandler = async (method, payload) => bytes(`${method}:${text(payload)}`);

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(ports.splice(0).map((p) => p.close()));
});

describe('cluster RPC', () => {
  it('a call returns the handler response, over one pooled connection', async () => {
    const { address } = await serve(echo);
    const c = client();
    assert.equal(text(await c.call(address, 'ping', bytes('one'), { timeoutMs: 2_000 })), 'ping:one');
    assert.equal(text(await c.call(address, 'ping', new Uint8Array(0), { timeoutMs: 2_000 })), 'ping:');
    assert.equal(c.stats().dials, 1);
    assert.equal(c.stats().succeeded, 2);
  });

  it('many concurrent calls are each answered with their own response, whatever the completion order', async () => {
    const { address } = await serve(
      async (method, payload) => {
        // Later calls finish first: responses come back out of order.
        const n = Number(text(payload));
        await new Promise((resolve) => setTimeout(resolve, (200 - n) % 17));
        return bytes(`${method}-${n * 2}`);
      },
      { inflightPerConnectionMax: 200 },
    );
    const c = client({ pendingCallsPerAddressMax: 200 });
    const calls = Array.from({ length: 200 }, (_, n) =>
      c.call(address, `m${n % 3}`, bytes(String(n)), { timeoutMs: 5_000 }),
    );
    const results = (await Promise.all(calls)).map(text);
    assert.deepEqual(
      results,
      Array.from({ length: 200 }, (_, n) => `m${n % 3}-${n * 2}`),
    );
    assert.equal(c.stats().dials, 1);
    assert.equal(c.stats().pendingCalls, 0);
  });

  it("a handler's throw or rejection comes back as 'remote' with its message, bounded", async () => {
    const { address, server } = await serve(
      async (method) => {
        if (method === 'sync') throw new Error('sync failure');
        if (method === 'long') throw new Error('x'.repeat(10_000));
        if (method === 'notbytes') return 'text' as unknown as Uint8Array;
        return Promise.reject(new Error('async failure'));
      },
      { errorMessageBytesMax: 100 },
    );
    const c = client();
    const e = await rejectsWith(
      c.call(address, 'sync', bytes(''), { timeoutMs: 2_000 }),
      'remote',
      /^sync failure$/,
    );
    assert.equal(e.retriable, false);
    await rejectsWith(c.call(address, 'async', bytes(''), { timeoutMs: 2_000 }), 'remote', /^async failure$/);
    const long = await rejectsWith(c.call(address, 'long', bytes(''), { timeoutMs: 2_000 }), 'remote');
    assert.equal(long.message.length, 100);
    await rejectsWith(c.call(address, 'notbytes', bytes(''), { timeoutMs: 2_000 }), 'remote', /no bytes/);
    assert.equal(server.stats().remoteErrors, 4);
    // The connection survived the errors.
    assert.equal(c.stats().dials, 1);
  });

  it("calls beyond the server's in-flight bound are answered 'overloaded' without running", async () => {
    const g = gate();
    const { address, server } = await serve(g.handler, { inflightPerConnectionMax: 2 });
    const c = client();
    const first = c.call(address, 'a', bytes('1'), { timeoutMs: 5_000 });
    const second = c.call(address, 'a', bytes('2'), { timeoutMs: 5_000 });
    const e = await rejectsWith(c.call(address, 'a', bytes('3'), { timeoutMs: 5_000 }), 'overloaded');
    assert.equal(e.retriable, true);
    assert.equal(g.started(), 2);
    g.release();
    assert.deepEqual((await Promise.all([first, second])).map(text), ['1', '2']);
    assert.equal(server.stats().overloaded, 1);
  });

  it("the client's pending bound per address refuses calls at once", async () => {
    const g = gate();
    const { address } = await serve(g.handler);
    const c = client({ pendingCallsPerAddressMax: 1 });
    const first = c.call(address, 'a', bytes('1'), { timeoutMs: 5_000 });
    await rejectsWith(c.call(address, 'a', bytes('2'), { timeoutMs: 5_000 }), 'overloaded');
    await waitFor('first call running', 2_000, () => g.started() === 1);
    g.release();
    assert.equal(text(await first), '1');
  });

  it("a call without a response in time fails with 'timeout', and a late response is ignored", async () => {
    const g = gate();
    const { address } = await serve(g.handler);
    const c = client();
    const startMs = Date.now();
    await rejectsWith(c.call(address, 'slow', bytes('x'), { timeoutMs: 100 }), 'timeout');
    assert.ok(Date.now() - startMs >= 90);
    g.release();
    await waitFor('late response seen', 2_000, () => c.stats().unmatchedResponses === 1);
    // The connection is still good.
    const next = c.call(address, 'slow', bytes('y'), { timeoutMs: 2_000 });
    await waitFor('second call started', 2_000, () => g.started() === 2);
    g.release();
    assert.equal(text(await next), 'y');
    assert.equal(c.stats().dials, 1);
  });

  it("a server killed mid-call fails every pending call with 'connection_lost'", async () => {
    const g = gate();
    const { address, port } = await serve(g.handler);
    const c = client();
    const calls = [1, 2, 3].map((n) => c.call(address, 'a', bytes(String(n)), { timeoutMs: 5_000 }));
    await waitFor('calls running', 2_000, () => g.started() === 3);
    await port.close();
    for (const call of calls) {
      const e = await rejectsWith(call, 'connection_lost');
      assert.equal(e.retriable, true);
    }
    assert.equal(c.stats().connections, 0);
  });

  it("a call to a port nobody listens on fails with 'unreachable'", async () => {
    const { address, port } = await serve(echo);
    await port.close();
    const c = client();
    await rejectsWith(c.call(address, 'a', bytes(''), { timeoutMs: 2_000 }), 'unreachable');
    await rejectsWith(c.call('no-port', 'a', bytes(''), { timeoutMs: 2_000 }), 'unreachable');
  });

  it('the client redials a server restarted on the same port number', async () => {
    const first = await serve(echo);
    const number = first.port.port;
    const c = client();
    assert.equal(text(await c.call(first.address, 'a', bytes('1'), { timeoutMs: 2_000 })), 'a:1');
    await first.server.close();
    await first.port.close();
    await waitFor('client saw the close', 2_000, () => c.stats().connections === 0);
    await rejectsWith(c.call(first.address, 'a', bytes('2'), { timeoutMs: 2_000 }), 'unreachable');
    const second = await serve(async () => bytes('restarted'), {}, number);
    assert.equal(second.address, first.address);
    assert.equal(text(await c.call(first.address, 'a', bytes('3'), { timeoutMs: 2_000 })), 'restarted');
    assert.equal(c.stats().dials, 3);
  });

  it('oversized frames are refused: locally before sending, and by the server when announced', async () => {
    const { address, server } = await serve(
      async (method) => (method === 'big' ? new Uint8Array(2_000) : bytes('ok')),
      { frameBytesMax: 1_500 },
    );
    const small = client({ frameBytesMax: 1_000 });
    await rejectsWith(small.call(address, 'a', new Uint8Array(1_000), { timeoutMs: 2_000 }), 'too_large');
    assert.equal(small.stats().dials, 0, 'nothing was sent');
    // A client with a larger bound sends it; the server refuses the frame and ends the connection.
    const large = client({ frameBytesMax: 1 << 20 });
    await rejectsWith(
      large.call(address, 'a', new Uint8Array(10_000), { timeoutMs: 2_000 }),
      'connection_lost',
    );
    assert.equal(server.stats().rejectedInputs, 1);
    // A response over the server's bound is answered 'too_large'; the connection stays usable.
    await rejectsWith(large.call(address, 'big', bytes(''), { timeoutMs: 2_000 }), 'too_large');
    assert.equal(text(await large.call(address, 'a', bytes(''), { timeoutMs: 2_000 })), 'ok');
  });

  it('malformed frames end the server connection without harming the server', async () => {
    const { address, port, server } = await serve(echo);
    const raw = connect({ host: '127.0.0.1', port: port.port });
    raw.on('error', () => {});
    writeClusterTag(raw, ClusterTags.rpc);
    // A response frame (kind 2) is not something a client may send.
    const frame = Buffer.alloc(11);
    frame.writeUInt32BE(7, 0);
    frame[4] = 2;
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    raw.write(frame);
    await closed;
    // A method length running past the frame.
    const raw2: Socket = connect({ host: '127.0.0.1', port: port.port });
    raw2.on('error', () => {});
    writeClusterTag(raw2, ClusterTags.rpc);
    const bad = Buffer.alloc(11);
    bad.writeUInt32BE(7, 0);
    bad[4] = 1;
    bad.writeUInt16BE(50, 9);
    const closed2 = new Promise<void>((resolve) => raw2.once('close', () => resolve()));
    raw2.write(bad);
    await closed2;
    assert.equal(server.stats().rejectedInputs, 2);
    assert.equal(text(await client().call(address, 'a', bytes('b'), { timeoutMs: 2_000 })), 'a:b');
  });

  it('close rejects every pending call and refuses later ones', async () => {
    const g = gate();
    const { address } = await serve(g.handler);
    const c = client();
    const pending = rejectsWith(c.call(address, 'a', bytes(''), { timeoutMs: 5_000 }), 'connection_lost');
    await waitFor('call running', 2_000, () => g.started() === 1);
    await c.close();
    await pending;
    await rejectsWith(c.call(address, 'a', bytes(''), { timeoutMs: 5_000 }), 'unreachable', /closed/);
  });
});
