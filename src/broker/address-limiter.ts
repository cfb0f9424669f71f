// The connections-per-address cap (--max-connections-per-ip). uWebSockets.js tells nothing about HTTP
// connections opening or closing, so the counts come from the kernel: the established TCP connections to the
// client port in /proc/net/tcp and /proc/net/tcp6, by remote address (core/tcp-table.ts), sampled every second,
// four times a second while some address holds half its cap or more. A request or WebSocket upgrade from an
// address holding more than the cap is refused (429 rate_limited, connection closed: the count falls at the
// next sample) and counted in `broker_client_limit_refusals_total{reason="per_ip"}`.
// Consequences of sampling: an address may pass its cap for up to one sample before refusals start, and while
// it is over, requests on all of its connections are refused (the kernel's table does not say which
// connection is the newest). Without /proc (not Linux) the cap is not enforced, and a warning says so.
// Runs on the acceptor (main) thread only.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { addressKey, countEstablishedByRemote } from '../core/tcp-table.js';
import type { AddressCap } from '../http/server.js';

export interface AddressLimiterOptions {
  readonly maxConnections: number;
  readonly refused: Counter<'reason'>;
  readonly log: Logger;
  readonly slowIntervalMs?: number;
  readonly fastIntervalMs?: number;
  /** Reads a socket table; the broker reads /proc/net/tcp and /proc/net/tcp6. */
  readonly readTable?: (path: string) => Promise<string>;
}

const tables = ['/proc/net/tcp', '/proc/net/tcp6'] as const;

export class AddressLimiter implements AddressCap {
  readonly maxConnections: number;
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private port = 0;
  private warned = false;
  /** Largest number of connections one address held at the last sample. */
  busiest = 0;

  constructor(private readonly options: AddressLimiterOptions) {
    this.maxConnections = options.maxConnections;
  }

  /** Starts sampling the connections to `port` (the client port, once bound). */
  start(port: number): Promise<void> {
    this.port = port;
    return this.sample();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  admit(address: string): boolean {
    const held = this.counts.get(addressKey(address)) ?? 0;
    if (held <= this.maxConnections) return true;
    this.options.refused.inc({ reason: 'per_ip' });
    return false;
  }

  /** Connections `address` held at the last sample. */
  held(address: string): number {
    return this.counts.get(addressKey(address)) ?? 0;
  }

  private async sample(): Promise<void> {
    if (this.stopped) return;
    const read = this.options.readTable ?? ((path: string) => readFile(path, 'latin1'));
    const counts = new Map<string, number>();
    const littleEndian = endianness() === 'LE';
    let readAny = false;
    for (const path of tables) {
      try {
        countEstablishedByRemote(await read(path), this.port, littleEndian, counts);
        readAny = true;
      } catch {
        // No IPv6 table on a host without IPv6: the other one still counts.
      }
    }
    if (!readAny && !this.warned) {
      this.warned = true;
      this.options.log.warn(
        'cannot read /proc/net/tcp: --max-connections-per-ip is not enforced on this system',
      );
    }
    if (this.stopped) return;
    this.counts = counts;
    let busiest = 0;
    for (const held of counts.values()) if (held > busiest) busiest = held;
    this.busiest = busiest;
    const near = busiest * 2 >= this.maxConnections;
    const delayMs = near ? (this.options.fastIntervalMs ?? 250) : (this.options.slowIntervalMs ?? 1000);
    this.timer = setTimeout(() => void this.sample(), delayMs);
    this.timer.unref();
  }
}
