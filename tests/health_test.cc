// Health that tells the truth (SPEC §6), against the real okrd: a log whose
// chain is intact but which holds an event the projection cannot fold is
// served — reads of the last good state, each marked `Okrd-Status: stuck`
// — while /healthz answers 503 naming the seq, writes answer 503, the
// metrics say the same and the log has one critical line.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "eventstore/event_store.h"
#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

const Token kAdmin{"tok-health-admin-3b9e51c07d", "root", "admin", {}};

// Writes, around okrd, a company and then a check-in on a key result that
// does not exist: a valid chain whose event 2 cannot be folded. Returns
// the head seq.
uint64_t WriteUnfoldableLog(const std::string& dir) {
  auto store = EventStore::Open(dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return 0;
  EXPECT_TRUE((*store)->Append(OneEvent(UnitCreatedDraft("root", "acme", "Acme"))).ok());
  EXPECT_TRUE((*store)->Append(OneEvent(CheckInDraft("tool", "kr-ghost", "ci-ghost", 1))).ok());
  return (*store)->head().seq;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(HealthTest, AnUnfoldableLogIsServedStuckNotRefused) {
  Okrd okrd(OkrdOptions{std::vector<Token>{kAdmin}, {}});
  const uint64_t head = WriteUnfoldableLog(okrd.data_dir());
  ASSERT_EQ(head, 2u);
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  // A log from before the tree gets its signing key recorded after its
  // events, at its first start: a store operation, folded or not.
  const uint64_t served_head = head + 1;

  Reply health = okrd.Get("/healthz");
  EXPECT_EQ(health.status, 503) << health;
  EXPECT_EQ(health.json["status"], "stuck");
  EXPECT_EQ(health.json["stuck_seq"], 2);
  EXPECT_EQ(health.json["projected_seq"], 1);
  EXPECT_EQ(health.json["head_seq"], served_head);
  EXPECT_NE(health.json["reason"].get<std::string>().find("kr-ghost"), std::string::npos) << health;

  // Reads answer the state before the bad event, and say okrd is stuck.
  Reply units = okrd.Get("/v1/units");
  EXPECT_EQ(units.status, 200) << units;
  EXPECT_EQ(units.header("Okrd-Status"), "stuck");
  EXPECT_EQ(units.json["as_of_seq"], 1);
  ASSERT_EQ(units.json["items"].size(), 1u);
  EXPECT_EQ(units.json["items"][0]["id"], "acme");

  // Writes are refused with 503 and append nothing.
  Reply write = okrd.Post(
      "/v1/units", {{"id", "hr"}, {"kind", "department"}, {"name", "HR"}, {"parent", "acme"}},
      kAdmin.token);
  EXPECT_EQ(write.status, 503) << write;
  EXPECT_EQ(write.header("Okrd-Status"), "stuck");
  EXPECT_NE(write.json["error"]["message"].get<std::string>().find("stuck"), std::string::npos);

  Reply metrics = okrd.Get("/metrics");
  EXPECT_NE(metrics.body.find("okrd_status{status=\"stuck\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("okrd_stuck_seq 2"), std::string::npos);

  ASSERT_TRUE(okrd.Stop()) << okrd.LogTail();
  std::string log = ReadFile(okrd.log_path());
  EXPECT_EQ(Count(log, "projection_stuck"), 1u) << okrd.LogTail();
  // The refused write moved nothing.
  auto store = EventStore::Open(okrd.data_dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->head().seq, served_head);
}

TEST(HealthTest, AHealthyOkrdSaysOk) {
  Okrd okrd(OkrdOptions{std::vector<Token>{kAdmin}, {}});
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  Reply health = okrd.Get("/healthz");
  EXPECT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.json["status"], "ok");
  EXPECT_FALSE(health.has_header("Okrd-Status"));
  Reply metrics = okrd.Get("/metrics");
  EXPECT_NE(metrics.body.find("okrd_status{status=\"ok\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("okrd_stuck_seq 0"), std::string::npos);
  ASSERT_TRUE(okrd.Stop()) << okrd.LogTail();
}

}  // namespace
}  // namespace okr::testing
