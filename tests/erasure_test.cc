// Erasure of personal data (SPEC §10) against the real okrd and okrctl: a
// person's name, email and the texts they wrote are stored sealed (a raw
// ldb scan of the log holds none of them); after POST /v1/admin/erasures no
// route at any as_of, no okrctl dump or export, no snapshot shows them, the
// chain still verifies, and neither a log backup nor a key-store backup from
// before the erasure brings them back. Bad erasures change nothing; a
// flipped ciphertext byte is reported, never shown.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "tests/okrd_harness.h"
#include "tests/sse_client.h"
#include "tests/test_support.h"

#ifndef OKRCTL_PATH
#error "OKRCTL_PATH (the okrctl binary under test) must be defined"
#endif
#ifndef OKR_LDB_PATH
#error "OKR_LDB_PATH (RocksDB's ldb) must be defined"
#endif

namespace okr {
namespace {

using nlohmann::json;
using testing::DateIn;
using testing::Okrd;
using testing::OkrdOptions;
using testing::Reply;
using testing::TempDir;
using testing::Token;
using testing::Want;

const Token kAdmin{"admin-token-erasure", "hr.admin", "admin", {}};
const Token kAuditor{"auditor-token-erasure", "auditor", "auditor", {}};
const Token kReplica{"replica-token-erasure", "replica-1", "replica", {}};
// The person p-4821's own token: pseudonymous actor, subject p-4821.
const Token kPerson{"person-token-erasure", "pseudonym-17", "editor", {"eng"}, "p-4821"};

// What p-4821 is and wrote: none of it may outlive the erasure.
const std::vector<std::string> kSecrets = {
    "Zelda Quintessa-Morrow",            // name
    "zq.morrow@example.org",             // email
    "Zelda confided a diagnosis",        // check-in note
    "Zelda asked for a lighter week",    // the check-in's reason
    "Zelda thinks the team is burning",  // comment
    "Zelda reflects on her leave",       // review reflection
    "Zelda learned to say no",           // review lessons
    "Zelda moved it after her surgery",  // a target change's reason
};

std::string Hex(const std::string& s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) out.append({digits[c >> 4], digits[c & 15]});
  return out;
}

// The secrets `text` holds, for failure messages; empty when none.
std::vector<std::string> Leaks(const std::string& text) {
  std::vector<std::string> found;
  for (const auto& s : kSecrets) {
    if (text.find(s) != std::string::npos || text.find(Hex(s)) != std::string::npos) {
      found.push_back(s);
    }
  }
  return found;
}

std::string Okrctl(const std::string& args, int* rc = nullptr) {
  std::string out;
  int status = testing::RunCommand(testing::BuildFile(OKRCTL_PATH) + " " + args + " 2>&1", &out);
  if (rc) *rc = status;
  return out;
}

class Erasure : public ::testing::Test {
 protected:
  Erasure()
      : okrd_(OkrdOptions{std::vector<Token>{kAdmin, kAuditor, kPerson, kReplica},
                          {"--snapshot-every", "3"}}) {}

  void SetUp() override {
    ASSERT_TRUE(okrd_.Start());
    const auto& s = okrd_;
    testing::PlanAcmeAndCycle(s, kAdmin.token, 60);
    Want(s.Post("/v1/units", {{"id", "eng"}, {"kind", "team"}, {"name", "Eng"}, {"parent", "acme"}},
                kAdmin.token),
         201);
    Want(s.Post("/v1/units",
                {{"id", "p-4821"},
                 {"kind", "person"},
                 {"name", kSecrets[0]},
                 {"email", kSecrets[1]},
                 {"parent", "eng"}},
                kAdmin.token),
         201);
    Want(s.Post("/v1/objectives",
                {{"id", "o-1"}, {"cycle", "q"}, {"owner", "eng"}, {"title", "Ship the thing"}},
                kAdmin.token),
         201);
    Want(s.Post("/v1/key-results",
                {{"id", "kr-1"},
                 {"objective", "o-1"},
                 {"title", "Releases"},
                 {"metric", "number"},
                 {"start", 0},
                 {"target", 10}},
                kAdmin.token),
         201);
    Want(s.Post("/v1/key-results/kr-1/check-ins",
                {{"value", 4}, {"note", kSecrets[2]}, {"reason", kSecrets[3]}}, kPerson.token),
         201);
    Want(s.Post("/v1/objectives/o-1/comments", {{"text", kSecrets[4]}}, kPerson.token), 201);
    Want(s.Patch("/v1/key-results/kr-1", {{"target", 8}, {"reason", kSecrets[7]}}, kPerson.token),
         200);
    Want(s.Post("/v1/objectives/o-1/review",
                {{"score", 0.5},
                 {"outcome", "partially"},
                 {"reflection", kSecrets[5]},
                 {"lessons", kSecrets[6]}},
                kPerson.token),
         201);
    before_erasure_ = s.HeadSeq();
  }

  // Every read route's answer (as_of `as_of` where it takes one) and the
  // audit routes' (the whole log), one after another.
  std::string Sweep(uint64_t as_of) {
    const std::string a = "as_of=" + std::to_string(as_of);
    std::string all;
    for (const std::string& path :
         {"/v1/units?" + a, "/v1/units/p-4821?" + a, "/v1/objectives?" + a,
          "/v1/objectives/o-1?" + a, "/v1/key-results/kr-1?" + a,
          "/v1/key-results/kr-1/check-ins?" + a, "/v1/cascade?cycle=q&" + a, "/v1/diff?from=0&" + a,
          "/v1/cycles/q/review?format=json&" + a, "/v1/cycles/q/review?format=md&" + a,
          "/v1/cycles/q/review?format=csv&" + a, "/v1/lint?" + a, "/v1/objectives?q=Zelda&" + a,
          std::string("/v1/events?limit=1000"), std::string("/v1/history/p-4821"),
          std::string("/v1/history/kr-1"), std::string("/v1/history/o-1")}) {
      Reply r = okrd_.Get(path, kAuditor.token);
      // Earlier, what the path names may not exist yet.
      if (as_of >= before_erasure_ || r.status != 404)
        EXPECT_EQ(r.status, 200) << path << ": " << r;
      all += path + "\n" + r.body + "\n";
    }
    return all;
  }

  Reply Erase(const json& body, const Token& who = kAdmin) {
    return okrd_.Post("/v1/admin/erasures", body, who.token);
  }

  // The log as ldb scans it, values in hex: what a raw dump shows.
  std::string LdbScan() {
    std::string out;
    EXPECT_EQ(testing::RunCommand(std::string(OKR_LDB_PATH) + " --db=" + okrd_.data_dir() +
                                      " --column_family=events scan --hex 2>&1",
                                  &out),
              0);
    EXPECT_GT(out.size(), 1000u) << "the scan must have read the log: " << out;
    return out;
  }

  Okrd okrd_;
  uint64_t before_erasure_ = 0;
};

TEST_F(Erasure, SealedBeforeAndShownNowhereAfterwardsThoughTheChainVerifies) {
  // Before: everything reads normally …
  Reply unit = Want(okrd_.Get("/v1/units/p-4821", kAuditor.token), 200);
  EXPECT_EQ(unit.json["name"], kSecrets[0]);
  EXPECT_EQ(unit.json["email"], kSecrets[1]);
  EXPECT_EQ(Leaks(Sweep(before_erasure_)).size(), kSecrets.size())
      << "every secret is shown somewhere before the erasure";
  // … and the stored log holds none of it in plaintext.
  ASSERT_TRUE(okrd_.Stop());
  EXPECT_EQ(Leaks(LdbScan()), std::vector<std::string>{});
  ASSERT_TRUE(okrd_.Start());

  Reply erased = Want(Erase({{"subject", "p-4821"}, {"reason", "GDPR art. 17, request 118"}}), 201);
  EXPECT_EQ(erased.u("seq"), before_erasure_ + 1);
  EXPECT_EQ(okrd_.HeadSeq(), before_erasure_ + 1);

  unit = Want(okrd_.Get("/v1/units/p-4821", kAuditor.token), 200);
  EXPECT_TRUE(unit.json["name"].is_null()) << unit;
  EXPECT_TRUE(unit.json["email"].is_null()) << unit;
  EXPECT_EQ(unit.json["erased"], true) << unit;
  Reply check_ins = Want(okrd_.Get("/v1/key-results/kr-1/check-ins", kAuditor.token), 200);
  EXPECT_NE(check_ins.body.find("\"erased\":true"), std::string::npos) << check_ins;
  Reply md = Want(okrd_.Get("/v1/cycles/q/review?format=md", kAuditor.token), 200);
  EXPECT_NE(md.body.find("[erased]"), std::string::npos) << md.body;
  for (uint64_t as_of = 1; as_of <= before_erasure_ + 1; ++as_of) {
    EXPECT_EQ(Leaks(Sweep(as_of)), std::vector<std::string>{}) << "as_of " << as_of;
  }
  Reply history = Want(okrd_.Get("/v1/history/p-4821", kAuditor.token), 200);
  EXPECT_NE(history.body.find("subject.erased"), std::string::npos);
  EXPECT_NE(history.body.find("GDPR art. 17, request 118"), std::string::npos);
  EXPECT_EQ(Want(okrd_.Get("/v1/audit/verify", kAuditor.token), 200).json["ok"], true);

  // A restart changes nothing; offline, nothing shows them either.
  ASSERT_TRUE(okrd_.Restart());
  EXPECT_EQ(Leaks(Sweep(before_erasure_)), std::vector<std::string>{});
  ASSERT_TRUE(okrd_.Stop());
  int rc = -1;
  std::string dump = Okrctl("dump --data " + okrd_.data_dir(), &rc);
  EXPECT_EQ(rc, 0) << dump;
  EXPECT_NE(dump.find("\"erased\":true"), std::string::npos);
  EXPECT_EQ(Leaks(dump), std::vector<std::string>{});
  std::string exported = Okrctl("export --cycle q --data " + okrd_.data_dir(), &rc);
  EXPECT_EQ(rc, 0) << exported;
  EXPECT_EQ(Leaks(exported), std::vector<std::string>{});
  exported = Okrctl("export --cycle q --format json --data " + okrd_.data_dir(), &rc);
  EXPECT_EQ(rc, 0) << exported;
  EXPECT_EQ(Leaks(exported), std::vector<std::string>{});
  EXPECT_NE(exported.find("\"erased\": true"), std::string::npos) << exported;
  std::string verified = Okrctl("verify --deep --data " + okrd_.data_dir(), &rc);
  EXPECT_EQ(rc, 0) << verified;
  EXPECT_EQ(Leaks(LdbScan()), std::vector<std::string>{});
  // The snapshots hold no plaintext, and at least one holds the person.
  auto store = EventStore::Open(okrd_.data_dir(),
                                OpenOptions{.create_if_missing = false, .read_only = true});
  ASSERT_TRUE(store.ok());
  auto snapshot = (*store)->SnapshotAtOrBefore(UINT64_MAX);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  std::string parts;
  for (const auto& p : snapshot->parts) parts += p;
  EXPECT_NE(parts.find("p-4821"), std::string::npos);
  EXPECT_EQ(Leaks(parts), std::vector<std::string>{});
}

// Every event of the live feed from seq 1 to `head`, as one text.
std::string FeedUpTo(const Okrd& s, uint64_t head) {
  testing::SseClient feed;
  EXPECT_TRUE(feed.Open(s.port(), "/v1/events/stream", kAuditor.token, "0"));
  std::string all;
  for (uint64_t seen = 0; seen < head;) {
    auto e = feed.Next(std::chrono::seconds(10));
    if (!e) break;
    seen = e->id;
    all += e->data + "\n";
  }
  return all;
}

TEST_F(Erasure, TheLiveFeedForgetsWhatItRenderedBeforeTheErasure) {
  // A follower makes okrd render the events into its feed's ring.
  testing::SseClient follower;
  ASSERT_TRUE(follower.Open(okrd_.port(), "/v1/events/stream", kAuditor.token, "0"));
  std::string before;
  for (uint64_t seen = 0; seen < before_erasure_;) {
    auto e = follower.Next(std::chrono::seconds(10));
    ASSERT_TRUE(e.has_value());
    seen = e->id;
    before += e->data;
  }
  EXPECT_EQ(Leaks(before).size(), kSecrets.size()) << "every secret is in the feed before";
  Want(Erase({{"subject", "p-4821"}, {"reason", "request 122"}}), 201);
  // The follower is told to reconnect; from the log, nothing erased shows.
  EXPECT_TRUE(testing::WaitFor(
      [&] { return !follower.Next(std::chrono::milliseconds(100)) && follower.ended(); }, 20));
  EXPECT_EQ(Leaks(FeedUpTo(okrd_, before_erasure_ + 1)), std::vector<std::string>{});
}

TEST_F(Erasure, BackupsFromBeforeTheErasureDoNotBringItBack) {
  const std::string data = okrd_.data_dir(), keys = data + ".keys";
  TempDir backups;
  ASSERT_TRUE(okrd_.Stop());
  int rc = -1;
  std::string out = Okrctl("backup --data " + data + " --to " + backups.Sub("log"), &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Okrctl("backup --keys --data " + data + " --to " + backups.Sub("keys"), &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(okrd_.Start());
  Want(Erase({{"subject", "p-4821"}, {"reason", "request 119"}}), 201);
  const uint64_t head = okrd_.HeadSeq();

  // The log from before the erasure, with the key store of today.
  ASSERT_TRUE(okrd_.Stop());
  std::filesystem::rename(data, backups.Sub("data-now"));
  out = Okrctl("restore --from " + backups.Sub("log") + " --data " + data, &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(okrd_.Start());
  EXPECT_EQ(okrd_.HeadSeq(), before_erasure_);
  EXPECT_EQ(Leaks(Sweep(before_erasure_)), std::vector<std::string>{});
  // A person erased in the key store gets no personal data again.
  Reply refused = okrd_.Post("/v1/objectives/o-1/comments", {{"text", "new words"}}, kPerson.token);
  EXPECT_EQ(refused.status, 409) << refused;
  EXPECT_EQ(okrd_.HeadSeq(), before_erasure_);

  // The log of today, with the key store from before the erasure.
  ASSERT_TRUE(okrd_.Stop());
  std::filesystem::remove_all(data);
  std::filesystem::rename(backups.Sub("data-now"), data);
  std::filesystem::rename(keys, backups.Sub("keys-now"));
  out = Okrctl("restore --keys --from " + backups.Sub("keys") + " --data " + data, &rc);
  ASSERT_EQ(rc, 0) << out;
  // Read offline before okrd opens it: the log's erasure applies in memory.
  EXPECT_EQ(Leaks(Okrctl("dump --data " + data)), std::vector<std::string>{});
  ASSERT_TRUE(okrd_.Start());
  EXPECT_EQ(okrd_.HeadSeq(), head);
  EXPECT_EQ(Leaks(Sweep(head)), std::vector<std::string>{});
  EXPECT_NE(testing::ReadFile(okrd_.log_path()).find("subject_key_erased_again"),
            std::string::npos);
  // … and the key is gone from the restored key store's files too.
  ASSERT_TRUE(okrd_.Stop());
  std::string scan;
  EXPECT_EQ(testing::RunCommand(std::string(OKR_LDB_PATH) + " --db=" + keys + " scan 2>&1", &scan),
            0);
  EXPECT_EQ(scan.find("subject-key/p-4821/"), std::string::npos) << scan;
  EXPECT_NE(scan.find("subject-erased/p-4821/"), std::string::npos) << scan;
}

TEST_F(Erasure, AReplicaShowsWhatThePrimaryShowsAndErasesWhatItErases) {
  TempDir dir;
  const std::string token_file = dir.Sub("replica.token");
  {
    std::ofstream(token_file) << kReplica.token << "\n";
    std::filesystem::permissions(
        token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  Okrd replica(OkrdOptions{std::vector<Token>{kAuditor},
                           {"--replica-of", "http://127.0.0.1:" + std::to_string(okrd_.port()),
                            "--replica-token", token_file}});
  ASSERT_TRUE(replica.Start()) << replica.LogTail();
  auto caught_up = [&](uint64_t head) {
    return testing::WaitFor([&] { return replica.HeadSeq() == head; }, 60);
  };
  ASSERT_TRUE(caught_up(before_erasure_));
  // The keys came with the events: the replica reads as the primary does.
  const std::string path = "/v1/units/p-4821";
  EXPECT_EQ(Want(replica.Get(path, kAuditor.token), 200).json["name"], kSecrets[0]);
  EXPECT_EQ(replica.Get("/v1/cycles/q/review?format=json", kAuditor.token).body,
            okrd_.Get("/v1/cycles/q/review?format=json", kAuditor.token).body);
  // Only the replica role gets them.
  EXPECT_EQ(okrd_.Get("/v1/replication/keys", kAuditor.token).status, 403);
  EXPECT_EQ(okrd_.Get("/v1/replication/keys", kAdmin.token).status, 403);
  Reply keys = Want(okrd_.Get("/v1/replication/keys", kReplica.token), 200);
  EXPECT_EQ(
      okrd_.Get("/v1/replication/keys", kReplica.token, {{"If-None-Match", keys.header("ETag")}})
          .status,
      304);

  Want(Erase({{"subject", "p-4821"}, {"reason", "request 121"}}), 201);
  ASSERT_TRUE(caught_up(before_erasure_ + 1));
  Reply unit = Want(replica.Get(path, kAuditor.token), 200);
  EXPECT_TRUE(unit.json["name"].is_null()) << unit;
  EXPECT_EQ(unit.json["erased"], true) << unit;
  EXPECT_EQ(Leaks(Sweep(before_erasure_)), std::vector<std::string>{});
  std::string all;
  for (const char* p : {"/v1/key-results/kr-1/check-ins", "/v1/history/p-4821",
                        "/v1/events?limit=1000", "/v1/cycles/q/review?format=md"}) {
    all += Want(replica.Get(p, kAuditor.token), 200).body;
  }
  EXPECT_EQ(Leaks(all), std::vector<std::string>{});
  // Gone from the replica's key store, not only from its memory.
  ASSERT_TRUE(replica.Stop());
  std::string scan;
  EXPECT_EQ(
      testing::RunCommand(
          std::string(OKR_LDB_PATH) + " --db=" + replica.data_dir() + ".keys scan 2>&1", &scan),
      0);
  EXPECT_EQ(scan.find("subject-key/p-4821/"), std::string::npos) << scan;
}

TEST_F(Erasure, BadErasuresAndWritesForAnErasedPersonChangeNothing) {
  const uint64_t head = okrd_.HeadSeq();
  EXPECT_EQ(Erase({{"subject", "p-4821"}, {"reason", "x"}}, kPerson).status, 403);
  EXPECT_EQ(okrd_.Post("/v1/admin/erasures", {{"subject", "p-4821"}, {"reason", "x"}}).status, 401);
  EXPECT_EQ(Erase({{"subject", "p-4821"}}).status, 422);
  EXPECT_EQ(Erase({{"subject", "p-4821"}, {"reason", ""}}).status, 422);
  EXPECT_EQ(Erase({{"subject", 4821}, {"reason", "x"}}).status, 422);
  EXPECT_EQ(Erase({{"subject", "p-4821"}, {"reason", "x"}, {"also", 1}}).status, 400);
  EXPECT_EQ(Erase({{"subject", "eng"}, {"reason", "a team is no person"}}).status, 404);
  EXPECT_EQ(Erase({{"subject", "p-0000"}, {"reason", "nobody"}}).status, 404);
  EXPECT_EQ(Erase({{"subject", "p-4821"}, {"reason", "line\u0001break"}}).status, 422);
  EXPECT_EQ(okrd_.Request("POST", "/v1/admin/erasures", "{\"subject\":", kAdmin.token).status, 400);
  EXPECT_EQ(okrd_.HeadSeq(), head);
  // Still readable: nothing was erased.
  EXPECT_EQ(Want(okrd_.Get("/v1/units/p-4821", kAuditor.token), 200).json["name"], kSecrets[0]);

  Want(Erase({{"subject", "p-4821"}, {"reason", "request 120"}}), 201);
  Reply again = Erase({{"subject", "p-4821"}, {"reason", "request 120"}});
  EXPECT_EQ(again.status, 409) << again;
  EXPECT_NE(again.body.find("seq " + std::to_string(head + 1)), std::string::npos) << again;
  Reply note = okrd_.Post("/v1/key-results/kr-1/check-ins", {{"value", 5}, {"note", "again"}},
                          kPerson.token);
  EXPECT_EQ(note.status, 409) << note;
  Reply rename = okrd_.Patch("/v1/units/p-4821", {{"name", "Someone New"}}, kAdmin.token);
  EXPECT_EQ(rename.status, 409) << rename;
  EXPECT_EQ(okrd_.HeadSeq(), head + 1);
  // What holds no personal text still goes through.
  Want(okrd_.Post("/v1/key-results/kr-1/check-ins", {{"value", 6}}, kAdmin.token), 201);
  // The key store lost: the log still says the person was erased, and no
  // new key is made for them.
  ASSERT_TRUE(okrd_.Stop());
  std::filesystem::remove_all(okrd_.data_dir() + ".keys");
  ASSERT_TRUE(okrd_.Start());
  const uint64_t now = okrd_.HeadSeq();
  Reply back =
      okrd_.Post("/v1/key-results/kr-1/check-ins", {{"value", 7}, {"note", "back"}}, kPerson.token);
  EXPECT_EQ(back.status, 409) << back;
  EXPECT_EQ(okrd_.HeadSeq(), now);
}

// Two administrators (or one clicking twice) erase the same person at the
// same moment: one erasure is recorded, every other answer is a 409 that
// names it, and the person reads as erased either way.
TEST_F(Erasure, ErasuresRacingForOnePersonRecordOne) {
  const uint64_t head = okrd_.HeadSeq();
  constexpr int kRacers = 6;
  std::vector<Reply> replies(kRacers);
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i) {
    racers.emplace_back([&, i] {
      replies[i] = Erase({{"subject", "p-4821"}, {"reason", "request " + std::to_string(130 + i)}});
    });
  }
  for (auto& t : racers) t.join();
  int recorded = 0;
  for (const Reply& r : replies) {
    if (r.status == 201) {
      ++recorded;
      EXPECT_EQ(r.u("seq"), head + 1) << r;
    } else {
      EXPECT_EQ(r.status, 409) << r;
      EXPECT_NE(r.body.find("seq " + std::to_string(head + 1)), std::string::npos) << r;
    }
  }
  EXPECT_EQ(recorded, 1);
  EXPECT_EQ(okrd_.HeadSeq(), head + 1);
  Reply unit = Want(okrd_.Get("/v1/units/p-4821", kAuditor.token), 200);
  EXPECT_TRUE(unit.json["name"].is_null()) << unit;
  EXPECT_EQ(unit.json["erased"], true) << unit;
}

TEST_F(Erasure, AFlippedCiphertextByteIsReportedNeverShown) {
  ASSERT_TRUE(okrd_.Stop());
  // The check-in's event, its note's ciphertext changed by one bit.
  const std::string data = okrd_.data_dir();
  uint64_t seq = 0;
  std::string bytes;
  {
    auto store = EventStore::Open(data, OpenOptions{.create_if_missing = false, .read_only = true});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)
                    ->Scan(1, UINT64_MAX,
                           [&](uint64_t s, std::string_view b) {
                             auto decoded = DecodedEvent::Decode(b);
                             if (decoded.ok() && (*decoded)->event().isCheckInRecorded()) {
                               seq = s;
                               bytes = std::string(b);
                               return false;
                             }
                             return true;
                           })
                    .ok());
  }
  ASSERT_GT(seq, 0u);
  auto decoded = DecodedEvent::Decode(bytes);
  ASSERT_TRUE(decoded.ok());
  auto box = (*decoded)->event().getSealed()[0].getBox();
  std::string flipped = bytes;
  const std::string original(reinterpret_cast<const char*>(box.begin()), box.size());
  const size_t pos = flipped.find(original);
  ASSERT_NE(pos, std::string::npos);
  // Past the 12-byte nonce: a byte of the ciphertext itself.
  flipped[pos + 12 + 3] = static_cast<char>(flipped[pos + 12 + 3] ^ 0x01);
  std::string out;
  ASSERT_EQ(testing::RunCommand(std::string(OKR_LDB_PATH) + " --db=" + data +
                                    " --column_family=events put --hex 0x" +
                                    Hex(format::SeqKey(seq)) + " 0x" + Hex(flipped) + " 2>&1",
                                &out),
            0)
      << out;
  int rc = -1;
  std::string verified = Okrctl("verify --json --data " + data, &rc);
  EXPECT_EQ(rc, 1) << verified;
  json report = json::parse(verified.substr(verified.find('{')), nullptr, false);
  ASSERT_TRUE(report.is_object()) << verified;
  EXPECT_EQ(report["ok"], false);
  // The chain names the changed event, or the one whose prevHash it broke.
  EXPECT_GE(report["first_bad_seq"].get<uint64_t>(), seq) << verified;
  EXPECT_LE(report["first_bad_seq"].get<uint64_t>(), seq + 1) << verified;
  std::string dump =
      Okrctl("dump --data " + data + " --after " + std::to_string(seq - 1) + " --limit 1", &rc);
  EXPECT_EQ(rc, 0) << dump;
  EXPECT_NE(dump.find("\"damaged\":true"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"note\":null"), std::string::npos) << dump;
  // The note's ciphertext was changed; the reason beside it still opens.
  EXPECT_EQ(Leaks(dump), std::vector<std::string>{kSecrets[3]}) << dump;
}

}  // namespace
}  // namespace okr
