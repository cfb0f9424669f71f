// The access table (src/http/route-access.ts) declares every route the broker serves, and nothing else: a
// route added without an entry fails here (and the server refuses to start with it). Every route but /health
// and /metrics needs credentials; every admin route needs a cluster permission.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessOf, routeAccess } from '../../src/http/route-access.js';
import { allRoutes } from './fixture.js';

test('every served route has exactly one entry in the access table, and every entry is served', () => {
  const routes = allRoutes();
  const ids = routes.map((r) => r.operationId);
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  assert.deepEqual([...ids].sort(), Object.keys(routeAccess).sort());
  for (const route of routes) assert.notEqual(accessOf(route.operationId), undefined, route.operationId);
});

test('only /health is open and /metrics open by default; /admin routes need the cluster resource', () => {
  for (const route of allRoutes()) {
    const rule = accessOf(route.operationId)!;
    if (route.pattern === '/health') assert.equal(rule.kind, 'open');
    else if (route.pattern === '/metrics') assert.equal(rule.kind, 'metrics');
    else assert.ok(rule.kind === 'needs' || rule.kind === 'authenticated', route.operationId);
    if (route.pattern.startsWith('/admin') || route.pattern === '/cluster/status') {
      assert.equal(rule.kind, 'needs');
      if (rule.kind !== 'needs') continue;
      const needs = rule.needs({ params: ['b1'], query: new URLSearchParams(), body: null });
      assert.deepEqual(
        needs.map((n) => n.resourceType),
        ['cluster'],
        route.operationId,
      );
    }
  }
});

test('consumer-group routes need the group and the topic, as Kafka does', () => {
  const byId = (id: keyof typeof routeAccess) => {
    const rule = routeAccess[id];
    assert.equal(rule.kind, 'needs');
    return rule;
  };
  const commit = byId('commitOffset');
  assert.deepEqual(commit.needs({ params: ['g', 't', '0'], query: new URLSearchParams(), body: null }), [
    { resourceType: 'group', resourceName: 'g', operation: 'read' },
    { resourceType: 'topic', resourceName: 't', operation: 'read' },
  ]);
  const register = byId('registerConsumer');
  assert.deepEqual(
    register
      .needs({ params: ['g'], query: new URLSearchParams(), body: { topics: ['a', 'b', 3] } })
      .map((n) => `${n.resourceType}:${n.operation}:${n.resourceName}`),
    ['group:read:g', 'topic:read:a', 'topic:read:b'],
  );
});
