// okrd end to end, concurrent writers: If-Match lets exactly one of
// racing writers win; plain writes all land, densely and exactly once.
#include <gtest/gtest.h>

#include <barrier>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

TEST(OkrdConcurrency, IfMatchLetsExactlyOneWriterWinAndPlainWritesAllLand) {
  constexpr int kThreads = 32, kRounds = 3, kPerThread = 8;
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Want(s.Post("/v1/objectives",
              {{"id", "o-c"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "C"}}, kAdmin.token),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-c"}, {"objective", "o-c"}, {"title", "C"}, {"target", 1000}},
              kAdmin.token),
       201);
  const std::string kr = "/v1/key-results/kr-c";

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    uint64_t head = s.HeadSeq();
    std::barrier all_read(kThreads);
    std::vector<uint64_t> seen(kThreads);
    std::vector<Reply> replies(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        seen[t] = s.Get(kr).u("version");
        all_read.arrive_and_wait();  // nobody writes before everyone has read
        replies[t] =
            s.Post(kr + "/check-ins", {{"value", round * 100 + t}},
                   t % 2 ? kMaya.token : kAdmin.token, {{"If-Match", std::to_string(seen[t])}});
      });
    }
    for (auto& th : threads) th.join();
    int won = 0, lost = 0;
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(seen[t], static_cast<uint64_t>(1 + round));
      if (replies[t].status == 201) {
        ++won;
        EXPECT_EQ(replies[t].json["version"], 2 + round);
      } else {
        EXPECT_EQ(replies[t].status, 412) << replies[t];
        EXPECT_EQ(replies[t].code(), "version_mismatch");
        ++lost;
      }
    }
    EXPECT_EQ(won, 1);
    EXPECT_EQ(lost, kThreads - 1);
    EXPECT_EQ(s.HeadSeq(), head + 1);
  }

  // The ETag, quoted as served, is a valid If-Match.
  Reply current = Want(s.Get(kr), 200);
  Want(s.Post(kr + "/check-ins", {{"value", 1}}, kAdmin.token,
              {{"If-Match", current.header("ETag")}}),
       201);
  Reply stale = s.Post(kr + "/check-ins", {{"value", 1}}, kAdmin.token,
                       {{"If-Match", current.header("ETag")}});
  EXPECT_EQ(stale.status, 412) << stale;

  uint64_t head = s.HeadSeq();
  std::vector<std::vector<Reply>> replies(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        replies[t].push_back(s.Post(
            kr + "/check-ins", {{"value", t * kPerThread + i}, {"note", "burst"}}, kAdmin.token));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> seqs;
  std::set<std::string> check_in_ids;
  for (const auto& per_thread : replies) {
    for (const Reply& r : per_thread) {
      EXPECT_EQ(r.status, 201) << r << (r.status == 0 ? "\nokrd log:\n" + s.LogTail() : "");
      seqs.insert(r.u("seq"));
      if (r.json.contains("check_in"))
        check_in_ids.insert(r.json["check_in"]["id"].get<std::string>());
    }
  }
  const size_t total = kThreads * kPerThread;
  EXPECT_EQ(seqs.size(), total);
  EXPECT_EQ(check_in_ids.size(), total);
  EXPECT_EQ(*seqs.begin(), head + 1);
  EXPECT_EQ(*seqs.rbegin(), head + total);
  EXPECT_EQ(s.HeadSeq(), head + total);

  // History pages by version: follow `next` to the end.
  json items = json::array();
  for (std::string after = "0";;) {
    Reply page = Want(s.Get("/v1/history/kr-c?limit=100&after=" + after, kAuditor.token), 200);
    for (const json& item : page.json["items"]) items.push_back(item);
    if (page.json["next"].is_null()) break;
    after = page.json["next"].get<std::string>();
  }
  ASSERT_EQ(items.size(), 2 + kRounds + total);
  std::set<uint64_t> history_seqs;
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["version"], i + 1) << "versions are dense and unique";
    history_seqs.insert(items[i]["seq"].get<uint64_t>());
  }
  EXPECT_EQ(history_seqs.size(), items.size());
  Reply after = Want(s.Get(kr), 200);
  EXPECT_EQ(after.json["check_in_count"], 1 + kRounds + total);
  EXPECT_EQ(after.json["version"], 2 + kRounds + total);
  EXPECT_EQ(Want(s.Get("/v1/audit/verify", kAuditor.token), 200).json["ok"], true);
  EXPECT_TRUE(s.Stop());
}

TEST(OkrdConcurrency, UpdatesWithoutIfMatchAreNeverRefusedAsConflicts) {
  // Without If-Match a writer states no expectation: however many others
  // change the same objective at once, its change lands (200), never 412.
  constexpr int kThreads = 32, kPerThread = 4;
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Want(s.Post("/v1/objectives",
              {{"id", "o-hot"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "Hot"}},
              kAdmin.token),
       201);
  uint64_t head = s.HeadSeq();
  std::vector<std::vector<Reply>> replies(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        replies[t].push_back(s.Patch(
            "/v1/objectives/o-hot",
            {{"title", "Title " + std::to_string(t) + "." + std::to_string(i)}}, kAdmin.token));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<int, int> statuses;
  for (const auto& per_thread : replies) {
    for (const Reply& r : per_thread) {
      statuses[r.status]++;
      EXPECT_EQ(r.status, 200) << r;
    }
  }
  EXPECT_EQ(statuses[200], kThreads * kPerThread);
  EXPECT_EQ(s.HeadSeq(), head + kThreads * kPerThread);
  EXPECT_EQ(Want(s.Get("/v1/objectives/o-hot"), 200).json["version"], 1 + kThreads * kPerThread);
  EXPECT_TRUE(s.Stop());
}

}  // namespace
}  // namespace okr::testing
