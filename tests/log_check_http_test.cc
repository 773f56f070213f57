// okrd end to end, the log's check (SPEC §7, §6): a start after a clean
// stop checks no event itself and re-hashes the log in the background;
// an event changed in place before the stored checkpoint is found there,
// /healthz turns "corrupt" naming its seq, writes answer 503 and the head
// does not move, while reads still answer.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <string>
#include <thread>

#include "eventstore/format.h"
#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

// /healthz once the background check has ended (or after 30 s).
Reply HealthAfterCheck(const Okrd& s) {
  Reply health;
  for (int i = 0; i < 300; ++i) {
    health = s.Get("/healthz", kAuditor.token);
    if (health.json.is_object() && health.json["log_check"]["state"] != "checking") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return health;
}

// Changes the note of the first check-in stored ("Weekly update" becomes
// "weekly update": the event still decodes) behind okrd's back; its seq.
uint64_t ChangeTheFirstCheckInNote(const std::string& data_dir) {
  rocksdb::Options options;
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(options, data_dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  EXPECT_TRUE(rocksdb::DB::Open(options, data_dir, cfs, &handles, &db).ok());
  if (db == nullptr) return 0;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == format::kEventsCf) events = handles[i];
  }
  uint64_t changed = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, events));
  for (it->SeekToFirst(); it->Valid() && changed == 0; it->Next()) {
    std::string value = it->value().ToString();
    size_t at = value.find("Weekly update");
    if (at == std::string::npos) continue;
    value[at] = 'w';
    EXPECT_TRUE(format::ParseSeqKey(it->key().ToStringView(), &changed));
    EXPECT_TRUE(db->Put({}, events, it->key(), value).ok());
  }
  it.reset();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return changed;
}

TEST(OkrdLogCheck, AStartChecksTheTailAndTheBackgroundCheckVerifiesTheWholeLog) {
  Okrd okrd(WithTokens());
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  BuildStory(okrd);
  ASSERT_TRUE(okrd.Stop()) << okrd.LogTail();  // stores the head's checkpoint
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  EXPECT_NE(okrd.LogTail(1 << 20).find("events_checked"), std::string::npos);
  Reply health = HealthAfterCheck(okrd);
  ASSERT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.json["status"], "ok");
  const json& check = health.json["log_check"];
  EXPECT_EQ(check["state"], "verified") << health;
  EXPECT_EQ(check["checked"], okrd.HeadSeq());
  EXPECT_EQ(check["total"], okrd.HeadSeq());
  Reply metrics = okrd.Get("/metrics", kAdmin.token);
  EXPECT_NE(metrics.body.find("okrd_log_check_state{state=\"verified\"} 1"), std::string::npos)
      << metrics.body.substr(0, 2000);
  EXPECT_NE(metrics.body.find("okrd_log_check_checked_events " + std::to_string(okrd.HeadSeq())),
            std::string::npos);
}

TEST(OkrdLogCheck, AnEventChangedBeforeTheCheckpointMakesOkrdCorrupt) {
  Okrd okrd(WithTokens());
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  BuildStory(okrd);
  ASSERT_TRUE(okrd.Stop()) << okrd.LogTail();
  const uint64_t changed = ChangeTheFirstCheckInNote(okrd.data_dir());
  ASSERT_GT(changed, 0u);
  // The chain names the event after the changed one (its prevHash no
  // longer matches); a change to the 16th event of a tree node is named
  // by that node first (docs/FORMAT.md, "What a verifier checks").
  const uint64_t seq = changed % 16 == 0 ? changed : changed + 1;
  // The checkpoint covers the whole log: the open checks no event, so
  // okrd starts; the background check finds the change.
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  Reply health = HealthAfterCheck(okrd);
  const uint64_t head = health.json["head_seq"].get<uint64_t>();
  EXPECT_EQ(health.status, 503) << health;
  EXPECT_EQ(health.json["status"], "corrupt") << health;
  EXPECT_EQ(health.json["log_check"]["state"], "damaged") << health;
  EXPECT_EQ(health.json["log_check"]["first_bad_seq"], seq) << health;
  Reply write =
      okrd.Post("/v1/units",
                {{"id", "after-damage"}, {"kind", "team"}, {"name", "After"}, {"parent", "acme"}},
                kAdmin.token);
  EXPECT_EQ(write.status, 503) << write;
  EXPECT_NE(write.body.find("the log is damaged at seq " + std::to_string(seq)), std::string::npos)
      << write;
  EXPECT_EQ(okrd.Get("/healthz", kAuditor.token).json["head_seq"], head);
  EXPECT_EQ(okrd.Get("/v1/events?limit=1", kAuditor.token).status, 200);
  EXPECT_EQ(okrd.Get("/v1/units/acme", kAuditor.token).status, 200);
  EXPECT_EQ(write.header("Okrd-Status"), "corrupt");
  Reply metrics = okrd.Get("/metrics", kAdmin.token);
  EXPECT_NE(metrics.body.find("okrd_status{status=\"corrupt\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("okrd_log_check_first_bad_seq " + std::to_string(seq)),
            std::string::npos);
}

}  // namespace
}  // namespace okr::testing
