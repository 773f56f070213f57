// The cascade's diff panel: what changed between the two marks on the time
// slider (GET /v1/diff?from=&to=&cycle=), listed under the slider.

import { get } from '../api.js';
import { errorBox, h } from '../dom.js';
import { formatDate, formatDateTime, parseTime, show } from '../format.js';
import { timeOfSeq } from '../event_log.js';
import { krHref, titleOf } from './cascade_tree.js';

// The panel for the cascade view's `state`: `box` to place, `load()` to
// read the marks' diff into state.diff (then `redraw()`, the cascade's), and
// `draw()` to draw state.diff again (when the titles it names change).
// `alive()` is false once the view is left.
export function diffPanel(state, { alive, redraw }) {
  const panel = {
    state, alive, redraw, loads: 0,
    box: h('section', { id: 'diff', class: 'diff', 'aria-labelledby': 'diff-heading', hidden: true }),
  };
  panel.load = () => loadDiff(panel);
  panel.draw = () => drawDiff(panel);
  return panel;
}

async function loadDiff(panel) {
  const { state, box } = panel;
  const my = ++panel.loads;
  if (state.from === null || state.to === null) {
    state.diff = null;
    box.hidden = true;
    panel.redraw();
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
    if (my !== panel.loads || !panel.alive()) return;
    state.diff = { ...diff, t0, t1 };
  } catch (err) {
    if (my !== panel.loads || !panel.alive()) return;
    state.diff = null;
    box.hidden = false;
    box.replaceChildren(h('h3', { id: 'diff-heading' }, 'Changes'), errorBox(err, 'Reading the changes failed'));
    return;
  }
  drawDiff(panel);
  panel.redraw();
}

function drawDiff(panel) {
  const d = panel.state.diff;
  if (!d) return;
  panel.box.hidden = false;
  const when = (t) => (Number.isFinite(t) ? ` (${formatDateTime(t)})` : '');
  const items = changeList(panel.state, d);
  const counts = [
    `${d.created.length} created`, `${d.changed.length} changed`, `${d.archived.length} archived`,
    `${d.check_ins.length} check-ins`, `${d.corrections.length} corrections`, `${d.comments.length} comments`,
  ].join(' · ');
  panel.box.replaceChildren(
    h('h3', { id: 'diff-heading' }, `Changes between seq ${d.from}${when(d.t0)} and seq ${d.to}${when(d.t1)}`),
    h('p', { class: 'counts' }, counts),
    items.children.length ? items : h('p', {}, 'No created, changed or archived objectives or key results in this range.'),
    h('p', { class: 'hint' }, 'Objectives and key results touched in this range are outlined and marked “changed” below.'),
  );
}

// Created, changed, archived and corrected entities of diff `d`, one item each.
function changeList(state, d) {
  const link = (id, kind) => entityLink(state, id, kind);
  const items = h('ul', { class: 'changes', tabindex: 0, 'aria-label': 'Changes in this range' });
  for (const c of d.created) {
    items.append(h('li', { 'data-change': 'created' }, h('strong', {}, 'Created '), `${c.kind.replace('_', ' ')} `, link(c.entity, c.kind), ` by ${c.actor}`));
  }
  for (const c of d.changed) {
    items.append(h('li', { 'data-change': 'changed', 'data-entity': c.entity, 'data-field': c.field },
      h('strong', {}, `${c.field} `), link(c.entity), `: ${show(c.before)} → ${show(c.after)}, by ${c.actor} on ${formatDate(parseTime(c.recorded_at))}`,
      c.reason ? ` — “${c.reason}”` : ''));
  }
  for (const c of d.archived) {
    items.append(h('li', { 'data-change': 'archived' }, h('strong', {}, 'Archived '), link(c.entity), ` by ${c.actor}`, c.reason ? ` — “${c.reason}”` : ''));
  }
  for (const c of d.corrections) {
    items.append(h('li', { 'data-change': 'correction' }, h('strong', {}, 'Corrected '), 'a check-in of ', link(c.key_result, 'key_result'),
      `: ${show(c.before)} → ${show(c.after)}`, c.reason ? ` — “${c.reason}”` : ''));
  }
  return items;
}

// A key result's title as a link to its view; anything else's as text.
function entityLink(state, id, kind) {
  if (kind === 'key_result' || (state.data && state.data.krIds && state.data.krIds.has(id))) {
    return h('a', { href: krHref(state, id) }, titleOf(state.data, id));
  }
  return h('span', { class: 'entity' }, titleOf(state.data, id));
}
