// The console's views. Each is `render(root, params)`: it fills `root` from the broker's public API and may
// return a cleanup function (timers, WebSockets) that runs when the view is left. Figures a broker does not
// have (the offsets of a partition led by another broker, until replication lands) show as '-' with a note,
// never as zero. Runs in the browser.
import { LineChart } from './chart.js';
import { ApiError, api, apiAny, badge, bytes, errorBox, formValues, h, table, time, toast } from './lib.js';

const enc = encodeURIComponent;

async function topicNames() {
  return (await api('GET', '/topics')).topics;
}

// ---- Brokers ---------------------------------------------------------------------------------------------

export async function brokers(root) {
  const [status, names] = await Promise.all([api('GET', '/cluster/status'), topicNames()]);
  const topics = await Promise.all(names.slice(0, 500).map((t) => api('GET', `/topics/${enc(t)}`)));
  const led = new Map();
  let partitions = 0;
  for (const t of topics) {
    for (const p of t.partitions) {
      partitions++;
      led.set(p.leader, (led.get(p.leader) ?? 0) + 1);
    }
  }
  const r = status.raft;
  root.append(
    h('h1', {}, 'Brokers'),
    h(
      'div',
      { class: 'panel summary' },
      h('div', {}, 'This node', h('b', {}, status.node_id)),
      h('div', {}, 'Metadata leader', h('b', {}, r.leader_id ?? 'none')),
      h('div', {}, 'Raft term', h('b', {}, r.term)),
      h('div', {}, 'Commit index', h('b', {}, r.commit_index)),
      h('div', {}, 'Voters', h('b', {}, r.voters.length)),
      h('div', {}, 'Topics', h('b', {}, names.length)),
      h('div', {}, 'Partitions', h('b', {}, partitions)),
    ),
    table(
      [
        'Broker',
        'Gossip state',
        'Raft role',
        'Metadata leader',
        'Rack',
        'Address',
        '#Partitions led',
        'Fenced',
      ],
      status.members.map((m) => ({
        attrs: { 'data-broker': m.node_id },
        cells: [
          m.node_id,
          badge(m.state),
          m.raft_role,
          m.leader ? badge('leader', 'ok') : '',
          m.rack || '-',
          `${m.address}:${m.http_port}`,
          { num: led.get(m.node_id) ?? 0 },
          m.fenced ? badge('fenced', 'bad') : '',
        ],
      })),
    ),
  );
}

// ---- Topics ----------------------------------------------------------------------------------------------

export async function topics(root) {
  const names = await topicNames();
  const described = await Promise.all(names.slice(0, 500).map((t) => api('GET', `/topics/${enc(t)}`)));
  const message = h('div');
  const form = h(
    'form',
    { class: 'inline panel', id: 'create-topic' },
    h('label', {}, 'Name', h('input', { name: 'name', required: true, pattern: '[a-zA-Z0-9._\\-]{1,249}' })),
    h('label', {}, 'Partitions', h('input', { name: 'partitions', type: 'number', min: 1, value: '3' })),
    h('label', {}, 'Replication factor', h('input', { name: 'rf', type: 'number', min: 1, value: '1' })),
    h(
      'label',
      {},
      'Retention (ms, -1 = forever)',
      h('input', { name: 'retention', type: 'number', min: -1 }),
    ),
    h('button', { type: 'submit' }, 'Create topic'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = formValues(form);
    const body = { num_partitions: Number(v.partitions), replication_factor: Number(v.rf) };
    if (v.retention !== '') body.config = { retention_ms: Number(v.retention) };
    try {
      await api('POST', `/topics/${enc(v.name)}`, body);
      toast(`Created topic ${v.name}`);
      location.hash = `#/topics/${enc(v.name)}`;
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  root.append(
    h('h1', {}, 'Topics'),
    form,
    message,
    table(
      ['Topic', '#Partitions', '#Replication', '#Under-replicated', '#Retention ms', ''],
      described.map((t) => ({
        attrs: { 'data-topic': t.topic },
        cells: [
          h('a', { href: `#/topics/${enc(t.topic)}` }, t.topic),
          { num: t.num_partitions },
          { num: t.replication_factor },
          { num: t.partitions.filter((p) => p.isr.length < p.replicas.length).length },
          { num: t.config.retention_ms },
          deleteButton(t.topic, message),
        ],
      })),
    ),
  );
}

/** A two-step delete: the first click arms the button, the second deletes. */
function deleteButton(topic, message) {
  const button = h('button', { class: 'danger', type: 'button', 'data-delete': topic }, 'Delete');
  button.addEventListener('click', async () => {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = 'Confirm delete';
      return;
    }
    try {
      await api('DELETE', `/topics/${enc(topic)}`);
      toast(`Deleted topic ${topic}`);
      button.closest('tr').remove();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  return button;
}

export async function topic(root, [name]) {
  const t = await api('GET', `/topics/${enc(name)}`);
  const details = await Promise.all(
    t.partitions.map((p) => apiAny('GET', `/topics/${enc(name)}/partitions/${p.partition}`)),
  );
  const message = h('div');
  const alter = h(
    'form',
    { class: 'inline panel', id: 'alter-topic' },
    h(
      'label',
      {},
      'retention_ms',
      h('input', { name: 'retention_ms', type: 'number', value: t.config.retention_ms }),
    ),
    h(
      'label',
      {},
      'retention_bytes',
      h('input', { name: 'retention_bytes', type: 'number', value: t.config.retention_bytes }),
    ),
    h('button', { type: 'submit', class: 'secondary' }, 'Save config'),
  );
  alter.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = formValues(alter);
    try {
      await api('POST', `/topics/${enc(name)}/config`, {
        retention_ms: Number(v.retention_ms),
        retention_bytes: Number(v.retention_bytes),
      });
      toast('Config saved');
      message.replaceChildren();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  const c = t.config;
  root.append(
    h('h1', {}, `Topic ${t.topic}`),
    h(
      'div',
      { class: 'panel summary' },
      h('div', {}, 'Partitions', h('b', {}, t.num_partitions)),
      h('div', {}, 'Replication factor', h('b', {}, t.replication_factor)),
      h('div', {}, 'Min in-sync replicas', h('b', {}, c.min_insync_replicas)),
      h('div', {}, 'Segment size', h('b', {}, bytes(c.segment_bytes))),
      h('div', {}, 'Cleanup', h('b', {}, c.cleanup_policy)),
      h('div', {}, 'Topic id', h('b', { class: 'muted small' }, t.topic_id)),
    ),
    alter,
    message,
    h('h2', {}, 'Partitions'),
    table(
      [
        '#Partition',
        'Leader',
        '#Epoch',
        'Replicas',
        'ISR',
        '#Low watermark',
        '#High watermark',
        '#Size',
        'Segments',
      ],
      t.partitions.map((p, i) => {
        const d = details[i].body;
        return {
          attrs: { 'data-partition': p.partition },
          cells: [
            { num: p.partition },
            p.leader || badge('none', 'bad'),
            { num: p.leader_epoch },
            p.replicas.join(', '),
            p.isr.length < p.replicas.length ? badge(p.isr.join(', ') || 'empty', 'warn') : p.isr.join(', '),
            { num: d?.log_start_offset },
            { num: d?.high_watermark },
            { num: d === null ? null : bytes(d.size_bytes) },
            d === null
              ? h('span', { class: 'muted' }, `figures on ${p.leader || 'the leader'}`)
              : d.segment_count,
          ],
        };
      }),
    ),
    h(
      'p',
      {},
      h('a', { href: `#/messages/${enc(name)}` }, 'Browse messages'),
      ' · ',
      h('a', { href: `#/produce/${enc(name)}` }, 'Produce'),
    ),
  );
}

// ---- Consumer groups -------------------------------------------------------------------------------------

export async function groups(root) {
  const answer = await api('GET', '/consumer-groups');
  root.append(
    h('h1', {}, 'Consumer groups'),
    answer.groups.length === 0
      ? h('p', { class: 'muted' }, 'No consumer groups yet.')
      : table(
          ['Group', 'State', '#Members'],
          answer.groups.map((g) => ({
            attrs: { 'data-group': g.group },
            cells: [
              h('a', { href: `#/groups/${enc(g.group)}` }, g.group),
              badge(g.state),
              { num: g.members },
            ],
          })),
        ),
  );
}

export async function group(root, [name]) {
  const g = await api('GET', `/consumer-groups/${enc(name)}`);
  const names = await topicNames();
  const subscribed = [...new Set([...g.offsets.map((o) => o.topic), ...g.members.flatMap((m) => m.topics)])];
  const message = h('div');
  const result = h('div');
  const reset = h(
    'form',
    { class: 'inline panel', id: 'reset-offsets' },
    h(
      'label',
      {},
      'Topic',
      h(
        'select',
        { name: 'topic' },
        (subscribed.length > 0 ? subscribed : names).map((t) => h('option', { value: t }, t)),
      ),
    ),
    h(
      'label',
      {},
      'Reset to',
      h(
        'select',
        { name: 'to' },
        ['earliest', 'latest', 'offset', 'timestamp', 'shift'].map((to) => h('option', { value: to }, to)),
      ),
    ),
    h(
      'label',
      {},
      'Offset, time or shift',
      h('input', { name: 'value', placeholder: 'e.g. 42 or 2025-01-01T00:00' }),
    ),
    h('button', { type: 'submit', name: 'mode', value: 'dry', class: 'secondary' }, 'Preview'),
    h('button', { type: 'submit', name: 'mode', value: 'execute' }, 'Reset offsets'),
  );
  reset.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = formValues(reset);
    const execute = event.submitter?.value === 'execute';
    const body = { topic: v.topic, to: v.to, dry_run: !execute };
    if (v.to === 'offset') body.offset = Number(v.value);
    if (v.to === 'shift') body.shift = Number(v.value);
    if (v.to === 'timestamp') body.timestamp = /^\d+$/.test(v.value) ? Number(v.value) : Date.parse(v.value);
    try {
      const answer = await api('POST', `/consumer-groups/${enc(name)}/reset-offsets`, body);
      result.replaceChildren(
        h('p', {}, answer.dry_run ? 'Preview (nothing changed):' : 'Offsets reset:'),
        table(
          ['#Partition', '#Previous', '#New'],
          answer.offsets.map((o) => [{ num: o.partition }, { num: o.previous_offset }, { num: o.offset }]),
        ),
      );
      message.replaceChildren();
      if (execute) {
        toast('Offsets reset');
        await rerender(root, (into) => group(into, [name]));
      }
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  root.append(
    h('h1', {}, `Group ${g.group}`),
    h(
      'div',
      { class: 'panel summary' },
      h('div', {}, 'State', h('b', {}, badge(g.state))),
      h('div', {}, 'Generation', h('b', {}, g.generation)),
      h('div', {}, 'Assignor', h('b', {}, g.assignor)),
      h('div', {}, 'Members', h('b', {}, g.members.length)),
      h(
        'div',
        {},
        'Total lag',
        h(
          'b',
          {},
          g.offsets.reduce((sum, o) => sum + (o.lag ?? 0), 0),
        ),
      ),
    ),
    h('h2', {}, 'Members'),
    g.members.length === 0
      ? h('p', { class: 'muted' }, 'No members: offsets can be reset.')
      : table(
          ['Consumer', 'Assignment', 'Topics', 'Last heartbeat'],
          g.members.map((m) => [
            m.consumer_id,
            Object.entries(m.assignments)
              .map(([t, ps]) => `${t}: ${ps.join(', ')}`)
              .join('; ') || '-',
            m.topics.join(', '),
            time(m.last_heartbeat),
          ]),
        ),
    h('h2', {}, 'Committed offsets and lag'),
    g.offsets.length === 0 ? h('p', { class: 'muted' }, 'Nothing committed yet.') : null,
    table(
      ['Topic', '#Partition', '#Committed', '#Log end', '#Lag', 'Owner'],
      g.offsets.map((o) => ({
        attrs: { 'data-offset': `${o.topic}-${o.partition}` },
        cells: [
          o.topic,
          { num: o.partition },
          { num: o.offset },
          { num: o.log_end_offset },
          { num: o.lag },
          o.owner ?? '-',
        ],
      })),
    ),
    h('h2', {}, 'Reset offsets'),
    g.members.length > 0
      ? h(
          'p',
          { class: 'muted' },
          'The broker resets offsets only while the group has no members: stop its consumers first.',
        )
      : null,
    reset,
    message,
    result,
  );
}

async function rerender(root, render) {
  const fresh = h('div');
  await render(fresh);
  root.replaceChildren(...fresh.childNodes);
}

// ---- Messages --------------------------------------------------------------------------------------------

/** Record rows: offset, partition, timestamp, key, headers, value. */
function recordRow(r, fresh = false) {
  const headers = Object.entries(r.headers ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return h(
    'tr',
    { class: fresh ? 'fresh' : undefined, 'data-offset': r.offset },
    h('td', { class: 'num' }, r.partition),
    h('td', { class: 'num' }, r.offset),
    h('td', {}, time(r.timestamp)),
    h('td', { class: 'value' }, r.key ?? h('span', { class: 'muted' }, 'null')),
    h('td', { class: 'value' }, headers || '-'),
    h('td', { class: 'value' }, r.value ?? h('span', { class: 'muted' }, 'null')),
  );
}

export async function messages(root, [initialTopic]) {
  const names = await topicNames();
  if (names.length === 0) {
    root.append(h('h1', {}, 'Messages'), h('p', { class: 'muted' }, 'No topics yet.'));
    return undefined;
  }
  const topicSelect = h(
    'select',
    { name: 'topic' },
    names.map((t) => h('option', { value: t }, t)),
  );
  if (initialTopic !== undefined && names.includes(initialTopic)) topicSelect.value = initialTopic;
  const partitionSelect = h('select', { name: 'partition' });
  const fillPartitions = async () => {
    const t = await api('GET', `/topics/${enc(topicSelect.value)}`);
    partitionSelect.replaceChildren(
      ...t.partitions.map((p) => h('option', { value: p.partition }, String(p.partition))),
    );
  };
  await fillPartitions();
  topicSelect.addEventListener('change', fillPartitions);
  const seek = h(
    'select',
    { name: 'seek' },
    ['earliest', 'offset', 'time', 'latest'].map((s) => h('option', { value: s }, s)),
  );
  const form = h(
    'form',
    { class: 'inline panel', id: 'browse' },
    h('label', {}, 'Topic', topicSelect),
    h('label', {}, 'Partition', partitionSelect),
    h('label', {}, 'Seek', seek),
    h('label', {}, 'Offset', h('input', { name: 'offset', type: 'number', min: 0, value: '0' })),
    h('label', {}, 'Time', h('input', { name: 'time', type: 'datetime-local', step: 1 })),
    h('label', {}, 'Limit', h('input', { name: 'limit', type: 'number', min: 1, max: 1000, value: '50' })),
    h('button', { type: 'submit' }, 'Load'),
    h('button', { type: 'button', class: 'secondary', id: 'follow' }, 'Follow live'),
  );
  const status = h('p', { class: 'muted' });
  const message = h('div');
  const rows = h('tbody');
  const records = h(
    'table',
    { id: 'records' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Partition', 'Offset', 'Timestamp', 'Key', 'Headers', 'Value'].map((c) => h('th', {}, c)),
      ),
    ),
    rows,
  );
  let socket = null;
  const stopFollowing = () => {
    if (socket !== null) socket.close(1000);
    socket = null;
    form.querySelector('#follow').textContent = 'Follow live';
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    stopFollowing();
    const v = formValues(form);
    const base = `/topics/${enc(v.topic)}/partitions/${v.partition}`;
    try {
      let offset = v.seek === 'offset' ? v.offset : v.seek;
      if (v.seek === 'time') {
        const ms = Date.parse(v.time);
        if (!Number.isFinite(ms)) throw new Error('choose a time to seek to');
        const found = await api('GET', `${base}/offsets?timestamp=${ms}`);
        offset = found.offset ?? found.high_watermark;
      }
      const answer = await api('GET', `${base}/consume?offset=${offset}&limit=${v.limit}`);
      rows.replaceChildren(...answer.messages.map((r) => recordRow(r)));
      status.textContent = `${answer.count} record(s); next offset ${answer.next_offset}, high watermark ${answer.high_watermark}`;
      message.replaceChildren();
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  form.querySelector('#follow').addEventListener('click', () => {
    if (socket !== null) return stopFollowing();
    const v = formValues(form);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(
      `${scheme}://${location.host}/ws/consume/${enc(v.topic)}?partition=${v.partition}&offset=latest`,
    );
    form.querySelector('#follow').textContent = 'Stop following';
    status.textContent = `Following ${v.topic}-${v.partition} from its end…`;
    socket.addEventListener('open', () => {
      status.textContent = `Following ${v.topic}-${v.partition}: new records appear at the top`;
      status.dataset.following = 'true';
    });
    socket.addEventListener('message', (event) => {
      rows.prepend(recordRow(JSON.parse(event.data), true));
      while (rows.childElementCount > 1000) rows.lastElementChild.remove();
    });
    socket.addEventListener('close', (event) => {
      if (event.code !== 1000 && event.code !== 1005) {
        message.replaceChildren(errorBox(`the stream closed (${event.code}): ${event.reason}`));
      }
      status.dataset.following = 'false';
    });
  });
  root.append(h('h1', {}, 'Messages'), form, message, status, records);
  return stopFollowing;
}

// ---- Produce ---------------------------------------------------------------------------------------------

export async function produce(root, [initialTopic]) {
  const names = await topicNames();
  const topicSelect = h(
    'select',
    { name: 'topic' },
    names.map((t) => h('option', { value: t }, t)),
  );
  if (initialTopic !== undefined && names.includes(initialTopic)) topicSelect.value = initialTopic;
  const form = h(
    'form',
    { class: 'panel', id: 'produce' },
    h(
      'div',
      { class: 'inline', style: 'display:flex;gap:10px;flex-wrap:wrap;margin-bottom:10px' },
      h('label', {}, 'Topic', topicSelect),
      h('label', {}, 'Partition (blank: by key)', h('input', { name: 'partition', type: 'number', min: 0 })),
      h('label', {}, 'Key', h('input', { name: 'key' })),
    ),
    h(
      'div',
      { style: 'display:flex;gap:10px;flex-wrap:wrap;margin-bottom:10px' },
      h('label', {}, 'Headers (one k=v per line)', h('textarea', { name: 'headers' })),
      h('label', {}, 'Value', h('textarea', { name: 'value', required: true })),
    ),
    h('button', { type: 'submit' }, 'Produce'),
  );
  const result = h('div', { class: 'result', id: 'produce-result' });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = formValues(form);
    const headers = {};
    for (const line of v.headers.split('\n')) {
      const at = line.indexOf('=');
      if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const body = { value: v.value, headers };
    if (v.key !== '') body.key = v.key;
    if (v.partition !== '') body.partition = Number(v.partition);
    try {
      const answer = await api('POST', `/topics/${enc(v.topic)}/produce`, body);
      result.replaceChildren(
        h(
          'span',
          { 'data-partition': answer.partition, 'data-offset': answer.offset },
          `Produced to ${answer.topic} partition ${answer.partition} at offset ${answer.offset}`,
        ),
      );
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  });
  root.append(
    h('h1', {}, 'Produce a message'),
    names.length === 0 ? h('p', { class: 'muted' }, 'Create a topic first.') : form,
    result,
  );
}

// ---- Charts ----------------------------------------------------------------------------------------------

/** Prometheus text into samples `{name, labels, value}`. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels = {};
    for (const m of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1]] = m[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function sumBy(samples, name, label) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = s.labels[label] ?? '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** p99 in seconds from the produce latency histogram's bucket deltas between two scrapes, or null. */
function produceP99(previous, current) {
  const buckets = (samples) => {
    const byLe = new Map();
    for (const s of samples) {
      if (s.name !== 'broker_http_request_duration_seconds_bucket') continue;
      if (s.labels.operation !== 'produce' && s.labels.operation !== 'produceBatch') continue;
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
    return byLe;
  };
  const before = buckets(previous);
  const after = [...buckets(current)].sort((a, b) => a[0] - b[0]);
  const deltas = after.map(([le, count]) => [le, count - (before.get(le) ?? 0)]);
  const total = deltas.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = 0.99 * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of deltas) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

export async function charts(root) {
  const records = new LineChart('Produced records/s by topic', (v) => v.toFixed(v < 10 ? 1 : 0));
  const rates = new LineChart('Produced bytes/s by topic', (v) => `${(v / 1024).toFixed(1)} KiB`);
  const consumed = new LineChart('Consumed records/s by topic', (v) => v.toFixed(v < 10 ? 1 : 0));
  const latency = new LineChart('Produce latency p99 (HTTP)', (v) => `${(v * 1000).toFixed(1)} ms`);
  const status = h('p', { class: 'muted', id: 'charts-status' }, 'Reading /metrics every 2 s…');
  root.append(
    h('h1', {}, 'Charts'),
    status,
    h('div', { class: 'charts' }, records.element, rates.element, consumed.element, latency.element),
  );
  let previous = null;
  let previousAtMs = 0;
  let scrapes = 0;
  const scrape = async () => {
    try {
      const response = await fetch('/metrics');
      const samples = parseMetrics(await response.text());
      const nowMs = Date.now();
      if (previous !== null) {
        const seconds = (nowMs - previousAtMs) / 1000;
        for (const [chart, name] of [
          [records, 'broker_produced_records_total'],
          [rates, 'broker_produced_bytes_total'],
          [consumed, 'broker_consumed_records_total'],
        ]) {
          const before = sumBy(previous, name, 'topic');
          for (const [topic, value] of sumBy(samples, name, 'topic')) {
            chart.add(topic, nowMs, Math.max(0, value - (before.get(topic) ?? 0)) / seconds);
          }
        }
        const p99 = produceP99(previous, samples);
        latency.add('p99', nowMs, p99 ?? 0);
      }
      previous = samples;
      previousAtMs = nowMs;
      scrapes++;
      for (const chart of [records, rates, consumed, latency]) chart.draw(nowMs);
      status.textContent = `Reading /metrics every 2 s · ${scrapes} scrape(s)`;
      status.dataset.scrapes = String(scrapes);
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  await scrape();
  const timer = setInterval(scrape, 2000);
  return () => clearInterval(timer);
}

export { ApiError };
