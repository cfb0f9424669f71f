// Configuration: precedence of the four sources, every kind of bad value reported at once, the unit parsers,
// and the README's configuration table kept identical to the schema.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type ConfigInput,
  type ConfigProblem,
  type ConfigResult,
  configForTests,
  configOptions,
  formatProblem,
  optionSpecs,
  parseBytes,
  parseDurationMs,
  parseSeeds,
  renderConfigTable,
  resolveConfig,
} from '../../src/config/config.js';

function input(overrides: Partial<ConfigInput> & { files?: Record<string, string> } = {}): ConfigInput {
  const files = overrides.files ?? {};
  return {
    flags: overrides.flags ?? {},
    env: overrides.env ?? {},
    availableParallelism: overrides.availableParallelism ?? 4,
    readFile: (path: string) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
      return text;
    },
  };
}

function expectOk(result: ConfigResult) {
  if (result.kind !== 'ok')
    assert.fail(`unexpected problems:\n${result.problems.map(formatProblem).join('\n')}`);
  return result.config;
}

function expectProblems(result: ConfigResult): readonly ConfigProblem[] {
  assert.equal(result.kind, 'invalid', 'expected the configuration to be refused');
  return result.kind === 'invalid' ? result.problems : [];
}

/** Finds the problem about `option` from `source`, failing with the full list when there is none. */
function findProblem(problems: readonly ConfigProblem[], option: string, source: string, pattern: RegExp) {
  const found = problems.find((p) => p.option === option && p.source === source && pattern.test(p.message));
  assert.ok(
    found,
    `no ${source} problem for ${option} matching ${pattern}; got:\n${problems.map(formatProblem).join('\n')}`,
  );
  return found;
}

describe('precedence', () => {
  const file = JSON.stringify({
    port: 1001,
    wal_sync_interval: '1s',
    segment_size: '10MB',
    rack: 'file-rack',
  });
  const files = { 'broker.json': file };
  const env = { BROKER_PORT: '2002', BROKER_WAL_SYNC_INTERVAL: '250ms', BROKER_CONFIG: 'broker.json' };
  const flags = { port: '3003' };

  test('flags override the environment, which overrides the file, which overrides defaults', () => {
    const config = expectOk(resolveConfig(input({ flags, env, files })));
    assert.equal(config.port, 3003);
    assert.equal(config.sources.port, 'flag');
    assert.equal(config.walSyncIntervalMs, 250);
    assert.equal(config.sources.walSyncIntervalMs, 'env');
    assert.equal(config.segmentBytes, 10_000_000);
    assert.equal(config.sources.segmentBytes, 'file');
    assert.equal(config.rack, 'file-rack');
    assert.equal(config.gossipIntervalMs, 200);
    assert.equal(config.sources.gossipIntervalMs, 'default');
    assert.equal(config.configFile, 'broker.json');
    assert.equal(config.sources.configFile, 'env');
  });

  test('each source takes over when the one above it is absent', () => {
    assert.equal(expectOk(resolveConfig(input({ env, files }))).port, 2002);
    assert.equal(expectOk(resolveConfig(input({ env: { BROKER_CONFIG: 'broker.json' }, files }))).port, 1001);
    assert.equal(expectOk(resolveConfig(input({ files }))).port, 8080);
  });

  test('a --config flag wins over BROKER_CONFIG', () => {
    const result = resolveConfig(
      input({
        flags: { config: 'b.json' },
        env: { BROKER_CONFIG: 'a.json' },
        files: { 'a.json': '{"port": 1}', 'b.json': '{"port": 2}' },
      }),
    );
    assert.equal(expectOk(result).port, 2);
  });

  test("the seed's deployment names NODE_ID, PORT, CLUSTER_PORT and SEEDS are read below BROKER_*", () => {
    const seedEnv = {
      NODE_ID: 'broker2',
      PORT: '8082',
      CLUSTER_PORT: '7947',
      SEEDS: 'broker1:7946,broker3:7948',
    };
    const config = expectOk(resolveConfig(input({ env: seedEnv })));
    assert.equal(config.nodeId, 'broker2');
    assert.equal(config.port, 8082);
    assert.equal(config.clusterPort, 7947);
    assert.deepEqual(config.seeds, [
      { host: 'broker1', port: 7946 },
      { host: 'broker3', port: 7948 },
    ]);
    assert.equal(config.sources.port, 'env');
    const both = expectOk(
      resolveConfig(input({ env: { ...seedEnv, BROKER_PORT: '9000', BROKER_NODE_ID: 'x' } })),
    );
    assert.equal(both.port, 9000, 'BROKER_PORT wins over PORT');
    assert.equal(both.nodeId, 'x');
    assert.equal(expectOk(resolveConfig(input({ flags: { port: '1' }, env: seedEnv }))).port, 1);
    const bad = expectProblems(resolveConfig(input({ env: { PORT: 'eighty' } })));
    assert.equal(
      findProblem(bad, 'port', 'env', /eighty/).where,
      'PORT',
      'the problem names the variable read',
    );
  });

  test('several acceptor threads are taken, but not with TLS on the client port or with quotas', () => {
    const taken = resolveConfig(input({ flags: { 'acceptor-threads': '3' } }));
    assert.equal(taken.kind, 'ok');
    if (taken.kind === 'ok') assert.equal(taken.config.acceptorThreads, 3);
    const withQuota = expectProblems(
      resolveConfig(
        input({ flags: { 'acceptor-threads': '2', 'quota-produce-bytes-per-second': '1000000' } }),
      ),
    );
    findProblem(withQuota, 'acceptorThreads', 'flag', /quotas are enforced by one acceptor thread/);
    const tooMany = expectProblems(resolveConfig(input({ flags: { 'acceptor-threads': '65' } })));
    findProblem(tooMany, 'acceptorThreads', 'flag', /64/);
  });

  test('an empty environment variable counts as unset', () => {
    const config = expectOk(resolveConfig(input({ env: { BROKER_RACK: '', BROKER_PORT: '' } })));
    assert.equal(config.rack, null);
    assert.equal(config.port, 8080);
  });

  test('defaults: every option has its documented value, threads from the machine capped at 256', () => {
    const config = expectOk(resolveConfig(input({ availableParallelism: 6 })));
    assert.deepEqual(
      { ...config, sources: undefined },
      {
        nodeId: 'broker-1',
        port: 8080,
        host: '0.0.0.0',
        clusterPort: 7946,
        kafkaPort: 9092,
        address: '127.0.0.1',
        dataDir: './data',
        seeds: [],
        segmentBytes: 128 * 1024 * 1024,
        walSyncIntervalMs: 0,
        commitOverlapMs: 2,
        gossipIntervalMs: 200,
        gossipDeadReclaimMs: 30_000,
        threads: 6,
        rack: null,
        configFile: null,
        maxRequestBytes: 8 * 1024 * 1024,
        largeBodyBytes: 256 * 1024,
        ringBytes: 2 * 1024 * 1024,
        retentionMs: 7 * 24 * 3600 * 1000,
        retentionBytes: -1,
        defaultNumPartitions: 1,
        defaultReplicationFactor: 3,
        dataPort: 0,
        replicaLagTimeMaxMs: 10_000,
        workerBalanceIntervalMs: 10_000,
        workerBalanceTolerancePercent: 25,
        workerBalanceMovesMax: 4,
        replicationThrottleBytes: 0,
        autoBalance: 'off',
        nodeDownTimeoutMs: 15 * 60 * 1000,
        sessionTimeoutMs: 10_000,
        offsetsRetentionMs: 7 * 24 * 3600 * 1000,
        raftVoters: 3,
        raftVoterReplaceAfterMs: 30_000,
        acceptorThreads: 1,
        logLevel: 'info',
        maxWaitMs: 30_000,
        maxConnections: 0,
        segmentFdsPerThread: 0,
        maxPartitionsPerThread: 8192,
        authTokensFile: null,
        authJwtHs256SecretFile: null,
        authJwtRs256PublicKeyFile: null,
        authJwtAudience: null,
        authJwtIssuer: null,
        clusterSecretFile: null,
        clusterTlsCertFile: null,
        clusterTlsKeyFile: null,
        clusterTlsCaFile: null,
        superUsers: [],
        metricsRequireAuth: false,
        tlsCertFile: null,
        tlsKeyFile: null,
        tlsCaFile: null,
        tlsClientAuth: 'none',
        quotaProduceBytesPerS: 0,
        quotaConsumeBytesPerS: 0,
        maxConnectionsPerIp: 0,
        sources: undefined,
      },
    );
    assert.equal(expectOk(resolveConfig(input({ availableParallelism: 1000 }))).threads, 256);
  });

  test('every option can be set from each of its sources', () => {
    const samples: Record<string, string> = {
      nodeId: 'n-7',
      port: '9000',
      host: '127.0.0.1',
      clusterPort: '9001',
      kafkaPort: '9093',
      address: 'broker7.internal',
      dataDir: '/var/lib/broker',
      seeds: 'a:1,b:2',
      segmentBytes: '1MiB',
      walSyncIntervalMs: '5ms',
      commitOverlapMs: '3ms',
      gossipIntervalMs: '1s',
      gossipDeadReclaimMs: '10s',
      threads: '3',
      rack: 'us-east-1a',
      maxRequestBytes: '2MiB',
      largeBodyBytes: '64KiB',
      ringBytes: '4MiB',
      retentionMs: '-1',
      retentionBytes: '1GiB',
      defaultNumPartitions: '12',
      defaultReplicationFactor: '2',
      dataPort: '9100',
      replicaLagTimeMaxMs: '30s',
      workerBalanceIntervalMs: '2s',
      workerBalanceTolerancePercent: '10',
      workerBalanceMovesMax: '2',
      replicationThrottleBytes: '10MiB',
      autoBalance: 'continuous',
      nodeDownTimeoutMs: '2m',
      sessionTimeoutMs: '6000',
      offsetsRetentionMs: '3600000',
      raftVoters: '5',
      acceptorThreads: '1',
      logLevel: 'debug',
      maxWaitMs: '500',
      maxConnections: '100',
      segmentFdsPerThread: '16',
      maxPartitionsPerThread: '100',
      authTokensFile: '/etc/broker/tokens',
      authJwtHs256SecretFile: '/etc/broker/jwt-secret',
      authJwtAudience: 'broker',
      authJwtIssuer: 'https://idp.example',
      clusterSecretFile: '/etc/broker/cluster-secret',
      clusterTlsCertFile: '/etc/broker/node.crt',
      clusterTlsKeyFile: '/etc/broker/node.key',
      clusterTlsCaFile: '/etc/broker/cluster-ca.crt',
      superUsers: 'admin,ops',
      metricsRequireAuth: 'true',
      tlsCertFile: '/etc/broker/tls.crt',
      tlsKeyFile: '/etc/broker/tls.key',
      tlsCaFile: '/etc/broker/clients-ca.crt',
      tlsClientAuth: 'request',
      quotaProduceBytesPerS: '1MiB',
      quotaConsumeBytesPerS: '2MiB',
      maxConnectionsPerIp: '50',
    };
    const fileEntries: Record<string, string> = {};
    const env: Record<string, string> = {};
    const flags: Record<string, string> = {};
    for (const spec of configOptions) {
      const sample = samples[spec.field];
      if (sample === undefined || spec.fileKey === null) continue;
      fileEntries[spec.fileKey] = sample;
      env[spec.env] = sample;
      flags[spec.flag] = sample;
    }
    const files = { 'c.json': JSON.stringify(fileEntries) };
    for (const [source, given] of [
      ['file', { flags: { config: 'c.json' }, files }],
      ['env', { env }],
      ['flag', { flags }],
    ] as const) {
      const config = expectOk(resolveConfig(input(given)));
      for (const field of Object.keys(samples)) {
        assert.equal(config.sources[field as keyof typeof config.sources], source, `${field} from ${source}`);
      }
      assert.deepEqual(config.seeds, [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ]);
      assert.equal(config.segmentBytes, 1024 * 1024);
      assert.equal(config.gossipIntervalMs, 1000);
      assert.equal(config.retentionMs, -1);
      assert.deepEqual(config.superUsers, ['admin', 'ops']);
      assert.equal(config.metricsRequireAuth, true);
      assert.deepEqual(
        [config.tlsClientAuth, config.quotaProduceBytesPerS, config.quotaConsumeBytesPerS],
        ['request', 1024 * 1024, 2 * 1024 * 1024],
      );
    }
  });

  test('the config is frozen, seeds and sources included', () => {
    const config = expectOk(resolveConfig(input({ flags: { seeds: 'h:1' } })));
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.seeds));
    assert.ok(Object.isFrozen(config.seeds[0]));
    assert.ok(Object.isFrozen(config.sources));
  });

  test('the file takes JSON numbers, size and duration strings and a seed list', () => {
    const files = {
      'f.json': JSON.stringify({
        segment_size: 4096,
        wal_sync_interval: 100,
        gossip_interval: '2s',
        seeds: ['10.0.0.1:7946', '[::1]:7947'],
      }),
    };
    const config = expectOk(resolveConfig(input({ flags: { config: 'f.json' }, files })));
    assert.equal(config.segmentBytes, 4096);
    assert.equal(config.walSyncIntervalMs, 100);
    assert.equal(config.gossipIntervalMs, 2000);
    assert.deepEqual(config.seeds, [
      { host: '10.0.0.1', port: 7946 },
      { host: '::1', port: 7947 },
    ]);
  });
});

describe('validation reports every problem at once', () => {
  test('bad values from flags, environment and file are all reported, each naming its option and source', () => {
    const files = {
      'bad.json': JSON.stringify({
        segment_size: '10 parsecs',
        gossip_intervl: '1s',
        log_level: 'loud',
        threads: 2.5,
        seeds: 'ok:1,nope,[zz]:3,h:70000',
      }),
    };
    const problems = expectProblems(
      resolveConfig(
        input({
          flags: {
            threads: 'abc',
            'raft-voters': '1.5',
            'wal-sync-interval': '1.5s',
            'ring-bytes': '3MiB',
            'node-id': 'bad id!',
            address: '0.0.0.0',
            prot: '8080',
            config: 'bad.json',
          },
          env: { BROKER_PORT: '70000', BROKER_MAX_WAIT_MS: '-5', BROKER_GOSSIP_INTERVAL: '5ms' },
          files,
        }),
      ),
    );
    findProblem(problems, 'threads', 'flag', /"abc" is not an integer/);
    findProblem(problems, 'raftVoters', 'flag', /"1.5" is not an integer/);
    findProblem(problems, 'walSyncInterval', 'flag', /not a duration/);
    findProblem(problems, 'ringBytes', 'flag', /not a power of two/);
    findProblem(problems, 'nodeId', 'flag', /a-zA-Z0-9/);
    findProblem(problems, 'address', 'flag', /not reachable/);
    findProblem(problems, 'prot', 'flag', /unknown flag/);
    findProblem(problems, 'port', 'env', /70000 is out of range \(0 to 65535\)/);
    findProblem(problems, 'maxWaitMs', 'env', /out of range/);
    findProblem(problems, 'gossipInterval', 'env', /5 is out of range \(10 to 60000 ms\)/);
    findProblem(problems, 'segmentSize', 'file', /not a size/);
    findProblem(problems, 'gossip_intervl', 'file', /unknown key/);
    findProblem(problems, 'logLevel', 'file', /not one of/);
    findProblem(problems, 'threads', 'file', /2.5 is not an integer/);
    const seeds = findProblem(problems, 'seeds', 'file', /"nope" is not host:port/);
    assert.match(seeds.message, /\[zz\]:3/);
    assert.match(seeds.message, /port 70000 outside 1-65535/);
    assert.equal(problems.length, 15, problems.map(formatProblem).join('\n'));
  });

  test('the port and the cluster port must differ', () => {
    const problems = expectProblems(
      resolveConfig(input({ flags: { port: '7000' }, env: { BROKER_CLUSTER_PORT: '7000' } })),
    );
    const problem = findProblem(problems, 'port', 'flag', /also the cluster port/);
    assert.equal(
      formatProblem(problem),
      '--port (flag): 7000 is also the cluster port (--cluster-port); they must differ',
    );
    expectOk(resolveConfig(input({ flags: { port: '0', 'cluster-port': '0' } })));
  });

  test('body thresholds must nest: large-body <= max-request (a request may span many ring frames)', () => {
    expectOk(resolveConfig(input({ flags: { 'large-body-bytes': '9MiB', 'max-request-bytes': '16MiB' } })));
    const big = expectProblems(
      resolveConfig(input({ flags: { 'large-body-bytes': '2MiB', 'max-request-bytes': '1MiB' } })),
    );
    findProblem(big, 'largeBodyBytes', 'flag', /above --max-request-bytes/);
  });

  test('an unreadable or malformed config file is reported against --config', () => {
    const missing = expectProblems(resolveConfig(input({ flags: { config: 'missing.json' } })));
    findProblem(missing, 'config', 'flag', /cannot read missing.json/);
    const malformed = expectProblems(
      resolveConfig(input({ env: { BROKER_CONFIG: 'm.json' }, files: { 'm.json': '{port:' } })),
    );
    findProblem(malformed, 'config', 'env', /not valid JSON/);
    const array = expectProblems(
      resolveConfig(input({ flags: { config: 'a.json' }, files: { 'a.json': '[1]' } })),
    );
    findProblem(array, 'config', 'flag', /JSON object/);
  });

  test('a value that a higher source overrides is still checked', () => {
    const problems = expectProblems(
      resolveConfig(input({ flags: { port: '9000' }, env: { BROKER_PORT: 'eighty' } })),
    );
    findProblem(problems, 'port', 'env', /not an integer/);
    assert.equal(problems.length, 1);
  });

  test('authentication options: one JWT key, audience and issuer only with a JWT, metrics auth only with auth', () => {
    const invalid = resolveConfig(
      input({
        flags: {
          'auth-jwt-hs256-secret-file': '/a',
          'auth-jwt-rs256-public-key-file': '/b',
          'super-users': 'ok,*',
        },
      }),
    );
    assert.equal(invalid.kind, 'invalid');
    const messages =
      invalid.kind === 'invalid' ? invalid.problems.map((p) => `${p.where}: ${p.message}`) : [];
    assert.ok(
      messages.some((m) => /super-users.*not \*/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /auth-jwt-rs256-public-key-file: give one JWT key/.test(m)),
      messages.join('\n'),
    );
    const noJwt = resolveConfig(
      input({ flags: { 'auth-jwt-audience': 'x', 'metrics-require-auth': 'true' } }),
    );
    assert.equal(noJwt.kind === 'invalid' ? noJwt.problems.length : 0, 2);
    const flag = resolveConfig(input({ flags: { 'metrics-require-auth': 'yes' } }));
    assert.equal(flag.kind, 'invalid');
    const file = resolveConfig(
      input({
        flags: { config: 'c.json' },
        files: {
          'c.json': JSON.stringify({
            auth_tokens_file: '/t',
            super_users: ['a', 'b'],
            metrics_require_auth: true,
          }),
        },
      }),
    );
    assert.equal(file.kind, 'ok');
    if (file.kind === 'ok')
      assert.deepEqual([file.config.superUsers, file.config.metricsRequireAuth], [['a', 'b'], true]);
  });

  test('cluster TLS options: all three files or none, and the cluster secret with them', () => {
    const problemsOf = (flags: Record<string, string>): string[] => {
      const result = resolveConfig(input({ flags }));
      return result.kind === 'invalid' ? result.problems.map((p) => `${p.where}: ${p.message}`) : [];
    };
    const allThree = {
      'cluster-tls-cert-file': '/n.crt',
      'cluster-tls-key-file': '/n.key',
      'cluster-tls-ca-file': '/ca.crt',
    };
    assert.deepEqual(problemsOf({ ...allThree, 'cluster-secret-file': '/s' }), []);
    assert.deepEqual(problemsOf(allThree), [
      "--cluster-tls-cert-file: cluster TLS needs the cluster secret too: gossip's UDP datagrams cannot use TLS, and only the secret keeps an outsider from injecting members through them; give --cluster-secret-file",
    ]);
    assert.deepEqual(problemsOf({ 'cluster-tls-cert-file': '/n.crt', 'cluster-secret-file': '/s' }), [
      '--cluster-tls-cert-file: cluster TLS needs all three files (certificate, key, cluster CA) or none: give --cluster-tls-key-file and --cluster-tls-ca-file too',
    ]);
    assert.deepEqual(problemsOf({ 'cluster-tls-ca-file': '/ca.crt' }).length, 2);
  });

  test('TLS options: a certificate with its key, client authentication with a CA and TLS, never require', () => {
    const problemsOf = (flags: Record<string, string>): string[] => {
      const result = resolveConfig(input({ flags }));
      return result.kind === 'invalid' ? result.problems.map((p) => `${p.where}: ${p.message}`) : [];
    };
    assert.deepEqual(problemsOf({ 'tls-cert-file': '/c' }), [
      '--tls-cert-file: needs its private key: give --tls-key-file too',
    ]);
    assert.deepEqual(problemsOf({ 'tls-key-file': '/k' }), [
      '--tls-key-file: needs its certificate: give --tls-cert-file too',
    ]);
    assert.deepEqual(problemsOf({ 'tls-cert-file': '/c', 'tls-key-file': '/k', 'tls-ca-file': '/ca' }), [
      '--tls-ca-file: checks client certificates: give --tls-client-auth request or require',
    ]);
    assert.deepEqual(problemsOf({ 'tls-client-auth': 'request' }), [
      '--tls-client-auth: request needs the CA client certificates chain to: give --tls-ca-file',
      '--tls-client-auth: request needs TLS on: give --tls-cert-file and --tls-key-file',
    ]);
    const require = problemsOf({
      'tls-cert-file': '/c',
      'tls-key-file': '/k',
      'tls-ca-file': '/ca',
      'tls-client-auth': 'require',
    });
    assert.equal(require.length, 1);
    assert.match(require[0] ?? '', /require cannot be enforced by uWebSockets\.js/);
    assert.match(problemsOf({ 'tls-client-auth': 'optional' })[0] ?? '', /not one of none, request, require/);
    assert.deepEqual(
      problemsOf({
        'tls-cert-file': '/c',
        'tls-key-file': '/k',
        'tls-ca-file': '/ca',
        'tls-client-auth': 'request',
      }),
      [],
    );
  });

  test('an empty flag value is an error, not the default', () => {
    const problems = expectProblems(resolveConfig(input({ flags: { threads: '', 'data-dir': '' } })));
    findProblem(problems, 'threads', 'flag', /not an integer/);
    findProblem(problems, 'dataDir', 'flag', /empty path/);
  });
});

describe('unit parsing', () => {
  test('sizes: plain bytes, decimal and binary units, case-insensitive; everything else refused', () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ['0', 0],
      ['4096', 4096],
      ['-1', -1],
      ['10MB', 10_000_000],
      ['10mb', 10_000_000],
      ['512KiB', 512 * 1024],
      ['128MiB', 128 * 1024 * 1024],
      ['1GiB', 1024 ** 3],
      ['2GB', 2e9],
      ['7B', 7],
      [' 3 KiB ', 3072],
    ];
    for (const [text, bytes] of cases) assert.deepEqual(parseBytes(text), { ok: true, value: bytes }, text);
    for (const text of ['', 'MB', '1.5MB', '10M', '10 parsecs', '1e6', '0x10', '9999999999TiB']) {
      assert.equal(parseBytes(text).ok, false, text);
    }
  });

  test('durations: plain milliseconds, ms/s/m/h and compounds; fractions and bare units refused', () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ['0', 0],
      ['250', 250],
      ['250ms', 250],
      ['1s', 1000],
      ['2m', 120_000],
      ['1h', 3_600_000],
      ['1m30s', 90_000],
      ['1s500ms', 1500],
    ];
    for (const [text, ms] of cases) assert.deepEqual(parseDurationMs(text), { ok: true, value: ms }, text);
    for (const text of ['', 's', '1.5s', '-1s', '1d', '1 s', 'abc', '10us']) {
      assert.equal(parseDurationMs(text).ok, false, text);
    }
  });

  test('a duration written with any unit parses to the same milliseconds', () => {
    fc.assert(
      fc.property(fc.nat(100_000), (n) => {
        assert.deepEqual(parseDurationMs(`${n}`), { ok: true, value: n });
        assert.deepEqual(parseDurationMs(`${n}ms`), { ok: true, value: n });
        assert.deepEqual(parseDurationMs(`${n}s`), { ok: true, value: n * 1000 });
        assert.deepEqual(parseDurationMs(`${n}m`), { ok: true, value: n * 60_000 });
      }),
    );
  });

  test('seeds: host names, IPv4 and bracketed IPv6 with a port; empty means none', () => {
    assert.deepEqual(parseSeeds(''), { ok: true, value: [] });
    assert.deepEqual(parseSeeds('broker1:7946, 10.0.0.2:7947,[fe80::1]:1'), {
      ok: true,
      value: [
        { host: 'broker1', port: 7946 },
        { host: '10.0.0.2', port: 7947 },
        { host: 'fe80::1', port: 1 },
      ],
    });
    for (const text of ['broker1', 'h:0', 'h:', ':80', 'bad host:1', '[nothex]:1', 'a:1:2']) {
      assert.equal(parseSeeds(text).ok, false, text);
    }
  });
});

describe('schema and documentation', () => {
  const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

  test('every option follows the naming conventions: kebab flag, BROKER_ env, snake_case file key', () => {
    for (const spec of configOptions) {
      assert.equal(spec.flag, kebab(spec.name), spec.name);
      assert.equal(spec.env, `BROKER_${snake(spec.name).toUpperCase()}`, spec.name);
      if (spec.fileKey !== null) assert.equal(spec.fileKey, snake(spec.name), spec.name);
      assert.equal(optionSpecs[spec.field], spec);
    }
    const fileKeys = new Set(configOptions.map((spec) => spec.fileKey));
    for (const seedKey of ['data_dir', 'wal_sync_interval', 'segment_size', 'gossip_interval']) {
      assert.ok(fileKeys.has(seedKey), seedKey);
    }
  });

  test('the generated table documents every option once with its default and description', () => {
    const table = renderConfigTable();
    const rows = table.split('\n').slice(2);
    assert.equal(rows.length, configOptions.length);
    for (const spec of configOptions) {
      const row = rows.find((line) => line.startsWith(`| \`--${spec.flag}\` |`));
      assert.ok(row, spec.flag);
      assert.ok(row.includes(spec.description.replaceAll('|', '\\|')), spec.flag);
      assert.ok(row.includes(spec.defaultText), spec.flag);
    }
  });

  test("README.md's configuration table is the generated one", (t) => {
    const readmeUrl = new URL('../../README.md', import.meta.url);
    const readme = existsSync(readmeUrl) ? readFileSync(readmeUrl, 'utf8') : '';
    const start = '<!-- config-table:start -->';
    const end = '<!-- config-table:end -->';
    if (!readme.includes(start) || !readme.includes(end)) {
      t.skip('README.md has no config-table markers yet');
      return;
    }
    const between = readme.slice(readme.indexOf(start) + start.length, readme.indexOf(end)).trim();
    assert.equal(
      between,
      renderConfigTable(),
      'README table is stale: paste renderConfigTable() between the markers',
    );
  });

  test('configForTests gives a valid frozen config and asserts on a bad override', () => {
    const config = configForTests({ port: 0, dataDir: '/tmp/x' });
    assert.equal(config.port, 0);
    assert.equal(config.sources.port, 'flag');
    assert.equal(config.threads, 2);
    assert.ok(Object.isFrozen(config));
    assert.throws(() => configForTests({ ringBytes: 3 * 1024 * 1024 }), /power of two/);
    assert.throws(() => configForTests({ port: 7946, clusterPort: 7946 }), /cluster port/);
    assert.equal(configForTests().clusterPort, 0, 'tests get a free cluster port by default');
    assert.equal(configForTests().kafkaPort, -1, 'tests get no Kafka listener unless they ask');
    assert.throws(() => configForTests({ port: 9092, kafkaPort: 9092 }), /client port/);
    assert.throws(() => configForTests({ kafkaPort: -2 }), /kafkaPort/);
  });
});
