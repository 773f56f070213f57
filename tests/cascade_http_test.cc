// The cascade at the size of a real organisation, end to end against the
// real okrd: `depth=` keeps the answer to the top of the tree while every
// roll-up still covers the whole of it, and an answer of more objectives
// than okrd sends whole streams (chunked) and says exactly what the same
// subtrees say when asked for one by one. The review and the lint of that
// organisation stream too, byte for byte what they are when written whole.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/base/clock.h"
#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "projections/read/views.h"
#include "projections/service/projector.h"
#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

using nlohmann::json;

const Token kAdmin{"tok-admin-c4sc4de", "root", "admin", {}};

constexpr int kDepartments = 3;
constexpr int kTeamsPerDepartment = 2;
// More than okrd sends in one piece (1,000 objectives shown).
constexpr int kObjectives = 1020;

std::string Department(int d) { return "dept-" + std::to_string(d); }
std::string Team(int d, int t) { return Department(d) + "-team-" + std::to_string(t); }

// acme → 3 departments → 2 teams each; 1,020 objectives owned round-robin
// by the teams, a key result on every tenth with a check-in, so progress
// differs from node to node. Built once: the tests only read.
class CascadeHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s_ = new Okrd(OkrdOptions{std::vector<Token>{kAdmin}, {}});
    ASSERT_TRUE(s_->Start());
    PlanAcmeAndCycle(*s_, kAdmin.token, 59);
    for (int d = 0; d < kDepartments; ++d) {
      Want(s_->Post(
               "/v1/units",
               {{"id", Department(d)}, {"kind", "department"}, {"name", "D"}, {"parent", "acme"}},
               kAdmin.token),
           201);
      for (int t = 0; t < kTeamsPerDepartment; ++t) {
        Want(s_->Post(
                 "/v1/units",
                 {{"id", Team(d, t)}, {"kind", "team"}, {"name", "T"}, {"parent", Department(d)}},
                 kAdmin.token),
             201);
      }
    }
    std::atomic<int> next{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 8; ++w) {
      writers.emplace_back([&] {
        for (int i = next++; i < kObjectives; i = next++) WriteObjective(i);
      });
    }
    for (auto& w : writers) w.join();
  }
  static void TearDownTestSuite() {
    delete s_;
    s_ = nullptr;
  }

  static void WriteObjective(int i) {
    const int team = i % (kDepartments * kTeamsPerDepartment);
    const std::string id = "o-" + std::to_string(i);
    Want(s_->Post("/v1/objectives",
                  {{"id", id},
                   {"cycle", "q"},
                   {"owner", Team(team / kTeamsPerDepartment, team % kTeamsPerDepartment)},
                   {"title", "Objective " + std::to_string(i)}},
                  kAdmin.token),
         201);
    if (i % 10 != 0) return;
    Want(s_->Post("/v1/key-results",
                  {{"id", "kr-" + std::to_string(i)},
                   {"objective", id},
                   {"title", "KR"},
                   {"start", 0},
                   {"target", 100}},
                  kAdmin.token),
         201);
    Want(s_->Post("/v1/key-results/kr-" + std::to_string(i) + "/check-ins", {{"value", i % 100}},
                  kAdmin.token),
         201);
  }

  static Okrd* s_;
};
Okrd* CascadeHttpTest::s_ = nullptr;

TEST_F(CascadeHttpTest, DepthKeepsTheTopOfTheTreeAndEveryRollUpWhole) {
  const Reply whole = s_->Get("/v1/cascade?cycle=q");
  ASSERT_EQ(whole.status, 200) << whole;
  const json& root = whole.json["nodes"][0];
  ASSERT_EQ(root["objective_count"], kObjectives);

  const Reply top = s_->Get("/v1/cascade?cycle=q&depth=0");
  ASSERT_EQ(top.status, 200) << top;
  ASSERT_EQ(top.json["nodes"].size(), 1u);
  const json& top_root = top.json["nodes"][0];
  EXPECT_TRUE(top_root["children"].is_null()) << "acme has units under it, left out";
  EXPECT_EQ(top_root["objective_count"], kObjectives) << "the roll-up covers the whole tree";
  EXPECT_EQ(top_root["progress"], root["progress"]);
  EXPECT_EQ(top_root["pace"], root["pace"]);
  EXPECT_EQ(top_root["unit"], root["unit"]);

  const Reply two = s_->Get("/v1/cascade?cycle=q&depth=1");
  ASSERT_EQ(two.status, 200) << two;
  const json& departments = two.json["nodes"][0]["children"];
  ASSERT_EQ(departments.size(), static_cast<size_t>(kDepartments));
  for (size_t d = 0; d < departments.size(); ++d) {
    SCOPED_TRACE(Department(static_cast<int>(d)));
    EXPECT_TRUE(departments[d]["children"].is_null());
    EXPECT_EQ(departments[d]["objective_count"], root["children"][d]["objective_count"]);
    EXPECT_EQ(departments[d]["progress"], root["children"][d]["progress"]);
  }

  // Teams have no units under them: at their depth they are leaves, [].
  const Reply teams = s_->Get("/v1/cascade?cycle=q&depth=2");
  ASSERT_EQ(teams.status, 200) << teams;
  EXPECT_EQ(teams.json["nodes"][0]["children"][0]["children"][0]["children"], json::array());
  EXPECT_EQ(teams.json, whole.json) << "depth 2 shows this whole three-level tree";
}

TEST_F(CascadeHttpTest, ABigCascadeStreamsAndSaysWhatItsSubtreesSay) {
  const Reply whole = s_->Get("/v1/cascade?cycle=q");
  ASSERT_EQ(whole.status, 200) << whole;
  EXPECT_EQ(whole.header("Transfer-Encoding"), "chunked") << "more than 1,000 objectives stream";
  EXPECT_FALSE(whole.has_header("Content-Length"));
  ASSERT_TRUE(whole.json.is_object()) << "the streamed answer is one JSON document";
  EXPECT_EQ(whole.json["as_of_seq"], s_->HeadSeq());
  // Streaming writes what nlohmann::json would have: keys sorted, numbers
  // in its form. Parsing and dumping again changes nothing.
  EXPECT_EQ(whole.json.dump(), whole.body);

  const json& departments = whole.json["nodes"][0]["children"];
  ASSERT_EQ(departments.size(), static_cast<size_t>(kDepartments));
  size_t objectives = 0;
  for (int d = 0; d < kDepartments; ++d) {
    SCOPED_TRACE(Department(d));
    const Reply part = s_->Get("/v1/cascade?cycle=q&root=" + Department(d));
    ASSERT_EQ(part.status, 200) << part;
    EXPECT_TRUE(part.has_header("Content-Length")) << "a department's 340 objectives come whole";
    ASSERT_EQ(part.json["nodes"].size(), 1u);
    EXPECT_EQ(part.json["nodes"][0], departments[d]);
    EXPECT_EQ(part.json["as_of_seq"], whole.json["as_of_seq"]);
    objectives += part.json["nodes"][0]["objective_count"].get<size_t>();
  }
  EXPECT_EQ(objectives, static_cast<size_t>(kObjectives));

  // A streamed answer is not kept by the answer cache, and is the same
  // when asked again at the same seq.
  const Reply again = s_->Get("/v1/cascade?cycle=q");
  EXPECT_EQ(again.body, whole.body);
}

// A streamed cascade is written while the projection moves on: it lets go
// of the lock between pieces, so writes land meanwhile, and still says
// exactly the state of the seq it names.
TEST_F(CascadeHttpTest, AStreamedCascadeSaysItsSeqWhileWritesLand) {
  httplib::Client client("127.0.0.1", s_->port());
  // A small receive window keeps okrd's writes waiting on this client.
  client.set_socket_options([](socket_t sock) {
    int bytes = 4096;
    setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  });
  client.set_read_timeout(60, 0);
  std::string body;
  std::atomic<bool> first_piece{false};
  std::atomic<int> writes_done{0};
  int writes_done_at_end = -1;
  constexpr int kWrites = 20;
  std::thread writer([&] {
    while (!first_piece) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int i = 0; i < kWrites; ++i) {
      Want(s_->Post("/v1/key-results/kr-" + std::to_string(10 * i) + "/check-ins",
                    {{"value", 100 - i}}, kAdmin.token),
           201);
      ++writes_done;
    }
  });
  auto res = client.Get("/v1/cascade?cycle=q", [&](const char* data, size_t n) {
    body.append(data, n);
    first_piece = true;
    // A slow reader: the answer takes longer than the writes (under a
    // sanitizer a write takes milliseconds, so the reader waits 10 ms a
    // piece while any is left, not less).
    if (writes_done < kWrites) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    writes_done_at_end = writes_done;
    return true;
  });
  writer.join();
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(writes_done_at_end, kWrites) << "writes waited for a streamed answer's reader";
  const json streamed = json::parse(body);
  const uint64_t seq = streamed["as_of_seq"].get<uint64_t>();
  EXPECT_GE(s_->HeadSeq(), seq + kWrites) << "every write landed after the answer's seq";
  const Reply then = s_->Get("/v1/cascade?cycle=q&as_of=" + std::to_string(seq));
  ASSERT_EQ(then.status, 200) << then;
  EXPECT_EQ(then.body, body) << "the streamed answer is the state at its seq";
}

// The review (each format) and the lint of 1,020 objectives stream, and
// say exactly what the same code writes whole, with no pause, from the
// same log read back after okrd stopped.
TEST_F(CascadeHttpTest, ABigReviewAndLintStreamWhatTheyWouldWriteWhole) {
  const uint64_t seq = s_->HeadSeq();
  const std::string review = "/v1/cycles/q/review?as_of=" + std::to_string(seq);
  std::map<std::string, std::string> streamed;
  for (const std::string& path : {review, review + "&format=md", review + "&format=csv",
                                  "/v1/lint?cycle=q&as_of=" + std::to_string(seq)}) {
    SCOPED_TRACE(path);
    const Reply r = s_->Get(path);
    ASSERT_EQ(r.status, 200) << r;
    EXPECT_EQ(r.header("Transfer-Encoding"), "chunked") << "more than 1,000 objectives stream";
    EXPECT_FALSE(r.has_header("Content-Length"));
    streamed[path] = r.body;
  }
  const int64_t now_us = SystemClockUs();
  ASSERT_TRUE(s_->Stop());
  {
    auto store = EventStore::Open(s_->data_dir(), OpenOptions{});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto p = Projector::Rebuild(**store, seq, /*use_snapshot=*/false);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto plan = ReviewPlan::Make(*p, "q", seq);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    // The streamed review carries the log's checkpoint at its seq: the
    // signed root of the log read back.
    const json checkpoint = json::parse(streamed[review])["checkpoint"];
    EXPECT_EQ(checkpoint["size"], seq);
    auto root = (*store)->TreeRoot(seq);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(checkpoint["root"],
              Base64Encode(std::string_view(reinterpret_cast<const char*>(root->data()), 32)));
    const std::string json_text =
        WriteJson([&](JsonOut& out) { plan->WriteJson(out, seq, &checkpoint); });
    EXPECT_EQ(streamed[review], json_text);
    EXPECT_EQ(json::parse(json_text)["objectives"].size(), static_cast<size_t>(kObjectives));
    EXPECT_EQ(json::parse(json_text).dump(), json_text) << "nlohmann's bytes, keys sorted";
    for (auto [format, name] :
         {std::pair{ReviewFormat::kMarkdown, "md"}, std::pair{ReviewFormat::kCsv, "csv"}}) {
      std::string text;
      plan->WriteText(format, &text, &checkpoint);  // printed forms end with it too
      EXPECT_EQ(streamed[review + "&format=" + name], text) << name;
    }
    // The objectives of the cycle's 30 days so far are not stale, so the
    // clock the lint judges by may differ by the test's few seconds.
    View v(*p, seq, INT64_MAX, now_us);
    const std::string lint = WriteJson([&](JsonOut& out) { v.WriteLint(out, "q", seq); });
    EXPECT_EQ(streamed["/v1/lint?cycle=q&as_of=" + std::to_string(seq)], lint);
    EXPECT_GT(json::parse(lint)["findings"].size(), static_cast<size_t>(kObjectives));
  }
  ASSERT_TRUE(s_->Start());
}

TEST_F(CascadeHttpTest, AMalformedDepthIsRefusedAndChangesNothing) {
  const uint64_t head = s_->HeadSeq();
  for (const char* depth :
       {"-1", "abc", "1e308", "1001", "%0A", "", "1.5", "18446744073709551617"}) {
    SCOPED_TRACE(depth);
    const Reply r = s_->Get(std::string("/v1/cascade?cycle=q&depth=") + depth);
    EXPECT_EQ(r.status, 400) << r;
    EXPECT_EQ(r.code(), "malformed");
    EXPECT_EQ(r.field(), "depth");
  }
  EXPECT_EQ(s_->HeadSeq(), head);
  EXPECT_EQ(s_->Get("/healthz").status, 200);
}

}  // namespace
}  // namespace okr::testing
