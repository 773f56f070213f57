// The cascade view (#/cascade?cycle=&as_of=&from=&to=&q=): a cycle's units,
// objectives and key results as of any seq, with the time slider
// (views/cascade_slider.js), the changes between two marks
// (views/cascade_diff.js), the tree itself (views/cascade_tree.js), read
// a part at a time (views/cascade_load.js), and okrd's search
// (views/cascade_search.js). It follows the cycle's changes (live.js): at
// the latest state it reads again as they come; in the past it stays put
// and the slider reaches the new head.

import { headSeq } from '../api.js';
import { debounce, errorBox, h, main, setTitle } from '../dom.js';
import { replaceHash } from '../links.js';
import { cycleSelect, defaultCycle, loadCycles } from '../cycles.js';
import { paceAtNow } from '../pace.js';
import { legend } from '../widgets.js';
import { followChanges, liveIndicator, throttle } from '../live.js';
import { clampSeq, timeSlider } from './cascade_slider.js';
import { diffPanel } from './cascade_diff.js';
import { drawTree, expandAll, toggleOnClick } from './cascade_tree.js';
import { EXPAND_CAP, loadLevels, loadUnit, readCascade, unloadedUnits } from './cascade_load.js';
import { drawResults, runSearch } from './cascade_search.js';

// Draws the view for route `r`; `alive()` is false once the page moved on.
export async function cascadeView(r, alive) {
  const [cycles, head] = await Promise.all([loadCycles(), headSeq()]);
  if (!alive()) return;
  const state = initialState(cycles, head, r.params);
  setTitle('Cascade');
  const tree = h('div', { id: 'cascade-tree', class: 'cascade' });
  const summary = h('p', { id: 'cascade-summary', class: 'summary' });
  const status = h('p', { id: 'cascade-status', class: 'hint', role: 'status' });
  const syncHash = () => replaceHash('cascade', '', {
    cycle: state.cycle,
    as_of: state.asOf === state.head ? null : state.asOf,
    from: state.from,
    to: state.to,
    q: state.q,
  });
  // The diff is drawn again with the tree: its titles are the cascade's.
  // While a search is on, its matches stand in for the tree.
  const redraw = () => {
    if (state.data && !state.data.missing && state.diff) diff.draw();
    if (state.search) drawResults(tree, summary, state, redraw);
    else drawTree(tree, summary, state);
  };
  const diff = diffPanel(state, { alive, redraw });
  const live = liveFeed(state, alive);
  const reload = () => {
    status.textContent = ''; // it spoke of the tree read before
    live.shown();
    return loadCascade(state, tree, { alive, redraw, loadDiff: diff.load, search: () => runSearch(state, redraw) });
  };
  const onExpandAll = () => expandEverything(state, { tree, status, alive, redraw });
  const slider = timeSlider(state, { onSeq: reload, onMarks: diff.load, syncHash, diffBox: diff.box, note: live.note });
  live.slider = slider;
  const onCycle = (id) => {
    state.cycle = id;
    state.diff = null;
    syncHash();
    reload();
    live.follow();
  };
  const onSearch = (q) => {
    state.q = q;
    syncHash();
    runSearch(state, redraw);
    if (state.data) redraw();
  };
  main().replaceChildren(
    h('h1', {}, 'Cascade'),
    live.indicator,
    controls(state, tree, { onCycle, onSearch, onExpandAll }),
    slider.section,
    legend(),
    summary,
    status,
    tree,
  );
  toggleOnClick(tree, state.collapsed, (id) => openUnit(state, id, { alive, redraw }));
  slider.start();
  await reload();
  if (alive()) live.follow();
  if (state.from !== null && state.to !== null) await diff.load();
}

// Follows the changes of the cycle shown (live.js) after the head the view
// knows. At the latest state a change reads the cascade again, at most
// every 500 ms, by the slider's own "Latest"; in the past the view stays
// and the slider's range grows to the new head, with a note counting the
// changes recorded since. `slider` is set once the slider exists.
function liveFeed(state, alive) {
  const indicator = liveIndicator();
  const note = h('p', { id: 'live-new', class: 'hint live-new', hidden: true });
  let newest = state.head; // the latest seq okrd told of
  let unseen = 0; // changes recorded while the view showed the past
  const feed = { indicator: indicator.element, note, slider: null };
  const showUnseen = () => {
    note.hidden = unseen === 0;
    note.dataset.count = String(unseen);
    note.textContent = unseen === 1
      ? '1 new change recorded since; “Latest” shows it.'
      : `${unseen} new changes recorded since; “Latest” shows them.`;
  };
  const refresh = throttle(() => {
    if (!alive() || !feed.slider) return;
    if (state.asOf === state.head) feed.slider.latest();
    else {
      feed.slider.grow(newest);
      showUnseen();
    }
  }, 500);
  feed.follow = () => {
    newest = Math.max(newest, state.head);
    followChanges({
      cycle: state.cycle || undefined,
      after: newest,
      onState: indicator.set,
      onChange: (change) => {
        if (!alive() || !(change.seq > newest)) return;
        newest = change.seq;
        if (state.asOf !== state.head) unseen++;
        refresh();
      },
    });
  };
  // The view read again: at the latest state nothing is unseen any more.
  feed.shown = () => {
    if (state.asOf === state.head && unseen) {
      unseen = 0;
      showUnseen();
    }
  };
  return feed;
}

// The view's state from the address's parameters.
function initialState(cycles, head, p) {
  return {
    cycles,
    head,
    cycle: p.get('cycle') && cycles.some((c) => c.id === p.get('cycle')) ? p.get('cycle') : defaultCycle(cycles),
    asOf: p.has('as_of') ? clampSeq(Number(p.get('as_of')), head) : head,
    from: p.has('from') ? clampSeq(Number(p.get('from')), head) : null,
    to: p.has('to') ? clampSeq(Number(p.get('to')), head) : null,
    q: p.get('q') || '',
    collapsed: new Set(), // keys of the units and objectives shown closed
    opened: new Set(), // ids of the units whose sub-units were loaded: read again with the tree
    data: null, // the last read (views/cascade_load.js readCascade) with its cycle, or {missing, seq}
    search: null, // okrd's matches for q at data's seq (views/cascade_search.js), while q is set
    ownerNames: new Map(), // names of owners the search showed outside the loaded units
    diff: null, // the marks' diff, with t0 and t1 their recorded times
    load: 0, // counts cascade reads: only the latest one draws
  };
}

// The cycle picker, the search and "Expand all" / "Collapse all".
function controls(state, tree, { onCycle, onSearch, onExpandAll }) {
  const search = h('input', {
    id: 'search', type: 'search', value: state.q, autocomplete: 'off', placeholder: 'title or owner',
    'aria-describedby': 'search-hint', maxlength: 200,
  });
  // Each pause asks okrd: typing a word is one search, not one per key.
  search.addEventListener('input', debounce(() => onSearch(search.value.trim()), 250));
  return h('form', { class: 'controls', role: 'search', onsubmit: (e) => e.preventDefault() },
    cycleSelect(state.cycles, state.cycle, onCycle, 'cycle'),
    h('div', { class: 'field grow' },
      h('label', { for: 'search' }, 'Search'),
      search,
      h('span', { id: 'search-hint', class: 'hint' }, 'Words of an objective\'s or key result\'s title, or of its owner, in the whole cycle')),
    h('div', { class: 'field buttons' },
      h('button', { type: 'button', id: 'expand-all', onclick: onExpandAll }, 'Expand all'),
      h('button', { type: 'button', onclick: () => expandAll(tree, state.collapsed, false) }, 'Collapse all')));
}

// Reads the cascade of state.cycle as of state.asOf into state.data and
// redraws; says so when the cycle did not exist yet at that seq. Only the
// latest of overlapping reads draws.
async function loadCascade(state, tree, { alive, redraw, loadDiff, search }) {
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
      state.search = null;
      redraw();
      return;
    }
    // At the head pace is judged by now; in the past at that seq's time.
    const at = atHead ? paceAtNow() : undefined;
    const data = await readCascade({ cycle: state.cycle, seq, at }, state.opened);
    if (my !== state.load || !alive()) return;
    state.data = { ...data, cycle };
    search(); // at the new seq
    redraw();
    if (state.from !== null && state.to !== null && !state.diff) loadDiff();
  } catch (err) {
    if (my !== state.load || !alive()) return;
    tree.replaceChildren(errorBox(err, 'Reading the cascade failed'));
  } finally {
    if (my === state.load) tree.removeAttribute('aria-busy');
  }
}

// Opens unit `id`, whose sub-units are not loaded: reads them (at the seq
// the tree shows), saying so in the unit meanwhile, and draws them in; an
// error stays in the unit until it is opened again.
async function openUnit(state, id, { alive, redraw }) {
  const { data } = state;
  const node = data && data.units && data.units.get(id);
  if (!node || node.children !== null || node.loading) return;
  node.loading = true;
  node.error = null;
  redraw();
  try {
    await loadUnit(data, node);
    state.opened.add(id);
  } catch (err) {
    node.error = err;
  } finally {
    node.loading = false;
  }
  if (alive() && state.data === data) redraw();
}

// "Expand all": loads the units not loaded yet, a level at a time, until
// EXPAND_CAP rows are loaded (saying so when it stops there), then opens
// every row loaded.
async function expandEverything(state, { tree, status, alive, redraw }) {
  const { data } = state;
  if (!data || data.missing) return;
  state.collapsed.clear();
  const current = () => alive() && state.data === data;
  if (unloadedUnits(data).length) {
    status.textContent = 'Loading the units below…';
    try {
      const capped = await loadLevels(data, {
        want: () => true, cap: EXPAND_CAP, opened: state.opened, onLevel: () => current() && redraw(),
      });
      if (!current()) return;
      status.textContent = capped
        ? `Stopped loading at ${data.rows} units and objectives (the cap is ${EXPAND_CAP}), so the page stays quick: `
          + `${unloadedUnits(data).length} units are not loaded yet; open them one at a time.`
        : '';
    } catch (err) {
      if (current()) status.replaceChildren(errorBox(err, 'Loading the units below failed'));
    }
  }
  if (current()) expandAll(tree, state.collapsed, true);
}
