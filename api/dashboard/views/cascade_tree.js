// The cascade's tree: units, each unit's objectives, each objective's key
// results, with progress, status and the changes between the marks. Drawn
// from the cascade view's state (views/cascade.js); the search's matches
// (views/cascade_search.js) are drawn with the same rows.

import { formatNumber } from '../chart.js';
import { announce, errorBox, h, nextId } from '../dom.js';
import { formatDate, parseTime, percent, show } from '../format.js';
import { hashFor } from '../links.js';
import { cycleBounds } from '../cycles.js';
import { STATUS } from '../pace.js';
import { measure } from '../widgets.js';
import { totalObjectives, unloadedUnits } from './cascade_load.js';

// The title of an objective or key result in the shown cascade, else its id.
export function titleOf(data, id) {
  return (data && data.titles && data.titles.get(id)) || id;
}

// The address of a key result's view at the seq the cascade shows.
export function krHref(state, id) {
  return hashFor('kr', id, { as_of: state.asOf === state.head ? null : state.asOf });
}

// What changed per entity between the marks, in words.
function changesByEntity(d) {
  const out = new Map();
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

// Draws state.data (the last cascade read) into `tree`, and the line above
// it into `summary`.
export function drawTree(tree, summary, state) {
  const data = state.data;
  if (!data) return;
  tree.dataset.asOf = String(data.seq);
  tree.dataset.cycle = state.cycle;
  if (data.missing) {
    tree.replaceChildren(h('p', { class: 'empty' }, `The cycle ${state.cycle} did not exist yet at seq ${data.seq}. Move the slider later.`));
    summary.textContent = '';
    return;
  }
  console.assert(data.names && data.titles, 'a cascade is indexed when it is read');
  // Drawing replaces every row: the focused toggle is focused again after.
  const focused = tree.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const ctx = rowContext(state);
  const top = data.cascade.nodes.map((n) => renderUnit(ctx, n, 0)).filter(Boolean);
  if (!top.length) {
    tree.replaceChildren(h('p', { class: 'empty' }, 'No objectives in this cycle at this point.'));
  } else {
    tree.replaceChildren(h('ul', { class: 'units root' }, top));
  }
  if (focused) tree.querySelector(`button.toggle[data-key="${CSS.escape(focused)}"]`)?.focus();
  drawSummary(summary, state, ctx.shown);
  announce(`${ctx.shown} objectives shown at seq ${data.seq}`);
}

// What every row needs: the changes and the owners' names (pace comes
// with each row from okrd).
export function rowContext(state) {
  const { data } = state;
  const ownerName = (id) => data.names.get(id) || state.ownerNames.get(id) || id;
  return {
    state,
    changes: changesByEntity(state.diff),
    ownerName,
    shown: 0, // objectives drawn so far
  };
}

// A unit with its objectives and its sub-units; null when its subtree has
// none. A unit whose sub-units are not loaded yet (`children: null`) is
// drawn closed: opening it loads them (views/cascade_load.js).
function renderUnit(ctx, node, depth) {
  const { objectives } = node;
  const loaded = node.children !== null;
  const children = loaded ? node.children.map((c) => renderUnit(ctx, c, depth + 1)).filter(Boolean) : [];
  const waiting = !loaded && node.objective_count > 0;
  if (!objectives.length && !children.length && !waiting) return null;
  ctx.shown += objectives.length;
  const key = `unit:${node.unit.id}`;
  const bodyId = nextId('unit-body');
  // Not loaded: open only while its sub-units come, or to show why not.
  const open = !ctx.state.collapsed.has(key) && (loaded || Boolean(node.loading || node.error));
  const level = Math.min(6, 2 + depth);
  const toggle = h('button', {
    type: 'button', class: 'toggle', 'aria-expanded': open, 'aria-controls': bodyId, 'data-key': key,
    'data-load': loaded ? null : node.unit.id,
  },
    h('span', { class: 'chevron', 'aria-hidden': 'true' }),
    h('span', { class: 'unit-name' }, node.unit.name),
    h('span', { class: 'kind' }, ` ${node.unit.kind}`));
  return h('li', { class: `unit depth-${Math.min(depth, 4)}`, 'data-unit-id': node.unit.id, 'data-loaded': loaded },
    h('div', { class: 'unit-head' },
      h(`h${level}`, { class: 'unit-title' }, toggle),
      h('span', { class: 'count' }, `${node.objective_count} objective${node.objective_count === 1 ? '' : 's'}`),
      measure(node.progress, node.pace, `Progress of ${node.unit.name}`, 'rollup')),
    h('div', { class: 'unit-body', id: bodyId, hidden: !open, 'aria-busy': node.loading ? 'true' : null },
      objectives.length ? h('ul', { class: 'objectives' }, objectives.map((o) => renderObjective(ctx, o, level + 1))) : null,
      children.length ? h('ul', { class: 'units' }, children) : null,
      loaded ? null : pendingNote(node)));
}

// What stands for a unit's sub-units before they are loaded.
function pendingNote(node) {
  if (node.loading) return h('p', { class: 'loading', role: 'status' }, `Loading the units under ${node.unit.name}…`);
  if (node.error) return errorBox(node.error, `Reading the units under ${node.unit.name} failed (close and open it to try again)`);
  return null;
}

// An objective with its key results, a heading of `level`.
export function renderObjective(ctx, o, level) {
  const key = `objective:${o.id}`;
  const open = !ctx.state.collapsed.has(key);
  const krsId = nextId('krs');
  const own = ctx.changes.get(o.id);
  const krChanged = o.key_results.some((k) => ctx.changes.has(k.id));
  const { pace } = o;
  const toggle = h('button', { type: 'button', class: 'toggle', 'aria-expanded': open, 'aria-controls': krsId, 'data-key': key },
    h('span', { class: 'chevron', 'aria-hidden': 'true' }),
    h('span', { class: 'objective-title' }, o.title));
  return h('li', {
    class: `objective ${STATUS[pace.status].key}${own ? ' changed' : ''}${krChanged ? ' has-changes' : ''}`,
    'data-objective-id': o.id,
  },
    h('div', { class: 'objective-head' },
      h(`h${Math.min(6, level)}`, { class: 'objective-heading' }, toggle),
      h('p', { class: 'meta' },
        h('span', { class: 'owner', 'data-owner': o.owner }, `Owner: ${ctx.ownerName(o.owner)}`),
        o.parents.length ? h('span', { class: 'aligns' }, ` · aligns to ${o.parents.map((id) => titleOf(ctx.state.data, id)).join(', ')}`) : null,
        own ? h('span', { class: 'badge changed', title: own.join('; ') }, `changed: ${own.join('; ')}`) : null),
      measure(o.progress, pace, `Progress of objective ${o.title}`)),
    h('div', { id: krsId, class: 'krs-wrap', hidden: !open },
      o.key_results.length
        ? h('ul', { class: 'krs' }, o.key_results.map((k) => renderKr(ctx, k)))
        : h('p', { class: 'muted rollup-note' }, 'No key results of its own: its progress is the average of the objectives aligned to it.')));
}

function renderKr(ctx, k) {
  const changed = ctx.changes.get(k.id);
  return h('li', { class: `kr${changed ? ' changed' : ''}`, 'data-kr-id': k.id, 'data-target': k.target, 'data-current': k.current },
    h('div', { class: 'kr-main' },
      h('a', { class: 'kr-title', href: krHref(ctx.state, k.id) }, k.title),
      h('span', { class: 'owner', 'data-owner': k.owner }, ctx.ownerName(k.owner)),
      changed ? h('span', { class: 'badge changed' }, `changed: ${changed.join('; ')}`) : null),
    h('div', { class: 'kr-value' },
      h('span', { class: 'current' }, formatNumber(k.current)),
      k.unit ? ` ${k.unit}` : '',
      h('span', { class: 'muted' }, ' · target '),
      h('span', { class: 'target' }, formatNumber(k.target)),
      h('span', { class: 'checkins muted' }, ` · ${k.check_in_count} check-in${k.check_in_count === 1 ? '' : 's'}`)),
    measure(k.progress, k.pace, `Progress of key result ${k.title}`));
}

// "Q3 (2026-07-01 – 2026-09-30, open): 7 objectives shown. 48% of the cycle
// had passed on 2 Sept 2026."
function drawSummary(summary, state, shown) {
  const { data } = state;
  const { expected } = data.cascade.pace;
  const at = parseTime(data.cascade.pace.at);
  const { start, end } = cycleBounds(data.cycle);
  summary.replaceChildren(
    h('strong', {}, `${data.cycle.name}`),
    ` (${data.cycle.starts} – ${data.cycle.ends}, ${data.cycle.state}): ${shown} objective${shown === 1 ? '' : 's'} shown`,
    `. ${percent(expected)} of the cycle had passed on ${formatDate(Math.min(Math.max(at, start), end - 1))}.`,
    partialNote(state),
  );
}

// Says the tree is not all loaded, when it is not.
function partialNote(state) {
  const { data } = state;
  const waiting = unloadedUnits(data).length;
  if (!waiting) return '';
  const total = totalObjectives(data.cascade);
  return h('span', { class: 'partial', 'data-unloaded': waiting },
    ` ${total} objective${total === 1 ? '' : 's'} in all; units are loaded as you open them.`);
}

// Opens or closes the body a toggle button controls.
export function setExpanded(button, open) {
  button.setAttribute('aria-expanded', String(open));
  const body = document.getElementById(button.getAttribute('aria-controls'));
  if (body) body.hidden = !open;
}

// Opens (or closes) every unit and objective in `tree`, remembering it in
// `collapsed` (keys of closed rows) for the next drawing. Units whose
// sub-units are not loaded stay closed: opening them is a read.
export function expandAll(tree, collapsed, open) {
  if (open) collapsed.clear();
  for (const button of tree.querySelectorAll('button.toggle')) {
    if (open && button.dataset.load) continue;
    if (!open) collapsed.add(button.dataset.key);
    setExpanded(button, open);
  }
}

// One listener on `tree` for every toggle, present and future; opening a
// unit whose sub-units are not loaded yet calls onLoad(unit id).
export function toggleOnClick(tree, collapsed, onLoad) {
  tree.addEventListener('click', (e) => {
    const button = e.target.closest('button.toggle');
    if (!button) return;
    const open = button.getAttribute('aria-expanded') !== 'true';
    if (open) collapsed.delete(button.dataset.key);
    else collapsed.add(button.dataset.key);
    setExpanded(button, open);
    if (open && button.dataset.load) onLoad(button.dataset.load);
  });
}
