// The daily reminder digest (projections/read/digest.h) on the demo company
// (api/demo.cc), made on 2026-05-20 at noon: Q1 2026 closed and reviewed,
// Q2 2026 (2026-04-01 to 2026-06-30) under way with weekly check-ins
// measured on Sundays at 16:00 — the last on 2026-05-17, except
// kr-frameworks-published, last checked in on 2026-04-26. Each test
// changes the story as a user would and asks for the digest at a chosen
// `now`; the expectations are worked out from the story by hand.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "api/demo.h"
#include "eventstore/base/time.h"
#include "projections/read/digest.h"
#include "tests/projections_fixture.h"

namespace okr::testing {
namespace {

using nlohmann::json;

const int64_t kDemoNow = At("2026-05-20T12:00:00Z");
// 8 days and an hour after the last weekly check-in; Q2 ends in 36 days.
const int64_t kMay25 = At("2026-05-25T17:00:00Z");
// Q2's last day, 2026-06-30, is 10 days ahead.
const int64_t kJune20 = At("2026-06-20T09:00:00Z");

class DigestTest : public ProjectionsTest {
 protected:
  void SetUp() override {
    store_options_.env = NoSyncEnv();
    SetNow(kDemoNow);
    ASSERT_NO_FATAL_FAILURE(Open());
    ASSERT_OK(api::FillDemo(&projector(), &store(), kDemoNow, [this](int64_t us) { SetNow(us); }));
    SetNow(kDemoNow);
    ASSERT_EQ(api::DemoCycles(kDemoNow).current_quarter, "2026-q2");
  }

  json DigestAt(int64_t now_us, size_t max_entries = kDigestMaxEntries) const {
    return DigestJson(state(), now_us, max_entries);
  }
};

// "unit key-result days_since" per stale key result, in the digest's order.
std::vector<std::string> Stale(const json& digest) {
  std::vector<std::string> lines;
  for (const json& u : digest["units"]) {
    for (const json& kr : u["stale_key_results"]) {
      lines.push_back(u["unit"].get<std::string>() + " " + kr["id"].get<std::string>() + " " +
                      std::to_string(kr["days_since"].get<int64_t>()));
    }
  }
  return lines;
}

// "unit objective days_left" per objective due for review, in the digest's order.
std::vector<std::string> Due(const json& digest) {
  std::vector<std::string> lines;
  for (const json& u : digest["units"]) {
    for (const json& o : u["objectives_due_for_review"]) {
      lines.push_back(u["unit"].get<std::string>() + " " + o["id"].get<std::string>() + " " +
                      std::to_string(o["days_left"].get<int64_t>()));
    }
  }
  return lines;
}

std::vector<std::string> Units(const json& digest) {
  std::vector<std::string> ids;
  for (const json& u : digest["units"]) ids.push_back(u["unit"].get<std::string>());
  return ids;
}

const json* UnitIn(const json& digest, const std::string& id) {
  for (const json& u : digest["units"]) {
    if (u["unit"] == id) return &u;
  }
  return nullptr;
}

// Every current key result but kr-stay-interviews, checked in 6 days before
// May 25, is stale there: 8 days since 2026-05-17T16:00, 29 since 2026-04-26.
const std::vector<std::string> kStaleOnMay25 = {
    "eng kr-mentors-matched 8",       "hr kr-regretted-attrition 8",
    "hr-ops kr-payroll-errors 8",     "hr-ops kr-records-migrated 8",
    "l-and-d kr-development-plans 8", "l-and-d kr-frameworks-published 29",
    "p-2264 kr-academy-sessions 8",   "p-3307 kr-offer-acceptance 8",
    "p-3307 kr-referral-hires 8",
};

TEST_F(DigestTest, KeyResultCheckedInEightDaysAgoIsStaleAndSixDaysAgoIsNot) {
  ASSERT_OK(CheckIn("kr-stay-interviews", 30, At("2026-05-19T17:00:00Z")));
  const json d = DigestAt(kMay25);
  EXPECT_EQ(d["type"], "digest");
  EXPECT_EQ(d["day"], "2026-05-25");
  EXPECT_EQ(d["generated_at"], "2026-05-25T17:00:00.000000Z");
  EXPECT_EQ(d["as_of_seq"], Head());
  EXPECT_EQ(d["truncated"], false);
  EXPECT_EQ(Stale(d), kStaleOnMay25);
  EXPECT_EQ(Due(d), std::vector<std::string>{});  // Q2 ends in 36 days
  const json* eng = UnitIn(d, "eng");
  ASSERT_NE(eng, nullptr);
  EXPECT_EQ(*eng, json::parse(R"({"unit": "eng", "name": "Engineering",
      "stale_key_results": [{"id": "kr-mentors-matched", "title": "New engineers with a mentor",
        "objective": "eng-mentoring", "cycle": "2026-q2",
        "last_check_in_at": "2026-05-17T16:00:00.000000Z", "days_since": 8}],
      "objectives_due_for_review": []})"));
}

TEST_F(DigestTest, StaleFromSevenWholeDaysAfterTheNewestCheckIn) {
  // kr-stay-interviews is checked in twice more: measured out of order, so
  // the newest by measured_at is the first of the two.
  ASSERT_OK(CheckIn("kr-stay-interviews", 30, At("2026-05-19T17:00:00Z")));
  ASSERT_OK(CheckIn("kr-stay-interviews", 28, At("2026-05-18T10:00:00Z")));
  auto stay = [&](int64_t now) {
    const json d = DigestAt(now);
    const json* hr = UnitIn(d, "hr");
    if (hr == nullptr) return json(nullptr);
    for (const json& kr : (*hr)["stale_key_results"]) {
      if (kr["id"] == "kr-stay-interviews") return kr;
    }
    return json(nullptr);
  };
  EXPECT_EQ(stay(At("2026-05-26T16:59:59.999999Z")), nullptr);
  const json at_seven = stay(At("2026-05-26T17:00:00Z"));
  ASSERT_TRUE(at_seven.is_object());
  EXPECT_EQ(at_seven["last_check_in_at"], "2026-05-19T17:00:00.000000Z");
  EXPECT_EQ(at_seven["days_since"], 7);
}

TEST_F(DigestTest, KeyResultNeverCheckedInIsStaleSevenDaysAfterItWasCreated) {
  NextWriteAt(At("2026-05-20T13:00:00Z"));
  ASSERT_OK(
      AddKeyResult("kr-exit-interviews", "hr-reduce-attrition", "Exit interviews analysed", 0, 20));
  auto listed = [&](int64_t now) {
    const json d = DigestAt(now);
    for (const json& kr : (*UnitIn(d, "hr"))["stale_key_results"]) {
      if (kr["id"] == "kr-exit-interviews") return kr;
    }
    return json(nullptr);
  };
  EXPECT_EQ(listed(At("2026-05-27T12:59:59.999999Z")), nullptr);
  EXPECT_EQ(listed(At("2026-05-27T13:00:00Z")),
            json::parse(R"({"id": "kr-exit-interviews", "title": "Exit interviews analysed",
                "objective": "hr-reduce-attrition", "cycle": "2026-q2", "last_check_in_at": null,
                "days_since": 7})"));
}

TEST_F(DigestTest, ObjectiveOfACycleEndingInTenDaysIsDueUntilReviewed) {
  ASSERT_OK(Review("ld-career-paths", 0.6, "partially", "Three of five frameworks out."));
  const json d = DigestAt(kJune20);
  // Q2's active objectives but the reviewed one; ta-campus-events is archived.
  EXPECT_EQ(Due(d), (std::vector<std::string>{
                        "acme acme-people-stay 10",
                        "eng eng-mentoring 10",
                        "hr hr-reduce-attrition 10",
                        "hr-ops ops-one-hris 10",
                        "p-2264 manager-academy 10",
                        "p-3307 ta-grow-referrals 10",
                    }));
  EXPECT_EQ(Units(d), (std::vector<std::string>{"acme", "eng", "hr", "hr-ops", "l-and-d", "p-2264",
                                                "p-3307"}));
  const json* hr = UnitIn(d, "hr");
  ASSERT_NE(hr, nullptr);
  EXPECT_EQ((*hr)["objectives_due_for_review"],
            json::parse(R"([{"id": "hr-reduce-attrition", "title": "Reduce regretted attrition",
                "cycle": "2026-q2", "cycle_ends": "2026-06-30", "days_left": 10}])"));
  EXPECT_EQ((*UnitIn(d, "acme"))["stale_key_results"], json::array());  // it has no key results
  // On 2026-06-20 the weekly check-ins are 33 days old (ld-career-paths'
  // key results are listed still: a review does not check in).
  EXPECT_EQ(Stale(d).size(), 10u);
}

TEST_F(DigestTest, DueFromFourteenDaysBeforeTheCycleEndsToItsLastDay) {
  auto due = [&](const char* now) { return Due(DigestAt(At(now))).size(); };
  EXPECT_EQ(due("2026-06-15T23:59:59Z"), 0u);  // 15 days left
  EXPECT_EQ(due("2026-06-16T00:00:00Z"), 7u);
  EXPECT_EQ(Due(DigestAt(At("2026-06-16T00:00:00Z")))[0], "acme acme-people-stay 14");
  EXPECT_EQ(Due(DigestAt(At("2026-06-30T23:59:59Z")))[0], "acme acme-people-stay 0");
  // The cycle is over: its objectives wait for review no more in the
  // digest, and none of its key results is due a check-in.
  EXPECT_EQ(DigestAt(At("2026-07-01T00:00:00Z"))["units"], json::array());
}

TEST_F(DigestTest, ClosedCycleListsNothing) {
  ASSERT_EQ(Stale(DigestAt(kMay25)).size(), 10u);
  ASSERT_EQ(Due(DigestAt(kJune20)).size(), 7u);
  ASSERT_OK(Close("2026-q2"));
  EXPECT_EQ(DigestAt(kMay25)["units"], json::array());
  EXPECT_EQ(DigestAt(kJune20)["units"], json::array());
  // Reopened, it is listed again.
  ASSERT_OK(ReopenCycle("2026-q2"));
  EXPECT_EQ(Stale(DigestAt(kMay25)).size(), 10u);
  EXPECT_EQ(Due(DigestAt(kJune20)).size(), 7u);
}

TEST_F(DigestTest, GroupedByTheKeyResultsOwnerElseItsObjectives) {
  UpdateKeyResult own;
  own.id = "kr-development-plans";  // of ld-career-paths, owned by l-and-d
  own.owner = "p-2264";             // Raj Patel
  ASSERT_OK(Run(own));
  ASSERT_OK(ChangeOwner("ops-one-hris", "p-5190"));  // Lena Fischer; its key results follow it
  ASSERT_OK(CheckIn("kr-stay-interviews", 30, At("2026-05-19T17:00:00Z")));
  const json d = DigestAt(kMay25);
  EXPECT_EQ(Stale(d), (std::vector<std::string>{
                          "eng kr-mentors-matched 8",
                          "hr kr-regretted-attrition 8",
                          "l-and-d kr-frameworks-published 29",
                          "p-2264 kr-academy-sessions 8",
                          "p-2264 kr-development-plans 8",
                          "p-3307 kr-offer-acceptance 8",
                          "p-3307 kr-referral-hires 8",
                          "p-5190 kr-payroll-errors 8",
                          "p-5190 kr-records-migrated 8",
                      }));
  EXPECT_EQ((*UnitIn(d, "p-5190"))["name"], "Lena Fischer");
  EXPECT_EQ((*UnitIn(d, "p-2264"))["name"], "Raj Patel");
}

TEST_F(DigestTest, RemovedKeyResultsAndArchivedObjectivesAreLeftOut) {
  ASSERT_OK(RemoveKeyResult("kr-offer-acceptance"));
  ASSERT_OK(Archive("eng-mentoring", "Folded into onboarding"));
  const json may25 = DigestAt(kMay25);
  EXPECT_EQ(UnitIn(may25, "eng"), nullptr);
  EXPECT_EQ((*UnitIn(may25, "p-3307"))["stale_key_results"].size(), 1u);  // referral hires
  EXPECT_EQ(Stale(may25).size(), 8u);
  EXPECT_EQ(Due(DigestAt(kJune20)).size(), 6u);
}

TEST_F(DigestTest, CutToTheBoundInTheAnswersOrder) {
  json d = DigestAt(kMay25, 3);
  EXPECT_EQ(d["truncated"], true);
  EXPECT_EQ(Stale(d),
            (std::vector<std::string>{"eng kr-mentors-matched 8", "hr kr-regretted-attrition 8",
                                      "hr kr-stay-interviews 8"}));
  d = DigestAt(kMay25, 10);  // exactly as many as there are
  EXPECT_EQ(d["truncated"], false);
  EXPECT_EQ(Stale(d).size(), 10u);
  d = DigestAt(kMay25, 0);
  EXPECT_EQ(d["truncated"], true);
  EXPECT_EQ(d["units"], json::array());
  // Within a unit, stale key results come before objectives; the cut may
  // fall between them.
  d = DigestAt(kJune20, 2);
  EXPECT_EQ(Due(d), std::vector<std::string>{"acme acme-people-stay 10"});
  EXPECT_EQ(Stale(d), std::vector<std::string>{"eng kr-mentors-matched 33"});
  EXPECT_EQ((*UnitIn(d, "eng"))["objectives_due_for_review"], json::array());
}

TEST_F(DigestTest, AtMostFiveThousandEntries) {
  static_assert(kDigestMaxEntries == 5000);
  step_us_ = 1'000;  // the writes below take five seconds of the story
  ASSERT_OK(CreateObjective("ta-bulk", "2026-q2", "ta", "Screen every applicant", {}));
  for (int i = 0; i <= 5000; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "kr-bulk-%04d", i);
    ASSERT_OK(AddKeyResult(id, "ta-bulk", "Applicants screened", 0, 1));
  }
  // 10 demo key results (units eng to p-3307) and ta's 5001, all stale.
  const json d = DigestAt(At("2026-06-01T13:00:00Z"));
  EXPECT_EQ(d["truncated"], true);
  const std::vector<std::string> stale = Stale(d);
  ASSERT_EQ(stale.size(), 5000u);
  EXPECT_EQ(stale[9], "p-3307 kr-referral-hires 14");
  EXPECT_EQ(stale[10], "ta kr-bulk-0000 12");
  EXPECT_EQ(stale[4999], "ta kr-bulk-4989 12");
  EXPECT_LT(d.dump().size(), 700'000u);  // 661 KB with titles this short
}

}  // namespace
}  // namespace okr::testing
