// The cascade's search: okrd finds the objectives (GET /v1/objectives?q=,
// docs/API.md "Searching objectives") at the seq the tree shows, a page at
// a time, so searching works the same on a small organisation and on one
// of 50,000 objectives whose units are not loaded.

import { get } from '../api.js';
import { announce, errorBox, h } from '../dom.js';
import { renderObjective, rowContext } from './cascade_tree.js';

// Matches per page: few enough to draw at once, and to name their owners.
export const SEARCH_PAGE = 25;

// Reads at most this many owners' names at the same time.
const PARALLEL = 4;

// Starts the search for state.q at the seq of state.data, replacing the
// last one; redraws as pages arrive. Only the latest search draws.
export function runSearch(state, redraw) {
  const { data } = state;
  if (!state.q || !data || data.missing) {
    state.search = null;
    return;
  }
  state.search = { q: state.q, seq: data.seq, items: [], next: null, loading: true, error: null };
  readPage(state, state.search, null, redraw);
}

// Reads the SEARCH_PAGE matches after `cursor` into `search` (the state's
// current one), with the names of the owners they show. okrd looks at a
// bounded number of objectives per request, so one page of matches may
// take a few requests, each a short page with a `next`.
async function readPage(state, search, cursor, redraw) {
  const { data } = state;
  search.loading = true;
  search.error = null;
  try {
    let items = [];
    let next = cursor;
    do {
      // The cursor pins the same seq as the tree's as_of, which it agrees with.
      const page = await get('v1/objectives', { ...data.pin, q: search.q, limit: SEARCH_PAGE - items.length, cursor: next });
      console.assert(page.as_of_seq === search.seq, 'search pages are read at the tree\'s seq');
      items = items.concat(page.items);
      next = page.next;
    } while (next && items.length < SEARCH_PAGE && state.search === search);
    await nameOwners(state, items, search.seq);
    search.items = search.items.concat(items);
    search.next = next;
  } catch (err) {
    search.error = err;
  } finally {
    search.loading = false;
  }
  if (state.search === search && state.data === data) redraw();
}

// Reads the names of `items`' owners that neither the tree nor an earlier
// page named, into state.ownerNames; a name that cannot be read shows the id.
async function nameOwners(state, items, seq) {
  const unknown = [...new Set(items.map((o) => o.owner))]
    .filter((id) => !state.data.names.has(id) && !state.ownerNames.has(id));
  let i = 0;
  const worker = async () => {
    while (i < unknown.length) {
      const id = unknown[i++];
      const unit = await get(`v1/units/${encodeURIComponent(id)}`, { as_of: seq }).catch(() => null);
      state.ownerNames.set(id, unit ? unit.name : id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, unknown.length) }, worker));
}

// Draws the search's matches into `tree` and what they are into `summary`,
// with "More results" while okrd has more.
export function drawResults(tree, summary, state, redraw) {
  const { search, data } = state;
  tree.dataset.asOf = String(data.seq);
  tree.dataset.cycle = state.cycle;
  const ctx = rowContext(state);
  const more = search.next && !search.loading
    ? h('button', { type: 'button', id: 'search-more', onclick: () => readPage(state, search, search.next, redraw) }, 'More results')
    : null;
  tree.replaceChildren(...[
    search.items.length
      ? h('ul', { class: 'objectives search-results', 'data-q': search.q }, search.items.map((o) => renderObjective(ctx, o, 2)))
      : null,
    !search.items.length && !search.loading && !search.error ? h('p', { class: 'empty' }, `No objective matches “${search.q}”.`) : null,
    search.loading ? h('p', { class: 'loading', role: 'status' }, 'Searching…') : null,
    search.error ? errorBox(search.error, 'Searching failed') : null,
    more,
  ].filter(Boolean)); // replaceChildren would write a null out as text
  const n = search.items.length;
  summary.textContent = `${n}${search.next ? '+' : ''} objective${n === 1 ? '' : 's'} in ${data.cycle.name} `
    + `match “${search.q}” at seq ${data.seq}${search.next ? ' (more below)' : ''}.`;
  if (!search.loading) announce(summary.textContent);
}
