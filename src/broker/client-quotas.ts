// Byte-rate quotas per principal at work: the produce and consume tables of core/quota.ts with the clock, a
// sweep of idle entries, and the throttle counter (`broker_quota_throttled_total{quota, transport}`). The HTTP
// server and the WebSocket streams ask it through the RequestQuotas interface of src/http/server.ts. The
// principal is the authenticated one, or `ANONYMOUS` with authentication off (then every client shares one
// quota, as every client is the same principal).
// Runs on the acceptor (main) thread only.
import type { Counter } from 'prom-client';
import { QuotaTable } from '../core/quota.js';
import type { RequestQuotas } from '../http/server.js';

export interface ClientQuotaOptions {
  /** 0: no produce quota. */
  readonly produceBytesPerS: number;
  /** 0: no consume quota. */
  readonly consumeBytesPerS: number;
  /** Principals tracked at most per table. */
  readonly entriesMax: number;
  /** Burst after idleness, as milliseconds of the rate. */
  readonly burstMs: number;
  /** How often buckets that have refilled are dropped. */
  readonly sweepIntervalMs: number;
  readonly nowMs: () => number;
  readonly throttled: Counter<'quota' | 'transport'>;
}

export class ClientQuotas implements RequestQuotas {
  readonly produceBytesPerS: number;
  readonly consumeBytesPerS: number;
  private readonly produce: QuotaTable | null;
  private readonly consume: QuotaTable | null;
  private readonly timer: NodeJS.Timeout | null;

  constructor(private readonly options: ClientQuotaOptions) {
    this.produceBytesPerS = options.produceBytesPerS;
    this.consumeBytesPerS = options.consumeBytesPerS;
    const table = (bytesPerS: number): QuotaTable | null =>
      bytesPerS === 0
        ? null
        : new QuotaTable({ bytesPerS, burstMs: options.burstMs, entriesMax: options.entriesMax });
    this.produce = table(options.produceBytesPerS);
    this.consume = table(options.consumeBytesPerS);
    this.timer =
      this.produce === null && this.consume === null
        ? null
        : setInterval(() => {
            const nowMs = options.nowMs();
            this.produce?.evictIdle(nowMs);
            this.consume?.evictIdle(nowMs);
          }, options.sweepIntervalMs);
    this.timer?.unref();
  }

  admitProduce(principal: string, bytes: number, transport: 'http' | 'ws'): number {
    if (this.produce === null) return 0;
    const nowMs = this.options.nowMs();
    const delayMs = this.produce.delayMs(principal, nowMs);
    if (delayMs > 0) {
      this.options.throttled.inc({ quota: 'produce', transport });
      return delayMs;
    }
    this.produce.charge(principal, bytes, nowMs);
    return 0;
  }

  consumeDelayMs(principal: string, transport: 'http' | 'ws'): number {
    if (this.consume === null) return 0;
    const delayMs = this.consume.delayMs(principal, this.options.nowMs());
    if (delayMs > 0) this.options.throttled.inc({ quota: 'consume', transport });
    return delayMs;
  }

  chargeConsume(principal: string, bytes: number): void {
    this.consume?.charge(principal, bytes, this.options.nowMs());
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}
