// Pace: how far along progress should be by now, and the status that
// compares progress with it (docs/DASHBOARD.md, "Status"). The only place in
// the dashboard that works status out. okrd has the same rule
// (projections/read/pace.h); once its answers carry `pace` ({expected,
// status}) beside each progress, paceOf gives way to reading that field.

import { cycleBounds } from './cycles.js';

// Progress may fall this far behind the steady pace, in points of the way
// from start to target, and still be on track, or at risk.
export const ON_TRACK_GAP = 0.10;
export const AT_RISK_GAP = 0.25;

// How each status, by the name the API gives it, is shown: `key` is the
// CSS class, `label` the words.
export const STATUS = {
  none: { key: 'none', label: 'No data' },
  on_track: { key: 'on-track', label: 'On track' },
  at_risk: { key: 'at-risk', label: 'At risk' },
  off_track: { key: 'off-track', label: 'Off track' },
};

// The share of `cycle` that has elapsed at `now` (ms), in [0, 1]; a cycle of
// no length expects everything.
export function expectedShare(cycle, now) {
  const { start, end } = cycleBounds(cycle);
  if (!(end > start)) return 1;
  return Math.min(1, Math.max(0, (now - start) / (end - start)));
}

// The status name of `progress` (null: nothing measured) against `expected`.
function statusName(progress, expected) {
  if (progress === null || progress === undefined) return 'none';
  const gap = expected - progress;
  if (gap <= ON_TRACK_GAP) return 'on_track';
  if (gap <= AT_RISK_GAP) return 'at_risk';
  return 'off_track';
}

// The pace of `progress` in `cycle` at `now` (ms), shaped as okrd will
// answer it: {expected, status}, status one of STATUS's names.
export function paceOf(cycle, now, progress) {
  const expected = expectedShare(cycle, now);
  return { expected, status: statusName(progress, expected) };
}
