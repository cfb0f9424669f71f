// Shared helpers of the console: the broker's public HTTP API (same origin), element building (text only:
// record keys, values and headers come from producers and are never parsed as HTML), and small formatters.
// Runs in the browser.

/** A broker refusal: carries the broker's message and error code. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.message === 'string' ? body.message : `the broker answered ${status}`);
    this.status = status;
    this.code = body?.error_code ?? status;
  }
}

/** Sends a JSON request; resolves with the parsed answer or rejects with an ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = text;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** Like `api`, but resolves with `{status, body}` for any answer (for figures another broker holds). */
export async function apiAny(method, path) {
  try {
    return { status: 200, body: await api(method, path) };
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, body: null, error };
    throw error;
  }
}

/** `h('td', {class: 'num'}, 12)`: an element with attributes, event handlers (on*) and text or element children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A table with a header row; a cell is text, an element, or `{num: value}` for a right-aligned number. */
export function table(headers, rows, attrs = {}) {
  const head = h(
    'tr',
    {},
    headers.map((name) =>
      h('th', { class: name.startsWith('#') ? 'num' : undefined }, name.replace(/^#/, '')),
    ),
  );
  const body = rows.map((row) =>
    h(
      'tr',
      row.attrs ?? {},
      (row.cells ?? row).map((cell) =>
        cell !== null && typeof cell === 'object' && !(cell instanceof Node) && 'num' in cell
          ? h('td', { class: 'num' }, cell.num ?? '-')
          : h('td', {}, cell ?? '-'),
      ),
    ),
  );
  return h('table', attrs, h('thead', {}, head), h('tbody', {}, body));
}

export function badge(text, kind = text) {
  return h('span', { class: `badge ${kind}` }, text);
}

export function bytes(n) {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function time(ms) {
  return ms === null || ms === undefined
    ? '-'
    : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** Shows a short message in the corner for a few seconds. */
export function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

/** An element that shows an error's message in the view, in red. */
export function errorBox(error) {
  return h('div', { class: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error));
}

/** The form's fields by name, as strings. */
export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}
