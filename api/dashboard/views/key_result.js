// The key result view (#/kr/ID?as_of=): one key result, its check-ins over
// its cycle as a chart and as a list, and where its goalposts moved.

import { ApiError, get, getAll, getToken } from '../api.js';
import { checkInChart, formatNumber } from '../chart.js';
import { h, main, setTitle } from '../dom.js';
import { formatDate, parseTime, percent } from '../format.js';
import { hashFor } from '../links.js';
import { cycleBounds } from '../cycles.js';
import { loadNames } from '../names.js';
import { eventsReadable, setEventsReadable, timeOfSeq } from '../event_log.js';
import { paceAtNow } from '../pace.js';
import { measure } from '../widgets.js';
import { followChanges, liveIndicator, throttle } from '../live.js';

// Draws the view for route `r`; `alive()` is false once the page moved on.
// At the latest state it follows the cycle's changes (live.js) and draws
// again, at most every 500 ms, when one touches this key result, its
// objective or its cycle.
export async function keyResultView(r, alive) {
  const asOfParam = r.params.get('as_of');
  const asOf = asOfParam !== null && asOfParam !== '' ? Number(asOfParam) : undefined;
  const live = asOf === undefined ? liveIndicator() : null;
  const k = await drawKeyResult(r.arg, asOf, alive, live);
  if (!k || !live) return;
  const refresh = throttle(async () => {
    if (!alive()) return;
    try {
      await drawKeyResult(r.arg, asOf, alive, live);
    } catch {
      // keep what is shown; the next change tries again
    }
  }, 500);
  const touched = new Set([k.kr.id, k.objective.id, k.cycle.id]);
  followChanges({
    cycle: k.cycle.id,
    after: k.kr.as_of_seq,
    onState: live.set,
    onChange: (change) => {
      if (alive() && touched.has(change.entity)) refresh();
    },
  });
}

// Reads key result `id` as of `asOf` and draws it, with the live indicator
// `live` (at the latest state) under its heading; returns what it read, or
// null when the page moved on meanwhile.
async function drawKeyResult(id, asOf, alive, live) {
  const k = await loadKeyResult(id, asOf);
  if (!alive()) return null;
  setTitle(k.kr.title);
  const atHead = asOf === undefined;
  const then = atHead ? Date.now() : await timeOfSeq(k.kr.as_of_seq);
  if (!alive()) return null;
  const now = Number.isFinite(then) ? then : Date.now();
  const chart = krChart(k, now);
  const checkIns = k.series.items;
  main().replaceChildren(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: hashFor('cascade', '', { cycle: k.cycle.id, as_of: atHead ? null : k.kr.as_of_seq }) }, `Cascade of ${k.cycle.name}`), ' › ',
      h('span', {}, k.objective.title)),
    h('h1', {}, k.kr.title),
    live && live.element,
    ...krHeader(k, atHead),
    h('div', { class: 'kr-detail' },
      chartPanel(k, chart),
      h('section', { class: 'side', 'aria-labelledby': 'checkins-heading' },
        h('h2', { id: 'checkins-heading' }, `Check-ins (${checkIns.length}), newest first`),
        checkIns.length ? checkInList(k, chart) : h('p', { class: 'muted' }, 'No check-ins yet.'))),
    comments(k),
  );
  return k;
}

// The key result `id` as of `asOf` (undefined: the latest), its objective,
// check-ins, cycle and goalpost changes, all at the key result's seq, and
// nameOf(unit id) → display name.
async function loadKeyResult(id, asOf) {
  // At the head pace is judged by now; in the past at that seq's time.
  const at = asOf === undefined ? paceAtNow() : undefined;
  const kr = await get(`v1/key-results/${encodeURIComponent(id)}`, { as_of: asOf, at });
  const [objective, series] = await Promise.all([
    get(`v1/objectives/${encodeURIComponent(kr.objective)}`, { as_of: kr.as_of_seq }),
    getAll(`v1/key-results/${encodeURIComponent(id)}/check-ins`, { as_of: kr.as_of_seq }),
  ]);
  const [cycle, names] = await Promise.all([
    get(`v1/cycles/${encodeURIComponent(objective.cycle)}`, { as_of: kr.as_of_seq }),
    loadNames(),
  ]);
  const changes = await goalpostChanges(kr, cycle, kr.as_of_seq);
  return { kr, objective, series, cycle, changes, nameOf: (unit) => names.get(unit) || unit };
}

// The owner and metric line, then the value against the target with progress.
function krHeader({ kr, objective, nameOf }, atHead) {
  return [
    h('p', { class: 'meta' },
      `Owner: ${nameOf(kr.owner)} · objective: ${objective.title} · ${kr.metric}${kr.unit ? ` in ${kr.unit}` : ''} · weight ${formatNumber(kr.weight)}`,
      atHead ? '' : ` · as of seq ${kr.as_of_seq}`),
    h('div', { class: 'kr-summary' },
      h('p', { class: 'big' },
        h('span', { class: 'current' }, formatNumber(kr.current)),
        h('span', { class: 'of' }, kr.unit ? ` ${kr.unit}` : ''),
        h('span', { class: 'muted' }, ` · target ${formatNumber(kr.target)} · started at ${formatNumber(kr.start)}`)),
      measure(kr.progress, kr.pace, `Progress of key result ${kr.title}`)),
  ];
}

// The check-ins chart, drawn at the width the panel has.
function krChart({ kr, cycle, series, changes }, now) {
  const checkIns = series.items;
  const last = checkIns[checkIns.length - 1];
  const description = checkIns.length
    ? `${checkIns.length} check-ins from ${formatDate(parseTime(checkIns[0].measured_at))} to ${formatDate(parseTime(last.measured_at))}; latest ${formatNumber(last.value)} ${kr.unit} against a target of ${formatNumber(kr.target)}${changes.length ? `; the goalposts moved ${changes.length} time${changes.length === 1 ? '' : 's'}` : ''}.`
    : `No check-ins yet; target ${formatNumber(kr.target)} ${kr.unit}.`;
  const { start, end } = cycleBounds(cycle);
  return checkInChart({
    title: `${kr.title}: check-ins over ${cycle.name}`,
    description,
    checkIns,
    start: kr.start,
    target: kr.target,
    unit: kr.unit,
    changes,
    cycleStart: start,
    cycleEnd: end,
    now,
    width: chartWidth(),
  });
}

// The chart panel's inner width: two thirds of the page, or all of it on a phone.
function chartWidth() {
  const page = main().clientWidth || 760;
  return page > 900 ? page * 0.64 - 40 : page - 40;
}

// The chart with its legend, and the goalposts moved under it.
function chartPanel({ changes, nameOf }, chart) {
  return h('section', { class: 'chart-panel', 'aria-labelledby': 'chart-heading' },
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
      : 'From the public diff of the cycle.'));
}

// Every check-in, newest first; pointing at one marks its point on `chart`.
function checkInList({ kr, series, nameOf }, chart) {
  const list = h('ol', { class: 'checkin-list', reversed: true, tabindex: 0, 'aria-labelledby': 'checkins-heading' },
    [...series.items].reverse().map((c) => h('li', { 'data-check-in': c.id },
      h('p', { class: 'ci-head' },
        h('strong', {}, formatDate(parseTime(c.measured_at))), ': ',
        h('span', { class: 'ci-value' }, `${formatNumber(c.value)}${kr.unit ? ` ${kr.unit}` : ''}`),
        c.confidence === null ? '' : h('span', { class: 'ci-confidence' }, ` · confidence ${percent(c.confidence)}`),
        c.status ? h('span', { class: `ci-status ${c.status}` }, ` · ${c.status.replace('_', ' ')}`) : ''),
      c.note ? h('p', { class: 'ci-note' }, c.note) : '',
      h('p', { class: 'ci-by muted' }, `by ${nameOf(c.actor)}`))));
  const highlight = (e, on) => {
    const li = e.target.closest('li[data-check-in]');
    if (!li) return;
    const point = chart.querySelector(`circle[data-check-in="${CSS.escape(li.dataset.checkIn)}"]`);
    if (point) point.classList.toggle('active', on);
  };
  list.addEventListener('mouseover', (e) => highlight(e, true));
  list.addEventListener('mouseout', (e) => highlight(e, false));
  return list;
}

function comments({ kr, nameOf }) {
  if (!kr.comments || !kr.comments.length) return '';
  return h('section', { class: 'comments', 'aria-labelledby': 'comments-heading' },
    h('h2', { id: 'comments-heading' }, 'Comments'),
    h('ul', {}, kr.comments.map((c) => h('li', {}, h('strong', {}, nameOf(c.author)),
      ` (${formatDate(parseTime(c.recorded_at))}): ${c.text}`))));
}

// Target and start changes of one key result up to seq `asOf`, oldest
// first, as {field, before, after, at (ms), actor, reason, seq}; the array's
// `source` says where they came from: its event history with an audit
// token, otherwise the public diff of its cycle.
async function goalpostChanges(kr, cycle, asOf) {
  if (getToken() && eventsReadable() !== false) {
    try {
      const out = await goalpostsFromHistory(kr, asOf);
      setEventsReadable(true);
      return out;
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) throw err;
      setEventsReadable(false);
    }
  }
  const diff = await get('v1/diff', { cycle: cycle.id, to: asOf });
  const out = diff.changed
    .filter((c) => c.entity === kr.id && (c.field === 'target' || c.field === 'start'))
    .map((c) => ({ field: c.field, before: c.before, after: c.after, at: parseTime(c.recorded_at), actor: c.actor, reason: c.reason, seq: c.seq }));
  out.source = 'diff';
  return out;
}

async function goalpostsFromHistory(kr, asOf) {
  const history = await get(`v1/history/${encodeURIComponent(kr.id)}`);
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
}
