// okrd's read-only dashboard. Plain ES modules, no build step, no runtime
// dependencies: it reads okrd's public HTTP API and draws with HTML and SVG.
//
// Routes (hash based, so any static server can serve it):
//   #/cascade?cycle=&as_of=&from=&to=&q=   units → objectives → key results
//   #/kr/ID?as_of=                         one key result's check-ins chart
//   #/review/CYCLE                         the printable review of a cycle
//   #/audit?actor=&entity=&type=           the event timeline, for a token holder

import { ApiError, download, get, getAll, getToken, headSeq, setToken } from './api.js';
import { checkInChart, formatNumber } from './chart.js';

const DAY_MS = 86_400_000;

// Status: progress against the share of the cycle that has elapsed, in
// points of the way from start to target (docs/DASHBOARD.md).
export const ON_TRACK_GAP = 0.10;
export const AT_RISK_GAP = 0.25;

// ---------- small DOM helpers ----------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    // aria-* and data-* take "true"/"false"; other booleans are present or absent.
    if (typeof value === 'boolean' && (key.startsWith('aria-') || key.startsWith('data-'))) {
      node.setAttribute(key, String(value));
      continue;
    }
    if (value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const main = () => document.getElementById('main');

function announce(text) {
  const region = document.getElementById('announce');
  if (region) region.textContent = text;
}

function errorBox(err, what) {
  const box = h('div', { class: 'error', role: 'alert' });
  let message = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  if (err instanceof ApiError && err.status === 401) {
    append(box, [
      h('p', {}, `${what}: okrd asks for a token (${message}).`),
      h('p', {}, 'Paste one on the ', h('a', { href: '#/audit' }, 'Audit'), ' page; it is kept for this tab only.'),
    ]);
    return box;
  }
  if (err instanceof ApiError && err.status === 403) message = `${message} (this token's role may not read it)`;
  append(box, h('p', {}, `${what}: ${message}`));
  return box;
}

// A button that downloads cycle `id`'s review as `format` (md, csv) with
// the tab's token, so it works under --private too; a refusal shows below it.
function reviewDownload(id, format, label) {
  const button = h('button', { type: 'button', class: 'button', 'data-download': format }, label);
  button.addEventListener('click', async () => {
    button.parentElement.querySelector('.error')?.remove();
    try {
      await download(`v1/cycles/${encodeURIComponent(id)}/review`, { format }, `review-${id}.${format}`);
    } catch (err) {
      button.parentElement.append(errorBox(err, `${label} download`));
    }
  });
  return button;
}

function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

// ---------- time ----------

// okrd writes microseconds ("…T18:00:00.000000Z"); Date.parse wants millis.
export function parseTime(text) {
  if (!text) return NaN;
  return Date.parse(String(text).replace(/\.(\d{3})\d*Z$/, '.$1Z'));
}

function formatDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  return `${new Date(ms).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
  })} UTC`;
}

function formatDate(ms) {
  if (!Number.isFinite(ms)) return '–';
  return new Date(ms).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
}

function cycleBounds(cycle) {
  const start = Date.parse(`${cycle.starts}T00:00:00Z`);
  const end = Date.parse(`${cycle.ends}T00:00:00Z`) + DAY_MS; // the end date is inclusive
  return { start, end };
}

export function expectedShare(cycle, now) {
  const { start, end } = cycleBounds(cycle);
  if (!(end > start)) return 1;
  return Math.min(1, Math.max(0, (now - start) / (end - start)));
}

export function statusOf(progress, expected) {
  if (progress === null || progress === undefined) return { key: 'none', label: 'No data' };
  const gap = expected - progress;
  if (gap <= ON_TRACK_GAP) return { key: 'on-track', label: 'On track' };
  if (gap <= AT_RISK_GAP) return { key: 'at-risk', label: 'At risk' };
  return { key: 'off-track', label: 'Off track' };
}

const percent = (share) => `${Math.round(share * 100)}%`;

// The recorded time of one seq, from the public diff (every write shows up
// there) or, with an audit token, from the event itself.
const seqTimes = new Map();
let eventsReadable = null; // null: not yet known
function timeOfSeq(seq) {
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
  if (!Number.isFinite(found) && getToken() && eventsReadable !== false) {
    try {
      const events = await get('v1/events', { after: seq - 1, limit: 1 });
      eventsReadable = true;
      if (events.items[0] && events.items[0].seq === seq) found = parseTime(events.items[0].recorded_at);
    } catch {
      eventsReadable = false;
    }
  }
  return found;
}

// ---------- shared widgets ----------

function statusBadge(status) {
  return h('span', { class: `status ${status.key}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), status.label);
}

function progressBar(progress, expected, status, label) {
  const pct = Math.round(progress * 100);
  const bar = h('div', {
    class: 'bar',
    role: 'progressbar',
    'aria-label': label,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.max(0, Math.min(100, pct)),
    'aria-valuetext': `${pct}% done, ${percent(expected)} expected by now: ${status.label.toLowerCase()}`,
  });
  bar.append(
    h('span', { class: `fill ${status.key}`, style: `width:${Math.max(0, Math.min(100, pct))}%` }),
    h('span', { class: 'pace', style: `left:${Math.round(expected * 1000) / 10}%`, title: `expected by now: ${percent(expected)}` }),
  );
  return bar;
}

function measure(progress, expected, label, extraClass = '') {
  if (progress === null || progress === undefined) {
    return h('div', { class: `measure ${extraClass}` }, h('span', { class: 'pct muted' }, '–'));
  }
  const status = statusOf(progress, expected);
  return h('div', { class: `measure ${extraClass}` },
    progressBar(progress, expected, status, label),
    h('span', { class: 'pct', 'data-progress': progress }, percent(progress)),
    statusBadge(status));
}

function setTitle(text) {
  document.title = `${text} · okrd`;
}

function focusHeading() {
  const heading = main().querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
}

// ---------- routing ----------

function parseHash() {
  const hash = location.hash || '#/cascade';
  if (!hash.startsWith('#/')) return null;
  const [path, query = ''] = hash.slice(2).split('?');
  const parts = path.split('/').map((p) => decodeURIComponent(p));
  return { view: parts[0] || 'cascade', arg: parts.slice(1).join('/'), params: new URLSearchParams(query) };
}

function hashFor(view, arg, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const q = query.toString();
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

// Updates the address without a new history entry or a re-render.
function replaceHash(view, arg, params) {
  history.replaceState(null, '', hashFor(view, arg, params));
}

let generation = 0;

async function route() {
  const r = parseHash();
  if (!r) return;
  const my = ++generation;
  for (const link of document.querySelectorAll('[data-nav]')) {
    const current = link.dataset.nav === r.view || (link.dataset.nav === 'cascade' && r.view === 'kr');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const root = main();
  root.setAttribute('aria-busy', 'true');
  root.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  const views = { cascade: cascadeView, kr: keyResultView, review: reviewView, audit: auditView };
  const view = views[r.view];
  try {
    if (!view) {
      root.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/cascade' }, 'Go to the cascade.')));
    } else {
      await view(r, () => my === generation);
    }
  } catch (err) {
    if (my !== generation) return;
    const heading = err instanceof ApiError && err.status === 401 ? 'A token is needed'
      : err instanceof ApiError && err.status === 404 ? 'Not found' : 'Something went wrong';
    root.replaceChildren(h('h1', {}, heading), errorBox(err, 'Loading this page failed'));
  } finally {
    if (my === generation) root.removeAttribute('aria-busy');
  }
  if (my === generation && routeChangedByUser) focusHeading();
  routeChangedByUser = true;
}

let routeChangedByUser = false;

// ---------- names ----------

// Unit id → display name ("maya.chen" → "Maya Chen"), read once per page load.
let unitNames = null;
function loadNames() {
  if (!unitNames) {
    unitNames = getAll('v1/units')
      .then(({ items }) => new Map(items.map((u) => [u.id, u.name])))
      .catch(() => new Map());
  }
  return unitNames;
}

// ---------- cycles ----------

async function loadCycles(asOf) {
  const { items } = await getAll('v1/cycles', { as_of: asOf });
  return items;
}

// The open cycle containing today, shortest first (a quarter over its
// year); otherwise the latest to start.
function defaultCycle(cycles, now = Date.now()) {
  const span = (c) => cycleBounds(c).end - cycleBounds(c).start;
  const current = cycles
    .filter((c) => c.state === 'open' && cycleBounds(c).start <= now && now < cycleBounds(c).end)
    .sort((a, b) => span(a) - span(b));
  if (current.length) return current[0].id;
  const sorted = [...cycles].sort((a, b) => cycleBounds(b).start - cycleBounds(a).start);
  return sorted.length ? sorted[0].id : '';
}

function cycleSelect(cycles, selected, onChange, id = nextId('cycle')) {
  const select = h('select', { id, name: 'cycle' });
  const sorted = [...cycles].sort((a, b) => cycleBounds(b).start - cycleBounds(a).start || a.id.localeCompare(b.id));
  for (const c of sorted) {
    select.append(h('option', { value: c.id, selected: c.id === selected }, `${c.name} (${c.starts} – ${c.ends}, ${c.state})`));
  }
  select.addEventListener('change', () => onChange(select.value));
  return h('div', { class: 'field' }, h('label', { for: id }, 'Cycle'), select);
}

// ---------- view: cascade ----------

async function cascadeView(r, alive) {
  const [cycles, head] = await Promise.all([loadCycles(), headSeq()]);
  if (!alive()) return;
  const p = r.params;
  const state = {
    cycles,
    head,
    cycle: p.get('cycle') && cycles.some((c) => c.id === p.get('cycle')) ? p.get('cycle') : defaultCycle(cycles),
    asOf: p.has('as_of') ? clampSeq(Number(p.get('as_of')), head) : head,
    from: p.has('from') ? clampSeq(Number(p.get('from')), head) : null,
    to: p.has('to') ? clampSeq(Number(p.get('to')), head) : null,
    q: p.get('q') || '',
    collapsed: new Set(),
    data: null, // the last answer: {cascade, cycle, names, titles}
    diff: null,
    load: 0,
  };
  setTitle('Cascade');

  const root = main();
  const search = h('input', {
    id: 'search', type: 'search', value: state.q, autocomplete: 'off', placeholder: 'title or owner',
    'aria-describedby': 'search-hint',
  });
  const slider = h('input', {
    id: 'as-of', type: 'range', min: 0, max: head, step: 1, value: state.asOf,
    'aria-describedby': 'as-of-readout',
  });
  const seqInput = h('input', { id: 'as-of-seq', type: 'number', min: 0, max: head, step: 1, value: state.asOf, inputmode: 'numeric' });
  const fromInput = h('input', { id: 'mark-from', type: 'number', min: 0, max: head, step: 1, value: state.from ?? '', inputmode: 'numeric' });
  const toInput = h('input', { id: 'mark-to', type: 'number', min: 0, max: head, step: 1, value: state.to ?? '', inputmode: 'numeric' });
  const readout = h('p', { id: 'as-of-readout', class: 'readout', 'aria-live': 'polite' });
  const marks = h('div', { class: 'marks', 'aria-hidden': 'true' });
  const diffBox = h('section', { id: 'diff', class: 'diff', 'aria-labelledby': 'diff-heading', hidden: true });
  const tree = h('div', { id: 'cascade-tree', class: 'cascade' });
  const summary = h('p', { id: 'cascade-summary', class: 'summary' });

  const syncHash = () => replaceHash('cascade', '', {
    cycle: state.cycle,
    as_of: state.asOf === state.head ? null : state.asOf,
    from: state.from,
    to: state.to,
    q: state.q,
  });

  root.replaceChildren(
    h('h1', {}, 'Cascade'),
    h('form', { class: 'controls', role: 'search', onsubmit: (e) => e.preventDefault() },
      cycleSelect(cycles, state.cycle, (id) => {
        state.cycle = id;
        state.diff = null;
        syncHash();
        reload();
      }, 'cycle'),
      h('div', { class: 'field grow' },
        h('label', { for: 'search' }, 'Search'),
        search,
        h('span', { id: 'search-hint', class: 'hint' }, 'Objective or key result title, or owner')),
      h('div', { class: 'field buttons' },
        h('button', { type: 'button', onclick: () => expandAll(true) }, 'Expand all'),
        h('button', { type: 'button', onclick: () => expandAll(false) }, 'Collapse all'))),
    h('section', { class: 'timeline', 'aria-labelledby': 'timeline-heading' },
      h('h2', { id: 'timeline-heading' }, 'Time travel'),
      h('p', { class: 'hint' }, 'Drag the slider (or use the arrow keys) to see the cascade as it stood after any event in the log. Mark two points to highlight what changed between them.'),
      h('div', { class: 'slider' },
        h('label', { for: 'as-of', class: 'sr-only' }, 'Point in the log (event seq)'),
        slider, marks),
      readout,
      h('div', { class: 'slider-controls' },
        h('div', { class: 'group' },
          h('div', { class: 'field small' }, h('label', { for: 'as-of-seq' }, 'Seq'), seqInput),
          h('button', { type: 'button', id: 'latest', onclick: () => latest() }, 'Latest')),
        h('div', { class: 'group' },
          h('div', { class: 'field small' }, h('label', { for: 'mark-from' }, 'From seq'), fromInput),
          h('button', { type: 'button', id: 'set-from', onclick: () => setMarks(state.asOf, state.to) }, 'Mark “from” here')),
        h('div', { class: 'group' },
          h('div', { class: 'field small' }, h('label', { for: 'mark-to' }, 'To seq'), toInput),
          h('button', { type: 'button', id: 'set-to', onclick: () => setMarks(state.from, state.asOf) }, 'Mark “to” here')),
        h('button', { type: 'button', id: 'clear-marks', onclick: () => setMarks(null, null) }, 'Clear marks')),
      diffBox),
    legend(),
    summary,
    tree,
  );

  function clampSeq(n, max) {
    return Number.isFinite(n) ? Math.max(0, Math.min(max, Math.round(n))) : max;
  }

  // The two marks under the slider, and the stretch between them. The
  // earlier mark's label hangs left of its point, the later one's right,
  // so neighbouring marks never cover each other.
  function drawMarks() {
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

  function readoutBase() {
    const seq = state.asOf;
    const base = seq === state.head ? `seq ${seq} of ${state.head} (latest)` : `seq ${seq} of ${state.head}`;
    readout.textContent = `Showing the state after ${base}.`;
    slider.setAttribute('aria-valuetext', base);
    return base;
  }

  async function updateReadout() {
    const seq = state.asOf;
    const base = readoutBase();
    const t = await timeOfSeq(seq);
    if (state.asOf !== seq) return;
    const when = seq === 0 ? 'before the first event' : Number.isFinite(t) ? `recorded ${formatDateTime(t)}` : 'time not shown';
    readout.replaceChildren(
      'Showing the state after ',
      h('strong', {}, base),
      ', ',
      h('span', { id: 'as-of-time', 'data-seq': seq, 'data-time': Number.isFinite(t) ? new Date(t).toISOString() : '' }, when),
      '.',
    );
    slider.setAttribute('aria-valuetext', `${base}, ${when}`);
  }

  // While the slider is dragged only the seq updates at once; the time of
  // the seq and the cascade load when it rests for a moment.
  const loadSoon = debounce(() => {
    updateReadout();
    reload();
  }, 120);

  function setAsOf(seq, { immediate = true } = {}) {
    state.asOf = clampSeq(seq, state.head);
    slider.value = String(state.asOf);
    seqInput.value = String(state.asOf);
    syncHash();
    if (immediate) {
      updateReadout();
      reload();
    } else {
      readoutBase();
      loadSoon();
    }
  }

  // The head may have moved on since the page loaded.
  async function latest() {
    try {
      const [head, cyclesNow] = await Promise.all([headSeq(), loadCycles()]);
      state.head = head;
      state.cycles = cyclesNow;
      for (const input of [slider, seqInput, fromInput, toInput]) input.max = String(head);
      drawMarks();
    } catch {
      // keep the head we know
    }
    setAsOf(state.head);
  }

  function setMarks(from, to) {
    state.from = from === null || from === '' || Number.isNaN(Number(from)) ? null : clampSeq(Number(from), state.head);
    state.to = to === null || to === '' || Number.isNaN(Number(to)) ? null : clampSeq(Number(to), state.head);
    fromInput.value = state.from ?? '';
    toInput.value = state.to ?? '';
    syncHash();
    drawMarks();
    loadDiff();
  }

  slider.addEventListener('input', () => setAsOf(Number(slider.value), { immediate: false }));
  seqInput.addEventListener('change', () => setAsOf(Number(seqInput.value)));
  fromInput.addEventListener('change', () => setMarks(fromInput.value, state.to));
  toInput.addEventListener('change', () => setMarks(state.from, toInput.value));
  search.addEventListener('input', debounce(() => {
    state.q = search.value.trim();
    syncHash();
    drawTree();
  }, 120));

  function expandAll(open) {
    if (open) state.collapsed.clear();
    for (const button of tree.querySelectorAll('button.toggle')) {
      if (!open) state.collapsed.add(button.dataset.key);
      setExpanded(button, open);
    }
  }

  async function reload() {
    const my = ++state.load;
    const seq = state.asOf;
    tree.setAttribute('aria-busy', 'true');
    try {
      const atHead = seq === state.head;
      const cyclesThen = atHead ? state.cycles : await loadCycles(seq);
      const cycle = cyclesThen.find((c) => c.id === state.cycle);
      if (!cycle) {
        if (my !== state.load || !alive()) return;
        state.data = { missing: true, seq };
        drawTree();
        return;
      }
      const [cascade, now] = await Promise.all([
        get('v1/cascade', { cycle: state.cycle, as_of: seq }),
        atHead ? Date.now() : timeOfSeq(seq),
      ]);
      if (my !== state.load || !alive()) return;
      state.data = { cascade, cycle, now: Number.isFinite(now) ? now : Date.now(), seq: cascade.as_of_seq };
      drawTree();
      if (state.from !== null && state.to !== null && !state.diff) loadDiff();
    } catch (err) {
      if (my !== state.load || !alive()) return;
      tree.replaceChildren(errorBox(err, 'Reading the cascade failed'));
    } finally {
      if (my === state.load) tree.removeAttribute('aria-busy');
    }
  }

  let diffLoad = 0;
  async function loadDiff() {
    const my = ++diffLoad;
    if (state.from === null || state.to === null) {
      state.diff = null;
      diffBox.hidden = true;
      drawTree();
      return;
    }
    const from = Math.min(state.from, state.to);
    const to = Math.max(state.from, state.to);
    try {
      const [diff, t0, t1] = await Promise.all([
        get('v1/diff', { from, to, cycle: state.cycle }),
        timeOfSeq(from),
        timeOfSeq(to),
      ]);
      if (my !== diffLoad || !alive()) return;
      state.diff = { ...diff, t0, t1 };
    } catch (err) {
      if (my !== diffLoad || !alive()) return;
      state.diff = null;
      diffBox.hidden = false;
      diffBox.replaceChildren(h('h3', { id: 'diff-heading' }, 'Changes'), errorBox(err, 'Reading the changes failed'));
      return;
    }
    drawDiff();
    drawTree();
  }

  function titleOf(id) {
    return (state.data && state.data.titles && state.data.titles.get(id)) || id;
  }

  function drawDiff() {
    const d = state.diff;
    if (!d) return;
    diffBox.hidden = false;
    const when = (t) => (Number.isFinite(t) ? ` (${formatDateTime(t)})` : '');
    const items = h('ul', { class: 'changes', tabindex: 0, 'aria-label': 'Changes in this range' });
    for (const c of d.created) {
      items.append(h('li', { 'data-change': 'created' }, h('strong', {}, 'Created '), `${c.kind.replace('_', ' ')} `, entityLink(c.entity, c.kind), ` by ${c.actor}`));
    }
    for (const c of d.changed) {
      items.append(h('li', { 'data-change': 'changed', 'data-entity': c.entity, 'data-field': c.field },
        h('strong', {}, `${c.field} `), entityLink(c.entity), `: ${show(c.before)} → ${show(c.after)}, by ${c.actor} on ${formatDate(parseTime(c.recorded_at))}`,
        c.reason ? ` — “${c.reason}”` : ''));
    }
    for (const c of d.archived) {
      items.append(h('li', { 'data-change': 'archived' }, h('strong', {}, 'Archived '), entityLink(c.entity), ` by ${c.actor}`, c.reason ? ` — “${c.reason}”` : ''));
    }
    for (const c of d.corrections) {
      items.append(h('li', { 'data-change': 'correction' }, h('strong', {}, 'Corrected '), 'a check-in of ', entityLink(c.key_result, 'key_result'),
        `: ${show(c.before)} → ${show(c.after)}`, c.reason ? ` — “${c.reason}”` : ''));
    }
    const counts = [
      `${d.created.length} created`, `${d.changed.length} changed`, `${d.archived.length} archived`,
      `${d.check_ins.length} check-ins`, `${d.corrections.length} corrections`, `${d.comments.length} comments`,
    ].join(' · ');
    diffBox.replaceChildren(
      h('h3', { id: 'diff-heading' }, `Changes between seq ${d.from}${when(d.t0)} and seq ${d.to}${when(d.t1)}`),
      h('p', { class: 'counts' }, counts),
      items.children.length ? items : h('p', {}, 'No created, changed or archived objectives or key results in this range.'),
      h('p', { class: 'hint' }, 'Objectives and key results touched in this range are outlined and marked “changed” below.'),
    );
  }

  function entityLink(id, kind) {
    if (kind === 'key_result' || (state.data && state.data.krIds && state.data.krIds.has(id))) {
      return h('a', { href: hashFor('kr', id, { as_of: state.asOf === state.head ? null : state.asOf }) }, titleOf(id));
    }
    return h('span', { class: 'entity' }, titleOf(id));
  }

  // What changed per entity between the marks, in words.
  function changesByEntity() {
    const out = new Map();
    const d = state.diff;
    if (!d) return out;
    const add = (id, text) => {
      if (!out.has(id)) out.set(id, []);
      out.get(id).push(text);
    };
    for (const c of d.created) add(c.entity, 'created');
    for (const c of d.changed) add(c.entity, `${c.field} ${show(c.before)} → ${show(c.after)}`);
    for (const c of d.archived) add(c.entity, 'archived');
    const checkIns = new Map();
    for (const c of d.check_ins) checkIns.set(c.key_result, (checkIns.get(c.key_result) || 0) + 1);
    for (const [id, n] of checkIns) add(id, `${n} check-in${n === 1 ? '' : 's'}`);
    for (const c of d.corrections) add(c.key_result, 'a correction');
    for (const c of d.comments) add(c.entity, 'a comment');
    return out;
  }

  function drawTree() {
    const data = state.data;
    if (!data) return;
    tree.dataset.asOf = String(data.seq);
    tree.dataset.cycle = state.cycle;
    if (data.missing) {
      tree.replaceChildren(h('p', { class: 'empty' }, `The cycle ${state.cycle} did not exist yet at seq ${data.seq}. Move the slider later.`));
      summary.textContent = '';
      return;
    }
    const names = new Map();
    const titles = new Map();
    const krIds = new Set();
    const walk = (node) => {
      names.set(node.unit.id, node.unit.name);
      for (const o of node.objectives) {
        titles.set(o.id, o.title);
        for (const k of o.key_results) {
          titles.set(k.id, k.title);
          krIds.add(k.id);
        }
      }
      node.children.forEach(walk);
    };
    data.cascade.nodes.forEach(walk);
    data.names = names;
    data.titles = titles;
    data.krIds = krIds;
    if (state.diff) drawDiff();

    const expected = expectedShare(data.cycle, data.now);
    const q = state.q.toLowerCase();
    const changes = changesByEntity();
    const ownerName = (id) => names.get(id) || id;
    const matches = (o) => {
      if (!q) return true;
      const hay = [o.title, o.owner, ownerName(o.owner)];
      for (const k of o.key_results) hay.push(k.title, k.owner, ownerName(k.owner));
      return hay.join('\n').toLowerCase().includes(q);
    };

    let shown = 0;
    const renderNode = (node, depth) => {
      const objectives = node.objectives.filter(matches);
      const children = node.children.map((c) => renderNode(c, depth + 1)).filter(Boolean);
      if (!objectives.length && !children.length) return null;
      shown += objectives.length;
      const key = `unit:${node.unit.id}`;
      const bodyId = nextId('unit-body');
      const open = !state.collapsed.has(key);
      const level = Math.min(6, 2 + depth);
      const toggle = h('button', { type: 'button', class: 'toggle', 'aria-expanded': open, 'aria-controls': bodyId, 'data-key': key },
        h('span', { class: 'chevron', 'aria-hidden': 'true' }),
        h('span', { class: 'unit-name' }, node.unit.name),
        h('span', { class: 'kind' }, ` ${node.unit.kind}`));
      return h('li', { class: `unit depth-${Math.min(depth, 4)}`, 'data-unit-id': node.unit.id },
        h('div', { class: 'unit-head' },
          h(`h${level}`, { class: 'unit-title' }, toggle),
          h('span', { class: 'count' }, `${node.objective_count} objective${node.objective_count === 1 ? '' : 's'}`),
          measure(node.progress, expected, `Progress of ${node.unit.name}`, 'rollup')),
        h('div', { class: 'unit-body', id: bodyId, hidden: !open },
          objectives.length ? h('ul', { class: 'objectives' }, objectives.map((o) => renderObjective(o, level + 1))) : null,
          children.length ? h('ul', { class: 'units' }, children) : null));
    };

    const renderObjective = (o, level) => {
      const key = `objective:${o.id}`;
      const open = !state.collapsed.has(key);
      const krsId = nextId('krs');
      const own = changes.get(o.id);
      const krChanged = o.key_results.some((k) => changes.has(k.id));
      const status = statusOf(o.progress, expected);
      const toggle = h('button', { type: 'button', class: 'toggle', 'aria-expanded': open, 'aria-controls': krsId, 'data-key': key },
        h('span', { class: 'chevron', 'aria-hidden': 'true' }),
        h('span', { class: 'objective-title' }, o.title));
      return h('li', {
        class: `objective ${status.key}${own ? ' changed' : ''}${krChanged ? ' has-changes' : ''}`,
        'data-objective-id': o.id,
      },
        h('div', { class: 'objective-head' },
          h(`h${Math.min(6, level)}`, { class: 'objective-heading' }, toggle),
          h('p', { class: 'meta' },
            h('span', { class: 'owner', 'data-owner': o.owner }, `Owner: ${ownerName(o.owner)}`),
            o.parents.length ? h('span', { class: 'aligns' }, ` · aligns to ${o.parents.map((id) => titleOf(id)).join(', ')}`) : null,
            own ? h('span', { class: 'badge changed', title: own.join('; ') }, `changed: ${own.join('; ')}`) : null),
          measure(o.progress, expected, `Progress of objective ${o.title}`)),
        h('div', { id: krsId, class: 'krs-wrap', hidden: !open },
          o.key_results.length
            ? h('ul', { class: 'krs' }, o.key_results.map((k) => renderKr(k)))
            : h('p', { class: 'muted rollup-note' }, 'No key results of its own: its progress is the average of the objectives aligned to it.')));
    };

    const renderKr = (k) => {
      const changed = changes.get(k.id);
      return h('li', { class: `kr${changed ? ' changed' : ''}`, 'data-kr-id': k.id, 'data-target': k.target, 'data-current': k.current },
        h('div', { class: 'kr-main' },
          h('a', { class: 'kr-title', href: hashFor('kr', k.id, { as_of: state.asOf === state.head ? null : state.asOf }) }, k.title),
          h('span', { class: 'owner', 'data-owner': k.owner }, ownerName(k.owner)),
          changed ? h('span', { class: 'badge changed' }, `changed: ${changed.join('; ')}`) : null),
        h('div', { class: 'kr-value' },
          h('span', { class: 'current' }, formatNumber(k.current)),
          k.unit ? ` ${k.unit}` : '',
          h('span', { class: 'muted' }, ' · target '),
          h('span', { class: 'target' }, formatNumber(k.target)),
          h('span', { class: 'checkins muted' }, ` · ${k.check_in_count} check-in${k.check_in_count === 1 ? '' : 's'}`)),
        measure(k.progress, expected, `Progress of key result ${k.title}`));
    };

    const top = data.cascade.nodes.map((n) => renderNode(n, 0)).filter(Boolean);
    if (!top.length) {
      tree.replaceChildren(h('p', { class: 'empty' }, q ? `No objective matches “${state.q}”.` : 'No objectives in this cycle at this point.'));
    } else {
      tree.replaceChildren(h('ul', { class: 'units root' }, top));
    }
    const { start, end } = cycleBounds(data.cycle);
    summary.replaceChildren(
      h('strong', {}, `${data.cycle.name}`),
      ` (${data.cycle.starts} – ${data.cycle.ends}, ${data.cycle.state}): ${shown} objective${shown === 1 ? '' : 's'} shown`,
      q ? ` matching “${state.q}”` : '',
      `. ${percent(expected)} of the cycle had passed on ${formatDate(Math.min(Math.max(data.now, start), end - 1))}.`,
    );
    announce(`${shown} objectives shown at seq ${data.seq}`);
  }

  tree.addEventListener('click', (e) => {
    const button = e.target.closest('button.toggle');
    if (!button) return;
    const open = button.getAttribute('aria-expanded') !== 'true';
    if (open) state.collapsed.delete(button.dataset.key);
    else state.collapsed.add(button.dataset.key);
    setExpanded(button, open);
  });

  drawMarks();
  updateReadout();
  await reload();
  if (state.from !== null && state.to !== null) await loadDiff();
}

function setExpanded(button, open) {
  button.setAttribute('aria-expanded', String(open));
  const body = document.getElementById(button.getAttribute('aria-controls'));
  if (body) body.hidden = !open;
}

function show(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'number') return formatNumber(value);
  if (Array.isArray(value)) return value.join(', ') || '–';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function legend() {
  return h('details', { class: 'legend' },
    h('summary', {}, 'How status is worked out'),
    h('p', {}, 'Each bar shows progress from start to target; the thin mark on it is where a steady pace would be by now (the share of the cycle that has passed).'),
    h('ul', {},
      h('li', {}, statusBadge(statusOf(1, 1)), ` at most ${Math.round(ON_TRACK_GAP * 100)} points behind that pace (or ahead of it)`),
      h('li', {}, statusBadge(statusOf(0.8, 0.8 + ON_TRACK_GAP + 0.01)), ` ${Math.round(ON_TRACK_GAP * 100)} to ${Math.round(AT_RISK_GAP * 100)} points behind`),
      h('li', {}, statusBadge(statusOf(0, 1)), ` more than ${Math.round(AT_RISK_GAP * 100)} points behind`)));
}

// ---------- view: key result ----------

async function keyResultView(r, alive) {
  const id = r.arg;
  const asOfParam = r.params.get('as_of');
  const asOf = asOfParam !== null && asOfParam !== '' ? Number(asOfParam) : undefined;
  const kr = await get(`v1/key-results/${encodeURIComponent(id)}`, { as_of: asOf });
  const [objective, series] = await Promise.all([
    get(`v1/objectives/${encodeURIComponent(kr.objective)}`, { as_of: kr.as_of_seq }),
    getAll(`v1/key-results/${encodeURIComponent(id)}/check-ins`, { as_of: kr.as_of_seq }),
  ]);
  const [cycle, names] = await Promise.all([
    get(`v1/cycles/${encodeURIComponent(objective.cycle)}`, { as_of: kr.as_of_seq }),
    loadNames(),
  ]);
  const changes = await goalpostChanges(kr, cycle, kr.as_of_seq);
  const nameOf = (id) => names.get(id) || id;
  if (!alive()) return;
  setTitle(kr.title);

  const atHead = asOf === undefined;
  const now = atHead ? Date.now() : await timeOfSeq(kr.as_of_seq);
  const expected = expectedShare(cycle, Number.isFinite(now) ? now : Date.now());
  const { start, end } = cycleBounds(cycle);
  const checkIns = series.items;
  const last = checkIns[checkIns.length - 1];
  const description = checkIns.length
    ? `${checkIns.length} check-ins from ${formatDate(parseTime(checkIns[0].measured_at))} to ${formatDate(parseTime(last.measured_at))}; latest ${formatNumber(last.value)} ${kr.unit} against a target of ${formatNumber(kr.target)}${changes.length ? `; the goalposts moved ${changes.length} time${changes.length === 1 ? '' : 's'}` : ''}.`
    : `No check-ins yet; target ${formatNumber(kr.target)} ${kr.unit}.`;
  const chart = checkInChart({
    title: `${kr.title}: check-ins over ${cycle.name}`,
    description,
    checkIns,
    start: kr.start,
    target: kr.target,
    unit: kr.unit,
    changes,
    cycleStart: start,
    cycleEnd: end,
    now: Number.isFinite(now) ? now : Date.now(),
    width: chartWidth(),
  });

  const back = hashFor('cascade', '', { cycle: cycle.id, as_of: atHead ? null : kr.as_of_seq });
  const checkInList = h('ol', { class: 'checkin-list', reversed: true, tabindex: 0, 'aria-labelledby': 'checkins-heading' },
    [...checkIns].reverse().map((c) => h('li', { 'data-check-in': c.id },
      h('p', { class: 'ci-head' },
        h('strong', {}, formatDate(parseTime(c.measured_at))), ': ',
        h('span', { class: 'ci-value' }, `${formatNumber(c.value)}${kr.unit ? ` ${kr.unit}` : ''}`),
        c.confidence === null ? '' : h('span', { class: 'ci-confidence' }, ` · confidence ${percent(c.confidence)}`),
        c.status ? h('span', { class: `ci-status ${c.status}` }, ` · ${c.status.replace('_', ' ')}`) : ''),
      c.note ? h('p', { class: 'ci-note' }, c.note) : '',
      h('p', { class: 'ci-by muted' }, `by ${nameOf(c.actor)}`))));
  // Pointing at a check-in in the list marks its point on the chart.
  const highlight = (e, on) => {
    const li = e.target.closest('li[data-check-in]');
    if (!li) return;
    const point = chart.querySelector(`circle[data-check-in="${CSS.escape(li.dataset.checkIn)}"]`);
    if (point) point.classList.toggle('active', on);
  };
  checkInList.addEventListener('mouseover', (e) => highlight(e, true));
  checkInList.addEventListener('mouseout', (e) => highlight(e, false));

  main().replaceChildren(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: back }, `Cascade of ${cycle.name}`), ' › ',
      h('span', {}, objective.title)),
    h('h1', {}, kr.title),
    h('p', { class: 'meta' },
      `Owner: ${nameOf(kr.owner)} · objective: ${objective.title} · ${kr.metric}${kr.unit ? ` in ${kr.unit}` : ''} · weight ${formatNumber(kr.weight)}`,
      atHead ? '' : ` · as of seq ${kr.as_of_seq}`),
    h('div', { class: 'kr-summary' },
      h('p', { class: 'big' },
        h('span', { class: 'current' }, formatNumber(kr.current)),
        h('span', { class: 'of' }, kr.unit ? ` ${kr.unit}` : ''),
        h('span', { class: 'muted' }, ` · target ${formatNumber(kr.target)} · started at ${formatNumber(kr.start)}`)),
      measure(kr.progress, expected, `Progress of key result ${kr.title}`)),
    h('div', { class: 'kr-detail' },
      h('section', { class: 'chart-panel', 'aria-labelledby': 'chart-heading' },
        h('h2', { id: 'chart-heading' }, 'Check-ins over the cycle'),
        h('ul', { class: 'chart-legend', 'aria-label': 'Chart legend' },
          h('li', {}, h('span', { class: 'swatch value', 'aria-hidden': 'true' }), 'check-ins (one point each)'),
          h('li', {}, h('span', { class: 'swatch target', 'aria-hidden': 'true' }), 'target as it stood'),
          h('li', {}, h('span', { class: 'swatch pace', 'aria-hidden': 'true' }), 'expected pace, start → target'),
          h('li', {}, h('span', { class: 'swatch change', 'aria-hidden': 'true' }), 'goalpost moved')),
        h('div', { class: 'chart-box' }, chart),
        h('h3', {}, 'Goalposts moved'),
        changes.length
          ? h('ul', { class: 'goalposts' }, changes.map((c) => h('li', { 'data-seq': c.seq, 'data-field': c.field },
              h('strong', {}, `${c.field} ${formatNumber(Number(c.before))} → ${formatNumber(Number(c.after))}`),
              ` on ${formatDate(c.at)} by ${nameOf(c.actor)}`, c.reason ? h('span', { class: 'reason' }, ` “${c.reason}”`) : '')))
          : h('p', { class: 'muted' }, 'None: start and target are as first set.'),
        h('p', { class: 'source muted' }, changes.source === 'history'
          ? 'From the key result’s event history (audit token).'
          : 'From the public diff of the cycle.')),
      h('section', { class: 'side', 'aria-labelledby': 'checkins-heading' },
        h('h2', { id: 'checkins-heading' }, `Check-ins (${checkIns.length}), newest first`),
        checkIns.length ? checkInList : h('p', { class: 'muted' }, 'No check-ins yet.'))),
    kr.comments && kr.comments.length
      ? h('section', { class: 'comments', 'aria-labelledby': 'comments-heading' },
          h('h2', { id: 'comments-heading' }, 'Comments'),
          h('ul', {}, kr.comments.map((c) => h('li', {}, h('strong', {}, nameOf(c.author)),
            ` (${formatDate(parseTime(c.recorded_at))}): ${c.text}`))))
      : '',
  );
}

// The chart panel's inner width: two thirds of the page, or all of it on a phone.
function chartWidth() {
  const page = main().clientWidth || 760;
  return page > 900 ? page * 0.64 - 40 : page - 40;
}

// Target and start changes of one key result: from its event history with an
// audit token, otherwise from the public diff of its cycle.
async function goalpostChanges(kr, cycle, asOf) {
  if (getToken() && eventsReadable !== false) {
    try {
      const history = await get(`v1/history/${encodeURIComponent(kr.id)}`);
      eventsReadable = true;
      const out = history.items
        .filter((e) => e.seq <= asOf && (e.type === 'key_result.target_changed' || e.type === 'key_result.start_changed'))
        .map((e) => ({
          field: e.type === 'key_result.target_changed' ? 'target' : 'start',
          before: e.data.before,
          after: e.data.after,
          at: parseTime(e.recorded_at),
          actor: e.actor,
          reason: e.reason,
          seq: e.seq,
        }));
      out.source = 'history';
      return out;
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) throw err;
      eventsReadable = false;
    }
  }
  const diff = await get('v1/diff', { cycle: cycle.id, to: asOf });
  const out = diff.changed
    .filter((c) => c.entity === kr.id && (c.field === 'target' || c.field === 'start'))
    .map((c) => ({ field: c.field, before: c.before, after: c.after, at: parseTime(c.recorded_at), actor: c.actor, reason: c.reason, seq: c.seq }));
  out.source = 'diff';
  return out;
}

// ---------- view: review ----------

async function reviewView(r, alive) {
  const cycles = await loadCycles();
  if (!alive()) return;
  let id = r.arg;
  if (!id || !cycles.some((c) => c.id === id)) {
    const closed = cycles.filter((c) => c.state === 'closed').sort((a, b) => cycleBounds(b).end - cycleBounds(a).end);
    const fallback = closed.length ? closed[0].id : defaultCycle(cycles);
    if (!id && fallback) {
      routeChangedByUser = false;
      location.replace(hashFor('review', fallback));
      return;
    }
    if (!id) {
      main().replaceChildren(h('h1', {}, 'Review'), h('p', {}, 'No cycles yet.'));
      return;
    }
  }
  const [review, names] = await Promise.all([get(`v1/cycles/${encodeURIComponent(id)}/review`), loadNames()]);
  if (!alive()) return;
  const nameOf = (unit) => names.get(unit) || unit;
  const c = review.cycle;
  setTitle(`Review of ${c.name}`);
  const krTitles = new Map();
  for (const o of review.objectives) for (const k of o.key_results) krTitles.set(k.id, { title: k.title, unit: k.unit, objective: o.title });

  const outcomeLabel = { achieved: 'Achieved', partially: 'Partially achieved', missed: 'Missed' };
  const goalposts = review.moved_goalposts;
  main().replaceChildren(
    h('h1', {}, `Review of ${c.name}`),
    h('div', { class: 'no-print controls' },
      cycleSelect(cycles, id, (next) => { location.hash = hashFor('review', next); }, 'review-cycle'),
      h('div', { class: 'field buttons' },
        h('button', { type: 'button', onclick: () => window.print() }, 'Print'),
        reviewDownload(id, 'md', 'Markdown'),
        reviewDownload(id, 'csv', 'CSV'))),
    h('p', { class: 'meta' }, `${c.id} · ${c.starts} to ${c.ends} · ${c.state} · as of seq ${review.as_of_seq}`),
    h('dl', { class: 'tally' },
      tally('Achieved', review.achieved.length),
      tally('Partially', review.partially.length),
      tally('Missed', review.missed.length),
      tally('Not reviewed', review.unreviewed.length),
      tally('Check-ins', review.check_ins)),
    h('section', { class: 'goalposts-section', 'aria-labelledby': 'goalposts-heading' },
      h('h2', { id: 'goalposts-heading' }, `Moved goalposts (${goalposts.length})`),
      h('p', { class: 'hint' }, 'Targets and starts changed after the cycle began.'),
      goalposts.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'goalposts' },
            h('thead', {}, h('tr', {},
              h('th', { scope: 'col' }, 'Key result'), h('th', { scope: 'col' }, 'Field'),
              h('th', { scope: 'col', class: 'num' }, 'Before'), h('th', { scope: 'col', class: 'num' }, 'After'),
              h('th', { scope: 'col' }, 'By'), h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Reason'))),
            h('tbody', {}, goalposts.map((g) => h('tr', { 'data-key-result': g.key_result, 'data-field': g.field },
              h('th', { scope: 'row' }, h('a', { href: hashFor('kr', g.key_result) }, (krTitles.get(g.key_result) || {}).title || g.key_result)),
              h('td', {}, g.field),
              h('td', { class: 'num' }, formatNumber(g.before)),
              h('td', { class: 'num' }, formatNumber(g.after)),
              h('td', {}, nameOf(g.actor)),
              h('td', {}, formatDate(parseTime(g.recorded_at))),
              h('td', {}, g.reason || '–'))))))
        : h('p', {}, 'None: no target or start changed after the cycle began.')),
    h('section', { 'aria-labelledby': 'objectives-heading' },
      h('h2', { id: 'objectives-heading' }, `Objectives (${review.objectives.length})`),
      review.objectives.map((o) => h('article', { class: 'review-objective', 'data-objective-id': o.id },
        h('h3', {}, o.title),
        h('p', { class: 'meta' }, `Owner: ${nameOf(o.owner)}`,
          ' · computed score ', h('strong', {}, percent(o.computed_score)),
          ' · reviewed score ', h('strong', {}, o.score === null ? '–' : percent(o.score)),
          ' · ', h('span', { class: `outcome ${o.outcome || 'unreviewed'}` }, o.outcome ? outcomeLabel[o.outcome] || o.outcome : 'Not reviewed'),
          o.reviewed_by ? ` by ${nameOf(o.reviewed_by)}` : ''),
        o.reflection ? h('p', {}, h('strong', {}, 'Reflection: '), o.reflection) : null,
        o.lessons ? h('p', {}, h('strong', {}, 'Lessons: '), o.lessons) : null,
        o.key_results.length
          ? h('div', { class: 'table-wrap' }, h('table', { class: 'review-krs' },
              h('caption', { class: 'sr-only' }, `Key results of ${o.title}`),
              h('thead', {}, h('tr', {},
                h('th', { scope: 'col' }, 'Key result'), h('th', { scope: 'col', class: 'num' }, 'Start'),
                h('th', { scope: 'col', class: 'num' }, 'Original target'), h('th', { scope: 'col', class: 'num' }, 'Target'),
                h('th', { scope: 'col', class: 'num' }, 'Final'), h('th', { scope: 'col', class: 'num' }, 'Progress'),
                h('th', { scope: 'col', class: 'num' }, 'Check-ins'))),
              h('tbody', {}, o.key_results.map((k) => {
                const moved = k.original_target !== k.target;
                return h('tr', { 'data-kr-id': k.id, class: moved ? 'moved' : '' },
                  h('th', { scope: 'row' }, h('a', { href: hashFor('kr', k.id) }, k.title)),
                  h('td', { class: 'num' }, formatNumber(k.start)),
                  h('td', { class: 'num' }, formatNumber(k.original_target)),
                  h('td', { class: 'num' }, formatNumber(k.target), moved ? h('span', { class: 'badge moved' }, 'moved') : ''),
                  h('td', { class: 'num' }, `${formatNumber(k.final)}${k.unit ? ` ${k.unit}` : ''}`),
                  h('td', { class: 'num' }, percent(k.progress)),
                  h('td', { class: 'num' }, String(k.check_ins)));
              }))))
          : h('p', { class: 'muted' }, 'No key results of its own: its score rolls up from the objectives aligned to it.')))),
    review.archived.length ? h('section', { 'aria-labelledby': 'archived-heading' },
      h('h2', { id: 'archived-heading' }, 'Archived objectives'),
      h('ul', {}, review.archived.map((a) => h('li', {}, `${a.title} (${nameOf(a.owner)})`)))) : '',
  );
}

function tally(label, value) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, String(value)));
}

// ---------- view: audit ----------

const EVENT_TYPES = [
  'unit.created', 'unit.renamed', 'unit.moved', 'unit.retired', 'unit.email_changed',
  'cycle.created', 'cycle.changed', 'cycle.closed', 'cycle.reopened', 'objective.created',
  'objective.retitled', 'objective.described', 'objective.owner_changed',
  'objective.alignment_set', 'objective.archived', 'objective.restored', 'objective.reviewed',
  'key_result.added', 'key_result.title_changed', 'key_result.start_changed',
  'key_result.target_changed', 'key_result.unit_changed', 'key_result.weight_changed',
  'key_result.owner_changed', 'key_result.metric_changed', 'key_result.removed',
  'check_in.recorded', 'check_in.corrected', 'comment.added',
];

async function auditView(r, alive) {
  setTitle('Audit');
  const token = getToken();
  const tokenInput = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', value: '',
    placeholder: token ? 'a token is set for this tab' : 'okr_…', 'aria-describedby': 'token-hint',
  });
  const form = h('form', { class: 'token-form', onsubmit: (e) => {
    e.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    setToken(value);
    eventsReadable = null;
    seqTimes.clear();
    tokenInput.value = '';
    route();
  } },
    h('div', { class: 'field grow' },
      h('label', { for: 'token' }, 'Bearer token'),
      tokenInput,
      h('span', { id: 'token-hint', class: 'hint' }, 'Kept in this browser tab only (sessionStorage) and sent only to this okrd. Audit reads need the auditor or admin role.')),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit' }, 'Use token'),
      token ? h('button', { type: 'button', id: 'forget-token', onclick: () => {
        setToken('');
        eventsReadable = null;
        route();
      } }, 'Forget token') : null));

  const root = main();
  root.replaceChildren(h('h1', {}, 'Audit'), form);
  if (!token) {
    root.append(h('p', {}, 'Paste a token to see the event timeline and the chain check.'));
    return;
  }

  const p = r.params;
  const filters = { actor: p.get('actor') || '', entity: p.get('entity') || '', type: p.get('type') || '' };
  const verifyBox = h('section', { id: 'verify', class: 'verify', 'aria-labelledby': 'verify-heading', 'aria-live': 'polite' },
    h('h2', { id: 'verify-heading' }, 'Chain'), h('p', {}, 'Verifying…'));
  const actor = h('input', { id: 'f-actor', name: 'actor', value: filters.actor, autocomplete: 'off' });
  const entity = h('input', { id: 'f-entity', name: 'entity', value: filters.entity, autocomplete: 'off' });
  const type = h('select', { id: 'f-type', name: 'type' },
    h('option', { value: '' }, 'any type'),
    EVENT_TYPES.map((t) => h('option', { value: t, selected: t === filters.type }, t)));
  const body = h('tbody');
  const more = h('button', { type: 'button', id: 'more-events', hidden: true }, 'Load more');
  const count = h('p', { class: 'summary', 'aria-live': 'polite' });
  root.append(
    verifyBox,
    h('section', { 'aria-labelledby': 'events-heading' },
      h('h2', { id: 'events-heading' }, 'Event timeline'),
      h('form', { class: 'controls filters', onsubmit: (e) => {
        e.preventDefault();
        location.hash = hashFor('audit', '', { actor: actor.value.trim(), entity: entity.value.trim(), type: type.value });
      } },
        h('div', { class: 'field' }, h('label', { for: 'f-actor' }, 'Actor'), actor),
        h('div', { class: 'field' }, h('label', { for: 'f-entity' }, 'Entity id'), entity),
        h('div', { class: 'field' }, h('label', { for: 'f-type' }, 'Type'), type),
        h('div', { class: 'field buttons' },
          h('button', { type: 'submit' }, 'Filter'),
          h('a', { class: 'button', href: '#/audit' }, 'Clear'))),
      count,
      h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', class: 'num' }, 'Seq'), h('th', { scope: 'col' }, 'Recorded'),
          h('th', { scope: 'col' }, 'Actor'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Entity'),
          h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Data'))),
        body)),
      more),
  );

  // The chain check and the first page in parallel.
  const verifying = get('v1/audit/verify').then((v) => {
    if (!alive()) return;
    verifyBox.replaceChildren(h('h2', { id: 'verify-heading' }, 'Chain'),
      h('p', { class: `chain ${v.ok ? 'ok' : 'broken'}`, 'data-ok': v.ok },
        h('strong', {}, v.ok ? 'Verified: the hash chain is intact.' : `Broken at seq ${v.first_bad_seq}: ${v.problem}`)),
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Events'), h('dd', {}, String(v.events))),
        h('div', {}, h('dt', {}, 'Head hash'), h('dd', {}, h('code', { class: 'hash' }, v.head_hash)))),
      h('button', { type: 'button', onclick: () => route() }, 'Verify again'));
  }).catch((err) => {
    if (!alive()) return;
    verifyBox.replaceChildren(h('h2', { id: 'verify-heading' }, 'Chain'), errorBox(err, 'Verifying the chain failed'));
  });

  let after = null;
  let shown = 0;
  const loadPage = async () => {
    more.disabled = true;
    try {
      const page = await get('v1/events', { ...filters, after, limit: 200 });
      eventsReadable = true;
      if (!alive()) return;
      for (const e of page.items) {
        seqTimes.set(e.seq, parseTime(e.recorded_at));
        body.append(h('tr', { 'data-seq': e.seq, 'data-type': e.type },
          h('td', { class: 'num' }, String(e.seq)),
          h('td', { class: 'nowrap' }, formatDateTime(parseTime(e.recorded_at))),
          h('td', {}, e.actor),
          h('td', {}, h('code', {}, e.type)),
          h('td', {}, e.type.startsWith('key_result.') ? h('a', { href: hashFor('kr', e.entity) }, e.entity) : e.entity),
          h('td', {}, e.reason || ''),
          h('td', {}, e.data ? h('details', {}, h('summary', {}, 'data'), h('pre', {}, JSON.stringify(e.data, null, 1))) : '')));
      }
      shown += page.items.length;
      after = page.next;
      more.hidden = !page.next;
      count.textContent = `${shown} event${shown === 1 ? '' : 's'}${page.next ? ' so far' : ''}${filters.actor || filters.entity || filters.type ? ' matching the filter' : ''} (head seq ${page.as_of_seq}).`;
    } catch (err) {
      if (!alive()) return;
      count.replaceChildren(errorBox(err, 'Reading the events failed'));
      eventsReadable = false;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', loadPage);
  await Promise.all([loadPage(), verifying]);
}

// ---------- start ----------

function start() {
  const skip = document.querySelector('.skip');
  if (skip) {
    skip.addEventListener('click', (e) => {
      e.preventDefault();
      const heading = main().querySelector('h1') || main();
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    });
  }
  window.addEventListener('hashchange', route);
  if (!location.hash || !location.hash.startsWith('#/')) {
    history.replaceState(null, '', '#/cascade');
  }
  route();
}

start();
