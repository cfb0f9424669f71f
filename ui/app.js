// The console's entry: a hash router (#/topics/orders) that renders one view at a time into <main>, runs the
// previous view's cleanup (timers, WebSockets) first, and marks the active tab. Runs in the browser.
import { api, errorBox, h } from './lib.js';
import * as views from './views.js';

const routes = {
  brokers: views.brokers,
  topics: (root, [name]) => (name === undefined ? views.topics(root) : views.topic(root, [name])),
  groups: (root, [name]) => (name === undefined ? views.groups(root) : views.group(root, [name])),
  messages: views.messages,
  produce: views.produce,
  charts: views.charts,
};

let cleanup = null;
let generation = 0;

async function show() {
  const [view, ...params] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const name = view in routes ? view : 'brokers';
  const mine = ++generation;
  if (cleanup !== null) cleanup();
  cleanup = null;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  const root = document.getElementById('view');
  const fresh = h('div', { 'data-view': name });
  root.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  // A message about the previous view's action does not belong to the next one.
  document.getElementById('toast').hidden = true;
  try {
    const done = await routes[name](
      fresh,
      params.filter((p) => p !== ''),
    );
    if (mine !== generation) {
      if (typeof done === 'function') done();
      return;
    }
    cleanup = typeof done === 'function' ? done : null;
    root.replaceChildren(fresh);
  } catch (error) {
    if (mine === generation) root.replaceChildren(errorBox(error));
  }
  root.dataset.ready = name;
}

window.addEventListener('hashchange', show);
api('GET', '/health').then(
  (health) => {
    document.getElementById('node').textContent = `node ${health.node_id}`;
  },
  () => undefined,
);
show();
