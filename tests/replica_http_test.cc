// Read replicas as real processes (SPEC §9): a primary, replicas started
// with --replica-of, and a proxy between them that can lose the primary or
// tamper with what it sends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "tests/okrd_story.h"
#include "tests/printed_checkpoint.h"
#include "tests/tampering_proxy.h"
#include "tests/test_support.h"

namespace okr::testing {
namespace {

// The whole log as GET /v1/events/raw serves it: the exact stored bytes.
std::string RawLog(const Okrd& s) {
  Reply r = s.Get("/v1/events/raw?after=0&limit=100000", kAuditor.token);
  EXPECT_EQ(r.status, 200) << r;
  return r.body;
}

// A primary with the plan's organisation, and a replica of it behind a
// Proxy, caught up.
struct ProxiedReplica {
  // A heartbeat a second: a stream that lost the newest event is told of
  // the head it did not bring within one.
  Okrd primary{WithTokens({"--stream-heartbeat", "1"})};
  TempDir dir;
  std::unique_ptr<Proxy> proxy;
  std::unique_ptr<Okrd> replica;

  ::testing::AssertionResult Start() {
    if (auto started = primary.Start(); !started) return started;
    PlanAcmeAndCycle(primary, kAdmin.token, 30);
    proxy = std::make_unique<Proxy>(primary.port());
    WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
    replica = std::make_unique<Okrd>(ReplicaOf(proxy->url(), dir.Sub("replica.token")));
    if (auto started = replica->Start(); !started) return started << replica->LogTail();
    if (!WaitFor([&] { return CaughtUp(*replica, primary.HeadSeq()); }, 60)) {
      return ::testing::AssertionFailure() << "no catch-up: " << replica->Get("/healthz");
    }
    return ::testing::AssertionSuccess();
  }
};

// What every read route answers at `head`, route by route.
std::vector<std::pair<std::string, std::string>> Reads(const Okrd& s, uint64_t head) {
  const std::string at = "as_of=" + std::to_string(head);
  const std::string h = std::to_string(head);
  const std::vector<std::pair<std::string, const Token*>> paths = {
      {"/v1/units?" + at, nullptr},
      {"/v1/units/hr?" + at, nullptr},
      {"/v1/cycles?" + at, nullptr},
      {"/v1/cycles/q-now?" + at, nullptr},
      {"/v1/objectives?cycle=q-now&include_archived=true&" + at, nullptr},
      {"/v1/objectives/hr-hiring?" + at, nullptr},
      {"/v1/key-results/kr-time-to-hire?" + at, nullptr},
      {"/v1/key-results/kr-hires/check-ins?" + at, nullptr},
      {"/v1/cascade?cycle=q-now&" + at, nullptr},
      {"/v1/lint?cycle=q-now&" + at, nullptr},
      {"/v1/diff?from=1&to=" + h, &kAuditor},
      {"/v1/events?after=0&limit=1000", &kAuditor},
      {"/v1/history/kr-hires", &kAuditor},
      {"/v1/audit/verify", &kAuditor},
      {"/v1/log/key", nullptr},
      {"/v1/log/proof/inclusion?seq=7&size=" + h, nullptr},
      {"/v1/log/proof/consistency?from=9&to=" + h, nullptr},
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [path, who] : paths) {
    Reply r = s.Get(path, who ? who->token : "");
    EXPECT_EQ(r.status, 200) << path << ": " << r;
    out.emplace_back(path, std::to_string(r.status) + " " + r.header("ETag") + "\n" + r.body);
  }
  return out;
}

TEST(OkrdReplica, TwoReplicasOfThirtyTwoWritersAnswerEveryReadAsThePrimaryDoes) {
  Okrd primary(WithTokens());
  ASSERT_TRUE(primary.Start());
  TempDir dir;
  WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
  Okrd r1(ReplicaOf(UrlOf(primary), dir.Sub("replica.token")));
  Okrd r2(ReplicaOf(UrlOf(primary), dir.Sub("replica.token")));
  ASSERT_TRUE(r1.Start()) << r1.LogTail();
  ASSERT_TRUE(r2.Start()) << r2.LogTail();
  BuildStory(primary);
  std::vector<std::thread> writers;
  for (int w = 0; w < 32; ++w) {
    writers.emplace_back([&primary, w] {
      for (int i = 0; i < 8; ++i) {
        std::string id = "team-" + std::to_string(w) + "-" + std::to_string(i);
        Want(primary.Post("/v1/units",
                          {{"id", id}, {"kind", "team"}, {"name", id}, {"parent", "hr"}},
                          kAdmin.token),
             201);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  const uint64_t head = primary.HeadSeq();
  for (const Okrd* r : {&r1, &r2}) {
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*r, head); }, 120)) << r->Get("/healthz");
  }
  const auto want = Reads(primary, head);
  for (const Okrd* r : {&r1, &r2}) {
    const auto got = Reads(*r, head);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(got[i] == want[i]) << want[i].first << " differs on the replica:\n"
                                     << got[i].second.substr(0, 400) << "\nthe primary:\n"
                                     << want[i].second.substr(0, 400);
    }
  }
  EXPECT_EQ(RawLog(r1), RawLog(primary));
  EXPECT_EQ(RawLog(r2), RawLog(primary));
  // A review carries a checkpoint. A replica signs none: once it keeps the
  // primary's of the head, its review there is the primary's, every form.
  const std::string signed_head =
      Want(primary.Get("/v1/log/checkpoint?size=" + std::to_string(head)), 200).body;
  ASSERT_TRUE(WaitFor([&] { return r1.Get("/v1/log/checkpoint").body == signed_head; }, 30));
  const std::string review = "/v1/cycles/q-now/review?as_of=" + std::to_string(head);
  for (const char* format : {"", "&format=md", "&format=csv"}) {
    Reply want = Want(primary.Get(review + format), 200);
    Reply got = Want(r1.Get(review + format), 200);
    EXPECT_EQ(got.body, want.body) << format;
    EXPECT_EQ(got.header("ETag"), want.header("ETag")) << format;
  }
  EXPECT_TRUE(Want(primary.Get(review), 200).json["checkpoint"].is_object());
  // Earlier: the same checkpoint, with the consistency proof from the
  // review's tree, the root and hashes the primary gives for them.
  const uint64_t earlier = head - 10;
  const std::string at = "/v1/cycles/q-now/review?as_of=" + std::to_string(earlier);
  json copied = Want(r1.Get(at), 200).json;
  json own = Want(primary.Get(at), 200).json;
  const json kept = copied["checkpoint"];
  ASSERT_TRUE(kept.is_object()) << copied.dump();
  EXPECT_EQ(kept["size"], head);
  EXPECT_EQ(kept["note"], signed_head);
  EXPECT_EQ(kept["consistency"]["from"], earlier);
  EXPECT_EQ(kept["consistency"]["from_root"], own["checkpoint"]["root"]);
  const std::string proof = "/v1/log/proof/consistency?from=" + std::to_string(earlier) + "&to=";
  EXPECT_EQ(kept["consistency"]["hashes"],
            Want(primary.Get(proof + std::to_string(head)), 200).json["hashes"]);
  copied.erase("checkpoint");
  own.erase("checkpoint");
  EXPECT_EQ(copied, own);
  std::string md = Want(r1.Get(at + "&format=md"), 200).body;
  EXPECT_NE(md.find(signed_head), std::string::npos) << md;
  EXPECT_NE(md.find(proof + std::to_string(head)), std::string::npos) << md;
  // Read back as a spreadsheet's reader would: a root may start with '+',
  // which the CSV escapes.
  const std::string csv = Want(r1.Get(at + "&format=csv"), 200).body;
  auto printed = ReadPrintedCheckpoint(csv, "csv");
  ASSERT_TRUE(printed.has_value() && printed->consistency.has_value()) << csv;
  EXPECT_EQ(printed->size, head);
  EXPECT_EQ(printed->note, signed_head);
  EXPECT_EQ(printed->consistency->from, earlier);
  EXPECT_EQ(printed->consistency->from_root, kept["consistency"]["from_root"]);
  std::string hashes;
  for (const json& hash : kept["consistency"]["hashes"]) {
    hashes += (hashes.empty() ? "" : " ") + hash.get<std::string>();
  }
  EXPECT_EQ(printed->consistency->proof, hashes);
  // A newer checkpoint kept changes the review's tag: no stale 304, nothing
  // kept by the answer cache.
  const std::string tag = Want(r1.Get(at), 200).header("ETag");
  EXPECT_EQ(r1.Get(at, "", {{"If-None-Match", tag}}).status, 304);
  Want(
      primary.Post("/v1/units", {{"id", "late"}, {"kind", "team"}, {"name", "L"}, {"parent", "hr"}},
                   kAdmin.token),
      201);
  const std::string newer =
      Want(primary.Get("/v1/log/checkpoint?size=" + std::to_string(head + 1)), 200).body;
  ASSERT_TRUE(WaitFor([&] { return r1.Get("/v1/log/checkpoint").body == newer; }, 30));
  Reply moved = Want(r1.Get(at, "", {{"If-None-Match", tag}}), 200);
  EXPECT_EQ(moved.json["checkpoint"]["note"], newer);
  EXPECT_NE(moved.header("ETag"), tag);

  Reply health = Want(r1.Get("/healthz"), 200);
  EXPECT_EQ(health.json["role"], "replica");
  EXPECT_EQ(health.json["primary"], UrlOf(primary));
  EXPECT_EQ(health.json["lag_events"], 0);
  EXPECT_EQ(health.json["lag_seconds"], 0);
  EXPECT_EQ(health.json["connected"], true);
  EXPECT_EQ(Want(primary.Get("/healthz"), 200).json["role"], "primary");
  std::string metrics = Want(r2.Get("/metrics"), 200).body;
  EXPECT_NE(metrics.find("okrd_role{role=\"replica\",primary=\"" + UrlOf(primary) + "\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("\nokrd_replica_lag_events 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("okrd_status{status=\"ok\"} 1"), std::string::npos);
}

TEST(OkrdReplica, WritesWebhooksAndCheckpointsAreRefusedNamingThePrimary) {
  Okrd primary(WithTokens());
  ASSERT_TRUE(primary.Start());
  PlanAcmeAndCycle(primary, kAdmin.token, 30);
  TempDir dir;
  WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
  Okrd replica(ReplicaOf(UrlOf(primary), dir.Sub("replica.token")));
  ASSERT_TRUE(replica.Start()) << replica.LogTail();
  const uint64_t head = primary.HeadSeq();
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(replica, head); }, 60));

  Reply write =
      replica.Post("/v1/units", {{"id", "x"}, {"kind", "team"}, {"name", "X"}}, kAdmin.token);
  EXPECT_EQ(write.status, 403) << write;
  EXPECT_EQ(write.code(), "read_only_replica");
  EXPECT_EQ(write.json["error"]["primary"], UrlOf(primary));
  Reply hooks = replica.Get("/v1/webhooks", kAdmin.token);
  EXPECT_EQ(hooks.status, 403) << hooks;
  EXPECT_EQ(hooks.code(), "read_only_replica");
  // It signs no checkpoint: it serves the newest the primary signed of its
  // head, once verified, and no other.
  ASSERT_TRUE(WaitFor([&] { return replica.Get("/v1/log/checkpoint").status == 200; }, 30));
  EXPECT_EQ(replica.Get("/v1/log/checkpoint").body,
            Want(primary.Get("/v1/log/checkpoint?size=" + std::to_string(head)), 200).body);
  EXPECT_EQ(Want(replica.Get("/v1/log/checkpoint?size=" + std::to_string(head)), 200).body,
            replica.Get("/v1/log/checkpoint").body);
  // A write copied within a second of that: the replica serves the
  // checkpoint it keeps until it has asked the primary for the new head's.
  Want(primary.Post("/v1/units", {{"id", "y"}, {"kind", "team"}, {"name", "Y"}, {"parent", "acme"}},
                    kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(replica, head + 1); }, 30));
  Want(replica.Get("/v1/log/checkpoint"), 200);
  const std::string newest =
      Want(primary.Get("/v1/log/checkpoint?size=" + std::to_string(head + 1)), 200).body;
  EXPECT_TRUE(WaitFor([&] { return replica.Get("/v1/log/checkpoint").body == newest; }, 30));
  Reply checkpoint = replica.Get("/v1/log/checkpoint?size=1");
  EXPECT_EQ(checkpoint.status, 404) << checkpoint;
  EXPECT_EQ(checkpoint.code(), "not_signed_here");
  EXPECT_EQ(checkpoint.json["error"]["primary"], UrlOf(primary));
  // The log's key is the primary's, as the copied log records it.
  EXPECT_EQ(Want(replica.Get("/v1/log/key"), 200).body, Want(primary.Get("/v1/log/key"), 200).body);
  EXPECT_EQ(replica.HeadSeq(), head + 1);
  EXPECT_EQ(primary.HeadSeq(), head + 1);
}

TEST(OkrdReplica, WithTheLogKeyItKeepsCheckpointsAndWithAnotherItDiverges) {
  Okrd primary(WithTokens());
  ASSERT_TRUE(primary.Start());
  PlanAcmeAndCycle(primary, kAdmin.token, 30);
  Okrd elsewhere(WithTokens());
  ASSERT_TRUE(elsewhere.Start());
  const std::string key = Want(primary.Get("/v1/log/key"), 200).body;
  const std::string other_key = Want(elsewhere.Get("/v1/log/key"), 200).body;
  ASSERT_NE(key, other_key);
  TempDir dir;
  WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
  WriteTokenFile(dir.Sub("log.vkey"), key.substr(0, key.size() - 1));

  Okrd keyed(WithTokens({"--replica-of", UrlOf(primary), "--replica-token",
                         dir.Sub("replica.token"), "--log-key", "@" + dir.Sub("log.vkey")}));
  ASSERT_TRUE(keyed.Start()) << keyed.LogTail();
  const uint64_t head = primary.HeadSeq();
  ASSERT_TRUE(WaitFor([&] { return keyed.Get("/v1/log/checkpoint").status == 200; }, 30))
      << keyed.Get("/healthz");
  EXPECT_EQ(keyed.Get("/v1/log/checkpoint").body,
            primary.Get("/v1/log/checkpoint?size=" + std::to_string(head)).body);

  Okrd misled(
      WithTokens({"--replica-of", UrlOf(primary), "--replica-token", dir.Sub("replica.token"),
                  "--log-key", other_key.substr(0, other_key.size() - 1)}));
  ASSERT_TRUE(misled.Start()) << misled.LogTail();
  ASSERT_TRUE(WaitFor([&] { return misled.Get("/healthz").status == 503; }, 30))
      << misled.Get("/healthz");
  Reply health = misled.Get("/healthz");
  EXPECT_EQ(health.json["status"], "diverged");
  EXPECT_NE(health.json.value("problem", "").find("--log-key"), std::string::npos) << health;
  EXPECT_EQ(misled.Get("/v1/log/checkpoint").code(), "not_signed_here");
}

TEST(OkrdReplica, ATokenFileOthersMayReadRefusesStart) {
  TempDir dir;
  WriteTokenFile(dir.Sub("replica.token"), kReplica.token, 0644);
  Okrd replica(ReplicaOf("http://127.0.0.1:9", dir.Sub("replica.token")));
  EXPECT_FALSE(replica.Start());
  EXPECT_NE(replica.LogTail().find("0644"), std::string::npos) << replica.LogTail();
}

// A primary whose log already holds `events` units, written straight into
// its data directory before it starts.
void FillLog(const Okrd& primary, int events) {
  auto store = EventStore::Open(primary.data_dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int done = 0; done < events;) {
    AppendRequest request;
    for (; done < events && request.events.size() < kMaxEventsPerAppend; ++done) {
      request.events.push_back(UnitCreatedDraft("admin", "u-" + std::to_string(done), "Unit"));
    }
    ASSERT_TRUE((*store)->Append(std::move(request)).ok());
  }
}

TEST(OkrdReplica, KilledMidCatchUpItResumesWithNoGapAndNoDuplicate) {
  Okrd primary(WithTokens());
  FillLog(primary, 200'000);
  ASSERT_TRUE(primary.Start()) << primary.LogTail();
  const uint64_t head = primary.HeadSeq();
  TempDir dir;
  WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
  Okrd replica(ReplicaOf(UrlOf(primary), dir.Sub("replica.token")));
  ASSERT_TRUE(replica.Start()) << replica.LogTail();
  uint64_t copied = 0;
  WaitFor([&] {
    copied = replica.Get("/healthz").u("head_seq");
    return copied > 0;
  });
  ASSERT_TRUE(replica.Kill());
  EXPECT_LT(copied, head) << "the replica caught up before it could be killed in the middle";
  ASSERT_TRUE(replica.Start()) << replica.LogTail();
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(replica, head); }, 120)) << replica.Get("/healthz");
  EXPECT_EQ(RawLog(replica), RawLog(primary));
  EXPECT_TRUE(Want(replica.Get("/v1/audit/verify", kAuditor.token), 200).json["ok"].get<bool>());
}

TEST(OkrdReplica, ThePrimaryKilledAndBackItFollowsOnFromItsHead) {
  ProxiedReplica setup;
  ASSERT_TRUE(setup.Start());
  Okrd& primary = setup.primary;
  Okrd& replica = *setup.replica;
  // Acknowledged writes, then the primary dies.
  for (int i = 0; i < 20; ++i) {
    std::string id = "t" + std::to_string(i);
    Want(primary.Post("/v1/units", {{"id", id}, {"kind", "team"}, {"name", id}, {"parent", "acme"}},
                      kAdmin.token),
         201);
  }
  ASSERT_TRUE(primary.Kill());
  ASSERT_TRUE(WaitFor([&] { return !replica.Get("/healthz").json.value("connected", true); }, 60));
  // The replica keeps answering what it holds.
  Reply health = Want(replica.Get("/healthz"), 200);
  EXPECT_EQ(health.json["status"], "ok");
  Want(replica.Get("/v1/units/acme"), 200);
  ASSERT_TRUE(primary.Start()) << primary.LogTail();
  setup.proxy->SetUpstream(primary.port());
  Want(primary.Post("/v1/units",
                    {{"id", "after"}, {"kind", "team"}, {"name", "A"}, {"parent", "acme"}},
                    kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(replica, primary.HeadSeq()); }, 60))
      << replica.Get("/healthz");
  EXPECT_EQ(RawLog(replica), RawLog(primary));
  EXPECT_TRUE(Want(replica.Get("/healthz"), 200).json["connected"].get<bool>());
}

// A way to damage the primary's answer, which of ten new events it hits,
// and whether the replica meets them following the primary's stream or
// catching up through the raw route after a restart.
struct Damage {
  Proxy::Tamper tamper;
  uint64_t nth;  // 1 to 10
  bool following;
  const char* name;
};

class OkrdReplicaTampered : public ::testing::TestWithParam<Damage> {};

TEST_P(OkrdReplicaTampered, ItRefusesReportsDivergedAndServesItsLastGoodState) {
  ProxiedReplica setup;
  ASSERT_TRUE(setup.Start());
  Okrd& primary = setup.primary;
  Okrd& replica = *setup.replica;
  const uint64_t good = primary.HeadSeq();
  const std::string good_units = Want(replica.Get("/v1/units"), 200).body;

  // Ten events, one of them damaged: met one by one on the stream, or in
  // one answer of the raw route.
  if (!GetParam().following) {
    ASSERT_TRUE(replica.Stop());
  }
  const uint64_t damaged = good + GetParam().nth;
  setup.proxy->Set(GetParam().tamper, damaged);
  for (int i = 0; i < 10; ++i) {
    std::string id = "t" + std::to_string(i);
    Want(primary.Post("/v1/units", {{"id", id}, {"kind", "team"}, {"name", id}, {"parent", "acme"}},
                      kAdmin.token),
         201);
  }
  if (!GetParam().following) {
    ASSERT_TRUE(replica.Start()) << replica.LogTail();
  }
  ASSERT_TRUE(WaitFor([&] { return replica.Get("/healthz").status == 503; }, 60))
      << replica.Get("/healthz");
  Reply health = replica.Get("/healthz");
  EXPECT_EQ(health.json["status"], "diverged") << health;
  EXPECT_FALSE(health.json["problem"].is_null()) << health;
  if (GetParam().tamper == Proxy::Tamper::kEndless) {
    // Read up to the bound, not on: no memory spent on the rest.
    EXPECT_NE(health.json["problem"].dump().find("sent a block over"), std::string::npos) << health;
  }
  EXPECT_LT(health.u("head_seq"), damaged) << health;
  // Nothing bad is stored: what it holds is the primary's log, cut short.
  const std::string held = RawLog(replica);
  EXPECT_EQ(held, RawLog(primary).substr(0, held.size()));
  EXPECT_TRUE(Want(replica.Get("/v1/audit/verify", kAuditor.token), 200).json["ok"].get<bool>());
  // It keeps serving its last good state, and says it diverged.
  Reply units = Want(replica.Get("/v1/units"), 200);
  EXPECT_EQ(units.header("Okrd-Status"), "diverged");
  if (health.u("head_seq") == good) {
    EXPECT_EQ(units.body, good_units);
  }
  EXPECT_NE(ReadFile(replica.log_path()).find("replica_diverged"), std::string::npos);
  EXPECT_NE(Want(replica.Get("/metrics"), 200).body.find("okrd_status{status=\"diverged\"} 1"),
            std::string::npos);
}

// The newest event has no successor to name its hash: the primary's
// Okrd-Head-Hash vouches for it in the raw route, and the hash each event
// of the stream comes with there. A newest event lost from the stream is
// missed at the next heartbeat, and the raw route shows it lost.
INSTANTIATE_TEST_SUITE_P(
    Tampering, OkrdReplicaTampered,
    ::testing::Values(Damage{Proxy::Tamper::kFlipByte, 3, false, "AFlippedByte"},
                      Damage{Proxy::Tamper::kFlipByte, 10, false, "AFlippedByteInTheNewestEvent"},
                      Damage{Proxy::Tamper::kDrop, 3, false, "ADroppedEvent"},
                      Damage{Proxy::Tamper::kDrop, 10, false, "TheNewestEventDropped"},
                      Damage{Proxy::Tamper::kSwap, 3, false, "TwoEventsSwapped"},
                      Damage{Proxy::Tamper::kFlipByte, 3, true, "AFlippedByteOnTheStream"},
                      Damage{Proxy::Tamper::kFlipByte, 10, true,
                             "AFlippedByteInTheNewestEventOnTheStream"},
                      Damage{Proxy::Tamper::kDrop, 3, true, "ADroppedEventOnTheStream"},
                      Damage{Proxy::Tamper::kDrop, 10, true, "TheNewestEventDroppedOnTheStream"},
                      Damage{Proxy::Tamper::kSwap, 3, true, "TwoEventsSwappedOnTheStream"},
                      Damage{Proxy::Tamper::kGarble, 3, false, "AFrameLongerThanAnyEvent"},
                      Damage{Proxy::Tamper::kGarble, 3, true, "AnEventCutOffOnTheStream"},
                      Damage{Proxy::Tamper::kEndless, 3, true, "ABlockThatNeverEndsOnTheStream"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace okr::testing
