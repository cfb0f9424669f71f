// A small line chart on a canvas: several named series of (time, value) points over a sliding window, with
// axis labels and a legend. Enough for the live rates of the charts view, without a charting library.
// Runs in the browser.
import { h } from './lib.js';

const palette = ['#2563eb', '#e11d48', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

export class LineChart {
  /** `format` turns a value into an axis label. */
  constructor(title, format, windowMs = 120_000) {
    this.title = title;
    this.format = format;
    this.windowMs = windowMs;
    this.series = new Map();
    this.canvas = h('canvas', { width: 600, height: 200 });
    this.legend = h('div', { class: 'legend' });
    this.element = h(
      'div',
      { class: 'panel chart', 'data-chart': title },
      h('h2', {}, title),
      this.canvas,
      this.legend,
    );
  }

  /** Adds a point to the series `name` (created on first use) and drops points older than the window. */
  add(name, atMs, value) {
    let points = this.series.get(name);
    if (points === undefined) {
      points = [];
      this.series.set(name, points);
    }
    points.push([atMs, value]);
    while (points.length > 0 && points[0][0] < atMs - this.windowMs) points.shift();
  }

  /** The newest value of each series, for the legend and for tests reading the page. */
  latest() {
    return Object.fromEntries([...this.series].map(([name, points]) => [name, points.at(-1)?.[1] ?? 0]));
  }

  draw(nowMs) {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 200;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    const left = 64;
    const bottom = height - 20;
    const top = 8;
    const right = width - 8;
    let max = 0;
    for (const points of this.series.values()) for (const [, v] of points) max = Math.max(max, v);
    max = max === 0 ? 1 : max * 1.1;
    g.strokeStyle = '#e5e7eb';
    g.fillStyle = '#6b7686';
    g.font = '11px system-ui, sans-serif';
    for (let i = 0; i <= 4; i++) {
      const y = bottom - ((bottom - top) * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(right, y);
      g.stroke();
      g.fillText(this.format((max * i) / 4), 4, y + 4);
    }
    g.fillText(`${Math.round(this.windowMs / 1000)} s`, left, height - 4);
    g.fillText('now', right - 22, height - 4);
    const x = (t) => left + ((right - left) * (t - (nowMs - this.windowMs))) / this.windowMs;
    const y = (v) => bottom - ((bottom - top) * v) / max;
    this.legend.replaceChildren();
    [...this.series.keys()].sort().forEach((name, i) => {
      const color = palette[i % palette.length];
      const points = this.series.get(name);
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      for (const [k, [t, v]] of points.entries()) {
        if (k === 0) g.moveTo(x(t), y(v));
        else g.lineTo(x(t), y(v));
      }
      g.stroke();
      // The newest point as a dot, so a series with one point so far is visible too.
      const newest = points.at(-1);
      if (newest !== undefined) {
        g.fillStyle = color;
        g.beginPath();
        g.arc(x(newest[0]), y(newest[1]), 3, 0, 2 * Math.PI);
        g.fill();
      }
      const last = newest?.[1] ?? 0;
      this.legend.append(
        h(
          'span',
          { style: `--swatch: ${color}`, 'data-series': name, 'data-value': last },
          `${name}: ${this.format(last)}`,
        ),
      );
    });
    if (this.series.size === 0) this.legend.append(h('span', { class: 'muted' }, 'no data yet'));
  }
}
