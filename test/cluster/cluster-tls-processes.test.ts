// Three real broker processes with cluster TLS (a cluster CA made by the test with openssl, one certificate per
// node) and the cluster secret: they form a cluster and replicate over mutual TLS; outsiders get nowhere and
// are counted: a 4th broker with a certificate from another CA seeding through n1 never joins, a Raft vote
// request and a data-link fetch from a client without a certificate or with a foreign one are refused at the
// TLS handshake, before any protocol byte is read. SIGHUP re-reads the cluster certificates.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tls from 'node:tls';
import { ClusterTags, clusterTagBytes } from '../../src/cluster/port.js';
import { DATA_LINK_DEFAULTS, DataLinkClient, LinkFailureKind } from '../../src/link/data-link.js';
import { ClusterTls } from '../../src/security/cluster-tls.js';
import { type ClusterCertificates, makeClusterCertificates } from '../security/tls-fixture.js';
import {
  type ClusterNode,
  freeClusterPorts,
  http,
  killRaw,
  type RawBroker,
  spawnRaw,
  statusOf,
  TestCluster,
  waitFor,
  waitForOutput,
} from './processes.js';

/** `broker_cluster_auth_failures_total{transport,reason}` of a node, as `transport/reason` → count. */
async function refusals(node: ClusterNode): Promise<Map<string, number>> {
  const response = await fetch(`${node.process!.base}/metrics`, { signal: AbortSignal.timeout(3_000) });
  const out = new Map<string, number>();
  const line = /^broker_cluster_auth_failures_total\{transport="(\w+)",reason="(\w+)"\} (\d+)/gm;
  for (const match of (await response.text()).matchAll(line)) {
    out.set(`${match[1]}/${match[2]}`, Number(match[3]));
  }
  return out;
}

async function totalRefusals(nodes: readonly ClusterNode[], key: string): Promise<number> {
  const all = await Promise.all(nodes.map((n) => refusals(n)));
  return all.reduce((sum, m) => sum + (m.get(key) ?? 0), 0);
}

describe('cluster TLS, three real processes and outsiders', { timeout: 90_000 }, () => {
  let cluster: TestCluster;
  let certs: ClusterCertificates;
  let dir: string;
  let secretPath: string;
  let dataPorts: number[];
  let rogue: RawBroker | undefined;
  const records = ['r0', 'r1', 'r2'];

  const argsOf = (id: string, dataPort: number): string[] => [
    '--cluster-secret-file',
    secretPath,
    '--cluster-tls-cert-file',
    certs.nodes.get(id)!.cert,
    '--cluster-tls-key-file',
    certs.nodes.get(id)!.key,
    '--cluster-tls-ca-file',
    certs.caCert,
    '--data-port',
    String(dataPort),
  ];

  before(async () => {
    certs = makeClusterCertificates(['n1', 'n2', 'n3']);
    dir = certs.dir;
    secretPath = join(dir, 'secret');
    await writeFile(secretPath, `${randomBytes(48).toString('base64')}\n`);
    dataPorts = await freeClusterPorts(3);
    cluster = await TestCluster.start(1, argsOf('n1', dataPorts[0]!));
    for (const id of ['n2', 'n3']) {
      cluster.nodes.push({ id, dataDir: join(dir, id), clusterPort: 0, process: null });
    }
    await Promise.all(
      [1, 2].map((i) => cluster.startNode(cluster.nodes[i]!, argsOf(`n${i + 1}`, dataPorts[i]!))),
    );
  });
  after(async () => {
    if (rogue !== undefined) await killRaw(rogue);
    await cluster?.stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  async function agreed() {
    return waitFor('3 alive members, one leader, 3 voters', 20_000, async () => {
      const views = await Promise.all(cluster.nodes.map((n) => statusOf(n)));
      if (views.some((v) => v === null)) return undefined;
      const leader = views[0]!.raft.leader_id;
      const ok = views.every(
        (v) =>
          v!.members.filter((m) => m.state === 'alive').length === 3 &&
          v!.raft.leader_id === leader &&
          leader !== null &&
          v!.raft.voters.length === 3,
      );
      return ok ? views.map((v) => v!) : undefined;
    });
  }

  test('the refusal of a mismatched key or a partial set of files stops the start, named', async () => {
    const mismatched = spawnRaw([
      '--data-dir',
      join(dir, 'refused'),
      '--cluster-secret-file',
      secretPath,
      '--cluster-tls-cert-file',
      certs.nodes.get('n1')!.cert,
      '--cluster-tls-key-file',
      certs.nodes.get('n2')!.key,
      '--cluster-tls-ca-file',
      join(dir, 'no-such-ca.crt'),
    ]);
    assert.equal(await mismatched.exited, 1);
    assert.match(mismatched.output(), /does not match the certificate/);
    assert.match(mismatched.output(), /cannot read the cluster CA/, 'both problems at once');
    const partial = spawnRaw(['--data-dir', join(dir, 'refused'), '--cluster-tls-cert-file', certs.caCert]);
    assert.equal(await partial.exited, 2);
    assert.match(partial.output(), /cluster TLS needs all three files/);
  });

  test('the three nodes form a cluster and replicate with acks=all over mutual TLS', async () => {
    await agreed();
    const created = await http(cluster.nodes[0]!, 'POST', '/topics/sealed', {
      num_partitions: 1,
      replication_factor: 3,
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    for (const value of records) {
      const produced = await http(cluster.nodes[0]!, 'POST', '/topics/sealed/produce?acks=all', {
        value,
        partition: 0,
      });
      assert.equal(produced.status, 201, JSON.stringify(produced.json));
    }
    // Every follower fetched and fsynced all three over the TLS data link: ISR 3 at high watermark 3.
    await waitFor('every replica in sync', 15_000, async () => {
      const got = await http(cluster.nodes[0]!, 'GET', '/topics/sealed');
      const p = (got.json.partitions as { isr: string[]; high_watermark: number }[] | undefined)?.[0];
      return p !== undefined && p.isr.length === 3 && p.high_watermark === 3 ? true : undefined;
    });
    for (const node of cluster.nodes) {
      const got = await http(node, 'GET', '/topics/sealed/partitions/0/consume?offset=0&limit=10');
      assert.equal(got.status, 200);
      assert.deepEqual(
        (got.json.messages as { value: string }[]).map((m) => m.value),
        records,
      );
    }
  });

  test('a broker from another CA never joins; clients without the cluster CA get nothing; all counted', async () => {
    const before = await agreed();
    const termBefore = Math.max(...before.map((v) => v.raft.term));
    const [n1] = cluster.nodes as [ClusterNode];
    const rogueSecret = join(dir, 'rogue-secret');
    await writeFile(rogueSecret, `${randomBytes(48).toString('base64')}\n`);
    rogue = spawnRaw([
      '--node-id',
      'rogue',
      '--data-dir',
      join(dir, 'rogue'),
      '--cluster-port',
      '0',
      '--threads',
      '1',
      '--seeds',
      `127.0.0.1:${n1.clusterPort}`,
      '--cluster-secret-file',
      rogueSecret,
      '--cluster-tls-cert-file',
      certs.rogueCert,
      '--cluster-tls-key-file',
      certs.rogueKey,
      '--cluster-tls-ca-file',
      certs.rogueCaCert,
    ]);

    // Raft: a vote request at term 1000 from a TLS client without a certificate, and from one whose
    // certificate comes from another CA. The handshake fails; the tag is never read.
    const rogueMaterial = {
      cert: readFileSync(certs.rogueCert, 'utf8'),
      key: readFileSync(certs.rogueKey, 'utf8'),
    };
    for (const credentials of [{}, rogueMaterial]) {
      for (const node of cluster.nodes) {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: node.clusterPort,
          rejectUnauthorized: false,
          ...credentials,
        });
        socket.on('error', () => {});
        socket.write(Buffer.concat([clusterTagBytes(ClusterTags.raft), Buffer.from('vote at term 1000')]));
        await new Promise((resolve) => socket.once('close', resolve));
      }
    }
    // Data link: a replica fetch from a client with the foreign certificate, to every partition worker.
    const rogueTls = new ClusterTls({
      files: { certFile: certs.rogueCert, keyFile: certs.rogueKey, caFile: certs.rogueCaCert },
    });
    for (const port of dataPorts) {
      const client = new DataLinkClient(
        '127.0.0.1',
        port,
        'n2',
        { ...DATA_LINK_DEFAULTS },
        undefined,
        undefined,
        rogueTls,
      );
      const kind = await new Promise<number>((resolve) => {
        client.send(
          4,
          4,
          (out, _v, at) => out.writeUInt32LE(0, at),
          (k) => resolve(k),
          2_000,
        );
      });
      client.close();
      assert.equal(kind, LinkFailureKind, 'a link from another CA gets only a failure');
    }
    // And one without a certificate (a TLS client that trusts anything).
    for (const port of dataPorts) {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      socket.on('error', () => {});
      socket.write(Buffer.from('LBD1'));
      await new Promise((resolve) => socket.once('close', resolve));
    }

    const counted = await waitFor(
      'refusals by TLS on the cluster port and the data link',
      15_000,
      async () => {
        const nodes = cluster.nodes;
        const figures = {
          clusterPortNoCert: await totalRefusals(nodes, 'cluster_port/tls_certificate'),
          clusterPortAbandoned: await totalRefusals(nodes, 'cluster_port/tls_handshake'),
          dataLinkNoCert: await totalRefusals(nodes, 'data_link/tls_certificate'),
          dataLinkAbandoned: await totalRefusals(nodes, 'data_link/tls_handshake'),
        };
        // The cluster refuses 6 cluster-port clients' certificates (none, or a foreign one: these clients trust
        // anything) and sees the rogue broker's dials abandoned (it refuses the cluster's certificate and leaves);
        // on the data link, 3 clients without a certificate and 3 that refuse the cluster's.
        return figures.clusterPortNoCert >= 6 &&
          figures.clusterPortAbandoned >= 1 &&
          figures.dataLinkNoCert >= 3 &&
          figures.dataLinkAbandoned >= 3
          ? figures
          : undefined;
      },
    );
    console.log(`refusals counted: ${JSON.stringify(counted)}`);
    // The rogue broker refuses the cluster's certificate (and logs it); it is never a member or a voter.
    await waitForOutput(rogue, /cluster authentication failed/, 10_000);
    const after = await agreed();
    for (const view of after) {
      assert.deepEqual(view.members.map((m) => m.node_id).sort(), ['n1', 'n2', 'n3']);
      assert.deepEqual([...view.raft.voters].sort(), ['n1', 'n2', 'n3']);
      assert.ok(view.raft.term < 1000);
    }
    assert.equal(Math.max(...after.map((v) => v.raft.term)), termBefore, 'no new term');
    assert.doesNotMatch(rogue.output(), /broker serving/, 'the rogue broker never got a metadata leader');
    await killRaw(rogue);
    rogue = undefined;
    // The cluster still replicates.
    const produced = await http(cluster.nodes[2]!, 'POST', '/topics/sealed/produce?acks=all', {
      value: 'r3',
      partition: 0,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
  });

  test('SIGHUP re-reads the cluster certificates; the node keeps replicating', async () => {
    const n2 = cluster.nodes[1]!;
    process.kill(n2.process!.child.pid!, 'SIGHUP');
    await waitFor('the reload logged', 5_000, async () =>
      /cluster TLS certificates reloaded/.test(n2.process!.output()) ? true : undefined,
    );
    const produced = await http(cluster.nodes[0]!, 'POST', '/topics/sealed/produce?acks=all', {
      value: 'r4',
      partition: 0,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
  });
});
