// Test certificates made with Debian's openssl binary in a temp dir: a CA, a server certificate for 127.0.0.1
// and localhost signed by it and a second one (for reloads), a client certificate (CN alice)
// signed by the CA, and an unrelated CA with a client certificate of its own. EC P-256 keys: quick to make.
// Used by the TLS tests in this directory. `makeClusterCertificates` makes a cluster CA with node certificates
// for cluster TLS (serverAuth and clientAuth), and a rogue node certificate from another CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  readonly dir: string;
  /** Paths. */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Another certificate for the same names, for reloads. */
  readonly server2Cert: string;
  readonly server2Key: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly otherCaCert: string;
  readonly otherClientCert: string;
  readonly otherClientKey: string;
  /** PEM text of a file. */
  pem(path: string): string;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, cn: string, extensions: string): void {
  openssl(dir, [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'broker-tls-'));
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
  const clientExt = 'extendedKeyUsage=clientAuth\n';
  makeCa(dir, 'ca');
  makeLeaf(dir, 'server', 'ca', 'broker-1', serverExt);
  makeLeaf(dir, 'server2', 'ca', 'broker-1-renewed', serverExt);
  makeLeaf(dir, 'client', 'ca', 'alice', clientExt);
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'other-client', 'other-ca', 'mallory', clientExt);
  const path = (file: string) => join(dir, file);
  return {
    dir,
    caCert: path('ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    server2Cert: path('server2.crt'),
    server2Key: path('server2.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
    otherCaCert: path('other-ca.crt'),
    otherClientCert: path('other-client.crt'),
    otherClientKey: path('other-client.key'),
    pem: (file) => readFileSync(file, 'utf8'),
  };
}

export interface ClusterCertificates {
  readonly dir: string;
  readonly caCert: string;
  /** Node id → certificate and key paths, signed by the cluster CA. */
  readonly nodes: ReadonlyMap<string, { readonly cert: string; readonly key: string }>;
  /** A node certificate from another CA. */
  readonly rogueCert: string;
  readonly rogueKey: string;
  readonly rogueCaCert: string;
}

/** A cluster CA and a certificate per node id (CN = the id, SAN 127.0.0.1), plus a rogue from another CA. */
export function makeClusterCertificates(nodeIds: readonly string[]): ClusterCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'broker-cluster-tls-'));
  const nodeExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n';
  makeCa(dir, 'cluster-ca');
  const nodes = new Map<string, { cert: string; key: string }>();
  for (const id of nodeIds) {
    makeLeaf(dir, `node-${id}`, 'cluster-ca', id, nodeExt);
    nodes.set(id, { cert: join(dir, `node-${id}.crt`), key: join(dir, `node-${id}.key`) });
  }
  makeCa(dir, 'rogue-ca');
  makeLeaf(dir, 'rogue', 'rogue-ca', 'rogue', nodeExt);
  return {
    dir,
    caCert: join(dir, 'cluster-ca.crt'),
    nodes,
    rogueCert: join(dir, 'rogue.crt'),
    rogueKey: join(dir, 'rogue.key'),
    rogueCaCert: join(dir, 'rogue-ca.crt'),
  };
}
