// The Raft wire encoding: the avsc schema of every message in src/core/raft/types.ts (registered here and
// nowhere else), behind one version byte.
//
//   offset  size  field
//   0       1     wire version (RAFT_WIRE_VERSION)
//   1       n     Avro binary of a union of one record per message type; the union's branch index names the
//                 type and the record holds every other field of the message
//
// Invariants: `decodeMessage` never throws, whatever the bytes (a frame from a socket is untrusted input):
// garbage is a value `{ ok: false, reason, detail }`. A message it accepts has only integers in
// [0, wireIntegerMax], non-empty `from`/`to`, known entry kinds and no bytes left over, and it encodes back
// to the same bytes. Byte fields decode to plain `Uint8Array`s that own their memory (not views of the frame).
// Pure functions with module-level immutable types: callable from any thread.
import type avro from 'avsc';
import { assert } from '../core/assert.js';
import type { ConfState, Entry, Message, MessageType, Snapshot } from '../core/raft/types.js';
import {
  type DecodeFailure,
  decodeVersioned,
  encodeVersioned,
  field,
  forUntrustedSchema,
  record,
} from '../wire/avsc-bounded.js';

/** Raised when a schema changes incompatibly; a node drops frames of any other version. */
export const RAFT_WIRE_VERSION = 1;

/**
 * The largest term or index the wire carries: Avro zigzag-encodes a long as 2n, and avsc keeps that exact
 * only up to 2^53, so values stop at 2^52 - 1 (at a million entries a second, 142 years of log).
 */
export const wireIntegerMax = 2 ** 52 - 1;

const entrySchema = record('Entry', [
  field('index', 'long'),
  field('term', 'long'),
  field('kind', { type: 'enum', name: 'EntryKind', symbols: ['normal', 'conf'] }),
  field('data', 'bytes'),
]);

const snapshotSchema = record('Snapshot', [
  field('index', 'long'),
  field('term', 'long'),
  field(
    'conf',
    record('ConfState', [
      field('voters', { type: 'array', items: 'string' }),
      field('learners', { type: 'array', items: 'string' }),
    ]),
  ),
  field('data', 'bytes'),
]);

const addressed = [field('from', 'string'), field('to', 'string'), field('term', 'long')];

/** One record per message type, named by the type: the union branch says which message follows. */
const messageSchemas = [
  record('vote', [
    ...addressed,
    field('lastLogIndex', 'long'),
    field('lastLogTerm', 'long'),
    field('preVote', 'boolean'),
    field('transfer', 'boolean'),
  ]),
  record('vote_response', [...addressed, field('granted', 'boolean'), field('preVote', 'boolean')]),
  record('append', [
    ...addressed,
    field('prevLogIndex', 'long'),
    field('prevLogTerm', 'long'),
    field('entries', { type: 'array', items: entrySchema }),
    field('commit', 'long'),
  ]),
  record('append_response', [
    ...addressed,
    field('success', 'boolean'),
    field('index', 'long'),
    field('hintIndex', 'long'),
    field('hintTerm', 'long'),
  ]),
  record('heartbeat', [...addressed, field('commit', 'long')]),
  record('heartbeat_response', [...addressed]),
  record('snapshot', [...addressed, field('snapshot', snapshotSchema)]),
  record('timeout_now', [...addressed]),
];

/** The avsc type of a message (without the version byte); exported for tools that inspect captured bytes. */
export const messageType: avro.Type = forUntrustedSchema(messageSchemas);

const messageTypes: readonly MessageType[] = [
  'vote',
  'vote_response',
  'append',
  'append_response',
  'heartbeat',
  'heartbeat_response',
  'snapshot',
  'timeout_now',
];

export function encodeMessage(m: Message): Buffer {
  const { type, ...fields } = m;
  // avsc's `bytes` wants a Buffer: wrap the Uint8Arrays (no copy) where messages carry bytes.
  const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.length);
  let value: object = fields;
  if (m.type === 'append') {
    value = { ...fields, entries: m.entries.map((e) => ({ ...e, data: asBuffer(e.data) })) };
  } else if (m.type === 'snapshot') {
    value = { ...fields, snapshot: { ...m.snapshot, data: asBuffer(m.snapshot.data) } };
  }
  return encodeVersioned(RAFT_WIRE_VERSION, messageType, { [type]: value });
}

export type { DecodeFailure };

export type DecodeResult =
  | { readonly ok: true; readonly message: Message }
  | { readonly ok: false; readonly reason: DecodeFailure; readonly detail: string };

export function decodeMessage(buf: Uint8Array): DecodeResult {
  const decoded = decodeVersioned(buf, RAFT_WIRE_VERSION, messageType);
  if (!decoded.ok) return decoded;
  try {
    return { ok: true, message: toMessage(decoded.raw as Raw) };
  } catch (error) {
    if (error instanceof InvalidField) return { ok: false, reason: 'invalid_field', detail: error.message };
    throw error;
  }
}

// --- from avsc values to the core's plain values -----------------------------------------------------------

type Raw = Record<string, unknown>;
class InvalidField extends Error {}

function num(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > wireIntegerMax) {
    throw new InvalidField(`${name} is not an integer in [0, 2^52)`);
  }
  return value;
}

function nodeId(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new InvalidField(`${name} is empty`);
  return value;
}

function bytes(value: unknown): Uint8Array {
  assert(Buffer.isBuffer(value), 'avsc bytes field is not a Buffer');
  return new Uint8Array(value);
}

function toEntry(r: Raw): Entry {
  return {
    index: num(r.index, 'entry index'),
    term: num(r.term, 'entry term'),
    kind: r.kind as Entry['kind'],
    data: bytes(r.data),
  };
}

function toSnapshot(r: Raw): Snapshot {
  const conf = r.conf as Raw;
  const ids = (list: unknown, name: string) => (list as unknown[]).map((id) => nodeId(id, name));
  const state: ConfState = { voters: ids(conf.voters, 'voter'), learners: ids(conf.learners, 'learner') };
  return {
    index: num(r.index, 'snapshot index'),
    term: num(r.term, 'snapshot term'),
    conf: state,
    data: bytes(r.data),
  };
}

function toMessage(wrapped: Raw): Message {
  // A wrapped union value is an object with exactly one key: the branch (record) name.
  const [name] = Object.keys(wrapped);
  const type = messageTypes.find((t) => t === name);
  assert(type !== undefined, `avsc decoded an unknown branch ${name}`);
  const r = wrapped[type] as Raw;
  const from = nodeId(r.from, 'from');
  const to = nodeId(r.to, 'to');
  const term = num(r.term, 'term');
  switch (type) {
    case 'vote':
      return {
        type,
        from,
        to,
        term,
        lastLogIndex: num(r.lastLogIndex, 'lastLogIndex'),
        lastLogTerm: num(r.lastLogTerm, 'lastLogTerm'),
        preVote: r.preVote as boolean,
        transfer: r.transfer as boolean,
      };
    case 'vote_response':
      return { type, from, to, term, granted: r.granted as boolean, preVote: r.preVote as boolean };
    case 'append':
      return {
        type,
        from,
        to,
        term,
        prevLogIndex: num(r.prevLogIndex, 'prevLogIndex'),
        prevLogTerm: num(r.prevLogTerm, 'prevLogTerm'),
        entries: (r.entries as Raw[]).map(toEntry),
        commit: num(r.commit, 'commit'),
      };
    case 'append_response':
      return {
        type,
        from,
        to,
        term,
        success: r.success as boolean,
        index: num(r.index, 'index'),
        hintIndex: num(r.hintIndex, 'hintIndex'),
        hintTerm: num(r.hintTerm, 'hintTerm'),
      };
    case 'heartbeat':
      return { type, from, to, term, commit: num(r.commit, 'commit') };
    case 'heartbeat_response':
    case 'timeout_now':
      return { type, from, to, term };
    case 'snapshot':
      return { type, from, to, term, snapshot: toSnapshot(r.snapshot as Raw) };
  }
}
