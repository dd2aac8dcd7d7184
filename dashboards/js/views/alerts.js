// The alert panel, shared by the dispatcher's view (acknowledge and resolve) and the lab's
// (the alerts that reach its site, read only: about it, or about a specimen collected there).
//
// Alerts come grouped by the API (GET /api/v1/alerts/groups): one temperature excursion of a
// box is one entry with its tubes, a diverted flight's cargo one entry; sorted by severity,
// then age (the oldest first). Filters (kind, site, state, severity) go to the API; a
// dispatcher acknowledges an entry, or every selected entry, in one request
// (POST /api/v1/alerts/acknowledge). Each alert's text is rendered here from its code and
// parameters, in the reader's language and the site's time zone (alert_text.js). Live changes
// arrive on the stream and reload the list (debounced); a slow refresh is the safety net.

import {alertText} from '../alert_text.js';
import {ApiError, get, post} from '../api.js';
import {dialog, fill, h, toast} from '../dom.js';
import {dateTime, shortTime} from '../format.js';
import {dictionaries, label, t} from '../i18n.js';

const GROUPS_LIMIT = 100;
const ACK_MAX = 200; // the API's bound on one bulk acknowledgement
const RELOAD_MS = 400;
const DEFAULT_FILTERS = {state: 'active', kind: '', site: '', severity: ''}; // what needs attention
const RESOLVED_DAYS = 30; // the resolved alerts asked for (the API's resolved_days), as the filter says
const KINDS = Object.keys(dictionaries.zh).filter((k) => k.startsWith('alert.kind.')).map((k) => k.slice(11));
let panels = 0;

export class AlertPanel {
  /** ctx: the app context; canAct: may acknowledge and resolve; onLocate(alert): show it;
   * onChange(activeAlerts): the active alerts loaded (the map marks their drones). */
  constructor(ctx, {canAct, onLocate, onChange, title}) {
    this.ctx = ctx;
    this.canAct = canAct;
    this.onLocate = onLocate;
    this.onChange = onChange || (() => {});
    this.groups = [];
    this.total = 0;
    this.selected = new Set(); // group keys
    this.filters = {...DEFAULT_FILTERS};
    this.error = null;
    this.loads = 0;
    this.id = `alerts-${++panels}`;
    this.list = h('ul', {class: 'alert-list', 'aria-live': 'off', id: `${this.id}-list`});
    this.announcer = h('div', {class: 'visually-hidden', role: 'alert'});
    this.count = h('span', {class: 'count-badge'}, '0');
    this.more = h('p', {class: 'muted small', hidden: true});
    this.bulk = h('button', {type: 'button', class: 'primary small', 'data-action': 'ack-selected', disabled: true, onclick: () => this.acknowledgeSelected()}, t('alerts.ack.selected', {n: 0}));
    this.el = h('section', {class: 'panel alerts-panel', 'aria-labelledby': `${this.id}-title`},
      h('div', {class: 'panel-head'},
        h('h2', {id: `${this.id}-title`}, title || t('alerts.title'), ' ', this.count),
        this.canAct ? this.bulk : null),
      this.filterBar(), this.announcer, this.list, this.more);
  }

  filterBar() {
    const select = (name, options, all) => h('label', {class: 'filter small'},
      h('span', {class: 'visually-hidden'}, t(`alerts.filter.${name}`)),
      h('select', {name, class: `alert-filter-${name}`, 'aria-label': t(`alerts.filter.${name}`),
        onchange: (e) => { this.filters[name] = e.target.value; this.selected.clear(); this.load(); }},
      all ? h('option', {value: ''}, all) : null,
      options.map(([value, text]) => h('option', {value, selected: this.filters[name] === value}, text))));
    const sites = [...this.ctx.sites.keys()].map((id) => [id, this.ctx.siteName(id)]);
    return h('div', {class: 'alert-filters', role: 'group', 'aria-label': t('alerts.filters')},
      select('state', ['active', 'open', 'acknowledged', 'resolved'].map((s) => [s, t(`alerts.filter.state.${s}`, {days: RESOLVED_DAYS})])),
      select('severity', ['critical', 'high', 'medium'].map((s) => [s, label('severity', s)]), t('alerts.filter.severity.all')),
      select('kind', KINDS.map((k) => [k, label('alert.kind', k)]), t('alerts.filter.kind.all')),
      this.ctx.user.role === 'lab' ? null : select('site', sites, t('alerts.filter.site.all')));
  }

  /** The active alerts loaded (of the entries shown). */
  active() {
    return this.groups.flatMap((g) => g.alerts).filter((a) => a.state !== 'resolved');
  }

  async load() {
    clearTimeout(this.reloadTimer);
    const query = new URLSearchParams({limit: String(GROUPS_LIMIT), resolved_days: String(RESOLVED_DAYS)});
    for (const [name, value] of Object.entries(this.filters)) if (value) query.set(name, value);
    const asked = ++this.loads; // only the newest answer is shown (filters change meanwhile)
    try {
      const page = await get(`/api/v1/alerts/groups?${query}`);
      if (asked !== this.loads) return;
      this.groups = page.items;
      this.total = page.total;
      this.error = null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.error = error;
    }
    const keys = new Set(this.groups.map((g) => g.key));
    for (const key of [...this.selected]) if (!keys.has(key)) this.selected.delete(key);
    this.render();
  }

  /** A frame of the live stream: {change, alert}. The list reloads; a new critical alert is
   * announced at once. */
  apply({change, alert}) {
    if (!alert) return;
    if (change === 'opened') {
      const text = t('alerts.opened', {kind: label('alert.kind', alert.kind)});
      this.announcer.textContent = text;
      if (alert.severity === 'critical') toast(`${text} · ${alert.subject_id}`, 'error', 8000);
    }
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), RELOAD_MS);
  }

  render() {
    const active = this.active();
    this.count.textContent = String(this.total);
    this.count.hidden = !this.total;
    this.onChange(active);
    this.updateBulk();
    this.more.hidden = this.total <= this.groups.length;
    this.more.textContent = t('alerts.more', {shown: this.groups.length, total: this.total});
    if (this.error) {
      fill(this.list, h('li', {class: 'error-state'}, t('error.generic', {detail: this.error.message}), ' ',
        h('button', {type: 'button', class: 'secondary small', onclick: () => this.load()}, t('error.retry'))));
      return;
    }
    if (!this.groups.length) {
      const narrowed = Object.entries(this.filters).some(([name, value]) => value !== DEFAULT_FILTERS[name]);
      fill(this.list, h('li', {class: 'empty-state'}, t(narrowed ? 'alerts.none.filtered' : 'alerts.none')));
      return;
    }
    fill(this.list, this.groups.map((group) => this.item(group)));
  }

  openIds(groups) {
    return groups.flatMap((g) => g.alerts.filter((a) => a.state === 'open').map((a) => a.id));
  }

  updateBulk() {
    const ids = this.openIds(this.groups.filter((g) => this.selected.has(g.key)));
    this.bulk.disabled = !ids.length;
    this.bulk.textContent = t('alerts.ack.selected', {n: ids.length});
  }

  subject(group) {
    const first = group.alerts[0];
    const parts = [];
    if (group.subject_kind === 'cargo') {
      if (group.flight_id) parts.push(`${label('alert.subject', 'flight')} ${group.flight_id}`);
      if (group.container_id) parts.push(`${t('alerts.container')} ${group.container_id}`);
    } else {
      parts.push(`${label('alert.subject', first.subject_kind)} ${first.subject_id}`);
    }
    if (group.site_id) parts.push(this.ctx.siteName(group.site_id));
    if (group.drone_id && group.subject_kind !== 'drone') parts.push(`${label('alert.subject', 'drone')} ${group.drone_id}`);
    return parts.join(' · ');
  }

  item(group) {
    const first = group.alerts[0];
    const open = this.openIds([group]);
    const actions = [];
    if (this.canAct && open.length) {
      actions.push(h('button', {type: 'button', class: 'primary small', 'data-action': 'ack', onclick: () => this.acknowledge(open)},
        group.count > 1 ? t('alerts.ack.all', {n: open.length}) : t('alerts.ack')));
    }
    if (this.canAct && group.state !== 'resolved') {
      actions.push(h('button', {type: 'button', class: 'secondary small', 'data-action': 'resolve', onclick: () => this.resolve(group)},
        group.count > 1 ? t('alerts.resolve.all') : t('alerts.resolve')));
    }
    if (group.count === 1 && first.subject_kind === 'specimen') {
      actions.push(h('a', {class: 'button-link small', href: `#/lab/${encodeURIComponent(first.subject_id)}`}, t('specimen.story')));
    }
    if (this.onLocate && group.drone_id) {
      actions.push(h('button', {type: 'button', class: 'link small', onclick: () => this.onLocate(first)}, t('fleet.locate', {id: group.drone_id})));
    }
    const select = this.canAct && open.length ? h('input', {type: 'checkbox', class: 'alert-select', 'aria-label': t('alerts.select'),
      checked: this.selected.has(group.key),
      onchange: (e) => { if (e.target.checked) this.selected.add(group.key); else this.selected.delete(group.key); this.updateBulk(); }}) : null;
    return h('li', {class: ['alert-item', `sev-${group.severity}`, `state-${group.state}`], 'data-alert-id': first.id,
      'data-alert-ids': group.alerts.map((a) => a.id).join(' '), 'data-kind': group.kind, 'data-state': group.state,
      'data-count': group.count, 'data-group': group.key},
      h('div', {class: 'alert-head'},
        select,
        h('span', {class: ['badge', `sev-badge-${group.severity}`]}, label('severity', group.severity)),
        h('strong', {class: 'alert-kind'}, label('alert.kind', group.kind)),
        group.count > 1 ? h('span', {class: 'count-badge small', 'data-role': 'count'}, t(first.subject_kind === 'specimen' ? 'alerts.count.specimens' : 'alerts.count', {n: group.count})) : null,
        h('span', {class: ['state-badge', `alert-state-${group.state}`], 'data-role': 'state'}, label('alert.state', group.state)),
        h('time', {datetime: group.opened_at, class: 'muted'}, dateTime(group.opened_at))),
      h('div', {class: 'alert-subject'}, this.subject(group)),
      h('div', {class: 'alert-message muted small', 'data-role': 'text'}, alertText(first, this.ctx)),
      group.count > 1 ? this.members(group) : this.history(first),
      actions.length ? h('div', {class: 'alert-actions'}, actions) : null);
  }

  history(alert) {
    const lines = [];
    if (alert.acknowledged_at) lines.push(`${label('alert.state', 'acknowledged')} ${t('alerts.by', {who: alert.acknowledged_by || '—', time: shortTime(alert.acknowledged_at)})}`);
    if (alert.resolved_at) lines.push(`${label('alert.state', 'resolved')} ${t('alerts.by', {who: alert.resolved_by || '—', time: shortTime(alert.resolved_at)})}${alert.resolution_note ? `：${alert.resolution_note}` : ''}`);
    return lines.length ? h('div', {class: 'alert-history small'}, lines.map((line) => h('div', {}, line))) : null;
  }

  /** The entry's alerts: each tube (a link to its story) with its state. */
  members(group) {
    const hidden = group.count - group.alerts.length;
    return h('details', {class: 'alert-members small'},
      h('summary', {}, t('alerts.members', {n: group.count})),
      h('ul', {class: 'member-list'}, group.alerts.map((alert) => h('li', {'data-alert-id': alert.id, 'data-state': alert.state},
        alert.subject_kind === 'specimen'
          ? h('a', {href: `#/lab/${encodeURIComponent(alert.subject_id)}`}, alert.subject_id)
          : h('span', {}, alert.subject_id),
        ' ', h('span', {class: ['state-badge', `alert-state-${alert.state}`]}, label('alert.state', alert.state)),
        alert.acknowledged_by ? h('span', {class: 'muted'}, ` ${t('alerts.by', {who: alert.acknowledged_by, time: shortTime(alert.acknowledged_at)})}`) : null)),
      hidden > 0 ? h('li', {class: 'muted'}, t('alerts.members.more', {n: hidden})) : null));
  }

  async acknowledge(ids) {
    try {
      let done = 0;
      for (let start = 0; start < ids.length; start += ACK_MAX) {
        const result = await post('/api/v1/alerts/acknowledge', {ids: ids.slice(start, start + ACK_MAX)});
        done += result.acknowledged.length;
      }
      toast(t('alerts.acked.many', {n: done}), 'success');
    } catch (error) {
      this.failed(error);
      return;
    }
    this.load();
  }

  async acknowledgeSelected() {
    const ids = this.openIds(this.groups.filter((g) => this.selected.has(g.key)));
    if (!ids.length) return;
    this.selected.clear();
    await this.acknowledge(ids);
  }

  async resolve(group) {
    const first = group.alerts[0];
    const pending = group.alerts.filter((a) => a.state !== 'resolved');
    const values = await dialog({
      title: group.count > 1 ? t('alerts.resolve.group.title', {n: pending.length}) : t('alerts.resolve.title', {id: first.id}),
      body: h('div', {class: 'field'},
        h('p', {}, `${label('alert.kind', group.kind)} · ${this.subject(group)}`),
        h('label', {for: 'resolve-note'}, t('alerts.note')),
        h('textarea', {id: 'resolve-note', name: 'note', required: true, maxlength: 500, rows: 3, placeholder: t('alerts.note.hint')})),
      submit: t('alerts.resolve'), cancel: t('cancel')});
    if (!values) return;
    try {
      for (const alert of pending) { // each is its own decision on the record, audited
        try {
          await post(`/api/v1/alerts/${alert.id}/resolve`, {note: values.note.trim()});
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 409)) throw error; // resolved meanwhile
        }
      }
      toast(group.count > 1 ? t('alerts.resolved.many', {n: pending.length}) : t('alerts.resolved', {id: first.id}), 'success');
    } catch (error) {
      this.failed(error);
      return;
    }
    this.load();
  }

  failed(error) {
    if (error instanceof ApiError && error.status === 401) return;
    toast(error instanceof ApiError && error.status === 403 ? t('error.forbidden') : t('error.generic', {detail: error.message}), 'error');
    this.load();
  }
}
