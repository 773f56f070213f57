// Pace: how each status okrd judges is shown, and the point the dashboard
// asks it to judge at (docs/DASHBOARD.md, "Status"). okrd works the pace
// out (projections/read/pace.h) and answers it as `pace` ({expected,
// status}) beside each progress; the dashboard only shows it.

// The rule okrd applies, for the legend's words only: progress may fall
// this far behind the steady pace, in points of the way from start to
// target, and still be on track, or at risk. okrd does not send them.
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

// The `at` a read of the head passes so pace is judged "by now": the
// present rounded up to the next whole minute, as RFC 3339. Rounding keeps
// the URL, and so okrd's cached answer, the same for a minute; rounding up
// (not down) keeps every check-in already measured inside `at`. A read of
// a past seq passes no `at`: okrd then judges at that seq's recorded time.
export function paceAtNow(now = Date.now()) {
  const minute = 60 * 1000;
  return new Date(Math.ceil(now / minute) * minute).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
