// Live updates: follows okrd's changes stream (GET /v1/changes/stream,
// Server-Sent Events of {seq, type, entity, cycle}) for the view on screen.
// EventSource cannot send a bearer token (an okrd started with --private
// needs one), so the stream is read with fetch and parsed here. A stream
// okrd ends (a restart, a slow reader) or that fails is opened again after
// the last seq seen, waiting 1 s, then twice as long each time up to 30 s,
// with jitter so that many tabs do not come back at once.
//
// One stream at a time: following again, or stopFollowing() (the router
// calls it on every route), ends the one before.

import { openStream } from './api.js';
import { h } from './dom.js';

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const STEADY_MS = 10_000;

let current = null; // the follower in use: {stop}

// Ends the stream followed, if any.
export function stopFollowing() {
  if (current) current.stop();
  current = null;
}

// Follows the changes of `cycle` (and those of no cycle, such as units)
// recorded after seq `after`. Calls onChange({seq, type, entity, cycle})
// for each, and onState(state, detail) as the connection goes:
// 'connecting', 'live', 'reconnecting' (detail: {delayMs, reason}) or
// 'off' (detail: {reason}; okrd refused the request itself, so trying
// again would not help). Returns {stop, lastSeq()}.
export function followChanges({ cycle, after, onChange, onState = () => {} }) {
  stopFollowing();
  const control = new AbortController();
  let lastSeq = after;
  let failures = 0;
  let timer = 0;
  let stopped = false;

  const retryLater = (reason, atLeastMs = 0) => {
    if (stopped) return;
    const cap = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
    failures++;
    // Full jitter in the upper half: between half the cap and the cap.
    const delayMs = Math.max(atLeastMs, Math.round(cap / 2 + Math.random() * cap / 2));
    onState('reconnecting', { delayMs, reason });
    timer = setTimeout(connect, delayMs);
  };

  const connect = async () => {
    if (stopped) return;
    onState('connecting', {});
    let res;
    try {
      res = await openStream('v1/changes/stream', { cycle, after: lastSeq }, { signal: control.signal });
    } catch (err) {
      if (!stopped) retryLater(err.message);
      return;
    }
    if (stopped) return;
    if (!res.ok) {
      const reason = await errorMessage(res);
      if (res.status === 503 || res.status === 429 || res.status >= 500) {
        const after = Number(res.headers.get('Retry-After'));
        retryLater(reason, Number.isFinite(after) ? after * 1000 : 0);
      } else {
        stopped = true;
        onState('off', { reason });
      }
      return;
    }
    onState('live', {});
    const openedAt = Date.now();
    // A stream that stayed up a while worked: its loss waits 1 s again.
    const settle = () => {
      if (Date.now() - openedAt >= STEADY_MS) failures = 0;
    };
    try {
      await readEvents(res.body, (event) => {
        if (event.id !== undefined && /^\d+$/.test(event.id)) lastSeq = Math.max(lastSeq, Number(event.id));
        if (!event.data) return; // the retry field
        let change;
        try {
          change = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!stopped) onChange(change);
      });
      settle();
      if (!stopped) retryLater('okrd ended the stream');
    } catch (err) {
      settle();
      if (!stopped) retryLater(err.message);
    }
  };

  const follower = {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      control.abort();
    },
    lastSeq: () => lastSeq,
  };
  current = follower;
  connect();
  return follower;
}

// okrd's error message in a refused answer, or its status.
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    // not JSON
  }
  return `HTTP ${res.status}`;
}

// Reads a text/event-stream `body` to its end, calling onEvent({id, event,
// data, retry}) for each block (blocks end with a blank line; comment
// lines, starting ':', such as okrd's heartbeats, only keep it alive).
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    // Lines end with CRLF, LF or CR; a CR at the end may be half of a CRLF.
    const keep = buffer.endsWith('\r') ? '\r' : '';
    buffer = buffer.slice(0, buffer.length - keep.length).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseBlock(block);
      if (event) onEvent(event);
    }
    buffer += keep;
  }
}

// One SSE block's fields; null when it holds only comments.
export function parseBlock(block) {
  const event = {};
  const data = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    any = true;
    if (field === 'data') data.push(value);
    else if (field === 'id' || field === 'event' || field === 'retry') event[field] = value;
  }
  if (!any) return null;
  if (data.length) event.data = data.join('\n');
  return event;
}

// The live indicator: a dot and, always, words (role="status", so a screen
// reader hears when the connection is lost or back). set(state, detail)
// takes onState's arguments.
export function liveIndicator() {
  const text = h('span', { class: 'live-text' }, 'Live updates: connecting…');
  const box = h('p', { id: 'live-status', class: 'live', role: 'status', 'data-state': 'connecting' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }), ' ', text);
  const set = (state, detail = {}) => {
    box.dataset.state = state;
    if (state === 'live') text.textContent = 'Live: changes appear as they are recorded';
    else if (state === 'connecting') text.textContent = 'Live updates: connecting…';
    else if (state === 'reconnecting') {
      text.textContent = `Live updates: connection lost, reconnecting in ${Math.max(1, Math.round(detail.delayMs / 1000))} s`;
    } else text.textContent = `Live updates off: ${detail.reason || 'okrd refused the stream'}`;
  };
  return { element: box, set };
}

// `fn` called at most once per `ms`: the first call schedules it `ms`
// later, and calls meanwhile join that one (a steady flow of changes still
// refreshes every `ms`, where a debounce would wait for a pause).
export function throttle(fn, ms) {
  let timer = 0;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = 0;
      fn();
    }, ms);
  };
}
