// Unit tests of the pure Raft core: the Ready/advance contract (what waits for persistence), elections with
// pre-vote, proposals and their refusals as values, fast backtracking hints, learners, membership rules,
// compaction and configuration validation. Multi-node behaviour under faults is covered by test/sim.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import {
  bootstrapEntries,
  defaultRaftLimits,
  type RaftConfig,
  RaftNode,
  type Ready,
  validateRaftConfig,
} from '../../src/core/raft/raft.js';
import { MemoryStorage } from '../../src/core/raft/storage.js';
import type { Message, NodeId } from '../../src/core/raft/types.js';

const data = (s: string): Uint8Array => new TextEncoder().encode(s);

function storageFor(voters: readonly NodeId[]): MemoryStorage {
  const disk = new MemoryStorage();
  const boot = bootstrapEntries(voters);
  disk.append(boot);
  disk.setHardState({ term: 1, vote: '', commit: boot.length });
  return disk;
}

function nodeOf(id: NodeId, disk: MemoryStorage, overrides: Partial<RaftConfig> = {}): RaftNode {
  // A constant "random" makes the election timeout exactly electionTimeoutTicks.
  return new RaftNode({ ...defaultRaftLimits, id, storage: disk, random: () => 0, ...overrides });
}

/** Carries out one Ready as a shell would, returning it. */
function persist(node: RaftNode, disk: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot !== undefined) disk.applySnapshot(rd.snapshot);
  if (rd.compaction !== undefined) disk.compact(rd.compaction);
  disk.append(rd.entries);
  if (rd.hardState !== undefined) disk.setHardState(rd.hardState);
  node.advance(rd);
  return rd;
}

function tickUntil(node: RaftNode, ticks: number): void {
  for (let i = 0; i < ticks; i++) node.tick();
}

test('a single voter elects itself and commits its entries only once they are persisted', () => {
  const disk = storageFor(['a']);
  const a = nodeOf('a', disk);
  const boot = persist(a, disk);
  assert.deepEqual(
    boot.committedEntries.map((e) => e.index),
    [1],
  );
  tickUntil(a, defaultRaftLimits.electionTimeoutTicks);
  assert.equal(a.status().role, 'leader');
  const result = a.propose(data('x'));
  assert.deepEqual(result, { kind: 'ok', index: 3, term: 2 });
  const first = a.ready();
  assert.deepEqual(
    first.entries.map((e) => e.index),
    [2, 3],
  );
  assert.equal(first.committedEntries.length, 0, 'nothing may apply before the leader persisted it');
  disk.append(first.entries);
  if (first.hardState !== undefined) disk.setHardState(first.hardState);
  a.advance(first);
  const second = persist(a, disk);
  assert.deepEqual(
    second.committedEntries.map((e) => e.index),
    [2, 3],
  );
  assert.equal(second.hardState?.commit, 3);
});

test('a follower refuses proposals with the leader it knows', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  b.step({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 0 });
  assert.deepEqual(b.propose(data('x')), { kind: 'not_leader', leaderId: 'a' });
});

test('a vote is sent only after the term and vote it grants are persisted', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  b.step({
    type: 'vote',
    from: 'a',
    to: 'b',
    term: 2,
    lastLogIndex: 3,
    lastLogTerm: 1,
    preVote: false,
    transfer: false,
  });
  const rd = b.ready();
  assert.equal(rd.messages.length, 0);
  assert.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 3 });
  const grant = rd.messagesAfterPersist[0];
  assert.equal(grant?.type, 'vote_response');
  assert.equal(grant.type === 'vote_response' && grant.granted, true);
});

test('pre-vote asks without raising anyone term, then the real election follows', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const a = nodeOf('a', disk);
  persist(a, disk);
  tickUntil(a, defaultRaftLimits.electionTimeoutTicks);
  assert.equal(a.status().role, 'pre_candidate');
  assert.equal(a.status().term, 1);
  const rd = persist(a, disk);
  const asks = [...rd.messages, ...rd.messagesAfterPersist].filter((m) => m.type === 'vote');
  assert.equal(asks.length, 2);
  for (const m of asks) assert.ok(m.type === 'vote' && m.preVote && m.term === 2);

  const bDisk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', bDisk);
  persist(b, bDisk);
  b.step(asks.find((m) => m.to === 'b')!);
  const answer = persist(b, bDisk);
  assert.equal(b.status().term, 1, 'a pre-vote changed the voter term');
  const granted = [...answer.messages, ...answer.messagesAfterPersist][0]!;
  a.step(granted);
  assert.equal(a.status().role, 'candidate');
  assert.equal(a.status().term, 2);
});

test('a voter that hears a live leader ignores pre-votes (leader lease)', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  b.step({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 0 });
  persist(b, disk);
  b.step({
    type: 'vote',
    from: 'c',
    to: 'b',
    term: 3,
    lastLogIndex: 9,
    lastLogTerm: 2,
    preVote: true,
    transfer: false,
  });
  assert.equal(b.hasReady(), false, 'the voter answered a candidate while in its leader lease');
});

/** A three-voter leader 'a' at term 2 whose log is persisted; messages for b and c are returned. */
function leaderOfThree(overrides: Partial<RaftConfig> = {}): { a: RaftNode; disk: MemoryStorage } {
  const disk = storageFor(['a', 'b', 'c']);
  const a = nodeOf('a', disk, { preVote: false, ...overrides });
  persist(a, disk);
  tickUntil(a, defaultRaftLimits.electionTimeoutTicks);
  persist(a, disk);
  a.step({ type: 'vote_response', from: 'b', to: 'a', term: 2, granted: true, preVote: false });
  assert.equal(a.status().role, 'leader');
  persist(a, disk);
  return { a, disk };
}

test('a leader whose term is durable sends appends at once, before persisting its new entries', () => {
  const { a, disk } = leaderOfThree();
  // b answers the leader's first probe, which moves it to streaming appends.
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 4,
    hintIndex: 0,
    hintTerm: 0,
  });
  persist(a, disk);
  a.propose(data('x'));
  const rd = a.ready();
  assert.ok(rd.messages.some((m) => m.type === 'append' && m.to === 'b' && m.entries[0]?.index === 5));
  assert.equal(rd.messagesAfterPersist.length, 0);
  disk.append(rd.entries);
  a.advance(rd);
});

test('the leader commits by counting only entries of its own term', () => {
  const { a, disk } = leaderOfThree();
  // b acknowledges only the bootstrap entries (term 1): not enough to commit anything new.
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 3,
    hintIndex: 0,
    hintTerm: 0,
  });
  assert.equal(a.status().commit, 3);
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 4,
    hintIndex: 0,
    hintTerm: 0,
  });
  assert.equal(a.status().commit, 4);
  persist(a, disk);
});

test('a learner acknowledgement does not count toward commit', () => {
  const disk = storageFor(['a', 'b']);
  const a = nodeOf('a', disk, { preVote: false });
  persist(a, disk);
  tickUntil(a, defaultRaftLimits.electionTimeoutTicks);
  a.step({ type: 'vote_response', from: 'b', to: 'a', term: 2, granted: true, preVote: false });
  persist(a, disk);
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 3,
    hintIndex: 0,
    hintTerm: 0,
  });
  persist(a, disk);
  assert.equal(a.status().commit, 3);
  assert.deepEqual(a.proposeConfChange({ op: 'add_learner', nodeId: 'l' }), {
    kind: 'ok',
    index: 4,
    term: 2,
  });
  persist(a, disk);
  a.propose(data('x'));
  persist(a, disk);
  a.step({
    type: 'append_response',
    from: 'l',
    to: 'a',
    term: 2,
    success: true,
    index: 5,
    hintIndex: 0,
    hintTerm: 0,
  });
  assert.equal(a.status().commit, 3, 'a learner made an entry committed');
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 5,
    hintIndex: 0,
    hintTerm: 0,
  });
  assert.equal(a.status().commit, 5);
});

test('a learner never campaigns', () => {
  const disk = new MemoryStorage();
  const l = nodeOf('l', disk);
  tickUntil(l, 10 * defaultRaftLimits.electionTimeoutTicks);
  assert.equal(l.status().role, 'follower');
  assert.equal(l.hasReady(), false);
});

test('proposals past the uncommitted bound are refused with queue_full', () => {
  const { a } = leaderOfThree({ uncommittedEntriesMax: 3 });
  assert.equal(a.propose(data('1')).kind, 'ok');
  assert.equal(a.propose(data('2')).kind, 'ok');
  assert.deepEqual(a.propose(data('3')), { kind: 'queue_full', uncommitted: 3 });
});

test('membership changes go one at a time and invalid ones are refused', () => {
  const { a, disk } = leaderOfThree();
  assert.deepEqual(a.proposeConfChange({ op: 'add_learner', nodeId: 'd' }), { kind: 'conf_change_pending' });
  a.step({
    type: 'append_response',
    from: 'b',
    to: 'a',
    term: 2,
    success: true,
    index: 4,
    hintIndex: 0,
    hintTerm: 0,
  });
  persist(a, disk);
  assert.deepEqual(a.proposeConfChange({ op: 'promote', nodeId: 'd' }), {
    kind: 'invalid_conf_change',
    reason: 'd is not a learner',
  });
  assert.equal(a.proposeConfChange({ op: 'add_learner', nodeId: 'd' }).kind, 'ok');
  assert.deepEqual(a.status().conf.learners, ['d'], 'the change takes effect when appended');
  assert.deepEqual(a.proposeConfChange({ op: 'promote', nodeId: 'd' }), { kind: 'conf_change_pending' });
});

test('a follower that truncates a conf entry reverts the membership it added', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  const conf = { index: 4, term: 2, kind: 'conf' as const, data: new Uint8Array([2, 100]) };
  b.step({
    type: 'append',
    from: 'a',
    to: 'b',
    term: 2,
    prevLogIndex: 3,
    prevLogTerm: 1,
    entries: [conf],
    commit: 3,
  });
  assert.deepEqual(b.status().conf.learners, ['d']);
  persist(b, disk);
  const other = { index: 4, term: 3, kind: 'normal' as const, data: data('y') };
  b.step({
    type: 'append',
    from: 'c',
    to: 'b',
    term: 3,
    prevLogIndex: 3,
    prevLogTerm: 1,
    entries: [other],
    commit: 3,
  });
  assert.deepEqual(b.status().conf.learners, []);
  persist(b, disk);
  assert.equal(disk.term(4), 3);
});

test('a reject carries a hint that lets the leader skip a whole conflicting term', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  const stale = [4, 5, 6, 7].map((index) => ({
    index,
    term: 2,
    kind: 'normal' as const,
    data: data(`s${index}`),
  }));
  b.step({
    type: 'append',
    from: 'a',
    to: 'b',
    term: 2,
    prevLogIndex: 3,
    prevLogTerm: 1,
    entries: stale,
    commit: 3,
  });
  persist(b, disk);
  // A leader of term 4 probes at index 9 with term 4: b holds nothing there; its last entry of a term <= 4 is 7.
  b.step({
    type: 'append',
    from: 'c',
    to: 'b',
    term: 4,
    prevLogIndex: 9,
    prevLogTerm: 4,
    entries: [],
    commit: 3,
  });
  const rd = persist(b, disk);
  const reject = rd.messagesAfterPersist.find(
    (m): m is Extract<Message, { type: 'append_response' }> => m.type === 'append_response',
  );
  assert.deepEqual(
    reject && { success: reject.success, index: reject.index, hint: [reject.hintIndex, reject.hintTerm] },
    { success: false, index: 9, hint: [7, 2] },
  );
  // Probed at 7 with term 3, the term-2 entries do not match: the hint is still 7/2, below term 3.
  b.step({
    type: 'append',
    from: 'c',
    to: 'b',
    term: 4,
    prevLogIndex: 7,
    prevLogTerm: 3,
    entries: [],
    commit: 3,
  });
  const again = persist(b, disk).messagesAfterPersist[0]!;
  assert.ok(
    again.type === 'append_response' && !again.success && again.hintIndex === 7 && again.hintTerm === 2,
  );
});

test('compaction hands out a snapshot with the membership at its index', () => {
  const disk = storageFor(['a']);
  const a = nodeOf('a', disk);
  persist(a, disk);
  tickUntil(a, defaultRaftLimits.electionTimeoutTicks);
  persist(a, disk);
  persist(a, disk);
  assert.deepEqual(a.compact(99, data('s')), { kind: 'not_applied', applied: 2 });
  const result = a.compact(2, data('state'));
  assert.equal(result.kind, 'ok');
  const rd = persist(a, disk);
  assert.equal(rd.compaction?.index, 2);
  assert.deepEqual(rd.compaction?.conf, { voters: ['a'], learners: [] });
  assert.equal(disk.firstIndex(), 3);
  assert.deepEqual(a.compact(2, data('again')), { kind: 'already_compacted' });
});

test('ready() twice without advance() is a bug', () => {
  const disk = storageFor(['a']);
  const a = nodeOf('a', disk);
  a.ready();
  assert.throws(() => a.ready(), AssertionError);
});

test('configuration validation reports every problem at once', () => {
  const problems = validateRaftConfig({
    ...defaultRaftLimits,
    id: '',
    storage: new MemoryStorage(),
    random: () => 0,
    electionTimeoutTicks: 1,
    heartbeatTimeoutTicks: 1,
    inflightAppendsMax: 0,
  });
  assert.deepEqual(problems, [
    'id must be a non-empty string',
    'electionTimeoutTicks must exceed heartbeatTimeoutTicks',
    'inflightAppendsMax must be >= 1',
  ]);
});

test('a leader that hears no quorum for an election timeout steps down and reports it', () => {
  const { a, disk } = leaderOfThree();
  tickUntil(a, 2 * defaultRaftLimits.electionTimeoutTicks);
  assert.equal(a.status().role, 'follower');
  const rd = persist(a, disk);
  assert.deepEqual(rd.softState, { leaderId: '', role: 'follower' });
});

test('a restarted node recovers term, vote, commit and membership from its storage alone', () => {
  const disk = storageFor(['a', 'b', 'c']);
  const b = nodeOf('b', disk);
  persist(b, disk);
  const learner = { index: 4, term: 2, kind: 'conf' as const, data: new Uint8Array([2, 100]) };
  b.step({
    type: 'append',
    from: 'a',
    to: 'b',
    term: 2,
    prevLogIndex: 3,
    prevLogTerm: 1,
    entries: [learner],
    commit: 4,
  });
  b.step({
    type: 'vote',
    from: 'c',
    to: 'b',
    term: 3,
    lastLogIndex: 4,
    lastLogTerm: 2,
    preVote: false,
    transfer: true,
  });
  persist(b, disk);
  const again = nodeOf('b', disk);
  const s = again.status();
  assert.deepEqual(
    { term: s.term, vote: s.vote, commit: s.commit, lastIndex: s.lastIndex, conf: s.conf },
    { term: 3, vote: 'c', commit: 4, lastIndex: 4, conf: { voters: ['a', 'b', 'c'], learners: ['d'] } },
  );
});
