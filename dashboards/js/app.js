// The dashboards' shell: login, the header (navigation, live status, language, time zone),
// and the router between views (#/dispatch, #/board, #/lab[/barcode], #/packing, #/receiving[/box],
// #/request, #/report[/day], #/manifest/box, #/admin).

import {ApiError, events as apiEvents, get, login, logout as revokeToken, session} from './api.js';
import {fill, h, toast} from './dom.js';
import {currentZone, setZone} from './format.js';
import {initLanguage, label, language, setLanguage, t} from './i18n.js';
import {LiveStream} from './live.js';
import * as adminView from './views/admin.js';
import * as boardView from './views/board.js';
import * as dispatchView from './views/dispatch.js';
import * as labView from './views/lab.js';
import * as manifestView from './views/manifest.js';
import * as packingView from './views/packing.js';
import * as receivingView from './views/receiving.js';
import * as reportView from './views/report.js';
import * as requestView from './views/request.js';

const VIEWS = {
  dispatch: {module: dispatchView, roles: ['dispatcher', 'admin'], nav: 'nav.dispatch'},
  board: {module: boardView, roles: ['dispatcher', 'admin'], nav: 'nav.board'},
  lab: {module: labView, roles: ['lab', 'dispatcher', 'admin'], nav: (role) => (role === 'lab' ? 'nav.lab' : 'nav.lookup')},
  packing: {module: packingView, roles: ['lab'], nav: 'nav.packing'},
  receiving: {module: receivingView, roles: ['lab'], nav: 'nav.receiving'},
  request: {module: requestView, roles: ['lab'], nav: 'nav.request'},
  report: {module: reportView, roles: ['lab', 'dispatcher', 'admin'], nav: 'nav.report'},
  manifest: {module: manifestView, roles: ['lab', 'dispatcher', 'admin'], nav: null}, // printed, not navigated to
  admin: {module: adminView, roles: ['admin'], nav: 'nav.admin'},
};
const HOME = {dispatcher: 'dispatch', admin: 'dispatch', lab: 'lab'};
const STREAM_TYPES = {dispatcher: ['telemetry', 'custody', 'alert'], admin: ['telemetry', 'custody', 'alert'], lab: ['custody', 'alert']};

const app = {
  config: {},
  sites: new Map(),
  live: null,
  view: null,
  loginMessage: null,
};

function siteName(id) {
  const site = app.sites.get(id);
  if (!site) return id || '—';
  return language() === 'zh' ? site.name_zh : site.name_en.replace(/\s*\(.*\)\s*$/, '');
}

/** A site's short name for narrow labels (the site's own, else its name without the
 * parenthesis); the full name belongs in the label's tooltip. */
function siteShort(id) {
  const site = app.sites.get(id);
  const own = site && (language() === 'zh' ? site.short_zh : site.short_en);
  return own || siteName(id).replace(/（.*?）/g, '');
}

function context() {
  return {config: app.config, sites: app.sites, siteName, siteShort, live: app.live, user: session.get(), navigate};
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function banner(message) {
  const el = document.getElementById('banner');
  el.hidden = !message;
  el.textContent = message || '';
}

// --- header ---------------------------------------------------------------------------------

function liveLabel(state) {
  if (state === 'unavailable') return t('live.polling');
  if (state === 'reconnecting' && navigator.onLine === false) return t('live.offline');
  return t(`live.${state}`);
}

function renderHeader(active) {
  const user = session.get();
  const header = document.getElementById('app-header');
  header.hidden = false;
  const links = Object.entries(VIEWS).filter(([, v]) => v.nav && v.roles.includes(user.role)).map(([name, v]) => {
    const text = t(typeof v.nav === 'function' ? v.nav(user.role) : v.nav);
    return h('a', {href: `#/${name}`, class: ['nav-link', name === active && 'active'], 'aria-current': name === active ? 'page' : null}, text);
  });
  const state = app.live?.state || 'connecting';
  fill(header,
    h('div', {class: 'brand'},
      h('img', {src: 'img/favicon.svg', alt: '', width: 28, height: 28}),
      h('div', {},
        h('div', {class: 'brand-title'}, t('app.title')),
        h('div', {class: 'brand-subtitle'}, t('app.subtitle')))),
    h('nav', {class: 'nav', 'aria-label': t('nav.main')}, links),
    h('div', {class: 'header-tools'},
      h('span', {id: 'live-status', class: ['live-status', `live-${state}`], role: 'status', 'aria-label': t('live.label'), 'data-state': state},
        h('span', {class: 'live-dot', 'aria-hidden': 'true'}), liveLabel(state)),
      h('span', {class: 'tz'}, t('tz', {zone: currentZone()})),
      h('span', {class: 'who'}, `${user.user_id} · ${label('role', user.role)}${user.site_id ? ` · ${siteName(user.site_id)}` : ''}`),
      h('button', {type: 'button', class: 'secondary small', id: 'lang-switch', lang: language() === 'zh' ? 'en' : 'zh',
        'aria-label': t('lang.switch.label'), onclick: () => setLanguage(language() === 'zh' ? 'en' : 'zh')}, t('lang.switch')),
      h('button', {type: 'button', class: 'secondary small', id: 'logout', onclick: logout}, t('logout'))));
}

function updateLiveStatus(state) {
  const el = document.getElementById('live-status');
  if (!el) return;
  el.className = `live-status live-${state}`;
  el.dataset.state = state;
  fill(el, h('span', {class: 'live-dot', 'aria-hidden': 'true'}), liveLabel(state));
  banner(state === 'reconnecting' ? liveLabel(state) : null);
}

// --- session --------------------------------------------------------------------------------

async function startSession() {
  const user = session.get();
  const sites = await get('/api/v1/sites');
  app.sites = new Map(sites.map((site) => [site.id, site]));
  const own = user.site_id && app.sites.get(user.site_id);
  setZone(own?.timezone || sites[0]?.timezone || 'Asia/Shanghai');
  app.live?.stop();
  app.live = new LiveStream(STREAM_TYPES[user.role] || ['alert']);
  app.live.addEventListener('state', (event) => updateLiveStatus(event.detail));
  app.live.start();
}

function endSession() {
  app.live?.stop();
  app.live = null;
  app.view?.destroy?.();
  app.view = null;
  session.clear();
}

function logout() {
  const current = session.get();
  if (current) revokeToken(current.access_token); // the token stops working, not just this tab
  endSession();
  app.loginMessage = null;
  sessionStorage.removeItem('dronelog.login-message');
  location.hash = '#/login';
  route();
}

// --- login ----------------------------------------------------------------------------------

function renderLogin() {
  document.getElementById('app-header').hidden = true;
  banner(null);
  const main = document.getElementById('main');
  const message = h('p', {class: 'form-error', role: 'alert', id: 'login-error'}, app.loginMessage ? t(app.loginMessage) : '');
  const username = h('input', {id: 'username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false'});
  const password = h('input', {id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const submit = h('button', {type: 'submit', class: 'primary'}, t('login.submit'));
  const form = h('form', {class: 'login-form', 'aria-labelledby': 'login-title', novalidate: false},
    h('h1', {id: 'login-title'}, t('login.title')),
    h('p', {class: 'muted'}, t('login.intro')),
    h('label', {for: 'username'}, t('login.username')), username,
    h('label', {for: 'password'}, t('login.password')), password,
    message, submit,
    h('p', {class: 'muted small'}, t('login.demo')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = t('login.busy');
    message.textContent = '';
    try {
      const token = await login(username.value.trim(), password.value);
      if (token.role === 'device') {
        message.textContent = t('login.device');
        return;
      }
      session.set(token);
      app.loginMessage = null;
      sessionStorage.removeItem('dronelog.login-message');
      await startSession();
      // a link that asked for a view (the clinic's QR code opens #/request) lands there
      const asked = parseHash().name;
      location.hash = VIEWS[asked]?.roles.includes(token.role) ? `#/${asked}` : `#/${HOME[token.role]}`;
      route();
    } catch (error) {
      session.clear();
      message.textContent = error instanceof ApiError && error.status === 401 ? t('login.failed')
        : error instanceof ApiError && error.status === 0 ? t('login.network') : t('error.generic', {detail: error.message});
      password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = t('login.submit');
    }
  });
  fill(main, h('div', {class: 'login-page'},
    h('div', {class: 'login-brand'},
      h('img', {src: 'img/favicon.svg', alt: '', width: 48, height: 48}),
      h('div', {},
        h('div', {class: 'brand-title'}, t('app.title')),
        h('div', {class: 'brand-subtitle'}, t('app.subtitle'))),
      h('button', {type: 'button', class: 'secondary small', lang: language() === 'zh' ? 'en' : 'zh', id: 'lang-switch',
        'aria-label': t('lang.switch.label'), onclick: () => setLanguage(language() === 'zh' ? 'en' : 'zh')}, t('lang.switch'))),
    form));
  username.focus();
}

// --- router ---------------------------------------------------------------------------------

function parseHash() {
  const [name = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return {name, args: rest.map(decodeURIComponent)};
}

function route() {
  const user = session.get();
  if (!user) {
    app.view?.destroy?.();
    app.view = null;
    renderLogin();
    return;
  }
  let {name, args} = parseHash();
  if (!VIEWS[name] || !VIEWS[name].roles.includes(user.role)) {
    name = HOME[user.role];
    args = [];
    history.replaceState(null, '', `#/${name}`);
  }
  renderHeader(name);
  updateLiveStatus(app.live?.state || 'connecting');
  const main = document.getElementById('main');
  if (app.view?.name === name) {
    app.view.update?.(args);
    return;
  }
  app.view?.destroy?.();
  fill(main);
  main.className = `app-main view-${name}`;
  app.view = VIEWS[name].module.mount(main, context(), args) || {};
  app.view.name = name;
}

async function boot() {
  try {
    const response = await fetch('config.json', {cache: 'no-store'});
    app.config = response.ok ? await response.json() : {};
  } catch {
    app.config = {};
  }
  initLanguage(app.config.default_language || 'zh');
  document.title = `${t('app.title')} · dronelog`;
  apiEvents.addEventListener('unauthorized', () => {
    endSession();
    app.loginMessage = 'login.expired';
    sessionStorage.setItem('dronelog.login-message', app.loginMessage); // survives a reload
    route();
  });
  app.loginMessage = sessionStorage.getItem('dronelog.login-message');
  apiEvents.addEventListener('network-error', () => banner(t('error.network')));
  apiEvents.addEventListener('network-ok', () => {
    if (app.live?.state !== 'reconnecting') banner(null);
  });
  window.addEventListener('offline', () => banner(t('live.offline')));
  window.addEventListener('hashchange', route);
  window.addEventListener('languagechange-app', () => {
    document.title = `${t('app.title')} · dronelog`;
    if (app.view) {
      app.view.destroy?.();
      app.view = null;
    }
    route();
  });
  if (session.get()) {
    try {
      const me = await get('/api/v1/auth/me');
      session.set({...session.get(), ...me});
      await startSession();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        toast(t('error.network'), 'error');
      }
    }
  }
  route();
}

boot();
