// Cycles: their bounds, the list, the one shown by default, and the picker.

import { getAll } from './api.js';
import { h, nextId } from './dom.js';

const DAY_MS = 86_400_000;

// A cycle's span in ms: from 00:00 UTC of `starts` to 00:00 UTC of the day
// after `ends` (the end date is inclusive), as okrd counts it.
export function cycleBounds(cycle) {
  const start = Date.parse(`${cycle.starts}T00:00:00Z`);
  const end = Date.parse(`${cycle.ends}T00:00:00Z`) + DAY_MS; // the end date is inclusive
  return { start, end };
}

// Every cycle, as of seq `asOf` (default: the latest).
export async function loadCycles(asOf) {
  const { items } = await getAll('v1/cycles', { as_of: asOf });
  return items;
}

// The open cycle containing today, shortest first (a quarter over its
// year); otherwise the latest to start.
export function defaultCycle(cycles, now = Date.now()) {
  const span = (c) => cycleBounds(c).end - cycleBounds(c).start;
  const current = cycles
    .filter((c) => c.state === 'open' && cycleBounds(c).start <= now && now < cycleBounds(c).end)
    .sort((a, b) => span(a) - span(b));
  if (current.length) return current[0].id;
  const sorted = [...cycles].sort((a, b) => cycleBounds(b).start - cycleBounds(a).start);
  return sorted.length ? sorted[0].id : '';
}

// A labelled <select> of `cycles`, latest first, calling onChange(id).
export function cycleSelect(cycles, selected, onChange, id = nextId('cycle')) {
  const select = h('select', { id, name: 'cycle' });
  const sorted = [...cycles].sort((a, b) => cycleBounds(b).start - cycleBounds(a).start || a.id.localeCompare(b.id));
  for (const c of sorted) {
    select.append(h('option', { value: c.id, selected: c.id === selected }, `${c.name} (${c.starts} – ${c.ends}, ${c.state})`));
  }
  select.addEventListener('change', () => onChange(select.value));
  return h('div', { class: 'field' }, h('label', { for: id }, 'Cycle'), select);
}
