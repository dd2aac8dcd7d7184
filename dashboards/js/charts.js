// Small SVG charts: no library, no canvas, readable by screen readers (role="img" with a
// title; the report also shows every number in a table).

import {h, s} from './dom.js';

function niceStep(span, ticks) {
  const raw = span / Math.max(1, ticks);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 5, 10].find((m) => m * power >= raw) * power;
  return unit;
}

function ticksFor(min, max, count = 5) {
  const step = niceStep(max - min || 1, count);
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Math.round(v * 1000) / 1000);
  return out;
}

// Below this width (in CSS pixels, the chart drawn 1:1) a row's label goes above its bar.
export const NARROW = 560;

/** A right-aligned label of one or two lines ending at x, centred on y; `title` (the full
 * names behind short ones) is its tooltip. */
function rowLabel(text, x, y, title) {
  const lines = Array.isArray(text) ? text : [text];
  const first = y - ((lines.length - 1) * 13) / 2 + 4;
  return lines.map((line, i) => s('text', {class: i ? 'label sub' : 'label', x, y: first + i * 13, 'text-anchor': 'end'},
    title ? s('title', {}, title) : null, line));
}

/** A label of one or two lines above a bar: left-aligned at x, its first line's top at top. */
function stackedLabel(text, x, top, title) {
  const lines = Array.isArray(text) ? text : [text];
  return lines.map((line, i) => s('text', {class: i ? 'label sub' : 'label', x, y: top + 11 + i * 13},
    title ? s('title', {}, title) : null, line));
}

/** The layout of horizontal bars at `width`: labels beside the bars, or above them. */
function barLayout(width, labelWidth, rows) {
  const narrow = width < NARROW;
  const lines = Math.max(1, ...rows.map((row) => (Array.isArray(row.label) ? row.label.length : 1)));
  return narrow
    ? {narrow, labelWidth: 8, rowHeight: 34 + lines * 13, barTop: lines * 13 + 6}
    : {narrow, labelWidth, rowHeight: 36, barTop: 0};
}

/** A time series against an allowed band: points [{t (ms), v}], band [low, high] or null. */
export function temperatureChart({points, band, title, formatTime, unit = '°C', timeLabel = '', width = 800, height = 240}) {
  const margin = {top: 22, right: 16, bottom: 44, left: 44};
  const values = points.map((p) => p.v);
  let low = Math.min(...values, ...(band ? band : []));
  let high = Math.max(...values, ...(band ? band : []));
  const pad = Math.max(1, (high - low) * 0.1);
  low -= pad;
  high += pad;
  const t0 = points[0].t;
  const t1 = points.length > 1 ? points[points.length - 1].t : t0 + 60_000;
  const x = (t) => margin.left + ((t - t0) / (t1 - t0 || 1)) * (width - margin.left - margin.right);
  const y = (v) => margin.top + (1 - (v - low) / (high - low || 1)) * (height - margin.top - margin.bottom);
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart temperature-chart', role: 'img', 'aria-label': title},
    s('title', {}, title));
  if (band) {
    svg.append(s('rect', {class: 'band', x: margin.left, y: y(band[1]), width: width - margin.left - margin.right, height: Math.max(0, y(band[0]) - y(band[1]))}));
    for (const edge of band) {
      svg.append(s('line', {class: 'band-edge', x1: margin.left, x2: width - margin.right, y1: y(edge), y2: y(edge)}));
    }
  }
  for (const tick of ticksFor(low, high)) {
    svg.append(s('line', {class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick)}),
      s('text', {class: 'axis', x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end'}, `${tick}`));
  }
  svg.append(s('text', {class: 'axis-title', x: 4, y: 12}, unit));
  if (timeLabel) svg.append(s('text', {class: 'axis-title', x: width - margin.right, y: height - 4, 'text-anchor': 'end'}, timeLabel));
  const timeTicks = Math.max(2, Math.min(5, Math.floor((width - margin.left - margin.right) / 80)));
  for (let i = 0; i <= timeTicks; i++) {
    const t = t0 + ((t1 - t0) * i) / timeTicks;
    svg.append(s('text', {class: 'axis', x: x(t), y: height - 26, 'text-anchor': i === 0 ? 'start' : i === timeTicks ? 'end' : 'middle'}, formatTime(t)));
  }
  const outside = (v) => band && (v < band[0] || v > band[1]);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
  svg.append(s('path', {class: 'series', d: path}));
  // the stretches out of range in red (a single sample out of range: a dot)
  let stretch = [];
  const flush = () => {
    if (stretch.length > 1) svg.append(s('path', {class: 'series-out', d: stretch.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('')}));
    else if (stretch.length === 1) svg.append(s('circle', {class: 'out', cx: x(stretch[0].t), cy: y(stretch[0].v), r: 3}));
    stretch = [];
  };
  for (const p of points) {
    if (outside(p.v)) stretch.push(p);
    else flush();
  }
  flush();
  return svg;
}

/** Horizontal bars of a percentage: rows [{label, value (0-100 or null), note}]. */
export function percentBars({rows, title, width = 600, labelWidth = 250}) {
  const layout = barLayout(width, labelWidth, rows);
  ({labelWidth} = layout);
  const rowHeight = layout.rowHeight;
  const height = rows.length * rowHeight + 24;
  const scale = (v) => ((width - labelWidth - 100) * v) / 100;
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart bars', role: 'img', 'aria-label': title}, s('title', {}, title));
  rows.forEach((row, i) => {
    const top = i * rowHeight + 6 + layout.barTop;
    svg.append(...(layout.narrow ? stackedLabel(row.label, labelWidth, top - layout.barTop, row.title)
      : rowLabel(row.label, labelWidth - 8, top + 11, row.title)));
    svg.append(s('rect', {class: 'track', x: labelWidth, y: top + 3, width: scale(100), height: 16, rx: 3}));
    if (row.value !== null && row.value !== undefined) {
      const level = row.value >= 90 ? 'good' : row.value >= 75 ? 'fair' : 'poor';
      svg.append(s('rect', {class: `bar bar-${level}`, x: labelWidth, y: top + 3, width: scale(row.value), height: 16, rx: 3}));
    }
    const value = row.value === null || row.value === undefined ? '—' : `${row.value.toFixed(1)}%`;
    svg.append(s('text', {class: 'value', x: labelWidth + scale(100) + 6, y: top + 15}, value));
    if (row.note) svg.append(s('text', {class: 'note', x: labelWidth + scale(100) + 6, y: top + 28}, row.note));
  });
  for (const mark of [0, 50, 100]) {
    svg.append(s('text', {class: 'axis', x: labelWidth + scale(mark), y: height - 4, 'text-anchor': 'middle'}, `${mark}%`));
  }
  svg.append(s('line', {class: 'target', x1: labelWidth + scale(90), x2: labelWidth + scale(90), y1: 4, y2: height - 16}));
  return svg;
}

export const fmt = (v) => (v === null || v === undefined ? '—' : (Math.round(v * 10) / 10).toFixed(1));

/** Paired horizontal bars (P50 solid, P90 light) per row: rows [{label, p50, p90}]. */
export function pairedBars({rows, title, unit, legend, width = 600, labelWidth = 250}) {
  const layout = barLayout(width, labelWidth, rows);
  ({labelWidth} = layout);
  const rowHeight = layout.rowHeight;
  const height = rows.length * rowHeight + 40;
  const max = Math.max(1, ...rows.flatMap((r) => [r.p50 ?? 0, r.p90 ?? 0]));
  const ticks = ticksFor(0, max, 4);
  const top = Math.max(max, ticks[ticks.length - 1]);
  const scale = (v) => ((width - labelWidth - 100) * v) / top;
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart paired', role: 'img', 'aria-label': title}, s('title', {}, title));
  svg.append(...pairLegend(labelWidth, legend), s('text', {class: 'legend axis-title', x: width - 4, y: 13, 'text-anchor': 'end'}, unit));
  rows.forEach((row, i) => {
    const y0 = i * rowHeight + 24 + layout.barTop;
    svg.append(...(layout.narrow ? stackedLabel(row.label, labelWidth, y0 - layout.barTop, row.title)
      : rowLabel(row.label, labelWidth - 8, y0 + 13, row.title)));
    svg.append(...pairBar(row, labelWidth, y0, scale));
  });
  for (const tick of ticks) {
    svg.append(s('line', {class: 'grid', x1: labelWidth + scale(tick), x2: labelWidth + scale(tick), y1: 20, y2: height - 14}),
      s('text', {class: 'axis', x: labelWidth + scale(tick), y: height - 2, 'text-anchor': 'middle'}, `${tick}`));
  }
  return svg;
}

function pairLegend(x, legend) {
  return [s('rect', {class: 'p90', x, y: 4, width: 12, height: 10}),
    s('text', {class: 'legend', x: x + 16, y: 13}, legend[1]),
    s('rect', {class: 'p50', x: x + 70, y: 4, width: 12, height: 10}),
    s('text', {class: 'legend', x: x + 86, y: 13}, legend[0])];
}

function pairBar(row, x, y0, scale) {
  const out = [];
  if (row.p90 !== null && row.p90 !== undefined) out.push(s('rect', {class: 'p90', x, y: y0 + 2, width: scale(row.p90), height: 22, rx: 2}));
  if (row.p50 !== null && row.p50 !== undefined) out.push(s('rect', {class: 'p50', x, y: y0 + 7, width: scale(row.p50), height: 12, rx: 2}));
  out.push(s('text', {class: 'value', x: x + scale(row.p90 ?? row.p50 ?? 0) + 6, y: y0 + 17}, `${fmt(row.p50)} / ${fmt(row.p90)}`));
  return out;
}

/** P50/P90 of several legs side by side, one column per leg (each with its own scale):
 * rows [{label, legs: {name: {p50, p90}}}], columns [{name, title}]. */
export function legMatrix({rows, columns, title, unit, legend, width = 1150, labelWidth = 250}) {
  const rowHeight = 36;
  const height = rows.length * rowHeight + 50;
  const columnWidth = (width - labelWidth) / columns.length;
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart legs', role: 'img', 'aria-label': title}, s('title', {}, title));
  svg.append(...pairLegend(8, legend), s('text', {class: 'legend axis-title', x: 8, y: 30}, unit));
  columns.forEach((column, c) => {
    const x = labelWidth + c * columnWidth;
    const max = Math.max(1, ...rows.flatMap((r) => [r.legs[column.name]?.p50 ?? 0, r.legs[column.name]?.p90 ?? 0]));
    const ticks = ticksFor(0, max, 3);
    const top = Math.max(max, ticks[ticks.length - 1]);
    const scale = (v) => ((columnWidth - 100) * v) / top;
    svg.append(s('text', {class: 'column-title', x, y: 16}, column.title));
    for (const tick of ticks) {
      svg.append(s('line', {class: 'grid', x1: x + scale(tick), x2: x + scale(tick), y1: 28, y2: height - 14}),
        s('text', {class: 'axis', x: x + scale(tick), y: height - 2, 'text-anchor': 'middle'}, `${tick}`));
    }
    rows.forEach((row, i) => svg.append(...pairBar(row.legs[column.name] || {}, x, i * rowHeight + 32, scale)));
  });
  rows.forEach((row, i) => svg.append(...rowLabel(row.label, labelWidth - 12, i * rowHeight + 45, row.title)));
  return svg;
}

/** Vertical bars of a percentage per day: days [{day, value|null}]. */
export function trendBars({days, title, width = 1150, height = 190}) {
  const margin = {top: 10, right: 8, bottom: 22, left: 36};
  const slot = (width - margin.left - margin.right) / Math.max(1, days.length);
  const y = (v) => margin.top + (1 - v / 100) * (height - margin.top - margin.bottom);
  const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'chart trend', role: 'img', 'aria-label': title}, s('title', {}, title));
  const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(width / 56))));
  for (const tick of [0, 50, 100]) {
    svg.append(s('line', {class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick)}),
      s('text', {class: 'axis', x: margin.left - 4, y: y(tick) + 4, 'text-anchor': 'end'}, `${tick}%`));
  }
  svg.append(s('line', {class: 'target', x1: margin.left, x2: width - margin.right, y1: y(90), y2: y(90)}));
  days.forEach((d, i) => {
    const x0 = margin.left + i * slot;
    if (d.value !== null && d.value !== undefined) {
      const level = d.value >= 90 ? 'good' : d.value >= 75 ? 'fair' : 'poor';
      svg.append(s('rect', {class: `bar bar-${level}`, x: x0 + slot * 0.15, y: y(d.value), width: slot * 0.7, height: y(0) - y(d.value)},
        s('title', {}, `${d.day}: ${d.value.toFixed(1)}%`)));
    }
    if (i % every === 0 || i === days.length - 1) {
      svg.append(s('text', {class: 'axis', x: x0 + slot / 2, y: height - 6, 'text-anchor': 'middle'}, d.day.slice(5)));
    }
  });
  return svg;
}

/** A legend row: [{className, text}]. */
export function legend(items) {
  return h('ul', {class: 'chart-legend'}, items.map((item) => h('li', {}, h('span', {class: ['swatch', item.className], 'aria-hidden': 'true'}), item.text)));
}
