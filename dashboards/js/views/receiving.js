// The receiving lab's reconciliation: each incoming container with the tubes its manifest
// expects; receiving a box means scanning the seal found on it and then each tube out of it.
// Every tube is judged at once by the API (expected, foreign: packed into another box, extra:
// on no manifest); an expected tube is received through the custody outbox (with the box and
// its seal), a discrepancy is flagged here and raised as an alert to both sites. "Box empty"
// names the manifest's tubes never scanned as missing.

import {ApiError, get, post, uuid4} from '../api.js';
import {outbox} from '../custody_outbox.js';
import {fill, h, toast} from '../dom.js';
import {now, time} from '../format.js';
import {label, t} from '../i18n.js';
import {canonicalBarcode, scanField} from '../scan_field.js';

const REFRESH_MS = 15_000;

export function mount(root, ctx, args) {
  return new ReceivingView(root, ctx, args);
}

class ReceivingView {
  constructor(root, ctx, args) {
    this.ctx = ctx;
    this.site = ctx.user.site_id;
    this.boxes = [];
    this.open = null; // the container being received: {box, seal, checks: Map barcode -> check}
    this.list = h('div', {class: 'incoming-boxes', id: 'incoming-boxes'}, h('p', {class: 'empty-state'}, t('loading')));
    this.work = h('section', {class: 'panel', id: 'receive-box', hidden: true, 'aria-live': 'polite'});
    fill(root, h('div', {class: 'station-layout'},
      h('h1', {class: 'view-title'}, t('receiving.title', {site: ctx.siteName(this.site)})),
      this.work,
      h('section', {class: 'panel', 'aria-labelledby': 'boxes-title'}, h('h2', {id: 'boxes-title'}, t('receiving.incoming')), this.list)));
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh().then(() => this.update(args));
  }

  destroy() {
    clearInterval(this.timer);
  }

  update(args) {
    const wanted = args?.[0];
    const box = wanted && this.boxes.find((candidate) => candidate.container_id === wanted);
    if (box && this.open?.box.container_id !== wanted) this.start(box);
  }

  async refresh() {
    try {
      this.boxes = await get('/api/v1/containers?direction=incoming');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    this.renderList();
  }

  renderList() {
    if (!this.boxes.length) {
      fill(this.list, h('p', {class: 'empty-state'}, t('receiving.none')));
      return;
    }
    fill(this.list, this.boxes.map((box) => {
      const received = box.tubes.filter((tube) => tube.received).length;
      return h('div', {class: 'incoming-box', dataset: {container: box.container_id}},
        h('div', {class: 'strong'}, t('receiving.box.line', {box: box.container_id, origin: this.ctx.siteName(box.origin_site_id)})),
        h('div', {class: 'muted small'}, [
          t('receiving.expected', {n: box.tubes.length, received}),
          box.flight_id ? ` · ${t('packing.on.flight', {flight: box.flight_id, drone: box.drone_id})}` : '',
          box.loaded_at ? ` · ${time(box.loaded_at)}` : '']),
        h('ul', {class: 'expected-tubes'}, box.tubes.map((tube) => h('li', {dataset: {barcode: tube.barcode, received: String(tube.received)}},
          h('span', {class: 'mono'}, tube.barcode), ' ',
          tube.priority ? h('span', {class: ['badge', `priority-${tube.priority}`]}, label('priority', tube.priority)) : null, ' ',
          tube.temperature_class ? h('span', {class: 'badge'}, label('tclass', tube.temperature_class)) : null,
          tube.received ? h('span', {class: 'badge sstate-received'}, t('receiving.done')) : null))),
        h('div', {class: 'scan-row'},
          h('button', {type: 'button', class: 'primary open-box', onclick: () => this.ctx.navigate(`#/receiving/${encodeURIComponent(box.container_id)}`)}, t('receiving.open')),
          h('a', {href: `#/manifest/${encodeURIComponent(box.container_id)}`, class: 'small'}, t('packing.manifest'))));
    }));
  }

  start(box) {
    this.open = {box, seal: null, checks: new Map()};
    const seal = scanField({id: 'receive-seal', label: t('receiving.seal', {seal: box.seal_id || '—'}), onScan: (value) => this.sealFound(value)});
    const tube = scanField({id: 'receive-scan', label: t('receiving.scan'), normalise: canonicalBarcode, onScan: (value) => this.scan(value)});
    this.tubeInput = tube.input;
    this.sealNotice = h('div', {id: 'seal-result'});
    this.results = h('ul', {class: 'check-list', id: 'check-list'});
    this.closeButton = h('button', {type: 'button', class: 'secondary', id: 'close-box', onclick: () => this.closeBox()}, t('receiving.close'));
    this.work.hidden = false;
    fill(this.work, h('h2', {}, t('receiving.working', {box: box.container_id})), seal.el, this.sealNotice, tube.el,
      this.results, this.closeButton);
    seal.input.focus();
  }

  sealFound(value) {
    this.open.seal = value;
    const expected = this.open.box.seal_id;
    fill(this.sealNotice, expected && value !== expected
      ? h('p', {class: 'notice danger'}, t('receiving.seal.mismatch', {found: value, packed: expected}))
      : h('p', {class: 'notice ok-notice'}, t('receiving.seal.ok')));
    this.tubeInput.focus();
  }

  async scan(barcode) {
    this.tubeInput.value = '';
    this.tubeInput.focus();
    if (!this.open.seal) {
      toast(t('receiving.seal.first'), 'error');
      return;
    }
    if (this.open.checks.has(barcode)) return; // scanned twice: once is enough
    const box = this.open.box;
    let check;
    try {
      check = await post(`/api/v1/containers/${encodeURIComponent(box.container_id)}/checks`, {barcode});
    } catch (error) {
      toast(error instanceof ApiError && error.status === 0 ? t('error.network') : t('error.generic', {detail: error.message}), 'error');
      return;
    }
    this.open.checks.set(barcode, check);
    if (check.finding === 'expected') {
      outbox.record({schema_version: 1, event_id: uuid4(), event_time: new Date(now()).toISOString(), kind: 'received',
        barcode, site_id: this.site, actor: {kind: 'staff', id: this.ctx.user.user_id}, container_id: box.container_id, seal_id: this.open.seal});
    }
    this.renderChecks();
  }

  async closeBox() {
    const box = this.open.box;
    try {
      const missing = await post(`/api/v1/containers/${encodeURIComponent(box.container_id)}/close`, {scanned: [...this.open.checks.keys()]});
      for (const check of missing) this.open.checks.set(check.barcode, check);
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
      return;
    }
    this.renderChecks();
    this.closeButton.disabled = true;
    this.refresh();
  }

  renderChecks() {
    fill(this.results, [...this.open.checks.values()].map((check) => h('li',
      {class: ['check', `check-${check.finding}`], dataset: {barcode: check.barcode, finding: check.finding}},
      h('span', {class: 'mono strong'}, check.barcode), ' ',
      t(`receiving.finding.${check.finding}`, {box: check.packed_container_id || ''}),
      check.finding !== 'expected' ? h('span', {class: 'small'}, ` · ${t('receiving.alerted')}`) : null)));
  }
}
