// The rules of SPEC §1, one scenario each: a command that breaks a rule is
// refused with the right code and field, and the log does not move.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/projections_fixture.h"

namespace okr {
namespace {

using testing::HrHiringTest;
using testing::kDayUs;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Acme plus one Q1 objective of HR with one key result and one check-in:
//   hr-hiring "Hire the people we need"  ── kr-hires 0 → 20 hires (ci-first: 4)
class DecideTest : public HrHiringTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(HrHiringTest::SetUp());
    ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20, "number", 1, "hires"));
    ASSERT_OK(CheckIn("kr-hires", 4, std::nullopt, "ci-first"));
  }

  // A parent no objective may have is refused both ways an objective gets
  // one: created under it, and aligned to it later.
  void ExpectRefusedAsParent(const std::string& parent) {
    SCOPED_TRACE("parent " + parent);
    EXPECT_REFUSED(CreateObjective("ta-pipeline", "2026-q1", "ta", "Build a pipeline", {parent}),
                   kInvalid, "parents");
    EXPECT_REFUSED(Align("hr-hiring", {parent}), kInvalid, "parents");
  }
};

// --- alignment ---

TEST_F(DecideTest, CyclicAlignmentIsRefused) {
  ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", "Build a pipeline", {"hr-hiring"}));
  // hr-hiring → ta-pipeline → hr-hiring would be a cycle.
  EXPECT_REFUSED(Align("hr-hiring", {"ta-pipeline"}), kInvalid, "parents");
  // A longer loop: hr-hiring → amara-sourcing → ta-pipeline → hr-hiring.
  ASSERT_OK(
      CreateObjective("amara-sourcing", "2026-q1", "amara", "Source candidates", {"ta-pipeline"}));
  EXPECT_REFUSED(Align("hr-hiring", {"amara-sourcing"}), kInvalid, "parents");
  EXPECT_TRUE(state().objective("hr-hiring")->current().parents.empty());
}

TEST_F(DecideTest, SelfAlignmentIsRefused) {
  EXPECT_REFUSED(Align("hr-hiring", {"hr-hiring"}), kInvalid, "parents");
  EXPECT_REFUSED(CreateObjective("ta-self", "2026-q1", "ta", "Me, myself", {"ta-self"}), kInvalid,
                 "parents");
  EXPECT_EQ(state().objective("ta-self"), nullptr);
}

TEST_F(DecideTest, UnknownParentObjectiveIsRefused) {
  EXPECT_REFUSED(CreateObjective("ta-pipeline", "2026-q1", "ta", "Build a pipeline",
                                 {"hr-hiring", "no-such-objective"}),
                 kInvalid, "parents");
  EXPECT_REFUSED(Align("hr-hiring", {"ghost"}), kInvalid, "parents");
}

TEST_F(DecideTest, AligningToAnObjectiveOfAClosedCycleIsRefused) {
  ASSERT_OK(CreateObjective("hr-people", "2026", "hr", "People first"));
  ASSERT_OK(Close("2026"));
  ExpectRefusedAsParent("hr-people");
  ASSERT_OK(ReopenCycle("2026"));
  EXPECT_OK(Align("hr-hiring", {"hr-people"}));
}

TEST_F(DecideTest, AligningToAnArchivedObjectiveIsRefused) {
  ASSERT_OK(CreateObjective("hr-old", "2026-q1", "hr", "Last year's plan"));
  ASSERT_OK(Archive("hr-old"));
  ExpectRefusedAsParent("hr-old");
}

TEST_F(DecideTest, ParentListedTwiceIsRefused) {
  EXPECT_REFUSED(CreateObjective("ta-pipeline", "2026-q1", "ta", "Build a pipeline",
                                 {"hr-hiring", "hr-hiring"}),
                 kInvalid, "parents");
}

// --- closed cycles ---

TEST_F(DecideTest, ClosedCycleRefusesObjectiveChanges) {
  ASSERT_OK(Close("2026-q1"));
  EXPECT_REFUSED(Retitle("hr-hiring", "Hire fewer people"), kConflict, "cycle");
  EXPECT_REFUSED(ChangeOwner("hr-hiring", "ta"), kConflict, "cycle");
  EXPECT_REFUSED(Archive("hr-hiring"), kConflict, "cycle");
  EXPECT_REFUSED(CreateObjective("hr-late", "2026-q1", "hr", "Too late"), kConflict, "cycle");
  EXPECT_EQ(state().objective("hr-hiring")->current().title, "Hire the people we need");
}

TEST_F(DecideTest, ClosedCycleRefusesNewKeyResult) {
  ASSERT_OK(Close("2026-q1"));
  EXPECT_REFUSED(AddKeyResult("kr-late", "hr-hiring", "Late key result", 0, 1), kConflict,
                 "objective");
  EXPECT_EQ(state().key_result("kr-late"), nullptr);
}

TEST_F(DecideTest, ClosedCycleRefusesCheckInCorrectionAndTargetChange) {
  ASSERT_OK(Close("2026-q1"));
  EXPECT_REFUSED(CheckIn("kr-hires", 9), kConflict, "cycle");
  EXPECT_REFUSED(Correct("kr-hires", "ci-first", 5), kConflict, "cycle");
  EXPECT_REFUSED(MoveTarget("kr-hires", 10, "too ambitious"), kConflict, "cycle");
  EXPECT_REFUSED(RemoveKeyResult("kr-hires"), kConflict, "cycle");
  EXPECT_EQ(state().key_result("kr-hires")->check_ins.size(), 1u);
  EXPECT_TRUE(state().key_result("kr-hires")->corrections.empty());
}

TEST_F(DecideTest, ClosedCycleAcceptsCommentsAndReviews) {
  ASSERT_OK(Close("2026-q1"));
  auto commented = Comment("hr-hiring", "Great quarter, team!", "jonas");
  ASSERT_OK(commented);
  EXPECT_TRUE(commented->changed);
  ASSERT_OK(Comment("kr-hires", "The numbers include interns."));
  auto reviewed = Review("hr-hiring", 0.3, "missed", "Hiring froze in February");
  ASSERT_OK(reviewed);
  EXPECT_EQ(reviewed->seq, Head());
  const Objective* o = state().objective("hr-hiring");
  ASSERT_EQ(o->comments.size(), 1u);
  EXPECT_EQ(o->comments[0].meta.actor, "jonas");
  EXPECT_EQ(state().key_result("kr-hires")->comments.size(), 1u);
  ASSERT_TRUE(o->current().review.has_value());
  EXPECT_EQ(o->current().review->outcome, "missed");
  EXPECT_DOUBLE_EQ(o->current().review->score, 0.3);
}

TEST_F(DecideTest, ReopenedCycleAcceptsChangesAgain) {
  ASSERT_OK(Close("2026-q1"));
  EXPECT_REFUSED(CheckIn("kr-hires", 9), kConflict, "cycle");
  ASSERT_OK(ReopenCycle("2026-q1"));
  EXPECT_OK(CheckIn("kr-hires", 9));
  EXPECT_OK(Retitle("hr-hiring", "Hire the right people"));
  EXPECT_OK(AddKeyResult("kr-offers", "hr-hiring", "Offers accepted", 0, 30));
  EXPECT_EQ(state().key_result("kr-hires")->check_ins.size(), 2u);
  EXPECT_EQ(state().objective("hr-hiring")->current().title, "Hire the right people");
}

TEST_F(DecideTest, ClosingAClosedCycleIsRefused) {
  ASSERT_OK(Close("2026-q1"));
  EXPECT_REFUSED(Close("2026-q1"), kConflict, "id");
  EXPECT_REFUSED(ReopenCycle("2026-q2"), kConflict, "id");
}

// --- references ---

TEST_F(DecideTest, UnknownOwnerIsRefused) {
  EXPECT_REFUSED(CreateObjective("ta-pipeline", "2026-q1", "nobody", "Build a pipeline"), kInvalid,
                 "owner");
  EXPECT_REFUSED(ChangeOwner("hr-hiring", "nobody"), kInvalid, "owner");
}

TEST_F(DecideTest, UnknownCycleIsRefused) {
  EXPECT_REFUSED(CreateObjective("ta-pipeline", "2027-q1", "ta", "Build a pipeline"), kInvalid,
                 "cycle");
}

TEST_F(DecideTest, CheckInOnUnknownKeyResultIsNotFound) {
  EXPECT_REFUSED(CheckIn("kr-ghost", 1), kNotFound, "key_result");
}

TEST_F(DecideTest, CorrectionOfAnotherKeyResultsCheckInIsRefused) {
  ASSERT_OK(AddKeyResult("kr-offers", "hr-hiring", "Offers accepted", 0, 30));
  EXPECT_REFUSED(Correct("kr-offers", "ci-first", 5), kInvalid, "corrects");
  EXPECT_REFUSED(Correct("kr-hires", "ci-never", 5), kInvalid, "corrects");
}

// --- key result measures and values ---

TEST_F(DecideTest, TargetEqualToStartIsRefused) {
  EXPECT_REFUSED(AddKeyResult("kr-flat", "hr-hiring", "Flat", 10, 10), kInvalid, "target");
  // Moving the target onto the start is refused the same way.
  EXPECT_REFUSED(MoveTarget("kr-hires", 0, "give up"), kInvalid, "target");
  EXPECT_DOUBLE_EQ(state().key_result("kr-hires")->current().target, 20);
}

TEST_F(DecideTest, NonFiniteValuesAreRefused) {
  EXPECT_REFUSED(CheckIn("kr-hires", kNaN), kInvalid, "value");
  EXPECT_REFUSED(CheckIn("kr-hires", kInf), kInvalid, "value");
  EXPECT_REFUSED(CheckIn("kr-hires", -kInf), kInvalid, "value");
  EXPECT_REFUSED(Correct("kr-hires", "ci-first", kNaN), kInvalid, "value");
  EXPECT_REFUSED(AddKeyResult("kr-inf", "hr-hiring", "Infinite", 0, kInf), kInvalid, "target");
  EXPECT_REFUSED(AddKeyResult("kr-nan", "hr-hiring", "Not a number", kNaN, 1), kInvalid, "start");
  EXPECT_REFUSED(AddKeyResult("kr-w", "hr-hiring", "Weightless", 0, 1, "number", kNaN), kInvalid,
                 "weight");
}

// SPEC §6 "Numbers stay finite": values, starts and targets within ±1e15,
// weights in (0, 1000]; the bounds themselves are accepted.
TEST_F(DecideTest, NumbersBeyondTheirBoundsAreRefused) {
  EXPECT_REFUSED(CheckIn("kr-hires", 1e308), kInvalid, "value");
  EXPECT_REFUSED(CheckIn("kr-hires", -1.0000001e15), kInvalid, "value");
  EXPECT_REFUSED(Correct("kr-hires", "ci-first", 2e15), kInvalid, "value");
  EXPECT_REFUSED(AddKeyResult("kr-big", "hr-hiring", "Big", 0, 1e16), kInvalid, "target");
  EXPECT_REFUSED(AddKeyResult("kr-big", "hr-hiring", "Big", -1e16, 0), kInvalid, "start");
  EXPECT_REFUSED(AddKeyResult("kr-heavy", "hr-hiring", "Heavy", 0, 1, "number", 1e308), kInvalid,
                 "weight");
  EXPECT_REFUSED(AddKeyResult("kr-heavy", "hr-hiring", "Heavy", 0, 1, "number", 1000.5), kInvalid,
                 "weight");
  EXPECT_REFUSED(MoveTarget("kr-hires", 1e300, "ambition"), kInvalid, "target");

  EXPECT_OK(AddKeyResult("kr-edge", "hr-hiring", "At the bounds", -1e15, 1e15, "number", 1000));
  EXPECT_OK(CheckIn("kr-edge", 1e15));
  EXPECT_OK(CheckIn("kr-hires", -1e15));
  EXPECT_TRUE(std::isfinite(ObjectiveProgress("hr-hiring")));
}

TEST_F(DecideTest, BooleanCheckInOfHalfIsRefused) {
  ASSERT_OK(AddKeyResult("kr-policy", "hr-hiring", "Hiring policy published", 0, 1, "boolean"));
  EXPECT_REFUSED(CheckIn("kr-policy", 0.5), kInvalid, "value");
  EXPECT_OK(CheckIn("kr-policy", 1));
}

TEST_F(DecideTest, BooleanTargetOfTwoIsRefused) {
  EXPECT_REFUSED(AddKeyResult("kr-policy", "hr-hiring", "Hiring policy published", 0, 2, "boolean"),
                 kInvalid, "target");
  EXPECT_REFUSED(
      AddKeyResult("kr-policy", "hr-hiring", "Hiring policy published", 0.5, 1, "boolean"),
      kInvalid, "start");
}

TEST_F(DecideTest, ConfidenceAboveOneIsRefused) {
  okr::RecordCheckIn c;
  c.key_result = "kr-hires";
  c.value = 6;
  c.confidence = 1.5;
  EXPECT_REFUSED(Run(c), kInvalid, "confidence");
  c.confidence = -0.1;
  EXPECT_REFUSED(Run(c), kInvalid, "confidence");
  c.confidence = 1.0;
  EXPECT_OK(Run(c));
}

TEST_F(DecideTest, MeasuredAtInTheFutureIsRefused) {
  step_us_ = 0;  // hold the clock still so "now" is exact
  EXPECT_REFUSED(CheckIn("kr-hires", 6, Now() + 1), kInvalid, "measured_at");
  EXPECT_REFUSED(CheckIn("kr-hires", 6, Now() + kDayUs), kInvalid, "measured_at");
  ASSERT_OK(CheckIn("kr-hires", 6, Now(), "ci-now"));
  EXPECT_EQ(state().key_result("kr-hires")->check_ins.back().measured_at_us, Now());
}

// --- ids and texts ---

TEST_F(DecideTest, IdReusedAcrossKindsIsRefused) {
  EXPECT_REFUSED(CreateObjective("hr", "2026-q1", "hr", "Same id as a unit"), kAlreadyExists, "id");
  EXPECT_REFUSED(CreateCycle("acme", "Acme", "2027-01-01", "2027-12-31"), kAlreadyExists, "id");
  EXPECT_REFUSED(AddKeyResult("hr-hiring", "hr-hiring", "Same id as its objective", 0, 1),
                 kAlreadyExists, "id");
  EXPECT_REFUSED(CreateUnit("2026-q1", "team", "Same id as a cycle", "hr"), kAlreadyExists, "id");
  EXPECT_REFUSED(CheckIn("kr-hires", 5, std::nullopt, "kr-hires"), kAlreadyExists, "id");
  // A check-in id is an id like the others.
  EXPECT_REFUSED(CreateObjective("ci-first", "2026-q1", "hr", "Same id as a check-in"),
                 kAlreadyExists, "id");
  EXPECT_REFUSED(CreateObjective("hr-hiring", "2026-q1", "hr", "Twice"), kAlreadyExists, "id");
}

TEST_F(DecideTest, InvalidIdsAreRefused) {
  EXPECT_REFUSED(CreateObjective("Hr-Upper", "2026-q1", "hr", "Uppercase"), kInvalid, "id");
  EXPECT_REFUSED(CreateObjective("../x", "2026-q1", "hr", "Path"), kInvalid, "id");
  EXPECT_REFUSED(CreateObjective(std::string(65, 'a'), "2026-q1", "hr", "Too long"), kInvalid,
                 "id");
  EXPECT_REFUSED(CreateObjective("", "2026-q1", "hr", "Empty"), kInvalid, "id");
  EXPECT_REFUSED(CreateObjective("has space", "2026-q1", "hr", "Space"), kInvalid, "id");
  EXPECT_REFUSED(CreateUnit("Sales", "team", "Sales", "acme"), kInvalid, "id");
  EXPECT_OK(CreateObjective(std::string(64, 'a'), "2026-q1", "hr", "Exactly 64"));
  EXPECT_OK(CreateObjective("a.b_c-9", "2026-q1", "hr", "Every allowed character"));
}

TEST_F(DecideTest, TitleOverTwoHundredCharactersIsRefused) {
  EXPECT_REFUSED(CreateObjective("o-201", "2026-q1", "hr", std::string(201, 'a')), kInvalid,
                 "title");
  EXPECT_OK(CreateObjective("o-200", "2026-q1", "hr", std::string(200, 'a')));
  // Characters, not bytes: 200 × "é" is 400 bytes and still 200 characters.
  std::string e200;
  for (int i = 0; i < 200; ++i) e200 += "\xC3\xA9";
  ASSERT_EQ(e200.size(), 400u);
  EXPECT_OK(CreateObjective("o-e200", "2026-q1", "hr", e200));
  EXPECT_REFUSED(CreateObjective("o-e201", "2026-q1", "hr", e200 + "\xC3\xA9"), kInvalid, "title");
  EXPECT_REFUSED(Retitle("hr-hiring", std::string(201, 'b')), kInvalid, "title");
  EXPECT_EQ(state().objective("o-e200")->current().title, e200);
}

TEST_F(DecideTest, ControlCharacterInTitleIsRefused) {
  EXPECT_REFUSED(CreateObjective("o-tab", "2026-q1", "hr", "Hire\tpeople"), kInvalid, "title");
  EXPECT_REFUSED(CreateObjective("o-nl", "2026-q1", "hr", "Hire\npeople"), kInvalid, "title");
  EXPECT_REFUSED(CreateObjective("o-bel", "2026-q1", "hr", std::string("Hire\x01people")), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-del", "2026-q1", "hr", "Hire\x7fpeople"), kInvalid, "title");
  EXPECT_REFUSED(CreateObjective("o-nul", "2026-q1", "hr", std::string("Hire\0people", 11)),
                 kInvalid, "title");
  // C1 controls (U+0080–U+009F) are control characters too: NEL, CSI.
  EXPECT_REFUSED(CreateObjective("o-nel", "2026-q1", "hr", "Hire\xC2\x85people"), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-csi", "2026-q1", "hr",
                                 "Hire\xC2\x9B"
                                 "31m"),
                 kInvalid, "title");
  EXPECT_REFUSED(Comment("hr-hiring", "Hi\xC2\x80there"), kInvalid, "text");
  // A line break is fine in a comment, not in a title.
  EXPECT_OK(Comment("hr-hiring", "Line one\nLine two"));
}

TEST_F(DecideTest, InvalidUtf8TitleIsRefused) {
  EXPECT_REFUSED(CreateObjective("o-bad", "2026-q1", "hr", "Hire \xC3"), kInvalid, "title");
  EXPECT_REFUSED(CreateObjective("o-overlong", "2026-q1", "hr", "\xC0\xAF"), kInvalid, "title");
  // What RFC 3629 forbids and a JSON encoder refuses to write: overlong
  // three- and four-byte forms, UTF-16 surrogates, code points past U+10FFFF.
  EXPECT_REFUSED(CreateObjective("o-overlong3", "2026-q1", "hr", "\xE0\x80\xAF"), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-overlong4", "2026-q1", "hr", "\xF0\x80\x80\xAF"), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-surrogate", "2026-q1", "hr", "Hire \xED\xA0\x80"), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-beyond", "2026-q1", "hr", "\xF4\x90\x80\x80"), kInvalid,
                 "title");
  EXPECT_REFUSED(CreateObjective("o-f8", "2026-q1", "hr", "\xF8\x88\x80\x80\x80"), kInvalid,
                 "title");
  EXPECT_REFUSED(Comment("hr-hiring", "Nice \xED\xBF\xBF"), kInvalid, "text");
  // The largest code points of each length are fine, and every read can write them.
  const std::string edges = "\xC2\xA0 \xED\x9F\xBF \xEF\xBF\xBD \xF4\x8F\xBF\xBF";
  ASSERT_OK(CreateObjective("o-edges", "2026-q1", "hr", edges));
  EXPECT_EQ(ObjectiveJson("o-edges")["title"], edges);
  EXPECT_NO_THROW(ObjectiveJson("o-edges").dump());
}

TEST_F(DecideTest, EmptyTitleIsRefused) {
  EXPECT_REFUSED(CreateObjective("o-empty", "2026-q1", "hr", ""), kInvalid, "title");
  EXPECT_REFUSED(CreateObjective("o-blank", "2026-q1", "hr", "   "), kInvalid, "title");
}

TEST_F(DecideTest, UnicodeTitleIsAccepted) {
  const std::string title = "Développer l’équipe 🚀 — 採用を強化する";
  ASSERT_OK(CreateObjective("ta-unicode", "2026-q1", "ta", title, {"hr-hiring"}));
  EXPECT_EQ(state().objective("ta-unicode")->current().title, title);
  EXPECT_EQ(ObjectiveJson("ta-unicode")["title"], title);
}

// --- cycles and units ---

TEST_F(DecideTest, CycleEndingBeforeItStartsIsRefused) {
  EXPECT_REFUSED(CreateCycle("2027", "2027", "2027-12-31", "2027-01-01"), kInvalid, "ends");
  EXPECT_REFUSED(CreateCycle("2027", "2027", "2027-01-01", "2027-01-01"), kInvalid, "ends");
  EXPECT_REFUSED(CreateCycle("2027", "2027", "2027-02-30", "2027-12-31"), kInvalid, "starts");
  EXPECT_OK(CreateCycle("2027", "2027", "2027-01-01", "2027-12-31"));
}

TEST_F(DecideTest, QuarterOutsideItsYearIsRefused) {
  EXPECT_REFUSED(CreateCycle("2026-q4", "Q4 2026", "2026-10-01", "2027-01-15", "2026"), kInvalid,
                 "parent");
  EXPECT_REFUSED(CreateCycle("2025-q4", "Q4 2025", "2025-10-01", "2025-12-31", "2026"), kInvalid,
                 "parent");
  EXPECT_REFUSED(CreateCycle("2026-q3", "Q3 2026", "2026-07-01", "2026-09-30", "2031"), kInvalid,
                 "parent");
  EXPECT_OK(CreateCycle("2026-q4", "Q4 2026", "2026-10-01", "2026-12-31", "2026"));
}

TEST_F(DecideTest, YearShrunkBelowItsQuartersIsRefused) {
  okr::UpdateCycle shrink;
  shrink.id = "2026";
  shrink.ends = "2026-03-31";  // 2026-q2 (Apr–Jun) would fall outside its year
  EXPECT_REFUSED(Run(shrink), kInvalid, "ends");
  okr::UpdateCycle late_start;
  late_start.id = "2026";
  late_start.starts = "2026-02-01";  // 2026-q1 starts on Jan 1
  EXPECT_REFUSED(Run(late_start), kInvalid, "starts");
  EXPECT_EQ(state().cycle("2026")->current().ends, "2026-12-31");
  // Shrinking to what the quarters still fit in is fine.
  okr::UpdateCycle fits;
  fits.id = "2026";
  fits.ends = "2026-06-30";
  EXPECT_OK(Run(fits));
  EXPECT_EQ(state().cycle("2026")->current().ends, "2026-06-30");
  // A quarter moved outside its year is refused as before.
  okr::UpdateCycle quarter;
  quarter.id = "2026-q2";
  quarter.ends = "2026-07-31";
  EXPECT_REFUSED(Run(quarter), kInvalid, "parent");
}

TEST_F(DecideTest, UnitParentMissingIsRefused) {
  EXPECT_REFUSED(CreateUnit("payroll", "team", "Payroll", "finance"), kInvalid, "parent");
  EXPECT_REFUSED(CreateUnit("payroll", "team", "Payroll", ""), kInvalid, "parent");
  EXPECT_REFUSED(MoveUnit("ta", "finance"), kInvalid, "parent");
}

TEST_F(DecideTest, UnitMovedUnderItsOwnDescendantIsRefused) {
  EXPECT_REFUSED(MoveUnit("hr", "ta"), kInvalid, "parent");
  EXPECT_REFUSED(MoveUnit("hr", "hr"), kInvalid, "parent");
  ASSERT_OK(CreateUnit("sourcing", "team", "Sourcing", "ta"));
  EXPECT_REFUSED(MoveUnit("ta", "sourcing"), kInvalid, "parent");
  // Moving sideways is fine.
  EXPECT_OK(MoveUnit("sourcing", "hr-ops"));
  EXPECT_EQ(state().unit("sourcing")->current().parent, "hr-ops");
}

TEST_F(DecideTest, SecondCompanyIsRefused) {
  EXPECT_REFUSED(CreateUnit("globex", "company", "Globex", ""), kInvalid, "kind");
}

TEST_F(DecideTest, EmailOnlyForPeople) {
  EXPECT_REFUSED(CreateUnit("payroll", "team", "Payroll", "hr", "payroll@acme.example"), kInvalid,
                 "email");
  EXPECT_REFUSED(CreateUnit("noor", "person", "Noor", "ta", "not-an-address"), kInvalid, "email");
}

// --- concurrency, no-ops and idempotency ---

TEST_F(DecideTest, IfMatchMismatchIsAConflict) {
  const uint64_t version = state().Version("hr-hiring");
  ASSERT_EQ(version, 1u);
  auto retitle = [&](uint64_t if_match) {
    WriteRequest request;
    okr::UpdateObjective c;
    c.id = "hr-hiring";
    c.title = "Hire well";
    request.command = c;
    request.actor = "admin";
    request.if_match = if_match;
    return Write(request);
  };
  EXPECT_REFUSED(retitle(version + 1), kVersionMismatch, "If-Match");
  EXPECT_REFUSED(retitle(0), kVersionMismatch, "If-Match");
  auto written = retitle(version);
  ASSERT_OK(written);
  EXPECT_EQ(written->version, 2u);
  EXPECT_EQ(written->seq, Head());
  // The version the writer saw is now stale.
  EXPECT_REFUSED(retitle(version), kVersionMismatch, "If-Match");
}

TEST_F(DecideTest, PatchChangingNothingAppendsNothing) {
  const uint64_t head = Head();
  auto same_title = Retitle("hr-hiring", "Hire the people we need");
  ASSERT_OK(same_title);
  EXPECT_FALSE(same_title->changed);
  EXPECT_FALSE(same_title->replayed);
  EXPECT_EQ(same_title->seq, acme_seq_ + 1);  // the objective's own last event (SPEC §3)
  EXPECT_EQ(same_title->version, 1u);
  auto same_target = MoveTarget("kr-hires", 20, "no change");
  ASSERT_OK(same_target);
  EXPECT_FALSE(same_target->changed);
  EXPECT_EQ(Head(), head);
  // A real change does append.
  auto moved = MoveTarget("kr-hires", 25, "more budget");
  ASSERT_OK(moved);
  EXPECT_TRUE(moved->changed);
  EXPECT_EQ(Head(), head + 1);
}

TEST_F(DecideTest, IdempotentRetryIsReplayed) {
  WriteRequest request;
  okr::RecordCheckIn c;
  c.key_result = "kr-hires";
  c.value = 7;
  request.command = c;
  request.actor = "amara";
  request.idempotency_key = "amara-2026-01-05-1";
  request.fingerprint = Sha256("check-in kr-hires 7");
  auto first = Write(request);
  ASSERT_OK(first);
  EXPECT_FALSE(first->replayed);
  const uint64_t head = Head();
  EXPECT_EQ(first->seq, head);

  auto retry = Write(request);
  ASSERT_OK(retry);
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->seq, first->seq);
  EXPECT_EQ(retry->entity, "kr-hires");
  EXPECT_EQ(retry->version, first->version);
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(state().key_result("kr-hires")->check_ins.size(), 2u);

  request.fingerprint = Sha256("check-in kr-hires 8");
  EXPECT_REFUSED(Write(request), kInvalid, "Idempotency-Key");
}

TEST_F(DecideTest, ConcurrentCheckInsWithTheSameIdLandOnce) {
  // A client that retries without an Idempotency-Key while its first request
  // is still in flight: the id is the client's, so only one may land.
  constexpr int kRounds = 20;
  constexpr int kThreads = 6;
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = "ci-retry-" + std::to_string(round);
    std::atomic<int> ready{0};
    std::atomic<int> landed{0}, taken{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        WriteRequest request;
        okr::RecordCheckIn c;
        c.key_result = "kr-hires";
        c.id = id;
        c.value = 5;
        request.command = c;
        request.actor = "amara";
        ready.fetch_add(1);
        while (ready.load() < kThreads) {
        }
        auto result = projector().Write(request);
        if (result.ok()) {
          landed.fetch_add(1);
        } else if (result.status().code() == Status::Code::kAlreadyExists) {
          taken.fetch_add(1);
        } else {
          other.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(landed.load(), 1) << "round " << round;
    ASSERT_EQ(taken.load(), kThreads - 1) << "round " << round;
    ASSERT_EQ(other.load(), 0) << "round " << round;
  }
  // The log still folds: every check-in id once.
  ASSERT_EQ(projector().seq(), Head());
  auto replayed = Projector::Rebuild(store(), Head(), /*use_snapshot=*/false);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->key_result("kr-hires")->check_ins.size(), 1u + kRounds);
}

TEST_F(DecideTest, ConcurrentCorrectionsRecordTheValueTheyReplaced) {
  constexpr int kThreads = 6;
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      WriteRequest request;
      request.command = okr::CorrectCheckIn{"kr-hires", "ci-first", 10.0 + t, "recount"};
      request.actor = "jonas";
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      if (!projector().Write(request).ok()) failed.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  // Each correction's "before" is the value it replaced: a chain from 4.
  const auto& corrections = state().key_result("kr-hires")->corrections;
  ASSERT_EQ(corrections.size(), static_cast<size_t>(kThreads));
  double value = 4;
  for (const Correction& c : corrections) {
    EXPECT_EQ(c.before, value) << "correction at seq " << c.meta.seq;
    value = c.value;
  }
  EXPECT_EQ(KeyResultJson("kr-hires")["current"], value);
}

}  // namespace
}  // namespace okr
