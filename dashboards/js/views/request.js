// A site's own flight requests (#/request, phone first): ask for a flight for sealed boxes
// (destination, priority, ready time), see the site's requests with their state, flight and
// ETA, cancel one not yet picked up, and print the QR code that opens this form, to hang at
// the clinic: scanning it on a phone signed in as the site's staff lands here.

import {ApiError, get, post} from '../api.js';
import {fill, h, s, toast} from '../dom.js';
import {duration, time} from '../format.js';
import {label, t} from '../i18n.js';

const REFRESH_MS = 15_000;
const PRIORITIES = ['stat', 'urgent', 'routine'];
const ID = '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}';

export function mount(root, ctx) {
  return new RequestView(root, ctx);
}

class RequestView {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.site = ctx.user.site_id;
    this.list = h('div', {class: 'request-queue', id: 'my-requests'}, h('p', {class: 'empty-state'}, t('loading')));
    this.qr = h('div', {class: 'form-qr', id: 'form-qr', hidden: true});
    fill(root, h('div', {class: 'station-layout'},
      h('h1', {class: 'view-title'}, t('request.title', {site: ctx.siteName(this.site)})),
      this.form(),
      h('section', {class: 'panel', 'aria-labelledby': 'my-requests-title'}, h('h2', {id: 'my-requests-title'}, t('request.mine')), this.list),
      h('section', {class: 'panel no-print-hide'},
        h('button', {type: 'button', class: 'secondary small', id: 'show-qr', onclick: () => this.showQr()}, t('request.qr')),
        this.qr)));
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh();
  }

  destroy() {
    clearInterval(this.timer);
  }

  form() {
    const destinations = [...this.ctx.sites.values()].filter((site) => site.id !== this.site);
    const destination = h('select', {id: 'request-destination', name: 'destination', required: true},
      destinations.map((site) => h('option', {value: site.id, selected: site.kind === 'lab_hospital'}, this.ctx.siteName(site.id))));
    const priority = h('select', {id: 'request-priority', name: 'priority'},
      PRIORITIES.map((p) => h('option', {value: p, selected: p === 'routine'}, label('priority', p))));
    const boxes = h('input', {id: 'request-boxes', name: 'boxes', autocomplete: 'off', placeholder: 'BOX-…', pattern: `(${ID})([ ,，、]+${ID})*`});
    const form = h('form', {class: 'panel request-form', id: 'request-form'},
      h('label', {for: 'request-destination'}, t('request.destination')), destination,
      h('label', {for: 'request-priority'}, t('request.priority')), priority,
      h('label', {for: 'request-boxes'}, t('request.boxes')), boxes,
      h('button', {type: 'submit', class: 'primary', id: 'request-submit'}, t('request.submit')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const containers = boxes.value.split(/[ ,，、]+/).map((b) => b.trim()).filter(Boolean);
      try {
        const made = await post('/api/v1/requests', {destination_site_id: destination.value, priority: priority.value, containers});
        toast(t('request.made', {id: made.id}));
        boxes.value = '';
      } catch (error) {
        toast(t('error.generic', {detail: error.message}), 'error');
      }
      this.refresh();
    });
    return form;
  }

  async refresh() {
    let page;
    try {
      page = await get('/api/v1/requests?state=all&limit=20');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    const mine = page.items.filter((r) => r.origin_site_id === this.site);
    if (!mine.length) {
      fill(this.list, h('p', {class: 'empty-state'}, t('request.none')));
      return;
    }
    fill(this.list, mine.map((r) => h('article', {class: ['panel', 'request-card'], dataset: {request: r.id, state: r.state}},
      h('div', {class: 'request-head'},
        h('span', {class: ['badge', `priority-${r.priority}`]}, label('priority', r.priority)), ' ',
        h('span', {class: 'strong'}, `→ ${this.ctx.siteName(r.destination_site_id)}`), ' ',
        h('span', {class: ['badge', 'request-state', `rstate-${r.state}`]}, label('rstate', r.state))),
      h('div', {class: 'muted small'}, `${r.id} · ${t('board.ready', {at: time(r.ready_at)})}`
        + (['requested', 'assigned', 'courier'].includes(r.state) ? ` · ${t('board.waiting', {d: duration(r.waiting_s)})}` : '')),
      r.flight_id ? h('div', {class: 'small'}, t('board.flight', {flight: r.flight_id, drone: r.drone_id}),
        r.eta ? ` · ${t('board.eta', {at: time(r.eta)})}` : '') : null,
      r.courier_id ? h('div', {class: 'small'}, t('board.courier', {courier: r.courier_id})) : null,
      ['requested', 'assigned', 'courier'].includes(r.state)
        ? h('button', {type: 'button', class: 'danger small act-cancel', onclick: () => this.cancel(r)}, t('board.cancel')) : null)));
  }

  async cancel(r) {
    try {
      await post(`/api/v1/requests/${encodeURIComponent(r.id)}/actions`, {action: 'cancel'});
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
    }
    this.refresh();
  }

  async showQr() {
    let code;
    try {
      code = await get('/api/v1/requests/form-qr');
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    const size = code.qr.length + 8;
    const squares = [];
    code.qr.forEach((row, y) => [...row].forEach((dark, x) => {
      if (dark === '1') squares.push(s('rect', {x: x + 4, y: y + 4, width: 1, height: 1}));
    }));
    this.qr.hidden = false;
    fill(this.qr,
      h('p', {class: 'strong'}, t('request.qr.caption', {site: this.ctx.siteName(this.site)})),
      s('svg', {class: 'qr', viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': t('request.qr')},
        s('rect', {x: 0, y: 0, width: size, height: size, fill: '#fff'}), s('g', {fill: '#000'}, squares)),
      h('p', {class: 'muted small mono'}, code.url),
      h('button', {type: 'button', class: 'secondary small', onclick: () => window.print()}, t('manifest.print')));
  }
}
