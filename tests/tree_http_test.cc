// okrd end to end, the log's Merkle tree (SPEC §7): the key route names
// the key the log.signing_key event records; checkpoints verify with the
// `openssl` CLI, not only with okrd's code, and sign the root this test
// computes itself from the stored bytes; inclusion and consistency proofs
// verify (RFC 9162); bad parameters are refused and change nothing; the
// key and origin survive restarts and another key file refuses start; a
// review carries the checkpoint of its as_of_seq, printed ones too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "eventstore/checkpoint.h"
#include "eventstore/event_json.h"
#include "eventstore/merkle.h"
#include "tests/okrd_story.h"
#include "tests/printed_checkpoint.h"
#include "tools/ctl/raw_events.h"

namespace okr::testing {
namespace {

using merkle::Hash;

// The stored bytes of events 1..head, through GET /v1/events/raw, read by
// okrctl's strict frame reader.
std::vector<std::string> StoredValues(const Okrd& s) {
  const uint64_t head = s.HeadSeq();
  Reply r = Want(s.Get("/v1/events/raw?after=0&limit=100000", kAuditor.token), 200);
  std::vector<std::string> out;
  ctl::RawFrameReader reader(1, head);
  Status fed = reader.Feed(r.body, [&](uint64_t, std::string_view bytes) {
    out.emplace_back(bytes);
    return true;
  });
  EXPECT_TRUE(fed.ok()) << fed.ToString();
  EXPECT_TRUE(reader.Finish().ok());
  EXPECT_EQ(out.size(), head);
  return out;
}

// The root of the first `size` events, computed here from their bytes.
Hash RootOf(const std::vector<std::string>& values, uint64_t size) {
  merkle::Frontier tree;
  for (uint64_t i = 0; i < size; ++i) tree.Append(merkle::LeafHash(values.at(i)), nullptr);
  return tree.Root();
}

Hash HashOf(const json& base64) {
  std::optional<std::string> bytes = Base64Decode(base64.get<std::string>());
  Hash out{};
  EXPECT_TRUE(bytes && bytes->size() == out.size()) << base64;
  if (bytes && bytes->size() == out.size()) std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

std::vector<Hash> HashesOf(const json& array) {
  std::vector<Hash> out;
  for (const json& h : array) out.push_back(HashOf(h));
  return out;
}

// Checks `note` with the openssl CLI alone: splits the signed body from
// the signature line, takes the 64-byte Ed25519 signature after the
// 4-byte key id, and verifies it with the public key of `verifier` as an
// SPKI DER file. True when `openssl pkeyutl -verify` says so.
bool OpensslVerifies(const std::string& note, const NoteVerifier& verifier, const TempDir& dir) {
  size_t blank = note.find("\n\n");
  if (blank == std::string::npos) return false;
  const std::string body = note.substr(0, blank + 1);
  const std::string line = note.substr(blank + 2);
  const std::string prefix = "\xE2\x80\x94 " + verifier.name + " ";
  if (line.rfind(prefix, 0) != 0 || line.back() != '\n') return false;
  auto blob = Base64Decode(line.substr(prefix.size(), line.size() - prefix.size() - 1));
  if (!blob || blob->size() != 4 + 64) return false;
  // RFC 8410: the SubjectPublicKeyInfo of an Ed25519 key is this prefix and the key.
  std::string der("\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12);
  der.append(verifier.public_key.begin(), verifier.public_key.end());
  auto write = [&](const char* name, const std::string& bytes) {
    std::ofstream(dir.Sub(name), std::ios::binary) << bytes;
    return dir.Sub(name);
  };
  const std::string command = "openssl pkeyutl -verify -rawin -pubin -keyform DER -inkey " +
                              write("key.der", der) + " -in " + write("body", body) + " -sigfile " +
                              write("sig", blob->substr(4)) + " 2>&1";
  std::string out;
  return RunCommand(command, &out) == 0 && out.find("Signature Verified Successfully") == 0;
}

class OkrdTree : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(okrd_.Start());
    BuildStory(okrd_);
  }
  NoteVerifier Verifier() const {
    Reply r = Want(okrd_.Get("/v1/log/key"), 200);
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r.body.back(), '\n');
    auto parsed = ParseVkey(r.body.substr(0, r.body.size() - 1));
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << r.body;
    return parsed.ok() ? *parsed : NoteVerifier{};
  }

  Okrd okrd_{WithTokens()};
  TempDir dir_;
};

TEST_F(OkrdTree, TheKeyRouteNamesTheKeyTheLogRecords) {
  const NoteVerifier verifier = Verifier();
  Reply events = Want(okrd_.Get("/v1/events?type=log.signing_key", kAuditor.token), 200);
  ASSERT_EQ(events.json["items"].size(), 1u) << events;
  const json& event = events.json["items"][0];
  EXPECT_EQ(event["seq"], 1) << "a new log records its key first";
  EXPECT_EQ(event["actor"], "system:okrd");
  EXPECT_EQ(event["entity"], "okrd:log");
  EXPECT_EQ(event["data"]["origin"], verifier.name);
  const Hash recorded = HashOf(event["data"]["public_key"]);  // 32 bytes, as a hash is
  EXPECT_TRUE(std::equal(recorded.begin(), recorded.end(), verifier.public_key.begin()));
  EXPECT_EQ(verifier.name.rfind("okrd/", 0), 0u) << verifier.name;
  EXPECT_EQ(verifier.name.size(), 5u + 16u);
}

TEST_F(OkrdTree, CheckpointsVerifyWithOpensslAndSignTheRootOfTheStoredBytes) {
  const NoteVerifier verifier = Verifier();
  const std::vector<std::string> values = StoredValues(okrd_);
  const uint64_t head = values.size();
  for (uint64_t size : {uint64_t{1}, uint64_t{2}, uint64_t{7}, head - 1, head, uint64_t{0}}) {
    const std::string query = size == 0 ? "" : "?size=" + std::to_string(size);
    Reply r = Want(okrd_.Get("/v1/log/checkpoint" + query), 200);
    const uint64_t want_size = size == 0 ? head : size;
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r.header("ETag"), "\"" + std::to_string(want_size) + "\"");
    EXPECT_EQ(r.header("Cache-Control"), "no-cache");
    EXPECT_TRUE(OpensslVerifies(r.body, verifier, dir_)) << r.body;
    auto checkpoint = VerifyCheckpoint(r.body, verifier);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
    EXPECT_EQ(checkpoint->size, want_size);
    EXPECT_EQ(checkpoint->root, RootOf(values, want_size)) << query;
    // The same size never changes: revalidation answers 304.
    Reply again =
        okrd_.Get("/v1/log/checkpoint" + query, "", {{"If-None-Match", r.header("ETag")}});
    EXPECT_EQ(again.status, 304) << again;
  }
  // openssl refuses a body that is not the signed one.
  std::string note = Want(okrd_.Get("/v1/log/checkpoint?size=3"), 200).body;
  note[note.find("\n3\n") + 1] = '4';
  EXPECT_FALSE(OpensslVerifies(note, verifier, dir_));
}

TEST_F(OkrdTree, InclusionAndConsistencyProofsVerify) {
  const std::vector<std::string> values = StoredValues(okrd_);
  const uint64_t head = values.size();
  ASSERT_GT(head, 20u);
  for (uint64_t size : {uint64_t{1}, uint64_t{5}, uint64_t{16}, uint64_t{17}, head}) {
    for (uint64_t seq : {uint64_t{1}, size / 2 + 1, size}) {
      Reply r = Want(okrd_.Get("/v1/log/proof/inclusion?seq=" + std::to_string(seq) +
                               "&size=" + std::to_string(size)),
                     200);
      EXPECT_EQ(r.u("seq"), seq);
      EXPECT_EQ(r.u("size"), size);
      const Hash leaf = HashOf(r.json["leaf_hash"]);
      EXPECT_EQ(leaf, merkle::LeafHash(values[seq - 1]));
      EXPECT_TRUE(merkle::VerifyInclusion(seq - 1, size, leaf, HashesOf(r.json["hashes"]),
                                          RootOf(values, size)))
          << r;
    }
  }
  // size defaults to the head.
  Reply latest = Want(okrd_.Get("/v1/log/proof/inclusion?seq=3"), 200);
  EXPECT_EQ(latest.u("size"), head);
  for (auto [from, to] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, 1}, {1, head}, {3, 8}, {7, 16}, {16, head}, {head - 1, head}, {head, head}}) {
    Reply r = Want(okrd_.Get("/v1/log/proof/consistency?from=" + std::to_string(from) +
                             "&to=" + std::to_string(to)),
                   200);
    EXPECT_EQ(r.u("from"), from);
    EXPECT_EQ(r.u("to"), to);
    EXPECT_TRUE(merkle::VerifyConsistency(from, to, RootOf(values, from), RootOf(values, to),
                                          HashesOf(r.json["hashes"])))
        << from << ".." << to << r;
  }
  // A proof against another size's root does not verify.
  Reply r = Want(okrd_.Get("/v1/log/proof/consistency?from=3&to=8"), 200);
  EXPECT_FALSE(merkle::VerifyConsistency(3, 8, RootOf(values, 3), RootOf(values, 9),
                                         HashesOf(r.json["hashes"])));
}

TEST_F(OkrdTree, BadParametersAreRefusedAndChangeNothing) {
  const uint64_t head = okrd_.HeadSeq();
  const std::string beyond = std::to_string(head + 1);
  struct Case {
    std::string path, field;
  };
  const std::vector<Case> cases = {
      {"/v1/log/checkpoint?size=0", "size"},
      {"/v1/log/checkpoint?size=" + beyond, "size"},
      {"/v1/log/checkpoint?size=%0A", "size"},
      {"/v1/log/checkpoint?size=1e308", "size"},
      {"/v1/log/checkpoint?size=-1", "size"},
      {"/v1/log/checkpoint?size=99999999999999999999", "size"},
      {"/v1/log/checkpoint?size=", "size"},
      {"/v1/log/proof/inclusion", "seq"},
      {"/v1/log/proof/inclusion?seq=0", "seq"},
      {"/v1/log/proof/inclusion?seq=5&size=4", "seq"},
      {"/v1/log/proof/inclusion?seq=1&size=" + beyond, "size"},
      {"/v1/log/proof/inclusion?seq=" + beyond, "seq"},
      {"/v1/log/proof/inclusion?seq=%2B1", "seq"},
      {"/v1/log/proof/consistency?from=1", "to"},
      {"/v1/log/proof/consistency?to=3", "from"},
      {"/v1/log/proof/consistency?from=0&to=3", "from"},
      {"/v1/log/proof/consistency?from=4&to=3", "from"},
      {"/v1/log/proof/consistency?from=1&to=" + beyond, "to"},
      {"/v1/log/proof/consistency?from=1&to=1e308", "to"},
  };
  for (const Case& c : cases) {
    Reply r = okrd_.Get(c.path);
    EXPECT_EQ(r.status, 422) << c.path << r;
    EXPECT_EQ(r.code(), "invalid") << c.path;
    EXPECT_EQ(r.field(), c.field) << c.path << r;
    EXPECT_EQ(r.header("Cache-Control"), "no-store") << c.path;
  }
  EXPECT_EQ(okrd_.HeadSeq(), head);
}

TEST_F(OkrdTree, TheKeyAndOriginSurviveRestartsAndAnotherKeyRefusesStart) {
  const NoteVerifier verifier = Verifier();
  const std::string key_file = okrd_.data_dir() + ".signing.key";
  ASSERT_TRUE(std::filesystem::exists(key_file));
  ASSERT_TRUE(okrd_.Restart());
  EXPECT_EQ(Verifier().vkey(), verifier.vkey());
  const uint64_t head = okrd_.HeadSeq();
  ASSERT_TRUE(okrd_.Stop());
  // Copies of the log with another key file, none (a copy's sibling key
  // file is missing), or another origin: each refuses start, naming the
  // recorded key, and writes nothing.
  std::string out;
  const std::string other = dir_.Sub("other.key");
  ASSERT_EQ(
      RunCommand("openssl genpkey -algorithm ed25519 -out " + other + " && chmod 600 " + other,
                 &out),
      0)
      << out;
  const std::string recorded = "the log's signing key " + verifier.vkey() + " is recorded at seq 1";
  struct Case {
    Strings flags;
    std::string says;
  };
  for (const Case& c : {Case{{"--signing-key", other}, " holds another key ("},
                        Case{{}, ".signing.key is missing; key rotation is not supported"},
                        Case{{"--signing-key", key_file, "--origin", "example.com/another"},
                             "--origin is example.com/another; a log's origin never changes"}}) {
    Okrd copy(WithTokens(c.flags));
    std::filesystem::copy(okrd_.data_dir(), copy.data_dir(),
                          std::filesystem::copy_options::recursive);
    EXPECT_FALSE(copy.Start()) << c.says;
    const std::string log = copy.LogTail();
    EXPECT_NE(log.find("refusing_to_start"), std::string::npos) << log;
    EXPECT_NE(log.find(c.flags.size() == 4 ? "the log's origin " + verifier.name : recorded),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(c.says), std::string::npos) << log;
    EXPECT_FALSE(std::filesystem::exists(copy.data_dir() + ".signing.key"));
  }
  // The right key, named explicitly with its origin: served as before,
  // nothing appended.
  Okrd same(WithTokens({"--signing-key", key_file, "--origin", verifier.name}));
  std::filesystem::copy(okrd_.data_dir(), same.data_dir(),
                        std::filesystem::copy_options::recursive);
  ASSERT_TRUE(same.Start());
  Reply key = Want(same.Get("/v1/log/key"), 200);
  EXPECT_EQ(key.body, verifier.vkey() + "\n");
  EXPECT_EQ(same.HeadSeq(), head);
}

TEST(OkrdTreeNewLog, OriginIsTheOneGivenAndTheEmptyTreeHasACheckpoint) {
  Okrd s(WithTokens({"--origin", "okr.example.com/log"}));
  ASSERT_TRUE(s.Start());
  Reply key = Want(s.Get("/v1/log/key"), 200);
  auto verifier = ParseVkey(key.body.substr(0, key.body.size() - 1));
  ASSERT_TRUE(verifier.ok()) << key;
  EXPECT_EQ(verifier->name, "okr.example.com/log");
  EXPECT_EQ(s.HeadSeq(), 1u) << "the key's event alone";
  auto checkpoint = VerifyCheckpoint(Want(s.Get("/v1/log/checkpoint"), 200).body, *verifier);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  EXPECT_EQ(checkpoint->size, 1u);
}

TEST_F(OkrdTree, AReviewCarriesTheCheckpointOfItsAsOfSeq) {
  const NoteVerifier verifier = Verifier();
  const std::vector<std::string> values = StoredValues(okrd_);
  for (const std::string& query : {std::string(), "&as_of=" + std::to_string(values.size() - 3)}) {
    Reply r = Want(okrd_.Get("/v1/cycles/q-now/review?format=json" + query), 200);
    const json& checkpoint = r.json["checkpoint"];
    ASSERT_TRUE(checkpoint.is_object()) << r;
    EXPECT_EQ(checkpoint["size"], r.json["as_of_seq"]);
    auto verified = VerifyCheckpoint(checkpoint["note"].get<std::string>(), verifier);
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->size, r.u("as_of_seq"));
    EXPECT_EQ(verified->root, HashOf(checkpoint["root"]));
    EXPECT_EQ(verified->root, RootOf(values, verified->size));
    EXPECT_TRUE(OpensslVerifies(checkpoint["note"].get<std::string>(), verifier, dir_));
  }
}

// A printed review (Markdown, CSV) ends with the checkpoint of its as_of:
// the note verifies with the log's key, signs the root of the first
// as_of events, and is the very note /v1/log/checkpoint?size=as_of serves.
TEST_F(OkrdTree, APrintedReviewCarriesTheCheckpointOfItsAsOf) {
  const NoteVerifier verifier = Verifier();
  const std::vector<std::string> values = StoredValues(okrd_);
  const uint64_t head = values.size();
  for (uint64_t as_of : {head, head - 3}) {
    const std::string query = as_of == head ? "" : "&as_of=" + std::to_string(as_of);
    const std::string served =
        Want(okrd_.Get("/v1/log/checkpoint?size=" + std::to_string(as_of)), 200).body;
    for (const std::string format : {"md", "csv"}) {
      Reply r = Want(okrd_.Get("/v1/cycles/q-now/review?format=" + format + query), 200);
      auto printed = ReadPrintedCheckpoint(r.body, format);
      ASSERT_TRUE(printed) << format << query;
      EXPECT_EQ(printed->size, as_of) << format << query;
      auto verified = VerifyCheckpoint(printed->note, verifier);
      ASSERT_TRUE(verified.ok()) << verified.status().ToString();
      EXPECT_EQ(verified->size, as_of);
      EXPECT_EQ(verified->root, HashOf(printed->root));
      EXPECT_EQ(verified->root, RootOf(values, as_of));
      EXPECT_EQ(printed->note, served) << format << query;
      // The review itself is the one printed without a checkpoint.
      EXPECT_EQ(printed->review.find("checkpoint"), std::string::npos) << r.body;
      EXPECT_NE(printed->review.find("hr-hiring"), std::string::npos) << r.body;
    }
  }
}

// An origin may be backticks alone or start like a formula: the Markdown
// fence outgrows the backticks, the CSV cell takes the formula escape,
// and either way the note read back is the note signed.
TEST(OkrdTreeNewLog, APrintedNoteSurvivesAnOriginOfBackticksOrAFormulaSign) {
  for (const std::string origin : {"````", "=okr/log"}) {
    Okrd s(WithTokens({"--origin", origin}));
    ASSERT_TRUE(s.Start());
    Reply key = Want(s.Get("/v1/log/key"), 200);
    auto verifier = ParseVkey(key.body.substr(0, key.body.size() - 1));
    ASSERT_TRUE(verifier.ok()) << key;
    CreateCycle(s, "q-now", "This quarter", -60, 30);
    const std::string served = Want(s.Get("/v1/log/checkpoint?size=2"), 200).body;
    for (const std::string format : {"md", "csv"}) {
      Reply r = Want(s.Get("/v1/cycles/q-now/review?format=" + format), 200);
      auto printed = ReadPrintedCheckpoint(r.body, format);
      ASSERT_TRUE(printed) << r.body;
      EXPECT_EQ(printed->note, served) << r.body;
      EXPECT_TRUE(VerifyCheckpoint(printed->note, *verifier).ok()) << r.body;
    }
  }
}

}  // namespace
}  // namespace okr::testing
