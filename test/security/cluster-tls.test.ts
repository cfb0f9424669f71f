// Cluster TLS in one process, with a test CA made by openssl: the file checks report every problem at once;
// the data link and the cluster port's RPC serve a peer with a certificate from the cluster CA and refuse
// (and count, by reason) one from another CA, one without a certificate and plain TCP, before any byte reaches
// a handler; a reload announced after the files changed serves the new certificate to new connections.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tls from 'node:tls';
import { ClusterPort } from '../../src/cluster/port.js';
import { RpcClient, RpcServer } from '../../src/cluster/rpc.js';
import {
  DATA_LINK_DEFAULTS,
  DataLinkClient,
  DataLinkServer,
  LinkFailureKind,
} from '../../src/link/data-link.js';
import { createAuthStats, readAuthStat } from '../../src/security/cluster-auth.js';
import {
  announceClusterTlsReload,
  ClusterTls,
  createClusterTlsReload,
  loadClusterTlsMaterial,
} from '../../src/security/cluster-tls.js';
import { type ClusterCertificates, makeClusterCertificates } from './tls-fixture.js';

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('cluster TLS', { timeout: 60_000 }, () => {
  let certs: ClusterCertificates;
  const cleanups: (() => unknown)[] = [];
  before(() => {
    certs = makeClusterCertificates(['a', 'b']);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  const node = (id: string) => certs.nodes.get(id)!;
  const tlsOf = (id: string, stats = createAuthStats(), reload = createClusterTlsReload()) =>
    new ClusterTls({
      files: { certFile: node(id).cert, keyFile: node(id).key, caFile: certs.caCert },
      stats,
      reload,
    });
  const rogueTls = () =>
    new ClusterTls({
      files: { certFile: certs.rogueCert, keyFile: certs.rogueKey, caFile: certs.rogueCaCert },
    });

  it('the files are checked together: every problem named, a mismatched key and a foreign certificate refused', () => {
    assert.doesNotThrow(() =>
      loadClusterTlsMaterial({ certFile: node('a').cert, keyFile: node('a').key, caFile: certs.caCert }),
    );
    assert.throws(
      () =>
        loadClusterTlsMaterial({
          certFile: certs.rogueCert,
          keyFile: node('a').key,
          caFile: join(certs.dir, 'missing.crt'),
        }),
      (error: Error) =>
        /does not match the certificate/.test(error.message) &&
        /cannot read the cluster CA \(--cluster-tls-ca-file\)/.test(error.message),
    );
    assert.throws(
      () =>
        loadClusterTlsMaterial({ certFile: certs.rogueCert, keyFile: certs.rogueKey, caFile: certs.caCert }),
      /was not signed by a CA of .*cluster-ca\.crt: the other nodes would refuse it/,
    );
  });

  it('the data link serves a peer from the cluster CA and refuses, counted, every other', async () => {
    const stats = createAuthStats();
    let handled = 0;
    const server = await DataLinkServer.listen(
      '127.0.0.1',
      0,
      {
        onRequest: (connection, kind, correlationId, _view, bytes, at, length) => {
          handled++;
          const payload = Buffer.from(bytes.subarray(at, at + length));
          connection.reply(kind | 0x80, correlationId, payload.length, (out, _v, o) => {
            payload.copy(out, o);
          });
        },
      },
      { ...DATA_LINK_DEFAULTS, handshakeTimeoutMs: 1_000 },
      undefined,
      tlsOf('a', stats),
    );
    cleanups.push(() => server.close());
    const call = (clientTls: ClusterTls | undefined) => {
      const client = new DataLinkClient(
        '127.0.0.1',
        server.port,
        'b',
        { ...DATA_LINK_DEFAULTS },
        undefined,
        undefined,
        clientTls,
      );
      return new Promise<{ kind: number; payload: string }>((resolve) => {
        const bytes = Buffer.from('replica fetch');
        client.send(
          3,
          bytes.length,
          (out, _v, at) => {
            bytes.copy(out, at);
          },
          (kind, _view, b, at, length) => {
            resolve({ kind, payload: b.toString('utf8', at, at + length) });
            client.close();
          },
          2_000,
        );
      });
    };
    assert.deepEqual(await call(tlsOf('b')), { kind: 0x83, payload: 'replica fetch' });
    assert.equal((await call(rogueTls())).kind, LinkFailureKind, 'a certificate from another CA');
    assert.equal((await call(undefined)).kind, LinkFailureKind, 'plain TCP');
    // A TLS client without a certificate that trusts anything.
    const bare = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false });
    bare.on('error', () => {});
    bare.write(Buffer.from('LBD1\u0001\u0000b'));
    await new Promise((resolve) => bare.once('close', resolve));
    assert.equal(handled, 1, 'nothing from a refused peer reached the handler');
    // The rogue refuses this server's certificate first and leaves; plain TCP is no TLS; the bare client
    // sends no certificate.
    await waitFor('refusals counted', () => readAuthStat(stats, 'data_link', 'tls_handshake') === 2);
    assert.equal(readAuthStat(stats, 'data_link', 'tls_certificate'), 1);
  });

  it('the cluster port refuses a foreign certificate before the RPC tag; a reload serves the new files', async () => {
    const stats = createAuthStats();
    const reload = createClusterTlsReload();
    // The server's files are copies, replaced on disk before the reload is announced.
    const certFile = join(certs.dir, 'live.crt');
    const keyFile = join(certs.dir, 'live.key');
    copyFileSync(node('a').cert, certFile);
    copyFileSync(node('a').key, keyFile);
    const serverTls = new ClusterTls({ files: { certFile, keyFile, caFile: certs.caCert }, stats, reload });
    const port = await ClusterPort.open({ host: '127.0.0.1', port: 0, tls: serverTls });
    cleanups.push(() => port.close());
    let calls = 0;
    RpcServer.attach(port, async (_method, payload) => {
      calls++;
      return payload;
    });
    const good = new RpcClient({ connectTimeoutMs: 2_000 }, undefined, tlsOf('b'));
    const rogue = new RpcClient({ connectTimeoutMs: 2_000 }, undefined, rogueTls());
    cleanups.push(
      () => good.close(),
      () => rogue.close(),
    );
    const answer = await good.call(port.address(), 'echo', Buffer.from('hi'), { timeoutMs: 2_000 });
    assert.equal(Buffer.from(answer).toString(), 'hi');
    await assert.rejects(rogue.call(port.address(), 'echo', Buffer.from('x'), { timeoutMs: 2_000 }));
    assert.equal(calls, 1);
    await waitFor('the rogue counted', () => readAuthStat(stats, 'cluster_port', 'tls_handshake') === 1);

    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: port.port,
          cert: readPem(node('b').cert),
          key: readPem(node('b').key),
          ca: readPem(certs.caCert),
          checkServerIdentity: () => undefined,
        });
        socket.on('error', reject);
        socket.once('secureConnect', () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          // end, not destroy: the server finishes its side of the handshake before it sees the close.
          socket.end();
        });
      });
    const before = await fingerprint();
    copyFileSync(node('b').cert, certFile);
    copyFileSync(node('b').key, keyFile);
    assert.equal(await fingerprint(), before, 'nothing changes before the reload is announced');
    announceClusterTlsReload(reload);
    const after = await fingerprint();
    assert.notEqual(after, before, 'new connections get the new certificate');
    assert.equal(after, new X509Certificate(readPem(node('b').cert)).fingerprint256);
    // A broken file announced later (a race with the acceptor's check) keeps the certificate in use.
    writeFileSync(keyFile, 'not a key');
    announceClusterTlsReload(reload);
    assert.equal(await fingerprint(), after);
    // The rejected client above and these probes never count as refusals of a plain TCP client.
    const probe = net.connect({ host: '127.0.0.1', port: port.port }, () => probe.destroy());
    await new Promise((resolve) => probe.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(readAuthStat(stats, 'cluster_port', 'tls_handshake'), 1, 'a port probe is not a refusal');
  });
});

function readPem(path: string): string {
  return readFileSync(path, 'utf8');
}
