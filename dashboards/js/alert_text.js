// An alert's text from its code (kind) and parameters (details), in the reader's language,
// with times on the wall clock of the alert's site (its time zone from /api/v1/sites).
// The same templates as the server's (dronelog/domain/alert_text.py), which renders the
// MQTT and webhook texts and the stored `message`; that message is the fallback when the
// parameters lack something a template needs (an alert stored before parameters existed).

import {label, language, t} from './i18n.js';

const DEFAULT_ZONE = 'Asia/Shanghai';
const SITE_PARAMS = {at_site: 'at_site_id', destination: 'destination_site_id', new_destination: 'new_destination_site_id', origin: 'origin_site_id'};
const TIMES = ['deadline', 'eta', 'received_at', 'last_received_at', 'collected_at'];
const LISTS = ['gaps', 'anomalies', 'conflicts'];
const WHOLE = ['battery_pct', 'off_route_m', 'seconds_out_of_range', 'minutes_late'];
const TENTHS = ['temp_min_c', 'temp_max_c'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The zone of the alert's site, else Asia/Shanghai. */
export function alertZone(alert, sites) {
  const zone = sites?.get(alert.site_id)?.timezone || DEFAULT_ZONE;
  try {
    new Intl.DateTimeFormat('en', {timeZone: zone});
    return zone;
  } catch {
    return DEFAULT_ZONE;
  }
}

/** '11月20日 10:45' or '20 Nov 10:45' in `zone`. */
export function wallClock(value, zone, lang = language()) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {timeZone: zone, month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'})
    .formatToParts(date).map((p) => [p.type, p.value]));
  const hm = `${parts.hour}:${parts.minute}`;
  return lang === 'zh' ? `${parts.month}月${parts.day}日 ${hm}` : `${parts.day} ${MONTHS[Number(parts.month) - 1]} ${hm}`;
}

function variant(kind, p) {
  if (kind === 'breach' && p.received_at) return 'breach.received';
  if (kind === 'lost_link' && !p.last_received_at) return 'lost_link.never';
  if (kind === 'manifest_discrepancy' && ['missing', 'extra', 'foreign'].includes(p.finding)) return `${kind}.${p.finding}`;
  return kind;
}

function values(p, zone, siteName, lang) {
  const out = {};
  for (const [name, value] of Object.entries(p)) {
    if (value === null || value === undefined) continue;
    if (TIMES.includes(name)) out[name] = wallClock(value, zone, lang);
    else if (LISTS.includes(name)) out[name] = (Array.isArray(value) ? value : [value]).join(lang === 'zh' ? '；' : '; ');
    else if (name === 'priority') out[name] = label('priority', value);
    else if (name === 'temperature_class') out[name] = label('tclass', value);
    else if (name === 'temperature_classes') out[name] = (Array.isArray(value) ? value : [value]).map((c) => label('tclass', c)).join(lang === 'zh' ? '、' : ', ');
    else if (WHOLE.includes(name)) out[name] = Number(value).toFixed(0);
    else if (TENTHS.includes(name)) out[name] = Number(value).toFixed(1);
    else out[name] = String(value);
  }
  for (const [name, param] of Object.entries(SITE_PARAMS)) {
    if (p[param]) out[name] = siteName(p[param]);
  }
  if (p.remaining_m !== null && p.remaining_m !== undefined) out.remaining_km = (Number(p.remaining_m) / 1000).toFixed(1);
  return out;
}

/** The alert's text in the current language, or its stored message when its parameters do
 * not fit a template. ctx: {sites: Map of id → site, siteName(id)}. */
export function alertText(alert, ctx) {
  const p = {...(alert.details || {})};
  if (alert.subject_kind === 'specimen') p.barcode ??= alert.subject_id;
  if (alert.subject_kind === 'flight') p.flight_id ??= alert.subject_id;
  p.drone_id ??= alert.drone_id;
  p.site_id ??= alert.site_id;
  const key = `alert.text.${variant(alert.kind, p)}`;
  const template = t(key);
  if (template === key) return alert.message;
  const lang = language();
  const text = t(key, values(p, alertZone({site_id: p.site_id}, ctx.sites), ctx.siteName || ((id) => id), lang));
  return /\{\w+\}/.test(text) ? alert.message : text;
}
