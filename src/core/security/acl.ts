// Access control lists as in Kafka: a binding says that a principal (or every principal, `*`) is allowed or
// denied an operation on the resources a pattern names. This module owns the binding's shape, its validation
// (a value from a client or from the Raft log is untrusted), matching (of a request against bindings, and of
// bindings against a filter for listing and deletion) and the decision.
//
// The decision, Kafka's AclAuthorizer rules:
// - a super user is allowed everything;
// - a binding applies when its principal is the request's or `*`, its resource type is the request's, its
//   pattern matches the resource name (literal: equal, or the literal `*` matching every name; prefixed: the
//   name starts with it), and its operation is the request's or `all`;
// - a deny that applies wins over any allow;
// - otherwise an allow that applies allows; `read`, `write`, `delete` and `alter` imply `describe` (Kafka's
//   implied operations), so a consumer allowed to read a topic may also describe it;
// - otherwise the request is denied (no matching allow).
//
// Invariants: bindings in an AclSet are valid and unique (asserted); the set is immutable once built.
// Pure: no I/O, callable from any thread.
import { assert } from '../assert.js';

export const resourceTypes = ['topic', 'group', 'cluster'] as const;
export type ResourceType = (typeof resourceTypes)[number];

export const patternTypes = ['literal', 'prefixed'] as const;
export type PatternType = (typeof patternTypes)[number];

export const aclOperations = ['read', 'write', 'create', 'delete', 'describe', 'alter', 'all'] as const;
export type AclOperation = (typeof aclOperations)[number];
/** An operation a request needs: every operation but the `all` wildcard of bindings. */
export type Operation = Exclude<AclOperation, 'all'>;

export const permissions = ['allow', 'deny'] as const;
export type Permission = (typeof permissions)[number];

/** The one name of the cluster resource (Kafka's `kafka-cluster`). */
export const CLUSTER_RESOURCE = 'cluster';
/** The principal and literal resource name that stand for every principal / every resource. */
export const WILDCARD = '*';
/** Bounds on what the metadata log holds: bindings in the cluster, bytes of a name. */
export const ACL_BINDINGS_MAX = 10_000;
export const ACL_NAME_BYTES_MAX = 255;

export interface AclBinding {
  readonly principal: string;
  readonly resourceType: ResourceType;
  readonly patternType: PatternType;
  readonly resourceName: string;
  readonly operation: AclOperation;
  readonly permission: Permission;
}

/** What a request needs: one operation on one resource. */
export interface AccessRequirement {
  readonly resourceType: ResourceType;
  readonly resourceName: string;
  readonly operation: Operation;
}

/** Matches bindings for listing and deletion; an absent field matches any value. */
export interface AclFilter {
  readonly principal?: string;
  readonly resourceType?: ResourceType;
  readonly patternType?: PatternType;
  readonly resourceName?: string;
  readonly operation?: AclOperation;
  readonly permission?: Permission;
}

export type Decision =
  | { readonly allowed: true; readonly reason: 'super_user' | 'allowed' }
  | { readonly allowed: false; readonly reason: 'denied' | 'no_allow' };

const principalPattern = /^[\x21-\x7e]{1,255}$/;
const resourceNamePattern = /^[a-zA-Z0-9._-]{1,249}$/;

/** Why a value cannot be a binding, or null. Wildcards are checked too: `*` only as a literal pattern. */
export function bindingProblem(b: AclBinding): string | null {
  if (typeof b.principal !== 'string' || !principalPattern.test(b.principal)) {
    return 'principal must be 1-255 printable ASCII characters without spaces, or *';
  }
  if (!(resourceTypes as readonly string[]).includes(b.resourceType)) {
    return `resource_type must be one of ${resourceTypes.join(', ')}`;
  }
  if (!(patternTypes as readonly string[]).includes(b.patternType)) {
    return `pattern_type must be one of ${patternTypes.join(', ')}`;
  }
  if (!(aclOperations as readonly string[]).includes(b.operation)) {
    return `operation must be one of ${aclOperations.join(', ')}`;
  }
  if (!(permissions as readonly string[]).includes(b.permission)) {
    return `permission must be one of ${permissions.join(', ')}`;
  }
  if (typeof b.resourceName !== 'string') return 'resource_name must be a string';
  if (b.resourceType === 'cluster') {
    if (b.resourceName !== CLUSTER_RESOURCE || b.patternType !== 'literal') {
      return `a cluster binding names the literal resource '${CLUSTER_RESOURCE}'`;
    }
    return null;
  }
  if (b.resourceName === WILDCARD) {
    return b.patternType === 'literal'
      ? null
      : "'*' is a literal pattern (every name); a prefix cannot be '*'";
  }
  if (!resourceNamePattern.test(b.resourceName)) {
    return 'resource_name must be [a-zA-Z0-9._-]{1,249} (a topic or group name, or a prefix of one), or *';
  }
  return null;
}

function sameBinding(a: AclBinding, b: AclBinding): boolean {
  return (
    a.principal === b.principal &&
    a.resourceType === b.resourceType &&
    a.patternType === b.patternType &&
    a.resourceName === b.resourceName &&
    a.operation === b.operation &&
    a.permission === b.permission
  );
}

export function bindingKey(b: AclBinding): string {
  return [b.principal, b.resourceType, b.patternType, b.resourceName, b.operation, b.permission].join(
    '\u0000',
  );
}

/** True when `binding` matches every field the filter sets. */
export function filterMatches(filter: AclFilter, binding: AclBinding): boolean {
  return (
    (filter.principal === undefined || filter.principal === binding.principal) &&
    (filter.resourceType === undefined || filter.resourceType === binding.resourceType) &&
    (filter.patternType === undefined || filter.patternType === binding.patternType) &&
    (filter.resourceName === undefined || filter.resourceName === binding.resourceName) &&
    (filter.operation === undefined || filter.operation === binding.operation) &&
    (filter.permission === undefined || filter.permission === binding.permission)
  );
}

/** Operations whose allow also allows `describe` (Kafka's implied operations). */
const impliesDescribe: ReadonlySet<AclOperation> = new Set(['read', 'write', 'delete', 'alter']);

function patternMatches(b: AclBinding, name: string): boolean {
  if (b.patternType === 'prefixed') return name.startsWith(b.resourceName);
  return b.resourceName === WILDCARD || b.resourceName === name;
}

function operationCovers(bound: AclOperation, wanted: Operation, permission: Permission): boolean {
  if (bound === 'all' || bound === wanted) return true;
  // A deny of read does not deny describe (Kafka): implication widens allows only.
  return permission === 'allow' && wanted === 'describe' && impliesDescribe.has(bound);
}

/** An immutable, validated set of bindings, indexed by principal for the decision on the request path. */
export class AclSet {
  readonly bindings: readonly AclBinding[];
  private readonly byPrincipal = new Map<string, AclBinding[]>();

  constructor(bindings: readonly AclBinding[]) {
    const seen = new Set<string>();
    for (const b of bindings) {
      const problem = bindingProblem(b);
      assert(problem === null, `invalid ACL binding ${JSON.stringify(b)}: ${problem}`);
      const key = bindingKey(b);
      assert(!seen.has(key), `duplicate ACL binding ${JSON.stringify(b)}`);
      seen.add(key);
      const list = this.byPrincipal.get(b.principal) ?? [];
      list.push(b);
      this.byPrincipal.set(b.principal, list);
    }
    this.bindings = bindings;
  }

  get size(): number {
    return this.bindings.length;
  }

  has(b: AclBinding): boolean {
    return (this.byPrincipal.get(b.principal) ?? []).some((x) => sameBinding(x, b));
  }

  matching(filter: AclFilter): AclBinding[] {
    return this.bindings.filter((b) => filterMatches(filter, b));
  }

  /** Whether `principal` may do what `need` says; `superUsers` bypass the bindings. */
  decide(principal: string, need: AccessRequirement, superUsers: ReadonlySet<string>): Decision {
    if (superUsers.has(principal)) return { allowed: true, reason: 'super_user' };
    let allowed = false;
    for (const list of [this.byPrincipal.get(principal), this.byPrincipal.get(WILDCARD)]) {
      if (list === undefined) continue;
      for (const b of list) {
        if (b.resourceType !== need.resourceType) continue;
        if (!patternMatches(b, need.resourceName)) continue;
        if (!operationCovers(b.operation, need.operation, b.permission)) continue;
        if (b.permission === 'deny') return { allowed: false, reason: 'denied' };
        allowed = true;
      }
    }
    return allowed ? { allowed: true, reason: 'allowed' } : { allowed: false, reason: 'no_allow' };
  }
}

/** The text clients see for a missing permission, e.g. `topic:write on 'orders'`. */
export function describeRequirement(need: AccessRequirement): string {
  return need.resourceType === 'cluster'
    ? `cluster:${need.operation}`
    : `${need.resourceType}:${need.operation} on '${need.resourceName}'`;
}

/**
 * A binding from a client's JSON (snake_case fields, as the admin API and the CLI spell them), or why not.
 * `pattern_type` defaults to literal; a cluster binding's resource name defaults to `cluster`.
 */
export function bindingFromJson(value: unknown): AclBinding | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'an ACL must be a JSON object';
  const v = value as Record<string, unknown>;
  const known = new Set([
    'principal',
    'resource_type',
    'pattern_type',
    'resource_name',
    'operation',
    'permission',
  ]);
  for (const key of Object.keys(v)) if (!known.has(key)) return `unknown ACL field '${key}'`;
  const text = (key: string): string | undefined =>
    typeof v[key] === 'string' ? (v[key] as string) : undefined;
  const resourceType = text('resource_type');
  const binding = {
    principal: text('principal') ?? '',
    resourceType: (resourceType ?? '') as ResourceType,
    patternType: (text('pattern_type') ?? 'literal') as PatternType,
    resourceName: text('resource_name') ?? (resourceType === 'cluster' ? CLUSTER_RESOURCE : ''),
    operation: (text('operation') ?? '') as AclOperation,
    permission: (text('permission') ?? 'allow') as Permission,
  };
  return bindingProblem(binding) ?? binding;
}

/** A filter from query parameters or a JSON object (snake_case); unknown keys and bad values are refused. */
export function filterFromFields(fields: Readonly<Record<string, unknown>>): AclFilter | string {
  const out: Record<string, string> = {};
  const names: Record<string, [keyof AclFilter, readonly string[] | null]> = {
    principal: ['principal', null],
    resource_type: ['resourceType', resourceTypes],
    pattern_type: ['patternType', patternTypes],
    resource_name: ['resourceName', null],
    operation: ['operation', aclOperations],
    permission: ['permission', permissions],
  };
  for (const [key, value] of Object.entries(fields)) {
    // Own keys only: a query string's 'constructor' or '__proto__' would otherwise find Object.prototype's.
    const spec = Object.hasOwn(names, key) ? names[key] : undefined;
    if (spec === undefined) return `unknown ACL filter field '${key}'`;
    if (typeof value !== 'string' || value.length === 0 || value.length > ACL_NAME_BYTES_MAX) {
      return `${key} must be a non-empty string`;
    }
    if (spec[1] !== null && !spec[1].includes(value)) return `${key} must be one of ${spec[1].join(', ')}`;
    out[spec[0]] = value;
  }
  return out as AclFilter;
}

export function bindingToJson(b: AclBinding): Record<string, string> {
  return {
    principal: b.principal,
    resource_type: b.resourceType,
    pattern_type: b.patternType,
    resource_name: b.resourceName,
    operation: b.operation,
    permission: b.permission,
  };
}
