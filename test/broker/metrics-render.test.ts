// The acceptor's hot-path metrics (topic tallies, the request-latency histogram rendered by hand, per-thread
// heap counters) come out of /metrics in the exposition format with the values observed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerMetrics } from '../../src/broker/metrics.js';

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

test('topic tallies and request latencies render as Prometheus counters and a cumulative histogram', async () => {
  const metrics = new BrokerMetrics(
    () => [],
    () => [],
  );
  const orders = metrics.topicCounters('orders');
  assert.equal(metrics.topicCounters('orders'), orders, 'one set of tallies per topic for the process');
  orders.producedRecords.inc(3);
  orders.producedRecords.inc(2);
  orders.consumedBytes.inc(100);
  metrics.observeRequest('produce', 201, 0.0002);
  metrics.observeRequest('produce', 201, 0.003);
  metrics.observeRequest('produce', 201, 40);
  metrics.observeRequest('produce', 503, 0.00005);
  const text = await metrics.render();

  assert.equal(value(text, 'broker_produced_records_total{topic="orders"}'), 5);
  assert.equal(value(text, 'broker_consumed_bytes_total{topic="orders"}'), 100);
  assert.equal(value(text, 'broker_produced_bytes_total{topic="orders"}'), 0);
  const h = 'broker_http_request_duration_seconds';
  assert.match(text, new RegExp(`# TYPE ${h} histogram`));
  const ok = 'operation="produce",status="201"';
  assert.equal(value(text, `${h}_bucket{le="0.0001",${ok}}`), 0);
  assert.equal(value(text, `${h}_bucket{le="0.00025",${ok}}`), 1);
  assert.equal(value(text, `${h}_bucket{le="0.0025",${ok}}`), 1);
  assert.equal(value(text, `${h}_bucket{le="0.005",${ok}}`), 2);
  assert.equal(value(text, `${h}_bucket{le="30",${ok}}`), 2, '40 s lies above every finite bound');
  assert.equal(value(text, `${h}_bucket{le="+Inf",${ok}}`), 3);
  assert.equal(value(text, `${h}_count{${ok}}`), 3);
  assert.ok(Math.abs(value(text, `${h}_sum{${ok}}`) - 40.0032) < 1e-9);
  assert.equal(value(text, `${h}_bucket{le="0.0001",operation="produce",status="503"}`), 1);

  // The acceptor's own heap counters grow as it allocates.
  const allocated = value(text, 'broker_thread_heap_allocated_bytes_total{thread="acceptor"}');
  const garbage: number[][] = [];
  for (let i = 0; i < 100_000; i++) garbage.push([i]);
  const later = value(await metrics.render(), 'broker_thread_heap_allocated_bytes_total{thread="acceptor"}');
  assert.ok(later - allocated >= 100_000 * 16, `allocated ${later - allocated} B for 100,000 arrays`);
  assert.ok(value(text, 'broker_thread_gc_seconds_total{thread="acceptor"}') >= 0);
});
