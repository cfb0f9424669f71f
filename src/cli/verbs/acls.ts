// `broker acls list|add|remove` (kafka-acls.sh over the HTTP API) and `broker auth hash-token` (a token file
// entry for --auth-tokens-file). The ACL verbs need a principal with cluster:alter (or a super user): give
// its token with --token or BROKER_TOKEN. Runs on the main thread of the CLI process.
import { defineCommand } from 'citty';
import { aclOperations } from '../../core/security/acl.js';
import { hashToken, newToken } from '../../security/tokens.js';
import {
  BrokerClient,
  CliError,
  connectionArgs,
  type Json,
  type Output,
  processOutput,
  runVerb,
  table,
  verbExitCodes,
} from '../client.js';

const tokenArg = {
  token: { type: 'string', description: 'Bearer token [default: $BROKER_TOKEN]', valueHint: 'token' },
} as const;

const bindingArgs = {
  principal: { type: 'string', description: 'Principal, or * for every principal', valueHint: 'name' },
  topic: { type: 'string', description: 'A topic name (or prefix with --prefixed, or * for all)' },
  group: { type: 'string', description: 'A consumer group name (or prefix with --prefixed, or * for all)' },
  cluster: { type: 'boolean', description: 'The cluster resource (admin routes)' },
  prefixed: { type: 'boolean', description: 'The topic or group is a prefix (pattern_type prefixed)' },
  operation: {
    type: 'string',
    description: `One of ${aclOperations.join(', ')} (comma-separated for several)`,
  },
  deny: { type: 'boolean', description: 'A deny binding (deny wins over allow)' },
} as const;

interface BindingFlags {
  principal?: string | undefined;
  topic?: string | undefined;
  group?: string | undefined;
  cluster?: boolean | undefined;
  prefixed?: boolean | undefined;
  operation?: string | undefined;
  deny?: boolean | undefined;
}

/** The resource fields of the flags; undefined when none is named (a filter may leave it open). */
function resourceOf(args: BindingFlags): Record<string, string> | undefined {
  const named = [args.topic !== undefined, args.group !== undefined, args.cluster === true].filter(Boolean);
  if (named.length > 1) throw new CliError('name one of --topic, --group, --cluster', verbExitCodes.usage);
  const pattern = args.prefixed === true ? 'prefixed' : 'literal';
  if (args.topic !== undefined)
    return { resource_type: 'topic', resource_name: args.topic, pattern_type: pattern };
  if (args.group !== undefined)
    return { resource_type: 'group', resource_name: args.group, pattern_type: pattern };
  if (args.cluster === true)
    return { resource_type: 'cluster', resource_name: 'cluster', pattern_type: 'literal' };
  return undefined;
}

function operationsOf(text: string | undefined): string[] {
  const ops = (text ?? '').split(',').filter((o) => o.length > 0);
  for (const op of ops) {
    if (!(aclOperations as readonly string[]).includes(op)) {
      throw new CliError(
        `--operation: '${op}' is not one of ${aclOperations.join(', ')}`,
        verbExitCodes.usage,
      );
    }
  }
  return ops;
}

function printBindings(output: Output, bindings: Json[]): void {
  output.out(
    table(
      ['PRINCIPAL', 'PERMISSION', 'OPERATION', 'RESOURCE', 'PATTERN', 'NAME'],
      bindings.map((b) => [
        b.principal,
        b.permission,
        b.operation,
        b.resource_type,
        b.pattern_type,
        b.resource_name,
      ]),
    ),
  );
}

export function aclsCommand(output: Output = processOutput) {
  const env = process.env;
  const list = defineCommand({
    meta: { name: 'list', description: 'List ACL bindings (filtered by the flags given)' },
    args: { ...bindingArgs, ...tokenArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env, args.token);
        const query = new URLSearchParams();
        if (args.principal !== undefined) query.set('principal', args.principal);
        const resource = resourceOf(args);
        if (resource !== undefined) {
          query.set('resource_type', resource.resource_type!);
          query.set('resource_name', resource.resource_name!);
          if (args.prefixed === true) query.set('pattern_type', 'prefixed');
        }
        const ops = operationsOf(args.operation);
        if (ops.length === 1) query.set('operation', ops[0]!);
        if (args.deny === true) query.set('permission', 'deny');
        const answer = await client.request('GET', `/admin/acls${query.size > 0 ? `?${query}` : ''}`);
        if (args.json) return output.out(JSON.stringify(answer));
        printBindings(output, answer.acls as Json[]);
        if (answer.enforced === false)
          output.err('note: authentication is off on this broker: ACLs are not enforced');
      }),
  });
  const add = defineCommand({
    meta: { name: 'add', description: 'Add ACL bindings: --principal, one resource, --operation' },
    args: { ...bindingArgs, ...tokenArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env, args.token);
        const resource = resourceOf(args);
        const ops = operationsOf(args.operation);
        if (args.principal === undefined || resource === undefined || ops.length === 0) {
          throw new CliError(
            'add needs --principal, one of --topic/--group/--cluster, and --operation',
            verbExitCodes.usage,
          );
        }
        const acls = ops.map((operation) => ({
          principal: args.principal,
          ...resource,
          operation,
          permission: args.deny === true ? 'deny' : 'allow',
        }));
        const answer = await client.request('POST', '/admin/acls', { acls });
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(`Added ${answer.count} ACL binding(s) (${acls.length - answer.count} already present).`);
        if (answer.enforced === false)
          output.err('note: authentication is off on this broker: ACLs are not enforced');
      }),
  });
  const remove = defineCommand({
    meta: { name: 'remove', description: 'Remove the ACL bindings matching the flags (--all for every one)' },
    args: {
      ...bindingArgs,
      all: { type: 'boolean', description: 'Remove every binding' },
      ...tokenArg,
      ...connectionArgs,
    },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env, args.token);
        const query = new URLSearchParams();
        if (args.principal !== undefined) query.set('principal', args.principal);
        const resource = resourceOf(args);
        if (resource !== undefined) {
          query.set('resource_type', resource.resource_type!);
          query.set('resource_name', resource.resource_name!);
          query.set('pattern_type', resource.pattern_type!);
        }
        const ops = operationsOf(args.operation);
        if (ops.length > 1) throw new CliError('remove takes one --operation', verbExitCodes.usage);
        if (ops.length === 1) query.set('operation', ops[0]!);
        if (args.deny === true) query.set('permission', 'deny');
        if (args.all === true) query.set('all', 'true');
        if (query.size === 0) throw new CliError('remove needs a filter flag, or --all', verbExitCodes.usage);
        const answer = await client.request('DELETE', `/admin/acls?${query}`);
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(`Removed ${answer.count} ACL binding(s).`);
        if (answer.count > 0) printBindings(output, answer.deleted as Json[]);
      }),
  });
  return defineCommand({
    meta: { name: 'acls', description: 'List, add and remove ACL bindings (kafka-acls)' },
    subCommands: { list, add, remove },
  });
}

export function authCommand(output: Output = processOutput) {
  const hash = defineCommand({
    meta: {
      name: 'hash-token',
      description:
        'Print a --auth-tokens-file line for a principal: a new random token (shown once) or one read from standard input with --stdin',
    },
    args: {
      principal: { type: 'positional', description: 'The principal the token stands for', required: true },
      stdin: { type: 'boolean', description: 'Read the token from standard input instead of making one' },
    },
    run: ({ args }) =>
      runVerb(output, async () => {
        if (!/^[\x21-\x7e]{1,255}$/.test(args.principal) || args.principal === '*') {
          throw new CliError(
            'the principal must be 1-255 printable ASCII characters, not *',
            verbExitCodes.usage,
          );
        }
        let token: string;
        if (args.stdin === true) {
          const chunks: Buffer[] = [];
          for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
          token = Buffer.concat(chunks).toString('utf8').trim();
          if (token.length === 0) throw new CliError('no token on standard input', verbExitCodes.usage);
        } else {
          token = newToken();
          output.err(`token for ${args.principal} (give it to the client; it is not stored): ${token}`);
        }
        output.out(`${args.principal} ${await hashToken(token)}`);
      }),
  });
  return defineCommand({
    meta: { name: 'auth', description: 'Authentication helpers' },
    subCommands: { 'hash-token': hash },
  });
}
