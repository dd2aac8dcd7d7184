// The alert panel, shared by the dispatcher's view (acknowledge and resolve) and the lab's
// (the alerts that reach its site, read only: about it, or about a specimen collected there).
// Each alert's text is rendered here from its code and parameters, in the reader's language
// and the site's time zone (alert_text.js). Live changes arrive on the stream; a slow refresh is
// the safety net, and a fast one stands in when the server has no stream.

import {alertText} from '../alert_text.js';
import {ApiError, get, post} from '../api.js';
import {dialog, fill, h, toast} from '../dom.js';
import {dateTime, shortTime} from '../format.js';
import {label, t} from '../i18n.js';

const SEVERITY_RANK = {critical: 0, high: 1, medium: 2};
const STATE_RANK = {open: 0, acknowledged: 1, resolved: 2};

export class AlertPanel {
  /** ctx: the app context; canAct: may acknowledge and resolve; onLocate(alert): show it. */
  constructor(ctx, {canAct, onLocate, onChange, title}) {
    this.ctx = ctx;
    this.canAct = canAct;
    this.onLocate = onLocate;
    this.onChange = onChange || (() => {});
    this.alerts = new Map();
    this.showResolved = false;
    this.error = null;
    this.list = h('ul', {class: 'alert-list', 'aria-live': 'off'});
    this.announcer = h('div', {class: 'visually-hidden', role: 'alert'});
    const toggle = h('input', {type: 'checkbox', id: 'show-resolved', onchange: (e) => { this.showResolved = e.target.checked; this.load(); }});
    this.count = h('span', {class: 'count-badge'}, '0');
    this.el = h('section', {class: 'panel alerts-panel', 'aria-labelledby': 'alerts-title'},
      h('div', {class: 'panel-head'},
        h('h2', {id: 'alerts-title'}, title || t('alerts.title'), ' ', this.count),
        h('label', {class: 'toggle small', for: 'show-resolved'}, toggle, t('alerts.show.resolved'))),
      this.announcer, this.list);
  }

  active() {
    return [...this.alerts.values()].filter((a) => a.state !== 'resolved');
  }

  async load() {
    try {
      const active = await get('/api/v1/alerts?state=active&limit=500');
      const resolved = this.showResolved ? await get('/api/v1/alerts?state=resolved&limit=30') : {items: []};
      this.alerts = new Map([...active.items, ...resolved.items].map((a) => [a.id, a]));
      this.error = null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.error = error;
    }
    this.render();
  }

  /** A frame of the live stream: {change, alert}. */
  apply({change, alert}) {
    if (!alert) return;
    const known = this.alerts.get(alert.id);
    if (known && (STATE_RANK[known.state] > STATE_RANK[alert.state])) return; // an older change
    if (alert.state === 'resolved' && !this.showResolved) this.alerts.delete(alert.id);
    else this.alerts.set(alert.id, alert);
    if (change === 'opened' && !known) {
      const text = t('alerts.opened', {kind: label('alert.kind', alert.kind)});
      this.announcer.textContent = text;
      if (alert.severity === 'critical') toast(`${text} · ${alert.subject_id}`, 'error', 8000);
    }
    this.render();
  }

  sorted() {
    return [...this.alerts.values()].sort((a, b) =>
      (STATE_RANK[a.state] - STATE_RANK[b.state]) || (SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity])
      || (Date.parse(b.opened_at) - Date.parse(a.opened_at)));
  }

  render() {
    const items = this.sorted();
    this.count.textContent = String(this.active().length);
    this.count.hidden = !this.active().length;
    this.onChange(this.active());
    if (this.error) {
      fill(this.list, h('li', {class: 'error-state'}, t('error.generic', {detail: this.error.message}), ' ',
        h('button', {type: 'button', class: 'secondary small', onclick: () => this.load()}, t('error.retry'))));
      return;
    }
    if (!items.length) {
      fill(this.list, h('li', {class: 'empty-state'}, t('alerts.none')));
      return;
    }
    fill(this.list, items.map((alert) => this.item(alert)));
  }

  item(alert) {
    const subject = [`${label('alert.subject', alert.subject_kind)} ${alert.subject_id}`];
    if (alert.site_id) subject.push(this.ctx.siteName(alert.site_id));
    if (alert.drone_id && alert.subject_kind !== 'drone') subject.push(`${label('alert.subject', 'drone')} ${alert.drone_id}`);
    const actions = [];
    if (this.canAct && alert.state === 'open') {
      actions.push(h('button', {type: 'button', class: 'primary small', 'data-action': 'ack', onclick: () => this.acknowledge(alert)}, t('alerts.ack')));
    }
    if (this.canAct && alert.state !== 'resolved') {
      actions.push(h('button', {type: 'button', class: 'secondary small', 'data-action': 'resolve', onclick: () => this.resolve(alert)}, t('alerts.resolve')));
    }
    if (alert.subject_kind === 'specimen') {
      actions.push(h('a', {class: 'button-link small', href: `#/lab/${encodeURIComponent(alert.subject_id)}`}, t('specimen.story')));
    }
    if (this.onLocate && alert.drone_id) {
      actions.push(h('button', {type: 'button', class: 'link small', onclick: () => this.onLocate(alert)}, t('fleet.locate', {id: alert.drone_id})));
    }
    const history = [];
    if (alert.acknowledged_at) history.push(`${label('alert.state', 'acknowledged')} ${t('alerts.by', {who: alert.acknowledged_by || '—', time: shortTime(alert.acknowledged_at)})}`);
    if (alert.resolved_at) history.push(`${label('alert.state', 'resolved')} ${t('alerts.by', {who: alert.resolved_by || '—', time: shortTime(alert.resolved_at)})}${alert.resolution_note ? `：${alert.resolution_note}` : ''}`);
    return h('li', {class: ['alert-item', `sev-${alert.severity}`, `state-${alert.state}`], 'data-alert-id': alert.id, 'data-kind': alert.kind, 'data-state': alert.state},
      h('div', {class: 'alert-head'},
        h('span', {class: ['badge', `sev-badge-${alert.severity}`]}, label('severity', alert.severity)),
        h('strong', {class: 'alert-kind'}, label('alert.kind', alert.kind)),
        h('span', {class: ['state-badge', `alert-state-${alert.state}`], 'data-role': 'state'}, label('alert.state', alert.state)),
        h('time', {datetime: alert.opened_at, class: 'muted'}, dateTime(alert.opened_at))),
      h('div', {class: 'alert-subject'}, subject.join(' · ')),
      h('div', {class: 'alert-message muted small', 'data-role': 'text'}, alertText(alert, this.ctx)),
      history.length ? h('div', {class: 'alert-history small'}, history.map((line) => h('div', {}, line))) : null,
      actions.length ? h('div', {class: 'alert-actions'}, actions) : null);
  }

  async acknowledge(alert) {
    try {
      const updated = await post(`/api/v1/alerts/${alert.id}/acknowledge`, {});
      this.apply({change: 'acknowledged', alert: updated});
      toast(t('alerts.acked', {id: alert.id}), 'success');
    } catch (error) {
      this.failed(error);
    }
  }

  async resolve(alert) {
    const values = await dialog({
      title: t('alerts.resolve.title', {id: alert.id}),
      body: h('div', {class: 'field'},
        h('p', {}, `${label('alert.kind', alert.kind)} · ${alert.subject_id}`),
        h('label', {for: 'resolve-note'}, t('alerts.note')),
        h('textarea', {id: 'resolve-note', name: 'note', required: true, maxlength: 500, rows: 3, placeholder: t('alerts.note.hint')})),
      submit: t('alerts.resolve'), cancel: t('cancel')});
    if (!values) return;
    try {
      const updated = await post(`/api/v1/alerts/${alert.id}/resolve`, {note: values.note.trim()});
      this.apply({change: 'resolved', alert: updated});
      toast(t('alerts.resolved', {id: alert.id}), 'success');
    } catch (error) {
      this.failed(error);
    }
  }

  failed(error) {
    if (error instanceof ApiError && error.status === 401) return;
    toast(error instanceof ApiError && error.status === 403 ? t('error.forbidden') : t('error.generic', {detail: error.message}), 'error');
    this.load();
  }
}
