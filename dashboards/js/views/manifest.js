// A container's manifest, printable (#/manifest/<container id>): sites, seal, flight, a QR
// code of the container id (drawn from the API's module matrix as SVG), and one row per tube;
// print it, or download the PDF or the HL7 v2 OSM^R26 for the receiving lab's LIS.

import {ApiError, download, get} from '../api.js';
import {fill, h, s} from '../dom.js';
import {dateTime} from '../format.js';
import {label, t} from '../i18n.js';

export function mount(root, ctx, args) {
  const view = {update: (next) => show(root, ctx, next?.[0])};
  view.update(args);
  return view;
}

function qrSvg(rows) {
  const size = rows.length + 8; // a quiet zone of 4 modules on each side
  const squares = [];
  rows.forEach((row, y) => [...row].forEach((dark, x) => {
    if (dark === '1') squares.push(s('rect', {x: x + 4, y: y + 4, width: 1, height: 1}));
  }));
  return s('svg', {class: 'qr', viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': t('manifest.qr')},
    s('rect', {x: 0, y: 0, width: size, height: size, fill: '#fff'}), s('g', {fill: '#000'}, squares));
}

async function show(root, ctx, containerId) {
  fill(root, h('p', {class: 'empty-state'}, t('loading')));
  let box;
  try {
    box = await get(`/api/v1/containers/${encodeURIComponent(containerId || '')}`);
  } catch (error) {
    fill(root, h('p', {class: 'error-state'}, error instanceof ApiError && error.status === 404 ? t('manifest.none', {box: containerId}) : t('error.generic', {detail: error.message})));
    return;
  }
  const path = `/api/v1/containers/${encodeURIComponent(box.container_id)}/manifest`;
  const rows = [
    [t('packing.box'), box.container_id], [t('packing.seal'), box.seal_id || '—'],
    [t('manifest.from'), ctx.siteName(box.origin_site_id)], [t('manifest.to'), ctx.siteName(box.destination_site_id)],
    [t('manifest.packed'), dateTime(box.packed_at)],
    [t('packing.flight'), box.flight_id ? `${box.flight_id} / ${box.drone_id}` : t('manifest.not.loaded')]];
  fill(root, h('article', {class: 'manifest', id: 'manifest', dataset: {container: box.container_id}},
    h('div', {class: 'manifest-head'},
      h('div', {}, h('h1', {}, t('manifest.title')), h('dl', {class: 'manifest-facts'}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
      qrSvg(box.qr)),
    h('table', {class: 'report-table manifest-table'},
      h('thead', {}, h('tr', {}, ['#', t('packing.barcode'), t('packing.kind'), t('packing.priority'), t('packing.tclass')].map((c) => h('th', {}, c)))),
      h('tbody', {}, box.tubes.map((tube, i) => h('tr', {dataset: {barcode: tube.barcode}},
        h('td', {}, String(i + 1)), h('td', {class: 'mono'}, tube.barcode),
        h('td', {}, tube.kind ? label('kind', tube.kind) + (tube.blood_product ? ` · ${label('product', tube.blood_product)}` : '') : '?'),
        h('td', {}, tube.priority ? label('priority', tube.priority) : '?'),
        h('td', {}, tube.temperature_class ? label('tclass', tube.temperature_class) : '?'))))),
    h('p', {class: 'muted'}, t('manifest.count', {n: box.tubes.length})),
    h('div', {class: 'manifest-actions no-print'},
      h('button', {type: 'button', class: 'primary', id: 'manifest-print', onclick: () => window.print()}, t('manifest.print')),
      h('button', {type: 'button', class: 'secondary', id: 'manifest-pdf', onclick: () => download(`${path}.pdf`, `manifest-${box.container_id}.pdf`)}, 'PDF'),
      h('button', {type: 'button', class: 'secondary', id: 'manifest-hl7', onclick: () => download(`${path}.hl7`, `manifest-${box.container_id}.hl7`)}, 'HL7 OSM^R26'),
      h('button', {type: 'button', class: 'secondary', id: 'manifest-epcis', onclick: () => download(`/api/v1/containers/${encodeURIComponent(box.container_id)}/epcis`, `manifest-${box.container_id}.epcis.jsonld`)}, 'EPCIS'))));
}
