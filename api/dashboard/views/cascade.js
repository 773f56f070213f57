// The cascade view (#/cascade?cycle=&as_of=&from=&to=&q=): a cycle's units,
// objectives and key results as of any seq, with search, the time slider
// (views/cascade_slider.js), the changes between two marks
// (views/cascade_diff.js) and the tree itself (views/cascade_tree.js).

import { get, headSeq } from '../api.js';
import { debounce, errorBox, h, main, setTitle } from '../dom.js';
import { replaceHash } from '../links.js';
import { cycleSelect, defaultCycle, loadCycles } from '../cycles.js';
import { paceAtNow } from '../pace.js';
import { legend } from '../widgets.js';
import { clampSeq, timeSlider } from './cascade_slider.js';
import { diffPanel } from './cascade_diff.js';
import { drawTree, expandAll, indexCascade, toggleOnClick } from './cascade_tree.js';

// Draws the view for route `r`; `alive()` is false once the page moved on.
export async function cascadeView(r, alive) {
  const [cycles, head] = await Promise.all([loadCycles(), headSeq()]);
  if (!alive()) return;
  const state = initialState(cycles, head, r.params);
  setTitle('Cascade');
  const tree = h('div', { id: 'cascade-tree', class: 'cascade' });
  const summary = h('p', { id: 'cascade-summary', class: 'summary' });
  const syncHash = () => replaceHash('cascade', '', {
    cycle: state.cycle,
    as_of: state.asOf === state.head ? null : state.asOf,
    from: state.from,
    to: state.to,
    q: state.q,
  });
  // The diff is drawn again with the tree: its titles are the cascade's.
  const redraw = () => {
    if (state.data && !state.data.missing && state.diff) diff.draw();
    drawTree(tree, summary, state);
  };
  const diff = diffPanel(state, { alive, redraw });
  const reload = () => loadCascade(state, tree, { alive, redraw, loadDiff: diff.load });
  const slider = timeSlider(state, { onSeq: reload, onMarks: diff.load, syncHash, diffBox: diff.box });
  const onCycle = (id) => {
    state.cycle = id;
    state.diff = null;
    syncHash();
    reload();
  };
  const onSearch = (q) => {
    state.q = q;
    syncHash();
    redraw();
  };
  main().replaceChildren(
    h('h1', {}, 'Cascade'),
    controls(state, tree, { onCycle, onSearch }),
    slider.section,
    legend(),
    summary,
    tree,
  );
  toggleOnClick(tree, state.collapsed);
  slider.start();
  await reload();
  if (state.from !== null && state.to !== null) await diff.load();
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
    data: null, // the last answer: {cascade, cycle, now, seq, names, titles, krIds} or {missing, seq}
    diff: null, // the marks' diff, with t0 and t1 their recorded times
    load: 0, // counts cascade reads: only the latest one draws
  };
}

// The cycle picker, the search and "Expand all" / "Collapse all".
function controls(state, tree, { onCycle, onSearch }) {
  const search = h('input', {
    id: 'search', type: 'search', value: state.q, autocomplete: 'off', placeholder: 'title or owner',
    'aria-describedby': 'search-hint',
  });
  search.addEventListener('input', debounce(() => onSearch(search.value.trim()), 120));
  return h('form', { class: 'controls', role: 'search', onsubmit: (e) => e.preventDefault() },
    cycleSelect(state.cycles, state.cycle, onCycle, 'cycle'),
    h('div', { class: 'field grow' },
      h('label', { for: 'search' }, 'Search'),
      search,
      h('span', { id: 'search-hint', class: 'hint' }, 'Objective or key result title, or owner')),
    h('div', { class: 'field buttons' },
      h('button', { type: 'button', onclick: () => expandAll(tree, state.collapsed, true) }, 'Expand all'),
      h('button', { type: 'button', onclick: () => expandAll(tree, state.collapsed, false) }, 'Collapse all')));
}

// Reads the cascade of state.cycle as of state.asOf into state.data and
// redraws; says so when the cycle did not exist yet at that seq. Only the
// latest of overlapping reads draws.
async function loadCascade(state, tree, { alive, redraw, loadDiff }) {
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
      redraw();
      return;
    }
    // At the head pace is judged by now; in the past at that seq's time.
    const cascade = await get('v1/cascade', { cycle: state.cycle, as_of: seq, at: atHead ? paceAtNow() : undefined });
    if (my !== state.load || !alive()) return;
    state.data = { cascade, cycle, seq: cascade.as_of_seq, ...indexCascade(cascade) };
    redraw();
    if (state.from !== null && state.to !== null && !state.diff) loadDiff();
  } catch (err) {
    if (my !== state.load || !alive()) return;
    tree.replaceChildren(errorBox(err, 'Reading the cascade failed'));
  } finally {
    if (my === state.load) tree.removeAttribute('aria-busy');
  }
}
