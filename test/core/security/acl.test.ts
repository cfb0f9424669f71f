// The ACL decision (src/core/security/acl.ts) as Kafka's authorizer makes it: deny wins, no allow means
// denied, wildcards and prefixes match what they should and nothing else, super users bypass, and bindings
// from clients are validated.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AccessRequirement,
  type AclBinding,
  AclSet,
  bindingFromJson,
  filterFromFields,
} from '../../../src/core/security/acl.js';

const b = (over: Partial<AclBinding>): AclBinding => ({
  principal: 'alice',
  resourceType: 'topic',
  patternType: 'literal',
  resourceName: 'orders',
  operation: 'read',
  permission: 'allow',
  ...over,
});
const need = (
  resourceName: string,
  operation: AccessRequirement['operation'],
  resourceType: AccessRequirement['resourceType'] = 'topic',
): AccessRequirement => ({
  resourceType,
  resourceName,
  operation,
});
const none = new Set<string>();

describe('ACL decision', () => {
  test('no binding at all denies (no matching allow)', () => {
    const d = new AclSet([]).decide('alice', need('orders', 'read'), none);
    assert.deepEqual(d, { allowed: false, reason: 'no_allow' });
  });

  test('a literal allow covers exactly its name, operation and resource type', () => {
    const acls = new AclSet([b({})]);
    assert.equal(acls.decide('alice', need('orders', 'read'), none).allowed, true);
    assert.equal(acls.decide('alice', need('orders2', 'read'), none).allowed, false);
    assert.equal(acls.decide('alice', need('orders', 'write'), none).allowed, false);
    assert.equal(acls.decide('alice', need('orders', 'read', 'group'), none).allowed, false);
    assert.equal(acls.decide('bob', need('orders', 'read'), none).allowed, false);
  });

  test('deny wins over allow, whatever the order and however broad the allow', () => {
    const acls = new AclSet([
      b({ principal: '*', resourceName: '*', operation: 'all' }),
      b({ operation: 'write', permission: 'deny' }),
    ]);
    assert.deepEqual(acls.decide('alice', need('orders', 'write'), none), {
      allowed: false,
      reason: 'denied',
    });
    assert.equal(acls.decide('alice', need('orders', 'read'), none).allowed, true);
    assert.equal(acls.decide('bob', need('orders', 'write'), none).allowed, true);
  });

  test('a wildcard principal deny applies to everyone but super users', () => {
    const acls = new AclSet([
      b({ operation: 'all' }),
      b({ principal: '*', operation: 'delete', permission: 'deny' }),
    ]);
    assert.equal(acls.decide('alice', need('orders', 'delete'), none).allowed, false);
    assert.equal(acls.decide('root', need('orders', 'delete'), new Set(['root'])).allowed, true);
  });

  test('a prefix matches names starting with it and no others; * is every name only as a literal', () => {
    const acls = new AclSet([
      b({ patternType: 'prefixed', resourceName: 'team-a.', operation: 'write' }),
      b({ principal: 'bob', resourceName: '*', operation: 'read' }),
    ]);
    assert.equal(acls.decide('alice', need('team-a.orders', 'write'), none).allowed, true);
    assert.equal(acls.decide('alice', need('team-a.', 'write'), none).allowed, true);
    assert.equal(acls.decide('alice', need('team-b.orders', 'write'), none).allowed, false);
    assert.equal(acls.decide('alice', need('xteam-a.orders', 'write'), none).allowed, false);
    assert.equal(acls.decide('bob', need('anything', 'read'), none).allowed, true);
    assert.equal(acls.decide('bob', need('anything', 'write'), none).allowed, false);
  });

  test('read, write, delete and alter imply describe; a deny of read does not deny describe', () => {
    for (const operation of ['read', 'write', 'delete', 'alter'] as const) {
      assert.equal(
        new AclSet([b({ operation })]).decide('alice', need('orders', 'describe'), none).allowed,
        true,
      );
    }
    assert.equal(
      new AclSet([b({ operation: 'create' })]).decide('alice', need('orders', 'describe'), none).allowed,
      false,
    );
    const acls = new AclSet([b({ operation: 'describe' }), b({ operation: 'read', permission: 'deny' })]);
    assert.equal(acls.decide('alice', need('orders', 'describe'), none).allowed, true);
    assert.equal(acls.decide('alice', need('orders', 'read'), none).allowed, false);
  });

  test('all covers every operation; super users bypass even with no bindings', () => {
    const acls = new AclSet([b({ resourceType: 'cluster', resourceName: 'cluster', operation: 'all' })]);
    assert.equal(acls.decide('alice', need('cluster', 'alter', 'cluster'), none).allowed, true);
    assert.deepEqual(new AclSet([]).decide('root', need('x', 'delete'), new Set(['root'])), {
      allowed: true,
      reason: 'super_user',
    });
  });

  test('an invalid or duplicated binding in a set is a bug (asserted)', () => {
    assert.throws(() => new AclSet([b({}), b({})]), /duplicate/);
    assert.throws(() => new AclSet([b({ resourceName: 'a b' })]), /invalid/);
  });

  test('bindings from JSON are validated, with literal and allow as defaults', () => {
    assert.deepEqual(
      bindingFromJson({
        principal: 'alice',
        resource_type: 'topic',
        resource_name: 'orders',
        operation: 'read',
      }),
      b({}),
    );
    assert.deepEqual(bindingFromJson({ principal: 'ops', resource_type: 'cluster', operation: 'alter' }), {
      principal: 'ops',
      resourceType: 'cluster',
      patternType: 'literal',
      resourceName: 'cluster',
      operation: 'alter',
      permission: 'allow',
    });
    const bad: [unknown, RegExp][] = [
      [[], /JSON object/],
      [{ principal: 'a', resource_type: 'queue', resource_name: 'x', operation: 'read' }, /resource_type/],
      [{ principal: 'a', resource_type: 'topic', resource_name: 'x', operation: 'fly' }, /operation/],
      [
        {
          principal: 'a',
          resource_type: 'topic',
          resource_name: '*',
          pattern_type: 'prefixed',
          operation: 'read',
        },
        /prefix/,
      ],
      [{ principal: 'a b', resource_type: 'topic', resource_name: 'x', operation: 'read' }, /principal/],
      [{ principal: 'a', resource_type: 'topic', resource_name: 'a/b', operation: 'read' }, /resource_name/],
      [{ principal: 'a', resource_type: 'cluster', resource_name: 'other', operation: 'read' }, /cluster/],
      [
        { principal: 'a', resource_type: 'topic', resource_name: 'x', operation: 'read', host: '*' },
        /unknown ACL field/,
      ],
    ];
    for (const [value, pattern] of bad) {
      const result = bindingFromJson(value);
      assert.equal(typeof result, 'string', JSON.stringify(value));
      assert.match(result as string, pattern);
    }
  });

  test('filters match on the fields given and refuse unknown ones', () => {
    const acls = new AclSet([b({}), b({ principal: 'bob' }), b({ operation: 'write', permission: 'deny' })]);
    const f = filterFromFields({ principal: 'alice' });
    assert.ok(typeof f !== 'string');
    assert.equal(acls.matching(f).length, 2);
    const g = filterFromFields({ permission: 'deny' });
    assert.ok(typeof g !== 'string');
    assert.equal(acls.matching(g).length, 1);
    assert.equal(acls.matching({}).length, 3);
    assert.match(filterFromFields({ color: 'red' }) as string, /unknown/);
    assert.match(filterFromFields({ operation: 'fly' }) as string, /operation must be/);
  });
});
