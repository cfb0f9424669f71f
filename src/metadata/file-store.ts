// The single-node MetadataStore: topic metadata in `<dataDir>/metadata.json`, replaced atomically on every
// change (write a temp file, fsync it, rename it over the old one, fsync the directory), so a crash leaves
// either the old or the new file and never a torn one. Changes are serialized: one write in flight at a time,
// at most `pendingChangesMax` waiting. Async file I/O only, so the acceptor's event loop never blocks on it.
// Owned by the thread that runs the acceptor; Raft replaces this class when the node joins a cluster.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../core/assert.js';
import { writeFileAtomically } from '../runtime/atomic-file.js';
import type {
  AlterTopicResult,
  CreateTopicRequest,
  CreateTopicResult,
  DeleteTopicResult,
  MetadataSnapshot,
  MetadataStore,
  TopicConfigChanges,
  TopicMetadata,
} from './types.js';

const fileFormatVersion = 1;
const pendingChangesMax = 1024;

interface FileContents {
  readonly format: number;
  readonly version: number;
  readonly topics: TopicMetadata[];
  /** The next idempotent producer id to hand out (absent in files written before producers existed). */
  readonly nextProducerId?: number;
}

export class MetadataQueueFullError extends Error {
  override readonly name = 'MetadataQueueFullError';
}

export class FileMetadataStore implements MetadataStore {
  private current: MetadataSnapshot;
  private readonly listeners: ((snapshot: MetadataSnapshot) => void)[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private pendingChanges = 0;

  private constructor(
    private readonly dir: string,
    private readonly nodeId: string,
    snapshot: MetadataSnapshot,
    private nextProducerId: number,
  ) {
    this.current = snapshot;
  }

  static async open(dataDir: string, nodeId: string): Promise<FileMetadataStore> {
    await mkdir(dataDir, { recursive: true });
    let snapshot: MetadataSnapshot = { version: 0, topics: new Map(), brokers: new Map() };
    let nextProducerId = 1;
    try {
      const text = await readFile(join(dataDir, 'metadata.json'), 'utf8');
      const parsed = JSON.parse(text) as FileContents;
      assert(parsed.format === fileFormatVersion, `metadata.json has unknown format ${parsed.format}`);
      snapshot = {
        version: parsed.version,
        topics: new Map(parsed.topics.map((t) => [t.name, upgradeTopic(t)])),
        brokers: new Map(),
      };
      nextProducerId = parsed.nextProducerId ?? 1;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return new FileMetadataStore(dataDir, nodeId, snapshot, nextProducerId);
  }

  snapshot(): MetadataSnapshot {
    return this.current;
  }

  onChange(listener: (snapshot: MetadataSnapshot) => void): void {
    this.listeners.push(listener);
  }

  createTopic(request: CreateTopicRequest, nowMs: number): Promise<CreateTopicResult> {
    return this.serialize(async () => {
      const existing = this.current.topics.get(request.name);
      if (existing !== undefined) {
        return sameSettings(existing, request)
          ? { kind: 'exists_same', topic: existing }
          : { kind: 'exists_different', topic: existing };
      }
      const topic: TopicMetadata = {
        name: request.name,
        topicSeq: 0,
        topicId: randomUUID(),
        numPartitions: request.numPartitions,
        replicationFactor: request.replicationFactor,
        rackAwareness: request.rackAwareness,
        config: request.config,
        partitions: Array.from({ length: request.numPartitions }, (_, partition) => ({
          partition,
          leader: this.nodeId,
          leaderEpoch: 0,
          partitionEpoch: 0,
          replicas: [this.nodeId],
          isr: [this.nodeId],
        })),
        createdAtMs: nowMs,
      };
      const topics = new Map(this.current.topics);
      topics.set(topic.name, topic);
      await this.commit({ version: this.current.version + 1, topics, brokers: this.current.brokers });
      return { kind: 'created', topic };
    });
  }

  deleteTopic(name: string): Promise<DeleteTopicResult> {
    return this.serialize(async () => {
      const topic = this.current.topics.get(name);
      if (topic === undefined) return { kind: 'unknown' };
      const topics = new Map(this.current.topics);
      topics.delete(name);
      await this.commit({ version: this.current.version + 1, topics, brokers: this.current.brokers });
      return { kind: 'deleted', topic };
    });
  }

  alterTopicConfig(name: string, changes: TopicConfigChanges): Promise<AlterTopicResult> {
    return this.serialize(async () => {
      const topic = this.current.topics.get(name);
      if (topic === undefined) return { kind: 'unknown' };
      const altered: TopicMetadata = {
        ...topic,
        config: {
          ...topic.config,
          retentionMs: changes.retentionMs ?? topic.config.retentionMs,
          retentionBytes: changes.retentionBytes ?? topic.config.retentionBytes,
          minInsyncReplicas: changes.minInsyncReplicas ?? topic.config.minInsyncReplicas,
          segmentBytes: changes.segmentBytes ?? topic.config.segmentBytes,
        },
      };
      const topics = new Map(this.current.topics);
      topics.set(name, altered);
      await this.commit({ version: this.current.version + 1, topics, brokers: this.current.brokers });
      return { kind: 'altered', topic: altered };
    });
  }

  allocateProducerId(): Promise<number> {
    return this.serialize(async () => {
      const id = this.nextProducerId;
      // The file holds the next id before this one is handed out: a crash can skip an id, never repeat one.
      await this.write(this.current, id + 1);
      this.nextProducerId = id + 1;
      return id;
    });
  }

  async close(): Promise<void> {
    await this.tail.catch(() => undefined);
  }

  private serialize<T>(change: () => Promise<T>): Promise<T> {
    if (this.pendingChanges >= pendingChangesMax) {
      return Promise.reject(
        new MetadataQueueFullError(`more than ${pendingChangesMax} metadata changes waiting`),
      );
    }
    this.pendingChanges += 1;
    const run = this.tail.then(change, change);
    this.tail = run.then(
      () => {
        this.pendingChanges -= 1;
      },
      () => {
        this.pendingChanges -= 1;
      },
    );
    return run;
  }

  private async commit(next: MetadataSnapshot): Promise<void> {
    assert(next.version === this.current.version + 1, 'metadata versions advance one at a time');
    await this.write(next, this.nextProducerId);
    // Only a durable change becomes visible: readers never see a topic that a crash could take back.
    this.current = next;
    for (const listener of this.listeners) listener(next);
  }

  private async write(snapshot: MetadataSnapshot, nextProducerId: number): Promise<void> {
    const contents: FileContents = {
      format: fileFormatVersion,
      version: snapshot.version,
      topics: [...snapshot.topics.values()],
      nextProducerId,
    };
    await writeFileAtomically(this.dir, 'metadata.json', JSON.stringify(contents, null, 2));
  }
}

/** A topic as the file holds it, with the fields added since (replication) at their old meaning. */
function upgradeTopic(t: TopicMetadata): TopicMetadata {
  return {
    ...t,
    topicSeq: t.topicSeq ?? 0,
    config: { ...t.config, uncleanLeaderElection: t.config.uncleanLeaderElection ?? false },
    partitions: t.partitions.map((p) => ({ ...p, partitionEpoch: p.partitionEpoch ?? p.leaderEpoch })),
  };
}

function sameSettings(topic: TopicMetadata, request: CreateTopicRequest): boolean {
  return (
    topic.numPartitions === request.numPartitions &&
    topic.replicationFactor === request.replicationFactor &&
    topic.rackAwareness === request.rackAwareness &&
    JSON.stringify(topic.config) === JSON.stringify(request.config)
  );
}
