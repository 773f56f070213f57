// The review view (#/review/CYCLE): the end-of-cycle review of a cycle from
// GET /v1/cycles/{id}/review, printable, with Markdown and CSV downloads.

import { download, get } from '../api.js';
import { formatNumber } from '../chart.js';
import { errorBox, h, main, setTitle } from '../dom.js';
import { formatDate, parseTime, percent } from '../format.js';
import { hashFor } from '../links.js';
import { cycleBounds, cycleSelect, defaultCycle, loadCycles } from '../cycles.js';
import { loadNames } from '../names.js';

const OUTCOME_LABEL = { achieved: 'Achieved', partially: 'Partially achieved', missed: 'Missed' };

// Draws the view for route `r`; `alive()` is false once the page moved on.
// Without a known cycle in the address it goes, through nav.redirect, to the
// latest closed cycle (or the default one).
export async function reviewView(r, alive, nav) {
  const cycles = await loadCycles();
  if (!alive()) return;
  const id = r.arg;
  if (!id || !cycles.some((c) => c.id === id)) {
    const fallback = fallbackCycle(cycles);
    if (!id && fallback) {
      nav.redirect(hashFor('review', fallback));
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
    goalpostsSection(review, nameOf),
    h('section', { 'aria-labelledby': 'objectives-heading' },
      h('h2', { id: 'objectives-heading' }, `Objectives (${review.objectives.length})`),
      review.objectives.map((o) => objectiveArticle(o, nameOf))),
    review.archived.length ? h('section', { 'aria-labelledby': 'archived-heading' },
      h('h2', { id: 'archived-heading' }, 'Archived objectives'),
      h('ul', {}, review.archived.map((a) => h('li', {}, `${a.title} (${nameOf(a.owner)})`)))) : '',
  );
}

// The latest cycle to end of the closed ones, else the default cycle.
function fallbackCycle(cycles) {
  const closed = cycles.filter((c) => c.state === 'closed').sort((a, b) => cycleBounds(b).end - cycleBounds(a).end);
  return closed.length ? closed[0].id : defaultCycle(cycles);
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

function tally(label, value) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, String(value)));
}

// A header row of `columns`: [text, numeric?].
function headRow(columns) {
  return h('thead', {}, h('tr', {},
    columns.map(([text, num]) => h('th', { scope: 'col', class: num ? 'num' : undefined }, text))));
}

// The targets and starts moved after the cycle began, in a table of their own.
function goalpostsSection(review, nameOf) {
  const goalposts = review.moved_goalposts;
  const krTitles = new Map();
  for (const o of review.objectives) for (const k of o.key_results) krTitles.set(k.id, k.title);
  return h('section', { class: 'goalposts-section', 'aria-labelledby': 'goalposts-heading' },
    h('h2', { id: 'goalposts-heading' }, `Moved goalposts (${goalposts.length})`),
    h('p', { class: 'hint' }, 'Targets and starts changed after the cycle began.'),
    goalposts.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'goalposts' },
          headRow([['Key result'], ['Field'], ['Before', true], ['After', true], ['By'], ['When'], ['Reason']]),
          h('tbody', {}, goalposts.map((g) => h('tr', { 'data-key-result': g.key_result, 'data-field': g.field },
            h('th', { scope: 'row' }, h('a', { href: hashFor('kr', g.key_result) }, krTitles.get(g.key_result) || g.key_result)),
            h('td', {}, g.field),
            h('td', { class: 'num' }, formatNumber(g.before)),
            h('td', { class: 'num' }, formatNumber(g.after)),
            h('td', {}, nameOf(g.actor)),
            h('td', {}, formatDate(parseTime(g.recorded_at))),
            h('td', {}, g.reason || '–'))))))
      : h('p', {}, 'None: no target or start changed after the cycle began.'));
}

// One objective: scores, outcome, reflection, lessons and its key results.
function objectiveArticle(o, nameOf) {
  return h('article', { class: 'review-objective', 'data-objective-id': o.id },
    h('h3', {}, o.title),
    h('p', { class: 'meta' }, `Owner: ${nameOf(o.owner)}`,
      ' · computed score ', h('strong', {}, percent(o.computed_score)),
      ' · reviewed score ', h('strong', {}, o.score === null ? '–' : percent(o.score)),
      ' · ', h('span', { class: `outcome ${o.outcome || 'unreviewed'}` }, o.outcome ? OUTCOME_LABEL[o.outcome] || o.outcome : 'Not reviewed'),
      o.reviewed_by ? ` by ${nameOf(o.reviewed_by)}` : ''),
    o.reflection ? h('p', {}, h('strong', {}, 'Reflection: '), o.reflection) : null,
    o.lessons ? h('p', {}, h('strong', {}, 'Lessons: '), o.lessons) : null,
    o.key_results.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'review-krs' },
          h('caption', { class: 'sr-only' }, `Key results of ${o.title}`),
          headRow([['Key result'], ['Start', true], ['Original target', true], ['Target', true], ['Final', true], ['Progress', true], ['Check-ins', true]]),
          h('tbody', {}, o.key_results.map(krRow))))
      : h('p', { class: 'muted' }, 'No key results of its own: its score rolls up from the objectives aligned to it.'));
}

function krRow(k) {
  const moved = k.original_target !== k.target;
  return h('tr', { 'data-kr-id': k.id, class: moved ? 'moved' : '' },
    h('th', { scope: 'row' }, h('a', { href: hashFor('kr', k.id) }, k.title)),
    h('td', { class: 'num' }, formatNumber(k.start)),
    h('td', { class: 'num' }, formatNumber(k.original_target)),
    h('td', { class: 'num' }, formatNumber(k.target), moved ? h('span', { class: 'badge moved' }, 'moved') : ''),
    h('td', { class: 'num' }, `${formatNumber(k.final)}${k.unit ? ` ${k.unit}` : ''}`),
    h('td', { class: 'num' }, percent(k.progress)),
    h('td', { class: 'num' }, String(k.check_ins)));
}
