// The ACL routes (Kafka's kafka-acls.sh over HTTP), all needing cluster:alter:
//   GET    /admin/acls?principal=&resource_type=&pattern_type=&resource_name=&operation=&permission=
//          the bindings matching the filter (every one without a filter), from this node's metadata
//   POST   /admin/acls   {"acls": [{"principal","resource_type","pattern_type"?,"resource_name","operation",
//                         "permission"?}]} (or one binding object): adds them through the metadata Raft log
//   DELETE /admin/acls?<filter>   removes every binding the filter matches; at least one filter field, or
//          `all=true` to remove every binding
// A change is durable and applied on this node when answered, and every node enforces it once it has applied
// the entry (milliseconds in a healthy cluster). Runs on the acceptor (main) thread only.

import { ControlError } from '../cluster/control-link.js';
import {
  type AclBinding,
  type AclFilter,
  bindingFromJson,
  bindingToJson,
  filterFromFields,
  filterMatches,
} from '../core/security/acl.js';
import { objectBodyOrReply } from '../http/object-body.js';
import type { HttpRequest, Reply } from '../http/server.js';

export interface AclAdminOptions {
  readonly bindings: () => readonly AclBinding[];
  readonly createAcls: (acls: readonly AclBinding[]) => Promise<readonly AclBinding[]>;
  readonly deleteAcls: (filter: AclFilter) => Promise<readonly AclBinding[]>;
  /** Whether ACLs are enforced (authentication on): answers say so, so that an operator is not misled. */
  readonly enforced: boolean;
}

/** Bindings one request may add (one Raft entry carries them). */
const bindingsPerRequestMax = 1000;

export class AclAdmin {
  constructor(private readonly options: AclAdminOptions) {}

  list(request: HttpRequest, reply: Reply): void {
    const filter = this.filterOrReply(request, reply, false);
    if (filter === null) return;
    const acls = this.options
      .bindings()
      .filter((b) => filterMatches(filter, b))
      .map(bindingToJson);
    reply.json(200, JSON.stringify({ acls, count: acls.length, enforced: this.options.enforced }));
  }

  create(request: HttpRequest, reply: Reply): void {
    const body = objectBodyOrReply(request, reply);
    if (body === null) return;
    const list = 'acls' in body ? body.acls : [body];
    if (!Array.isArray(list) || list.length === 0 || list.length > bindingsPerRequestMax) {
      return reply.error(
        'bad_request',
        `acls must be a non-empty array of at most ${bindingsPerRequestMax} bindings`,
      );
    }
    const bindings: AclBinding[] = [];
    for (const [i, entry] of list.entries()) {
      const binding = bindingFromJson(entry);
      if (typeof binding === 'string') return reply.error('bad_request', `acls[${i}]: ${binding}`);
      bindings.push(binding);
    }
    this.options.createAcls(bindings).then(
      (created) =>
        reply.json(
          201,
          JSON.stringify({
            created: created.map(bindingToJson),
            count: created.length,
            enforced: this.options.enforced,
          }),
        ),
      (error: unknown) => answerFailure(reply, error),
    );
  }

  delete(request: HttpRequest, reply: Reply): void {
    const filter = this.filterOrReply(request, reply, true);
    if (filter === null) return;
    this.options.deleteAcls(filter).then(
      (deleted) =>
        reply.json(200, JSON.stringify({ deleted: deleted.map(bindingToJson), count: deleted.length })),
      (error: unknown) => answerFailure(reply, error),
    );
  }

  private filterOrReply(request: HttpRequest, reply: Reply, forDelete: boolean): AclFilter | null {
    const fields: Record<string, string> = {};
    let all = false;
    for (const [key, value] of new URLSearchParams(request.query)) {
      if (key === 'all' && forDelete) all = value === 'true';
      else fields[key] = value;
    }
    const filter = filterFromFields(fields);
    if (typeof filter === 'string') {
      reply.error('bad_request', filter);
      return null;
    }
    if (forDelete && Object.keys(filter).length === 0 && !all) {
      reply.error(
        'bad_request',
        'give at least one filter field (principal, resource_type, ...), or all=true to remove every ACL',
      );
      return null;
    }
    return filter;
  }
}

function answerFailure(reply: Reply, error: unknown): void {
  if (error instanceof ControlError) {
    const f = error.failure;
    if (f.error === 'bad_request') return reply.error('bad_request', f.message);
    return reply.error(
      'no_leader',
      `the ACL change was not made${f.indefinite ? ' (or its outcome is unknown)' : ''}: ${f.message}`,
      f.indefinite ? { indefinite: true } : {},
    );
  }
  reply.error('internal', `the ACL change failed: ${String(error)}`);
}
