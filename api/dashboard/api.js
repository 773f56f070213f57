// The dashboard's only way to okrd: its public HTTP API, relative to the page
// (so the dashboard also works behind a proxy that mounts okrd under a path).

const TOKEN_KEY = 'okrd-dashboard-token';

// The token lives in this tab's sessionStorage only: never localStorage,
// never a cookie, never the URL.
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token is simply not kept.
  }
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function apiUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  return url;
}

// Sends a GET with the bearer token (when there is one); throws ApiError
// when okrd does not answer at all. `no-cache` keeps answers but asks okrd
// each time: a state read whose ETag still holds comes back as a 304, with
// no body (docs/API.md, "Revalidation"); answers okrd marks `no-store`
// (audit reads, health) are never kept.
async function send(path, params, token, headers = {}) {
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(apiUrl(path, params), { headers, cache: 'no-cache' });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `okrd did not answer (${e.message})`, null);
  }
}

// GET a JSON answer; throws ApiError with okrd's error code and message.
export async function get(path, params = {}, { token = getToken() } = {}) {
  const res = await send(path, params, token, { Accept: 'application/json' });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(res.status, e.code || 'error', e.message || `HTTP ${res.status}`, e.field || null);
  }
  return body;
}

// Downloads a GET answer as a file named `filename`. A plain link cannot
// carry the bearer token (an okrd started with --private answers it 401), so
// the answer is fetched with the token and saved through a Blob; without a
// token it is the same request a link would make. Throws ApiError.
export async function download(path, params, filename, { token = getToken() } = {}) {
  const res = await send(path, params, token);
  if (!res.ok) {
    let e = {};
    try {
      e = (await res.json()).error || {};
    } catch {
      e = {};
    }
    throw new ApiError(res.status, e.code || 'error', e.message || `HTTP ${res.status}`, e.field || null);
  }
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has handed the Blob to the browser's download by now.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// Every item of a paged list, all pages read at the same seq as the first.
export async function getAll(path, params = {}) {
  let items = [];
  let cursor;
  let asOf = params.as_of;
  for (let page = 0; page < 1000; page++) {
    const answer = await get(path, { ...params, as_of: asOf, limit: 1000, cursor });
    items = items.concat(answer.items);
    if (asOf === undefined || asOf === null) asOf = answer.as_of_seq;
    if (!answer.next) break;
    cursor = answer.next;
  }
  return { items, as_of_seq: asOf };
}

// Opens a streamed GET (a text/event-stream) with the tab's token, which
// EventSource could not send; `signal` (an AbortController's) ends it.
// Returns the Response, whatever its status: the caller reads its body as
// it arrives (live.js). Throws ApiError when okrd does not answer.
export async function openStream(path, params, { signal, token = getToken() } = {}) {
  const headers = { Accept: 'text/event-stream' };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(apiUrl(path, params), { headers, cache: 'no-store', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unreachable', `okrd did not answer (${e.message})`, null);
  }
}

export async function headSeq() {
  const health = await get('healthz');
  return health.head_seq;
}
