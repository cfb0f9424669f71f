// The Raft vocabulary shared by the core, its storage and the transport: log entries, snapshots, the
// persistent hard state, membership (ConfState, ConfChange) and every message as one discriminated union.
// Fields are plain numbers, strings, booleans, Uint8Array and arrays so that an avsc schema can describe each
// message one to one. Invariants: an entry's `index` and `term` are positive except for the dummy entry at a
// snapshot's index; node ids are non-empty strings and '' means "none".
// Pure: callable from any thread.

import { assert } from '../assert.js';

/** A node id; '' stands for "no node" (no vote, no known leader). */
export type NodeId = string;
export const noNode: NodeId = '';

export type EntryKind = 'normal' | 'conf';

/** One log entry. `conf` entries carry an encoded ConfChange and take effect as soon as they are appended. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** The membership: voters decide elections and commits; learners only receive the log. Disjoint sets. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** A state-machine image covering every entry up to and including `index`. */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
  readonly data: Uint8Array;
}

/** What must be durable before the node answers anyone: Raft's persistent state plus the commit index. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const emptyHardState: HardState = { term: 0, vote: noNode, commit: 0 };

export const raftRoles = ['follower', 'pre_candidate', 'candidate', 'leader'] as const;
export type RaftRole = (typeof raftRoles)[number];

/** Volatile state worth reporting to the application (not persisted). */
export interface SoftState {
  readonly leaderId: NodeId;
  readonly role: RaftRole;
}

export type ConfChangeOp = 'add_voter' | 'add_learner' | 'promote' | 'remove';

/** A single-server membership change. */
export interface ConfChange {
  readonly op: ConfChangeOp;
  readonly nodeId: NodeId;
}

// Wire form of a ConfChange inside a `conf` entry: byte 0 is the op code, the rest the UTF-8 node id.
const confOpCodes = { add_voter: 1, add_learner: 2, promote: 3, remove: 4 } as const;
const confOpsByCode: readonly (ConfChangeOp | undefined)[] = [
  undefined,
  'add_voter',
  'add_learner',
  'promote',
  'remove',
];
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = utf8Encoder.encode(change.nodeId);
  const bytes = new Uint8Array(1 + id.length);
  bytes[0] = confOpCodes[change.op];
  bytes.set(id, 1);
  return bytes;
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const op = confOpsByCode[bytes[0] ?? 0];
  assert(op !== undefined, `conf entry with unknown op code ${bytes[0]}`);
  const nodeId = utf8Decoder.decode(bytes.subarray(1));
  assert(nodeId !== noNode, 'conf entry without a node id');
  return { op, nodeId };
}

/**
 * Applies one single-server change to a membership. Returns the new membership, or a reason string when the
 * change is not valid against `conf` (the leader refuses such a proposal; a committed one is a bug).
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const id = change.nodeId;
  const isVoter = conf.voters.includes(id);
  const isLearner = conf.learners.includes(id);
  switch (change.op) {
    case 'add_voter':
      if (isVoter || isLearner) return `${id} is already a member`;
      return { voters: [...conf.voters, id], learners: conf.learners };
    case 'add_learner':
      if (isVoter || isLearner) return `${id} is already a member`;
      return { voters: conf.voters, learners: [...conf.learners, id] };
    case 'promote':
      if (!isLearner) return `${id} is not a learner`;
      return { voters: [...conf.voters, id], learners: conf.learners.filter((n) => n !== id) };
    case 'remove':
      if (!isVoter && !isLearner) return `${id} is not a member`;
      if (isVoter && conf.voters.length === 1) return `${id} is the last voter`;
      return { voters: conf.voters.filter((n) => n !== id), learners: conf.learners.filter((n) => n !== id) };
  }
}

/** Asks for votes (or, with `preVote`, whether votes would be granted without anyone changing term). */
export interface VoteRequest {
  readonly type: 'vote';
  readonly from: NodeId;
  readonly to: NodeId;
  /** The term the candidate is (or, for a pre-vote, would be) campaigning in. */
  readonly term: number;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly preVote: boolean;
  /** Set by a leadership transfer: the voter ignores its leader lease. */
  readonly transfer: boolean;
}

export interface VoteResponse {
  readonly type: 'vote_response';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly granted: boolean;
  readonly preVote: boolean;
}

export interface AppendRequest {
  readonly type: 'append';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Answer to an append or a snapshot. On success `index` is the last index known to match the leader. On a
 * reject `index` is the rejected prevLogIndex and (hintIndex, hintTerm) is the follower's last entry at or
 * before it whose term is not above the leader's prevLogTerm: the leader skips whole terms with it.
 */
export interface AppendResponse {
  readonly type: 'append_response';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly success: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

export interface Heartbeat {
  readonly type: 'heartbeat';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** min(follower's match, leader's commit): never beyond what the follower is known to hold. */
  readonly commit: number;
}

export interface HeartbeatResponse {
  readonly type: 'heartbeat_response';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export interface InstallSnapshot {
  readonly type: 'snapshot';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly snapshot: Snapshot;
}

/** Tells an up-to-date follower to campaign at once (leadership transfer). */
export interface TimeoutNow {
  readonly type: 'timeout_now';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow;

export type MessageType = Message['type'];
