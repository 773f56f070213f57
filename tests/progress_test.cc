// Progress as SPEC §1 defines it, for key results and objectives, now, at
// a past valid time (`at`) and as of an older seq (`as_of`).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/projections_fixture.h"

namespace okr {
namespace {

using nlohmann::json;
using testing::At;
using testing::HrHiringTest;
using testing::kDayUs;

class ProgressTest : public HrHiringTest {
 protected:
  double KrProgress(const std::string& kr) { return KeyResultJson(kr)["progress"].get<double>(); }
  double Current(const std::string& kr) { return KeyResultJson(kr)["current"].get<double>(); }
  // An objective of `owner` aligned to `parent` whose one key result `kr`
  // (0 → target) stands at `value`: a child whose progress is value/target.
  void MeasuredChild(const std::string& objective, const std::string& owner,
                     const std::string& parent, const std::string& kr, double target,
                     double value) {
    ASSERT_OK(CreateObjective(objective, "2026-q1", owner, objective, {parent}));
    ASSERT_OK(AddKeyResult(kr, objective, kr, 0, target));
    ASSERT_OK(CheckIn(kr, value));
  }
};

// --- one key result ---

TEST_F(ProgressTest, IncreasingTargetProgressIsTheShareOfTheWay) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 5));
  EXPECT_EQ(KrProgress("kr-hires"), 0.25);  // (5 − 0) / (20 − 0)
  EXPECT_EQ(Current("kr-hires"), 5);
  ASSERT_OK(AddKeyResult("kr-thirds", "hr-hiring", "Thirds", 0, 3));
  ASSERT_OK(CheckIn("kr-thirds", 1));
  EXPECT_EQ(KrProgress("kr-thirds"), 1.0 / 3.0);  // a plain double, not rounded
}

TEST_F(ProgressTest, DecreasingTargetWorksThroughTheSameFormula) {
  ASSERT_OK(
      AddKeyResult("kr-time-to-hire", "hr-hiring", "Days to hire", 30, 10, "number", 1, "days"));
  ASSERT_OK(CheckIn("kr-time-to-hire", 20));
  EXPECT_EQ(KrProgress("kr-time-to-hire"), 0.5);  // (20 − 30) / (10 − 30)
  ASSERT_OK(CheckIn("kr-time-to-hire", 15));
  EXPECT_EQ(KrProgress("kr-time-to-hire"), 0.75);  // (15 − 30) / (10 − 30)
  ASSERT_OK(CheckIn("kr-time-to-hire", 35));
  EXPECT_EQ(KrProgress("kr-time-to-hire"), 0.0);  // worse than the start: clamped
}

TEST_F(ProgressTest, ADecreasingKeyResultAtItsStartStandsAtZeroNotMinusZero) {
  // (10 − 10) / (0 − 10) is −0 in floating point; answers show 0.0.
  ASSERT_OK(AddKeyResult("kr-incidents", "hr-hiring", "Open incidents", 10, 0));
  for (const json& kr : {KeyResultJson("kr-incidents"), ObjectiveJson("hr-hiring")}) {
    EXPECT_FALSE(std::signbit(kr["progress"].get<double>())) << kr.dump();
    EXPECT_EQ(kr.dump().find("-0.0"), std::string::npos) << kr.dump();
  }
  ASSERT_OK(CheckIn("kr-incidents", 10));
  EXPECT_FALSE(std::signbit(KrProgress("kr-incidents")));
  ASSERT_OK(CheckIn("kr-incidents", 12));  // worse than the start: clamped
  EXPECT_FALSE(std::signbit(KrProgress("kr-incidents")));
}

TEST_F(ProgressTest, BooleanKeyResultIsAllOrNothing) {
  ASSERT_OK(AddKeyResult("kr-policy", "hr-hiring", "Hiring policy published", 0, 1, "boolean"));
  ASSERT_OK(CheckIn("kr-policy", 0));
  EXPECT_EQ(KrProgress("kr-policy"), 0.0);
  ASSERT_OK(CheckIn("kr-policy", 1));
  EXPECT_EQ(KrProgress("kr-policy"), 1.0);
  EXPECT_EQ(KeyResultJson("kr-policy")["metric"], "boolean");
}

// A copy's key results read the copy's check-ins, not the arena of the
// projection it was copied from, which goes on folding.
TEST_F(ProgressTest, ACopyOfTheProjectionKeepsItsCheckInsWhileTheOriginalFolds) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 10));
  ASSERT_OK(CheckIn("kr-hires", 3));
  ASSERT_OK(CheckIn("kr-hires", 4));
  Projection copy = state();
  EXPECT_TRUE(copy == state());
  ASSERT_OK(CheckIn("kr-hires", 9));
  const KeyResult& kr = *copy.key_result("kr-hires");
  ASSERT_EQ(kr.check_ins.size(), 2u);
  EXPECT_EQ(ValueOf(kr, kr.current(), copy.seq()).value, 4);
  EXPECT_EQ(Current("kr-hires"), 9);
  const Projection moved = std::move(copy);
  EXPECT_EQ(moved.key_result("kr-hires")->check_ins.back().value, 4);
}

TEST_F(ProgressTest, ACopyRollsUpItsOwnKeyResultsWhateverTheOriginalDoesNext) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 10));
  ASSERT_OK(CheckIn("kr-hires", 4));
  auto copy = std::make_unique<Projection>(state());
  // The original goes on: another key result, a new value.
  ASSERT_OK(AddKeyResult("kr-policy", "hr-hiring", "Policy published", 0, 1, "boolean"));
  ASSERT_OK(CheckIn("kr-hires", 10));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.5);  // (1.0 + 0.0) / 2
  // A copy of the copy, which then goes: it must read its own entities only.
  const Projection again = *copy;
  copy.reset();
  View view(again, again.seq(), INT64_MAX, 0);
  const Objective& objective = *again.objective("hr-hiring");
  const auto krs = view.KeyResultsOf(objective);
  ASSERT_EQ(krs.size(), 1u);
  EXPECT_EQ(krs[0], again.key_result("kr-hires"));
  EXPECT_EQ(view.ObjectiveProgress(objective), 0.4);
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.5);
}

TEST_F(ProgressTest, ProgressAboveTheTargetIsClampedToOne) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 10));
  ASSERT_OK(CheckIn("kr-hires", 15));
  EXPECT_EQ(KrProgress("kr-hires"), 1.0);
  EXPECT_EQ(Current("kr-hires"), 15);  // the value itself is not clamped
}

TEST_F(ProgressTest, ProgressBelowTheStartIsClampedToZero) {
  ASSERT_OK(AddKeyResult("kr-nps", "hr-hiring", "Candidate NPS", 10, 20));
  ASSERT_OK(CheckIn("kr-nps", 5));
  EXPECT_EQ(KrProgress("kr-nps"), 0.0);
  EXPECT_EQ(Current("kr-nps"), 5);
}

TEST_F(ProgressTest, KeyResultWithoutCheckInsStandsAtItsStart) {
  ASSERT_OK(AddKeyResult("kr-nps", "hr-hiring", "Candidate NPS", 12, 20));
  json kr = KeyResultJson("kr-nps");
  EXPECT_EQ(kr["current"], 12.0);
  EXPECT_EQ(kr["progress"], 0.0);
  EXPECT_EQ(kr["check_in_count"], 0);
  EXPECT_TRUE(kr["last_check_in"].is_null());
}

// --- objectives ---

TEST_F(ProgressTest, ObjectiveProgressIsTheWeightedMeanOfItsKeyResults) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20, "number", 3));
  ASSERT_OK(AddKeyResult("kr-policy", "hr-hiring", "Policy published", 0, 1, "boolean", 1));
  ASSERT_OK(CheckIn("kr-hires", 10));  // 0.5
  ASSERT_OK(CheckIn("kr-policy", 1));  // 1.0
  // (3 × 0.5 + 1 × 1.0) / (3 + 1) = 2.5 / 4
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.625);
  EXPECT_EQ(ObjectiveJson("hr-hiring")["progress"], 0.625);
}

TEST_F(ProgressTest, RemovedKeyResultIsExcludedFromTheObjective) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(AddKeyResult("kr-policy", "hr-hiring", "Policy published", 0, 1, "boolean"));
  ASSERT_OK(CheckIn("kr-hires", 10));
  ASSERT_OK(CheckIn("kr-policy", 1));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.75);  // (0.5 + 1.0) / 2
  ASSERT_OK(RemoveKeyResult("kr-policy"));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.5);
  json o = ObjectiveJson("hr-hiring");
  ASSERT_EQ(o["key_results"].size(), 1u);
  EXPECT_EQ(o["key_results"][0]["id"], "kr-hires");
}

TEST_F(ProgressTest, ObjectiveWithoutKeyResultsIsTheMeanOfItsActiveAlignedChildren) {
  // Children at 0.5, 1.0 and 0.25.
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("ta-pipeline", "ta", "hr-hiring", "kr-ta", 100, 50));
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("ops-onboarding", "hr-ops", "hr-hiring", "kr-ops", 10, 10));
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("ld-academy", "l-and-d", "hr-hiring", "kr-ld", 8, 2));
  // (0.5 + 1.0 + 0.25) / 3
  EXPECT_DOUBLE_EQ(ObjectiveProgress("hr-hiring"), 1.75 / 3);
  ASSERT_OK(Archive("ld-academy"));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.75);  // (0.5 + 1.0) / 2
}

TEST_F(ProgressTest, ARealignedChildCountsUnderTheParentsItHadAsOfEachSeq) {
  ASSERT_OK(CreateObjective("hr-retention", "2026-q1", "hr-ops", "Keep the people we hired"));
  // Children at 0.5 and 1.0, both aligned to hr-hiring at first.
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("ta-pipeline", "ta", "hr-hiring", "kr-ta", 100, 50));
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("ops-onboarding", "hr-ops", "hr-hiring", "kr-ops", 10, 10));
  const uint64_t before = Head();
  ASSERT_OK(Align("ops-onboarding", {"hr-retention"}));
  const uint64_t moved = Head();
  ASSERT_OK(Align("ta-pipeline", {"hr-retention", "hr-hiring"}));
  // The live projection, a copy of it (its indexes rebuilt) and one folded
  // again from the log answer alike.
  const Projection copy = state();
  auto rebuilt = Projector::Rebuild(store(), Head(), /*use_snapshot=*/false);
  ASSERT_OK(rebuilt.status());
  for (const Projection* p : std::vector<const Projection*>{&state(), &copy, &*rebuilt}) {
    auto progress = [&](const std::string& id, uint64_t seq) {
      return View(*p, seq, INT64_MAX, Now()).ObjectiveProgress(*p->objective(id));
    };
    EXPECT_EQ(progress("hr-hiring", before), 0.75);  // (0.5 + 1.0) / 2
    EXPECT_EQ(progress("hr-retention", before), 0.0);
    EXPECT_EQ(progress("hr-hiring", moved), 0.5);
    EXPECT_EQ(progress("hr-retention", moved), 1.0);
    EXPECT_EQ(progress("hr-hiring", Head()), 0.5);
    EXPECT_EQ(progress("hr-retention", Head()), 0.75);  // ops-onboarding and ta-pipeline
  }
}

TEST_F(ProgressTest, ProgressRollsUpThroughSeveralLevels) {
  ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", "Pipeline", {"hr-hiring"}));
  // Grandchildren at 0.25 and 0.75.
  ASSERT_NO_FATAL_FAILURE(
      MeasuredChild("amara-sourcing", "amara", "ta-pipeline", "kr-src", 40, 10));
  ASSERT_NO_FATAL_FAILURE(MeasuredChild("amara-events", "amara", "ta-pipeline", "kr-evt", 4, 3));
  EXPECT_EQ(ObjectiveProgress("ta-pipeline"), 0.5);
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.5);  // its only child, ta-pipeline
}

TEST_F(ProgressTest, ObjectiveWithNoKeyResultsAndNoChildrenIsZero) {
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.0);
  // An archived child does not count as a child.
  ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", "Pipeline", {"hr-hiring"}));
  ASSERT_OK(AddKeyResult("kr-ta", "ta-pipeline", "Candidates", 0, 10));
  ASSERT_OK(CheckIn("kr-ta", 10));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 1.0);
  ASSERT_OK(Archive("ta-pipeline"));
  EXPECT_EQ(ObjectiveProgress("hr-hiring"), 0.0);
}

// --- which check-in counts ---

TEST_F(ProgressTest, CorrectedCheckInCountsWithItsCorrectedValue) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 8, std::nullopt, "ci-week1"));
  EXPECT_EQ(Current("kr-hires"), 8);
  ASSERT_OK(Correct("kr-hires", "ci-week1", 6, "two hires were internal moves"));
  EXPECT_EQ(Current("kr-hires"), 6);
  EXPECT_EQ(KrProgress("kr-hires"), 0.3);
  ASSERT_OK(Correct("kr-hires", "ci-week1", 7, "one was not"));
  EXPECT_EQ(Current("kr-hires"), 7);
  EXPECT_EQ(KeyResultJson("kr-hires")["last_check_in"]["value"], 7.0);

  const KeyResult* kr = state().key_result("kr-hires");
  ASSERT_EQ(kr->corrections.size(), 2u);
  EXPECT_EQ(kr->corrections[0].before, 8);  // the value it replaced
  EXPECT_EQ(kr->corrections[0].value, 6);
  EXPECT_EQ(kr->corrections[1].before, 6);  // the value as corrected so far
  EXPECT_EQ(kr->corrections[1].value, 7);
  EXPECT_EQ(kr->check_ins[0].value, 8);  // the original stays in history
  auto series = CheckInSeries(*kr, state().seq());
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].value, 7);
}

TEST_F(ProgressTest, CorrectingAnOlderCheckInDoesNotChangeTheCurrentValue) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 4, Now() - 7 * kDayUs, "ci-week1"));
  ASSERT_OK(CheckIn("kr-hires", 9, std::nullopt, "ci-week2"));
  ASSERT_OK(Correct("kr-hires", "ci-week1", 3));
  EXPECT_EQ(Current("kr-hires"), 9);
  EXPECT_EQ(CheckInSeries(*state().key_result("kr-hires"), state().seq())[0].value, 3);
}

TEST_F(ProgressTest, TiesOnMeasuredAtGoToTheLaterSeq) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  const int64_t monday = At("2026-01-05T08:00:00Z");
  ASSERT_OK(CheckIn("kr-hires", 5, monday, "ci-a"));
  ASSERT_OK(CheckIn("kr-hires", 9, monday, "ci-b"));
  EXPECT_EQ(Current("kr-hires"), 9);
  ASSERT_OK(CheckIn("kr-hires", 3, monday, "ci-c"));
  EXPECT_EQ(Current("kr-hires"), 3);
  EXPECT_EQ(KeyResultJson("kr-hires")["last_check_in"]["id"], "ci-c");
}

TEST_F(ProgressTest, LatestByMeasuredAtNotByRecordingOrder) {
  SetNow(At("2026-01-21T09:00:00Z"));
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 10, At("2026-01-20T12:00:00Z"), "ci-jan20"));
  // Recorded later, measured earlier: a backfill does not override it.
  ASSERT_OK(CheckIn("kr-hires", 4, At("2026-01-10T12:00:00Z"), "ci-jan10"));
  EXPECT_EQ(Current("kr-hires"), 10);
  EXPECT_EQ(KeyResultJson("kr-hires")["last_check_in"]["id"], "ci-jan20");
  auto series = CheckInSeries(*state().key_result("kr-hires"), state().seq());
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].id, "ci-jan10");  // oldest measurement first
  EXPECT_EQ(series[1].id, "ci-jan20");
}

// The series as SPEC §1 defines it, the plain way: every known check-in,
// each correction applied in seq order, then ordered by (measured_at, seq).
std::vector<std::pair<std::string, double>> ReferenceSeries(const KeyResult& kr, uint64_t as_of) {
  std::vector<const okr::CheckIn*> known;
  for (const auto& ci : kr.check_ins) {
    if (ci.meta.seq <= as_of) known.push_back(&ci);
  }
  std::sort(known.begin(), known.end(), [](const okr::CheckIn* a, const okr::CheckIn* b) {
    return std::pair(a->measured_at_us, a->meta.seq) < std::pair(b->measured_at_us, b->meta.seq);
  });
  std::vector<std::pair<std::string, double>> out;
  for (const okr::CheckIn* ci : known) {
    double value = ci->value;
    for (const Correction& c : kr.corrections) {
      if (c.meta.seq <= as_of && c.check_in == ci->id) value = c.value;
    }
    out.emplace_back(ci->id, value);
  }
  return out;
}

std::vector<std::pair<std::string, double>> Pairs(const std::vector<okr::CheckIn>& series) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& ci : series) out.emplace_back(ci.id, ci.value);
  return out;
}

TEST_F(ProgressTest, ManyCheckInsAndCorrectionsGiveTheReferenceSeriesAtEverySeq) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 1000));
  std::mt19937 rng(20260105);
  const int64_t base = Now() - 60 * kDayUs;
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 120; ++i) {
    // Backfills and same-instant measurements on purpose: ties go to seq.
    int64_t measured = base + static_cast<int64_t>(rng() % 40) * kDayUs;
    auto w =
        CheckIn("kr-hires", static_cast<double>(rng() % 500), measured, "ci-" + std::to_string(i));
    ASSERT_OK(w);
    seqs.push_back(w->seq);
    for (int k = 0; k < 2; ++k) {  // two corrections per check-in, some of older ones
      auto c = Correct("kr-hires", "ci-" + std::to_string(rng() % (i + 1)),
                       static_cast<double>(rng() % 500));
      ASSERT_OK(c);
      seqs.push_back(c->seq);
    }
  }
  const KeyResult& kr = *state().key_result("kr-hires");
  ASSERT_EQ(kr.check_ins.size(), 120u);
  ASSERT_EQ(kr.corrections.size(), 240u);
  for (size_t i = 0; i < seqs.size(); i += 7) {
    ASSERT_EQ(Pairs(CheckInSeries(kr, seqs[i])), ReferenceSeries(kr, seqs[i]))
        << "as of seq " << seqs[i];
  }
  EXPECT_EQ(Pairs(CheckInSeries(kr, Head())), ReferenceSeries(kr, Head()));
}

// 50 000 check-ins each corrected once: the product is 2.5e9 comparisons
// (seconds); the series costs O(check-ins + corrections) (milliseconds).
TEST(CheckInSeriesCost, FiftyThousandCheckInsAndCorrectionsInWellUnderASecond) {
  constexpr size_t kCheckIns = 50'000;
  CheckInArena arena;
  KeyResult kr;
  kr.id = "kr-big";
  uint64_t seq = 1;
  for (size_t i = 0; i < kCheckIns; ++i) {
    okr::CheckIn ci;
    ci.id = Interned::Of("ci-" + std::to_string(i));
    ci.meta.seq = ++seq;
    ci.value = 1;
    ci.measured_at_us = static_cast<int64_t>(kCheckIns - i);  // newest measured first
    kr.check_ins.Append(&arena, ci);
  }
  for (size_t i = 0; i < kCheckIns; ++i) {
    Correction c;
    c.meta.seq = ++seq;
    c.check_in = Interned::Of("ci-" + std::to_string(i));
    c.value = static_cast<double>(i);
    kr.corrections.push_back(std::move(c));
  }
  auto started = std::chrono::steady_clock::now();
  auto series = CheckInSeries(kr, seq);
  auto took = std::chrono::steady_clock::now() - started;
  std::printf(
      "series of %zu check-ins and %zu corrections: %lld ms\n", kr.check_ins.size(),
      kr.corrections.size(),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  ASSERT_EQ(series.size(), kCheckIns);
  EXPECT_EQ(series.front().id, "ci-" + std::to_string(kCheckIns - 1));  // measured earliest
  EXPECT_EQ(series.front().value, static_cast<double>(kCheckIns - 1));  // as corrected
  EXPECT_EQ(series.back().value, 0.0);
  EXPECT_LT(took, std::chrono::seconds(1))
      << "the series costs the product of check-ins and corrections";
}

TEST_F(ProgressTest, ValueAtAPastDateIsTheLatestMeasurementUpToThen) {
  SetNow(At("2026-01-26T09:00:00Z"));
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 4, At("2026-01-10T09:00:00Z")));
  ASSERT_OK(CheckIn("kr-hires", 8, At("2026-01-17T09:00:00Z")));
  ASSERT_OK(CheckIn("kr-hires", 12, At("2026-01-24T09:00:00Z")));
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, At("2026-01-09T00:00:00Z"))["current"], 0.0);
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, At("2026-01-15T00:00:00Z"))["current"], 4.0);
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, At("2026-01-15T00:00:00Z"))["progress"], 0.2);
  // Measured exactly at `at` counts.
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, At("2026-01-17T09:00:00Z"))["current"], 8.0);
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, At("2026-01-17T08:59:59Z"))["current"], 4.0);
  EXPECT_EQ(KeyResultJson("kr-hires")["current"], 12.0);
}

TEST_F(ProgressTest, ValueAtAPastDateIsAsKnownAtAsOf) {
  SetNow(At("2026-01-26T09:00:00Z"));
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 4, At("2026-01-10T09:00:00Z")));
  const uint64_t before_backfill = Head();
  ASSERT_OK(CheckIn("kr-hires", 6, At("2026-01-14T09:00:00Z")));  // a late backfill
  const int64_t jan15 = At("2026-01-15T00:00:00Z");
  EXPECT_EQ(KeyResultJson("kr-hires", before_backfill, jan15)["current"], 4.0);
  EXPECT_EQ(KeyResultJson("kr-hires", std::nullopt, jan15)["current"], 6.0);
}

TEST_F(ProgressTest, AsOfAnOlderSeqShowsTheOldTargetTitleAndProgress) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  ASSERT_OK(CheckIn("kr-hires", 10));
  const uint64_t before = Head();
  ASSERT_OK(MoveTarget("kr-hires", 40, "second office opens"));
  ASSERT_OK(Retitle("hr-hiring", "Staff the second office"));
  ASSERT_OK(CheckIn("kr-hires", 30));

  json now = ObjectiveJson("hr-hiring");
  EXPECT_EQ(now["title"], "Staff the second office");
  EXPECT_EQ(now["key_results"][0]["target"], 40.0);
  EXPECT_EQ(now["progress"], 0.75);  // 30 / 40
  EXPECT_EQ(now["version"], 2);

  json then = ObjectiveJson("hr-hiring", before);
  EXPECT_EQ(then["title"], "Hire the people we need");
  EXPECT_EQ(then["key_results"][0]["target"], 20.0);
  EXPECT_EQ(then["key_results"][0]["current"], 10.0);
  EXPECT_EQ(then["key_results"][0]["check_in_count"], 1);
  EXPECT_EQ(then["key_results"][0]["version"], 2);  // added, one check-in
  EXPECT_EQ(then["progress"], 0.5);                 // 10 / 20
  EXPECT_EQ(then["version"], 1);

  // Between the two: the target moved, the value not yet.
  json between = ObjectiveJson("hr-hiring", before + 1);
  EXPECT_EQ(between["key_results"][0]["target"], 40.0);
  EXPECT_EQ(between["progress"], 0.25);  // 10 / 40
  // Before the objective existed there is nothing to show.
  EXPECT_TRUE(ObjectiveJson("hr-hiring", acme_seq_).is_null());
}

TEST_F(ProgressTest, AsOfATimeIsTheLastEventRecordedByThen) {
  ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
  NextWriteAt(At("2026-01-10T12:00:00Z"));
  ASSERT_OK(CheckIn("kr-hires", 5));
  const uint64_t jan10 = Head();
  NextWriteAt(At("2026-01-12T12:00:00Z"));
  ASSERT_OK(CheckIn("kr-hires", 8));
  EXPECT_EQ(state().SeqAtTime(At("2026-01-11T00:00:00Z")), jan10);
  EXPECT_EQ(state().SeqAtTime(At("2026-01-10T12:00:00Z")), jan10);  // recorded exactly then
  EXPECT_EQ(state().SeqAtTime(At("2026-01-10T11:59:59Z")), jan10 - 1);
  EXPECT_EQ(state().SeqAtTime(At("2025-12-31T00:00:00Z")), 0u);
  EXPECT_EQ(KeyResultJson("kr-hires", state().SeqAtTime(At("2026-01-11T00:00:00Z")))["current"],
            5.0);
  EXPECT_EQ(KeyResultJson("kr-hires")["current"], 8.0);
}

TEST_F(ProgressTest, CascadeRollsProgressUpThroughTheOrganisation) {
  ASSERT_OK(AddKeyResult("kr-hr", "hr-hiring", "Hires", 0, 10));
  ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", "Pipeline", {"hr-hiring"}));
  ASSERT_OK(AddKeyResult("kr-ta", "ta-pipeline", "Candidates", 0, 10));
  ASSERT_OK(CreateObjective("amara-sourcing", "2026-q1", "amara", "Sourcing", {"ta-pipeline"}));
  ASSERT_OK(AddKeyResult("kr-amara", "amara-sourcing", "Sourced", 0, 40));
  ASSERT_OK(CreateObjective("ta-q2", "2026-q2", "ta", "Next quarter", {"hr-hiring"}));
  ASSERT_OK(CheckIn("kr-hr", 5));      // 0.5
  ASSERT_OK(CheckIn("kr-ta", 10));     // 1.0
  ASSERT_OK(CheckIn("kr-amara", 10));  // 0.25
  auto cascade = ViewAt().Cascade("2026-q1", "");
  ASSERT_TRUE(cascade.ok());
  const json& nodes = (*cascade)["nodes"];
  ASSERT_EQ(nodes.size(), 1u);
  const json& acme = nodes[0];
  EXPECT_EQ(acme["unit"]["id"], "acme");
  EXPECT_TRUE(acme["objectives"].empty());
  EXPECT_EQ(acme["objective_count"], 3);  // the Q2 objective is not in this cycle
  EXPECT_DOUBLE_EQ(acme["progress"].get<double>(), 1.75 / 3);  // (0.5 + 1.0 + 0.25) / 3
  const json& hr = acme["children"][0];
  EXPECT_EQ(hr["unit"]["id"], "hr");
  ASSERT_EQ(hr["objectives"].size(), 1u);
  EXPECT_EQ(hr["objectives"][0]["id"], "hr-hiring");
  std::vector<std::string> teams;
  for (const json& t : hr["children"]) teams.push_back(t["unit"]["id"]);
  EXPECT_EQ(teams, (std::vector<std::string>{"hr-ops", "l-and-d", "ta"}));
  EXPECT_TRUE(hr["children"][0]["progress"].is_null());  // hr-ops owns nothing
  const json& ta = hr["children"][2];
  EXPECT_EQ(ta["progress"], 0.625);  // (1.0 + 0.25) / 2: its own and amara's
  EXPECT_EQ(ta["children"][0]["unit"]["id"], "amara");
  EXPECT_EQ(ta["children"][0]["progress"], 0.25);

  auto from_ta = ViewAt().Cascade("2026-q1", "ta");
  ASSERT_TRUE(from_ta.ok());
  ASSERT_EQ((*from_ta)["nodes"].size(), 1u);
  EXPECT_EQ((*from_ta)["nodes"][0]["unit"]["id"], "ta");
  EXPECT_EQ(ViewAt().Cascade("2027", "").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(ViewAt().Cascade("2026-q1", "sales").status().field(), "root");
}

}  // namespace
}  // namespace okr
