// The turnaround report of a period (GET /api/v1/reports/period): a day, a week, a month or a
// chosen range, in the network's time zone. On-time % per route, P50/P90 end to end and per
// leg (loaded → take-off included) for each route, priority and kind, rejections by reason
// and site, excursions per route, manifest discrepancies when there are any, the 30 days'
// on-time trend up to the period's end; every number in a table; CSV and a printable PDF.
//
// Routes are labelled with the sites' short names (the full names are the tooltip), and the
// charts are drawn at the width they get, labels above the bars on a phone.

import {ApiError, download, get} from '../api.js';
import {fmt, legend, legMatrix, NARROW, pairedBars, percentBars, trendBars} from '../charts.js';
import {fill, h, toast} from '../dom.js';
import {addDays, currentZone, day as today} from '../format.js';
import {label, language, t} from '../i18n.js';

const LEGS = ['collected_to_loaded', 'loaded_to_took_off', 'flight', 'landed_to_received'];
const MODES = ['day', 'week', 'month', 'range'];
const MAX_DAYS = 92; // the API's limit (turnaround/period_report.py)
const TREND_DAYS = 30;
const TREND_CONCURRENCY = 4;
const cache = new Map(); // day -> rows of the daily report (past days only)
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

export function mount(root, ctx, args) {
  return new ReportView(root, ctx, args);
}

/** The period of `mode` holding `anchor`: [first, last] (ISO days, both included). */
export function periodOf(mode, anchor) {
  if (mode === 'week') {
    const weekday = (new Date(`${anchor}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday 0
    const monday = addDays(anchor, -weekday);
    return [monday, addDays(monday, 6)];
  }
  if (mode === 'month') {
    const first = `${anchor.slice(0, 8)}01`;
    return [first, addDays(`${addDays(first, 32).slice(0, 8)}01`, -1)];
  }
  return [anchor, anchor];
}

function spanDays(first, last) {
  return Math.round((Date.parse(`${last}T00:00:00Z`) - Date.parse(`${first}T00:00:00Z`)) / 86_400_000) + 1;
}

class ReportView {
  constructor(root, ctx, args) {
    this.ctx = ctx;
    this.mode = h('select', {id: 'report-mode', onchange: () => this.changeMode()},
      MODES.map((mode) => h('option', {value: mode}, t(`report.mode.${mode}`))));
    this.fromInput = h('input', {type: 'date', id: 'report-from', max: today(), onchange: () => this.changeDates('from')});
    this.toInput = h('input', {type: 'date', id: 'report-to', max: today(), onchange: () => this.changeDates('to')});
    this.toField = h('span', {class: 'field inline'}, h('label', {for: 'report-to'}, t('report.to')), this.toInput);
    this.body = h('div', {class: 'report-body', 'aria-live': 'polite'});
    this.trend = h('section', {class: 'panel', 'aria-labelledby': 'trend-title'});
    fill(root, h('div', {class: 'report-layout'},
      h('div', {class: 'report-controls'},
        h('h1', {class: 'view-title'}, t('report.title')),
        h('div', {class: 'report-period'},
          h('span', {class: 'field inline'}, h('label', {for: 'report-mode'}, t('report.period')), this.mode),
          h('span', {class: 'field inline'}, h('label', {for: 'report-from', id: 'report-from-label'}, t('report.from')), this.fromInput),
          this.toField,
          h('span', {class: 'report-steps'},
            h('button', {type: 'button', class: 'secondary small', id: 'report-prev', onclick: () => this.step(-1)}, `‹ ${t('report.prev')}`),
            h('button', {type: 'button', class: 'secondary small', id: 'report-next', onclick: () => this.step(1)}, `${t('report.next')} ›`)),
          h('span', {class: 'report-downloads'},
            h('button', {type: 'button', class: 'primary small', id: 'report-csv', onclick: () => this.csv()}, t('report.csv')),
            h('button', {type: 'button', class: 'secondary small', id: 'report-pdf', onclick: () => this.pdf()}, t('report.pdf')))),
        h('p', {class: 'muted small', id: 'report-tz'}, t('report.tz', {zone: currentZone()}))),
      this.body, this.trend));
    this.update(args);
  }

  // --- the period -------------------------------------------------------------------------

  /** #/report/<day> (one day), #/report/<mode>/<first>[/<last>] */
  update(args) {
    let [mode, first, last] = MODES.includes(args?.[0]) ? args : ['day', args?.[0], args?.[0]];
    if (!ISO_DAY.test(first || '')) first = today();
    if (mode !== 'range') [first, last] = periodOf(mode, first);
    else if (!ISO_DAY.test(last || '') || last < first) last = first;
    if (spanDays(first, last) > MAX_DAYS) last = addDays(first, MAX_DAYS - 1);
    Object.assign(this, {modeValue: mode, first, last});
    this.mode.value = mode;
    this.fromInput.value = first;
    this.toInput.value = last;
    this.toField.hidden = mode !== 'range';
    document.getElementById('report-from-label').textContent = t(mode === 'range' ? 'report.from' : 'report.in');
    document.getElementById('report-next').disabled = last >= today();
    document.getElementById('report-prev').textContent = `‹ ${t(`report.prev.${mode}`)}`;
    document.getElementById('report-next').textContent = `${t(`report.next.${mode}`)} ›`;
    this.load();
    this.loadTrend(last > today() ? today() : last);
  }

  go(mode, first, last) {
    this.ctx.navigate(mode === 'range' ? `#/report/range/${first}/${last}` : mode === 'day' ? `#/report/${first}` : `#/report/${mode}/${first}`);
  }

  changeMode() {
    // a day, week or month: the one holding the period's last day (or today, if sooner)
    const mode = this.mode.value;
    const anchor = this.last > today() ? today() : this.last;
    this.go(mode, mode === 'range' ? this.first : anchor, mode === 'range' ? this.last : undefined);
  }

  changeDates(which) {
    const first = this.fromInput.value;
    let last = this.modeValue === 'range' ? this.toInput.value : first;
    if (!first || !last) return;
    if (which === 'from' && last < first) last = first;
    if (spanDays(first, last) > MAX_DAYS) {
      toast(t('report.too.long', {n: MAX_DAYS}), 'error');
      last = addDays(first, MAX_DAYS - 1);
    }
    this.go(this.modeValue, last < first ? last : first, last);
  }

  step(direction) {
    const mode = this.modeValue;
    let first;
    if (mode === 'month') first = periodOf('month', direction < 0 ? addDays(this.first, -1) : addDays(this.last, 1))[0];
    else first = addDays(this.first, direction * spanDays(this.first, this.last));
    if (first > today()) return;
    const last = addDays(first, spanDays(this.first, this.last) - 1);
    this.go(mode, first, mode === 'month' ? undefined : last);
  }

  query(extra = '') {
    return `/api/v1/reports/period?from=${this.first}&to=${this.last}${extra}`;
  }

  // --- the report -------------------------------------------------------------------------

  async load() {
    const key = `${this.first}/${this.last}`;
    fill(this.body, h('p', {}, t('loading')));
    let report;
    try {
      report = await get(this.query());
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      fill(this.body, h('p', {class: 'error-state'}, t('error.generic', {detail: error.message}), ' ',
        h('button', {type: 'button', class: 'secondary small', onclick: () => this.load()}, t('error.retry'))));
      return;
    }
    if (key !== `${this.first}/${this.last}`) return;
    this.report = report;
    this.render();
  }

  render() {
    const {groups, routes, rejections, discrepancies, requests = []} = this.report;
    if (!groups.length) {
      fill(this.body, h('p', {class: 'empty-state panel'}, t('report.none.period', {period: this.periodText()})));
      return;
    }
    const unit = t('report.axes', {unit: t('unit.min')});
    const legend = [t('report.p50'), t('report.p90')];
    const charts = [
      this.section('report.ontime', (width) => this.onTimeChart(groups, width)),
      this.section('report.p', (width) => pairedBars({rows: groups.map((r) => this.chartRow(r, {p50: r.p50_min, p90: r.p90_min})),
        title: t('report.p'), unit, legend, width})),
      this.section('report.legs', (width) => (width < NARROW
        ? LEGS.map((leg) => h('figure', {class: 'leg-chart'}, h('figcaption', {}, t(`report.leg.${leg}`)),
          pairedBars({rows: groups.map((r) => this.chartRow(r, {p50: r[`p50_${leg}_min`], p90: r[`p90_${leg}_min`]})),
            title: t(`report.leg.${leg}`), unit, legend, width})))
        : legMatrix({rows: groups.map((r) => ({...this.chartRow(r), legs: Object.fromEntries(LEGS.map((leg) => [leg, {p50: r[`p50_${leg}_min`], p90: r[`p90_${leg}_min`]}]))})),
          columns: LEGS.map((leg) => ({name: leg, title: t(`report.leg.${leg}`)})),
          title: t('report.legs'), unit, legend, width}))),
    ];
    fill(this.body,
      h('p', {class: 'report-summary'}, this.periodText()),
      h('div', {class: 'report-grid'}, charts[0], charts[1]),
      charts[2],
      h('div', {class: 'report-grid'},
        this.section('report.excursions', this.routesTable(routes)),
        this.section('report.rejections', this.rejectionsTable(rejections)),
        discrepancies.length ? this.section('report.discrepancies', this.discrepanciesTable(discrepancies)) : null,
        requests.length ? this.section('report.requests', this.requestsTable(requests)) : null),
      this.section('report.table', this.table(groups)));
    // charts are drawn once their panels are laid out, at the width each one has
    for (const section of charts) section.draw();
  }

  /** The width a chart gets inside `el` (its content box), drawn 1:1. */
  chartWidth(el = this.body) {
    const style = getComputedStyle(el);
    const inner = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return Math.max(260, Math.min(2400, Math.floor(inner || document.documentElement.clientWidth - 34)));
  }

  periodText() {
    const days = spanDays(this.first, this.last);
    return this.first === this.last ? t('report.period.day', {day: this.first})
      : t('report.period.range', {first: this.first, last: this.last, n: days});
  }

  /** A panel; `content` may be a function of the panel's width, drawn by `draw()`. */
  section(key, content) {
    const id = `section-${key.replace(/\W/g, '-')}`;
    const heading = h('h2', {id}, t(key));
    const el = h('section', {class: 'panel report-section', 'aria-labelledby': id}, heading,
      typeof content === 'function' ? null : content);
    el.draw = () => fill(el, heading, content(this.chartWidth(el)));
    return el;
  }

  // --- route labels: short names, full names as the tooltip -------------------------------

  site(id) {
    const site = this.ctx.sites.get(id);
    if (!site) return {short: id || '—', full: id || '—'};
    const zh = language() === 'zh';
    const full = zh ? site.name_zh : site.name_en;
    const short = (zh ? site.short_zh : site.short_en) || this.ctx.siteName(id).replace(/（.*?）/g, '');
    return {short, full};
  }

  route(row) {
    const [a, b] = [this.site(row.origin_site_id), this.site(row.destination_site_id)];
    return {short: `${a.short} → ${b.short}`, full: `${a.full} → ${b.full}`};
  }

  routeCell(row) {
    const route = this.route(row);
    return h('th', {scope: 'row', class: 'route-cell', title: route.full}, route.short);
  }

  chartRow(row, values = {}) {
    const route = this.route(row);
    return {label: [route.short, `${label('priority', row.priority)} · ${label('kind', row.kind)}`], title: route.full, ...values};
  }

  onTimeChart(groups, width) {
    const routes = new Map();
    for (const row of groups) {
      const key = `${row.origin_site_id}|${row.destination_site_id}`;
      const sum = routes.get(key) || {row, received: 0, onTime: 0};
      sum.received += row.received;
      sum.onTime += row.on_time;
      routes.set(key, sum);
    }
    const bars = [...routes.values()].map((sum) => ({
      label: this.route(sum.row).short,
      title: this.route(sum.row).full,
      value: sum.received ? (100 * sum.onTime) / sum.received : null,
      note: t('report.ontime.n', {on: sum.onTime, n: sum.received}),
    }));
    return [percentBars({rows: bars, title: t('report.ontime'), width}),
      legend([{className: 'bar-good', text: '≥ 90%'}, {className: 'bar-fair', text: '75–90%'}, {className: 'bar-poor', text: '< 75%'}, {className: 'target-swatch', text: t('report.target')}])];
  }

  smallTable(id, columns, rows) {
    return h('div', {class: 'table-scroll'}, h('table', {class: 'report-table compact', id},
      h('thead', {}, h('tr', {}, columns.map((key) => h('th', {scope: 'col'}, t(key))))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: columns.length, class: 'muted'}, t('empty'))))));
  }

  routesTable(routes) {
    return this.smallTable('report-excursions', ['report.col.route', 'report.col.specimens', 'report.col.excursions'],
      routes.map((r) => h('tr', {}, this.routeCell(r), h('td', {class: 'num'}, r.specimens),
        h('td', {class: ['num', r.excursions && 'bad']}, r.excursions))));
  }

  rejectionsTable(rejections) {
    return this.smallTable('report-rejections', ['report.col.reason', 'report.col.site', 'report.col.count'],
      rejections.map((r) => h('tr', {}, h('td', {}, label('reason', r.reason)),
        h('td', {title: this.site(r.site_id).full}, this.site(r.site_id).short), h('td', {class: 'num bad'}, r.count))));
  }

  discrepanciesTable(discrepancies) {
    return this.smallTable('report-discrepancies', ['report.col.site', 'report.col.finding', 'report.col.count'],
      discrepancies.map((d) => h('tr', {}, h('td', {title: this.site(d.site_id).full}, this.site(d.site_id).short),
        h('td', {}, label('report.finding', d.finding)), h('td', {class: 'num bad'}, d.count))));
  }

  requestsTable(requests) {
    return this.smallTable('report-requests', ['report.col.route', 'report.col.priority', 'report.col.requests',
      'report.col.picked_up', 'report.col.by_courier', 'report.request_to_pickup'],
    requests.map((r) => h('tr', {}, this.routeCell(r), h('td', {}, label('priority', r.priority)),
      h('td', {class: 'num'}, r.requests), h('td', {class: 'num'}, r.picked_up), h('td', {class: 'num'}, r.by_courier),
      h('td', {class: 'num'}, `${fmt(r.request_to_pickup_p50_min)} / ${fmt(r.request_to_pickup_p90_min)}`))));
  }

  table(rows) {
    const columns = ['report.col.route', 'report.col.priority', 'report.col.kind', 'report.col.specimens', 'report.col.received',
      'report.col.ontime', 'report.col.ontime_pct', 'report.p50', 'report.p90',
      ...LEGS.map((leg) => `report.leg.${leg}`), 'report.col.excursions', 'report.col.rejections'];
    const pair = (a, b) => `${fmt(a)} / ${fmt(b)}`;
    return h('div', {class: 'table-scroll'}, h('table', {class: 'report-table', id: 'report-table'},
      h('caption', {class: 'muted small'}, t('report.axes', {unit: t('unit.min')})),
      h('thead', {}, h('tr', {}, columns.map((key) => h('th', {scope: 'col'}, t(key))))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        this.routeCell(r),
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
        h('td', {class: ['num', r.rejections && 'bad']}, r.rejections))))));
  }

  // --- the 30 days' trend (the daily report) ----------------------------------------------

  async rows(day) {
    if (cache.has(day)) return cache.get(day);
    const rows = await get(`/api/v1/reports/turnaround?day=${day}`);
    if (day < today()) cache.set(day, rows);
    return rows;
  }

  async loadTrend(end) {
    const days = Array.from({length: TREND_DAYS}, (_, i) => addDays(end, i - TREND_DAYS + 1));
    const title = h('h2', {id: 'trend-title'}, t('report.trend'));
    fill(this.trend, title, h('p', {class: 'muted'}, t('report.trend.loading')));
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
    if (end !== (this.last > today() ? today() : this.last)) return;
    fill(this.trend, title,
      trendBars({days: days.map((day) => ({day, value: values.get(day)})), title: t('report.trend'), width: this.chartWidth(this.trend)}),
      h('p', {class: 'muted small'}, t('report.trend.axes', {zone: currentZone()})),
      legend([{className: 'target-swatch', text: t('report.target')}]));
  }

  // --- downloads --------------------------------------------------------------------------

  async csv() {
    await this.save(this.query('&format=csv&table=groups'), `turnaround-${this.first}-${this.last}.csv`);
  }

  async pdf() {
    await this.save(this.query(`&format=pdf&language=${language()}`), `turnaround-${this.first}-${this.last}.pdf`);
  }

  async save(path, name) {
    try {
      await download(path, name);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) toast(t('error.generic', {detail: error.message}), 'error');
    }
  }

  destroy() {}
}
