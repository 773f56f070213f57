// Operator safety against the real okrd (docs/RELIABILITY.md): the backup
// route writes only under --backup-root, never through a symlink, with
// directories 0700; the tokens file is judged on the open file and refused
// with a clear message when it is unsafe; SIGHUP re-reads it with the same
// checks and keeps the old table when the new file fails them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api/auth.h"
#include "api/backup_root.h"
#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

const Token kAdmin{"tok-operator-admin-7c1d93e0aa", "root", "admin", {}};
const Token kEditor{"tok-operator-editor-2b8e51f4c7", "eddie", "editor", {"hr"}};

OkrdOptions WithTokens(std::vector<std::string> extra = {}) {
  return OkrdOptions{std::vector<Token>{kAdmin, kEditor}, std::move(extra)};
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

size_t EntriesIn(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

// --- the backup root ---

// An okrd with a write behind it, backing up under root_ (a directory of
// the test's own), and outside_, a directory beside the root that no
// backup may touch.
class BackupRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0700), 0);
    ASSERT_TRUE(okrd_.Start());
    Reply unit = okrd_.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}},
                            kAdmin.token);
    ASSERT_EQ(unit.status, 201) << unit;
  }

  // A refused backup: 422 on field `to`, nothing appended, nothing outside.
  void ExpectRefused(const json& body) {
    SCOPED_TRACE(body.dump());
    uint64_t head = okrd_.HeadSeq();
    Reply r = okrd_.Post("/v1/admin/backup", body, kAdmin.token);
    EXPECT_EQ(r.status, 422) << r;
    EXPECT_EQ(r.field(), "to") << r;
    EXPECT_EQ(okrd_.HeadSeq(), head);
    EXPECT_EQ(EntriesIn(outside_), 0u) << "a backup wrote outside the root";
    EXPECT_FALSE(Exists(dir_.Sub("x"))) << "a backup wrote beside the root";
  }

  TempDir dir_;
  std::string root_ = dir_.Sub("backups"), outside_ = dir_.Sub("elsewhere");
  Okrd okrd_{WithTokens({"--backup-root", root_, "--dashboard", ""})};
};

TEST_F(BackupRootTest, PathsThatLeaveTheRootAreRefused) {
  for (const std::string& to :
       {std::string("../x"), std::string("a/../../x"), std::string(".."), std::string("./x"),
        std::string("a//b"), std::string("a/"), outside_, dir_.Sub("x")}) {
    ExpectRefused({{"to", to}});
  }
  // The limits: kMaxBackupPathComponents parts, kMaxBackupPathChars characters.
  std::string deep = "d";
  for (size_t i = 1; i <= api::kMaxBackupPathComponents; ++i) deep += "/d";
  ExpectRefused({{"to", deep}});
  ExpectRefused({{"to", std::string(api::kMaxBackupPathChars + 1, 'l')}});
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", 7}}, kAdmin.token).status, 400);
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", "nightly"}}, kEditor.token).status, 403);
}

TEST_F(BackupRootTest, ASymlinkInsideTheRootIsNeverFollowed) {
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/evil").c_str()), 0);
  ASSERT_EQ(::mkdir((root_ + "/team").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/team/evil").c_str()), 0);
  ExpectRefused({{"to", "evil"}});
  ExpectRefused({{"to", "evil/nightly"}});
  ExpectRefused({{"to", "team/evil"}});
  // A directory others may write into could be raced: refused as well.
  ASSERT_EQ(::mkdir((root_ + "/shared").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((root_ + "/shared").c_str(), 0777), 0);
  ExpectRefused({{"to", "shared"}});
}

TEST_F(BackupRootTest, ABackupLandsUnderTheRootIn0700DirectoriesAndRestores) {
  Reply r = okrd_.Post("/v1/admin/backup", {{"to", "nightly/2026-12-01"}}, kAdmin.token);
  ASSERT_EQ(r.status, 201) << r;
  EXPECT_EQ(r.json["to"], "nightly/2026-12-01");
  EXPECT_EQ(r.u("head_seq"), okrd_.HeadSeq());
  EXPECT_EQ(ModeOf(root_ + "/nightly"), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/nightly/2026-12-01"), 0700u);
  EXPECT_EQ(EntriesIn(outside_), 0u);

  auto restored = EventStore::Restore(root_ + "/nightly/2026-12-01", dir_.Sub("restored"));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->head_seq, r.u("head_seq"));
  auto store = EventStore::Open(dir_.Sub("restored"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->head().seq, r.u("head_seq"));

  // No `to`: the root itself.
  Reply root = okrd_.Post("/v1/admin/backup", json::object(), kAdmin.token);
  ASSERT_EQ(root.status, 201) << root;
  EXPECT_EQ(root.json["to"], "");
  auto listed = EventStore::ListBackups(root_);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->size(), 1u);
}

TEST(BackupRoot, WithoutABackupRootTheRouteSaysHowToEnableIt) {
  Okrd okrd(WithTokens({"--dashboard", ""}));
  ASSERT_TRUE(okrd.Start());
  uint64_t head = okrd.HeadSeq();
  TempDir dir;
  Reply r = okrd.Post("/v1/admin/backup", {{"to", dir.Sub("b")}}, kAdmin.token);
  EXPECT_EQ(r.status, 403) << r;
  EXPECT_NE(r.body.find("--backup-root"), std::string::npos) << r;
  EXPECT_FALSE(Exists(dir.Sub("b")));
  EXPECT_EQ(okrd.HeadSeq(), head);
}

TEST(BackupRoot, ARootOthersMayWriteIntoRefusesToStart) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("root").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.Sub("root").c_str(), 0777), 0);
  std::string out;
  int status = RunCommand("timeout 20 " + BuildFile(OKRD_PATH) + " --data '" + dir.Sub("data") +
                              "' --listen 127.0.0.1:0 --backup-root '" + dir.Sub("root") + "' 2>&1",
                          &out);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("chmod 700"), std::string::npos) << out;
}

// --- the tokens file ---

json Entry(const Token& t) {
  return {{"actor", t.actor},
          {"role", t.role},
          {"units", t.units},
          {"token_sha256", ToHex(Sha256(t.token))}};
}

void WriteTokensFile(const std::string& path, const json& list, mode_t mode = 0600) {
  std::string text = list.dump(2) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

// Starts okrd on `tokens` under `timeout` (an okrd that accepted the file
// would serve on); its exit status, and everything it printed in *out.
int StartWithTokens(const TempDir& dir, const std::string& tokens, std::string* out) {
  return RunCommand("timeout 20 " + BuildFile(OKRD_PATH) + " --data '" + dir.Sub("data") +
                        "' --listen 127.0.0.1:0 --tokens '" + tokens + "' 2>&1",
                    out);
}

TEST(TokensFile, EachUnsafeFileRefusesToStartAndSaysWhy) {
  struct Case {
    const char* what;
    json list;
    mode_t mode;
    std::function<void(const std::string&)> tamper;  // after writing; may be empty
    const char* message;                             // part of what okrd must say
  };
  json good = json::array({Entry(kAdmin), Entry(kEditor)});
  json same_hash = good;
  same_hash[1]["token_sha256"] = same_hash[0]["token_sha256"];
  json bad_subject = good, number_subject = good;
  bad_subject[1]["subject"] = "Eddie Smith";
  number_subject[1]["subject"] = 4821;
  const std::vector<Case> cases = {
      {"mode 0644", good, 0644, {}, "chmod 600"},
      {"mode 0660", good, 0660, {}, "chmod 600"},
      {"mode 0640, group not okrd", good, 0640, {}, "okrd"},
      {"two entries, one token", same_hash, 0600, {}, "same token_sha256"},
      {"subject not an id", bad_subject, 0600, {}, "subject of eddie"},
      {"subject a number", number_subject, 0600, {}, "subject of eddie"},
      {"owned by another user", good, 0600,
       [](const std::string& p) { ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0); },
       "owned by root or by okrd's user"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    WriteTokensFile(dir.Sub("tokens.json"), c.list, c.mode);
    if (c.tamper) c.tamper(dir.Sub("tokens.json"));
    std::string out;
    EXPECT_EQ(StartWithTokens(dir, dir.Sub("tokens.json"), &out), 2) << out;
    EXPECT_EQ(out.find("listening"), std::string::npos) << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << out;
  }
}

TEST(TokensFile, ASymlinkIsRefusedEvenToASafeFile) {
  TempDir dir;
  WriteTokensFile(dir.Sub("real.json"), json::array({Entry(kAdmin)}));
  ASSERT_EQ(::symlink(dir.Sub("real.json").c_str(), dir.Sub("tokens.json").c_str()), 0);
  std::string out;
  EXPECT_EQ(StartWithTokens(dir, dir.Sub("tokens.json"), &out), 2) << out;
  EXPECT_NE(out.find("symlink"), std::string::npos) << out;
}

TEST(TokensFile, ASubjectIsAcceptedAndKeptWithThePrincipal) {
  json list = json::array({Entry(kAdmin), Entry(kEditor)});
  list[1]["subject"] = "p-4821";
  auto table = api::TokenTable::FromJson(list.dump());
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto principal = table->Authenticate(kEditor.token);
  ASSERT_TRUE(principal.has_value());
  EXPECT_EQ(principal->subject, "p-4821");
  EXPECT_EQ(table->Authenticate(kAdmin.token)->subject, "");

  TempDir dir;
  WriteTokensFile(dir.Sub("tokens.json"), list);
  Okrd okrd(OkrdOptions{std::nullopt, {"--tokens", dir.Sub("tokens.json"), "--dashboard", ""}});
  ASSERT_TRUE(okrd.Start());
  Reply r =
      okrd.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token);
  EXPECT_EQ(r.status, 201) << r;
}

// Polls until `done` or 10 s pass.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

TEST(TokensFile, SighupReloadsAGoodFileAndKeepsTheOldTableForABadOne) {
  TempDir dir;
  const std::string path = dir.Sub("tokens.json");
  WriteTokensFile(path, json::array({Entry(kAdmin)}));
  Okrd okrd(OkrdOptions{std::nullopt, {"--tokens", path, "--dashboard", ""}});
  ASSERT_TRUE(okrd.Start());
  auto can_read_audit = [&](const Token& t) {
    return okrd.Get("/v1/audit/verify", t.token).status == 200;
  };
  Token auditor{"tok-operator-auditor-90d4e2b1f3", "audrey", "auditor", {}};
  ASSERT_FALSE(can_read_audit(auditor));

  // A good file: the new token works, the old table is gone.
  WriteTokensFile(path, json::array({Entry(auditor)}));
  ASSERT_EQ(::kill(okrd.pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] { return can_read_audit(auditor); })) << okrd.LogTail();
  EXPECT_FALSE(can_read_audit(kAdmin));

  // A bad file (others may read it): refused, logged, the table stays.
  WriteTokensFile(path, json::array({Entry(kAdmin)}), 0644);
  ASSERT_EQ(::kill(okrd.pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] {
    return okrd.LogTail().find("tokens_reload_refused") != std::string::npos;
  })) << okrd.LogTail();
  EXPECT_TRUE(can_read_audit(auditor));
  EXPECT_FALSE(can_read_audit(kAdmin));
  EXPECT_TRUE(okrd.Stop());
}

}  // namespace
}  // namespace okr::testing
