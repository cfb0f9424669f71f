// What a WebSocket group member (`/ws/group/{g}`) asks of the groups' coordinator: join, heartbeat, leave,
// commit, and the committed offset to start a partition from. Where this node coordinates, the calls go to the
// local GroupsService; elsewhere they go to the coordinator's REST routes over HTTP (marked as forwarded, so
// the coordinator never passes them on again). The choice is made per call, so a member follows the
// coordinator when it moves: its next heartbeat meets a coordinator that does not know it (`unknownMember`),
// and the session joins again under the same member id. Every refusal is a value, never a throw. A remote call
// carries the member's credentials (`authorization`, the socket's bearer token), so the coordinator checks the
// member's own principal; a token that expires ends the membership at its next call.
// Runs on the acceptor (main) thread only.
import { type ErrorName, errorNames, errors } from '../core/errors.js';
import type { CoordinatorTarget } from './group-forward.js';
import { type GroupsService, persistFailureAnswer, refusal } from './groups-service.js';

export interface MemberRefusal {
  readonly kind: 'refused';
  readonly error: ErrorName;
  readonly message: string;
  /** The coordinator does not know the member (it moved, or the session expired): join again. */
  readonly unknownMember: boolean;
  /** Nothing was done and trying again later may work (no coordinator right now). */
  readonly retriable: boolean;
  /** A commit whose outcome is unknown. */
  readonly indefinite: boolean;
}

export interface MemberState {
  readonly kind: 'ok';
  readonly generation: number;
  readonly assignments: Readonly<Record<string, readonly number[]>>;
  readonly rebalance: boolean;
}

export type JoinAnswer = (MemberState & { readonly sessionTimeoutMs: number }) | MemberRefusal;
export type HeartbeatAnswer = MemberState | MemberRefusal;
export type CommitAnswer = { readonly kind: 'ok' } | MemberRefusal;

/** A call to the coordinator waits this long (a commit waits for the metadata log: 5 s at most). */
const callTimeoutMs = 10_000;

export class GroupMembers {
  constructor(
    private readonly local: GroupsService,
    private readonly target: () => CoordinatorTarget,
    private readonly selfId: string,
    /** 'https' when the client ports serve TLS (the coordinator's certificate is checked by Node's CA store). */
    private readonly scheme: 'http' | 'https' = 'http',
  ) {}

  /** True when the calls are served by this node's registry (its membership events are the group's). */
  get isLocal(): boolean {
    return this.target().kind === 'here';
  }

  async join(
    group: string,
    memberId: string,
    topics: readonly string[],
    authorization = '',
  ): Promise<JoinAnswer> {
    const target = this.target();
    if (target.kind === 'here') {
      const result = this.local.joinMember(group, memberId, topics);
      if (result.kind !== 'ok') return localRefusal(result);
      return { ...localState(result), sessionTimeoutMs: result.sessionTimeoutMs };
    }
    const answer = await this.call(
      target,
      'POST',
      `/consumer-groups/${enc(group)}/register`,
      { consumer_id: memberId, topics },
      authorization,
    );
    if (answer.kind === 'refused') return answer;
    return { ...remoteState(answer.body), sessionTimeoutMs: Number(answer.body.session_timeout_ms) };
  }

  async heartbeat(group: string, memberId: string, authorization = ''): Promise<HeartbeatAnswer> {
    const target = this.target();
    if (target.kind === 'here') {
      const result = this.local.heartbeatMember(group, memberId);
      return result.kind === 'ok' ? localState(result) : localRefusal(result);
    }
    const answer = await this.call(
      target,
      'POST',
      `/consumer-groups/${enc(group)}/heartbeat`,
      { consumer_id: memberId },
      authorization,
    );
    return answer.kind === 'refused' ? answer : remoteState(answer.body);
  }

  async leave(group: string, memberId: string, authorization = ''): Promise<void> {
    const target = this.target();
    if (target.kind === 'here') return this.local.leaveMember(group, memberId);
    await this.call(
      target,
      'POST',
      `/consumer-groups/${enc(group)}/leave`,
      { consumer_id: memberId },
      authorization,
    );
  }

  async commit(
    group: string,
    memberId: string,
    generation: number,
    topic: string,
    partition: number,
    offset: number,
    authorization = '',
  ): Promise<CommitAnswer> {
    const target = this.target();
    if (target.kind === 'here') {
      try {
        const result = await this.local.commitMember(group, memberId, generation, topic, partition, offset);
        return result.kind === 'ok' ? { kind: 'ok' } : localRefusal(result);
      } catch (error) {
        const [name, message, indefinite] = persistFailureAnswer(error);
        return refused(name, message, { indefinite });
      }
    }
    const answer = await this.call(
      target,
      'POST',
      `/consumer-groups/${enc(group)}/offsets/${enc(topic)}/${partition}`,
      { offset, consumer_id: memberId, generation },
      authorization,
    );
    return answer.kind === 'refused' ? answer : { kind: 'ok' };
  }

  /** The group's committed offset of a partition; undefined when none, null when the coordinator is away. */
  async committedOffset(
    group: string,
    topic: string,
    partition: number,
    authorization = '',
  ): Promise<number | undefined | null> {
    const target = this.target();
    if (target.kind === 'here') return this.local.registry.committedOffset(group, topic, partition);
    const answer = await this.call(
      target,
      'GET',
      `/consumer-groups/${enc(group)}/offsets/${enc(topic)}/${partition}`,
      null,
      authorization,
    );
    if (answer.kind === 'ok') return Number(answer.body.offset);
    return answer.error === 'unknown_group' ? undefined : null;
  }

  private async call(
    target: CoordinatorTarget,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    authorization: string,
  ): Promise<{ kind: 'ok'; body: Record<string, unknown> } | MemberRefusal> {
    if (target.kind === 'none') {
      return refused('coordinator_not_available', `no consumer-group coordinator now: ${target.reason}`, {
        retriable: true,
      });
    }
    if (target.kind === 'here') throw new Error('a local call went to HTTP');
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-forwarded-by-broker': this.selfId,
      };
      if (authorization !== '') headers.authorization = authorization;
      const init: RequestInit = {
        method,
        headers,
        signal: AbortSignal.timeout(callTimeoutMs),
      };
      if (body !== null) init.body = JSON.stringify(body);
      const response = await fetch(`${this.scheme}://${target.host}:${target.port}${path}`, init);
      const json = (await response.json()) as Record<string, unknown>;
      if (response.ok) return { kind: 'ok', body: json };
      const name = nameOfCode(Number(json.error_code));
      return refused(name, String(json.message ?? `HTTP ${response.status}`), {
        retriable: errors[name].retriable,
        indefinite: json.indefinite === true,
      });
    } catch (error) {
      return refused(
        'coordinator_not_available',
        `the group coordinator ${target.brokerId} did not answer (${(error as Error).message})`,
        { retriable: true, indefinite: method === 'POST' },
      );
    }
  }
}

function localState(result: {
  readonly generation: number;
  readonly assignments: Readonly<Record<string, readonly number[]>>;
  readonly rebalance: boolean;
}): MemberState {
  return {
    kind: 'ok',
    generation: result.generation,
    assignments: result.assignments,
    rebalance: result.rebalance,
  };
}

/** A member's state from the coordinator's JSON answer (register or heartbeat). */
function remoteState(body: Record<string, unknown>): MemberState {
  return localState({
    generation: Number(body.generation),
    assignments: (body.assignments ?? {}) as Record<string, number[]>,
    rebalance: body.rebalance === true,
  });
}

function enc(text: string): string {
  return encodeURIComponent(text);
}

function nameOfCode(code: number): ErrorName {
  return errorNames.find((name) => errors[name].code === code) ?? 'internal';
}

function refused(
  error: ErrorName,
  message: string,
  options: { retriable?: boolean; indefinite?: boolean } = {},
): MemberRefusal {
  return {
    kind: 'refused',
    error,
    message,
    unknownMember: error === 'unknown_group',
    retriable: options.retriable ?? errors[error].retriable,
    indefinite: options.indefinite ?? false,
  };
}

function localRefusal(result: { kind: string } & Record<string, unknown>): MemberRefusal {
  const [name, message] = refusal(result);
  return refused(name, message);
}
