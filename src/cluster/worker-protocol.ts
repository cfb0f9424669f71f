// The messages between the control thread and each partition worker, on a MessagePort of their own (structured
// clone): the metadata a worker reconciles its replicas from, and the ISR changes its partition leaders ask the
// metadata Raft for. Replicated records never travel here: they go over the data link between workers.
//
// Invariants: `metadata` messages reach a worker in version order; the first one a worker gets is full (every
// topic and broker), later ones carry only the topics whose metadata changed and the ids of those that went
// away, with the whole broker registry (small) each time; every `alter_isr` gets exactly one
// `alter_isr_result` with its request id. Types only: importable from any thread.
import type { IsrChange } from '../core/metadata/state-machine.js';
import type { BrokerRegistration, TopicMetadata } from '../metadata/types.js';

export type ControlToWorker =
  | {
      readonly type: 'metadata';
      readonly version: number;
      /** True for the first message: `topics` is every topic. */
      readonly full: boolean;
      readonly brokers: readonly BrokerRegistration[];
      /** Topics created or changed since the previous message (all of them when `full`). */
      readonly topics: readonly TopicMetadata[];
      /** Ids of topics deleted since the previous message. */
      readonly deletedTopicIds: readonly string[];
    }
  | {
      readonly type: 'alter_isr_result';
      readonly requestId: number;
      /** Per change, in order: null when applied, else why it was refused; null entirely when `failure`. */
      readonly refusals: readonly (string | null)[] | null;
      /** The proposal could not be made or its outcome is unknown; nothing to assume about it. */
      readonly failure: string | null;
    };

export type WorkerToControl = {
  readonly type: 'alter_isr';
  readonly requestId: number;
  readonly changes: readonly IsrChange[];
};
