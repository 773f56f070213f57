#include "projections/read/pace.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "eventstore/base/named.h"
#include "eventstore/base/time.h"
#include "projections/read/views.h"

namespace okr {

namespace {

// The elapsed share of [starts, ends), clamped to [0, 1].
double ExpectedShare(int64_t starts_us, int64_t ends_us, int64_t at_us) {
  if (ends_us <= starts_us) return 1;
  // Differences of µs since 1970 fit a double's 53 bits exactly for any
  // cycle within ±285 years, so the share is the correctly rounded ratio.
  double share = static_cast<double>(at_us - starts_us) / static_cast<double>(ends_us - starts_us);
  return std::clamp(share, 0.0, 1.0);
}

PaceStatus StatusOf(double expected, std::optional<double> progress) {
  if (!progress) return PaceStatus::kNone;
  // Progress may leave [0, 1] (past the target, or below the start), but it
  // is a number: NaN would compare false everywhere and read as off track.
  assert(!std::isnan(*progress));
  double gap = expected - *progress;
  if (gap <= kOnTrackGap) return PaceStatus::kOnTrack;
  if (gap <= kAtRiskGap) return PaceStatus::kAtRisk;
  return PaceStatus::kOffTrack;
}

}  // namespace

CycleSpan CycleSpanOf(const CycleFields& cycle) {
  // One rule for the bounds: the views' and the review's.
  CycleSpan span{CycleStartUs(cycle), CycleEndUs(cycle)};
  // Both ends fall at midnight UTC: whole days apart.
  assert((span.ends_us_exclusive - span.starts_us) % kMicrosPerDay == 0);
  return span;
}

std::string_view PaceStatusName(PaceStatus status) {
  static constexpr Named<PaceStatus> kNames[] = {
      {PaceStatus::kNone, "none"},
      {PaceStatus::kOnTrack, "on_track"},
      {PaceStatus::kAtRisk, "at_risk"},
      {PaceStatus::kOffTrack, "off_track"},
  };
  const char* name = NameIn(kNames, status, nullptr);
  assert(name != nullptr && "every PaceStatus has a name");
  return name != nullptr ? name : "none";
}

Pace PaceOf(int64_t cycle_starts_us, int64_t cycle_ends_us_exclusive, int64_t at_us,
            std::optional<double> progress) {
  static_assert(0 < kOnTrackGap && kOnTrackGap < kAtRiskGap && kAtRiskGap < 1);
  Pace pace;
  pace.expected = ExpectedShare(cycle_starts_us, cycle_ends_us_exclusive, at_us);
  assert(pace.expected >= 0 && pace.expected <= 1);
  pace.status = StatusOf(pace.expected, progress);
  assert((pace.status == PaceStatus::kNone) == !progress.has_value());
  return pace;
}

Pace PaceOf(const CycleFields& cycle, int64_t at_us, std::optional<double> progress) {
  CycleSpan span = CycleSpanOf(cycle);
  return PaceOf(span.starts_us, span.ends_us_exclusive, at_us, progress);
}

}  // namespace okr
