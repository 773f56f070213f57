// The log read without okrd: RocksDB's `ldb`, `capnp decode`/`capnp convert`
// and `sha256sum` must see exactly what docs/FORMAT.md describes, and okrctl
// must verify, dump and report the head of the same directory.
//
// Tool paths come from CMake (tests/CMakeLists.txt): OKR_LDB_PATH,
// OKR_CAPNP_PATH, OKR_SHA256SUM_PATH, OKR_PERL_PATH, OKRCTL_PATH, and the
// schema directory OKR_SCHEMA_DIR.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "tests/test_support.h"

#ifndef OKR_SCHEMA_DIR
#error "OKR_SCHEMA_DIR must be defined by the build"
#endif

namespace okr {
namespace {

using testing::CheckInDraft;
using testing::OneEvent;
using testing::RunCommand;
using testing::TempDir;
using testing::UnitCreatedDraft;

constexpr char kLdb[] = OKR_LDB_PATH;
constexpr char kCapnp[] = OKR_CAPNP_PATH;
constexpr char kSha256sum[] = OKR_SHA256SUM_PATH;
constexpr char kPerl[] = OKR_PERL_PATH;
const std::string kSchema = std::string(OKR_SCHEMA_DIR) + "/okr.capnp";

constexpr uint64_t kEvents = 4;
constexpr int64_t kClockStartUs = 1782900000000000;  // 2026-07-01T10:00:00Z

// Single-quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// Parses ldb's "0x0123ABCD" (trailing whitespace allowed) into bytes.
bool ParseLdbHex(std::string_view text, std::string* bytes) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.size() < 2 || text.substr(0, 2) != "0x" || text.size() % 2 != 0) return false;
  text.remove_prefix(2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bytes->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

std::string SeqKeyHex(uint64_t seq) { return "0x" + HexOf(format::SeqKey(seq)); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Steps 3, 6 and 7 of "Reading the log with standard tools only" in
// docs/FORMAT.md, verbatim: keep the two in step.
constexpr char kChainScript[] = R"sh(
unhex() { perl -ne 'chomp; s/^0x//; print pack "H*", $_'; }
prevhash() {
  capnp convert --short binary:json schemas/okr.capnp Event |
    grep -o '"prevHash":\[[0-9,]*\]' | tr -dc '0-9,' | tr ',' ' ' | xargs printf '%02x'
}
ldb --db=data --column_family=events --hex scan | {
  prev=0000000000000000000000000000000000000000000000000000000000000000
  while read -r key sep value; do
    field=$(echo "$value" | unhex | prevhash)
    if [ "$field" = "$prev" ]; then echo "$key ok"; else echo "$key BROKEN: prevHash $field, expected $prev"; fi
    prev=$(echo "$value" | unhex | sha256sum | cut -c1-64)
  done
  echo "last hash: $prev"
}
ldb --db=data --column_family=meta --hex get 0x68656164 | cut -c19-82 | tr A-F a-f
)sh";

// The worked example of docs/FORMAT.md: seq 1 of the log the fixture writes.
constexpr char kWorkedExampleHex[] =
    "00000000180000000000000004000700010000000000000000882bc189550600010000"
    "000000000000000000000000001900000032000000190000002a00000000000000000000"
    "00000000000000000011000000020100001c00000001000300000000000000000061646d"
    "696e00000061636d65000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000090000002a000000090000000a000000000000"
    "000000000041636d65000000000000000000000000";
constexpr char kWorkedExampleSha256[] =
    "2ab18ec515ee234efb815aeec949a802a234746870ac15ea2167d9b64cf11904";

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenOptions options;
    int64_t now = kClockStartUs;
    options.clock_us = [&now] { return now++; };
    auto opened = EventStore::Open(data(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    auto& store = *opened;
    // seq 1: the company; 2, 3: two check-ins on one key result; 4: a team.
    ASSERT_TRUE(store->Append(OneEvent(UnitCreatedDraft("admin", "acme", "Acme"))).ok());
    ASSERT_TRUE(store->Append(OneEvent(CheckInDraft("alice", "kr-1", "ci-1", 42.5))).ok());
    ASSERT_TRUE(store->Append(OneEvent(CheckInDraft("alice", "kr-1", "ci-2", 57.25))).ok());
    ASSERT_TRUE(store->Append(OneEvent(UnitCreatedDraft("admin", "sales", "Sales", "acme"))).ok());
    auto read = store->Read(0, 100);
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read->size(), kEvents);
    for (auto& e : *read) stored_.push_back(e.bytes);
    head_ = store->head();
    ASSERT_EQ(head_.seq, kEvents);
    // The store closes here: everything below reads the files from outside.
  }

  std::string data() const { return dir_.Sub("data"); }

  // `ldb --db=DATA --column_family=CF --hex get KEY`, as bytes.
  std::string LdbGet(const std::string& cf, const std::string& key_hex) {
    std::string out;
    int rc = RunCommand(std::string(kLdb) + " --db=" + Quote(data()) + " --column_family=" + cf +
                            " --hex get " + key_hex + " 2>&1",
                        &out);
    EXPECT_EQ(rc, 0) << out;
    std::string bytes;
    EXPECT_TRUE(ParseLdbHex(out, &bytes)) << "unexpected ldb output: " << out;
    return bytes;
  }

  // Writes `bytes` to a file in the temp dir and returns its path.
  std::string WriteFile(const std::string& name, const std::string& bytes) {
    std::string path = dir_.Sub(name);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(f.good());
    return path;
  }

  // Stored value of `seq` as ldb prints it, written to a file.
  std::string ValueFile(uint64_t seq) {
    return WriteFile("seq" + std::to_string(seq) + ".bin", LdbGet("events", SeqKeyHex(seq)));
  }

  std::string Run(const std::string& command, int* rc) {
    std::string out;
    *rc = RunCommand(command, &out);
    return out;
  }

  std::string Sha256sum(const std::string& path) {
    int rc = 0;
    std::string out = Run(std::string(kSha256sum) + " < " + Quote(path), &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_GE(out.size(), 64u) << out;
    return out.substr(0, 64);
  }

  std::string Okrctl(const std::string& args, int* rc) {
    return Run(testing::BuildFile(OKRCTL_PATH) + " " + args + " 2>&1", rc);
  }

  // Runs kChainScript with /bin/sh in the temp dir, where data/ is the log
  // and schemas/ links to the source schemas, with the configured tools
  // first on PATH under their plain names.
  std::string RunChainScript() {
    std::string bin = dir_.Sub("bin");
    std::string setup = "mkdir -p " + Quote(bin) + " && ln -sfn " + Quote(OKR_SCHEMA_DIR) + " " +
                        Quote(dir_.Sub("schemas"));
    for (const auto& [name, path] : std::vector<std::pair<std::string, std::string>>{
             {"ldb", kLdb}, {"capnp", kCapnp}, {"sha256sum", kSha256sum}, {"perl", kPerl}}) {
      setup += " && ln -sf " + Quote(path) + " " + Quote(bin + "/" + name);
    }
    int rc = 0;
    std::string out = Run(setup + " 2>&1", &rc);
    EXPECT_EQ(rc, 0) << out;
    std::string script = WriteFile("check-chain.sh", kChainScript);
    out = Run("cd " + Quote(dir_.path()) + " && PATH=" + Quote(bin) + ":\"$PATH\" sh " +
                  Quote(script) + " 2>&1",
              &rc);
    EXPECT_EQ(rc, 0) << out;
    return out;
  }

  // Flips one byte inside seq `seq`'s check-in note with the raw RocksDB API,
  // bypassing the store, as a tamperer would. The value still decodes.
  void TamperNote(uint64_t seq) {
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, data(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, data(), cfs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* events = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == format::kEventsCf) events = handles[i];
    }
    ASSERT_NE(events, nullptr);
    std::string value;
    ASSERT_TRUE(db->Get({}, events, format::SeqKey(seq), &value).ok());
    size_t note = value.find("weekly check-in");
    ASSERT_NE(note, std::string::npos);
    value[note + 2] ^= 0x01;  // "weekly" becomes "wedkly"
    ASSERT_TRUE(db->Put({}, events, format::SeqKey(seq), value).ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    ASSERT_TRUE(db->Close().ok());
  }

  TempDir dir_;
  std::vector<std::string> stored_;  // value of seq i+1, as the store read it
  Head head_;
};

TEST_F(InteropTest, LdbListsTheColumnFamilies) {
  int rc = 0;
  std::string out =
      Run(std::string(kLdb) + " --db=" + Quote(data()) + " list_column_families 2>&1", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("{default, events, streams, idempotency, meta, snapshots, ids, tree}"),
            std::string::npos)
      << out;
}

TEST_F(InteropTest, LdbSeesTheExactStoredBytesUnderBigEndianSeqKeys) {
  int rc = 0;
  std::string out =
      Run(std::string(kLdb) + " --db=" + Quote(data()) + " --column_family=events --hex scan 2>&1",
          &rc);
  ASSERT_EQ(rc, 0) << out;
  std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), kEvents) << out;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    const std::string& line = lines[seq - 1];
    // "0x0000000000000001 : 0x0000000017000000..."
    size_t sep = line.find(" : ");
    ASSERT_NE(sep, std::string::npos) << line;
    std::string key, value;
    ASSERT_TRUE(ParseLdbHex(line.substr(0, sep), &key)) << line;
    ASSERT_TRUE(ParseLdbHex(line.substr(sep + 3), &value)) << line;
    EXPECT_EQ(key, format::SeqKey(seq));
    EXPECT_EQ(value, stored_[seq - 1]) << "seq " << seq;
    EXPECT_EQ(LdbGet("events", SeqKeyHex(seq)), stored_[seq - 1]) << "seq " << seq;
    // Flat-array framing: one segment, so the table is 8 bytes: 0 (count - 1)
    // and the segment's size in words, both 32-bit little-endian.
    ASSERT_GE(value.size(), 16u);
    EXPECT_EQ(HexOf(value.substr(0, 4)), "00000000");
    uint32_t words = static_cast<uint8_t>(value[4]) | static_cast<uint8_t>(value[5]) << 8 |
                     static_cast<uint8_t>(value[6]) << 16 |
                     static_cast<uint32_t>(static_cast<uint8_t>(value[7])) << 24;
    EXPECT_EQ(value.size(), 8u + 8u * words);
    // Root pointer: struct, offset 0, 4 data words, 7 pointers.
    EXPECT_EQ(HexOf(value.substr(8, 8)), "0000000004000700");
  }
}

TEST_F(InteropTest, CapnpDecodeShowsTheEventFields) {
  int rc = 0;
  std::string decode = std::string(kCapnp) + " decode " + Quote(kSchema) + " Event < ";

  std::string zeros;
  for (int i = 0; i < 32; ++i) zeros += "\\000";
  struct Decoded {
    uint64_t seq;
    std::vector<std::string> shows;  // parts of capnp's text form
  };
  const std::vector<Decoded> values = {
      {1,
       {"seq = 1,", "recordedAt = 1782900000000000,", "actor = \"admin\",", "entity = \"acme\",",
        "version = 1,", "prevHash = \"" + zeros + "\",",
        "unitCreated = (kind = company, name = \"Acme\", parent = \"\")"}},
      {2,
       {"seq = 2,", "recordedAt = 1782900000000001,", "actor = \"alice\",", "entity = \"kr-1\",",
        "version = 1,", "checkInRecorded = (", "checkIn = \"ci-1\"", "value = 42.5",
        "status = onTrack", "note = \"weekly check-in\""}},
      // kr-1's second event.
      {3, {"seq = 3,", "version = 2,", "value = 57.25"}},
  };
  for (const Decoded& value : values) {
    SCOPED_TRACE("seq " + std::to_string(value.seq));
    std::string text = Run(decode + Quote(ValueFile(value.seq)) + " 2>&1", &rc);
    ASSERT_EQ(rc, 0) << text;
    EXPECT_EQ(text.find("WARNING"), std::string::npos) << text;
    for (const std::string& part : value.shows) {
      EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
    }
  }

  // The stored values carry a segment table: `--flat` (no table) is the
  // wrong framing and must not read seq 2 correctly.
  std::string flat = Run(std::string(kCapnp) + " decode --flat " + Quote(kSchema) + " Event < " +
                             Quote(ValueFile(2)) + " 2>&1",
                         &rc);
  EXPECT_EQ(flat.find("seq = 2,"), std::string::npos) << flat;
}

TEST_F(InteropTest, Sha256sumOfEachValueIsTheNextPrevHash) {
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    std::string sum = Sha256sum(ValueFile(seq));
    EXPECT_EQ(sum, ToHex(Sha256(stored_[seq - 1]))) << "seq " << seq;
    if (seq < kEvents) {
      // prevHash of seq + 1, read through ldb and the store's own decoder.
      auto next = DecodedEvent::Decode(LdbGet("events", SeqKeyHex(seq + 1)));
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      auto prev = (*next)->event().getPrevHash();
      ASSERT_EQ(prev.size(), format::kHashSize);
      std::string prev_hex = HexOf({reinterpret_cast<const char*>(prev.begin()), prev.size()});
      EXPECT_EQ(sum, prev_hex) << "link " << seq << " -> " << seq + 1;
    } else {
      EXPECT_EQ(sum, ToHex(head_.hash)) << "the head hash is the hash of the last value";
    }
  }
}

// The recipe of docs/FORMAT.md, literally: standard tools only, no okrd code.
TEST_F(InteropTest, DocumentedShellRecipeChecksEveryLink) {
  const std::string db = std::string(kLdb) + " --db=" + Quote(data()) + " --column_family=events";
  const std::string unhex = std::string(kPerl) + " -ne 'chomp; s/^0x//; print pack \"H*\", $_'";
  const std::string prev_hash_of = std::string(kCapnp) + " convert --short binary:json " +
                                   Quote(kSchema) +
                                   " Event | grep -o '\"prevHash\":\\[[0-9,]*\\]'"
                                   " | tr -dc '0-9,' | tr ',' ' ' | xargs printf '%02x'";
  int rc = 0;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    std::string prev_hex =
        Run(db + " --hex get " + SeqKeyHex(seq) + " | " + unhex + " | " + prev_hash_of, &rc);
    ASSERT_EQ(rc, 0) << prev_hex;
    std::string expected = seq == 1 ? std::string(64, '0') : ToHex(Sha256(stored_[seq - 2]));
    EXPECT_EQ(prev_hex, expected) << "prevHash of seq " << seq;

    std::string sum = Run(
        db + " --hex get " + SeqKeyHex(seq) + " | " + unhex + " | " + kSha256sum + " | cut -c1-64",
        &rc);
    ASSERT_EQ(rc, 0) << sum;
    EXPECT_EQ(sum, ToHex(Sha256(stored_[seq - 1])) + "\n") << "sha256sum of seq " << seq;

    std::string text = Run(db + " --hex get " + SeqKeyHex(seq) + " | " + unhex + " | " + kCapnp +
                               " decode " + Quote(kSchema) + " Event",
                           &rc);
    ASSERT_EQ(rc, 0) << text;
    EXPECT_NE(text.find("seq = " + std::to_string(seq) + ","), std::string::npos) << text;
  }
}

TEST_F(InteropTest, WorkedExampleOfTheFormatDocIsWhatTheStoreWrites) {
  std::string value = LdbGet("events", SeqKeyHex(1));
  EXPECT_EQ(HexOf(value), kWorkedExampleHex);
  EXPECT_EQ(Sha256sum(ValueFile(1)), kWorkedExampleSha256);
}

TEST_F(InteropTest, DocumentedChainScriptPassesOnAGoodLog) {
  std::string out = RunChainScript();
  std::string head = ToHex(head_.hash);
  std::string expected;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) expected += SeqKeyHex(seq) + " ok\n";
  expected += "last hash: " + head + "\n" + head + "\n";
  EXPECT_EQ(out, expected);
}

TEST_F(InteropTest, LdbShowsMetaAndStreamsLayouts) {
  // meta/format: 8-byte big-endian 1.
  EXPECT_EQ(HexOf(LdbGet("meta", "0x" + HexOf("format"))), "0000000000000001");
  // meta/head: seq (8 BE) | SHA-256 of the last value (32) | recordedAt (8 BE).
  std::string head = LdbGet("meta", "0x" + HexOf("head"));
  ASSERT_EQ(head.size(), format::kHeadValueSize);
  EXPECT_EQ(format::GetBigEndian64(head.data()), kEvents);
  EXPECT_EQ(HexOf(head.substr(8, 32)), ToHex(head_.hash));
  EXPECT_EQ(static_cast<int64_t>(format::GetBigEndian64(head.data() + 40)),
            kClockStartUs + static_cast<int64_t>(kEvents) - 1);
  // streams: entity | 0x00 | version (8 BE) -> seq (8 BE).
  auto stream = [&](const std::string& entity, uint64_t version) {
    std::string key = entity;
    key.push_back('\0');
    format::PutBigEndian64(&key, version);
    return format::GetBigEndian64(LdbGet("streams", "0x" + HexOf(key)).data());
  };
  EXPECT_EQ(stream("acme", 1), 1u);
  EXPECT_EQ(stream("kr-1", 1), 2u);
  EXPECT_EQ(stream("kr-1", 2), 3u);
  EXPECT_EQ(stream("sales", 1), 4u);
}

TEST_F(InteropTest, OkrctlVerifiesDumpsAndShowsTheHead) {
  int rc = 0;
  std::string verify = Okrctl("verify --data " + Quote(data()), &rc);
  EXPECT_EQ(rc, 0) << verify;
  EXPECT_EQ(verify.rfind("ok: 4 events, head hash " + ToHex(head_.hash), 0), 0u) << verify;

  std::string dump = Okrctl("dump --data " + Quote(data()), &rc);
  EXPECT_EQ(rc, 0) << dump;
  std::vector<std::string> lines = Lines(dump);
  ASSERT_EQ(lines.size(), kEvents) << dump;
  const char* types[] = {"unit.created", "check_in.recorded", "check_in.recorded", "unit.created"};
  const char* entities[] = {"acme", "kr-1", "kr-1", "sales"};
  std::string prev(64, '0');
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    auto line = nlohmann::json::parse(lines[seq - 1], nullptr, false);
    ASSERT_FALSE(line.is_discarded()) << lines[seq - 1];
    EXPECT_EQ(line.value("seq", uint64_t{0}), seq);
    EXPECT_EQ(line.value("type", ""), types[seq - 1]);
    EXPECT_EQ(line.value("entity", ""), entities[seq - 1]);
    EXPECT_EQ(line.value("prev_hash", ""), prev);
    EXPECT_EQ(line.value("hash", ""), ToHex(Sha256(stored_[seq - 1])));
    prev = line.value("hash", "");
  }

  std::string head = Okrctl("head --data " + Quote(data()), &rc);
  EXPECT_EQ(rc, 0) << head;
  auto h = nlohmann::json::parse(head, nullptr, false);
  ASSERT_FALSE(h.is_discarded()) << head;
  EXPECT_EQ(h.value("seq", uint64_t{0}), kEvents);
  EXPECT_EQ(h.value("head_hash", ""), ToHex(head_.hash));
  EXPECT_EQ(h.value("recorded_at", ""), "2026-07-01T10:00:00.000003Z");
}

TEST_F(InteropTest, OkrctlWithoutArgumentsIsAUsageError) {
  int rc = 0;
  std::string out = Okrctl("", &rc);
  EXPECT_EQ(rc, 2) << out;
}

TEST_F(InteropTest, TamperedValueBreaksTheChainForOkrctlAndSha256sum) {
  TamperNote(2);
  int rc = 0;
  std::string verify = Okrctl("verify --data " + Quote(data()), &rc);
  EXPECT_EQ(rc, 1) << verify;
  // The chain names seq 3: its prevHash no longer matches seq 2's value.
  EXPECT_NE(verify.find("BROKEN at seq 3: prevHash does not match the previous event (2 events "
                        "before it verify)"),
            std::string::npos)
      << verify;

  std::string json = Okrctl("verify --json --data " + Quote(data()), &rc);
  EXPECT_EQ(rc, 1) << json;
  auto report = nlohmann::json::parse(json, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << json;
  EXPECT_EQ(report.value("ok", true), false);
  EXPECT_EQ(report.value("first_bad_seq", uint64_t{0}), 3u);

  std::string script = RunChainScript();
  EXPECT_NE(script.find("0x0000000000000002 ok\n"), std::string::npos) << script;
  EXPECT_NE(script.find("0x0000000000000003 BROKEN: prevHash " + ToHex(Sha256(stored_[1])) +
                        ", expected "),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("0x0000000000000004 ok\n"), std::string::npos) << script;

  // Standard tools see it too: seq 2 still decodes, but its hash no longer
  // matches seq 3's prevHash, while link 1 -> 2 still holds.
  std::string decoded;
  rc = RunCommand(std::string(kCapnp) + " decode " + Quote(kSchema) + " Event < " +
                      Quote(ValueFile(2)) + " 2>&1",
                  &decoded);
  EXPECT_EQ(rc, 0) << decoded;
  EXPECT_NE(decoded.find("note = \"wedkly check-in\""), std::string::npos) << decoded;
  EXPECT_NE(Sha256sum(ValueFile(2)), ToHex(Sha256(stored_[1])));
  EXPECT_EQ(Sha256sum(ValueFile(1)), ToHex(Sha256(stored_[0])));
}

}  // namespace
}  // namespace okr
