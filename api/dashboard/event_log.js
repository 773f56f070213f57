// What this tab knows of okrd's event log: when each seq was recorded, and
// whether the tab's token may read audit events (so a refused read is not
// tried again and again).

import { get, getToken } from './api.js';
import { parseTime } from './format.js';

const seqTimes = new Map(); // seq → Promise of ms, or ms
let readable = null; // null: not yet known

// null until an audit read was tried with this token; then whether it worked.
export const eventsReadable = () => readable;
export function setEventsReadable(value) {
  readable = value;
}

// Notes the recorded time `ms` of `seq`, read elsewhere (the audit view).
export function rememberSeqTime(seq, ms) {
  seqTimes.set(seq, ms);
}

// Drops the known times (a new token may read what the last one could not).
export function forgetSeqTimes() {
  seqTimes.clear();
}

// The recorded time of one seq in ms (NaN when unknown), from the public
// diff (every write shows up there) or, with an audit token, from the event
// itself. Looked up once per seq.
export function timeOfSeq(seq) {
  if (!(seq > 0)) return Promise.resolve(NaN);
  if (!seqTimes.has(seq)) seqTimes.set(seq, lookUpTimeOfSeq(seq));
  return Promise.resolve(seqTimes.get(seq));
}

async function lookUpTimeOfSeq(seq) {
  let found = NaN;
  try {
    const diff = await get('v1/diff', { from: seq - 1, to: seq });
    for (const list of ['created', 'changed', 'archived', 'check_ins', 'corrections', 'comments']) {
      for (const item of diff[list] || []) if (item.seq === seq) found = parseTime(item.recorded_at);
    }
  } catch {
    // fall through to the audit read
  }
  if (!Number.isFinite(found) && getToken() && readable !== false) {
    try {
      const events = await get('v1/events', { after: seq - 1, limit: 1 });
      readable = true;
      if (events.items[0] && events.items[0].seq === seq) found = parseTime(events.items[0].recorded_at);
    } catch {
      readable = false;
    }
  }
  return found;
}
