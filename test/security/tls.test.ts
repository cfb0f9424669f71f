// TLS on the client port, with certificates made by openssl in a temp dir (tls-fixture.ts) and real brokers on
// 127.0.0.1 port 0: HTTPS produce and consume work for a client that trusts the CA; a client that does not
// trust it, and plain HTTP to the TLS port, get nothing; WSS streams; mutual TLS `request` refuses a client
// certificate from another CA (and, as uWebSockets.js does, lets a client without one through); a reload
// (in-process, and by SIGHUP to a broker process) serves the new certificate to new connections that name the
// broker (SNI), HTTPS and WSS, while clients by IP address keep the old one, and a bad file changes nothing;
// consumer-group requests are forwarded between TLS nodes; bad files stop the start with the reason.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { dnsNamesOf, loadTlsSettings } from '../../src/security/tls.js';
import { startTestBroker, type TestBroker, tempDataDir } from '../broker/harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';
import { TestCluster } from '../cluster/processes.js';
import { makeCertificates, type TestCertificates } from './tls-fixture.js';

let certs: TestCertificates;

interface HttpsAnswer {
  readonly status: number;
  readonly body: any;
}

/** One request on a new connection (no keep-alive), so each sees the certificate served at that moment. */
function https(
  port: number,
  method: string,
  path: string,
  body: unknown,
  tls: RequestOptions,
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: text === undefined ? {} : { 'content-type': 'application/json' },
        ...tls,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          data += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: data === '' ? null : JSON.parse(data) }),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(text);
  });
}

/** The SHA-256 fingerprint of the certificate a new TLS connection is served (naming `servername` by SNI). */
function servedFingerprint(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sni = servername === undefined ? {} : { servername };
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.pem(certs.caCert), ...sni }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

function fingerprintOf(file: string): string {
  return new X509Certificate(certs.pem(file)).fingerprint256;
}

before(() => {
  certs = makeCertificates();
});

after(() => {
  rmSync(certs.dir, { recursive: true, force: true });
});

describe('a broker with TLS on its client port', () => {
  let broker: TestBroker;
  let port: number;
  let ca: RequestOptions;
  // The broker reads copies, so that the reload below can replace them.
  let certFile: string;
  let keyFile: string;

  before(async () => {
    certFile = join(certs.dir, 'live.crt');
    keyFile = join(certs.dir, 'live.key');
    copyFileSync(certs.serverCert, certFile);
    copyFileSync(certs.serverKey, keyFile);
    broker = await startTestBroker({ tlsCertFile: certFile, tlsKeyFile: keyFile, threads: 1 });
    port = broker.handle.port;
    ca = { ca: certs.pem(certs.caCert) };
  });

  after(async () => {
    await broker?.stop();
  });

  test('HTTPS produce and consume work for a client that trusts the CA', async () => {
    assert.equal(await servedFingerprint(port), fingerprintOf(certs.serverCert));
    const created = await https(port, 'POST', '/topics/secure', { num_partitions: 1 }, ca);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const produced = await https(port, 'POST', '/topics/secure/produce', { key: 'k', value: 'over tls' }, ca);
    assert.equal(produced.status, 201, JSON.stringify(produced.body));
    const consumed = await https(port, 'GET', '/topics/secure/partitions/0/consume?offset=0', undefined, ca);
    assert.equal(consumed.status, 200);
    assert.deepEqual(
      consumed.body.messages.map((m: { value: string }) => m.value),
      ['over tls'],
    );
  });

  test('a client that does not trust the CA, and plain HTTP, get nothing', async () => {
    await assert.rejects(https(port, 'GET', '/health', undefined, {}), (error: NodeJS.ErrnoException) => {
      assert.match(String(error.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
      return true;
    });
    await assert.rejects(
      https(port, 'GET', '/health', undefined, { ca: certs.pem(certs.otherCaCert) }),
      /self.signed|unable to verify|certificate/i,
    );
    const plain = new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) =>
        resolve(`answered ${res.statusCode}`),
      );
      req.setTimeout(5000, () => req.destroy(new Error('timed out')));
      req.on('error', (error: NodeJS.ErrnoException) => resolve(`failed: ${error.code ?? error.message}`));
      req.end();
    });
    assert.match(await plain, /^failed: (ECONNRESET|EPIPE|HPE_|socket hang up)/);
  });

  test('WSS produce and consume stream', async () => {
    const base = `wss://127.0.0.1:${port}`;
    const consumer = new WebSocket(`${base}/ws/consume/secure?partition=0&offset=0`, { ca: ca.ca as string });
    const received: string[] = [];
    const twoRecords = new Promise<void>((resolve, reject) => {
      consumer.on('message', (data) => {
        received.push((JSON.parse(data.toString()) as { value: string }).value);
        if (received.length === 2) resolve();
      });
      consumer.on('error', reject);
    });
    const producer = new WebSocket(`${base}/ws/produce/secure`, { ca: ca.ca as string });
    await new Promise((resolve, reject) => {
      producer.once('open', resolve);
      producer.once('error', reject);
    });
    const answer = new Promise<any>((resolve) =>
      producer.once('message', (d) => resolve(JSON.parse(d.toString()))),
    );
    producer.send(JSON.stringify({ value: 'over wss', context: 7 }));
    assert.deepEqual(
      { result: (await answer).result, context: (await answer).context },
      { result: 'ok', context: 7 },
    );
    await twoRecords;
    assert.deepEqual(received, ['over tls', 'over wss']);
    producer.close();
    consumer.close();
    const untrusting = new WebSocket(`${base}/ws/consume/secure?partition=0`);
    await new Promise<void>((resolve) => untrusting.once('error', () => resolve()));
  });

  test('a reload serves the new certificate to clients that name the broker; a bad file changes nothing', async () => {
    const reload = broker.handle.reloadTls!;
    assert.equal(await servedFingerprint(port, 'localhost'), fingerprintOf(certs.serverCert));
    copyFileSync(certs.server2Cert, certFile); // its key is not there yet
    await assert.rejects(reload(), /does not match the certificate/);
    assert.equal(await servedFingerprint(port, 'localhost'), fingerprintOf(certs.serverCert));
    copyFileSync(certs.server2Key, keyFile);
    assert.deepEqual(await reload(), ['localhost']);
    assert.equal(await servedFingerprint(port, 'localhost'), fingerprintOf(certs.server2Cert));
    assert.equal(
      await servedFingerprint(port),
      fingerprintOf(certs.serverCert),
      'by IP address: the old one',
    );
    // Every route is served under the name: HTTP, and WebSocket streams.
    const sni = { ...ca, servername: 'localhost' };
    const consumed = await https(port, 'GET', '/topics/secure/partitions/0/consume?offset=0', undefined, sni);
    assert.equal(consumed.status, 200);
    assert.equal(consumed.body.count, 2);
    assert.equal((await https(port, 'GET', '/no/such/route', undefined, sni)).status, 404);
    // ws passes options on to tls.connect: `servername` names the broker (its types do not list it).
    const sniOptions: WebSocket.ClientOptions & { servername: string } = {
      ca: ca.ca as string,
      servername: 'localhost',
    };
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws/consume/secure?partition=0&offset=0`, sniOptions);
    const first = await new Promise<any>((resolve, reject) => {
      ws.once('message', (data) => resolve(JSON.parse(data.toString())));
      ws.once('error', reject);
    });
    ws.close();
    assert.equal(first.value, 'over tls');
    // A second reload replaces the first one's registration.
    assert.deepEqual(await reload(), ['localhost']);
    assert.equal((await https(port, 'GET', '/health', undefined, sni)).status, 200);
  });
});

describe('mutual TLS (request) and SIGHUP on a broker process', () => {
  let broker: BrokerProcess;
  let dataDir: string;
  let certFile: string;
  let keyFile: string;

  before(async () => {
    dataDir = tempDataDir('broker-mtls-');
    certFile = join(certs.dir, 'proc.crt');
    keyFile = join(certs.dir, 'proc.key');
    copyFileSync(certs.serverCert, certFile);
    copyFileSync(certs.serverKey, keyFile);
    broker = await spawnBroker([
      '--data-dir',
      dataDir,
      '--threads',
      '1',
      '--tls-cert-file',
      certFile,
      '--tls-key-file',
      keyFile,
      '--tls-ca-file',
      certs.caCert,
      '--tls-client-auth',
      'request',
    ]);
  });

  after(async () => {
    if (broker !== undefined) await killBroker(broker);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('request: a certificate from the CA is served, one from another CA is refused, none gets through', async () => {
    const ca = certs.pem(certs.caCert);
    const withCert = { ca, cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) };
    assert.equal((await https(broker.port, 'GET', '/health', undefined, withCert)).status, 200);
    await assert.rejects(
      https(broker.port, 'GET', '/health', undefined, {
        ca,
        cert: certs.pem(certs.otherClientCert),
        key: certs.pem(certs.otherClientKey),
      }),
      /unknown ca|alert|ECONNRESET|socket hang up/i,
    );
    // uWebSockets.js verifies what is presented and lets a client without a certificate through (which is
    // why --tls-client-auth require is refused by the configuration).
    assert.equal((await https(broker.port, 'GET', '/health', undefined, { ca })).status, 200);
  });

  test('SIGHUP reloads the certificate for clients that name the broker, client certificates still checked', async () => {
    copyFileSync(certs.server2Cert, certFile);
    copyFileSync(certs.server2Key, keyFile);
    process.kill(broker.child.pid!, 'SIGHUP');
    const deadline = Date.now() + 5000;
    while (!broker.output().includes('SIGHUP: TLS certificate reloaded')) {
      assert.ok(Date.now() < deadline, `no reload logged:\n${broker.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ca = certs.pem(certs.caCert);
    const sni = { ca, servername: 'localhost' };
    const withCert = { ...sni, cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) };
    const fingerprint = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: broker.port, ...withCert }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
    assert.equal(fingerprint, fingerprintOf(certs.server2Cert));
    assert.equal((await https(broker.port, 'GET', '/health', undefined, withCert)).status, 200);
    await assert.rejects(
      https(broker.port, 'GET', '/health', undefined, {
        ...sni,
        cert: certs.pem(certs.otherClientCert),
        key: certs.pem(certs.otherClientKey),
      }),
    );
    assert.equal(broker.child.exitCode, null);
  });
});

describe('a two-node cluster with TLS on its client ports', () => {
  let cluster: TestCluster;

  before(async () => {
    // The nodes check each other's certificates against Node's CA store, to which the test CA is added.
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = certs.caCert;
    try {
      cluster = await TestCluster.start(2, [
        '--tls-cert-file',
        certs.serverCert,
        '--tls-key-file',
        certs.serverKey,
      ]);
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
    }
  });

  after(async () => {
    await cluster?.stopAll();
  });

  test('consumer-group routes are forwarded to the coordinator over https', async () => {
    const ca = { ca: certs.pem(certs.caCert) };
    const [n1, n2] = cluster.nodes.map((n) => n.process!.port) as [number, number];
    assert.equal((await https(n1, 'POST', '/topics/jobs', { num_partitions: 2 }, ca)).status, 201);
    // One of the two nodes coordinates the groups; the other passes the request on, over TLS.
    for (const [port, member] of [
      [n1, 'c1'],
      [n2, 'c2'],
    ] as const) {
      const joined = await https(
        port,
        'POST',
        '/consumer-groups/g/register',
        { consumer_id: member, topics: ['jobs'] },
        ca,
      );
      assert.equal(joined.status, 200, JSON.stringify(joined.body));
    }
  });
});

test('missing files and a key that is not the certificate stop the start, named', async () => {
  assert.deepEqual(dnsNamesOf('DNS:Broker-1.internal, IP Address:10.0.0.5, DNS:*.brokers.internal'), [
    'broker-1.internal',
    '*.brokers.internal',
  ]);
  assert.throws(
    () =>
      loadTlsSettings({
        tlsCertFile: join(certs.dir, 'absent.crt'),
        tlsKeyFile: certs.serverKey,
        tlsCaFile: null,
        tlsClientAuth: 'none',
      }),
    /cannot read the TLS certificate \(--tls-cert-file\) .*absent\.crt/,
  );
  assert.throws(
    () =>
      loadTlsSettings({
        tlsCertFile: certs.serverCert,
        tlsKeyFile: certs.clientKey,
        tlsCaFile: null,
        tlsClientAuth: 'none',
      }),
    /the private key .*client\.key does not match the certificate .*server\.crt/,
  );
  const dataDir = tempDataDir('broker-tls-bad-');
  try {
    await assert.rejects(
      spawnBroker([
        '--data-dir',
        dataDir,
        '--tls-cert-file',
        certs.serverCert,
        '--tls-key-file',
        certs.clientKey,
      ]),
      /exited with 1[\s\S]*does not match the certificate/,
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
