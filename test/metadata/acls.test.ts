// ACL bindings in the metadata state machine (issue 16): create and delete through the codec, as a set (a
// binding created twice is kept once), all or nothing on an invalid binding, bounded, carried in the snapshot
// view the acceptors enforce from, and in images: version 4 keeps them, a version 3 image (before ACLs, bytes
// as the version 3 codec wrote them) reads as having none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type MetadataCommand, MetadataStateMachine } from '../../src/core/metadata/state-machine.js';
import type { AclBinding } from '../../src/core/security/acl.js';
import {
  decodeAdminRequest,
  decodeCommand,
  decodeImage,
  encodeAdminRequest,
  encodeCommand,
  encodeImage,
} from '../../src/metadata/codec.js';

const alice: AclBinding = {
  principal: 'alice',
  resourceType: 'topic',
  patternType: 'prefixed',
  resourceName: 'team-a.',
  operation: 'write',
  permission: 'allow',
};
const bobDeny: AclBinding = {
  ...alice,
  principal: 'bob',
  patternType: 'literal',
  resourceName: '*',
  permission: 'deny',
};

let index = 0;
function apply(sm: MetadataStateMachine, command: MetadataCommand) {
  const decoded = decodeCommand(encodeCommand(command));
  assert.ok(decoded.ok, JSON.stringify(decoded));
  assert.deepEqual(decoded.value, command);
  return sm.apply(++index, decoded.value);
}

test('ACLs are created as a set, deleted by filter, and shown in the snapshot the acceptors follow', () => {
  const sm = new MetadataStateMachine();
  assert.deepEqual(apply(sm, { kind: 'create_acls', acls: [alice, bobDeny] }), {
    kind: 'acls_created',
    created: [alice, bobDeny],
  });
  assert.deepEqual(apply(sm, { kind: 'create_acls', acls: [alice] }), { kind: 'acls_created', created: [] });
  assert.deepEqual(sm.snapshot().acls, [alice, bobDeny]);
  const before = sm.snapshot();
  assert.deepEqual(apply(sm, { kind: 'delete_acls', filter: { principal: 'carol' } }), {
    kind: 'acls_deleted',
    deleted: [],
  });
  assert.deepEqual(
    apply(sm, { kind: 'delete_acls', filter: { permission: 'deny', resourceType: 'topic' } }),
    {
      kind: 'acls_deleted',
      deleted: [bobDeny],
    },
  );
  assert.notEqual(sm.snapshot(), before, 'a new view with a new version');
  assert.deepEqual(sm.snapshot().acls, [alice]);
  assert.deepEqual(apply(sm, { kind: 'delete_acls', filter: {} }).kind, 'acls_deleted');
  assert.deepEqual(sm.snapshot().acls, []);
});

test('a batch with one invalid binding changes nothing (a proposal from any node is checked again)', () => {
  const sm = new MetadataStateMachine();
  const bad = { ...alice, resourceName: 'no spaces allowed' };
  const result = sm.apply(++index, { kind: 'create_acls', acls: [bobDeny, bad] });
  assert.equal(result.kind, 'invalid');
  assert.deepEqual(sm.snapshot().acls, []);
});

test('images carry the ACLs (version 4); a version 3 image reads as having none', () => {
  const sm = new MetadataStateMachine();
  apply(sm, { kind: 'create_acls', acls: [alice, bobDeny] });
  const decoded = decodeImage(encodeImage(sm.image()));
  assert.ok(decoded.ok);
  const restored = MetadataStateMachine.fromImage(decoded.value);
  assert.deepEqual(restored.snapshot().acls, [alice, bobDeny]);
  assert.deepEqual(restored.image(), sm.image());
  // An empty image as the version 3 codec wrote it (applied index 9, next topic sequence 2).
  const v3 = decodeImage(Buffer.from('03120400000000', 'hex'));
  assert.ok(v3.ok, JSON.stringify(v3));
  assert.deepEqual([v3.value.appliedIndex, v3.value.nextTopicSeq, v3.value.acls], [9, 2, []]);
  assert.deepEqual(MetadataStateMachine.fromImage(v3.value).snapshot().acls, []);
});

test('the admin requests that carry ACL changes to the leader round-trip, a filter keeping only its fields', () => {
  for (const request of [
    { kind: 'create_acls', acls: [alice] },
    { kind: 'delete_acls', filter: { principal: 'bob', operation: 'write' } },
    { kind: 'delete_acls', filter: {} },
  ] as const) {
    const decoded = decodeAdminRequest(encodeAdminRequest(request));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, request);
  }
});
