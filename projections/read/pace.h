// Pace: how far along a key result, objective or unit should be by now if
// it moved from start to target at a steady rate over its cycle, and the
// on-track / at-risk / off-track status that compares progress with it
// (docs/DASHBOARD.md, "Status"). The one place for the rule: the dashboard
// shows what okrd computes here instead of working it out in the browser.
// Pure functions of their arguments: no clock, no projection, no locks, so
// safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "projections/domain/projection.h"

namespace okr {

// How far behind the steady pace progress may fall, in points of the way
// from start to target (0.10 = 10 points), and still count as on track or
// at risk. In a quarter ten points are about nine days: a slip a team can
// still make up; a quarter of the way is about three weeks, a real problem.
// Being ahead of the pace is always on track.
inline constexpr double kOnTrackGap = 0.10;
inline constexpr double kAtRiskGap = 0.25;

// A cycle's span in µs UTC: from 00:00 of its `starts` day up to, not
// including, 00:00 of the day after its `ends` day (the end date is
// inclusive). The same bounds the review and the views use.
struct CycleSpan {
  int64_t starts_us = 0;
  int64_t ends_us_exclusive = 0;
};
CycleSpan CycleSpanOf(const CycleFields& cycle);

enum class PaceStatus { kNone, kOnTrack, kAtRisk, kOffTrack };

// The status as the API writes it: "none", "on_track", "at_risk",
// "off_track". The view is of a string literal: it never dangles.
std::string_view PaceStatusName(PaceStatus status);

struct Pace {
  double expected = 0;  // share of the way expected by now, in [0, 1]
  PaceStatus status = PaceStatus::kNone;
};

// The pace at instant `at_us` in a cycle spanning [cycle_starts_us,
// cycle_ends_us_exclusive), and the status of `progress` (a share of the
// way from start to target; nullopt when there is nothing to measure,
// which gives kNone). `expected` is the elapsed share of the cycle, 0
// before it starts and 1 from its end on; a cycle of no length (or one
// ending before it starts) expects everything, 1. The status is on track
// when progress is at most kOnTrackGap behind `expected`, at risk when at
// most kAtRiskGap behind, off track beyond.
Pace PaceOf(int64_t cycle_starts_us, int64_t cycle_ends_us_exclusive, int64_t at_us,
            std::optional<double> progress);

// PaceOf over CycleSpanOf(cycle).
Pace PaceOf(const CycleFields& cycle, int64_t at_us, std::optional<double> progress);

}  // namespace okr
