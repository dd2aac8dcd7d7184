// The dispatcher's view: every drone live on a map of the network's sites and routes, the
// fleet table, flights in the air with progress and ETA, alerts, and a flight's track replay.
//
// The map needs no internet: with no tile server configured (config.json `tile_url`), the
// basemap is drawn here (a graticule and range rings around the lab hospitals).

import {ApiError, get} from '../api.js';
import {fill, h, s} from '../dom.js';
import {ago, dateTime, duration, now, number, shortTime, syncClock, time} from '../format.js';
import {bearing, progressAlong} from '../geo.js';
import {droneState, payloadCheck} from '../fleet_state.js';
import {label, t} from '../i18n.js';
import {SITE_LABEL_SIDES, siteLabelSide} from '../site_labels.js';
import {AlertPanel} from './alerts.js';

const TRAIL_POINTS = 240;
const FALLBACK_SPEED_MPS = 15;
const RING_KM = [5, 10, 15];
const LABEL_ROOM_PX = 110; // right of the easternmost site, for its label on a phone
const REFRESH_SLOW_MS = 30_000;
const REFRESH_FAST_MS = 3_000;
const FLYING = new Set(['airborne', 'diverted']);
const LABEL_SIDES = ['left', 'right', 'above', 'below', 'above-2', 'below-2'];

// Leaflet's scale bar writes "m" and "km" in any language; this one says 米 and 公里 in
// Chinese, as the range rings do (Leaflet 1.9's rounding, only the words are ours). Made on
// first use: the other views must load even where Leaflet did not.
let ScaleBar = null;
function scaleBar(options) {
  ScaleBar ??= window.L.Control.Scale.extend({
    _updateMetric(maxMeters) {
      const meters = this._getRoundNum(maxMeters);
      const text = meters < 1000 ? t('map.scale.m', {m: meters}) : t('map.scale.km', {km: meters / 1000});
      this._updateScale(this._mScale, text, meters / maxMeters);
    },
  });
  return new ScaleBar(options);
}

export function mount(root, ctx) {
  return new DispatchView(root, ctx);
}

class DispatchView {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.canAct = ctx.user.role === 'dispatcher';
    // the fleet states' thresholds (fleet_state.js; config.json overrides them)
    this.thresholds = Object.fromEntries(['stale_link_s', 'lost_link_s', 'ground_stale_s', 'ground_offline_s']
      .filter((key) => Number(ctx.config[key]) > 0).map((key) => [key, Number(ctx.config[key])]));
    this.drones = new Map();
    this.flights = new Map();
    this.recent = [];
    this.routes = [];
    this.details = new Map(); // flight id -> detail (cargo, track), for flights in the air
    this.pending = new Map(); // drone id -> newest telemetry not yet drawn
    this.alertDrones = new Set();
    this.timers = [];
    this.listeners = [];
    this.replay = null;
    this.build(root);
    this.start();
  }

  // --- layout -------------------------------------------------------------------------------

  build(root) {
    this.mapEl = h('div', {id: 'map', class: 'map', role: 'region', 'aria-label': t('map.label')});
    this.fleetBody = h('tbody');
    this.fleetEmpty = h('p', {class: 'empty-state'}, t('loading'));
    this.flightList = h('ul', {class: 'flight-list', id: 'flight-list'});
    this.recentList = h('ul', {class: 'flight-list recent', id: 'recent-flights'});
    this.replayEl = h('section', {class: 'panel replay-panel', id: 'replay', hidden: true, 'aria-labelledby': 'replay-title'});
    this.alertPanel = new AlertPanel(this.ctx, {
      canAct: this.canAct,
      onLocate: (alert) => this.focusDrone(alert.drone_id),
      onChange: (active) => {
        this.alertDrones = new Set(active.map((a) => a.drone_id).filter(Boolean));
        for (const drone of this.drones.values()) this.paintDrone(drone);
      },
    });
    const columns = ['fleet.drone', 'fleet.state', 'fleet.flight', 'fleet.alt', 'fleet.speed', 'fleet.heading', 'fleet.battery', 'fleet.temp', 'fleet.link'];
    fill(root, h('div', {class: 'dispatch-layout'},
      h('div', {class: 'map-column'},
        this.mapEl,
        h('section', {class: 'panel fleet-panel', 'aria-labelledby': 'fleet-title'},
          h('h2', {id: 'fleet-title'}, t('fleet.title')),
          h('div', {class: 'table-scroll'},
            h('table', {class: 'fleet-table', id: 'fleet-table'},
              h('thead', {}, h('tr', {}, columns.map((key) => h('th', {scope: 'col'}, t(key))))),
              this.fleetBody)),
          this.fleetEmpty)),
      h('div', {class: 'side-column'},
        this.alertPanel.el,
        this.replayEl,
        h('section', {class: 'panel flights-panel', 'aria-labelledby': 'flights-title'},
          h('h2', {id: 'flights-title'}, t('flights.title')),
          this.flightList,
          h('h3', {}, t('flights.recent')),
          this.recentList))));
    this.buildMap();
  }

  buildMap() {
    const L = window.L;
    this.map = L.map(this.mapEl, {zoomSnap: 0.25, minZoom: 8, maxZoom: 18, keyboard: true, worldCopyJump: false});
    this.map.attributionControl.setPrefix(false);
    const config = this.ctx.config;
    if (config.tile_url) {
      L.tileLayer(config.tile_url, {subdomains: config.tile_subdomains || 'abc', maxZoom: 18,
        attribution: config.tile_attribution || ''}).addTo(this.map);
    } else {
      this.mapEl.classList.add('plain-basemap');
      this.map.attributionControl.addAttribution(t('map.plain'));
    }
    this.map.attributionControl.addAttribution(t('map.approx'));
    const narrow = this.mapEl.clientWidth < 560; // a phone: short names, the full one on hover
    // on a phone the attribution takes the map's whole width (two lines in English): the scale
    // goes in its corner, stacked above it, instead of under it in the opposite one
    if (narrow) this.map.attributionControl.setPosition('bottomleft');
    scaleBar({metric: true, imperial: false}).addTo(this.map);
    this.layers = {
      base: L.layerGroup().addTo(this.map),
      routes: L.layerGroup().addTo(this.map),
      sites: L.layerGroup().addTo(this.map),
      trails: L.layerGroup().addTo(this.map),
      replay: L.layerGroup().addTo(this.map),
      drones: L.layerGroup().addTo(this.map),
    };
    const sites = [...this.ctx.sites.values()];
    if (sites.length) {
      const bounds = L.latLngBounds(sites.map((site) => [site.lat, site.lon]));
      // room on the right for the labels (they sit right of their sites, unless drones are
      // there) and at the bottom for the scale; on a phone the legend is under the map, not on it
      if (narrow) {
        this.map.fitBounds(bounds, {paddingTopLeft: [20, 20], paddingBottomRight: [LABEL_ROOM_PX, 36]});
      } else {
        this.map.fitBounds(bounds.pad(0.25));
      }
      if (!config.tile_url) this.drawBasemap(bounds.pad(1.2), sites);
    } else {
      this.map.setView([36.78, 119.95], 11);
    }
    for (const site of sites) {
      const marker = L.circleMarker([site.lat, site.lon], {radius: site.kind === 'lab_hospital' ? 10 : 7, className: `site site-${site.kind}`, keyboard: false});
      const name = this.ctx.siteName(site.id);
      marker.bindTooltip(h('span', {title: name}, narrow ? this.ctx.siteShort(site.id) : name), {permanent: true, ...SITE_LABEL_SIDES.right, className: 'site-label'});
      marker.addTo(this.layers.sites);
    }
    if (narrow) {
      this.mapEl.after(this.legend());
    } else {
      this.map.addControl(this.legendControl());
    }
    // during a zoom's animation the labels stand for the old zoom: placed at its end
    this.map.on('zoomstart', () => { this.zooming = true; });
    this.map.on('zoomend', () => { this.zooming = false; });
    this.map.on('zoomend moveend', () => this.declutter());
  }

  drawBasemap(bounds, sites) {
    const L = window.L;
    const step = 0.05;
    const south = Math.floor(bounds.getSouth() / step) * step;
    const west = Math.floor(bounds.getWest() / step) * step;
    for (let lat = south; lat <= bounds.getNorth(); lat += step) {
      L.polyline([[lat, bounds.getWest()], [lat, bounds.getEast()]], {className: 'graticule', interactive: false}).addTo(this.layers.base);
    }
    for (let lon = west; lon <= bounds.getEast(); lon += step) {
      L.polyline([[bounds.getSouth(), lon], [bounds.getNorth(), lon]], {className: 'graticule', interactive: false}).addTo(this.layers.base);
    }
    for (const site of sites.filter((x) => x.kind === 'lab_hospital')) {
      for (const km of RING_KM) {
        L.circle([site.lat, site.lon], {radius: km * 1000, className: 'ring', interactive: false}).addTo(this.layers.base);
        const north = [site.lat + km / 111.2, site.lon];
        L.tooltip({permanent: true, direction: 'center', className: 'ring-label', interactive: false})
          .setLatLng(north).setContent(t('map.ring', {km})).addTo(this.layers.base);
      }
    }
  }

  legend() {
    const states = ['airborne', 'diverted', 'stale', 'lost', 'ground', 'offline', 'never'];
    return h('div', {class: 'map-legend', role: 'group', 'aria-label': t('map.legend')},
      h('strong', {}, t('map.legend')),
      h('ul', {}, states.map((state) => h('li', {}, h('span', {class: ['legend-swatch', `state-${state}`], 'aria-hidden': 'true'}), t(`state.${state}`))),
        h('li', {}, h('span', {class: 'legend-swatch has-alert', 'aria-hidden': 'true'}), t('state.alert'))));
  }

  legendControl() {
    const L = window.L;
    const control = L.control({position: 'bottomleft'});
    control.onAdd = () => {
      const el = this.legend();
      L.DomEvent.disableClickPropagation(el);
      return el;
    };
    return control;
  }

  // --- data ---------------------------------------------------------------------------------

  start() {
    const live = this.ctx.live;
    if (live) {
      this.listen(live, 'telemetry', (e) => this.queueTelemetry(e.detail));
      this.listen(live, 'alert', (e) => this.alertPanel.apply(e.detail));
      this.listen(live, 'custody', (e) => this.onCustody(e.detail));
      this.listen(live, 'reset', () => this.refreshAll());
      this.listen(live, 'state', () => this.schedulePolling());
    }
    this.refreshAll();
    this.loadRoutes();
    this.timers.push(setInterval(() => this.tick(), 1000));
    this.schedulePolling();
  }

  listen(target, type, handler) {
    target.addEventListener(type, handler);
    this.listeners.push([target, type, handler]);
  }

  schedulePolling() {
    clearInterval(this.pollTimer);
    const live = this.ctx.live?.state === 'live';
    this.pollTimer = setInterval(() => this.refreshAll(), live ? REFRESH_SLOW_MS : REFRESH_FAST_MS);
  }

  async refreshAll() {
    await Promise.all([this.loadFleet(), this.loadFlights(), this.alertPanel.load()]);
  }

  async loadFleet() {
    let fleet;
    try {
      fleet = await get('/api/v1/drones');
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) this.fleetEmpty.textContent = t('error.generic', {detail: error.message});
      return;
    }
    const seen = fleet.find((d) => d.last_seen && d.link_age_s !== null);
    if (seen) syncClock(Date.parse(seen.last_seen) + seen.link_age_s * 1000);
    for (const entry of fleet) {
      const drone = this.drone(entry.drone_id);
      drone.online = entry.online;
      drone.flight_id = entry.flight_id;
      drone.flight_state = entry.flight_state;
      drone.bands = entry.payload_bands || [];
      if (entry.last_received) {
        const received = Date.parse(entry.last_received);
        if (!drone.receivedAt || received > drone.receivedAt) drone.receivedAt = received;
      }
      const p = entry.position;
      if (p && (!drone.at || Date.parse(p.at) >= drone.at)) {
        Object.assign(drone, {lat: p.lat, lon: p.lon, alt_m: p.alt_m, ground_speed_mps: p.ground_speed_mps,
          battery_pct: p.battery_pct, payload_temp_c: p.payload_temp_c, at: Date.parse(p.at),
          heading_deg: entry.heading_deg, link_quality_pct: entry.link_quality_pct});
      }
      this.placeDrone(drone);
    }
    this.renderFleet();
  }

  async loadFlights() {
    try {
      const [airborne, diverted, recent] = await Promise.all([
        get('/api/v1/flights?state=airborne&limit=200'),
        get('/api/v1/flights?state=diverted&limit=200'),
        get('/api/v1/flights?limit=12'),
      ]);
      this.flights = new Map([...airborne.items, ...diverted.items].map((f) => [f.flight_id, f]));
      this.recent = recent.items.filter((f) => !FLYING.has(f.state));
      this.flightsError = null;
      for (const flight of this.flights.values()) this.loadDetail(flight.flight_id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.flightsError = error;
    }
    this.renderFlights();
  }

  async loadDetail(flightId) {
    if (this.details.has(flightId)) return;
    this.details.set(flightId, null);
    try {
      const detail = await get(`/api/v1/flights/${encodeURIComponent(flightId)}`);
      this.details.set(flightId, detail);
      const drone = this.drones.get(detail.drone_id);
      const line = detail.track?.features?.[0]?.geometry?.coordinates || [];
      if (drone && drone.flight_id === flightId && drone.trail.length < 2) {
        drone.trail = line.slice(-TRAIL_POINTS).map(([lon, lat]) => [lat, lon]);
        this.placeDrone(drone);
      }
      this.renderFlights();
    } catch {
      this.details.delete(flightId);
    }
  }

  async loadRoutes() {
    try {
      const routes = await get('/api/v1/routes');
      this.routes = routes.map((r) => ({origin: r.origin_site_id, destination: r.destination_site_id,
        points: [this.sitePoint(r.origin_site_id), ...(r.waypoints || []), this.sitePoint(r.destination_site_id)].filter(Boolean)}));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      this.routes = [];
    }
    this.drawRoutes();
  }

  sitePoint(id) {
    const site = this.ctx.sites.get(id);
    return site ? [site.lat, site.lon] : null;
  }

  drawRoutes() {
    const L = window.L;
    this.layers.routes.clearLayers();
    for (const route of this.routes) {
      if (route.points.length < 2) continue;
      L.polyline(route.points, {className: 'route', interactive: false}).addTo(this.layers.routes);
    }
  }

  routePoints(origin, destination) {
    const known = this.routes.find((r) => r.origin === origin && r.destination === destination && r.points.length >= 2);
    if (known) return known.points;
    const a = this.sitePoint(origin);
    const b = this.sitePoint(destination);
    return a && b ? [a, b] : null;
  }

  // --- live updates -------------------------------------------------------------------------

  queueTelemetry(frame) {
    if (!frame?.drone_id) return;
    const pending = this.pending.get(frame.drone_id);
    if (!pending || Date.parse(frame.at) >= Date.parse(pending.at)) this.pending.set(frame.drone_id, frame);
    else {
      // an older point of the same drone: keep it for the trail only
      this.pendingTrail(frame);
    }
    if (!this.frameRequested) {
      this.frameRequested = true;
      requestAnimationFrame(() => this.flushTelemetry());
    }
  }

  pendingTrail(frame) {
    const drone = this.drone(frame.drone_id);
    if (frame.flight_id && frame.flight_id === drone.flight_id) drone.trail.push([frame.lat, frame.lon]);
  }

  flushTelemetry() {
    this.frameRequested = false;
    let flightsChanged = false;
    for (const frame of this.pending.values()) {
      const drone = this.drone(frame.drone_id);
      const at = Date.parse(frame.at);
      if (drone.at && at < drone.at) continue;
      if ((frame.flight_id || null) !== (drone.flight_id || null)) {
        flightsChanged = true;
        drone.trail = [];
        drone.flight_state = frame.flight_id ? 'airborne' : null;
      }
      Object.assign(drone, {lat: frame.lat, lon: frame.lon, alt_m: frame.alt_m, ground_speed_mps: frame.ground_speed_mps,
        heading_deg: frame.heading_deg, battery_pct: frame.battery_pct, payload_temp_c: frame.payload_temp_c,
        link_quality_pct: frame.link_quality_pct, flight_id: frame.flight_id, at, receivedAt: now()});
      if (frame.flight_id) {
        drone.trail.push([frame.lat, frame.lon]);
        if (drone.trail.length > TRAIL_POINTS) drone.trail.splice(0, drone.trail.length - TRAIL_POINTS);
      }
      this.placeDrone(drone);
    }
    this.pending.clear();
    if (this.fleetChanged) {
      this.fleetChanged = false;
      this.renderFleet();
    }
    if (flightsChanged) this.debounce('flights', () => this.loadFlights(), 1500);
  }

  onCustody(event) {
    if (event?.kind === 'loaded' && event.flight_id) {
      this.details.delete(event.flight_id);
      this.debounce('flights', () => this.loadFlights(), 1500);
    }
  }

  debounce(name, action, ms) {
    this.debounced ??= {};
    clearTimeout(this.debounced[name]);
    this.debounced[name] = setTimeout(action, ms);
  }

  tick() {
    for (const drone of this.drones.values()) this.paintDrone(drone);
    this.declutter();
    this.updateFleet();
    this.updateFlightProgress();
    if (this.popupDrone) this.refreshPopup();
  }

  // --- drones on the map --------------------------------------------------------------------

  drone(id) {
    if (!this.drones.has(id)) {
      this.drones.set(id, {drone_id: id, trail: [], at: null});
      this.fleetChanged = true; // a drone not seen before: it needs a row
    }
    return this.drones.get(id);
  }

  stateOf(drone) {
    return droneState({
      flying: FLYING.has(drone.flight_state) || Boolean(drone.flight_id),
      diverted: drone.flight_state === 'diverted',
      online: drone.online ?? null,
      receivedAgeS: drone.receivedAt ? Math.max(0, (now() - drone.receivedAt) / 1000) : null,
    }, this.thresholds);
  }

  tempText(drone) {
    const temp = drone.payload_temp_c;
    const {out, band} = payloadCheck(temp, drone.flight_id ? drone.bands : []);
    const value = temp === null || temp === undefined ? '—' : `${number(temp, 1)} °C`;
    return {out, text: band ? `${value} (${t('fleet.band', {low: number(band[0], 0), high: number(band[1], 0)})})` : value};
  }

  placeDrone(drone) {
    const L = window.L;
    if (drone.lat === undefined || drone.lat === null) return;
    if (!drone.marker) {
      drone.arrow = s('svg', {viewBox: '-12 -12 24 24', width: 28, height: 28, class: 'drone-arrow', 'aria-hidden': 'true'},
        s('circle', {r: 11, class: 'drone-halo'}),
        s('path', {d: 'M0,-9 L6.5,7 L0,3.5 L-6.5,7 Z', class: 'drone-body'}));
      drone.badge = h('span', {class: 'drone-label'}, drone.drone_id);
      drone.iconEl = h('div', {class: 'drone-marker'}, drone.arrow, drone.badge);
      const icon = L.divIcon({html: drone.iconEl, className: 'drone-icon', iconSize: [28, 28], iconAnchor: [14, 14]});
      drone.marker = L.marker([drone.lat, drone.lon], {icon, keyboard: true, title: `${t('fleet.drone')} ${drone.drone_id}`, riseOnHover: true, zIndexOffset: 1000});
      drone.marker.on('click', () => this.openPopup(drone));
      drone.marker.addTo(this.layers.drones);
      drone.trailLine = L.polyline([], {className: 'trail', interactive: false}).addTo(this.layers.trails);
    } else {
      drone.marker.setLatLng([drone.lat, drone.lon]);
    }
    drone.trailLine.setLatLngs(drone.flight_id ? drone.trail : []);
    this.paintDrone(drone);
  }

  paintDrone(drone) {
    if (!drone.iconEl) return;
    const state = this.stateOf(drone);
    drone.arrow.style.transform = `rotate(${Number(drone.heading_deg) || 0}deg)`;
    const classes = ['drone-marker', `state-${state}`];
    if (this.alertDrones.has(drone.drone_id)) classes.push('has-alert');
    if (this.selected === drone.drone_id) classes.push('selected');
    drone.iconEl.className = classes.join(' ');
    drone.iconEl.dataset.state = state;
    drone.iconEl.dataset.droneId = drone.drone_id;
    const markerEl = drone.marker.getElement();
    if (markerEl) {
      markerEl.dataset.droneId = drone.drone_id;
      markerEl.setAttribute('aria-label', `${t('fleet.drone')} ${drone.drone_id}: ${t(`state.${state}`)}`);
    }
  }

  // A drone's label goes to the first side (left, right, above, below, then a line further
  // above or below: a pad holds several drones) where it is whole inside the map and covers
  // no site label and no drone label placed before it; a label above or below slides
  // sideways to stay inside the map. With none free, a site label still wins, then a whole
  // label: the label takes the first side that covers no site label and is not cut by the
  // map's edge (and covers the fewest drone labels), so a busy sky never hides where the
  // hospitals are.
  declutter() {
    if (this.zooming) return;
    const map = this.mapEl.getBoundingClientRect();
    const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const cut = (r) => r.left < map.left || r.right > map.right || r.top < map.top || r.bottom > map.bottom;
    this.placeSiteLabels(map, overlaps, cut);
    const sites = [...this.mapEl.querySelectorAll('.site-label')].map((el) => el.getBoundingClientRect());
    const drones = [];
    const place = (badge, side) => {
      badge.dataset.side = side;
      badge.style.removeProperty('--slide');
      const rect = badge.getBoundingClientRect();
      if (side === 'left' || side === 'right') return rect;
      // at most half its width: the label still stands over its drone
      const reach = rect.width / 2;
      const slide = rect.right > map.right ? Math.max(map.right - rect.right, -reach)
        : Math.min(Math.max(0, map.left - rect.left), reach);
      if (!slide) return rect;
      badge.style.setProperty('--slide', `${slide}px`);
      return badge.getBoundingClientRect();
    };
    const inView = (el) => {
      const r = el.getBoundingClientRect();
      const x = (r.left + r.right) / 2;
      const y = (r.top + r.bottom) / 2;
      return x >= map.left && x <= map.right && y >= map.top && y <= map.bottom;
    };
    for (const drone of this.drones.values()) {
      const badge = drone.badge;
      if (!badge?.isConnected) continue;
      if (!inView(drone.arrow)) { // off the map (zoomed in): out of sight, it moves nothing
        place(badge, LABEL_SIDES[0]);
        continue;
      }
      let best = null;
      for (const side of LABEL_SIDES) {
        const rect = place(badge, side);
        const cost = sites.filter((other) => overlaps(rect, other)).length * 1000
          + (cut(rect) ? 100 : 0) + drones.filter((other) => overlaps(rect, other)).length;
        if (!best || cost < best.cost) best = {side, rect, cost};
        if (cost === 0) break;
      }
      if (badge.dataset.side !== best.side) place(badge, best.side);
      drones.push(best.rect);
    }
  }

  // Each site's name on the side siteLabelSide (site_labels.js) chooses from what it covers
  // on each: the drones on a pad stay visible, and a name does not jump while a drone flies
  // past. The usual case (right, clear) moves nothing.
  placeSiteLabels(map, overlaps, cut) {
    const arrows = [...this.drones.values()].map((drone) => drone.arrow)
      .filter((el) => el?.isConnected).map((el) => el.getBoundingClientRect())
      .filter((r) => overlaps(r, map));
    const legends = [...this.mapEl.querySelectorAll('.map-legend')].map((el) => el.getBoundingClientRect());
    const labels = [...this.mapEl.querySelectorAll('.site-label')];
    const order = Object.keys(SITE_LABEL_SIDES);
    this.layers.sites.eachLayer((marker) => {
      const tooltip = marker.getTooltip();
      const el = tooltip?.getElement();
      if (!el) return;
      const others = labels.filter((other) => other !== el).map((other) => other.getBoundingClientRect());
      const cost = () => { // drones under it where it stands, and 1000 if it is hidden there
        const r = el.getBoundingClientRect();
        const hidden = cut(r) || others.some((other) => overlaps(r, other))
          || legends.some((legend) => overlaps(r, legend));
        return (hidden ? 1000 : 0) + arrows.filter((arrow) => overlaps(r, arrow)).length;
      };
      let standing = order.find((side) => SITE_LABEL_SIDES[side].direction === tooltip.options.direction) ?? 'right';
      const measure = (side) => {
        if (side !== standing) {
          Object.assign(tooltip.options, SITE_LABEL_SIDES[side]);
          tooltip.update();
          standing = side;
        }
        return cost();
      };
      const side = siteLabelSide(standing, measure);
      if (side !== standing) measure(side);
    });
  }

  droneCard(drone) {
    const flight = drone.flight_id ? this.flights.get(drone.flight_id) : null;
    const rows = [
      ['fleet.state', t(`state.${this.stateOf(drone)}`)],
      ['fleet.flight', flight ? `${drone.flight_id} · ${this.routeText(flight)}` : (drone.flight_id || '—')],
      ['fleet.alt', `${number(drone.alt_m)} m`],
      ['fleet.speed', `${number(drone.ground_speed_mps, 1)} m/s`],
      ['fleet.heading', `${number(drone.heading_deg)}°`],
      ['fleet.battery', `${number(drone.battery_pct)}%`],
      ['fleet.temp', this.tempText(drone).text],
      ['fleet.link', this.linkText(drone)],
    ];
    return h('div', {class: 'drone-card'},
      h('strong', {}, `${t('fleet.drone')} ${drone.drone_id}`),
      h('dl', {}, rows.map(([key, value]) => [h('dt', {}, t(key)), h('dd', {}, value)])));
  }

  openPopup(drone) {
    this.select(drone.drone_id);
    this.popupDrone = drone;
    if (!drone.marker.getPopup()) {
      drone.marker.bindPopup(this.droneCard(drone), {autoPan: true, className: 'drone-popup'});
      drone.marker.on('popupclose', () => { if (this.popupDrone === drone) this.popupDrone = null; });
    }
    drone.marker.openPopup();
  }

  refreshPopup() {
    const drone = this.popupDrone;
    if (drone?.marker?.isPopupOpen()) drone.marker.getPopup().setContent(this.droneCard(drone));
  }

  select(droneId) {
    this.selected = droneId;
    for (const drone of this.drones.values()) this.paintDrone(drone);
    for (const row of this.fleetBody.children) row.classList.toggle('selected', row.dataset.droneId === droneId);
  }

  focusDrone(droneId) {
    const drone = this.drones.get(droneId);
    if (!drone || drone.lat === undefined) return;
    this.map.flyTo([drone.lat, drone.lon], Math.max(this.map.getZoom(), 13), {duration: 0.6});
    this.openPopup(drone);
  }

  linkText(drone) {
    if (!drone.receivedAt) return t('never');
    const quality = drone.link_quality_pct === null || drone.link_quality_pct === undefined ? '' : ` · ${number(drone.link_quality_pct)}%`;
    return `${ago(drone.receivedAt)}${quality}`;
  }

  // --- fleet table --------------------------------------------------------------------------

  renderFleet() {
    const drones = [...this.drones.values()].sort((a, b) => a.drone_id.localeCompare(b.drone_id));
    this.fleetEmpty.hidden = drones.length > 0;
    if (!drones.length) this.fleetEmpty.textContent = t('fleet.none');
    const rows = new Map([...this.fleetBody.children].map((row) => [row.dataset.droneId, row]));
    for (const drone of drones) {
      if (!rows.has(drone.drone_id)) {
        const button = h('button', {type: 'button', class: 'link', 'aria-label': t('fleet.locate', {id: drone.drone_id}), onclick: () => this.focusDrone(drone.drone_id)}, drone.drone_id);
        const row = h('tr', {'data-drone-id': drone.drone_id}, h('th', {scope: 'row'}, button),
          ...Array.from({length: 8}, () => h('td')));
        this.fleetBody.append(row);
      }
    }
    this.updateFleet();
  }

  updateFleet() {
    for (const row of this.fleetBody.children) {
      const drone = this.drones.get(row.dataset.droneId);
      if (!drone) continue;
      const state = this.stateOf(drone);
      const flight = drone.flight_id ? this.flights.get(drone.flight_id) : null;
      const cells = row.children;
      const temp = this.tempText(drone);
      const values = [
        h('span', {class: ['state-pill', `state-${state}`]}, t(`state.${state}`)),
        flight ? h('span', {title: this.routeText(flight)}, this.routeText(flight, {short: true})) : (drone.flight_id || '—'),
        drone.alt_m === undefined ? '—' : `${number(drone.alt_m)} m`,
        drone.ground_speed_mps === undefined ? '—' : `${number(drone.ground_speed_mps, 1)} m/s`,
        drone.heading_deg === undefined || drone.heading_deg === null ? '—' : `${number(drone.heading_deg)}°`,
        drone.battery_pct === undefined ? '—' : `${number(drone.battery_pct)}%`,
        temp.text,
        this.linkText(drone),
      ];
      values.forEach((value, i) => {
        const cell = cells[i + 1];
        if (value instanceof Node) {
          if (cell.firstChild?.textContent !== value.textContent || cell.firstChild?.className !== value.className) fill(cell, value);
        } else if (cell.textContent !== value) {
          cell.textContent = value;
        }
      });
      cells[6].classList.toggle('low', (drone.battery_pct ?? 100) < 30);
      cells[7].classList.toggle('out-of-band', temp.out);
      cells[8].className = `link-${{lost: 'lost', stale: 'late', offline: 'lost', never: 'never'}[state] || 'fresh'}`;
      row.classList.toggle('has-alert', this.alertDrones.has(drone.drone_id));
      row.dataset.state = state;
    }
  }

  routeText(flight, {short = false} = {}) {
    const name = short ? this.ctx.siteShort : this.ctx.siteName;
    return `${name(flight.origin_site_id)} → ${name(flight.destination_site_id)}`;
  }

  // --- flights ------------------------------------------------------------------------------

  progressOf(flight) {
    const drone = this.drones.get(flight.drone_id);
    const route = this.routePoints(flight.origin_site_id, flight.destination_site_id);
    if (!drone || drone.lat === undefined || !route) return null;
    const p = progressAlong(route, [drone.lat, drone.lon]);
    const remaining = Math.max(0, p.total_m - p.along_m);
    const speed = drone.ground_speed_mps > 4 ? drone.ground_speed_mps : FALLBACK_SPEED_MPS;
    return {fraction: p.fraction, remaining_s: remaining / speed, eta: now() + (remaining / speed) * 1000};
  }

  renderFlights() {
    if (this.flightsError) {
      fill(this.flightList, h('li', {class: 'error-state'}, t('error.generic', {detail: this.flightsError.message})));
    } else if (!this.flights.size) {
      fill(this.flightList, h('li', {class: 'empty-state'}, t('flights.none')));
    } else {
      const flights = [...this.flights.values()].sort((a, b) => (this.progressOf(b)?.fraction ?? 0) - (this.progressOf(a)?.fraction ?? 0));
      fill(this.flightList, flights.map((flight) => {
        const detail = this.details.get(flight.flight_id);
        const cargo = detail?.cargo || [];
        return h('li', {class: ['flight-item', `flight-${flight.state}`], 'data-flight-id': flight.flight_id},
          h('div', {class: 'flight-head'},
            h('button', {type: 'button', class: 'link strong', onclick: () => this.focusDrone(flight.drone_id)}, flight.drone_id),
            h('span', {class: 'muted'}, flight.flight_id),
            flight.state === 'diverted' ? h('span', {class: 'badge warn'}, label('flight.state', 'diverted')) : null),
          h('div', {class: 'flight-route'}, this.routeText(flight)),
          h('div', {class: 'flight-progress'},
            h('progress', {max: 100, value: 0, 'aria-label': `${t('flights.progress')} ${flight.flight_id}`, 'data-role': 'progress'}),
            h('span', {'data-role': 'percent'}, '—')),
          h('div', {class: 'flight-meta small'},
            h('span', {}, `${t('flights.eta')} `, h('strong', {'data-role': 'eta'}, '—'), ' ', h('span', {'data-role': 'eta-in', class: 'muted'}, '')),
            h('span', {}, t('flights.tookoff', {time: shortTime(flight.took_off_at)})),
            cargo.length ? h('span', {}, t('flights.cargo', {n: cargo.length})) : null),
          h('button', {type: 'button', class: 'secondary small', onclick: () => this.openReplay(flight.flight_id)}, t('flights.replay')));
      }));
      this.updateFlightProgress();
    }
    fill(this.recentList, this.recent.length ? this.recent.map((flight) => h('li', {class: 'recent-item', 'data-flight-id': flight.flight_id},
      h('span', {class: 'strong'}, flight.drone_id),
      h('span', {class: 'small'}, this.routeText(flight)),
      h('span', {class: 'small muted'}, `${label('flight.state', flight.state)} ${shortTime(flight.landed_at || flight.took_off_at)}`),
      h('button', {type: 'button', class: 'secondary small', onclick: () => this.openReplay(flight.flight_id)}, t('flights.replay'))))
      : h('li', {class: 'empty-state'}, t('empty')));
  }

  updateFlightProgress() {
    for (const item of this.flightList.querySelectorAll('[data-flight-id]')) {
      const flight = this.flights.get(item.dataset.flightId);
      const progress = flight && this.progressOf(flight);
      if (!progress) continue;
      const percent = Math.round(progress.fraction * 100);
      item.querySelector('[data-role=progress]').value = percent;
      item.querySelector('[data-role=percent]').textContent = `${percent}%`;
      item.querySelector('[data-role=eta]').textContent = shortTime(progress.eta);
      item.querySelector('[data-role=eta-in]').textContent = `(${t('flights.eta.estimated', {d: duration(progress.remaining_s > 120 ? Math.round(progress.remaining_s / 60) * 60 : Math.round(progress.remaining_s / 10) * 10)})})`;
    }
  }

  // --- replay -------------------------------------------------------------------------------

  async openReplay(flightId) {
    this.closeReplay();
    const panel = this.replayEl;
    panel.hidden = false;
    fill(panel, h('p', {}, t('loading')));
    let detail;
    try {
      detail = await get(`/api/v1/flights/${encodeURIComponent(flightId)}`);
    } catch (error) {
      fill(panel, h('p', {class: 'error-state'}, t('error.generic', {detail: error.message})));
      return;
    }
    const feature = detail.track?.features?.[0];
    const coordinates = feature?.geometry?.coordinates || [];
    const times = (feature?.properties?.times || []).map((x) => Date.parse(x));
    const L = window.L;
    const close = h('button', {type: 'button', class: 'secondary small', onclick: () => this.closeReplay()}, t('close'));
    const head = h('div', {class: 'panel-head'}, h('h2', {id: 'replay-title'}, t('replay.title', {id: flightId})), close);
    const summary = h('p', {class: 'small'}, `${detail.drone_id} · ${this.routeText(detail)} · ${label('flight.state', detail.state)} · `
      + `${t('flights.tookoff', {time: dateTime(detail.took_off_at)})}${detail.landed_at ? ` · ${t('flights.landed', {time: shortTime(detail.landed_at)})}` : ''}`);
    const events = h('ol', {class: 'replay-events small'}, detail.events.map((e) => h('li', {},
      h('time', {datetime: e.at}, time(e.at)), ' ', label('flight.event', e.kind), e.site_id ? ` · ${this.ctx.siteName(e.site_id)}` : '', e.reason ? ` · ${e.reason}` : '')));
    const cargo = detail.cargo.length ? h('p', {class: 'small'}, `${t('replay.cargo')}: `,
      detail.cargo.map((barcode, i) => [i ? ', ' : '', h('a', {href: `#/lab/${encodeURIComponent(barcode)}`}, barcode)])) : null;
    if (coordinates.length < 2) {
      fill(panel, head, summary, h('p', {class: 'empty-state'}, t('replay.empty')), events, cargo);
      return;
    }
    const latlngs = coordinates.map(([lon, lat]) => [lat, lon]);
    const line = L.polyline(latlngs, {className: 'replay-track', interactive: false}).addTo(this.layers.replay);
    const arrow = s('svg', {viewBox: '-12 -12 24 24', width: 28, height: 28, class: 'drone-arrow', 'aria-hidden': 'true'},
      s('path', {d: 'M0,-9 L6.5,7 L0,3.5 L-6.5,7 Z', class: 'drone-body'}));
    const icon = L.divIcon({html: h('div', {class: 'drone-marker replay-marker'}, arrow), className: 'drone-icon', iconSize: [28, 28], iconAnchor: [14, 14]});
    const marker = L.marker(latlngs[0], {icon, keyboard: false, interactive: false}).addTo(this.layers.replay);
    this.map.fitBounds(line.getBounds().pad(0.3));
    const slider = h('input', {type: 'range', min: 0, max: coordinates.length - 1, value: 0, step: 1, id: 'replay-slider', 'aria-label': t('replay.position')});
    const play = h('button', {type: 'button', class: 'primary small', id: 'replay-play'}, t('replay.play'));
    const speed = h('select', {id: 'replay-speed', 'aria-label': t('replay.speed')},
      [10, 30, 60, 120].map((x) => h('option', {value: x, selected: x === 30}, `${x}×`)));
    const readout = h('div', {class: 'replay-readout small', 'aria-live': 'off'});
    const show = (index) => {
      const [lon, lat, alt] = coordinates[index];
      marker.setLatLng([lat, lon]);
      const previous = coordinates[Math.max(0, index - 1)];
      const next = coordinates[Math.min(coordinates.length - 1, index + 1)];
      const heading = bearing([previous[1], previous[0]], [next[1], next[0]]);
      arrow.style.transform = `rotate(${heading}deg)`;
      readout.textContent = `${time(times[index])} · ${t('fleet.alt')} ${number(alt)} m · ${index + 1}/${coordinates.length}`;
      slider.value = index;
    };
    const replay = {line, marker, playing: false, clock: times[0], handle: null};
    const step = (last) => (stamp) => {
      if (!replay.playing) return;
      replay.clock += (stamp - last) * Number(speed.value);
      let index = Number(slider.value);
      while (index < times.length - 1 && times[index + 1] <= replay.clock) index++;
      show(index);
      if (index >= times.length - 1) {
        replay.playing = false;
        play.textContent = t('replay.play');
        return;
      }
      replay.handle = requestAnimationFrame(step(stamp));
    };
    play.addEventListener('click', () => {
      replay.playing = !replay.playing;
      play.textContent = t(replay.playing ? 'replay.pause' : 'replay.play');
      if (replay.playing) {
        if (Number(slider.value) >= times.length - 1) show(0);
        replay.clock = times[Number(slider.value)];
        replay.handle = requestAnimationFrame((stamp) => { replay.handle = requestAnimationFrame(step(stamp)); });
      }
    });
    slider.addEventListener('input', () => {
      show(Number(slider.value));
      replay.clock = times[Number(slider.value)];
    });
    this.replay = replay;
    show(0);
    fill(panel, head, summary, h('div', {class: 'replay-controls'}, play, slider, speed), readout,
      h('h3', {}, t('replay.events')), events, cargo);
    panel.querySelector('#replay-play').focus();
  }

  closeReplay() {
    if (this.replay) {
      this.replay.playing = false;
      cancelAnimationFrame(this.replay.handle);
    }
    this.replay = null;
    this.layers?.replay.clearLayers();
    this.replayEl.hidden = true;
    fill(this.replayEl);
  }

  destroy() {
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    for (const timer of this.timers) clearInterval(timer);
    clearInterval(this.pollTimer);
    for (const timer of Object.values(this.debounced || {})) clearTimeout(timer);
    this.closeReplay();
    this.map?.remove();
  }
}
