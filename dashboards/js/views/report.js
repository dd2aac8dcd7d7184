// The turnaround report of a day (GET /api/v1/reports/turnaround): on-time % per route,
// P50/P90 end to end and per leg for each route, priority and kind, the last 30 days' on-time
// trend, every number in a table, and the CSV download.

import {ApiError, download, get} from '../api.js';
import {fmt, legend, legMatrix, pairedBars, percentBars, trendBars} from '../charts.js';
import {fill, h, toast} from '../dom.js';
import {addDays, currentZone, day as today} from '../format.js';
import {label, language, t} from '../i18n.js';

const LEGS = ['collected_to_loaded', 'flight', 'landed_to_received'];
const TREND_DAYS = 30;
const TREND_CONCURRENCY = 4;
const cache = new Map(); // day -> rows (past days only: they no longer change much)

export function mount(root, ctx, args) {
  return new ReportView(root, ctx, args);
}

class ReportView {
  constructor(root, ctx, args) {
    this.ctx = ctx;
    this.dayInput = h('input', {type: 'date', id: 'report-day', max: today(), onchange: (e) => e.target.value && this.go(e.target.value)});
    this.body = h('div', {class: 'report-body', 'aria-live': 'polite'});
    this.trend = h('section', {class: 'panel', 'aria-labelledby': 'trend-title'});
    fill(root, h('div', {class: 'report-layout'},
      h('div', {class: 'report-controls'},
        h('h1', {class: 'view-title'}, t('report.title')),
        h('div', {class: 'field inline'},
          h('label', {for: 'report-day'}, t('report.day')), this.dayInput,
          h('button', {type: 'button', class: 'secondary small', onclick: () => this.go(addDays(this.day, -1))}, `‹ ${t('report.prev')}`),
          h('button', {type: 'button', class: 'secondary small', id: 'report-next', onclick: () => this.go(addDays(this.day, 1))}, `${t('report.next')} ›`),
          h('button', {type: 'button', class: 'primary small', id: 'report-csv', onclick: () => this.csv()}, t('report.csv'))),
        h('p', {class: 'muted small'}, t('report.tz', {zone: currentZone()}))),
      this.body, this.trend));
    this.update(args);
  }

  go(day) {
    if (day > today()) return;
    this.ctx.navigate(`#/report/${day}`);
  }

  update(args) {
    const day = /^\d{4}-\d{2}-\d{2}$/.test(args?.[0] || '') ? args[0] : today();
    this.day = day;
    this.dayInput.value = day;
    document.getElementById('report-next').disabled = day >= today();
    this.load(day);
    this.loadTrend(day);
  }

  async rows(day) {
    if (cache.has(day)) return cache.get(day);
    const rows = await get(`/api/v1/reports/turnaround?day=${day}`);
    if (day < today()) cache.set(day, rows);
    return rows;
  }

  async load(day) {
    fill(this.body, h('p', {}, t('loading')));
    let rows;
    try {
      rows = await this.rows(day);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      fill(this.body, h('p', {class: 'error-state'}, t('error.generic', {detail: error.message}), ' ',
        h('button', {type: 'button', class: 'secondary small', onclick: () => this.load(day)}, t('error.retry'))));
      return;
    }
    if (day !== this.day) return;
    if (!rows.length) {
      fill(this.body, h('p', {class: 'empty-state panel'}, t('report.none', {day})));
      return;
    }
    fill(this.body,
      h('div', {class: 'report-grid'},
        this.section('report.ontime', this.onTimeChart(rows)),
        this.section('report.p', pairedBars({rows: rows.map((r) => ({label: this.rowLabel(r), p50: r.p50_min, p90: r.p90_min})),
          title: t('report.p'), unit: t('unit.min'), legend: [t('report.p50'), t('report.p90')]}))),
      this.section('report.legs', legMatrix({
        rows: rows.map((r) => ({label: this.rowLabel(r), legs: Object.fromEntries(LEGS.map((leg) => [leg, {p50: r[`p50_${leg}_min`], p90: r[`p90_${leg}_min`]}]))})),
        columns: LEGS.map((leg) => ({name: leg, title: t(`report.leg.${leg}`)})),
        title: t('report.legs'), unit: t('unit.min'), legend: [t('report.p50'), t('report.p90')]})),
      this.section('report.table', this.table(rows)));
  }

  section(key, ...content) {
    const id = `section-${key.replace(/\W/g, '-')}`;
    return h('section', {class: 'panel report-section', 'aria-labelledby': id}, h('h2', {id}, t(key)), content);
  }

  shortSite(id) {
    const name = this.ctx.siteName(id);
    return language() === 'zh' ? name.replace(/（.*?）/g, '') : name;
  }

  route(row) {
    return `${this.shortSite(row.origin_site_id)} → ${this.shortSite(row.destination_site_id)}`;
  }

  rowLabel(row) {
    return [this.route(row), `${label('priority', row.priority)} · ${label('kind', row.kind)}`];
  }

  onTimeChart(rows) {
    const routes = new Map();
    for (const row of rows) {
      const key = `${row.origin_site_id}|${row.destination_site_id}`;
      const sum = routes.get(key) || {row, received: 0, onTime: 0, specimens: 0};
      sum.received += row.received;
      sum.onTime += row.on_time;
      sum.specimens += row.specimens;
      routes.set(key, sum);
    }
    const bars = [...routes.values()].map((sum) => ({
      label: this.route(sum.row),
      value: sum.received ? (100 * sum.onTime) / sum.received : null,
      note: t('report.ontime.n', {on: sum.onTime, n: sum.received}),
    }));
    return [percentBars({rows: bars, title: t('report.ontime')}),
      legend([{className: 'bar-good', text: '≥ 90%'}, {className: 'bar-fair', text: '75–90%'}, {className: 'bar-poor', text: '< 75%'}, {className: 'target-swatch', text: t('report.target')}])];
  }

  table(rows) {
    const columns = ['report.col.route', 'report.col.priority', 'report.col.kind', 'report.col.specimens', 'report.col.received',
      'report.col.ontime', 'report.col.ontime_pct', 'report.p50', 'report.p90',
      ...LEGS.map((leg) => `report.leg.${leg}`), 'report.col.excursions', 'report.col.rejections', 'report.col.flights'];
    const pair = (a, b) => `${fmt(a)} / ${fmt(b)}`;
    return h('div', {class: 'table-scroll'}, h('table', {class: 'report-table', id: 'report-table'},
      h('thead', {}, h('tr', {}, columns.map((key) => h('th', {scope: 'col'}, t(key))))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        h('th', {scope: 'row'}, this.route(r)),
        h('td', {}, label('priority', r.priority)),
        h('td', {}, label('kind', r.kind)),
        h('td', {class: 'num'}, r.specimens),
        h('td', {class: 'num'}, r.received),
        h('td', {class: 'num'}, r.on_time),
        h('td', {class: 'num'}, r.on_time_pct === null ? '—' : `${r.on_time_pct}%`),
        h('td', {class: 'num'}, fmt(r.p50_min)),
        h('td', {class: 'num'}, fmt(r.p90_min)),
        LEGS.map((leg) => h('td', {class: 'num'}, pair(r[`p50_${leg}_min`], r[`p90_${leg}_min`]))),
        h('td', {class: ['num', r.excursions && 'bad']}, r.excursions),
        h('td', {class: ['num', r.rejections && 'bad']}, r.rejections),
        h('td', {class: 'num'}, r.flights))))));
  }

  async loadTrend(end) {
    const days = Array.from({length: TREND_DAYS}, (_, i) => addDays(end, i - TREND_DAYS + 1));
    fill(this.trend, h('h2', {id: 'trend-title'}, t('report.trend')), h('p', {class: 'muted'}, t('report.trend.loading')));
    const values = new Map();
    const queue = [...days];
    const worker = async () => {
      while (queue.length) {
        const day = queue.shift();
        try {
          const rows = await this.rows(day);
          const received = rows.reduce((n, r) => n + r.received, 0);
          const onTime = rows.reduce((n, r) => n + r.on_time, 0);
          values.set(day, received ? (100 * onTime) / received : null);
        } catch {
          values.set(day, null);
        }
      }
    };
    await Promise.all(Array.from({length: TREND_CONCURRENCY}, worker));
    if (end !== this.day) return;
    fill(this.trend, h('h2', {id: 'trend-title'}, t('report.trend')),
      trendBars({days: days.map((day) => ({day, value: values.get(day)})), title: t('report.trend')}),
      legend([{className: 'target-swatch', text: t('report.target')}]));
  }

  async csv() {
    try {
      await download(`/api/v1/reports/turnaround?day=${this.day}&format=csv`, `turnaround-${this.day}.csv`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) toast(t('error.generic', {detail: error.message}), 'error');
    }
  }

  destroy() {}
}
