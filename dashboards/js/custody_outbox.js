// Custody scans recorded at the dashboards (the packing station, the lab's receipt of a box)
// are kept in this browser (localStorage) with their event id until the API has stored them,
// so a step recorded on a weak link is never lost: it is sent when the link returns, at once
// on the browser's `online` event and every few seconds while any is waiting. The API is
// idempotent on the event id, so a scan sent twice (a reply lost on the way) is stored once.
// A scan the API refuses (403/422: the custody rules) leaves the queue, marked refused with
// the reason; one that could not be delivered (no network, 5xx, 401) stays pending.

import {ApiError, post} from './api.js';

const KEY = 'dronelog.custody-outbox';
const RETRY_MS = 5000;
const KEEP_DONE = 500; // outcomes remembered, for the station's "recorded" marks

function empty() {
  return {pending: [], done: {}};
}

class CustodyOutbox extends EventTarget {
  constructor() {
    super();
    this.flushing = null;
    this.timer = null;
    window.addEventListener('online', () => this.flush());
    window.addEventListener('storage', (event) => {
      if (event.key === KEY) this.dispatchEvent(new Event('change'));
    });
  }

  read() {
    try {
      const state = JSON.parse(localStorage.getItem(KEY));
      return state?.pending ? state : empty();
    } catch {
      return empty();
    }
  }

  write(state) {
    const ids = Object.keys(state.done);
    for (const id of ids.slice(0, Math.max(0, ids.length - KEEP_DONE))) delete state.done[id];
    localStorage.setItem(KEY, JSON.stringify(state));
    this.dispatchEvent(new Event('change'));
  }

  /** 'pending' (kept here, not yet stored), 'stored', 'refused', or null (unknown here). */
  status(eventId) {
    const state = this.read();
    if (state.pending.some((event) => event.event_id === eventId)) return 'pending';
    return state.done[eventId]?.status || null;
  }

  outcome(eventId) {
    return this.read().done[eventId] || null;
  }

  pendingCount() {
    return this.read().pending.length;
  }

  /** Keep `event` (a contract custody event with its event_id) and try to send it now. */
  record(event) {
    const state = this.read();
    if (!state.pending.some((kept) => kept.event_id === event.event_id)) state.pending.push(event);
    this.write(state);
    this.flush();
    return event.event_id;
  }

  /** Send what is waiting, oldest first; resolves when the queue is empty or the link failed. */
  flush() {
    if (!this.flushing) {
      this.flushing = this.sendAll().finally(() => { this.flushing = null; });
    }
    return this.flushing;
  }

  async sendAll() {
    clearTimeout(this.timer);
    for (;;) {
      const next = this.read().pending[0];
      if (!next) return;
      let outcome;
      try {
        const stored = await post('/api/v1/custody', next);
        outcome = {status: 'stored', repeat: !stored.stored};
      } catch (error) {
        const refused = error instanceof ApiError && [400, 403, 404, 409, 413, 422].includes(error.status);
        if (!refused) {
          this.timer = setTimeout(() => this.flush(), RETRY_MS);
          return; // still pending: the link (or the server) is away
        }
        outcome = {status: 'refused', reason: error.problem.reason_code || String(error.status), detail: error.message};
      }
      const state = this.read();
      state.pending = state.pending.filter((kept) => kept.event_id !== next.event_id);
      state.done[next.event_id] = outcome;
      this.write(state);
    }
  }
}

export const outbox = new CustodyOutbox();
