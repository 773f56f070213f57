// Pace in the answers, end to end against the real okrd: a key result's
// `pace` before and after a check-in, judged at `at` when given and else at
// the recorded time of the answer's seq — never the wall clock, so two
// reads of one seq are byte-identical however far apart they are. A write
// that changes nothing answers progress and pace as they are now.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "eventstore/base/clock.h"
#include "eventstore/base/time.h"
#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

using nlohmann::json;

const Token kAdmin{"tok-admin-5e1d0c7a", "root", "admin", {}};

// A cycle of 90 days that began 30 days ago, one objective, and a key result
// from 0 to 100: a third of the way in, progress 0 is off track.
class PaceHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(s_.Start());
    PlanAcmeAndCycle(s_, kAdmin.token, 59);
    Want(s_.Post("/v1/objectives", {{"id", "o"}, {"cycle", "q"}, {"owner", "acme"}, {"title", "O"}},
                 kAdmin.token),
         201);
    Want(s_.Post("/v1/key-results",
                 {{"id", "kr"}, {"objective", "o"}, {"title", "KR"}, {"start", 0}, {"target", 100}},
                 kAdmin.token),
         201);
    starts_us_ = *ParseDate(DateIn(-30));
  }

  // The share of the cycle elapsed at `us`.
  double ExpectedAt(int64_t us) const {
    return static_cast<double>(us - starts_us_) / (90.0 * 86'400'000'000.0);
  }

  Okrd s_{OkrdOptions{std::vector<Token>{kAdmin}, {}}};
  int64_t starts_us_ = 0;
};

TEST_F(PaceHttpTest, KeyResultPaceBeforeAndAfterACheckIn) {
  // Without `at`: judged at the head event's recorded time (the key result's creation).
  Reply before = Want(s_.Get("/v1/key-results/kr"), 200);
  int64_t created_us = *ParseRfc3339(s_.Get("/v1/events?limit=1000", kAdmin.token)
                                         .json["items"]
                                         .back()["recorded_at"]
                                         .get<std::string>());
  EXPECT_DOUBLE_EQ(before.json["pace"]["expected"].get<double>(), ExpectedAt(created_us)) << before;
  EXPECT_EQ(before.json["pace"]["status"], "off_track") << before;
  // At the cycle's start nothing is expected yet: on track.
  std::string at_start = "?at=" + DateIn(-30) + "T00:00:00Z";
  Reply early = Want(s_.Get("/v1/key-results/kr" + at_start), 200);
  EXPECT_EQ(early.json["pace"], json({{"expected", 0.0}, {"status", "on_track"}})) << early;

  Reply ci = Want(s_.Post("/v1/key-results/kr/check-ins", {{"value", 32}}, kAdmin.token), 201);
  int64_t checked_us = *ParseRfc3339(ci.json["check_in"]["recorded_at"].get<std::string>());
  Reply after = Want(s_.Get("/v1/key-results/kr"), 200);
  EXPECT_DOUBLE_EQ(after.json["pace"]["expected"].get<double>(), ExpectedAt(checked_us)) << after;
  EXPECT_EQ(after.json["pace"]["status"], "on_track") << after;
  // The write's answer judges at the same point.
  EXPECT_EQ(ci.json["pace"], after.json["pace"]) << ci;
  // At the start the check-in, measured now, is not yet counted: progress 0, still on track.
  Reply early_after = Want(s_.Get("/v1/key-results/kr" + at_start), 200);
  EXPECT_EQ(early_after.json["current"], 0.0) << early_after;
  EXPECT_EQ(early_after.json["pace"]["status"], "on_track") << early_after;
  // After the cycle everything is expected: 32 % is off track.
  Reply late = Want(s_.Get("/v1/key-results/kr?at=" + DateIn(60) + "T00:00:00Z"), 200);
  EXPECT_EQ(late.json["pace"], json({{"expected", 1.0}, {"status", "off_track"}})) << late;
  // As of the seq before the check-in: judged at that seq's time.
  Reply past =
      Want(s_.Get("/v1/key-results/kr?as_of=" + std::to_string(ci.json["seq"].get<uint64_t>() - 1)),
           200);
  EXPECT_EQ(past.json["pace"], before.json["pace"]) << past;
}

TEST_F(PaceHttpTest, AWriteThatChangesNothingAnswersTheEntityAsItIsNow) {
  Reply ci = Want(s_.Post("/v1/key-results/kr/check-ins", {{"value", 32}}, kAdmin.token), 201);
  const uint64_t head = s_.HeadSeq();
  // The key result's own last event is that check-in, but this request
  // recorded none: its answer names no check-in.
  Reply kr = Want(s_.Patch("/v1/key-results/kr", {{"title", "KR"}}, kAdmin.token), 200);
  EXPECT_FALSE(kr.json.contains("check_in")) << kr;
  EXPECT_EQ(kr.json["current"], 32) << kr;
  EXPECT_EQ(kr.u("seq"), ci.u("seq")) << kr;
  // The objective's own last event is its creation, before any check-in:
  // its progress is still the one it has now, as a read answers it.
  Reply read = Want(s_.Get("/v1/objectives/o"), 200);
  Reply o = Want(s_.Patch("/v1/objectives/o", {{"title", "O"}}, kAdmin.token), 200);
  EXPECT_DOUBLE_EQ(o.json["progress"].get<double>(), 0.32) << o;
  EXPECT_EQ(o.json["progress"], read.json["progress"]) << o;
  EXPECT_EQ(o.json["key_results"], read.json["key_results"]) << o;
  EXPECT_LT(o.u("seq"), ci.u("seq")) << o;
  EXPECT_EQ(s_.HeadSeq(), head) << "a write that changed nothing moved the log";
}

TEST_F(PaceHttpTest, AFutureAtWithinAMinuteIsAcceptedAndCountsEveryCheckIn) {
  Want(s_.Post("/v1/key-results/kr/check-ins", {{"value", 32}}, kAdmin.token), 201);
  // The dashboard's "by now": the present rounded up to the next minute.
  int64_t minute = 60'000'000;
  int64_t at = (SystemClockUs() / minute + 1) * minute;
  std::string query = "?cycle=q&at=" + UrlEncode(FormatTimeUs(at));
  Reply cascade = Want(s_.Get("/v1/cascade" + query), 200);
  ASSERT_EQ(cascade.json["nodes"].size(), 1u) << cascade;
  const json& objective = cascade.json["nodes"][0]["objectives"][0];
  EXPECT_EQ(objective["key_results"][0]["current"], 32.0) << cascade;
  EXPECT_EQ(objective["key_results"][0]["pace"]["status"], "on_track") << cascade;
  EXPECT_EQ(objective["pace"], objective["key_results"][0]["pace"]) << cascade;
  EXPECT_EQ(cascade.json["nodes"][0]["pace"], objective["pace"]) << cascade;
  EXPECT_EQ(*ParseRfc3339(cascade.json["pace"]["at"].get<std::string>()), at) << cascade;
  EXPECT_DOUBLE_EQ(cascade.json["pace"]["expected"].get<double>(), ExpectedAt(at)) << cascade;
  Reply kr = Want(s_.Get("/v1/key-results/kr" + query), 200);
  EXPECT_EQ(kr.json["current"], 32.0) << kr;
  // A cascade of every cycle has no one span for its roll-ups.
  Reply all = Want(s_.Get("/v1/cascade"), 200);
  EXPECT_TRUE(all.json["pace"]["expected"].is_null()) << all;
  EXPECT_TRUE(all.json["nodes"][0]["pace"].is_null()) << all;
  EXPECT_FALSE(all.json["nodes"][0]["objectives"][0]["pace"].is_null()) << all;
}

TEST_F(PaceHttpTest, TwoReadsOfOneSeqWithoutAtAreByteIdenticalSecondsApart) {
  Want(s_.Post("/v1/key-results/kr/check-ins", {{"value", 10}}, kAdmin.token), 201);
  Reply kr = Want(s_.Get("/v1/key-results/kr"), 200);
  Reply cascade = Want(s_.Get("/v1/cascade?cycle=q"), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(Want(s_.Get("/v1/key-results/kr"), 200).body, kr.body);
  EXPECT_EQ(Want(s_.Get("/v1/cascade?cycle=q"), 200).body, cascade.body);
  // Also computed afresh: a restart empties the answer cache.
  ASSERT_TRUE(s_.Restart()) << s_.LogTail();
  EXPECT_EQ(Want(s_.Get("/v1/key-results/kr"), 200).body, kr.body);
  EXPECT_EQ(Want(s_.Get("/v1/cascade?cycle=q"), 200).body, cascade.body);
}

}  // namespace
}  // namespace okr::testing
