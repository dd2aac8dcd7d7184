// Times in the site's time zone (never the browser's), durations, numbers.
import {language, t} from './i18n.js';

let zone = 'Asia/Shanghai';
let serverOffsetMs = 0; // server clock minus this browser's clock

export function setZone(name) {
  try {
    new Intl.DateTimeFormat('en', {timeZone: name});
    zone = name;
  } catch {
    zone = 'Asia/Shanghai';
  }
}

export function currentZone() {
  return zone;
}

/** Correct for a browser clock that is off: `serverNowMs` is what the server said it was
 * when this browser's clock read `localMs`. Only larger differences are kept. */
export function syncClock(serverNowMs, localMs = Date.now()) {
  const offset = serverNowMs - localMs;
  serverOffsetMs = Math.abs(offset) > 1500 ? offset : 0;
}

/** Now by the server's clock, in milliseconds since the epoch. */
export function now() {
  return Date.now() + serverOffsetMs;
}

function locale() {
  return language() === 'zh' ? 'zh-CN' : 'en-GB';
}

function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const cache = new Map();
function formatter(options) {
  const key = `${locale()}|${zone}|${JSON.stringify(options)}`;
  if (!cache.has(key)) cache.set(key, new Intl.DateTimeFormat(locale(), {timeZone: zone, hourCycle: 'h23', ...options}));
  return cache.get(key);
}

/** 14:03:22 */
export function time(value) {
  const date = toDate(value);
  return date ? formatter({hour: '2-digit', minute: '2-digit', second: '2-digit'}).format(date) : '—';
}

/** 14:03 */
export function shortTime(value) {
  const date = toDate(value);
  return date ? formatter({hour: '2-digit', minute: '2-digit'}).format(date) : '—';
}

/** 11-22 14:03 (the date in the site's zone) */
export function dateTime(value) {
  const date = toDate(value);
  return date ? formatter({month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'}).format(date) : '—';
}

/** YYYY-MM-DD of `value` (default now) in the site's zone. */
export function day(value = now()) {
  const date = toDate(value);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit'})
    .formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** A day `delta` days from `isoDay` (calendar arithmetic, zone-free). */
export function addDays(isoDay, delta) {
  const [y, m, d] = isoDay.split('-').map(Number);
  const date = new Date(Date.UTC(y, m - 1, d + delta));
  return date.toISOString().slice(0, 10);
}

/** 1 h 5 min / 3 min 20 s / 45 s */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  let rest = Math.round(Math.abs(seconds));
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const secs = rest - minutes * 60;
  const parts = [];
  if (hours) parts.push(t('dur.h', {n: hours}));
  if (minutes || hours) parts.push(t('dur.m', {n: minutes}));
  if (!hours && (secs || !minutes)) parts.push(t('dur.s', {n: secs}));
  return parts.join(language() === 'zh' ? '' : ' ');
}

/** Seconds from now until `value` (negative: in the past). */
export function secondsUntil(value) {
  const date = toDate(value);
  return date ? (date.getTime() - now()) / 1000 : null;
}

export function ago(value) {
  const seconds = secondsUntil(value);
  return seconds === null ? t('never') : t('ago', {d: duration(Math.max(0, -seconds))});
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return Number(value).toLocaleString(locale(), {minimumFractionDigits: digits, maximumFractionDigits: digits});
}
