// The cascade's time slider: the point in the log the cascade shows (seq 0
// to the head), when that event was recorded, and two marks whose changes
// the diff panel lists.

import { headSeq } from '../api.js';
import { debounce, h } from '../dom.js';
import { formatDateTime } from '../format.js';
import { timeOfSeq } from '../event_log.js';
import { loadCycles } from '../cycles.js';

// `n` as a whole seq within [0, max]; max when `n` is no number.
export function clampSeq(n, max) {
  return Number.isFinite(n) ? Math.max(0, Math.min(max, Math.round(n))) : max;
}

// The slider for the cascade view's `state` (asOf, from, to, head, cycles).
// It calls onSeq() when asOf moved, onMarks() when the marks did, and
// syncHash() after either; `note` (optional) goes under the readout and
// `diffBox` under it all. Returns the `section` to place, `start()`, to call
// once it is in the page, `latest()`, which goes to the head as the
// "Latest" button does, and `grow(head)`, which lets the slider reach a
// newer head without moving it.
export function timeSlider(state, { onSeq, onMarks, syncHash, diffBox, note = null }) {
  const s = { state, onSeq, onMarks, syncHash, ...sliderInputs(state) };
  // While the slider is dragged only the seq updates at once; the time of
  // the seq and the cascade load when it rests for a moment.
  s.loadSoon = debounce(() => {
    updateReadout(s);
    onSeq();
  }, 120);
  s.slider.addEventListener('input', () => setAsOf(s, Number(s.slider.value), { immediate: false }));
  s.seqInput.addEventListener('change', () => setAsOf(s, Number(s.seqInput.value)));
  s.fromInput.addEventListener('change', () => setMarks(s, s.fromInput.value, state.to));
  s.toInput.addEventListener('change', () => setMarks(s, state.from, s.toInput.value));
  return {
    section: sliderSection(s, diffBox, note),
    start: () => {
      drawMarks(s);
      updateReadout(s);
    },
    latest: () => latest(s),
    grow: (head) => grow(s, head),
  };
}

function sliderInputs(state) {
  const { head } = state;
  const seqField = (id, value) => h('input', { id, type: 'number', min: 0, max: head, step: 1, value, inputmode: 'numeric' });
  return {
    slider: h('input', {
      id: 'as-of', type: 'range', min: 0, max: head, step: 1, value: state.asOf,
      'aria-describedby': 'as-of-readout',
    }),
    seqInput: seqField('as-of-seq', state.asOf),
    fromInput: seqField('mark-from', state.from ?? ''),
    toInput: seqField('mark-to', state.to ?? ''),
    readout: h('p', { id: 'as-of-readout', class: 'readout', 'aria-live': 'polite' }),
    marks: h('div', { class: 'marks', 'aria-hidden': 'true' }),
  };
}

function sliderSection(s, diffBox, note) {
  const { state } = s;
  return h('section', { class: 'timeline', 'aria-labelledby': 'timeline-heading' },
    h('h2', { id: 'timeline-heading' }, 'Time travel'),
    h('p', { class: 'hint' }, 'Drag the slider (or use the arrow keys) to see the cascade as it stood after any event in the log. Mark two points to highlight what changed between them.'),
    h('div', { class: 'slider' },
      h('label', { for: 'as-of', class: 'sr-only' }, 'Point in the log (event seq)'),
      s.slider, s.marks),
    s.readout,
    note,
    h('div', { class: 'slider-controls' },
      h('div', { class: 'group' },
        h('div', { class: 'field small' }, h('label', { for: 'as-of-seq' }, 'Seq'), s.seqInput),
        h('button', { type: 'button', id: 'latest', onclick: () => latest(s) }, 'Latest')),
      h('div', { class: 'group' },
        h('div', { class: 'field small' }, h('label', { for: 'mark-from' }, 'From seq'), s.fromInput),
        h('button', { type: 'button', id: 'set-from', onclick: () => setMarks(s, state.asOf, state.to) }, 'Mark “from” here')),
      h('div', { class: 'group' },
        h('div', { class: 'field small' }, h('label', { for: 'mark-to' }, 'To seq'), s.toInput),
        h('button', { type: 'button', id: 'set-to', onclick: () => setMarks(s, state.from, state.asOf) }, 'Mark “to” here')),
      h('button', { type: 'button', id: 'clear-marks', onclick: () => setMarks(s, null, null) }, 'Clear marks')),
    diffBox);
}

// The two marks under the slider, and the stretch between them. The
// earlier mark's label hangs left of its point, the later one's right,
// so neighbouring marks never cover each other.
function drawMarks(s) {
  const { state, slider, marks } = s;
  marks.replaceChildren();
  const share = (seq) => (state.head ? seq / state.head : 0);
  if (state.from !== null && state.to !== null) {
    slider.style.setProperty('--lo', share(Math.min(state.from, state.to)));
    slider.style.setProperty('--hi', share(Math.max(state.from, state.to)));
    slider.classList.add('marked');
  } else {
    slider.classList.remove('marked');
  }
  const put = (seq, cls, text, other) => {
    if (seq === null) return;
    const side = other !== null && seq > other ? 'right' : other !== null && seq < other ? 'left' : 'centre';
    marks.append(h('span', { class: `mark ${cls} ${side}`, style: `--at:${share(seq)}` }, `${text} ${seq}`));
  };
  put(state.from, 'from', 'from', state.to);
  put(state.to, 'to', 'to', state.from);
}

// The readout without the time (known at once); returns its seq part.
function readoutBase(s) {
  const { state } = s;
  const seq = state.asOf;
  const base = seq === state.head ? `seq ${seq} of ${state.head} (latest)` : `seq ${seq} of ${state.head}`;
  s.readout.textContent = `Showing the state after ${base}.`;
  s.slider.setAttribute('aria-valuetext', base);
  return base;
}

// The readout with the recorded time of the seq shown, once it is known.
async function updateReadout(s) {
  const { state } = s;
  const seq = state.asOf;
  const base = readoutBase(s);
  const t = await timeOfSeq(seq);
  if (state.asOf !== seq) return;
  const when = seq === 0 ? 'before the first event' : Number.isFinite(t) ? `recorded ${formatDateTime(t)}` : 'time not shown';
  s.readout.replaceChildren(
    'Showing the state after ',
    h('strong', {}, base),
    ', ',
    h('span', { id: 'as-of-time', 'data-seq': seq, 'data-time': Number.isFinite(t) ? new Date(t).toISOString() : '' }, when),
    '.',
  );
  s.slider.setAttribute('aria-valuetext', `${base}, ${when}`);
}

function setAsOf(s, seq, { immediate = true } = {}) {
  const { state } = s;
  state.asOf = clampSeq(seq, state.head);
  s.slider.value = String(state.asOf);
  s.seqInput.value = String(state.asOf);
  s.syncHash();
  if (immediate) {
    updateReadout(s);
    s.onSeq();
  } else {
    readoutBase(s);
    s.loadSoon();
  }
}

// To the head, which may have moved on since the page loaded.
async function latest(s) {
  const { state } = s;
  try {
    const [head, cyclesNow] = await Promise.all([headSeq(), loadCycles()]);
    state.cycles = cyclesNow;
    setHead(s, head);
  } catch {
    // keep the head we know
  }
  setAsOf(s, state.head);
}

// The slider's range up to `head`, the point shown staying where it is.
function setHead(s, head) {
  s.state.head = head;
  for (const input of [s.slider, s.seqInput, s.fromInput, s.toInput]) input.max = String(head);
  drawMarks(s);
}

// A newer head (a change recorded since) within reach, the view kept.
function grow(s, head) {
  if (!(head > s.state.head)) return;
  setHead(s, head);
  // The range input keeps its value when its max grows.
  s.slider.value = String(s.state.asOf);
  updateReadout(s);
}

// Sets the marks (null or '' for none) and reads their changes.
function setMarks(s, from, to) {
  const { state } = s;
  const mark = (seq) => (seq === null || seq === '' || Number.isNaN(Number(seq)) ? null : clampSeq(Number(seq), state.head));
  state.from = mark(from);
  state.to = mark(to);
  s.fromInput.value = state.from ?? '';
  s.toInput.value = state.to ?? '';
  s.syncHash();
  drawMarks(s);
  s.onMarks();
}
