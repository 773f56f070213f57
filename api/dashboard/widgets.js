// Widgets shared by the views: the status badge, the progress bar with its
// pace mark, and the legend that explains them.

import { h } from './dom.js';
import { percent } from './format.js';
import { AT_RISK_GAP, ON_TRACK_GAP, STATUS } from './pace.js';

// The status in words and colour (never colour alone); `status` is one of
// pace.js's STATUS entries.
export function statusBadge(status) {
  return h('span', { class: `status ${status.key}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), status.label);
}

function progressBar(progress, expected, status, label) {
  const pct = Math.round(progress * 100);
  const bar = h('div', {
    class: 'bar',
    role: 'progressbar',
    'aria-label': label,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.max(0, Math.min(100, pct)),
    'aria-valuetext': `${pct}% done, ${percent(expected)} expected by now: ${status.label.toLowerCase()}`,
  });
  bar.append(
    h('span', { class: `fill ${status.key}`, style: `width:${Math.max(0, Math.min(100, pct))}%` }),
    h('span', { class: 'pace', style: `left:${Math.round(expected * 1000) / 10}%`, title: `expected by now: ${percent(expected)}` }),
  );
  return bar;
}

// Progress as a bar, a percentage and a status badge; a dash when there is
// no progress. `pace` is okrd's {expected, status} for that progress.
export function measure(progress, pace, label, extraClass = '') {
  if (progress === null || progress === undefined) {
    return h('div', { class: `measure ${extraClass}` }, h('span', { class: 'pct muted' }, '–'));
  }
  const status = STATUS[pace.status];
  return h('div', { class: `measure ${extraClass}` },
    progressBar(progress, pace.expected, status, label),
    h('span', { class: 'pct', 'data-progress': progress }, percent(progress)),
    statusBadge(status));
}

// "How status is worked out", folded.
export function legend() {
  return h('details', { class: 'legend' },
    h('summary', {}, 'How status is worked out'),
    h('p', {}, 'Each bar shows progress from start to target; the thin mark on it is where a steady pace would be by now (the share of the cycle that has passed).'),
    h('ul', {},
      h('li', {}, statusBadge(STATUS.on_track), ` at most ${Math.round(ON_TRACK_GAP * 100)} points behind that pace (or ahead of it)`),
      h('li', {}, statusBadge(STATUS.at_risk), ` ${Math.round(ON_TRACK_GAP * 100)} to ${Math.round(AT_RISK_GAP * 100)} points behind`),
      h('li', {}, statusBadge(STATUS.off_track), ` more than ${Math.round(AT_RISK_GAP * 100)} points behind`)));
}
