// The cascade read a part at a time (docs/API.md, "The cascade at size"), so
// the view opens at any size: the top of the organisation first, a unit's
// sub-units when it is opened, and "Expand all" level by level up to a cap.
// Every read after the first is pinned to the first one's seq and `at`, so
// the parts spliced together are one state of the log.

import { get } from '../api.js';

// Levels below the top units read first. Their roll-ups (objective_count,
// progress, pace) already cover their whole subtrees.
export const TOP_DEPTH = 1;

// A cycle with at most this many objectives is read whole at once: the
// answer stays small, and the tree opens fully as it always did.
export const WHOLE_MAX = 500;

// "Expand all" stops loading once this many rows (units and objectives)
// are loaded: a page of more rows stops being quick to draw and to read.
export const EXPAND_CAP = 2000;

// Reads at most this many units' sub-units at the same time.
const PARALLEL = 4;

// Reads the cascade of `cycle` as of `seq` (`at`: when pace is judged, or
// undefined): the top levels, or everything when the cycle is small; then,
// within EXPAND_CAP rows, the sub-units of the units in `opened` (ids of
// units opened before, kept across reads). Returns the data the tree draws:
// {cascade, seq, pin, names, titles, krIds, units, rows}. Throws ApiError.
export async function readCascade({ cycle, seq, at }, opened) {
  const top = await get('v1/cascade', { cycle, as_of: seq, at, depth: TOP_DEPTH });
  const pin = { cycle, as_of: top.as_of_seq, at };
  let cascade = top;
  if (totalObjectives(top) <= WHOLE_MAX && unloadedUnits(indexCascade(top)).length) {
    cascade = await get('v1/cascade', pin);
  }
  console.assert(cascade.as_of_seq === top.as_of_seq, 'every part is read at the first part\'s seq');
  const data = { cascade, seq: cascade.as_of_seq, pin, ...indexCascade(cascade) };
  if (opened.size) await loadLevels(data, { want: (node) => opened.has(node.unit.id), cap: EXPAND_CAP });
  return data;
}

// The objectives of the whole cycle: the top units' roll-ups count their
// subtrees, loaded or not.
export function totalObjectives(cascade) {
  return cascade.nodes.reduce((n, node) => n + node.objective_count, 0);
}

// Names, titles and key result ids of a cascade answer, and its units by
// id; `rows` counts the units and objectives loaded.
export function indexCascade(cascade) {
  const index = { names: new Map(), titles: new Map(), krIds: new Set(), units: new Map(), rows: 0 };
  indexNodes(index, cascade.nodes);
  return index;
}

// Adds `nodes` and everything loaded under them to `index`.
function indexNodes(index, nodes) {
  for (const node of nodes) {
    index.units.set(node.unit.id, node);
    index.names.set(node.unit.id, node.unit.name);
    index.rows += 1 + node.objectives.length;
    for (const o of node.objectives) {
      index.titles.set(o.id, o.title);
      for (const k of o.key_results) {
        index.titles.set(k.id, k.title);
        index.krIds.add(k.id);
      }
    }
    if (node.children) indexNodes(index, node.children);
  }
}

// The loaded units whose sub-units are not: okrd answered `children: null`.
export function unloadedUnits(data) {
  return [...data.units.values()].filter((node) => node.children === null);
}

// Reads the sub-units of `node` (a unit of `data` answered with
// `children: null`) at data's seq and splices them in. Throws ApiError.
export async function loadUnit(data, node) {
  const answer = await get('v1/cascade', { ...data.pin, root: node.unit.id, depth: 1 });
  console.assert(answer.as_of_seq === data.seq, 'a subtree is read at the seq of the tree it joins');
  const fresh = answer.nodes[0];
  if (node.children !== null) return; // read twice at once: the first one counts
  node.children = fresh.children || [];
  indexNodes(data, node.children);
}

// Loads, level by level, the sub-units of the units `want` picks, until none
// is left or `cap` rows are loaded; calls onLevel() after each level. Adds
// each unit loaded to `opened`, when given. True when it stopped at the cap
// with units still to load. Throws ApiError.
export async function loadLevels(data, { want, cap, opened = null, onLevel = () => {} }) {
  for (;;) {
    const next = unloadedUnits(data).filter(want);
    if (!next.length) return false;
    if (data.rows >= cap) return true;
    await eachLimited(next, PARALLEL, async (node) => {
      if (data.rows >= cap) return;
      await loadUnit(data, node);
      if (opened) opened.add(node.unit.id);
    });
    onLevel();
  }
}

// fn(item) for every item, at most `limit` at a time.
async function eachLimited(items, limit, fn) {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
