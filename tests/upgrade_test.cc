// Upgrades (SPEC §6): logs written by an earlier okrd stay readable. Each
// fixture under tests/fixtures/ is a small log and its snapshots as that
// okrd left them, with that okrd's answers to a fixed set of reads
// (tests/fixtures/capture.py). Today's okrd opens a copy, verifies it and
// answers every read the same; okrctl verifies it too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "eventstore/checkpoint.h"
#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "eventstore/merkle.h"
#include "projections/service/snapshot.h"
#include "tests/okrd_harness.h"
#include "tests/printed_checkpoint.h"

#ifndef OKRD_PATH
#error "OKRD_PATH must be defined"
#endif
#ifndef OKR_FIXTURES_DIR
#error "OKR_FIXTURES_DIR must be defined"
#endif
#ifndef OKRCTL_PATH
#error "OKRCTL_PATH must be defined"
#endif

namespace okr::testing {
namespace {

using nlohmann::json;

// The token capture.py asked with (only its hash is written here).
const Token kAuditor{"tok-fixture-auditor-6a1f0c93e2", "audrey", "auditor", {}};
const Token kAdmin{"tok-upgrade-admin-0d4c7e19b2", "root", "admin", {}};

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// A copy of the fixture's data directory where okrd will look for it.
void CopyFixture(const std::string& fixture, const std::string& data_dir) {
  std::filesystem::create_directories(data_dir);
  std::filesystem::copy(std::string(OKR_FIXTURES_DIR) + "/" + fixture + "/data", data_dir,
                        std::filesystem::copy_options::recursive);
}

// `doc` without the `pace` objects okrd added after the fixture was made:
// the one additive change to these answers. They sit beside a `progress`
// (objectives, key results, cascade nodes) and at a cascade's top level
// (beside `nodes`); a `pace` anywhere else is left to fail the compare.
json WithoutPace(json doc) {
  if (doc.is_object() && (doc.contains("progress") || doc.contains("nodes"))) doc.erase("pace");
  // Over an object this visits its values, over an array its items.
  if (doc.is_structured()) {
    for (json& child : doc) child = WithoutPace(std::move(child));
  }
  return doc;
}

// Same answer: the same status and, for JSON, the same document (field
// order aside, WithoutPace); other bodies (Markdown, CSV) byte for byte.
::testing::AssertionResult SameAnswer(const json& expected, const Reply& got) {
  if (got.status != expected["status"].get<int>()) {
    return ::testing::AssertionFailure()
           << "status " << got.status << ", was " << expected["status"] << "\n"
           << got.body;
  }
  const std::string& before = expected["body"].get_ref<const std::string&>();
  json parsed = json::parse(before, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() ? got.body == before : WithoutPace(got.json) == parsed) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "answer changed\nwas: " << before.substr(0, 2000)
                                       << "\nnow: " << got.body.substr(0, 2000);
}

// Checks the checkpoint a review answer `got` to `path` carries — a JSON
// review's "checkpoint", a printed one's closing part — against `verifier`
// and the review's seq `as_of`, then takes it out of `got`, leaving the
// answer an okrd without the tree gave.
void ExpectCheckpointAt(Reply* got, const std::string& path, const NoteVerifier& verifier,
                        uint64_t as_of) {
  std::string note;
  if (got->json.is_object()) {
    EXPECT_EQ(got->json["checkpoint"]["size"], as_of) << path;
    note = got->json["checkpoint"]["note"];
    got->json.erase("checkpoint");
  } else {
    auto printed = ReadPrintedCheckpoint(
        got->body, path.find("format=md") != std::string::npos ? "md" : "csv");
    ASSERT_TRUE(printed) << path;
    EXPECT_EQ(printed->size, as_of) << path;
    note = printed->note;
    got->body = printed->review;
  }
  auto verified = VerifyCheckpoint(note, verifier);
  ASSERT_TRUE(verified.ok()) << path << ": " << verified.status().ToString();
  EXPECT_EQ(verified->size, as_of) << path;
}

// The fixture predates the Merkle tree: okrd built it at its first open,
// and every root stored equals the one recomputed from the events.
void ExpectTreeOfTheEvents(const std::string& data_dir) {
  OpenOptions options;
  options.read_only = true;
  auto store = EventStore::Open(data_dir, options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  merkle::Frontier frontier;
  Status scanned = (*store)->Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    frontier.Append(merkle::LeafHash(bytes), nullptr);
    auto root = (*store)->TreeRoot(seq);
    EXPECT_TRUE(root.ok() && *root == frontier.Root()) << "size " << seq;
    return true;
  });
  ASSERT_TRUE(scanned.ok()) << scanned.ToString();
  EXPECT_EQ(frontier.size(), (*store)->head().seq);
  EXPECT_EQ((*store)->head().root, frontier.Root());
}

// The fixture's snapshots are each one message under a bare seq key, as
// before snapshots had parts (docs/FORMAT.md); they are still read. On a
// copy of its own: the open adds what the fixture predates.
void ExpectSnapshotsInOnePiece(const std::string& data_dir) {
  CopyFixture("wave1", data_dir);
  auto store = EventStore::Open(data_dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  size_t read = 0;
  for (uint64_t at = UINT64_MAX;; ++read) {
    auto stored = (*store)->SnapshotAtOrBefore(at);
    if (!stored.ok()) break;
    ASSERT_EQ(stored->parts.size(), 1u) << "snapshot at seq " << stored->seq;
    Hash hash{};
    auto decoded = SnapshotCodec::Decode(stored->parts, &hash);
    ASSERT_TRUE(decoded.ok()) << stored->seq << ": " << decoded.status().ToString();
    EXPECT_EQ(decoded->seq(), stored->seq);
    at = stored->seq - 1;
  }
  EXPECT_GE(read, 1u);
}

TEST(UpgradeTest, TheFirstFormatsLogIsServedWithTheSameAnswers) {
  Okrd okrd(OkrdOptions{std::vector<Token>{kAuditor, kAdmin}, {}});
  CopyFixture("wave1", okrd.data_dir());
  ExpectSnapshotsInOnePiece(okrd.data_dir() + "-snapshots");
  ASSERT_TRUE(okrd.Start()) << okrd.LogTail();
  Reply health = okrd.Get("/healthz");
  ASSERT_EQ(health.status, 200) << health;
  // okrd recorded its signing key after the fixture's 221 events, the
  // first time it gave the log its tree (docs/FORMAT.md).
  constexpr uint64_t kFixtureHead = 221;
  ASSERT_EQ(health.json["head_seq"], kFixtureHead + 1);
  Reply key_event = okrd.Get("/v1/events?after=221", kAuditor.token);
  ASSERT_EQ(key_event.json["items"].size(), 1u) << key_event;
  EXPECT_EQ(key_event.json["items"][0]["type"], "log.signing_key");
  EXPECT_EQ(key_event.json["items"][0]["actor"], "system:okrd");
  // The key the event records, which a review's checkpoint must verify with.
  Reply vkey = okrd.Get("/v1/log/key");
  ASSERT_EQ(vkey.status, 200) << vkey;
  auto verifier = ParseVkey(vkey.body.substr(0, vkey.body.size() - 1));
  ASSERT_TRUE(verifier.ok()) << vkey;
  EXPECT_EQ(key_event.json["items"][0]["data"]["origin"], verifier->name);
  EXPECT_EQ(
      key_event.json["items"][0]["data"]["public_key"],
      Base64Encode(std::string_view(reinterpret_cast<const char*>(verifier->public_key.data()),
                                    verifier->public_key.size())));

  // Every answer the fixture's okrd gave, as of its head: the same. The
  // audit reads cover the whole log and see the key's event besides.
  // (The fixture's state reads took no as_of: they are asked at its head.)
  json answers = ReadJson(std::string(OKR_FIXTURES_DIR) + "/wave1/answers.json");
  ASSERT_GT(answers.size(), 100u);
  for (const json& a : answers) {
    std::string path = a["path"];
    if (path == "/v1/audit/verify" || path.starts_with("/v1/events")) {
      Reply whole = okrd.Get(path, kAuditor.token);
      EXPECT_EQ(whole.status, 200) << whole;
      if (path == "/v1/audit/verify") {
        EXPECT_EQ(whole.json["ok"], true) << whole;
        EXPECT_EQ(whole.json["events"], kFixtureHead + 1) << whole;
      } else {
        json items = whole.json["items"];
        ASSERT_EQ(items.size(), kFixtureHead + 1) << path;
        items.erase(items.size() - 1);
        EXPECT_EQ(items, json::parse(a["body"].get<std::string>())["items"]) << path;
      }
      continue;
    }
    const bool history = path.starts_with("/v1/history/");
    if (path.find("as_of=") == std::string::npos && !history) {
      path += (path.find('?') == std::string::npos ? "?as_of=" : "&as_of=") +
              std::to_string(kFixtureHead);
    }
    Reply got = okrd.Get(path, kAuditor.token);
    // A history is read at the head; the entity's events are the same.
    if (history && got.json.is_object()) {
      EXPECT_EQ(got.json["as_of_seq"], kFixtureHead + 1) << path;
      got.json["as_of_seq"] = kFixtureHead;
    }
    // A review carries the checkpoint of its as_of_seq now (SPEC §7), in
    // each of its forms: it verifies with the log's key, and the review
    // besides it is the one the fixture's okrd gave, byte for byte.
    if (path.find("/review") != std::string::npos && got.status == 200) {
      ExpectCheckpointAt(&got, path, *verifier, kFixtureHead);
    }
    EXPECT_TRUE(SameAnswer(a, got)) << path;
  }

  // The log takes new writes, and ids it already holds stay taken — by
  // a key result, a check-in or an objective, whatever kind asks.
  Reply objectives = okrd.Get("/v1/objectives?cycle=2026-q4", kAuditor.token);
  ASSERT_EQ(objectives.status, 200) << objectives;
  std::string taken, kr;
  for (const json& o : objectives.json["items"]) {
    if (o["key_results"].empty()) continue;
    taken = o["id"];
    kr = o["key_results"][0]["id"];
  }
  ASSERT_FALSE(kr.empty()) << objectives;
  Reply reused = okrd.Post("/v1/key-results/" + kr + "/check-ins", {{"id", taken}, {"value", 1}},
                           kAdmin.token);
  EXPECT_EQ(reused.status, 409) << reused;
  EXPECT_EQ(okrd.HeadSeq(), kFixtureHead + 1);
  Reply fresh = okrd.Post("/v1/key-results/" + kr + "/check-ins", {{"value", 1}}, kAdmin.token);
  EXPECT_EQ(fresh.status, 201) << fresh;
  EXPECT_EQ(okrd.HeadSeq(), kFixtureHead + 2);
  ASSERT_TRUE(okrd.Stop()) << okrd.LogTail();
  EXPECT_NE(okrd.LogTail(1 << 20).find("tree_building"), std::string::npos) << okrd.LogTail();
  ExpectTreeOfTheEvents(okrd.data_dir());

  // The chain, and the fixture's snapshots against a full replay.
  std::string out;
  EXPECT_EQ(RunCommand(BuildFile(OKRCTL_PATH) + " verify --deep --data " + okrd.data_dir(), &out),
            0)
      << out;
}

}  // namespace
}  // namespace okr::testing
