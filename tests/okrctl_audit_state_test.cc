// okrctl audit's trusted state (tools/ctl/audit_state.h): what it writes
// reads back the same, a file it did not write is refused naming the
// field, and a fork's evidence never replaces earlier evidence.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "eventstore/event_codec.h"
#include "tests/test_support.h"
#include "tools/ctl/audit_state.h"

namespace okr::ctl {
namespace {

using nlohmann::json;
using testing::ReadFile;
using testing::TempDir;

AuditState SomeState() {
  AuditState s;
  s.origin = "okrd/0123456789abcdef";
  s.vkey = "okrd/0123456789abcdef+01020304+AQ==";
  s.size = 5;  // two peaks: 4 leaves and 1
  s.root = Sha256("root");
  s.note = "okrd/0123456789abcdef\n5\nroot\n\n\u2014 okrd/0123456789abcdef sig\n";
  s.peaks = {Sha256("four"), Sha256("one")};
  s.last_hash = Sha256("event 5");
  s.last_recorded_at_us = 1764633600000000;
  return s;
}

TEST(AuditStateTest, ReadsBackWhatItWrites) {
  TempDir dir;
  const std::string path = dir.Sub("audit.json");
  const AuditState s = SomeState();
  ASSERT_TRUE(WriteFileAtomically(path, AuditStateJson(s).dump(2)).ok());
  auto loaded = LoadAuditState(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  const AuditState& back = **loaded;
  EXPECT_EQ(back.origin, s.origin);
  EXPECT_EQ(back.vkey, s.vkey);
  EXPECT_EQ(back.size, s.size);
  EXPECT_EQ(back.root, s.root);
  EXPECT_EQ(back.note, s.note);
  EXPECT_EQ(back.peaks, s.peaks);
  EXPECT_EQ(back.last_hash, s.last_hash);
  EXPECT_EQ(back.last_recorded_at_us, s.last_recorded_at_us);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AuditStateTest, NoFileIsAFirstRun) {
  TempDir dir;
  auto loaded = LoadAuditState(dir.Sub("none.json"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded->has_value());
}

TEST(AuditStateTest, RefusesAFileItDidNotWriteNamingTheField) {
  TempDir dir;
  const std::string path = dir.Sub("audit.json");
  const json good = AuditStateJson(SomeState());
  struct Case {
    const char* field;
    std::function<void(json&)> spoil;
  };
  const std::vector<Case> cases = {
      {"okrctl_audit_state", [](json& j) { j["okrctl_audit_state"] = 2; }},
      {"size", [](json& j) { j["size"] = -1; }},
      {"root", [](json& j) { j["root"] = "AQID"; }},
      {"peaks", [](json& j) { j["peaks"][1] = "not base64!"; }},
      {"last_event.seq", [](json& j) { j["last_event"]["seq"] = 4; }},
      {"last_event.hash", [](json& j) { j["last_event"]["hash"] = "abc"; }},
      {"note", [](json& j) { j.erase("note"); }},
  };
  for (const Case& c : cases) {
    json spoilt = good;
    c.spoil(spoilt);
    ASSERT_TRUE(WriteFileAtomically(path, spoilt.dump()).ok());
    auto loaded = LoadAuditState(path);
    ASSERT_FALSE(loaded.ok()) << c.field;
    EXPECT_EQ(loaded.status().code(), Status::Code::kInvalid);
    EXPECT_NE(loaded.status().message().find("field " + std::string(c.field)), std::string::npos)
        << loaded.status().message();
  }
  ASSERT_TRUE(WriteFileAtomically(path, "{not json").ok());
  EXPECT_FALSE(LoadAuditState(path).ok());
}

TEST(AuditStateTest, ForkEvidenceIsNeverOverwritten) {
  TempDir dir;
  const std::string state = dir.Sub("audit.json");
  std::string first, second;
  ASSERT_TRUE(KeepForkEvidence(state, {"http://a", 7, "trusted\n", "served\n"}, &first).ok());
  ASSERT_TRUE(KeepForkEvidence(state, {"http://a", 9, "trusted 9\n", "served 9\n"}, &second).ok());
  EXPECT_EQ(first, state + ".fork-evidence");
  EXPECT_EQ(second, state + ".fork-evidence.2");
  json j = json::parse(ReadFile(first));
  EXPECT_EQ(j["size"], 7);
  EXPECT_EQ(j["trusted_note"], "trusted\n");
  EXPECT_EQ(j["served_note"], "served\n");
  EXPECT_EQ(json::parse(ReadFile(second))["size"], 9);
}

}  // namespace
}  // namespace okr::ctl
