// okrctl audit end to end (SPEC §7): the binary run as an auditor runs it
// against the real okrd, and the attacks it must catch — an event changed
// in place with ldb, the log truncated and regrown (a fork), an old copy
// served again (a rollback); through an intercepting proxy (the attacker is
// the test's, okrd stays real) a consistency or inclusion proof with one
// hash flipped, a checkpoint signed by another key, and a key handed out at
// first use that the log itself does not record — each exit 1 naming it,
// the trusted state untouched; and the honest runs, each exit 0 moving the
// state on.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include "eventstore/checkpoint.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "eventstore/format.h"
#include "tests/okrd_harness.h"
#include "tests/test_support.h"

#ifndef OKRCTL_PATH
#error "OKRCTL_PATH (the okrctl binary under test) must be defined"
#endif

namespace okr {
namespace {

using nlohmann::json;
using testing::Okrd;
using testing::OkrdOptions;
using testing::ReadFile;
using testing::Reply;
using testing::TempDir;
using testing::Token;
namespace fs = std::filesystem;

const Token kAdmin{"admin-token-audit", "hr.admin", "admin", {}};
const Token kAuditor{"auditor-token-audit", "auditor", "auditor", {}};

struct CtlRun {
  int rc = -1;
  std::string out, err;
};

std::ostream& operator<<(std::ostream& os, const CtlRun& r) {
  return os << "[rc " << r.rc << "] stdout: " << r.out.substr(0, 2000)
            << "\nstderr: " << r.err.substr(0, 2000);
}

OkrdOptions WithTokens(std::vector<std::string> extra_args = {}) {
  OkrdOptions options;
  options.tokens = std::vector<Token>{kAdmin, kAuditor};
  options.extra_args = std::move(extra_args);
  return options;
}

// Forwards every GET to okrd and lets the test rewrite an answer on its
// way back: the man in the middle of an audit.
class Proxy {
 public:
  // Gets the path and okrd's answer body; may change the body.
  using Rewrite = std::function<void(const std::string& path, std::string* body)>;

  Proxy(int okrd_port, Rewrite rewrite) : upstream_("127.0.0.1", okrd_port) {
    server_.Get(".*", [this, rewrite](const httplib::Request& req, httplib::Response& res) {
      httplib::Headers headers;
      if (req.has_header("Authorization")) {
        headers.emplace("Authorization", req.get_header_value("Authorization"));
      }
      auto answer = upstream_.Get(req.target, headers);
      if (!answer) {
        res.status = 502;
        return;
      }
      std::string body = answer->body;
      rewrite(req.path, &body);
      res.status = answer->status;
      res.set_content(body, answer->get_header_value("Content-Type"));
    });
    server_.set_tcp_nodelay(true);
    upstream_.set_tcp_nodelay(true);
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound already: connections wait in the backlog until it listens.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Proxy() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Client upstream_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

class AuditTest : public ::testing::Test {
 protected:
  AuditTest() : okrd_(WithTokens()) {}
  void SetUp() override {
    ASSERT_TRUE(okrd_.Start());
    Reply key = okrd_.Get("/v1/log/key");
    ASSERT_EQ(key.status, 200) << key;
    vkey_ = key.body.substr(0, key.body.find('\n'));
    ASSERT_TRUE(ParseVkey(vkey_).ok()) << vkey_;
    AddUnits("base", 5);
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(okrd_.port()); }
  std::string State() const { return dir_.Sub("audit.json"); }

  // okrctl audit of `url` with the auditor's token and `key` (the log's
  // own by default), the state in State().
  CtlRun Audit(const std::string& url, const std::string& key = "") {
    const std::string err_path = dir_.Sub("stderr.txt");
    CtlRun r;
    r.rc = testing::RunCommand("OKR_TOKEN=" + kAuditor.token + " " +
                                   testing::BuildFile(OKRCTL_PATH) + " audit --server " + url +
                                   " --key '" + (key.empty() ? vkey_ : key) + "' --state " +
                                   State() + " 2>" + err_path,
                               &r.out);
    r.err = ReadFile(err_path);
    return r;
  }
  CtlRun Audit() { return Audit(Url()); }

  // `count` new units "<tag>-<i>" under the company, one event each.
  void AddUnits(const std::string& tag, int count) {
    if (okrd_.Get("/v1/units/acme", kAdmin.token).status == 404) {
      ASSERT_EQ(okrd_
                    .Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}},
                          kAdmin.token)
                    .status,
                201);
    }
    for (int i = 1; i <= count; ++i) {
      const std::string id = tag + "-" + std::to_string(i);
      Reply r = okrd_.Post(
          "/v1/units", {{"id", id}, {"kind", "team"}, {"name", "Team " + id}, {"parent", "acme"}},
          kAdmin.token);
      ASSERT_EQ(r.status, 201) << r;
    }
  }

  uint64_t TrustedSize() const {
    json state = json::parse(ReadFile(State()), nullptr, false);
    return state.is_object() ? state.value("size", uint64_t{0}) : 0;
  }

  // A first audit, trusting what okrd signs now.
  void TrustNow() {
    CtlRun first = Audit();
    ASSERT_EQ(first.rc, 0) << first;
    ASSERT_EQ(TrustedSize(), okrd_.HeadSeq());
  }

  // The data directory as it stands, okrd stopped meanwhile.
  std::string CopyData(const std::string& name) {
    EXPECT_TRUE(okrd_.Stop());
    const std::string copy = dir_.Sub(name);
    fs::copy(okrd_.data_dir(), copy, fs::copy_options::recursive);
    EXPECT_TRUE(okrd_.Start()) << okrd_.LogTail();
    return copy;
  }
  // Puts `copy` back in place of the data directory and starts okrd on
  // it; its signing key, beside the directory, stays the same.
  void RestoreData(const std::string& copy) {
    ASSERT_TRUE(okrd_.Stop());
    fs::remove_all(okrd_.data_dir());
    fs::copy(copy, okrd_.data_dir(), fs::copy_options::recursive);
    ASSERT_TRUE(okrd_.Start()) << okrd_.LogTail();
  }

  // The audit failed naming `word`, and the trusted state stayed as it was.
  void ExpectRefused(const CtlRun& r, const std::string& word, const std::string& state_before) {
    EXPECT_EQ(r.rc, 1) << r;
    EXPECT_NE(r.err.find(word), std::string::npos) << "wanted \"" << word << "\": " << r;
    EXPECT_EQ(ReadFile(State()), state_before) << "a failed audit must not move the trust";
  }

  TempDir dir_;
  Okrd okrd_;
  std::string vkey_;
};

// --- The honest runs ---

TEST_F(AuditTest, TrustsOnFirstUseThenFollowsTheLog) {
  CtlRun first = Audit();
  ASSERT_EQ(first.rc, 0) << first;
  const uint64_t size = okrd_.HeadSeq();
  EXPECT_NE(first.out.find("trusted on first use"), std::string::npos) << first;
  EXPECT_NE(first.out.find("size " + std::to_string(size)), std::string::npos) << first;
  EXPECT_NE(first.out.find(vkey_), std::string::npos) << first;
  json state = json::parse(ReadFile(State()));
  EXPECT_EQ(state["size"], size);
  EXPECT_EQ(state["vkey"], vkey_);
  EXPECT_EQ(state["note"], okrd_.Get("/v1/log/checkpoint").body);

  AddUnits("more", 3);
  CtlRun second = Audit();
  ASSERT_EQ(second.rc, 0) << second;
  EXPECT_NE(second.out.find("3 new events"), std::string::npos) << second;
  EXPECT_EQ(TrustedSize(), size + 3);

  const std::string state_before = ReadFile(State());
  CtlRun idle = Audit();
  ASSERT_EQ(idle.rc, 0) << idle;
  EXPECT_NE(idle.out.find("no new events"), std::string::npos) << idle;
  EXPECT_EQ(ReadFile(State()), state_before);
}

TEST_F(AuditTest, TakesTheKeyFromAFile) {
  const std::string key_file = dir_.Sub("log.vkey");
  std::ofstream(key_file) << vkey_ << "\n";
  CtlRun r = Audit(Url(), "@" + key_file);
  ASSERT_EQ(r.rc, 0) << r;
  EXPECT_EQ(TrustedSize(), okrd_.HeadSeq());
}

// --- The attacks ---

TEST_F(AuditTest, CatchesAnEventChangedInPlace) {
  TrustNow();
  const uint64_t trusted = TrustedSize();
  // Far enough from the trusted size, and with enough events after it,
  // that a stored tree node (16 events) covers it and none of the trusted
  // ones: the signed root then vouches for its original bytes.
  AddUnits("later", 40);
  const uint64_t changed = trusted + 20;  // "later-20"
  const std::string state_before = ReadFile(State());
  ASSERT_TRUE(okrd_.Stop());
  // ldb, as anyone with the files could: one letter of the unit's name.
  std::string key_hex, value_hex;
  for (int i = 7; i >= 0; --i) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    key_hex += kDigits[(changed >> (i * 8 + 4)) & 0xf];
    key_hex += kDigits[(changed >> (i * 8)) & 0xf];
  }
  const std::string ldb = "ldb --db=" + okrd_.data_dir() + " --column_family=" + format::kEventsCf;
  ASSERT_EQ(testing::RunCommand(ldb + " get --hex 0x" + key_hex, &value_hex), 0);
  while (!value_hex.empty() && (value_hex.back() == '\n' || value_hex.back() == ' ')) {
    value_hex.pop_back();
  }
  ASSERT_EQ(value_hex.substr(0, 2), "0x") << value_hex;
  for (size_t i = 2; i < value_hex.size(); ++i) value_hex[i] = std::toupper(value_hex[i]);
  const std::string name_hex = "5465616D206C617465722D3230";  // "Team later-20"
  const size_t at = value_hex.find(name_hex);
  ASSERT_NE(at, std::string::npos) << value_hex;
  value_hex.replace(at, 2, "74");  // "team later-20": the value still decodes
  std::string ignored;
  ASSERT_EQ(testing::RunCommand(ldb + " put --hex 0x" + key_hex + " " + value_hex, &ignored), 0);

  // Whether okrd finds it at start-up or in its background check, the
  // audit names the changed event's stored tree node, by the 16th event it
  // covers: okrd signs the roots of smaller sizes from the events
  // themselves (docs/DECISIONS.md, "Tree nodes from level 4 up"). okrd's
  // reads still answer, and when it refuses to serve the log, it serves
  // it read-only for forensics.
  const uint64_t named = (changed + 15) / 16 * 16;
  if (okrd_.Start()) {
    ExpectRefused(Audit(), "event " + std::to_string(named) + " changed", state_before);
    return;
  }
  Okrd forensics(
      WithTokens({"--read-only-forensics", "--signing-key", okrd_.data_dir() + ".signing.key"}));
  fs::copy(okrd_.data_dir(), forensics.data_dir(), fs::copy_options::recursive);
  ASSERT_TRUE(forensics.Start()) << forensics.LogTail();
  ExpectRefused(Audit("http://127.0.0.1:" + std::to_string(forensics.port())),
                "event " + std::to_string(named) + " changed", state_before);
}

TEST_F(AuditTest, CatchesALogTruncatedAndRegrownDifferently) {
  const uint64_t k = okrd_.HeadSeq();
  const std::string copy = CopyData("at-k");
  AddUnits("honest", 4);
  TrustNow();
  const uint64_t m = TrustedSize();
  ASSERT_GT(m, k);
  const std::string state_before = ReadFile(State());
  const std::string trusted_note = json::parse(state_before)["note"];

  RestoreData(copy);
  AddUnits("rewritten", 6);  // past m again, with other events
  ASSERT_GT(okrd_.HeadSeq(), m);
  ExpectRefused(Audit(), "fork: two signed checkpoints for size " + std::to_string(m),
                state_before);

  json evidence = json::parse(ReadFile(State() + ".fork-evidence"), nullptr, false);
  ASSERT_TRUE(evidence.is_object()) << ReadFile(State() + ".fork-evidence");
  EXPECT_EQ(evidence["size"], m);
  EXPECT_EQ(evidence["trusted_note"], trusted_note);
  EXPECT_EQ(evidence["served_note"],
            okrd_.Get("/v1/log/checkpoint?size=" + std::to_string(m)).body);
  const NoteVerifier key = ParseVkey(vkey_).value();
  auto trusted = VerifyCheckpoint(evidence["trusted_note"].get<std::string>(), key);
  auto served = VerifyCheckpoint(evidence["served_note"].get<std::string>(), key);
  ASSERT_TRUE(trusted.ok() && served.ok()) << "both notes are signed by the log's key";
  EXPECT_EQ(trusted->size, served->size);
  EXPECT_NE(trusted->root, served->root);
}

TEST_F(AuditTest, CatchesARollback) {
  const uint64_t k = okrd_.HeadSeq();
  const std::string copy = CopyData("at-k");
  AddUnits("honest", 4);
  TrustNow();
  const std::string state_before = ReadFile(State());
  RestoreData(copy);
  ExpectRefused(Audit(),
                "rollback: the server's checkpoint is at size " + std::to_string(k) +
                    ", below the trusted " + std::to_string(TrustedSize()),
                state_before);
}

// Flips one bit of the first hash of every answer of `route` that passes
// through the proxy, counting them in `flipped`.
Proxy::Rewrite FlipFirstHash(const std::string& route, std::atomic<int>* flipped) {
  return [route, flipped](const std::string& path, std::string* body) {
    if (path != route) return;
    json proof = json::parse(*body);
    ASSERT_FALSE(proof["hashes"].empty()) << *body;
    std::string hash = Base64Decode(proof["hashes"][0].get<std::string>()).value();
    hash[7] ^= 0x01;
    proof["hashes"][0] = Base64Encode(hash);
    *body = proof.dump();
    ++*flipped;
  };
}

TEST_F(AuditTest, CatchesAConsistencyProofWithOneHashFlipped) {
  TrustNow();
  AddUnits("later", 5);
  const std::string state_before = ReadFile(State());
  std::atomic<int> flipped{0};
  Proxy proxy(okrd_.port(), FlipFirstHash("/v1/log/proof/consistency", &flipped));
  ExpectRefused(Audit(proxy.Url()), "bad consistency proof", state_before);
  EXPECT_EQ(flipped, 1);
  EXPECT_FALSE(fs::exists(State() + ".fork-evidence")) << "a bad proof is not a fork";
  // The same log without the man in the middle passes.
  CtlRun honest = Audit();
  EXPECT_EQ(honest.rc, 0) << honest;
}

TEST_F(AuditTest, CatchesAnInclusionProofWithOneHashFlipped) {
  TrustNow();
  AddUnits("later", 3);
  const std::string state_before = ReadFile(State());
  std::atomic<int> flipped{0};
  Proxy proxy(okrd_.port(), FlipFirstHash("/v1/log/proof/inclusion", &flipped));
  ExpectRefused(Audit(proxy.Url()), "bad inclusion proof: seq " + std::to_string(okrd_.HeadSeq()),
                state_before);
  EXPECT_EQ(flipped, 1);
}

TEST_F(AuditTest, CatchesACheckpointSignedByAnotherKey) {
  TrustNow();
  AddUnits("later", 2);
  const std::string state_before = ReadFile(State());
  auto other = SigningKey::Create(dir_.Sub("other.key"));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const NoteVerifier key = ParseVkey(vkey_).value();
  // The same checkpoint, signed by a key the attacker holds, under the
  // log's name.
  Proxy proxy(okrd_.port(), [&](const std::string& path, std::string* body) {
    if (path != "/v1/log/checkpoint") return;
    auto checkpoint = VerifyCheckpoint(*body, key);
    ASSERT_TRUE(checkpoint.ok()) << *body;
    *body = (*other)->Sign(*checkpoint);
  });
  ExpectRefused(Audit(proxy.Url()), "bad signature", state_before);
  // A first audit with the other key's vkey against the real okrd is
  // refused the same way.
  fs::remove(State());
  CtlRun wrong = Audit(Url(), (*other)->Verifier(key.name).vkey());
  EXPECT_EQ(wrong.rc, 1) << wrong;
  EXPECT_NE(wrong.err.find("bad signature"), std::string::npos) << wrong;
  EXPECT_FALSE(fs::exists(State()));
}

// A man in the middle of the first audit who hands out his own key and
// signs okrd's true checkpoints with it: every note verifies with the key
// the auditor was given, but the log itself records another.
TEST_F(AuditTest, CatchesAKeyTheLogDoesNotRecord) {
  auto other = SigningKey::Create(dir_.Sub("other.key"));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const NoteVerifier real = ParseVkey(vkey_).value();
  Proxy proxy(okrd_.port(), [&](const std::string& path, std::string* body) {
    if (path != "/v1/log/checkpoint") return;
    auto checkpoint = VerifyCheckpoint(*body, real);
    ASSERT_TRUE(checkpoint.ok()) << *body;
    *body = (*other)->Sign(*checkpoint);
  });
  CtlRun r = Audit(proxy.Url(), (*other)->Verifier(real.name).vkey());
  EXPECT_EQ(r.rc, 1) << r;
  EXPECT_NE(r.err.find("bad key: event 1 (log.signing_key) records another key"), std::string::npos)
      << r;
  EXPECT_FALSE(fs::exists(State()));
}

}  // namespace
}  // namespace okr
