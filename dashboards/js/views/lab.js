// The lab's view: scan or type a barcode and see the specimen's story (custody timeline,
// temperature against its allowed band, ETA and deadline), the incoming list of the lab's
// site by urgency, and receipt or rejection. Dispatchers and administrators get the same
// lookup (any site, read only).

import {ApiError, get, post, uuid4} from '../api.js';
import {temperatureChart} from '../charts.js';
import {dialog, fill, h, toast} from '../dom.js';
import {currentZone, dateTime, duration, now, number, secondsUntil, shortTime, time} from '../format.js';
import {label, t} from '../i18n.js';
import {canonicalBarcode} from '../scan_field.js';
import {AlertPanel} from './alerts.js';

const TAT_RANK = {breached: 0, warning: 1, on_track: 2, missed: 3, met: 4, rejected: 5};
const SEAL_PATTERN = '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}';
const PRIORITY_RANK = {stat: 0, urgent: 1, routine: 2};
const REASONS = ['hemolysed', 'clotted', 'insufficient_volume', 'temperature_excursion', 'seal_broken',
  'label_mismatch', 'leaking', 'delayed', 'other'];
const FINAL = new Set(['received', 'rejected']);
const REFRESH_SLOW_MS = 30_000;
const REFRESH_FAST_MS = 5_000;
const ETA_LOOKUPS = 20;

export function mount(root, ctx, args) {
  return new LabView(root, ctx, args);
}

class LabView {
  constructor(root, ctx, args) {
    this.ctx = ctx;
    this.isLab = ctx.user.role === 'lab';
    const labSite = [...ctx.sites.values()].find((site) => site.kind === 'lab_hospital');
    this.site = this.isLab ? ctx.user.site_id : (sessionStorage.getItem('dronelog.lookup-site') || labSite?.id || [...ctx.sites.keys()][0]);
    this.incoming = [];
    this.etas = new Map(); // barcode -> {eta, fetched}
    this.barcode = null;
    this.detail = null;
    this.listeners = [];
    this.timers = [];
    this.build(root);
    this.start();
    this.update(args);
  }

  build(root) {
    this.input = h('input', {id: 'barcode', name: 'barcode', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false',
      inputmode: 'text', required: true, maxlength: 64, 'aria-describedby': 'barcode-hint'});
    const form = h('form', {class: 'scan-form', role: 'search'},
      h('label', {for: 'barcode', class: 'scan-label'}, t('lab.scan')),
      h('div', {class: 'scan-row'}, this.input, h('button', {type: 'submit', class: 'primary'}, t('lab.scan.submit'))),
      h('p', {id: 'barcode-hint', class: 'muted small'}, t('lab.scan.hint')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const barcode = canonicalBarcode(this.input.value);
      this.input.value = barcode;
      if (!barcode) return;
      this.ctx.navigate(`#/lab/${encodeURIComponent(barcode)}`);
      this.input.select();
    });
    let siteControl = null;
    if (!this.isLab) {
      const select = h('select', {id: 'lookup-site', onchange: (e) => {
        this.site = e.target.value;
        sessionStorage.setItem('dronelog.lookup-site', this.site);
        this.loadIncoming();
      }}, [...this.ctx.sites.values()].map((site) => h('option', {value: site.id, selected: site.id === this.site}, this.ctx.siteName(site.id))));
      siteControl = h('div', {class: 'field inline'}, h('label', {for: 'lookup-site'}, t('lab.site')), select);
    }
    this.incomingList = h('ul', {class: 'incoming-list', id: 'incoming-list'}, h('li', {class: 'empty-state'}, t('loading')));
    this.story = h('section', {class: 'panel story-panel', id: 'story', 'aria-labelledby': 'story-title', tabindex: '-1'});
    this.alertPanel = this.isLab ? new AlertPanel(this.ctx, {canAct: false, title: t('alerts.site.title')}) : null;
    const title = this.isLab ? t('lab.title', {site: this.ctx.siteName(this.site)}) : t('lab.title.all');
    fill(root, h('div', {class: 'lab-layout'},
      h('div', {class: 'lab-top'}, h('h1', {class: 'view-title'}, title), form),
      h('div', {class: 'lab-columns'},
        h('div', {class: 'lab-left'},
          h('section', {class: 'panel incoming-panel', 'aria-labelledby': 'incoming-title'},
            h('div', {class: 'panel-head'}, h('h2', {id: 'incoming-title'}, t('lab.incoming')), siteControl),
            this.incomingList),
          this.alertPanel?.el),
        this.story)));
  }

  start() {
    const live = this.ctx.live;
    if (live) {
      this.listen(live, 'custody', (e) => this.onCustody(e.detail));
      this.listen(live, 'alert', (e) => this.alertPanel?.apply(e.detail));
      this.listen(live, 'reset', () => this.refresh());
      this.listen(live, 'state', () => this.schedulePolling());
    }
    this.loadIncoming();
    this.alertPanel?.load();
    this.timers.push(setInterval(() => this.tick(), 1000));
    // the state of an open specimen also changes without a custody event (the scheduler
    // sees it take off, land, go late): look again while it is on screen
    this.timers.push(setInterval(() => {
      if (this.detail && !this.closed(this.detail)) this.loadStory(this.barcode, {quiet: true});
    }, 10_000));
    this.schedulePolling();
  }

  listen(target, type, handler) {
    target.addEventListener(type, handler);
    this.listeners.push([target, type, handler]);
  }

  schedulePolling() {
    clearInterval(this.pollTimer);
    const live = this.ctx.live?.state === 'live';
    this.pollTimer = setInterval(() => this.refresh(), live ? REFRESH_SLOW_MS : REFRESH_FAST_MS);
  }

  refresh() {
    this.loadIncoming();
    this.alertPanel?.load();
    if (this.barcode) this.loadStory(this.barcode, {quiet: true});
  }

  update(args) {
    const barcode = args?.[0] ? canonicalBarcode(args[0]) : '';
    if (barcode) {
      this.input.value = barcode;
      this.loadStory(barcode);
    } else {
      this.barcode = null;
      this.detail = null;
      fill(this.story, h('h2', {id: 'story-title', class: 'visually-hidden'}, t('specimen.story')),
        h('p', {class: 'empty-state'}, t('lab.pick')));
      this.input.focus();
    }
  }

  onCustody(event) {
    if (!event) return;
    if (event.barcode === this.barcode) this.debounce('story', () => this.loadStory(this.barcode, {quiet: true}), 600);
    this.debounce('incoming', () => this.loadIncoming(), 1000);
  }

  debounce(name, action, ms) {
    this.debounced ??= {};
    clearTimeout(this.debounced[name]);
    this.debounced[name] = setTimeout(action, ms);
  }

  // --- incoming -----------------------------------------------------------------------------

  async loadIncoming() {
    const site = this.site;
    try {
      const page = await get(`/api/v1/specimens?site=${encodeURIComponent(site)}&open_only=true&limit=500`);
      if (site !== this.site) return;
      this.incoming = page.items.filter((x) => x.destination_site_id === site && !this.done?.has(x.barcode)).sort((a, b) =>
        (Number(!a.problems?.length) - Number(!b.problems?.length))
        || (TAT_RANK[a.turnaround] - TAT_RANK[b.turnaround]) || (PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority])
        || (Date.parse(a.deadline) - Date.parse(b.deadline)));
      this.incomingError = null;
      this.loadEtas();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.incomingError = error;
    }
    this.renderIncoming();
  }

  async loadEtas() {
    const wanted = this.incoming.filter((x) => x.state === 'in_transit').slice(0, ETA_LOOKUPS)
      .filter((x) => !this.etas.has(x.barcode) || now() - this.etas.get(x.barcode).fetched > 20_000);
    await Promise.all(wanted.map(async (x) => {
      try {
        const detail = await get(`/api/v1/specimens/${encodeURIComponent(x.barcode)}`);
        this.etas.set(x.barcode, {eta: detail.eta, fetched: now()});
      } catch {
        // the list shows the deadline anyway
      }
    }));
    if (wanted.length) this.renderIncoming();
  }

  renderIncoming() {
    if (this.incomingError) {
      fill(this.incomingList, h('li', {class: 'error-state'}, t('error.generic', {detail: this.incomingError.message}), ' ',
        h('button', {type: 'button', class: 'secondary small', onclick: () => this.loadIncoming()}, t('error.retry'))));
      return;
    }
    if (!this.incoming.length) {
      fill(this.incomingList, h('li', {class: 'empty-state'}, t('lab.incoming.none')));
      return;
    }
    fill(this.incomingList, this.incoming.map((x) => {
      const eta = this.etas.get(x.barcode)?.eta;
      const problems = x.problems || [];
      // an open problem is never shown beside a green "on track": the problems take its place
      const status = problems.length
        ? problems.map((p) => h('span', {class: 'badge problem', 'data-problem': p}, label('problem', p)))
        : h('span', {class: ['badge', `tat-badge-${x.turnaround}`]}, label('tat', x.turnaround));
      return h('li', {class: ['incoming-item', `tat-${x.turnaround}`, problems.length && 'has-problems', x.barcode === this.barcode && 'current'], 'data-barcode': x.barcode},
        h('a', {href: `#/lab/${encodeURIComponent(x.barcode)}`, class: 'incoming-link', 'aria-current': x.barcode === this.barcode ? 'true' : null},
          h('span', {class: 'incoming-line'},
            h('span', {class: ['badge', `priority-${x.priority}`]}, label('priority', x.priority)),
            h('strong', {class: 'barcode'}, x.barcode),
            status),
          h('span', {class: 'incoming-line small'},
            `${label('kind', x.kind)} · ${this.ctx.siteName(x.origin_site_id)} · ${label('sstate', x.state)}`),
          h('span', {class: 'incoming-line small'},
            h('span', {'data-deadline': x.deadline}, this.countdown(x.deadline)),
            eta ? h('span', {class: 'muted'}, ` · ${t('specimen.eta')} ${shortTime(eta)}`) : null)));
    }));
  }

  countdown(deadline) {
    const seconds = secondsUntil(deadline);
    if (seconds === null) return '—';
    return seconds >= 0 ? t('specimen.remaining', {d: duration(seconds)}) : t('specimen.overdue', {d: duration(-seconds)});
  }

  tick() {
    for (const el of document.querySelectorAll('[data-deadline]')) {
      const text = this.countdown(el.dataset.deadline);
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle('overdue', secondsUntil(el.dataset.deadline) < 0);
    }
  }

  // --- a specimen's story -------------------------------------------------------------------

  async loadStory(barcode, {quiet = false} = {}) {
    const changed = barcode !== this.barcode;
    this.barcode = barcode;
    if (changed && !quiet) fill(this.story, h('p', {}, t('loading')));
    let detail;
    try {
      detail = await get(`/api/v1/specimens/${encodeURIComponent(barcode)}`);
    } catch (error) {
      if (barcode !== this.barcode) return;
      if (error instanceof ApiError && error.status === 401) return;
      this.detail = null;
      const message = error instanceof ApiError && (error.status === 404 || error.status === 422)
        ? t('lab.notfound', {barcode}) : t('error.generic', {detail: error.message});
      fill(this.story, h('h2', {id: 'story-title'}, barcode), h('p', {class: 'error-state', role: 'alert'}, message));
      return;
    }
    if (barcode !== this.barcode) return;
    this.detail = detail;
    this.renderStory(detail);
    this.renderIncoming();
    if (changed && !quiet) this.story.focus({preventScroll: false});
  }

  // closed: received or rejected at its destination (the timeline shows a receipt here before
  // the scheduler's next run does); one elsewhere leaves it open, misrouted
  closed(detail) {
    return FINAL.has(detail.state) || detail.timeline.some((step) => FINAL.has(step.kind)
      && step.site_id === detail.destination_site_id);
  }

  renderStory(d) {
    const site = (id) => this.ctx.siteName(id);
    const warnings = [];
    if (d.excursion) {
      warnings.push(h('div', {class: 'notice danger', role: 'alert'},
        t('specimen.excursion', {d: duration(d.temp_out_of_range_s)}),
        d.kind === 'blood_unit' ? h('strong', {}, ` ${t('specimen.excursion.blood')}`) : null));
    }
    if (d.temp_unknown_s > 0) {
      warnings.push(h('div', {class: 'notice warn'}, t('specimen.temperature.unknown', {d: duration(d.temp_unknown_s)})));
    }
    const problems = new Set(d.problems || []);
    const danger = (text) => warnings.push(h('div', {class: 'notice danger', 'data-problem-notice': ''}, text));
    if (problems.has('misrouted')) danger(t('specimen.misrouted', {site: site(d.site_id), dest: site(d.destination_site_id)}));
    if (problems.has('location_unknown')) danger(t('specimen.location_unknown'));
    if (problems.has('stability_exceeded')) danger(t('specimen.stability_exceeded', {until: dateTime(d.stability_until)}));
    if (d.custody_gaps?.length) danger(t('specimen.gaps', {steps: d.custody_gaps.join('; ')}));
    if (d.anomalies?.length) danger(t('specimen.anomalies', {items: d.anomalies.join('; ')}));
    if (d.description_conflicts?.length) danger(t('specimen.conflicts', {items: d.description_conflicts.join('; ')}));
    if (problems.has('undescribed')) danger(t('specimen.undescribed'));
    if (problems.has('described_at_receipt')) danger(t('specimen.described_at_receipt'));
    const deadline = h('span', {'data-deadline': d.deadline, class: 'countdown'}, this.countdown(d.deadline));
    const facts = [
      ['specimen.kind', `${label('kind', d.kind)}${d.blood_product ? ` · ${label('product', d.blood_product)}` : ''}`],
      ['specimen.class', label('tclass', d.temperature_class)],
      ['specimen.route', `${site(d.origin_site_id)} → ${site(d.destination_site_id)}`],
      ['specimen.order', d.order_ref || '—'],
      ['specimen.collected', dateTime(d.collected_at)],
      ['specimen.deadline', [dateTime(d.deadline), ' ', FINAL.has(d.state) ? null : deadline]],
    ];
    if (d.stability_until) facts.push(['specimen.stability_until', dateTime(d.stability_until)]);
    if (d.seal_packed || d.seal_found) facts.push(['specimen.seal.title', t('specimen.seals', {packed: d.seal_packed || '—', found: d.seal_found || '—'})]);
    if (d.received_at) facts.push(['specimen.received_at', dateTime(d.received_at)]);
    else if (d.state === 'in_transit') facts.push(['specimen.eta', d.eta ? `${shortTime(d.eta)} (${t('in', {d: duration(Math.max(0, secondsUntil(d.eta)))})})` : t('unknown')]);
    if (d.position) {
      facts.push(['fleet.flight', [d.flight_id || '—', ' · ', t('specimen.position', {alt: number(d.position.alt_m), temp: number(d.position.payload_temp_c, 1)})]]);
    }
    const focused = this.story.contains(document.activeElement) ? document.activeElement.id : null;
    fill(this.story,
      h('div', {class: 'story-head'},
        h('h2', {id: 'story-title'}, h('span', {class: 'visually-hidden'}, `${t('specimen.story')}: `), d.barcode),
        h('span', {class: ['badge', `priority-${d.priority}`]}, label('priority', d.priority)),
        h('span', {class: ['badge', 'state', `sstate-${d.state}`], 'data-role': 'specimen-state'}, label('sstate', d.state)),
        (d.problems || []).length ? null : h('span', {class: ['badge', `tat-badge-${d.turnaround}`]}, label('tat', d.turnaround))),
      warnings,
      h('dl', {class: 'facts'}, facts.map(([key, value]) => [h('dt', {}, t(key)), h('dd', {}, value)])),
      this.actions(d),
      h('h3', {}, t('specimen.temperature')),
      this.temperature(d),
      h('h3', {}, t('specimen.timeline')),
      this.timeline(d));
    if (focused) document.getElementById(focused)?.focus();
  }

  actions(d) {
    if (!this.isLab || this.closed(d)) return null;
    if (d.destination_site_id !== this.ctx.user.site_id) return h('p', {class: 'muted'}, t('lab.notmine'));
    return h('div', {class: 'story-actions'},
      h('button', {type: 'button', class: 'primary', id: 'receive', onclick: () => this.receive(d)}, t('lab.receive')),
      h('button', {type: 'button', class: 'danger', id: 'reject', onclick: () => this.reject(d)}, t('lab.reject')));
  }

  temperature(d) {
    const band = d.allowed_min_c !== undefined && d.allowed_min_c !== null && d.allowed_max_c !== undefined && d.allowed_max_c !== null
      ? [d.allowed_min_c, d.allowed_max_c] : null;
    const series = (d.temperature || []).filter((p) => p.payload_temp_c !== null && p.payload_temp_c !== undefined)
      .map((p) => ({t: Date.parse(p.at), v: p.payload_temp_c}));
    const summary = [];
    if (band) summary.push(t('specimen.temperature.range', {min: band[0], max: band[1]}));
    if (d.temp_min_c !== null && d.temp_min_c !== undefined) {
      summary.push(t('specimen.temperature.minmax', {min: number(d.temp_min_c, 1), max: number(d.temp_max_c, 1)}));
    }
    if (series.length < 2) {
      return h('div', {class: 'temperature'},
        h('p', {class: summary.length ? '' : 'muted'}, summary.length ? summary.join(' · ') : t('specimen.temperature.none')));
    }
    return h('figure', {class: 'temperature'},
      temperatureChart({points: series, band, title: `${t('specimen.temperature')} ${d.barcode}`, formatTime: (ms) => shortTime(ms),
        unit: t('chart.temp'), timeLabel: t('chart.time', {zone: currentZone()}), width: this.chartWidth()}),
      h('figcaption', {class: 'small'}, summary.join(' · ')));
  }

  chartWidth() {
    // drawn 1:1 at the width it gets, so its text stays readable on a phone
    const available = this.story?.clientWidth || document.documentElement.clientWidth;
    return Math.max(280, Math.min(800, available - 40));
  }

  timeline(d) {
    if (!d.timeline.length) return h('p', {class: 'muted'}, t('specimen.timeline.none'));
    return h('ol', {class: 'timeline', id: 'timeline'}, d.timeline.map((step) => {
      const details = [];
      if (step.container_id) details.push(t('specimen.container', {id: step.container_id}));
      if (step.seal_id) details.push(t('specimen.seal', {id: step.seal_id}));
      if (step.flight_id) details.push(t('specimen.flight', {id: step.flight_id}));
      if (step.drone_id && step.actor_kind !== 'drone') details.push(t('specimen.drone', {id: step.drone_id}));
      return h('li', {class: ['timeline-step', `step-${step.kind}`], 'data-kind': step.kind},
        h('span', {class: 'step-dot', 'aria-hidden': 'true'}),
        h('div', {class: 'step-body'},
          h('div', {class: 'step-head'},
            h('strong', {}, label('custody', step.kind)),
            h('time', {datetime: step.at}, `${dateTime(step.at).replace(/\s.*/, '')} ${time(step.at)}`)),
          h('div', {class: 'small'}, `${this.ctx.siteName(step.site_id)} · ${t(`specimen.actor.${step.actor_kind}`, {id: step.actor_id})}`
            + (this.recordedByOther(step) ? ` · ${t('specimen.recorded_by', {id: step.recorded_by})}` : '')),
          details.length ? h('div', {class: 'small muted'}, details.join(' · ')) : null,
          step.reason ? h('div', {class: 'small reason'}, label('reason', step.reason)) : null));
    }));
  }

  // the account that recorded a step, when it is not what the step already says (the actor
  // signed in, the drone itself, or the scanner of the site where it happened)
  recordedByOther(step) {
    const implied = [`user:${step.actor_id}`, `drone:${step.actor_id}`, `site:${step.site_id}`];
    return Boolean(step.recorded_by) && !implied.includes(step.recorded_by);
  }

  // --- receipt and rejection ----------------------------------------------------------------

  custodyEvent(d, kind, extra = {}) {
    const event = {schema_version: 1, event_id: uuid4(), event_time: new Date(now()).toISOString(), kind,
      barcode: d.barcode, site_id: this.ctx.user.site_id, actor: {kind: 'staff', id: this.ctx.user.user_id}, ...extra};
    return event;
  }

  async receive(d) {
    // the seal on the box is asked for (scanned or typed) and compared with the seal packed
    const seal = h('input', {id: 'receive-seal', name: 'seal', autocomplete: 'off', autocapitalize: 'characters',
      spellcheck: 'false', maxlength: 64, pattern: SEAL_PATTERN, required: Boolean(d.seal_packed)});
    const questions = [];
    if (!['arrived', 'misrouted'].includes(d.state)) questions.push([t('lab.receive.early', {state: label('sstate', d.state)}), 'warn']);
    if (d.excursion) questions.push([d.kind === 'blood_unit' ? t('lab.receive.excursion.blood') : t('lab.receive.excursion', {d: duration(d.temp_out_of_range_s)}), 'danger']);
    if (d.temp_unknown_s > 0) questions.push([t('lab.receive.temperature.unknown', {d: duration(d.temp_unknown_s)}), 'warn']);
    const others = (d.problems || []).filter((p) => p !== 'excursion');
    if (others.length) questions.push([t('lab.receive.problems', {items: others.map((p) => label('problem', p)).join('、')}), 'danger']);
    const risky = questions.some(([, kind]) => kind === 'danger');
    const values = await dialog({title: t('lab.receive.title', {barcode: d.barcode}),
      body: [questions.map(([q, kind]) => h('p', {class: `notice ${kind}`}, q)),
        h('div', {class: 'field'}, h('label', {for: 'receive-seal'}, t('lab.receive.seal')), seal,
          d.seal_packed ? h('p', {class: 'muted small'}, t('lab.receive.seal.hint', {seal: d.seal_packed})) : null)],
      submit: t('lab.receive.confirm'), cancel: t('cancel'), danger: risky});
    if (!values) return;
    const found = (values.seal || '').trim();
    if (found && d.seal_packed && found !== d.seal_packed) {
      const ok = await dialog({title: t('lab.receive.title', {barcode: d.barcode}),
        body: h('p', {class: 'notice danger', role: 'alert'}, t('lab.receive.seal.mismatch', {found, packed: d.seal_packed})),
        submit: t('lab.receive.confirm'), cancel: t('cancel'), danger: true});
      if (!ok) return;
    }
    const extra = d.container_id ? {container_id: d.container_id} : {};
    if (found) extra.seal_id = found;
    await this.send(d, this.custodyEvent(d, 'received', extra), t('lab.received', {barcode: d.barcode}));
  }

  async reject(d) {
    const reason = h('select', {id: 'reject-reason', name: 'reason', required: true},
      h('option', {value: ''}, '—'),
      REASONS.map((r) => h('option', {value: r, selected: d.excursion && r === 'temperature_excursion'}, label('reason', r))));
    const note = h('textarea', {id: 'reject-note', name: 'note', rows: 3, maxlength: 500, placeholder: t('lab.reject.note.hint')});
    reason.addEventListener('change', () => { note.required = reason.value === 'other'; });
    const values = await dialog({
      title: t('lab.reject.title', {barcode: d.barcode}),
      body: h('div', {class: 'field'},
        h('label', {for: 'reject-reason'}, t('lab.reject.reason')), reason,
        h('label', {for: 'reject-note'}, t('lab.reject.note')), note),
      submit: t('lab.reject'), cancel: t('cancel'), danger: true});
    if (!values) return;
    const extra = {reason: values.reason};
    if (values.note?.trim()) extra.note = values.note.trim();
    await this.send(d, this.custodyEvent(d, 'rejected', extra), t('lab.rejected', {barcode: d.barcode}));
  }

  async send(d, event, done) {
    for (const button of this.story.querySelectorAll('.story-actions button')) button.disabled = true;
    // the same event (same event_id) may be sent again safely: the API stores it once
    for (let attempt = 1; ; attempt++) {
      try {
        await post('/api/v1/custody', event);
        toast(done, 'success');
        // it leaves the incoming list at once, not after the next poll
        (this.done ??= new Set()).add(d.barcode);
        this.incoming = this.incoming.filter((x) => x.barcode !== d.barcode);
        this.renderIncoming();
        break;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return;
        const retry = error instanceof ApiError && (error.status === 0 || error.status === 503) && attempt < 4;
        if (retry) {
          await new Promise((resolve) => setTimeout(resolve, 1500 * attempt));
          continue;
        }
        const detail = error.problem?.detail || error.message;
        toast(error.status === 403 ? t('error.forbidden') : t('lab.refused', {detail}), 'error', 10_000);
        break;
      }
    }
    await this.loadStory(d.barcode, {quiet: true});
    this.loadIncoming();
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    for (const timer of this.timers) clearInterval(timer);
    clearInterval(this.pollTimer);
    for (const timer of Object.values(this.debounced || {})) clearTimeout(timer);
  }
}
