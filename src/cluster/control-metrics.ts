// The control thread's figures (control-stats.ts) as Prometheus metrics in the acceptor's registry, read from
// the shared stats buffer at scrape time: cluster events by kind, Raft leader changes and storage failures,
// gossip members by state, and seed join attempts; and the cluster secret's refusals by transport, which every
// thread counts into one shared buffer (security/cluster-auth.ts).
// Acceptor (main) thread only: prom-client keeps one registry per thread.
import { Counter, Gauge, type Registry } from 'prom-client';
import { authFailureReasons, authTransports } from '../core/security/cluster-auth.js';
import { readAuthStat } from '../security/cluster-auth.js';
import { ControlStatSlot, clusterEventKinds, gossipMemberStates } from './control-stats.js';

/**
 * `broker_cluster_auth_failures_total{transport,reason}`: node-to-node messages dropped and connections closed
 * for a missing or wrong cluster-secret proof (`secret`) or a refused cluster-TLS handshake (`tls_certificate`,
 * `tls_handshake`), counted by every thread into `buffer` (security/cluster-auth.ts, security/cluster-tls.ts).
 */
export function registerClusterAuthMetrics(registry: Registry, buffer: SharedArrayBuffer): void {
  new Counter({
    name: 'broker_cluster_auth_failures_total',
    help: 'Node-to-node datagrams dropped and connections closed because they did not prove the cluster secret (missing, wrong, stale or replayed; reason secret) or failed the cluster TLS handshake (no certificate or one not from the cluster CA: tls_certificate; any other: tls_handshake), by transport and reason',
    labelNames: ['transport', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const transport of authTransports) {
        for (const reason of authFailureReasons) {
          this.inc({ transport, reason }, readAuthStat(buffer, transport, reason));
        }
      }
    },
  });
}

export function registerControlMetrics(registry: Registry, buffer: SharedArrayBuffer): void {
  const stats = new Float64Array(buffer);
  const registers = [registry];
  const read = (slot: number): number => stats[slot] ?? 0;
  new Counter({
    name: 'broker_cluster_events_total',
    help: 'Cluster events seen by this node (member joined/alive/suspect/dead/left, leader elected or lost, broker registered/fenced/unfenced, Raft membership changes, Raft storage failed/recovered)',
    labelNames: ['event'],
    registers,
    collect() {
      this.reset();
      clusterEventKinds.forEach((event, i) => {
        this.inc({ event }, read(i));
      });
    },
  });
  new Counter({
    name: 'broker_raft_leader_changes_total',
    help: 'Times this node saw the metadata Raft leader change (a new leader known, or the leader lost)',
    registers,
    collect() {
      this.reset();
      this.inc(read(ControlStatSlot.leaderChanges));
    },
  });
  new Counter({
    name: 'broker_raft_storage_failures_total',
    help: 'Raft log or hard-state writes (write or fsync) that failed on this node, each retried',
    registers,
    collect() {
      this.reset();
      this.inc(read(ControlStatSlot.raftStorageFailures));
    },
  });
  new Gauge({
    name: 'broker_raft_storage_stalled',
    help: '1 while this node cannot persist Raft state (disk full, I/O error) and has stepped out of the metadata group',
    registers,
    collect() {
      this.set(read(ControlStatSlot.raftStorageStalled));
    },
  });
  new Gauge({
    name: 'broker_gossip_members',
    help: 'Members in this node gossip view by state, this node included',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      gossipMemberStates.forEach((state, i) => {
        this.set({ state }, read(ControlStatSlot.gossipMembers + i));
      });
    },
  });
  new Counter({
    name: 'broker_gossip_join_attempts_total',
    help: 'Join attempts through seeds and known peers, one per target per attempt',
    registers,
    collect() {
      this.reset();
      this.inc(read(ControlStatSlot.joinAttempts));
    },
  });
  new Counter({
    name: 'broker_gossip_join_failures_total',
    help: 'Join attempts that failed (seed unreachable, not listening yet, or its name not resolving)',
    registers,
    collect() {
      this.reset();
      this.inc(read(ControlStatSlot.joinFailures));
    },
  });
}
