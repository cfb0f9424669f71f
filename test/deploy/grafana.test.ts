// The Grafana dashboard in deploy/grafana: every panel has a query, and every metric any query or template
// variable names is exposed by a running broker's /metrics (once it has topics, traffic, a consumer group with
// a member and committed offsets), so no panel of the shipped dashboard is empty for want of a metric.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { call, startTestBroker, type TestBroker } from '../broker/harness.js';

const dashboard = JSON.parse(
  readFileSync(new URL('../../deploy/grafana/dashboards/logbroker.json', import.meta.url), 'utf8'),
);

const promqlWords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'group',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads: identifiers that are not functions (followed by '('), keywords
 * or aggregation operators, after removing strings, label matchers, range selectors, grouping label lists and
 * Grafana's $variables.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const rest = stripped.slice(match.index + name.length);
    if (/^\s*\(/.test(rest) || promqlWords.has(name)) continue;
    names.add(name);
  }
  return [...names];
}

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

let broker: TestBroker;
let exposed: Set<string>;

before(async () => {
  broker = await startTestBroker({ sessionTimeoutMs: 60_000 });
  const api = (method: string, path: string, body?: unknown) => call(broker.base, method, path, body);
  await api('POST', '/topics/orders', { num_partitions: 2 });
  await api('POST', '/topics/orders/records', {
    records: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}`, partition: i % 2 })),
  });
  await api('GET', '/topics/orders/partitions/0/consume?offset=0');
  await api('POST', '/consumer-groups/audit/offsets/orders/0', { offset: 2 });
  await api('POST', '/consumer-groups/live/register', { consumer_id: 'c1', topics: ['orders'] });
  const text = (await api('GET', '/metrics')).body as string;
  exposed = new Set(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
  );
});
after(async () => {
  await broker.stop();
});

describe('Grafana dashboard', () => {
  test('the PromQL reader finds metric names and skips functions, keywords, labels and variables', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(http_bucket{operation=~"produce|x"}[$__rate_interval])))',
      ),
      ['http_bucket'],
    );
    assert.deepEqual(metricNames('count(max by (t) (a_b == 0)) or vector(0)'), ['a_b']);
    assert.deepEqual(metricNames('sum by (topic) (x{topic=~"$topic"}) / on(topic) group_left y'), ['x', 'y']);
  });

  test('every panel has a query, ids are unique, and every metric the queries name is exposed by a broker', () => {
    const every = allPanels(dashboard.panels);
    const panels = every.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 20, `only ${panels.length} panels`);
    assert.equal(new Set(every.map((p) => p.id)).size, every.length, 'panel ids are unique');
    const missing: string[] = [];
    const named = new Set<string>();
    const check = (where: string, expr: string) => {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) {
        named.add(name);
        if (!exposed.has(name)) missing.push(`${where}: ${name}`);
      }
    };
    for (const panel of panels) {
      assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has no query`);
      for (const target of panel.targets!) check(`panel "${panel.title}"`, target.expr);
    }
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
      check(`variable $${variable.name}`, query.replace(/^label_values\(([^,]+),.*\)$/, '$1'));
    }
    assert.deepEqual(missing, [], 'metrics named by the dashboard but not exposed');
    // The dashboard covers kafka_exporter's core series, not only the broker's own.
    for (const name of [
      'kafka_brokers',
      'kafka_topic_partitions',
      'kafka_topic_partition_current_offset',
      'kafka_topic_partition_oldest_offset',
      'kafka_topic_partition_in_sync_replica',
      'kafka_topic_partition_leader',
      'kafka_topic_partition_replicas',
      'kafka_topic_partition_leader_is_preferred',
      'kafka_topic_partition_under_replicated_partition',
      'kafka_consumergroup_current_offset',
      'kafka_consumergroup_lag',
      'kafka_consumergroup_members',
    ]) {
      assert.ok(named.has(name), `the dashboard does not use ${name}`);
    }
  });

  test('kafka_exporter series carry the figures of the broker', async () => {
    const text = (await call(broker.base, 'GET', '/metrics')).body as string;
    for (const line of [
      'kafka_brokers 1',
      'kafka_topic_partitions{topic="orders"} 2',
      'kafka_topic_partition_current_offset{topic="orders",partition="0"} 5',
      'kafka_topic_partition_in_sync_replica{topic="orders",partition="1"} 1',
      'kafka_topic_partition_replicas{topic="orders",partition="1"} 1',
      'kafka_topic_partition_leader{topic="orders",partition="0",leader="broker-1"} 1',
      'kafka_topic_partition_leader_is_preferred{topic="orders",partition="0"} 1',
      'kafka_topic_partition_under_replicated_partition{topic="orders",partition="1"} 0',
      'kafka_consumergroup_current_offset{consumergroup="audit",topic="orders",partition="0"} 2',
      'kafka_consumergroup_lag{consumergroup="audit",topic="orders",partition="0"} 3',
      'kafka_consumergroup_members{consumergroup="live"} 1',
    ]) {
      assert.ok(text.includes(line), `missing: ${line}`);
    }
  });
});
