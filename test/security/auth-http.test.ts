// Authentication and ACLs on a real broker process (bin/broker.mjs on 127.0.0.1 port 0, killed by PID):
// every HTTP route and WebSocket endpoint refuses a request with no token, a bad token and an expired JWT
// (401 with WWW-Authenticate) and one whose principal lacks the ACL (403 naming the permission), and nothing
// is written or changed by a refusal; /health and /metrics stay open; a principal with a prefix ACL reaches
// exactly the topics under the prefix; consumer groups need the group and every topic; denials are counted
// on /metrics; the acls CLI verb adds, lists and removes bindings; RS256 JWTs with an audience, and
// --metrics-require-auth, on a second broker started in this process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { errors } from '../../src/core/errors.js';
import { accessOf } from '../../src/http/route-access.js';
import { signJwt } from '../../src/security/jwt.js';
import { call, startTestBroker, tempDataDir } from '../broker/harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';
import { allRoutes, authFiles, bearer, jwtFor, pathOf, TOKENS } from './fixture.js';

const bin = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));
let broker: BrokerProcess;
let base: string;
let dirs: string[] = [];
const admin = bearer(TOKENS.admin);
const alice = bearer(TOKENS.alice);
const bob = bearer(TOKENS.bob);

before(async () => {
  const files = await authFiles();
  const dataDir = tempDataDir('broker-auth-data-');
  dirs = [files.dir, dataDir];
  broker = await spawnBroker(['--data-dir', dataDir, '--threads', '1', ...files.flags]);
  base = broker.base;
  for (const topic of ['team-a.orders', 'team-a.audit', 'team-b.orders']) {
    const created = await call(base, 'POST', `/topics/${topic}`, {}, admin);
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }
  // A committed offset, so the group exists and the refusals below have something they could change.
  const committed = await call(
    base,
    'POST',
    '/consumer-groups/g1/offsets/team-b.orders/0',
    { offset: 0 },
    admin,
  );
  assert.equal(committed.status, 200, JSON.stringify(committed.body));
  const granted = await call(
    base,
    'POST',
    '/admin/acls',
    {
      acls: [
        {
          principal: 'alice',
          resource_type: 'topic',
          pattern_type: 'prefixed',
          resource_name: 'team-a.',
          operation: 'write',
        },
        {
          principal: 'alice',
          resource_type: 'topic',
          pattern_type: 'prefixed',
          resource_name: 'team-a.',
          operation: 'read',
        },
        { principal: 'alice', resource_type: 'group', resource_name: 'g1', operation: 'read' },
      ],
    },
    admin,
  );
  assert.equal(granted.status, 201, JSON.stringify(granted.body));
  assert.equal(granted.body.count, 3);
});

after(async () => {
  if (broker !== undefined) await killBroker(broker);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const params = { topic: 'team-b.orders', group: 'g1', partition: '0', broker: 'broker-1' };

/** What the broker holds that a refused request could change: topics, offsets, group offsets, ACLs. */
async function state(): Promise<string> {
  const topics = await call(base, 'GET', '/topics', undefined, admin);
  const partition = await call(base, 'GET', '/topics/team-b.orders/partitions/0', undefined, admin);
  const topic = await call(base, 'GET', '/topics/team-b.orders', undefined, admin);
  const offsets = await call(base, 'GET', '/consumer-groups/g1/offsets/team-b.orders', undefined, admin);
  const acls = await call(base, 'GET', '/admin/acls', undefined, admin);
  return JSON.stringify([
    topics.body.topics,
    partition.body.high_watermark,
    topic.body.num_partitions,
    topic.body.config,
    offsets.body.offsets?.map(
      (o: { committed_offset?: unknown; offset?: unknown }) => o.committed_offset ?? o.offset,
    ),
    acls.body.acls,
  ]);
}

function bodyFor(operationId: string): unknown {
  if (operationId === 'registerConsumer') return { consumer_id: 'c1', topics: ['team-b.orders'] };
  if (operationId === 'createAcls') return { principal: 'bob', resource_type: 'cluster', operation: 'all' };
  return {
    value: 'x',
    offset: 5,
    consumer_id: 'c1',
    num_partitions: 3,
    retention_ms: 1,
    topic: 'team-b.orders',
    to: 'earliest',
  };
}

async function everyRoute(headers: Record<string, string>) {
  const answers = [];
  for (const route of allRoutes()) {
    let path = pathOf(route, params);
    if (route.operationId === 'createTopicByQuery') path += '?name=team-c';
    if (route.operationId === 'deleteAcls') path += '?all=true';
    const answer = await call(
      base,
      route.method.toUpperCase(),
      path,
      route.hasBody ? bodyFor(route.operationId) : undefined,
      headers,
    );
    answers.push({ route, answer });
  }
  return answers;
}

describe('HTTP routes', () => {
  test('without a token, with a bad token and with an expired JWT every route but /health and /metrics answers 401 and changes nothing', async () => {
    const before = await state();
    const cases: [string, Record<string, string>][] = [
      ['no token', {}],
      ['unknown token', bearer('not-a-token')],
      ['not a bearer header', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
      ['expired JWT', bearer(jwtFor('admin', -120))],
    ];
    for (const [what, headers] of cases) {
      for (const { route, answer } of await everyRoute(headers)) {
        const rule = accessOf(route.operationId)!;
        if (rule.kind === 'open' || rule.kind === 'metrics') {
          assert.equal(answer.status, 200, `${what} ${route.operationId}`);
          continue;
        }
        assert.equal(
          answer.status,
          401,
          `${what} ${route.method} ${route.pattern}: ${JSON.stringify(answer.body)}`,
        );
        assert.equal(answer.body.error_code, errors.unauthenticated.code);
        assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
    }
    assert.equal(await state(), before, 'nothing changed');
  });

  test('a principal without the ACLs gets 403 naming the missing permission on every guarded route, and nothing changes', async () => {
    const before = await state();
    for (const { route, answer } of await everyRoute(bob)) {
      const rule = accessOf(route.operationId)!;
      if (rule.kind !== 'needs') {
        assert.equal(answer.status, 200, `${route.operationId}: ${JSON.stringify(answer.body)}`);
        continue;
      }
      assert.equal(answer.status, 403, `${route.method} ${route.pattern}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error_code, errors.forbidden.code);
      assert.match(answer.body.message, /principal 'bob' lacks (topic|group|cluster):[a-z]+/);
    }
    assert.equal(await state(), before, 'nothing changed');
    // Lists answer, filtered to what bob may describe: nothing.
    assert.deepEqual((await call(base, 'GET', '/topics', undefined, bob)).body.topics, []);
    assert.deepEqual((await call(base, 'GET', '/consumer-groups', undefined, bob)).body.groups, []);
  });

  test('a prefix ACL reaches exactly the topics under the prefix', async () => {
    for (const topic of ['team-a.orders', 'team-a.audit']) {
      const produced = await call(base, 'POST', `/topics/${topic}/produce`, { value: 'hi' }, alice);
      assert.equal(produced.status, 201, JSON.stringify(produced.body));
      const consumed = await call(
        base,
        'GET',
        `/topics/${topic}/partitions/0/consume?offset=0`,
        undefined,
        alice,
      );
      assert.equal(consumed.body.messages.length, 1);
    }
    const refused = await call(base, 'POST', '/topics/team-b.orders/produce', { value: 'no' }, alice);
    assert.equal(refused.status, 403);
    assert.match(refused.body.message, /topic:write on 'team-b.orders'/);
    const created = await call(base, 'POST', '/topics/team-a.new', {}, alice);
    assert.equal(created.status, 403, 'write and read do not imply create');
    assert.deepEqual((await call(base, 'GET', '/topics', undefined, alice)).body.topics, [
      'team-a.audit',
      'team-a.orders',
    ]);
    // Describe is implied by read and write.
    assert.equal((await call(base, 'GET', '/topics/team-a.orders', undefined, alice)).status, 200);
    // A JWT for alice is the same principal.
    const viaJwt = await call(
      base,
      'POST',
      '/topics/team-a.orders/produce',
      { value: 'jwt' },
      bearer(jwtFor('alice', 60)),
    );
    assert.equal(viaJwt.status, 201, JSON.stringify(viaJwt.body));
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.`;
    assert.equal((await call(base, 'GET', '/topics', undefined, bearer(none))).status, 401);
  });

  test('consumer groups need group:read and topic:read of every topic', async () => {
    const joined = await call(
      base,
      'POST',
      '/consumer-groups/g1/register',
      { consumer_id: 'a1', topics: ['team-a.orders'] },
      alice,
    );
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    const other = await call(
      base,
      'POST',
      '/consumer-groups/g1/register',
      { consumer_id: 'a2', topics: ['team-a.orders', 'team-b.orders'] },
      alice,
    );
    assert.equal(other.status, 403);
    assert.match(other.body.message, /topic:read on 'team-b.orders'/);
    const wrongGroup = await call(
      base,
      'POST',
      '/consumer-groups/g2/register',
      { consumer_id: 'a3', topics: ['team-a.orders'] },
      alice,
    );
    assert.match(wrongGroup.body.message, /group:read on 'g2'/);
    const commit = await call(
      base,
      'POST',
      '/consumer-groups/g1/offsets/team-a.orders/0',
      { offset: 1, consumer_id: 'a1', generation: joined.body.generation },
      alice,
    );
    assert.equal(commit.status, 200, JSON.stringify(commit.body));
    await call(base, 'POST', '/consumer-groups/g1/leave', { consumer_id: 'a1' }, alice);
  });

  test('/metrics counts the denials by operation and resource type; ACL admin needs cluster:alter', async () => {
    const metrics = await fetch(`${base}/metrics`);
    const text = await metrics.text();
    assert.match(text, /broker_authorization_denials_total\{operation="write",resource_type="topic"\} [1-9]/);
    assert.match(text, /broker_authentication_failures_total\{reason="missing"\} [1-9]/);
    const grant = await call(
      base,
      'POST',
      '/admin/acls',
      { principal: 'bob', resource_type: 'cluster', operation: 'all' },
      alice,
    );
    assert.equal(grant.status, 403);
    assert.match(grant.body.message, /cluster:alter/);
  });
});

/** Opens a socket; resolves with it once open, or with the HTTP status and body of a refused upgrade. */
function openSocket(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket; frames: unknown[] } | { status: number; body: string; challenge: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${base.replace('http', 'ws')}${path}`, { headers });
    const frames: unknown[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString())));
    socket.once('open', () => resolve({ socket, frames }));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          challenge: String(res.headers['www-authenticate'] ?? ''),
        }),
      );
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('WebSocket endpoints', () => {
  test('every endpoint refuses the upgrade without a token, with a bad token or an expired JWT (401), and without the ACL (403)', async () => {
    const before = await state();
    const endpoints = [
      '/ws/produce/team-b.orders',
      '/ws/consume/team-b.orders?partition=0',
      '/ws/group/g1?topics=team-b.orders',
    ];
    for (const endpoint of endpoints) {
      const sep = endpoint.includes('?') ? '&' : '?';
      for (const [path, headers] of [
        [endpoint, {}],
        [endpoint, bearer('nope')],
        [`${endpoint}${sep}token=nope`, {}],
        [endpoint, bearer(jwtFor('admin', -60))],
      ] as const) {
        const answer = await openSocket(path, headers);
        assert.ok('status' in answer, `${path} opened`);
        assert.equal(answer.status, 401, path);
        assert.equal(JSON.parse(answer.body).error_code, errors.unauthenticated.code);
        assert.match(answer.challenge, /^Bearer/);
      }
      for (const [path, headers] of [
        [endpoint, bob],
        [`${endpoint}${sep}token=${TOKENS.alice}`, {}],
      ] as const) {
        const answer = await openSocket(path, headers);
        assert.ok('status' in answer, `${path} opened`);
        assert.equal(answer.status, 403, path);
        const body = JSON.parse(answer.body);
        assert.equal(body.error_code, errors.forbidden.code);
        assert.match(body.message, /lacks (topic|group):(read|write) on/);
      }
    }
    assert.equal(await state(), before, 'nothing changed');
  });

  test('with ?token= a browser-style client produces and consumes on its topics; a commit frame for another topic answers 40301', async () => {
    const produce = await openSocket(`/ws/produce/team-a.orders?token=${TOKENS.alice}`);
    assert.ok('socket' in produce);
    produce.socket.send(JSON.stringify({ value: 'over ws', context: 7 }));
    const ok = (await until('produce answer', () => produce.frames[0])) as Record<string, unknown>;
    assert.equal(ok.result, 'ok', JSON.stringify(ok));
    assert.equal(ok.context, 7);
    produce.socket.close();

    const group = await openSocket('/ws/group/g1?topics=team-a.orders&offset_reset=earliest', alice);
    assert.ok('socket' in group);
    await until('assignment', () => group.frames.find((f) => (f as { type?: string }).type === 'assignment'));
    group.socket.send(JSON.stringify({ type: 'commit', topic: 'team-b.orders', partition: 0, offset: 3 }));
    const refused = (await until('refusal', () =>
      group.frames.find((f) => (f as { error_code?: number }).error_code === errors.forbidden.code),
    )) as Record<string, unknown>;
    assert.match(String(refused.message), /topic:read on 'team-b.orders'/);
    group.socket.close();
    const offsets = await call(base, 'GET', '/consumer-groups/g1/offsets/team-b.orders/0', undefined, admin);
    assert.equal(offsets.body.offset, 0, 'the refused commit changed nothing');
  });
});

describe('WebSocket sockets authenticated with a JWT', () => {
  test('a socket is closed with 4401 when its JWT expires; one with a later exp stays open', async () => {
    const endpoint = '/ws/consume/team-b.orders?partition=0';
    const short = await openSocket(endpoint, bearer(jwtFor('admin', 2)));
    const long = await openSocket(endpoint, bearer(jwtFor('admin', 3600)));
    assert.ok('socket' in short && 'socket' in long);
    const openedAtMs = Date.now();
    const [code, reason] = await new Promise<[number, string]>((resolve) =>
      short.socket.once('close', (c, r) => resolve([c, r.toString()])),
    );
    assert.equal(code, errors.unauthenticated.wsCloseCode);
    assert.match(reason, /the bearer token expired at .*; reconnect with a new one/);
    assert.ok(Date.now() - openedAtMs <= 3_500, 'closed at the exp, not later');
    assert.equal(long.socket.readyState, WebSocket.OPEN, 'the socket whose token is valid stays open');
    long.socket.close();
  });
});

describe('acls CLI verb', () => {
  function cli(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? '', BROKER_URL: base },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
  }

  test('add, list and remove act on the broker; a principal without cluster:alter is refused with exit 1', async () => {
    const token = ['--token', TOKENS.admin];
    const added = await cli([
      'acls',
      'add',
      '--principal',
      'bob',
      '--topic',
      'team-b.',
      '--prefixed',
      '--operation',
      'read,write',
      ...token,
    ]);
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /Added 2 ACL binding/);
    const listed = await cli(['acls', 'list', '--principal', 'bob', ...token]);
    assert.match(listed.stdout, /bob\s+allow\s+read\s+topic\s+prefixed\s+team-b\./);
    assert.equal(
      (await call(base, 'POST', '/topics/team-b.orders/produce', { value: 'now' }, bob)).status,
      201,
    );
    const removed = await cli(['acls', 'remove', '--principal', 'bob', ...token]);
    assert.match(removed.stdout, /Removed 2 ACL binding/);
    assert.equal(
      (await call(base, 'POST', '/topics/team-b.orders/produce', { value: 'no' }, bob)).status,
      403,
    );
    const refused = await cli(['acls', 'list', '--token', TOKENS.bob]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /lacks cluster:alter/);
  });
});

describe('RS256 and --metrics-require-auth (a broker in this process)', () => {
  test('/metrics needs cluster:describe; RS256 JWTs authenticate HTTP and WebSocket clients', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = tempDataDir('broker-auth-rs-');
    const keyFile = join(dir, 'public.pem');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const sign = (sub: string, expiresInS: number) =>
      signJwt({ sub, exp: Math.floor(Date.now() / 1000) + expiresInS, aud: 'logs' }, 'RS256', pem);
    const local = await startTestBroker(
      {
        authJwtRs256PublicKeyFile: keyFile,
        authJwtAudience: 'logs',
        metricsRequireAuth: true,
        superUsers: ['ops'],
        threads: 1,
      },
      join(dir, 'data'),
    );
    try {
      assert.equal((await call(local.base, 'GET', '/metrics')).status, 401);
      assert.equal((await call(local.base, 'GET', '/health')).status, 200);
      const forbidden = await call(local.base, 'GET', '/metrics', undefined, bearer(sign('alice', 60)));
      assert.equal(forbidden.status, 403);
      assert.match(forbidden.body.message, /cluster:describe/);
      const scraped = await fetch(`${local.base}/metrics`, { headers: bearer(sign('ops', 60)) });
      assert.equal(scraped.status, 200);
      assert.match(
        await scraped.text(),
        /broker_authorization_denials_total\{operation="describe",resource_type="cluster"\} 1/,
      );
      assert.equal(
        (await call(local.base, 'GET', '/topics', undefined, bearer(sign('ops', -60)))).status,
        401,
      );
      const hs = signJwt(
        { sub: 'ops', aud: 'logs' },
        'HS256',
        publicKey.export({ type: 'spki', format: 'pem' }),
      );
      assert.equal(
        (await call(local.base, 'GET', '/topics', undefined, bearer(hs))).status,
        401,
        'alg confusion',
      );
      assert.equal((await call(local.base, 'POST', '/topics/rs', {}, bearer(sign('ops', 60)))).status, 201);
      const socket = new WebSocket(`${local.base.replace('http', 'ws')}/ws/produce/rs`, {
        headers: bearer(sign('ops', 60)),
      });
      const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
        socket.once('open', () => socket.send(JSON.stringify({ value: 'rs256' })));
        socket.once('message', (data) => resolve(JSON.parse(data.toString())));
        socket.once('error', reject);
      });
      assert.equal(answer.result, 'ok', JSON.stringify(answer));
      socket.close();
    } finally {
      await local.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
