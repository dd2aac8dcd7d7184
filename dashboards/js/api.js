// The HTTP API, with the bearer token of the person logged in. The token lives in this tab's
// sessionStorage (closing the tab logs out; a shared ward computer keeps no token around).
// A 401 anywhere ends the session and sends the person back to the login form.

const SESSION_KEY = 'dronelog.session';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status; // 0: the network failed
    this.problem = problem || {};
  }
}

export const session = {
  get() {
    try {
      const value = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      if (!value?.access_token) return null;
      if (value.expires_at && Date.parse(value.expires_at) <= Date.now()) return null;
      return value;
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

export const events = new EventTarget();

export function authHeader() {
  const current = session.get();
  return current ? {Authorization: `Bearer ${current.access_token}`} : {};
}

function unauthorized() {
  session.clear();
  events.dispatchEvent(new Event('unauthorized'));
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {title: response.statusText};
  }
}

/** GET or POST JSON. Throws ApiError (status 0 when the network failed). */
export async function request(path, {method = 'GET', json, form, signal, raw = false} = {}) {
  const headers = {Accept: 'application/json', ...authHeader()};
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    body = new URLSearchParams(form);
  }
  let response;
  try {
    response = await fetch(path, {method, headers, body, signal, cache: 'no-store'});
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    events.dispatchEvent(new Event('network-error'));
    throw new ApiError(0, {title: 'network', detail: String(error.message || error)});
  }
  events.dispatchEvent(new Event('network-ok'));
  if (response.status === 401 && !path.endsWith('/auth/token')) {
    unauthorized();
    throw new ApiError(401, await problemOf(response));
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export const get = (path, options) => request(path, options);
export const post = (path, json, options = {}) => request(path, {...options, method: 'POST', json});

export async function login(username, password) {
  const token = await request('/api/v1/auth/token', {method: 'POST', form: {username, password}});
  return token;
}

/** Revoke a token at the API (logging out). Best effort: the session is ended either way. */
export async function logout(accessToken) {
  try {
    await fetch('/api/v1/auth/logout', {
      method: 'POST', headers: {Authorization: `Bearer ${accessToken}`}, cache: 'no-store', keepalive: true,
    });
  } catch {
    // offline: the token still expires on its own
  }
}

/** Save a file the API serves behind the token (a plain link cannot send the header). */
export async function download(path, filename) {
  const response = await request(path, {raw: true});
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A UUID v4 for a new event id (crypto.randomUUID needs a secure context; this does not). */
export function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
