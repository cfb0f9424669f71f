// The routes of ACL administration, beside the main route table and served and documented the same way (the
// OpenAPI details are in `openapi.ts`, the access rule, cluster:alter, in `route-access.ts`).
// Built on the acceptor (main) thread.
import type { AclAdmin } from '../broker/acl-admin.js';
import type { Route } from './server.js';

export function buildAclRoutes(acls: AclAdmin): Route[] {
  return [
    {
      method: 'get',
      pattern: '/admin/acls',
      operationId: 'listAcls',
      summary: 'ACL bindings matching a filter (all without one)',
      hasBody: false,
      handle: (q, r) => acls.list(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/acls',
      operationId: 'createAcls',
      summary: 'Add ACL bindings (through the metadata log: every node enforces them)',
      hasBody: true,
      handle: (q, r) => acls.create(q, r),
    },
    {
      method: 'delete',
      pattern: '/admin/acls',
      operationId: 'deleteAcls',
      summary: 'Remove the ACL bindings matching a filter',
      hasBody: false,
      handle: (q, r) => acls.delete(q, r),
    },
  ];
}
