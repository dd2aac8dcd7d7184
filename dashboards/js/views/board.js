// The dispatch board: the queue of transport requests, most urgent and longest waiting first,
// each with its waiting time, its boxes and, while no drone is assigned, the suggested drone
// (available, battery enough for the route with reserve, nearest: GET /requests/{id}/drones).
// Assigning sends the flight plan through the API (a `planned` event on the shared ingest
// path); an assigned request shows its flight, the drone's registration number and the ETA.
// Reassign, hand to a ground courier, cancel, enter the airspace approval of a held flight,
// and record pickup and delivery.

import {ApiError, get, post} from '../api.js';
import {dialog, fill, h, toast} from '../dom.js';
import {duration, time} from '../format.js';
import {label, t} from '../i18n.js';

const REFRESH_MS = 10_000;

export function mount(root, ctx) {
  return new BoardView(root, ctx);
}

class BoardView {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.canAct = ['dispatcher', 'admin'].includes(ctx.user.role);
    this.queue = h('div', {class: 'request-queue', id: 'request-queue', 'aria-live': 'polite'}, h('p', {class: 'empty-state'}, t('loading')));
    this.count = h('span', {class: 'muted small', id: 'request-count'});
    fill(root, h('div', {class: 'board-layout'},
      h('div', {class: 'panel-head'}, h('h1', {class: 'view-title'}, t('board.title')), this.count),
      this.queue));
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh();
  }

  destroy() {
    clearInterval(this.timer);
  }

  async refresh() {
    let page;
    try {
      page = await get('/api/v1/requests?state=open&limit=50');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    this.count.textContent = t('board.count', {n: page.total});
    if (!page.items.length) {
      fill(this.queue, h('p', {class: 'empty-state'}, t('board.empty')));
      return;
    }
    const offers = await Promise.all(page.items.map((request) => (request.state === 'requested' && this.canAct
      ? get(`/api/v1/requests/${encodeURIComponent(request.id)}/drones`).catch(() => [])
      : Promise.resolve(null))));
    fill(this.queue, page.items.map((request, i) => this.card(request, offers[i])));
  }

  card(request, offers) {
    const site = (id) => this.ctx.siteName(id);
    const lines = [
      h('div', {class: 'request-head'},
        h('span', {class: ['badge', `priority-${request.priority}`]}, label('priority', request.priority)), ' ',
        h('span', {class: 'strong'}, `${site(request.origin_site_id)} → ${site(request.destination_site_id)}`), ' ',
        h('span', {class: ['badge', 'request-state', `rstate-${request.state}`]}, label('rstate', request.state))),
      h('div', {class: 'muted small'}, [
        h('span', {class: 'waiting', dataset: {seconds: String(Math.round(request.waiting_s))}}, t('board.waiting', {d: duration(request.waiting_s)})),
        ` · ${t('board.ready', {at: time(request.ready_at)})}`,
        request.source === 'schedule' ? ` · ${t('board.scheduled')}` : '',
        ` · ${request.id}`]),
      request.containers.length ? h('div', {class: 'small'}, t('board.boxes', {boxes: request.containers.join('、')})) : null,
    ];
    if (request.carrier === 'drone' && request.flight_id) {
      lines.push(h('div', {class: 'assignment small', dataset: {flight: request.flight_id}},
        t('board.flight', {flight: request.flight_id, drone: request.drone_id}),
        request.drone_registration ? ` · ${t('board.registration', {number: request.drone_registration})}` : ` · ${t('board.unregistered')}`,
        request.eta ? h('span', {class: 'eta'}, ` · ${t('board.eta', {at: time(request.eta)})}`) : null,
        request.approval_ref ? ` · ${t('board.approval', {ref: request.approval_ref})}` : null));
      if (request.flight_held) lines.push(h('p', {class: 'notice warn held'}, t('board.held')));
    }
    if (request.carrier === 'courier') lines.push(h('div', {class: 'small'}, t('board.courier', {courier: request.courier_id})));
    if (offers) {
      lines.push(offers.length
        ? h('div', {class: 'suggestion small', dataset: {drone: offers[0].drone_id}},
          t('board.suggested', {drone: offers[0].drone_id, km: (offers[0].to_origin_m / 1000).toFixed(1), battery: Math.round(offers[0].battery_pct), needed: Math.round(offers[0].needed_pct)}))
        : h('p', {class: 'notice warn no-drone'}, t('board.no.drone')));
    }
    if (this.canAct) lines.push(this.actions(request, offers));
    return h('article', {class: ['panel', 'request-card'], dataset: {request: request.id, state: request.state}}, lines);
  }

  actions(request, offers) {
    const button = (name, text, onclick, kind = 'secondary') => h('button', {type: 'button', class: [kind, 'small', `act-${name}`], onclick}, text);
    const buttons = [];
    if (request.state === 'requested') {
      if (offers?.length) {
        const choice = h('select', {class: 'drone-select', 'aria-label': t('board.drone')},
          offers.map((offer) => h('option', {value: offer.drone_id}, `${offer.drone_id} · ${Math.round(offer.battery_pct)}%`)));
        buttons.push(choice, button('assign', t('board.assign'), () => this.act(request, {action: 'assign', drone_id: choice.value}), 'primary'));
      }
    }
    if (request.state === 'assigned') {
      buttons.push(button('reassign', t('board.reassign'), () => this.reassign(request)));
      if (request.flight_held) buttons.push(button('approve', t('board.approve'), () => this.approve(request), 'primary'));
      else buttons.push(button('pick_up', t('board.pick_up'), () => this.act(request, {action: 'pick_up'})));
    }
    if (request.state === 'courier') buttons.push(button('pick_up', t('board.pick_up'), () => this.act(request, {action: 'pick_up'})));
    if (request.state === 'picked_up') buttons.push(button('deliver', t('board.deliver'), () => this.act(request, {action: 'deliver'})));
    if (['requested', 'assigned'].includes(request.state)) buttons.push(button('to_courier', t('board.to_courier'), () => this.courier(request)));
    if (['requested', 'assigned', 'courier'].includes(request.state)) buttons.push(button('cancel', t('board.cancel'), () => this.cancel(request), 'danger'));
    return h('div', {class: 'request-actions'}, buttons);
  }

  async act(request, body) {
    try {
      await post(`/api/v1/requests/${encodeURIComponent(request.id)}/actions`, body);
      toast(t('board.done', {action: label('board.action', body.action), id: request.id}));
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
    }
    this.refresh();
  }

  async reassign(request) {
    let offers = [];
    try {
      offers = await get(`/api/v1/requests/${encodeURIComponent(request.id)}/drones`);
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    if (!offers.length) {
      toast(t('board.no.drone'), 'error');
      return;
    }
    const values = await dialog({title: t('board.reassign.title', {id: request.id}),
      body: [h('label', {for: 'reassign-drone'}, t('board.drone')),
        h('select', {id: 'reassign-drone', name: 'drone_id'}, offers.map((offer) => h('option', {value: offer.drone_id}, `${offer.drone_id} · ${Math.round(offer.battery_pct)}%`)))],
      submit: t('board.reassign'), cancel: t('cancel')});
    if (values) this.act(request, {action: 'reassign', drone_id: values.drone_id});
  }

  async courier(request) {
    const values = await dialog({title: t('board.to_courier.title', {id: request.id}),
      body: [h('label', {for: 'courier-id'}, t('board.courier.id')),
        h('input', {id: 'courier-id', name: 'courier_id', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}', autocomplete: 'off'})],
      submit: t('board.to_courier'), cancel: t('cancel')});
    if (values) this.act(request, {action: 'to_courier', courier_id: values.courier_id});
  }

  async approve(request) {
    const values = await dialog({title: t('board.approve.title', {id: request.id}),
      body: [h('label', {for: 'approval-ref'}, t('board.approval.ref')),
        h('input', {id: 'approval-ref', name: 'approval_ref', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}', autocomplete: 'off'})],
      submit: t('board.approve'), cancel: t('cancel')});
    if (values) this.act(request, {action: 'approve', approval_ref: values.approval_ref});
  }

  async cancel(request) {
    const values = await dialog({title: t('board.cancel.title', {id: request.id}), body: h('p', {}, t('board.cancel.body')),
      submit: t('board.cancel'), cancel: t('board.keep'), danger: true});
    if (values) this.act(request, {action: 'cancel'});
  }
}
