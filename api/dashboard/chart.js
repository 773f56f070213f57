// Hand-written SVG: the key result chart. No charting library: the chart is a
// few lines, circles and labels, and every element is inspectable.

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

// About `count` round tick values covering [min, max].
export function niceTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Number(v.toFixed(10)));
  }
  return ticks;
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const rounded = Math.round(value * 100) / 100;
  return rounded.toLocaleString('en', { maximumFractionDigits: 2 });
}

const DAY_MS = 86_400_000;

function dateTicks(t0, t1, sparse = false) {
  const span = (t1 - t0) * (sparse ? 2 : 1);
  const ticks = [];
  if (span > 120 * DAY_MS) {
    const d = new Date(t0);
    let m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
    while (m.getTime() <= t1) {
      if (m.getTime() >= t0) ticks.push(m.getTime());
      m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1));
    }
    return ticks;
  }
  const stepDays = span > 60 * DAY_MS ? 14 : span > 20 * DAY_MS ? 7 : span > 6 * DAY_MS ? 2 : 1;
  const first = Math.ceil(t0 / DAY_MS) * DAY_MS;
  for (let t = first; t <= t1; t += stepDays * DAY_MS) ticks.push(t);
  return ticks;
}

function shortDate(t) {
  return new Date(t).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

// The check-ins of one key result over its cycle.
//   checkIns: [{id, value, measured_at, confidence, note, seq}], oldest first
//   start, target: the key result's current start and target
//   changes: [{field: 'target'|'start', before, after, at (ms), actor, reason}]
//   cycleStart, cycleEnd: ms; now: ms (the "today" line when inside the cycle)
export function checkInChart({ title, description, checkIns, start, target, unit, changes, cycleStart, cycleEnd, now, width = 760 }) {
  const points = checkIns.map((c) => ({ ...c, t: Date.parse(c.measured_at) }));
  const c = chartFrame(width, { points, start, target, changes, cycleStart, cycleEnd });
  const titleId = `chart-title-${Math.random().toString(36).slice(2, 8)}`;
  const descId = `${titleId}-desc`;
  const root = svg('svg', {
    viewBox: `0 0 ${c.W} ${c.H}`,
    class: 'chart',
    role: 'img',
    'aria-labelledby': `${titleId} ${descId}`,
    preserveAspectRatio: 'xMidYMid meet',
  });
  root.append(svg('title', { id: titleId }, title), svg('desc', { id: descId }, description));
  root.append(gridLayer(c, unit));
  root.querySelector('desc').after(boundsLayer(c, cycleStart, cycleEnd, now));
  // Expected pace: start to the current target over the cycle.
  root.append(svg('line', {
    x1: f(c.x(cycleStart)), y1: f(c.y(start)), x2: f(c.x(cycleEnd)), y2: f(c.y(target)),
    class: 'pace-line', 'data-series': 'pace',
  }));
  root.append(...targetLine(c, target, changes));
  root.append(changeMarks(c, changes));
  root.append(...checkInLayers(c, points, target, unit));
  return root;
}

const f = (n) => n.toFixed(1);

// The chart's size, padding, the time and value ranges it covers (the
// cycle, every check-in and change, a margin of values) and the scales
// x(ms) and y(value) to SVG coordinates.
function chartFrame(width, { points, start, target, changes, cycleStart, cycleEnd }) {
  // Drawn at the width it is shown at (within limits), so text stays legible.
  const W = Math.round(Math.max(320, Math.min(900, width)));
  const narrow = W < 560;
  const H = narrow ? 300 : 360;
  const pad = { left: narrow ? 44 : 60, right: narrow ? 64 : 96, top: 30, bottom: 40 };

  let t0 = cycleStart;
  let t1 = cycleEnd;
  for (const p of points) {
    t0 = Math.min(t0, p.t);
    t1 = Math.max(t1, p.t);
  }
  for (const c of changes) {
    t0 = Math.min(t0, c.at);
    t1 = Math.max(t1, c.at);
  }
  if (!(t1 > t0)) t1 = t0 + DAY_MS;

  const values = [start, target, ...points.map((p) => p.value)];
  for (const c of changes) values.push(Number(c.before), Number(c.after));
  let v0 = Math.min(...values.filter(Number.isFinite));
  let v1 = Math.max(...values.filter(Number.isFinite));
  if (!(v1 > v0)) {
    v0 -= 1;
    v1 += 1;
  }
  const margin = (v1 - v0) * 0.08;
  v0 -= margin;
  v1 += margin;
  if (v0 < 0 && Math.min(...values) >= 0) v0 = 0;
  console.assert(t1 > t0 && v1 > v0, 'the chart covers a span of time and of values');

  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (W - pad.left - pad.right);
  const y = (v) => H - pad.bottom - ((v - v0) / (v1 - v0)) * (H - pad.top - pad.bottom);
  return { W, H, pad, narrow, t0, t1, v0, v1, x, y };
}

// Grid and axes, with value and date ticks and the unit over the value axis.
function gridLayer({ W, H, pad, narrow, t0, t1, v0, v1, x, y }, unit) {
  const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
  for (const v of niceTicks(v0, v1, 5)) {
    grid.append(
      svg('line', { x1: pad.left, x2: W - pad.right, y1: f(y(v)), y2: f(y(v)) }),
      svg('text', { x: pad.left - 8, y: f(y(v) + 4), 'text-anchor': 'end', class: 'tick' }, formatNumber(v)),
    );
  }
  for (const t of dateTicks(t0, t1, narrow)) {
    grid.append(
      svg('line', { x1: f(x(t)), x2: f(x(t)), y1: pad.top, y2: H - pad.bottom, class: 'vgrid' }),
      svg('text', { x: f(x(t)), y: H - pad.bottom + 18, 'text-anchor': 'middle', class: 'tick' }, shortDate(t)),
    );
  }
  grid.append(
    svg('line', { x1: pad.left, x2: W - pad.right, y1: H - pad.bottom, y2: H - pad.bottom, class: 'axis' }),
    svg('line', { x1: pad.left, x2: pad.left, y1: pad.top, y2: H - pad.bottom, class: 'axis' }),
  );
  if (unit) {
    grid.append(svg('text', { x: pad.left, y: pad.top - 12, 'text-anchor': 'middle', class: 'tick unit-label' }, unit));
  }
  return grid;
}

// The cycle as a band, and "now" when it falls inside the chart.
function boundsLayer({ H, pad, t0, t1, x }, cycleStart, cycleEnd, now) {
  const bounds = svg('g', { class: 'bounds', 'aria-hidden': 'true' });
  bounds.append(svg('rect', {
    x: f(x(cycleStart)), y: pad.top, width: f(Math.max(0, x(cycleEnd) - x(cycleStart))),
    height: H - pad.top - pad.bottom, class: 'cycle-band',
  }));
  if (now > t0 && now < t1) {
    bounds.append(
      svg('line', { x1: f(x(now)), x2: f(x(now)), y1: pad.top, y2: H - pad.bottom, class: 'now-line' }),
      svg('text', { x: f(x(now) + 4), y: H - pad.bottom - 6, class: 'tick' }, 'now'),
    );
  }
  return bounds;
}

// The target as it stood over time: a step line, moved at each change; and
// its label at the right.
function targetLine({ W, pad, t0, t1, x, y }, target, changes) {
  const targetChanges = changes.filter((c) => c.field === 'target').sort((a, b) => a.at - b.at);
  let current = targetChanges.length ? Number(targetChanges[0].before) : target;
  let d = `M${f(x(t0))},${f(y(current))}`;
  for (const c of targetChanges) {
    d += ` H${f(x(c.at))} V${f(y(Number(c.after)))}`;
    current = Number(c.after);
  }
  d += ` H${f(x(t1))}`;
  return [
    svg('path', { d, class: 'target-line', 'data-series': 'target' }),
    svg('text', { x: W - pad.right + 6, y: f(y(target) + 4), class: 'line-label target-label' },
      `target ${formatNumber(target)}`),
  ];
}

// Marks where the goalposts moved.
function changeMarks({ W, H, pad, x, y }, changes) {
  const marks = svg('g', { class: 'changes' });
  for (const c of changes) {
    const cx = x(c.at);
    const label = `${c.field} ${formatNumber(Number(c.before))} → ${formatNumber(Number(c.after))}`;
    marks.append(svg('g', { class: 'change-mark', 'data-change-field': c.field, 'data-seq': c.seq }, [
      svg('line', { x1: f(cx), x2: f(cx), y1: pad.top, y2: H - pad.bottom }),
      svg('path', { d: `M${f(cx)},${f(y(Number(c.after)) - 7)} l7,7 l-7,7 l-7,-7 z` }),
      // Labels of late changes hang to the left so they stay inside the plot.
      cx > pad.left + (W - pad.left - pad.right) * 0.6
        ? svg('text', { x: f(cx - 9), y: f(Math.max(pad.top + 12, y(Number(c.after)) - 10)), 'text-anchor': 'end' }, label)
        : svg('text', { x: f(cx + 9), y: f(Math.max(pad.top + 12, y(Number(c.after)) - 10)) }, label),
      svg('title', {}, `${label} on ${shortDate(c.at)} by ${c.actor}${c.reason ? ` — ${c.reason}` : ''}`),
    ]));
  }
  return marks;
}

// The check-ins: a line through them, one circle each, and the latest
// value's label when it does not sit on the target's.
function checkInLayers({ W, pad, x, y }, points, target, unit) {
  const layers = [];
  if (points.length > 1) {
    layers.push(svg('polyline', {
      points: points.map((p) => `${f(x(p.t))},${f(y(p.value))}`).join(' '),
      class: 'value-line', 'data-series': 'check-ins',
    }));
  }
  const dots = svg('g', { class: 'points' });
  for (const p of points) {
    const conf = p.confidence === null || p.confidence === undefined ? '' : `, confidence ${Math.round(p.confidence * 100)}%`;
    dots.append(svg('circle', {
      cx: f(x(p.t)), cy: f(y(p.value)), r: 4.5, class: 'point',
      'data-check-in': p.id, 'data-value': p.value, 'data-seq': p.seq,
    }, svg('title', {}, `${shortDate(p.t)}: ${formatNumber(p.value)}${unit ? ` ${unit}` : ''}${conf}${p.note ? ` — ${p.note}` : ''}`)));
  }
  layers.push(dots);
  if (points.length) {
    const last = points[points.length - 1];
    const ly = y(last.value);
    if (Math.abs(ly - y(target)) > 14) {
      layers.push(svg('text', { x: W - pad.right + 6, y: f(ly + 4), class: 'line-label value-label' },
        `now ${formatNumber(last.value)}`));
    }
  }
  return layers;
}
