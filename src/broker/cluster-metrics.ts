// kafka_exporter's metrics, computed at scrape time from what this node knows: the cluster metadata (brokers,
// topics, per-partition leader, replicas and ISR, the same on every node) and the consumer groups this node
// coordinates, with lag only where this node has the partition's high watermark (it leads the partition;
// until replication lands no other node knows it). Names and labels follow kafka_exporter
// (`kafka_topic_partition_in_sync_replica{topic,partition}`, `kafka_consumergroup_lag{consumergroup,topic,
// partition}`, ...) so its dashboards and alerts carry over. One difference: broker ids here are names, not
// numbers, so `kafka_topic_partition_leader` carries the leader in a `leader` label with the value 1 (0 and
// an empty label while the partition has no leader) instead of the id as the value.
// Where kafka_exporter has no name, Kafka's own JMX names as Strimzi's exporter renders them are used:
// `kafka_server_replicamanager_underreplicatedpartitions` (partitions this broker leads whose ISR is short),
// `kafka_controller_kafkacontroller_offlinepartitionscount` (partitions without a leader, cluster-wide), and
// `kafka_server_replicamanager_isrshrinks_total` / `..._isrexpands_total` (ISR changes of partitions this
// broker leads, counted from the metadata changes it applies).
// Runs on the acceptor (main) thread only.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { GroupRegistry } from '../core/groups/registry.js';
import type { MetadataSnapshot, PartitionAssignment } from '../metadata/types.js';

export interface ClusterMetricsSources {
  readonly nodeId: string;
  readonly snapshot: () => MetadataSnapshot;
  /** Subscribes to every metadata change (for the ISR change counters). */
  readonly onSnapshot: (listener: (snapshot: MetadataSnapshot) => void) => void;
  /** The high watermark of a partition this node leads, or undefined. */
  readonly highWatermark: (topic: string, partition: number) => number | undefined;
  readonly groups: () => GroupRegistry;
}

export function registerClusterMetrics(registry: Registry, sources: ClusterMetricsSources): void {
  const registers = [registry];
  const gauge = (
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: (set: (labels: Record<string, string>, value: number) => void) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        collect((labels, value) => this.set(labels, value));
      },
    });
  };
  const partitions = (each: (topic: string, p: PartitionAssignment) => void): void => {
    for (const t of sources.snapshot().topics.values()) for (const p of t.partitions) each(t.name, p);
  };

  gauge(
    'kafka_brokers',
    'Brokers in the cluster that are not fenced (alive as far as the controller knows)',
    [],
    (set) => set({}, [...sources.snapshot().brokers.values()].filter((b) => !b.fenced).length),
  );
  gauge(
    'kafka_broker_info',
    'One series per registered broker, with its address and rack',
    ['id', 'address', 'rack'],
    (set) => {
      for (const b of sources.snapshot().brokers.values()) {
        set({ id: b.id, address: `${b.httpHost}:${b.httpPort}`, rack: b.rack }, b.fenced ? 0 : 1);
      }
    },
  );
  gauge('kafka_topic_partitions', 'Partitions of each topic', ['topic'], (set) => {
    for (const t of sources.snapshot().topics.values()) set({ topic: t.name }, t.numPartitions);
  });
  gauge('kafka_topic_partition_replicas', 'Replicas of each partition', ['topic', 'partition'], (set) =>
    partitions((topic, p) => set({ topic, partition: String(p.partition) }, p.replicas.length)),
  );
  gauge(
    'kafka_topic_partition_in_sync_replica',
    'In-sync replicas of each partition',
    ['topic', 'partition'],
    (set) => partitions((topic, p) => set({ topic, partition: String(p.partition) }, p.isr.length)),
  );
  gauge(
    'kafka_topic_partition_leader',
    'The leader of each partition, in the leader label (1; 0 with an empty label while it has none)',
    ['topic', 'partition', 'leader'],
    (set) =>
      partitions((topic, p) =>
        set({ topic, partition: String(p.partition), leader: p.leader }, p.leader === '' ? 0 : 1),
      ),
  );
  gauge(
    'kafka_topic_partition_leader_is_preferred',
    '1 when the partition is led by its preferred (first) replica',
    ['topic', 'partition'],
    (set) =>
      partitions((topic, p) =>
        set({ topic, partition: String(p.partition) }, p.leader !== '' && p.leader === p.replicas[0] ? 1 : 0),
      ),
  );
  gauge(
    'kafka_topic_partition_under_replicated_partition',
    '1 when the partition has fewer in-sync replicas than replicas',
    ['topic', 'partition'],
    (set) =>
      partitions((topic, p) =>
        set({ topic, partition: String(p.partition) }, p.isr.length < p.replicas.length ? 1 : 0),
      ),
  );
  gauge(
    'kafka_server_replicamanager_underreplicatedpartitions',
    'Partitions led by this broker with fewer in-sync replicas than replicas',
    [],
    (set) => {
      let count = 0;
      partitions((_t, p) => {
        if (p.leader === sources.nodeId && p.isr.length < p.replicas.length) count++;
      });
      set({}, count);
    },
  );
  gauge(
    'kafka_controller_kafkacontroller_offlinepartitionscount',
    'Partitions without a leader in the whole cluster: they take no reads or writes',
    [],
    (set) => {
      let count = 0;
      partitions((_t, p) => {
        if (p.leader === '') count++;
      });
      set({}, count);
    },
  );
  const shrinks = new Counter({
    name: 'kafka_server_replicamanager_isrshrinks_total',
    help: 'Times the ISR of a partition led by this broker shrank (a follower fell out)',
    registers,
  });
  const expands = new Counter({
    name: 'kafka_server_replicamanager_isrexpands_total',
    help: 'Times the ISR of a partition led by this broker grew (a follower caught up)',
    registers,
  });
  const isrs = new IsrTracker(sources.nodeId);
  isrs.observe(sources.snapshot());
  sources.onSnapshot((snapshot) => {
    const changed = isrs.observe(snapshot);
    if (changed.shrinks > 0) shrinks.inc(changed.shrinks);
    if (changed.expands > 0) expands.inc(changed.expands);
  });
  gauge(
    'kafka_topic_partition_leader_epoch',
    'Leader epoch of each partition: it grows by one with every leadership change',
    ['topic', 'partition'],
    (set) => partitions((topic, p) => set({ topic, partition: String(p.partition) }, p.leaderEpoch)),
  );

  // Consumer groups: committed offsets everywhere this node coordinates the group, lag where it also has the
  // partition's high watermark.
  const eachOffset = (
    each: (
      labels: { consumergroup: string; topic: string; partition: string },
      offset: number,
      lag: number | undefined,
    ) => void,
  ): void => {
    const groups = sources.groups();
    for (const group of groups.listGroups()) {
      const described = groups.describe(group, sources.highWatermark);
      for (const o of described?.offsets ?? []) {
        each({ consumergroup: group, topic: o.topic, partition: String(o.partition) }, o.offset, o.lag);
      }
    }
  };
  gauge(
    'kafka_consumergroup_current_offset',
    'Committed offset of each consumer group, per partition',
    ['consumergroup', 'topic', 'partition'],
    (set) => eachOffset((labels, offset) => set(labels, offset)),
  );
  gauge(
    'kafka_consumergroup_current_offset_sum',
    'Sum of the committed offsets of each consumer group, per topic',
    ['consumergroup', 'topic'],
    (set) => {
      const sums = new Map<string, { consumergroup: string; topic: string; sum: number }>();
      eachOffset((labels, offset) => {
        const key = `${labels.consumergroup}\u0000${labels.topic}`;
        const entry = sums.get(key) ?? { consumergroup: labels.consumergroup, topic: labels.topic, sum: 0 };
        entry.sum += offset;
        sums.set(key, entry);
      });
      for (const e of sums.values()) set({ consumergroup: e.consumergroup, topic: e.topic }, e.sum);
    },
  );
  gauge(
    'kafka_consumergroup_lag',
    'High watermark minus committed offset, per partition (where this node leads the partition)',
    ['consumergroup', 'topic', 'partition'],
    (set) =>
      eachOffset((labels, _offset, lag) => {
        if (lag !== undefined) set(labels, lag);
      }),
  );
  gauge(
    'kafka_consumergroup_lag_sum',
    'Lag of each consumer group summed over the partitions of a topic that this node leads',
    ['consumergroup', 'topic'],
    (set) => {
      const sums = new Map<string, { consumergroup: string; topic: string; sum: number }>();
      eachOffset((labels, _offset, lag) => {
        if (lag === undefined) return;
        const key = `${labels.consumergroup}\u0000${labels.topic}`;
        const entry = sums.get(key) ?? { consumergroup: labels.consumergroup, topic: labels.topic, sum: 0 };
        entry.sum += lag;
        sums.set(key, entry);
      });
      for (const e of sums.values()) set({ consumergroup: e.consumergroup, topic: e.topic }, e.sum);
    },
  );
  gauge('kafka_consumergroup_members', 'Members of each consumer group', ['consumergroup'], (set) => {
    const groups = sources.groups();
    for (const group of groups.listGroups()) {
      set({ consumergroup: group }, groups.describe(group)?.members.length ?? 0);
    }
  });
}

/**
 * Counts ISR changes between successive metadata snapshots, for partitions `nodeId` leads afterwards (the
 * leader proposes them). A partition whose leader changed is not counted: an election is not an ISR change.
 */
export class IsrTracker {
  private last = new Map<string, { leader: string; isr: number }>();

  constructor(private readonly nodeId: string) {}

  observe(snapshot: MetadataSnapshot): { shrinks: number; expands: number } {
    const next = new Map<string, { leader: string; isr: number }>();
    let shrinks = 0;
    let expands = 0;
    for (const t of snapshot.topics.values()) {
      for (const p of t.partitions) {
        const key = `${t.topicId}/${p.partition}`;
        const now = { leader: p.leader, isr: p.isr.length };
        next.set(key, now);
        const before = this.last.get(key);
        if (before === undefined || p.leader !== this.nodeId || before.leader !== p.leader) continue;
        if (now.isr < before.isr) shrinks++;
        else if (now.isr > before.isr) expands++;
      }
    }
    this.last = next;
    return { shrinks, expands };
  }
}
