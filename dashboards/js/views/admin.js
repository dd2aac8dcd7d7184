// The administration screen (#/admin, administrators only): users (add, change role, site and
// name, reset a password, deactivate), sites, drones (registration number 实名登记号, model,
// home site, retire) and device tokens (issue, shown once; revoke one). Every change goes
// through the admin API (/api/v1/admin/...), which attributes and audits it; the password
// policy (DRONELOG_PASSWORD_MIN_LENGTH) is the server's, and its refusal is shown as it says.
// Notification routes (which alerts, landings, assignments, receipts and scheduled reports go
// to which channel and whom; quiet hours; escalation tiers) and the recent messages with their
// state (docs/notifications.md). Lists are read a page at a time.

import {ApiError, get, request} from '../api.js';
import {dialog, fill, h, toast} from '../dom.js';
import {dateTime} from '../format.js';
import {label, t} from '../i18n.js';

const PAGE = 50;
const ROLES = ['lab', 'dispatcher', 'admin', 'device'];
const SITE_KINDS = ['lab_hospital', 'district_hospital', 'health_centre', 'blood_bank'];
const ID_PATTERN = '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}';
const SOURCES = ['alert', 'landing', 'assigned', 'received', 'report'];
const ALERT_KINDS = ['turnaround_warning', 'predicted_breach', 'breach', 'custody_gap', 'rejected_specimen',
  'temperature_excursion', 'lost_link', 'low_battery', 'off_route', 'misrouted', 'location_unknown',
  'custody_anomaly', 'description_conflict', 'cargo_diverted', 'mixed_temperature_classes', 'manifest_discrepancy'];
const PRIORITIES = ['stat', 'urgent', 'routine'];
const SEVERITIES = ['medium', 'high', 'critical'];
const CLOCK_PATTERN = '([01][0-9]|2[0-3]):[0-5][0-9]';

export function mount(root, ctx) {
  return new AdminView(root, ctx);
}

const send = (method, path, json) => request(path, {method, json});

function field(id, text, input) {
  return h('div', {class: 'field'}, h('label', {for: id}, text), input);
}

function options(values, selected, labelOf, empty) {
  return [empty !== undefined ? h('option', {value: ''}, empty) : null,
    ...values.map((value) => h('option', {value, selected: value === selected}, labelOf(value)))];
}

class AdminView {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.offsets = {users: 0, drones: 0, routes: 0, messages: 0};
    this.sections = {
      users: this.section('users', () => this.addUser()),
      sites: this.section('sites', () => this.editSite(null)),
      drones: this.section('drones', () => this.editDrone(null)),
      tokens: this.section('tokens', null),
      routes: this.section('routes', () => this.editRoute(null)),
      messages: this.section('messages', null),
    };
    const nav = h('nav', {class: 'admin-nav', 'aria-label': t('admin.title')},
      Object.keys(this.sections).map((name) => h('a', {href: `#/admin`, 'data-target': name, onclick: (e) => {
        e.preventDefault();
        this.sections[name].el.scrollIntoView({behavior: 'smooth', block: 'start'});
      }}, t(`admin.${name}`))));
    fill(root, h('div', {class: 'admin-layout'}, h('h1', {}, t('admin.title')), nav,
      Object.values(this.sections).map((s) => s.el)));
    this.refresh();
  }

  section(name, onAdd) {
    const body = h('div', {class: 'table-scroll'});
    const pager = h('div', {class: 'pager small'});
    const el = h('section', {class: 'panel admin-panel', id: `admin-${name}`, 'aria-labelledby': `admin-${name}-title`},
      h('div', {class: 'panel-head'}, h('h2', {id: `admin-${name}-title`}, t(`admin.${name}`)),
        onAdd ? h('button', {type: 'button', class: 'primary small', id: `admin-add-${name}`, onclick: onAdd}, t(`admin.${name}.add`)) : null),
      body, pager);
    return {el, body, pager};
  }

  async refresh() {
    await Promise.all([this.loadUsers(), this.loadSites(), this.loadDrones(), this.loadTokens(),
      this.loadRoutes(), this.loadMessages()]);
  }

  table(section, columns, rows) {
    if (!rows.length) {
      fill(section.body, h('p', {class: 'empty-state'}, t('admin.empty')));
      return;
    }
    // each cell names its column too: on a phone a row is a card of labelled lines
    const names = columns.map((key) => t(key));
    for (const row of rows) [...row.children].forEach((cell, i) => { cell.dataset.label = names[i] ?? ''; });
    fill(section.body, h('table', {class: 'admin-table'},
      h('thead', {}, h('tr', {}, names.map((name) => h('th', {scope: 'col'}, name)))),
      h('tbody', {}, rows)));
  }

  pager(name, page, load) {
    const section = this.sections[name];
    const {offset, total} = page;
    fill(section.pager, total > PAGE ? [
      h('button', {type: 'button', class: 'secondary small', disabled: offset === 0, onclick: () => { this.offsets[name] = Math.max(0, offset - PAGE); load(); }}, t('admin.prev')),
      h('span', {}, t('admin.page', {from: offset + 1, to: Math.min(total, offset + PAGE), total})),
      h('button', {type: 'button', class: 'secondary small', disabled: offset + PAGE >= total, onclick: () => { this.offsets[name] = offset + PAGE; load(); }}, t('admin.next')),
    ] : []);
  }

  failed(error) {
    if (error instanceof ApiError && error.status === 401) return;
    let text = t('error.generic', {detail: error.message});
    if (error instanceof ApiError && error.status === 403) text = t('error.forbidden');
    else if (error instanceof ApiError && [404, 409, 422].includes(error.status)) text = t('admin.refused', {detail: error.message});
    toast(text, 'error', 8000);
  }

  /** Run a change; report success, or the server's reason; reload what it touched. */
  async change(action, done, reload) {
    try {
      const result = await action();
      if (done) toast(done, 'success');
      await reload();
      return result;
    } catch (error) {
      this.failed(error);
      return null;
    }
  }

  // --- users --------------------------------------------------------------------------------

  async loadUsers() {
    const load = () => this.loadUsers();
    try {
      const page = await get(`/api/v1/admin/users?limit=${PAGE}&offset=${this.offsets.users}`);
      this.table(this.sections.users, ['admin.user.id', 'admin.user.name', 'admin.user.role', 'admin.user.site', 'admin.user.active', 'admin.user.created', 'admin.actions'],
        page.items.map((user) => this.userRow(user)));
      this.pager('users', page, load);
    } catch (error) {
      this.failed(error);
    }
  }

  userRow(user) {
    const me = user.id === this.ctx.user.user_id;
    return h('tr', {'data-user': user.id, 'data-active': String(user.active), class: user.active ? null : 'inactive'},
      h('th', {scope: 'row'}, user.id),
      h('td', {}, user.display_name),
      h('td', {}, label('role', user.role)),
      h('td', {}, user.site_id ? this.ctx.siteName(user.site_id) : '—'),
      h('td', {'data-role': 'active'}, user.active ? t('admin.user.active.yes') : t('admin.user.active.no')),
      h('td', {}, dateTime(user.created_at)),
      h('td', {class: 'row-actions'},
        h('button', {type: 'button', class: 'secondary small', 'data-action': 'edit', onclick: () => this.editUser(user)}, t('admin.edit')),
        user.role === 'device' ? null : h('button', {type: 'button', class: 'secondary small', 'data-action': 'password', onclick: () => this.resetPassword(user)}, t('admin.user.password.reset')),
        me ? null : h('button', {type: 'button', class: user.active ? 'danger small' : 'secondary small', 'data-action': user.active ? 'deactivate' : 'activate',
          onclick: () => this.setActive(user, !user.active)}, user.active ? t('admin.user.deactivate') : t('admin.user.activate'))));
  }

  siteSelect(id, selected) {
    return h('select', {id, name: 'site_id'}, options([...this.ctx.sites.keys()], selected, (s) => this.ctx.siteName(s), t('admin.none')));
  }

  async addUser() {
    const values = await dialog({
      title: t('admin.users.add'),
      body: h('div', {},
        field('user-id', t('admin.user.id'), h('input', {id: 'user-id', name: 'id', required: true, pattern: ID_PATTERN, maxlength: 64, autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false'})),
        field('user-name', t('admin.user.name'), h('input', {id: 'user-name', name: 'display_name', maxlength: 200})),
        field('user-role', t('admin.user.role'), h('select', {id: 'user-role', name: 'role', required: true}, options(ROLES, 'lab', (r) => label('role', r)))),
        field('user-site', t('admin.user.site'), this.siteSelect('user-site', '')),
        field('user-password', t('admin.user.password'), h('input', {id: 'user-password', name: 'password', type: 'password', autocomplete: 'new-password', maxlength: 200})),
        h('p', {class: 'muted small'}, t('admin.user.password.hint'))),
      submit: t('admin.users.add'), cancel: t('cancel')});
    if (!values) return;
    const body = {id: values.id.trim(), role: values.role, site_id: values.site_id || null,
      display_name: values.display_name.trim() || null, password: values.password || null};
    await this.change(() => send('POST', '/api/v1/admin/users', body), t('admin.user.added', {id: body.id}), () => Promise.all([this.loadUsers(), this.loadTokens()]));
  }

  async editUser(user) {
    const values = await dialog({
      title: t('admin.user.edit', {id: user.id}),
      body: h('div', {},
        field('user-name', t('admin.user.name'), h('input', {id: 'user-name', name: 'display_name', maxlength: 200, value: user.display_name})),
        field('user-role', t('admin.user.role'), h('select', {id: 'user-role', name: 'role'}, options(ROLES, user.role, (r) => label('role', r)))),
        field('user-site', t('admin.user.site'), this.siteSelect('user-site', user.site_id || ''))),
      submit: t('admin.save'), cancel: t('cancel')});
    if (!values) return;
    const body = {display_name: values.display_name.trim() || null, role: values.role, site_id: values.site_id || null};
    await this.change(() => send('PATCH', `/api/v1/admin/users/${encodeURIComponent(user.id)}`, body), t('admin.saved'), () => this.loadUsers());
  }

  async resetPassword(user) {
    const values = await dialog({
      title: t('admin.user.password.reset.title', {id: user.id}),
      body: h('div', {},
        field('new-password', t('admin.user.password'), h('input', {id: 'new-password', name: 'password', type: 'password', required: true, autocomplete: 'new-password', maxlength: 200})),
        h('p', {class: 'muted small'}, t('admin.user.password.ends'))),
      submit: t('admin.save'), cancel: t('cancel')});
    if (!values) return;
    await this.change(() => send('PATCH', `/api/v1/admin/users/${encodeURIComponent(user.id)}`, {password: values.password}),
      t('admin.user.password.done', {id: user.id}), () => this.loadUsers());
  }

  async setActive(user, active) {
    if (!active) {
      const confirmed = await dialog({title: t('admin.user.deactivate.title', {id: user.id}),
        body: h('p', {id: 'deactivate-confirm'}, t('admin.user.deactivate.body')), submit: t('admin.user.deactivate'), cancel: t('cancel'), danger: true});
      if (!confirmed) return;
    }
    await this.change(() => send('PATCH', `/api/v1/admin/users/${encodeURIComponent(user.id)}`, {active}),
      active ? t('admin.user.activated', {id: user.id}) : t('admin.user.deactivated', {id: user.id}), () => Promise.all([this.loadUsers(), this.loadTokens()]));
  }

  // --- sites --------------------------------------------------------------------------------

  async loadSites() {
    try {
      const sites = await get('/api/v1/sites');
      this.ctx.sites.clear();
      for (const site of sites) this.ctx.sites.set(site.id, site);
      this.table(this.sections.sites, ['admin.site.id', 'admin.site.name_zh', 'admin.site.name_en', 'admin.site.kind', 'admin.site.position', 'admin.site.timezone', 'admin.actions'],
        sites.map((site) => h('tr', {'data-site': site.id},
          h('th', {scope: 'row'}, site.id), h('td', {}, site.name_zh), h('td', {}, site.name_en),
          h('td', {}, label('admin.site.kind', site.kind)), h('td', {}, `${site.lat.toFixed(4)}, ${site.lon.toFixed(4)}`),
          h('td', {}, site.timezone),
          h('td', {class: 'row-actions'}, h('button', {type: 'button', class: 'secondary small', 'data-action': 'edit', onclick: () => this.editSite(site)}, t('admin.edit'))))));
    } catch (error) {
      this.failed(error);
    }
  }

  async editSite(site) {
    const s = site || {kind: 'health_centre', timezone: 'Asia/Shanghai', pad_radius_m: 25};
    const input = (name, attrs) => h('input', {id: `site-${name}`, name, value: s[name] ?? '', ...attrs});
    const values = await dialog({
      title: site ? t('admin.site.edit', {id: site.id}) : t('admin.sites.add'),
      body: h('div', {},
        site ? null : field('site-id', t('admin.site.id'), input('id', {required: true, pattern: ID_PATTERN, maxlength: 64})),
        field('site-name_zh', t('admin.site.name_zh'), input('name_zh', {required: true, maxlength: 200})),
        field('site-name_en', t('admin.site.name_en'), input('name_en', {required: true, maxlength: 200})),
        field('site-short_zh', t('admin.site.short_zh'), input('short_zh', {maxlength: 40})),
        field('site-short_en', t('admin.site.short_en'), input('short_en', {maxlength: 40})),
        field('site-kind', t('admin.site.kind'), h('select', {id: 'site-kind', name: 'kind'}, options(SITE_KINDS, s.kind, (k) => label('admin.site.kind', k)))),
        field('site-lat', t('admin.site.lat'), input('lat', {type: 'number', step: 'any', min: -90, max: 90, required: true})),
        field('site-lon', t('admin.site.lon'), input('lon', {type: 'number', step: 'any', min: -180, max: 180, required: true})),
        field('site-timezone', t('admin.site.timezone'), input('timezone', {required: true, maxlength: 64})),
        field('site-pad_radius_m', t('admin.site.pad'), input('pad_radius_m', {type: 'number', step: 'any', min: 1, max: 1000, required: true}))),
      submit: t('admin.save'), cancel: t('cancel')});
    if (!values) return;
    const id = site ? site.id : values.id.trim();
    const body = {name_zh: values.name_zh.trim(), name_en: values.name_en.trim(), short_zh: values.short_zh.trim() || null,
      short_en: values.short_en.trim() || null, kind: values.kind, lat: Number(values.lat),
      lon: Number(values.lon), timezone: values.timezone.trim(), pad_radius_m: Number(values.pad_radius_m)};
    await this.change(() => send('PUT', `/api/v1/admin/sites/${encodeURIComponent(id)}`, body), t('admin.saved'), () => this.loadSites());
  }

  // --- drones -------------------------------------------------------------------------------

  async loadDrones() {
    const load = () => this.loadDrones();
    try {
      const page = await get(`/api/v1/admin/drones?limit=${PAGE}&offset=${this.offsets.drones}`);
      this.table(this.sections.drones, ['admin.drone.id', 'admin.drone.name', 'admin.drone.registration', 'admin.drone.model', 'admin.drone.home', 'admin.drone.state', 'admin.actions'],
        page.items.map((drone) => h('tr', {'data-drone': drone.id, 'data-retired': String(drone.retired), class: drone.retired ? 'inactive' : null},
          h('th', {scope: 'row'}, drone.id), h('td', {}, drone.display_name || '—'),
          h('td', {}, drone.registration_number || '—'), h('td', {}, drone.model || '—'),
          h('td', {}, drone.home_site_id ? this.ctx.siteName(drone.home_site_id) : '—'),
          h('td', {}, drone.retired ? t('admin.drone.retired') : t('admin.drone.serving')),
          h('td', {class: 'row-actions'},
            h('button', {type: 'button', class: 'secondary small', 'data-action': 'edit', onclick: () => this.editDrone(drone)}, t('admin.edit')),
            h('button', {type: 'button', class: drone.retired ? 'secondary small' : 'danger small', 'data-action': drone.retired ? 'return' : 'retire',
              onclick: () => this.putDrone(drone.id, {...this.droneBody(drone), retired: !drone.retired})}, drone.retired ? t('admin.drone.return') : t('admin.drone.retire'))))));
      this.pager('drones', page, load);
    } catch (error) {
      this.failed(error);
    }
  }

  droneBody(drone) {
    return {display_name: drone.display_name || null, registration_number: drone.registration_number || null,
      model: drone.model || null, home_site_id: drone.home_site_id || null, retired: Boolean(drone.retired)};
  }

  async editDrone(drone) {
    const d = drone || {};
    const input = (name, attrs) => h('input', {id: `drone-${name}`, name, value: d[name] ?? '', ...attrs});
    const values = await dialog({
      title: drone ? t('admin.drone.edit', {id: drone.id}) : t('admin.drones.add'),
      body: h('div', {},
        drone ? null : field('drone-id', t('admin.drone.id'), input('id', {required: true, pattern: ID_PATTERN, maxlength: 64})),
        field('drone-display_name', t('admin.drone.name'), input('display_name', {maxlength: 200})),
        field('drone-registration_number', t('admin.drone.registration'), input('registration_number', {maxlength: 64, autocapitalize: 'characters'})),
        field('drone-model', t('admin.drone.model'), input('model', {maxlength: 100})),
        field('drone-home', t('admin.drone.home'), h('select', {id: 'drone-home', name: 'home_site_id'},
          options([...this.ctx.sites.keys()], d.home_site_id || '', (s) => this.ctx.siteName(s), t('admin.none'))))),
      submit: t('admin.save'), cancel: t('cancel')});
    if (!values) return;
    const id = drone ? drone.id : values.id.trim();
    await this.putDrone(id, {...this.droneBody({...d, ...values}), retired: Boolean(d.retired)});
  }

  async putDrone(id, body) {
    await this.change(() => send('PUT', `/api/v1/admin/drones/${encodeURIComponent(id)}`, body), t('admin.saved'), () => this.loadDrones());
  }

  // --- notification routes and messages -----------------------------------------------------

  async loadRoutes() {
    const load = () => this.loadRoutes();
    try {
      const page = await get(`/api/v1/admin/notification-routes?limit=${PAGE}&offset=${this.offsets.routes}`);
      const list = (values, labelOf) => (values.length ? values.map(labelOf).join('、') : t('admin.route.any'));
      this.table(this.sections.routes, ['admin.route.name', 'admin.route.source', 'admin.route.channel', 'admin.route.takes', 'admin.route.when', 'admin.route.quiet', 'admin.route.state', 'admin.actions'],
        page.items.map((route) => h('tr', {'data-route': String(route.id), class: route.active ? null : 'inactive'},
          h('th', {scope: 'row'}, route.name),
          h('td', {}, t(`admin.route.source.${route.source}`)),
          h('td', {}, route.recipients.length ? `${route.channel} → ${route.recipients.join(', ')}` : route.channel),
          h('td', {}, [list(route.site_ids, (s) => this.ctx.siteName(s)), route.alert_kinds.length ? list(route.alert_kinds, (k) => t(`alert.kind.${k}`)) : null,
            route.priorities.length ? list(route.priorities, (p) => t(`admin.route.priority.${p}`)) : null,
            route.min_severity ? t('admin.route.severity.atleast', {severity: t(`admin.route.severity.${route.min_severity}`)}) : null].filter(Boolean).join('；')),
          h('td', {}, route.source === 'report' ? t(`admin.route.period.${route.period}`, {at: route.send_at})
            : route.after_min ? t('admin.route.after', {minutes: route.after_min}) : t('admin.route.at.once')),
          h('td', {}, route.quiet_start ? `${route.quiet_start}–${route.quiet_end}` : '—'),
          h('td', {}, route.active ? t('admin.route.active') : t('admin.route.paused')),
          h('td', {class: 'row-actions'},
            h('button', {type: 'button', class: 'secondary small', 'data-action': 'edit', onclick: () => this.editRoute(route)}, t('admin.edit')),
            h('button', {type: 'button', class: 'danger small', 'data-action': 'delete', onclick: () => this.deleteRoute(route)}, t('admin.route.delete'))))));
      this.pager('routes', page, load);
    } catch (error) {
      this.failed(error);
    }
  }

  async editRoute(route) {
    let channels = [];
    try {
      channels = await get('/api/v1/admin/notification-channels');
    } catch (error) {
      this.failed(error);
      return;
    }
    const r = route || {source: 'alert', site_ids: [], alert_kinds: [], priorities: [], recipients: [], after_min: 0, language: 'zh', active: true};
    const chosen = {site_ids: [...r.site_ids], alert_kinds: [...r.alert_kinds], priorities: [...r.priorities]};
    const many = (name, values, labelOf) => h('select', {id: `route-${name}`, multiple: true, size: Math.min(6, values.length),
      onchange: (e) => { chosen[name] = [...e.target.selectedOptions].map((o) => o.value); }},
    values.map((value) => h('option', {value, selected: chosen[name].includes(value)}, labelOf(value))));
    const input = (name, attrs) => h('input', {id: `route-${name}`, name, value: r[name] ?? '', ...attrs});
    const values = await dialog({
      title: route ? t('admin.route.edit', {name: route.name}) : t('admin.routes.add'),
      body: h('div', {},
        field('route-name', t('admin.route.name'), input('name', {required: true, maxlength: 80})),
        field('route-source', t('admin.route.source'), h('select', {id: 'route-source', name: 'source'},
          options(SOURCES, r.source, (s) => t(`admin.route.source.${s}`)))),
        field('route-channel', t('admin.route.channel'), h('select', {id: 'route-channel', name: 'channel', required: true},
          options(channels.map((c) => c.name), r.channel, (c) => c))),
        field('route-recipients', t('admin.route.recipients'), input('recipients', {value: r.recipients.join(', '), maxlength: 2000})),
        field('route-site_ids', t('admin.route.sites'), many('site_ids', [...this.ctx.sites.keys()], (s) => this.ctx.siteName(s))),
        field('route-alert_kinds', t('admin.route.kinds'), many('alert_kinds', ALERT_KINDS, (k) => t(`alert.kind.${k}`))),
        field('route-priorities', t('admin.route.priorities'), many('priorities', PRIORITIES, (p) => t(`admin.route.priority.${p}`))),
        field('route-min_severity', t('admin.route.severity'), h('select', {id: 'route-min_severity', name: 'min_severity'},
          options(SEVERITIES, r.min_severity || '', (s) => t(`admin.route.severity.${s}`), t('admin.route.any')))),
        field('route-after_min', t('admin.route.after_min'), input('after_min', {type: 'number', min: 0, max: 1440})),
        field('route-quiet_start', t('admin.route.quiet_start'), input('quiet_start', {pattern: CLOCK_PATTERN, placeholder: '22:00'})),
        field('route-quiet_end', t('admin.route.quiet_end'), input('quiet_end', {pattern: CLOCK_PATTERN, placeholder: '07:00'})),
        field('route-period', t('admin.route.period'), h('select', {id: 'route-period', name: 'period'},
          options(['daily', 'weekly'], r.period || '', (p) => t(`admin.route.period.name.${p}`), t('admin.none')))),
        field('route-send_at', t('admin.route.send_at'), input('send_at', {pattern: CLOCK_PATTERN, placeholder: '08:00'})),
        field('route-language', t('admin.route.language'), h('select', {id: 'route-language', name: 'language'},
          options(['zh', 'en'], r.language, (l) => t(`admin.route.language.${l}`)))),
        field('route-active', t('admin.route.state'), h('select', {id: 'route-active', name: 'active'},
          options(['true', 'false'], String(r.active), (a) => (a === 'true' ? t('admin.route.active') : t('admin.route.paused')))))),
      submit: t('admin.save'), cancel: t('cancel')});
    if (!values) return;
    const body = {name: values.name.trim(), source: values.source, channel: values.channel,
      recipients: values.recipients.split(/[,，;；\s]+/).filter(Boolean), ...chosen,
      min_severity: values.min_severity || null, after_min: Number(values.after_min || 0),
      quiet_start: values.quiet_start || null, quiet_end: values.quiet_end || null,
      period: values.period || null, send_at: values.send_at || null, language: values.language,
      active: values.active === 'true'};
    await this.change(() => (route ? send('PUT', `/api/v1/admin/notification-routes/${route.id}`, body)
      : send('POST', '/api/v1/admin/notification-routes', body)), t('admin.saved'), () => this.loadRoutes());
  }

  async deleteRoute(route) {
    const sure = await dialog({title: t('admin.route.delete.confirm', {name: route.name}), body: h('p', {}, t('admin.route.delete.note')),
      submit: t('admin.route.delete'), cancel: t('cancel'), danger: true});
    if (!sure) return;
    await this.change(() => send('DELETE', `/api/v1/admin/notification-routes/${route.id}`), t('admin.saved'), () => this.loadRoutes());
  }

  async loadMessages() {
    const load = () => this.loadMessages();
    try {
      const page = await get(`/api/v1/admin/notifications?limit=${PAGE}&offset=${this.offsets.messages}`);
      this.table(this.sections.messages, ['admin.message.title', 'admin.route.source', 'admin.route.channel', 'admin.message.state', 'admin.message.when', 'admin.message.attempts'],
        page.items.map((message) => h('tr', {'data-message': String(message.id), 'data-state': message.state},
          h('th', {scope: 'row'}, message.title),
          h('td', {}, t(`admin.route.source.${message.source}`)),
          h('td', {}, message.channel),
          h('td', {title: message.last_error || ''}, t(`admin.message.state.${message.state}`)),
          h('td', {}, dateTime(message.sent_at || message.not_before)),
          h('td', {}, String(message.attempts)))));
      this.pager('messages', page, load);
    } catch (error) {
      this.failed(error);
    }
  }

  // --- device tokens ------------------------------------------------------------------------

  async loadTokens() {
    try {
      const [devices, tokens] = await Promise.all([
        get('/api/v1/admin/users?role=device&limit=500'),
        get('/api/v1/admin/tokens?role=device&limit=500')]);
      const byUser = Map.groupBy ? Map.groupBy(tokens.items, (x) => x.user_id) : new Map();
      if (!Map.groupBy) for (const token of tokens.items) byUser.set(token.user_id, [...(byUser.get(token.user_id) || []), token]);
      const rows = devices.items.filter((d) => d.active).map((device) => {
        const live = byUser.get(device.id) || [];
        return h('tr', {'data-device': device.id},
          h('th', {scope: 'row'}, device.id),
          h('td', {}, device.site_id ? this.ctx.siteName(device.site_id) : '—'),
          h('td', {}, live.length ? h('ul', {class: 'token-list'}, live.map((token) => h('li', {'data-token': token.id},
            h('code', {title: t('admin.token.id.hint')}, token.id.slice(0, 10)), ' ',
            h('span', {class: 'muted'}, t('admin.token.until', {time: dateTime(token.expires_at)})), ' ',
            h('button', {type: 'button', class: 'danger small', 'data-action': 'revoke', onclick: () => this.revokeToken(token)}, t('admin.token.revoke'))))) : h('span', {class: 'muted'}, t('admin.token.none'))),
          h('td', {class: 'row-actions'},
            h('button', {type: 'button', class: 'primary small', 'data-action': 'issue', onclick: () => this.issueToken(device)}, t('admin.token.issue'))));
      });
      this.table(this.sections.tokens, ['admin.token.device', 'admin.user.site', 'admin.token.live', 'admin.actions'], rows);
    } catch (error) {
      this.failed(error);
    }
  }

  async issueToken(device) {
    const values = await dialog({
      title: t('admin.token.issue.title', {id: device.id}),
      body: field('token-days', t('admin.token.days'), h('input', {id: 'token-days', name: 'days', type: 'number', min: 1, max: 366, step: 1, value: 30, required: true})),
      submit: t('admin.token.issue'), cancel: t('cancel')});
    if (!values) return;
    const issued = await this.change(() => send('POST', `/api/v1/admin/users/${encodeURIComponent(device.id)}/tokens`, {hours: Number(values.days) * 24}),
      null, () => this.loadTokens());
    if (!issued) return;
    const secret = h('input', {id: 'token-secret', readonly: true, value: issued.access_token, class: 'token-secret', onfocus: (e) => e.target.select()});
    await dialog({
      title: t('admin.token.shown.title', {id: device.id}),
      body: h('div', {}, h('p', {class: 'form-error'}, t('admin.token.shown.once')),
        field('token-secret', t('admin.token.secret'), secret),
        h('p', {class: 'muted small'}, t('admin.token.until', {time: dateTime(issued.expires_at)}))),
      submit: t('admin.token.shown.done'), cancel: t('admin.close')});
  }

  async revokeToken(token) {
    const confirmed = await dialog({title: t('admin.token.revoke.title', {id: token.user_id}),
      body: h('p', {}, t('admin.token.revoke.body', {token: token.id.slice(0, 10)})), submit: t('admin.token.revoke'), cancel: t('cancel'), danger: true});
    if (!confirmed) return;
    await this.change(() => send('POST', `/api/v1/admin/tokens/${token.id}/revoke`, {}), t('admin.token.revoked'), () => this.loadTokens());
  }
}
