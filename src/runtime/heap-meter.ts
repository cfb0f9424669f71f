// How much the calling thread allocates on its V8 heap and how long its garbage collections take, as running
// totals, so that /metrics (and the produce benchmark, which reads it before and after a load) can give bytes
// allocated per request and the share of time spent in GC. V8 keeps no allocation counter, so it is derived:
// allocated = heap used now - heap used at start + everything the collections freed, where each collection's
// freed bytes are its heap use before minus after, from v8.GCProfiler. Buffers' backing stores live outside the
// V8 heap and are not counted (they are pooled on the hot path anyway).
// The profiler keeps one record per collection until stopped, so `sample` restarts it; `sample` is also called
// from a timer every `drainIntervalMs`, which bounds that list whether or not anyone scrapes.
// One meter per thread; call it only from the thread that made it.
import { GCProfiler, getHeapStatistics } from 'node:v8';

const drainIntervalMs = 5_000;

interface GcRecord {
  readonly cost: number; // microseconds
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
}

export class HeapMeter {
  private profiler = new GCProfiler();
  private readonly usedAtStartBytes: number;
  private freedBytes = 0;
  private gcMicroseconds = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.usedAtStartBytes = getHeapStatistics().used_heap_size;
    this.profiler.start();
    this.timer = setInterval(() => this.sample(), drainIntervalMs);
    this.timer.unref();
  }

  /** Bytes allocated on this thread's V8 heap since the meter was made. */
  allocatedBytes(): number {
    this.sample();
    return getHeapStatistics().used_heap_size - this.usedAtStartBytes + this.freedBytes;
  }

  /** Seconds this thread spent in garbage collection (pauses on this thread) since the meter was made. */
  gcSeconds(): number {
    this.sample();
    return this.gcMicroseconds / 1e6;
  }

  stop(): void {
    clearInterval(this.timer);
    this.profiler.stop();
  }

  private sample(): void {
    const data = this.profiler.stop() as { statistics: readonly GcRecord[] } | undefined;
    this.profiler = new GCProfiler();
    this.profiler.start();
    if (data === undefined) return;
    for (const gc of data.statistics) {
      this.gcMicroseconds += gc.cost;
      this.freedBytes += Math.max(
        0,
        gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize,
      );
    }
  }
}
