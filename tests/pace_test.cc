// The pace rule (projections/read/pace.h): the elapsed share of a cycle and
// the status it gives progress, at and either side of each boundary.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "eventstore/base/time.h"
#include "projections/read/pace.h"

namespace okr {
namespace {

// A cycle of one second in µs, so that shares are exact decimal fractions
// (IEEE division is correctly rounded: 100'000 / 1'000'000 == 0.10).
constexpr int64_t kStart = 1'000'000'000;
constexpr int64_t kLength = 1'000'000;
constexpr int64_t kEnd = kStart + kLength;

Pace At(int64_t offset_us, std::optional<double> progress) {
  return PaceOf(kStart, kEnd, kStart + offset_us, progress);
}

TEST(PaceTest, ExpectedIsTheElapsedShareOfTheCycle) {
  EXPECT_EQ(At(0, 0.0).expected, 0.0);
  EXPECT_EQ(At(kLength / 2, 0.0).expected, 0.5);
  EXPECT_EQ(At(kLength / 10, 0.0).expected, kOnTrackGap);
  EXPECT_EQ(At(kLength / 4, 0.0).expected, kAtRiskGap);
}

TEST(PaceTest, BeforeTheStartNothingIsExpectedAndAfterTheEndEverything) {
  EXPECT_EQ(At(-1, 0.0).expected, 0.0);
  EXPECT_EQ(At(-10 * kLength, 0.0).expected, 0.0);
  EXPECT_EQ(At(-1, 0.0).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(kLength, 1.0).expected, 1.0);
  EXPECT_EQ(At(10 * kLength, 1.0).expected, 1.0);
  EXPECT_EQ(At(kLength, 1.0).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(kLength, 0.5).status, PaceStatus::kOffTrack);
}

TEST(PaceTest, ACycleOfNoLengthExpectsEverything) {
  EXPECT_EQ(PaceOf(kStart, kStart, kStart - 1, 0.0).expected, 1.0);
  EXPECT_EQ(PaceOf(kStart, kStart, kStart, 0.0).expected, 1.0);
  EXPECT_EQ(PaceOf(kStart, kStart - 1, kStart, 1.0).expected, 1.0);
  EXPECT_EQ(PaceOf(kStart, kStart, kStart, 1.0).status, PaceStatus::kOnTrack);
}

TEST(PaceTest, ExactlyAtAGapIsTheKinderStatus) {
  // expected - progress == the gap exactly.
  EXPECT_EQ(At(kLength / 10, 0.0).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(kLength / 4, 0.0).status, PaceStatus::kAtRisk);
  // One µs later the gap is just over.
  EXPECT_EQ(At(kLength / 10 + 1, 0.0).status, PaceStatus::kAtRisk);
  EXPECT_EQ(At(kLength / 4 + 1, 0.0).status, PaceStatus::kOffTrack);
}

TEST(PaceTest, StatusFollowsTheGapBehindThePace) {
  // The example of docs/DASHBOARD.md: 60 % of the cycle has passed.
  const int64_t sixty = kLength * 6 / 10;
  EXPECT_EQ(At(sixty, 0.52).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(sixty, 0.40).status, PaceStatus::kAtRisk);
  EXPECT_EQ(At(sixty, 0.30).status, PaceStatus::kOffTrack);
  // Ahead of the pace, past the target or below the start.
  EXPECT_EQ(At(sixty, 0.9).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(sixty, 1.5).status, PaceStatus::kOnTrack);
  EXPECT_EQ(At(sixty, -0.2).status, PaceStatus::kOffTrack);
}

TEST(PaceTest, NoProgressHasNoStatusButStillAPace) {
  Pace pace = At(kLength / 2, std::nullopt);
  EXPECT_EQ(pace.status, PaceStatus::kNone);
  EXPECT_EQ(pace.expected, 0.5);
}

TEST(PaceTest, StatusNamesAreTheApis) {
  EXPECT_EQ(PaceStatusName(PaceStatus::kNone), "none");
  EXPECT_EQ(PaceStatusName(PaceStatus::kOnTrack), "on_track");
  EXPECT_EQ(PaceStatusName(PaceStatus::kAtRisk), "at_risk");
  EXPECT_EQ(PaceStatusName(PaceStatus::kOffTrack), "off_track");
}

TEST(PaceTest, ACycleRunsFromItsFirstDayToTheEndOfItsLastDay) {
  CycleFields q3;
  q3.starts = "2026-07-01";
  q3.ends = "2026-09-30";
  CycleSpan span = CycleSpanOf(q3);
  EXPECT_EQ(span.starts_us, *ParseDate("2026-07-01"));
  EXPECT_EQ(span.ends_us_exclusive, *ParseDate("2026-10-01"));
  // The last day is inside: the pace reaches 1 only at its end.
  EXPECT_LT(PaceOf(q3, *ParseDate("2026-09-30"), 1.0).expected, 1.0);
  EXPECT_EQ(PaceOf(q3, *ParseDate("2026-10-01"), 1.0).expected, 1.0);
  EXPECT_EQ(PaceOf(q3, *ParseDate("2026-07-01"), 0.0).expected, 0.0);

  CycleFields one_day;
  one_day.starts = one_day.ends = "2026-07-01";
  EXPECT_EQ(PaceOf(one_day, *ParseDate("2026-07-01") + kMicrosPerDay / 2, 0.5).expected, 0.5);
}

}  // namespace
}  // namespace okr
