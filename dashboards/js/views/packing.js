// The packing station (phone first): a site's staff scan or type each tube and describe it,
// pack tubes into a sealed container (warned before mixing temperature classes in one box),
// and hand the container to the drone of a flight planned at the site. Every step is a
// custody scan of the signed-in person at their own site, through the custody outbox: kept in
// this browser until stored, so a weak link loses nothing. Each tube shows what is recorded,
// what is still waiting to be sent, and what is missing.

import {get, post, uuid4} from '../api.js';
import {outbox} from '../custody_outbox.js';
import {dialog, fill, h, toast} from '../dom.js';
import {now} from '../format.js';
import {label, t} from '../i18n.js';
import {canonicalBarcode, scanField} from '../scan_field.js';

const KINDS = ['blood_sample', 'blood_gas', 'blood_unit', 'pathology', 'microbiology', 'urine', 'other'];
const PRODUCTS = ['red_cells', 'whole_blood', 'plasma_thawed', 'plasma_frozen', 'platelets', 'cryo'];
const PRIORITIES = ['stat', 'urgent', 'routine'];
const TCLASSES = ['refrigerated', 'ambient', 'red_cells', 'platelets', 'frozen'];
const STEPS = ['collected', 'packed', 'loaded'];
const ORDER_REF = '[A-Za-z0-9_.:\\-]{1,64}';
const RESIDENT_ID = /^\d{17}[\dXx]$/;

export function mount(root, ctx) {
  return new PackingStation(root, ctx);
}

class PackingStation {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.site = ctx.user.site_id;
    this.key = `dronelog.station.${ctx.user.user_id}`;
    this.tubes = this.stored();
    this.departures = [];
    this.requested = new Map(); // container id -> the request made for it here
    this.onChange = () => this.render();
    outbox.addEventListener('change', this.onChange);
    this.build(root);
    this.render();
    this.loadDepartures();
    outbox.flush();
  }

  destroy() {
    outbox.removeEventListener('change', this.onChange);
  }

  stored() {
    try {
      return JSON.parse(localStorage.getItem(this.key)) || [];
    } catch {
      return [];
    }
  }

  save() {
    localStorage.setItem(this.key, JSON.stringify(this.tubes));
  }

  async loadDepartures() {
    try {
      this.departures = await get('/api/v1/departures');
    } catch {
      this.departures = this.departures || []; // offline: keep what we had
    }
    this.render();
  }

  event(kind, tube, fields) {
    return {schema_version: 1, event_id: uuid4(), event_time: new Date(now()).toISOString(), kind,
      barcode: tube.barcode, site_id: this.site, actor: {kind: 'staff', id: this.ctx.user.user_id}, ...fields};
  }

  // --- building -------------------------------------------------------------------------

  build(root) {
    const select = (id, values, prefix, selected) => h('select', {id, name: id},
      values.map((v) => h('option', {value: v, selected: v === selected}, label(prefix, v))));
    const labs = [...this.ctx.sites.values()].filter((site) => site.id !== this.site);
    const home = labs.find((site) => site.kind === 'lab_hospital') || labs[0];
    this.describe = {
      kind: select('tube-kind', KINDS, 'kind', 'blood_sample'),
      product: select('tube-product', PRODUCTS, 'product', 'red_cells'),
      priority: select('tube-priority', PRIORITIES, 'priority', 'routine'),
      tclass: select('tube-tclass', TCLASSES, 'tclass', 'ambient'),
      destination: h('select', {id: 'tube-destination'}, labs.map((site) => h('option', {value: site.id, selected: site === home}, this.ctx.siteName(site.id)))),
      order: h('input', {id: 'tube-order', autocomplete: 'off', spellcheck: 'false', pattern: ORDER_REF, maxlength: 64, required: true}),
    };
    this.productField = h('div', {class: 'field'}, h('label', {for: 'tube-product'}, t('packing.product')), this.describe.product);
    this.describe.kind.addEventListener('change', () => { this.productField.hidden = this.describe.kind.value !== 'blood_unit'; });
    this.productField.hidden = true;
    this.barcode = scanField({id: 'tube-barcode', label: t('packing.barcode'), normalise: canonicalBarcode, onScan: () => this.describe.kind.focus()});
    const collectForm = h('form', {class: 'station-form', id: 'collect-form'},
      this.barcode.el,
      h('div', {class: 'field'}, h('label', {for: 'tube-kind'}, t('packing.kind')), this.describe.kind),
      this.productField,
      h('div', {class: 'field'}, h('label', {for: 'tube-priority'}, t('packing.priority')), this.describe.priority),
      h('div', {class: 'field'}, h('label', {for: 'tube-tclass'}, t('packing.tclass')), this.describe.tclass),
      h('div', {class: 'field'}, h('label', {for: 'tube-destination'}, t('packing.destination')), this.describe.destination),
      h('div', {class: 'field'}, h('label', {for: 'tube-order'}, t('packing.order')), this.describe.order,
        h('p', {class: 'muted small'}, t('packing.order.hint'))),
      h('button', {type: 'submit', class: 'primary', id: 'collect-submit'}, t('packing.collect')));
    collectForm.addEventListener('submit', (event) => { event.preventDefault(); this.collect(); });

    this.box = scanField({id: 'box-id', label: t('packing.box'), onScan: () => this.seal.input.focus()});
    this.box.input.addEventListener('input', () => this.renderPackable());
    this.seal = scanField({id: 'box-seal', label: t('packing.seal')});
    this.packList = h('ul', {class: 'pack-list', id: 'pack-list'});
    this.mixWarning = h('p', {class: 'notice warn', id: 'mix-warning', role: 'alert', hidden: true});
    const packForm = h('form', {class: 'station-form', id: 'pack-form'}, this.box.el, this.seal.el,
      h('fieldset', {class: 'pack-fieldset'}, h('legend', {}, t('packing.choose')), this.packList),
      this.mixWarning,
      h('button', {type: 'submit', class: 'primary', id: 'pack-submit'}, t('packing.pack')));
    packForm.addEventListener('submit', (event) => { event.preventDefault(); this.pack(); });

    this.handover = h('div', {class: 'handover-list', id: 'handover-list'});
    this.record = h('ul', {class: 'tube-list', id: 'tube-list'});
    this.outboxStatus = h('p', {class: 'outbox-status', id: 'outbox-status', role: 'status'});
    fill(root, h('div', {class: 'station-layout'},
      h('h1', {class: 'view-title'}, t('packing.title', {site: this.ctx.siteName(this.site)})),
      this.outboxStatus,
      h('section', {class: 'panel station-step', 'aria-labelledby': 'collect-title'},
        h('h2', {id: 'collect-title'}, t('packing.step1')), collectForm),
      h('section', {class: 'panel station-step', 'aria-labelledby': 'pack-title'},
        h('h2', {id: 'pack-title'}, t('packing.step2')), packForm),
      h('section', {class: 'panel station-step', 'aria-labelledby': 'load-title'},
        h('h2', {id: 'load-title'}, t('packing.step3')),
        h('p', {class: 'muted small'}, t('packing.flights.note')), this.handover),
      h('section', {class: 'panel station-step', 'aria-labelledby': 'record-title'},
        h('h2', {id: 'record-title'}, t('packing.record')), this.record)));
    this.barcode.input.focus();
  }

  // --- the three steps -----------------------------------------------------------------

  collect() {
    this.barcode.input.value = canonicalBarcode(this.barcode.input.value);
    const barcode = this.barcode.input.value;
    const order = this.describe.order.value.trim();
    if (!this.barcode.input.checkValidity() || !this.describe.order.checkValidity()) {
      toast(t('packing.invalid'), 'error');
      return;
    }
    if (RESIDENT_ID.test(order)) {
      toast(t('packing.order.identity'), 'error'); // never patient identity
      return;
    }
    if (this.tubes.some((tube) => tube.barcode === barcode)) {
      toast(t('packing.duplicate', {barcode}), 'error');
      return;
    }
    const kind = this.describe.kind.value;
    const specimen = {kind, priority: this.describe.priority.value, temperature_class: this.describe.tclass.value,
      origin_site_id: this.site, destination_site_id: this.describe.destination.value, order_ref: order};
    if (kind === 'blood_unit') specimen.blood_product = this.describe.product.value;
    const tube = {barcode, specimen, ids: {}};
    tube.ids.collected = outbox.record(this.event('collected', tube, {specimen}));
    this.tubes.unshift(tube);
    this.save();
    this.barcode.input.value = '';
    this.describe.order.value = '';
    this.barcode.input.focus();
    this.render();
  }

  selected() {
    return [...this.packList.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value);
  }

  /** The temperature classes the box would hold: what is in it already, and the selection. */
  classesInBox(container, barcodes) {
    const inBox = this.tubes.filter((tube) => (container && tube.container_id === container) || barcodes.includes(tube.barcode));
    return [...new Set(inBox.map((tube) => tube.specimen.temperature_class))];
  }

  async pack() {
    const container = this.box.input.value.trim();
    const seal = this.seal.input.value.trim();
    const barcodes = this.selected();
    if (!container || !seal || !this.box.input.checkValidity() || !this.seal.input.checkValidity() || !barcodes.length) {
      toast(t('packing.pack.incomplete'), 'error');
      return;
    }
    const classes = this.classesInBox(container, barcodes);
    if (classes.length > 1) {
      const go = await dialog({title: t('packing.mix.title'), danger: true, submit: t('packing.mix.confirm'), cancel: t('cancel'),
        body: h('p', {class: 'notice warn', id: 'mix-confirm'}, t('packing.mix', {classes: classes.map((c) => label('tclass', c)).join(t('list.sep'))}))});
      if (!go) return;
    }
    for (const tube of this.tubes.filter((candidate) => barcodes.includes(candidate.barcode))) {
      tube.container_id = container;
      tube.seal_id = seal;
      tube.ids.packed = outbox.record(this.event('packed', tube, {container_id: container, seal_id: seal}));
    }
    this.save();
    this.box.input.value = '';
    this.seal.input.value = '';
    toast(t('packing.packed', {box: container, n: barcodes.length}), 'success');
    this.render();
  }

  handOver(container, flightId) {
    const flight = this.departures.find((candidate) => candidate.flight_id === flightId);
    if (!flight) return;
    for (const tube of this.tubes.filter((candidate) => candidate.container_id === container && !candidate.ids.loaded)) {
      tube.flight_id = flight.flight_id;
      tube.drone_id = flight.drone_id;
      tube.ids.loaded = outbox.record(this.event('loaded', tube, {container_id: container, flight_id: flight.flight_id, drone_id: flight.drone_id}));
    }
    this.save();
    toast(t('packing.loaded', {box: container, flight: flight.flight_id}), 'success');
    this.render();
  }

  // --- rendering -----------------------------------------------------------------------

  render() {
    const pending = outbox.pendingCount();
    this.outboxStatus.dataset.pending = String(pending);
    this.outboxStatus.className = ['outbox-status', pending ? 'notice warn' : 'muted'].join(' ');
    this.outboxStatus.textContent = pending ? t('outbox.pending', {n: pending}) : t('outbox.clear');
    this.renderPackable();
    this.renderHandover();
    this.renderRecord();
  }

  renderPackable() {
    const chosen = new Set(this.selected());
    const packable = this.tubes.filter((tube) => tube.ids.collected && !tube.container_id);
    fill(this.packList, packable.length ? packable.map((tube) => h('li', {class: 'pack-tube', dataset: {barcode: tube.barcode}},
      h('label', {class: 'toggle'},
        h('input', {type: 'checkbox', value: tube.barcode, checked: chosen.has(tube.barcode), onchange: () => this.renderMix()}),
        h('span', {class: 'mono'}, tube.barcode), ' ',
        h('span', {class: ['badge', `priority-${tube.specimen.priority}`]}, label('priority', tube.specimen.priority)), ' ',
        h('span', {class: 'badge'}, label('tclass', tube.specimen.temperature_class)))))
      : h('li', {class: 'empty-state'}, t('packing.nothing.to.pack')));
    this.renderMix();
  }

  renderMix() {
    const classes = this.classesInBox(this.box.input.value.trim(), this.selected());
    this.mixWarning.hidden = classes.length < 2;
    this.mixWarning.textContent = classes.length < 2 ? '' : t('packing.mix', {classes: classes.map((c) => label('tclass', c)).join(t('list.sep'))});
  }

  renderHandover() {
    const boxes = new Map();
    for (const tube of this.tubes.filter((candidate) => candidate.container_id && !candidate.ids.loaded)) {
      if (!boxes.has(tube.container_id)) boxes.set(tube.container_id, []);
      boxes.get(tube.container_id).push(tube);
    }
    if (!boxes.size) {
      fill(this.handover, h('p', {class: 'empty-state'}, t('packing.nothing.to.load')));
      return;
    }
    fill(this.handover, [...boxes].map(([container, tubes]) => {
      const destination = tubes[0].specimen.destination_site_id;
      const flights = this.departures.filter((flight) => !flight.destination_site_id || flight.destination_site_id === destination);
      const select = h('select', {class: 'flight-select', 'aria-label': t('packing.flight')},
        flights.length ? flights.map((flight) => h('option', {value: flight.flight_id},
          t('packing.flight.option', {flight: flight.flight_id, drone: flight.drone_id, to: this.ctx.siteName(flight.destination_site_id)})))
          : h('option', {value: ''}, t('packing.no.flight')));
      return h('div', {class: 'handover-box', dataset: {container}},
        h('div', {class: 'strong'}, t('packing.box.line', {box: container, seal: tubes[0].seal_id, n: tubes.length})),
        h('div', {class: 'muted small'}, t('packing.to', {site: this.ctx.siteName(destination)})),
        h('div', {class: 'scan-row'}, select,
          h('button', {type: 'button', class: 'primary load-submit', disabled: !flights.length, onclick: () => this.handOver(container, select.value)}, t('packing.load'))),
        this.requested.has(container)
          ? h('p', {class: 'small box-requested'}, t('request.box.requested', {id: this.requested.get(container)}))
          : h('button', {type: 'button', class: 'secondary small request-flight', onclick: () => this.requestFlight(container, tubes)}, t('request.flight.for.box')),
        h('a', {href: `#/manifest/${encodeURIComponent(container)}`, class: 'small'}, t('packing.manifest')));
    }));
  }

  /** A transport request for a sealed box: to its tubes' destination, as urgent as its most
   * urgent tube (POST /api/v1/requests; the dispatch board takes it from there). */
  async requestFlight(container, tubes) {
    const priority = PRIORITIES.find((p) => tubes.some((tube) => tube.specimen.priority === p)) || 'routine';
    try {
      const made = await post('/api/v1/requests', {destination_site_id: tubes[0].specimen.destination_site_id, priority, containers: [container]});
      this.requested.set(container, made.id);
      toast(t('request.made', {id: made.id}));
    } catch (error) {
      toast(t('error.generic', {detail: error.message}), 'error');
    }
    this.renderHandover();
  }

  renderRecord() {
    if (!this.tubes.length) {
      fill(this.record, h('li', {class: 'empty-state'}, t('packing.none')));
      return;
    }
    fill(this.record, this.tubes.map((tube) => {
      const missing = STEPS.filter((step) => !tube.ids[step]).map((step) => label('custody', step));
      return h('li', {class: 'tube-row', dataset: {barcode: tube.barcode}},
        h('div', {class: 'tube-head'}, h('span', {class: 'mono strong'}, tube.barcode), ' ',
          h('span', {class: ['badge', `priority-${tube.specimen.priority}`]}, label('priority', tube.specimen.priority)), ' ',
          h('span', {class: 'muted small'}, `${label('kind', tube.specimen.kind)} · ${label('tclass', tube.specimen.temperature_class)} → ${this.ctx.siteName(tube.specimen.destination_site_id)}`)),
        h('div', {class: 'steps'}, STEPS.map((step) => this.stepChip(tube, step))),
        missing.length ? h('div', {class: 'small missing'}, t('packing.missing', {steps: missing.join(t('list.sep'))})) : null,
        tube.container_id ? h('div', {class: 'muted small'}, t('packing.in.box', {box: tube.container_id, seal: tube.seal_id})
          + (tube.flight_id ? ` · ${t('packing.on.flight', {flight: tube.flight_id, drone: tube.drone_id})}` : '')) : null);
    }));
  }

  stepChip(tube, step) {
    const id = tube.ids[step];
    const status = id ? (outbox.status(id) || 'stored') : 'missing';
    const outcome = id ? outbox.outcome(id) : null;
    return h('span', {class: ['step', `step-${status}`], dataset: {step, status}, title: outcome?.detail || null},
      `${label('custody', step)} ${t(`step.${status}`)}`);
  }
}
