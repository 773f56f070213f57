// okrd end to end, restarts: answers byte for byte the same after a
// clean restart, from snapshots, and after SIGKILL in a burst of writes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

struct Captured {
  int status;
  std::string body;
  std::multimap<std::string, std::string> headers;
  bool operator==(const Captured&) const = default;
};

std::map<std::string, Captured> CaptureReads(const Okrd& s, const Strings& paths) {
  std::map<std::string, Captured> out;
  for (const std::string& path : paths) {
    Reply r = s.Get(path, kAuditor.token);
    EXPECT_EQ(r.status, 200) << path << " " << r;
    Captured c{r.status, r.body, {}};
    for (const auto& [k, v] : r.headers) {
      if (k != "X-Request-Id") c.headers.emplace(k, v);
    }
    out[path] = std::move(c);
  }
  return out;
}

void ExpectSameAnswers(const std::map<std::string, Captured>& before,
                       const std::map<std::string, Captured>& after) {
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [path, b] : before) {
    const Captured& a = after.at(path);
    EXPECT_EQ(a.status, b.status) << path;
    EXPECT_EQ(a.body, b.body) << path;
    EXPECT_EQ(a.headers, b.headers) << path;
  }
}

const Strings kStoryReads = {
    "/v1/units",
    "/v1/cycles",
    "/v1/objectives?include_archived=true",
    "/v1/objectives/hr-hiring",
    "/v1/key-results/kr-hires",
    "/v1/key-results/kr-hires/check-ins",
    "/v1/key-results/kr-hires?as_of=33",
    "/v1/cascade?cycle=q-now",
    "/v1/cycles/q-now/review",
    "/v1/cycles/q-now/review?format=csv",
    "/v1/diff?from=0",
    "/v1/diff?from=10&to=30",
    "/v1/lint",
    "/v1/lint?as_of=39",
    "/v1/events?limit=1000",
    "/v1/history/kr-hires",
    "/v1/audit/verify",
};

TEST(OkrdRestart, AnswersSurviveCleanRestartsSnapshotsAndSigkill) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  Story st = BuildStory(s);
  ASSERT_EQ(st.head - st.start, kStoryEvents);
  auto before = CaptureReads(s, kStoryReads);

  // SIGTERM: a clean exit; the restarted okrd answers byte for byte the same.
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), st.head);
  ExpectSameAnswers(before, CaptureReads(s, kStoryReads));

  // Snapshots every 5 events, or a quarter of the log (one is owed at the
  // start, at 43, and the next at 58): write enough to produce them, then
  // restart from the newest snapshot plus the tail.
  ASSERT_TRUE(s.Restart(Strings{"--snapshot-every", "5"}));
  for (int i = 0; i < 15; ++i) {
    Want(s.Post("/v1/objectives/acme-retain/comments",
                {{"text", "Retro note " + std::to_string(i)}}, kAdmin.token),
         201);
  }
  ASSERT_EQ(s.HeadSeq(), st.head + 15);
  // The newest owed snapshot lands soon (longer under a sanitizer).
  long age = s.WaitForSnapshot(4, 60'000);
  EXPECT_GE(age, 0) << "no snapshot was written";
  EXPECT_LT(age, 5);
  Strings reads = kStoryReads;
  reads.push_back("/v1/objectives/acme-retain");
  auto with_snapshots = CaptureReads(s, reads);
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), st.head + 15);
  ExpectSameAnswers(with_snapshots, CaptureReads(s, reads));
  ASSERT_TRUE(s.Restart(Strings{}));
  ExpectSameAnswers(with_snapshots, CaptureReads(s, reads));

  // SIGKILL in the middle of a burst of idempotent writes.
  Want(s.Post("/v1/cycles",
              {{"id", "q-next"},
               {"name", "Next"},
               {"starts", DateIn(-10)},
               {"ends", DateIn(80)},
               {"parent", "fy"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/objectives",
              {{"id", "o-burst"}, {"cycle", "q-next"}, {"owner", "hr"}, {"title", "Burst"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-burst"}, {"objective", "o-burst"}, {"title", "B"}, {"target", 1e6}},
              kAdmin.token),
       201);
  struct Attempt {
    std::string key, body;
    Reply reply;
  };
  constexpr int kWriters = 8;
  constexpr int kAcksBeforeKill = 60;
  std::vector<std::vector<Attempt>> attempts(kWriters);
  std::mutex mu;
  std::condition_variable cv;
  int acked = 0;
  std::atomic<bool> killed{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 100'000 && !killed; ++i) {
        Attempt a{"burst-" + std::to_string(t) + "-" + std::to_string(i),
                  json{{"value", t * 1000 + i}, {"note", "burst"}}.dump(),
                  {}};
        a.reply = s.Request("POST", "/v1/key-results/kr-burst/check-ins", a.body, kAdmin.token,
                            {{"Idempotency-Key", a.key}});
        bool ok = a.reply.status == 201;
        attempts[t].push_back(std::move(a));
        if (!ok) break;  // okrd is gone
        std::lock_guard lock(mu);
        ++acked;
        cv.notify_all();
      }
    });
  }
  {
    std::unique_lock lock(mu);
    bool enough =
        cv.wait_for(lock, std::chrono::seconds(60), [&] { return acked >= kAcksBeforeKill; });
    EXPECT_TRUE(enough) << "only " << acked << " writes were acknowledged";
  }
  EXPECT_TRUE(s.Kill());
  killed = true;
  for (auto& w : writers) w.join();
  ASSERT_TRUE(s.Start());

  Reply events = Want(s.Get("/v1/events?entity=kr-burst&limit=1000", kAuditor.token), 200);
  std::map<uint64_t, std::string> key_at_seq;
  std::map<std::string, int> key_count;
  for (const json& ev : events.json["items"]) {
    std::string key = ev["idempotency_key"].get<std::string>();
    key_at_seq[ev["seq"].get<uint64_t>()] = key;
    if (!key.empty()) key_count[key]++;
  }
  int acknowledged = 0, in_flight = 0;
  for (const auto& per_writer : attempts) {
    for (const Attempt& a : per_writer) {
      SCOPED_TRACE(a.key);
      uint64_t head = s.HeadSeq();
      Reply retry = s.Request("POST", "/v1/key-results/kr-burst/check-ins", a.body, kAdmin.token,
                              {{"Idempotency-Key", a.key}});
      if (a.reply.status == 201) {
        ++acknowledged;
        uint64_t seq = a.reply.u("seq");
        // Acknowledged means durable: the event is there, under its key.
        ASSERT_TRUE(key_at_seq.count(seq))
            << "acknowledged seq " << seq << " is missing after SIGKILL";
        EXPECT_EQ(key_at_seq[seq], a.key);  // shown without okrd's per-actor scope
        // The retry answers the first answer and writes nothing.
        EXPECT_EQ(retry.status, 201) << retry;
        EXPECT_EQ(retry.u("seq"), seq);
        EXPECT_EQ(retry.header("Idempotent-Replayed"), "true");
        EXPECT_EQ(retry.json, a.reply.json) << "a replay answers the first answer";
        EXPECT_EQ(s.HeadSeq(), head);
      } else {
        // Cut off by the kill: it may or may not have landed; the retry
        // settles it either way, exactly once.
        ++in_flight;
        EXPECT_EQ(retry.status, 201) << retry;
        EXPECT_EQ(s.HeadSeq(), head + (key_count.count(a.key) ? 0 : 1));
      }
    }
  }
  EXPECT_GE(acknowledged, kAcksBeforeKill);
  EXPECT_LE(in_flight, kWriters);
  Reply settled = Want(s.Get("/v1/events?entity=kr-burst&limit=1000", kAuditor.token), 200);
  std::map<std::string, int> settled_count;
  for (const json& ev : settled.json["items"])
    settled_count[ev["idempotency_key"].get<std::string>()]++;
  for (const auto& per_writer : attempts) {
    for (const Attempt& a : per_writer) EXPECT_EQ(settled_count[a.key], 1) << a.key;
  }
  Reply verify = Want(s.Get("/v1/audit/verify", kAuditor.token), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], s.HeadSeq());
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

}  // namespace
}  // namespace okr::testing
