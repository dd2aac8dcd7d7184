// The live stream (GET /api/v1/stream, Server-Sent Events) read with fetch(), because it
// needs the Authorization header that EventSource cannot send. On a drop it reconnects with
// back-off and sends the last `id:` it saw as Last-Event-ID, so nothing committed meanwhile
// is missed; events may then repeat and are dropped by their event_id.
//
// Events dispatched: 'telemetry', 'custody', 'alert', 'reset' (detail: the JSON data), and
// 'state' (detail: connecting | live | reconnecting | unavailable).

import {authHeader, events as apiEvents, session} from './api.js';

const QUIET_LIMIT_MS = 45_000; // the server pings every 15 s; silence this long is a dead link
const MAX_BACKOFF_MS = 15_000;
const SEEN_LIMIT = 5000;

export class LiveStream extends EventTarget {
  constructor(types) {
    super();
    this.types = types;
    this.state = 'connecting';
    this.lastId = null;
    this.seen = new Set();
    this.failures = 0;
    this.stopped = false;
    this.controller = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    // a lost network is noticed at once (a stalled stream only after QUIET_LIMIT_MS)
    this.onOffline = () => this.controller?.abort();
    this.onOnline = () => {
      if (!this.stopped && this.state !== 'live') this.connect();
    };
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', {detail: state}));
  }

  async connect() {
    if (this.stopped) return;
    if (!session.get()) return;
    clearTimeout(this.timer);
    this.controller?.abort();
    const generation = (this.generation = (this.generation || 0) + 1);
    const controller = (this.controller = new AbortController());
    const headers = {Accept: 'text/event-stream', ...authHeader()};
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    let watchdog;
    const resetWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), QUIET_LIMIT_MS);
    };
    try {
      resetWatchdog();
      const response = await fetch(`/api/v1/stream?types=${encodeURIComponent(this.types.join(','))}`,
        {headers, signal: controller.signal, cache: 'no-store'});
      if (response.status === 401) {
        session.clear();
        apiEvents.dispatchEvent(new Event('unauthorized'));
        this.stopped = true;
        return;
      }
      if (response.status === 404 || response.status === 403 || response.status === 501) {
        // no stream on this server (or not for this role): the views refresh on a timer
        this.setState('unavailable');
        this.stopped = true;
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      this.failures = 0;
      this.setState('live');
      apiEvents.dispatchEvent(new Event('network-ok'));
      await this.read(response.body, resetWatchdog);
    } catch {
      // a dropped, refused or aborted connection: try again below
    } finally {
      clearTimeout(watchdog);
    }
    if (this.stopped || generation !== this.generation) return; // stopped, or superseded
    this.failures += 1;
    this.setState('reconnecting');
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.failures, 5)) * (0.75 + Math.random() / 2);
    this.timer = setTimeout(() => this.connect(), navigator.onLine === false ? MAX_BACKOFF_MS : delay);
  }

  async read(body, alive) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let carriage = ''; // a chunk may end between the \r and \n of one line ending
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      alive();
      let text = carriage + value;
      carriage = text.endsWith('\r') ? '\r' : '';
      if (carriage) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.frame(block);
      }
    }
  }

  frame(block) {
    let kind = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') kind = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (id !== null) this.lastId = id;
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    const key = payload?.event_id ?? (payload?.alert ? `${payload.alert.id}:${payload.change}:${payload.alert.acknowledged_at}:${payload.alert.resolved_at}` : null);
    if (key) {
      const tagged = `${kind}:${key}`;
      if (this.seen.has(tagged)) return;
      this.seen.add(tagged);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
    }
    this.dispatchEvent(new CustomEvent(kind, {detail: payload}));
  }
}
