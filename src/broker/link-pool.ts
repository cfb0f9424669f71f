// The acceptor's pooled data-link connections to other nodes' partition workers, for requests it forwards to a
// partition's leader (produce, fetch, describe): one DataLinkClient per remote worker address, dialed on first
// use and kept. Bounded: past `clientsMax` addresses the pool closes the one used longest ago (its calls in
// flight are answered as lost, which callers already handle as an indefinite outcome).
// With a cluster secret every connection proves it, with cluster TLS every connection is mutual TLS
// (link/data-link.ts). Runs on an acceptor thread (the main one, or an extra one with --acceptor-threads).

import { DATA_LINK_DEFAULTS, DataLinkClient, type DataLinkLimits } from '../link/data-link.js';
import { ClusterAuth } from '../security/cluster-auth.js';
import { ClusterTls, type ClusterTlsMaterial, type ClusterTlsShared } from '../security/cluster-tls.js';

/** A pool that proves the cluster secret (when given) and speaks cluster TLS (when configured). */
export function linkPoolFor(
  nodeId: string,
  security: {
    readonly clusterSecret: Uint8Array | null;
    readonly authStats: SharedArrayBuffer;
    readonly clusterTls: ClusterTlsShared | null;
    readonly clusterTlsMaterial: ClusterTlsMaterial | null;
  },
  warn: (fields: Record<string, unknown>, message: string) => void,
): LinkPool {
  const { clusterSecret, authStats, clusterTls, clusterTlsMaterial } = security;
  return new LinkPool(
    nodeId,
    undefined,
    undefined,
    clusterSecret === null
      ? undefined
      : new ClusterAuth({ nodeId, secret: clusterSecret, stats: authStats, warn }),
    clusterTls === null || clusterTlsMaterial === null
      ? undefined
      : new ClusterTls({ ...clusterTls, material: clusterTlsMaterial, stats: authStats, warn }),
  );
}

export class LinkPool {
  private readonly clients = new Map<string, DataLinkClient>();

  constructor(
    private readonly selfId: string,
    private readonly clientsMax = 1024,
    private readonly limits: DataLinkLimits = { ...DATA_LINK_DEFAULTS },
    private readonly auth?: ClusterAuth,
    private readonly tls?: ClusterTls,
  ) {}

  client(host: string, port: number): DataLinkClient {
    const address = `${host}:${port}`;
    let client = this.clients.get(address);
    if (client !== undefined) {
      // Most recently used last: Map iteration order is insertion order.
      this.clients.delete(address);
      this.clients.set(address, client);
      return client;
    }
    if (this.clients.size >= this.clientsMax) {
      const [oldest, stale] = this.clients.entries().next().value as [string, DataLinkClient];
      this.clients.delete(oldest);
      stale.close();
    }
    client = new DataLinkClient(host, port, this.selfId, this.limits, undefined, this.auth, this.tls);
    this.clients.set(address, client);
    return client;
  }

  get size(): number {
    return this.clients.size;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
