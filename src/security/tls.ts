// TLS of the client port: reads and checks the certificate, key and CA files named by --tls-cert-file,
// --tls-key-file and --tls-ca-file before uWebSockets.js is given them, so that a missing file, a key that is
// not the certificate's, or an encrypted key stops the start (or a SIGHUP reload) with every problem named,
// instead of a listen that fails without a reason. uWebSockets.js reads the files itself (by name), so what is
// checked here is what it loads, give or take a file replaced in between.
//
// What uWebSockets.js 20.30 (this build) offers, measured on this machine, and so what the broker can promise:
// - `ca_file_name` asks for a client certificate and refuses one that does not chain to the CA (OpenSSL's
//   SSL_VERIFY_PEER), but lets a client without a certificate through: that is --tls-client-auth request.
//   `require` cannot be enforced (the configuration refuses it), and the peer certificate is never exposed to
//   JavaScript, so a client certificate cannot name the principal (bearer tokens still do).
// - A running app's default certificate cannot be replaced: a second app cannot listen on the port (no
//   SO_REUSEPORT), and listening again after closing fails while server-closed connections are in TIME_WAIT.
//   `addServerName` can serve new files to clients that send SNI (they connect by a DNS name), each name with
//   every route registered again under it; uWebSockets.js prints a few lines to standard output when it does.
//   So a reload (SIGHUP) registers the new certificate's DNS names; clients that connect by IP address send
//   no name and keep the start-up certificate until a restart.
// Runs on the main (acceptor) thread, at start-up and on SIGHUP.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { BrokerConfig, TlsClientAuth } from '../config/config.js';

/** What the HTTP server needs to serve TLS; the file names are passed on to uWebSockets.js. */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  /** Null with client authentication off. */
  readonly caFile: string | null;
  readonly clientAuth: TlsClientAuth;
  /** Of the leaf certificate, for the log. */
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  /** The certificate is outside its validity period now: served all the same, and warned about. */
  readonly outOfDate: boolean;
  /** The DNS names of the certificate's subjectAltName (wildcards as written), for SNI. */
  readonly dnsNames: readonly string[];
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the TLS files of `config`; null when TLS is off. Throws an Error naming every problem
 * (unreadable file, not PEM, key not matching the certificate, encrypted key, CA file without certificates).
 */
export function loadTlsSettings(
  config: Pick<BrokerConfig, 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile' | 'tlsClientAuth'>,
): TlsSettings | null {
  if (config.tlsCertFile === null || config.tlsKeyFile === null) return null;
  const caFile = config.tlsClientAuth === 'none' ? null : config.tlsCaFile;
  const problems: string[] = [];
  const checked = checkPemFiles(
    {
      certFile: config.tlsCertFile,
      certWhat: 'TLS certificate (--tls-cert-file)',
      keyFile: config.tlsKeyFile,
      keyWhat: 'TLS private key (--tls-key-file)',
      caFile,
      caWhat: 'TLS client CA (--tls-ca-file)',
    },
    problems,
  );
  const certificate = checked?.certificate ?? null;
  if (problems.length > 0 || certificate === null) {
    throw new Error(`TLS of the client port: ${problems.join('; ')}`);
  }
  return {
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    caFile,
    clientAuth: config.tlsClientAuth,
    subject: certificate.subject.replaceAll('\n', ', '),
    validTo: certificate.validTo,
    fingerprint256: certificate.fingerprint256,
    outOfDate: Date.now() < Date.parse(certificate.validFrom) || Date.now() > Date.parse(certificate.validTo),
    dnsNames: dnsNamesOf(certificate.subjectAltName ?? ''),
  };
}

/** The `DNS:` entries of a subjectAltName as Node prints it (`DNS:a.example, IP Address:10.0.0.1`). */
export function dnsNamesOf(subjectAltName: string): string[] {
  return subjectAltName
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase())
    .filter((name) => /^[a-z0-9*.-]{1,253}$/.test(name));
}

/** PEM files to check together: a certificate (chain), its key, and optionally CA certificates. */
export interface PemFiles {
  readonly certFile: string;
  /** How the file is named in a problem, e.g. `TLS certificate (--tls-cert-file)`. */
  readonly certWhat: string;
  readonly keyFile: string;
  readonly keyWhat: string;
  readonly caFile: string | null;
  readonly caWhat: string;
}

/** What `checkPemFiles` read, once every check passed. */
export interface CheckedPem {
  readonly certText: string;
  readonly keyText: string;
  /** Null without a CA file. */
  readonly caText: string | null;
  readonly certificate: X509Certificate;
  readonly cas: readonly X509Certificate[];
}

/**
 * Reads and checks a certificate, its key and CA certificates, adding every problem found to `problems`
 * (unreadable file, not PEM, an encrypted key, a key that is not the certificate's, a CA file without
 * certificates). Returns what was read when nothing was wrong, null otherwise.
 */
export function checkPemFiles(files: PemFiles, problems: string[]): CheckedPem | null {
  const before = problems.length;
  const read = (path: string, what: string): string | null => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      problems.push(`cannot read the ${what} ${path}: ${(error as Error).message}`);
      return null;
    }
  };
  const certText = read(files.certFile, files.certWhat);
  const keyText = read(files.keyFile, files.keyWhat);
  const caText = files.caFile === null ? null : read(files.caFile, files.caWhat);

  let certificate: X509Certificate | null = null;
  if (certText !== null) {
    const first = certText.match(pemCertificate)?.[0];
    if (first === undefined) {
      problems.push(`${files.certFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    } else {
      try {
        certificate = new X509Certificate(first);
      } catch (error) {
        problems.push(`${files.certFile}: the certificate cannot be parsed: ${(error as Error).message}`);
      }
    }
  }
  let key: KeyObject | null = null;
  if (keyText !== null) {
    if (keyText.includes('ENCRYPTED')) {
      problems.push(
        `${files.keyFile} is an encrypted key, which is not supported: decrypt it (openssl pkey -in ${files.keyFile} -out plain.key) and protect the file with its permissions`,
      );
    } else {
      try {
        key = createPrivateKey(keyText);
      } catch (error) {
        problems.push(`${files.keyFile}: not a PEM private key: ${(error as Error).message}`);
      }
    }
  }
  if (certificate !== null && key !== null && !certificate.checkPrivateKey(key)) {
    problems.push(
      `the private key ${files.keyFile} does not match the certificate ${files.certFile} (${certificate.subject.replaceAll('\n', ', ')})`,
    );
  }
  const cas: X509Certificate[] = [];
  if (caText !== null) {
    const pems = caText.match(pemCertificate) ?? [];
    if (pems.length === 0) problems.push(`${files.caFile} holds no PEM CA certificate`);
    for (const pem of pems) {
      try {
        cas.push(new X509Certificate(pem));
      } catch (error) {
        problems.push(`${files.caFile}: a CA certificate cannot be parsed: ${(error as Error).message}`);
        break;
      }
    }
  }
  if (problems.length > before || certificate === null || certText === null || keyText === null) return null;
  return { certText, keyText, caText, certificate, cas };
}
