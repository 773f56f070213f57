// okrctl end to end: the binary run as users run it, on data directories
// and against the real okrd (tests/okrd_harness.h). Import of the samples,
// refused spreadsheets (file, line, column, reason; nothing written),
// export → import → export byte for byte, backup while writes go on →
// restore → verify → the same answers, a tampered log caught from the
// stored bytes okrd serves, snapshots checked against the log (verify
// --deep), formula cells neutralised and restored, the client commands
// and the help.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "schemas/snapshot.capnp.h"
#include "tests/okrd_harness.h"
#include "tests/test_support.h"
#include "tools/ctl/csv.h"

#ifndef OKRCTL_PATH
#error "OKRCTL_PATH (the okrctl binary under test) must be defined"
#endif
#ifndef OKR_SAMPLES_DIR
#error "OKR_SAMPLES_DIR (tools/samples) must be defined"
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

const Token kAdmin{"admin-token-okrctl", "hr.admin", "admin", {}};
const Token kEditor{"editor-token-okrctl", "editor-6158", "editor", {"people-operations"}};
const Token kAuditor{"auditor-token-okrctl", "auditor", "auditor", {}};

// The header of every hand-written CSV below (the columns export writes
// first; the optional ones are left out).
constexpr char kHeader[] =
    "cycle,owner,objective_id,objective_title,parents,kr_id,kr_title,metric,start,target,unit,"
    "current,checkin_date\n";

// A data row under kHeader: objective o-x of people in 2026-q4 with a key
// result k-x from 0 to 1, but for `changes` (a column and its text as it
// stands in the file).
std::string Row(const std::vector<std::pair<std::string, std::string>>& changes) {
  std::vector<std::pair<std::string, std::string>> row = {
      {"cycle", "2026-q4"},     {"owner", "people"},  {"objective_id", "o-x"},
      {"objective_title", "X"}, {"parents", ""},      {"kr_id", "k-x"},
      {"kr_title", "KR"},       {"metric", "number"}, {"start", "0"},
      {"target", "1"},          {"unit", ""},         {"current", ""},
      {"checkin_date", ""}};
  for (const auto& [column, text] : changes) {
    auto it =
        std::find_if(row.begin(), row.end(), [&](const auto& c) { return c.first == column; });
    EXPECT_NE(it, row.end()) << "no column " << column;
    if (it != row.end()) it->second = text;
  }
  std::string line;
  for (const auto& [column, text] : row) line += (line.empty() ? "" : ",") + text;
  return line + "\n";
}

OkrdOptions WithTokens(std::vector<Token> tokens, std::vector<std::string> extra_args = {}) {
  OkrdOptions options;
  options.tokens = std::move(tokens);
  options.extra_args = std::move(extra_args);
  return options;
}

std::string Sample(const std::string& name) { return std::string(OKR_SAMPLES_DIR) + "/" + name; }

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

struct CtlRun {
  int rc = -1;
  std::string out, err;
  json Json() const {
    json j = json::parse(out, nullptr, false);
    return j.is_discarded() ? json(nullptr) : j;
  }
};

std::ostream& operator<<(std::ostream& os, const CtlRun& r) {
  return os << "[rc " << r.rc << "] stdout: " << r.out.substr(0, 2000)
            << "\nstderr: " << r.err.substr(0, 2000);
}

class OkrctlTest : public ::testing::Test {
 protected:
  // Runs okrctl with `args` (a shell fragment) and `env` assignments.
  CtlRun Ctl(const std::string& args, const std::string& env = "") {
    std::string err_path = dir_.Sub("stderr.txt");
    CtlRun r;
    r.rc = testing::RunCommand(env + (env.empty() ? "" : " ") + testing::BuildFile(OKRCTL_PATH) +
                                   " " + args + " 2>" + err_path,
                               &r.out);
    r.err = ReadFile(err_path);
    return r;
  }

  std::string Data(const std::string& name = "data") { return dir_.Sub(name); }

  // Imports `text`, written to the file `name`, into `data`: okrctl must
  // refuse it with a JSON error naming `line`, `field` and `reason` (a part
  // of it). Answers the run.
  CtlRun ImportRefused(const std::string& name, const std::string& text, const std::string& data,
                       int line, const std::string& field, const std::string& reason) {
    WriteFile(dir_.Sub(name), text);
    CtlRun r = Ctl("import " + dir_.Sub(name) + " --data " + data + " --json");
    EXPECT_EQ(r.rc, 1) << r;
    json e = r.Json()["error"];
    EXPECT_TRUE(e.is_object()) << r;
    EXPECT_EQ(e["line"], line) << r;
    EXPECT_EQ(e["field"], field) << r;
    EXPECT_NE(e.value("reason", std::string()).find(reason), std::string::npos) << r;
    return r;
  }

  // The hr-org.json frame (units, cycles) imported into `data`.
  void Frame(const std::string& data) {
    CtlRun r = Ctl("import " + Sample("hr-org.json") + " --data " + data);
    ASSERT_EQ(r.rc, 0) << r;
  }
  // The frame plus the sample's objectives and its week-48 check-ins.
  void SampleStore(const std::string& data) {
    Frame(data);
    CtlRun r = Ctl("import " + Sample("hr-okrs-2026-q4.csv") + " --data " + data);
    ASSERT_EQ(r.rc, 0) << r;
    r = Ctl("import " + Sample("hr-checkins-week-48.json") + " --data " + data);
    ASSERT_EQ(r.rc, 0) << r;
  }

  Head HeadOf(const std::string& data) {
    OpenOptions options;
    options.read_only = true;
    options.create_if_missing = false;
    auto store = EventStore::Open(data, options);
    if (!store.ok()) return Head{};
    return (*store)->head();
  }

  TempDir dir_;
};

// --- Import ---

TEST_F(OkrctlTest, SampleImportsIntoAnEmptyStore) {
  std::string data = Data();
  CtlRun org = Ctl("import " + Sample("hr-org.json") + " --data " + data + " --json");
  ASSERT_EQ(org.rc, 0) << org;
  EXPECT_EQ(org.Json()["written"], 13);  // 11 units, 2 cycles
  CtlRun okrs = Ctl("import " + Sample("hr-okrs-2026-q4.csv") + " --data " + data + " --json");
  ASSERT_EQ(okrs.rc, 0) << okrs;
  EXPECT_EQ(okrs.Json()["records"], 12);
  EXPECT_EQ(okrs.Json()["written"], 28);  // 7 objectives, 11 key results, 10 check-ins
  EXPECT_EQ(okrs.Json()["actor"], "import:hr-okrs-2026-q4");
  CtlRun week =
      Ctl("import " + Sample("hr-checkins-week-48.json") + " --data " + data + " --as weekly");
  ASSERT_EQ(week.rc, 0) << week;
  EXPECT_EQ(HeadOf(data).seq, 44u);
  EXPECT_EQ(Ctl("verify --data " + data).rc, 0);

  // Who and why are on every event.
  CtlRun dump = Ctl("dump --data " + data);
  EXPECT_NE(dump.out.find("\"actor\":\"import:hr-okrs-2026-q4\""), std::string::npos);
  EXPECT_NE(dump.out.find("\"reason\":\"imported from hr-okrs-2026-q4.csv line 3\""),
            std::string::npos);
  EXPECT_NE(dump.out.find("\"actor\":\"import:weekly\""), std::string::npos);
  // A person's name is sealed in the log (SPEC §10) and shown by the dump,
  // which reads the key store beside the data directory.
  EXPECT_NE(dump.out.find("\"name\":\"Amara Okoye\""), std::string::npos);
  {
    auto store = EventStore::Open(data, OpenOptions{.create_if_missing = false, .read_only = true});
    ASSERT_TRUE(store.ok());
    std::string all;
    ASSERT_TRUE(
        (*store)
            ->Scan(1, UINT64_MAX, [&](uint64_t, std::string_view b) { return all.append(b), true; })
            .ok());
    EXPECT_EQ(all.find("Amara Okoye"), std::string::npos);
    EXPECT_NE(all.find("Talent Acquisition"), std::string::npos);  // a team's name is not sealed
  }

  CtlRun csv = Ctl("export --cycle 2026-q4 --data " + data);
  ASSERT_EQ(csv.rc, 0) << csv;
  // The latest check-in (week 48) is the current value, with its date.
  EXPECT_NE(
      csv.out.find(",kr-time-to-hire,Median days from opening to signed offer,number,45,30,days,36,"
                   "2026-11-23,talent-acquisition,1,\r\n"),
      std::string::npos)
      << csv.out;
  // Quotes, commas and line breaks survive.
  EXPECT_NE(csv.out.find("\"Survey question \"\"I would recommend Fjord\"\" (eNPS)\""),
            std::string::npos);
  EXPECT_NE(csv.out.find("\"Every people manager finishes the coaching programme.\nPilot with"),
            std::string::npos);
  CtlRun json_export = Ctl("export --cycle 2026-q4 --format json --data " + data);
  ASSERT_EQ(json_export.rc, 0) << json_export;
  json doc = json_export.Json();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["units"].size(), 11u);
  EXPECT_EQ(doc["cycles"].size(), 2u);
  EXPECT_EQ(doc["objectives"].size(), 7u);
}

TEST_F(OkrctlTest, CsvQuirksOfSpreadsheetsAreRead) {
  std::string data = Data();
  Frame(data);
  // Byte order mark, CRLF, a blank line, a row of empty cells, spaces
  // around cells, a quoted line break, commas and doubled quotes.
  std::string csv =
      "\xEF\xBB\xBF"
      "Cycle,Owner,Objective ID,Objective Title,Parents,KR ID,KR Title,Metric,Start,Target,"
      "Unit,Current,Checkin Date\r\n"
      "2026-q4,people, o-a ,\"Hire well, fast\",,k-a,\"Say \"\"yes\"\" in a "
      "week\",percent,10,20,%,15,"
      "2026-11-02\r\n"
      "\r\n"
      ",,,,,,,,,,,,\r\n"
      "2026-q4,people,o-b,\"Two\nlines are no title\",o-a,,,,,,,,\r\n";
  WriteFile(dir_.Sub("quirks.csv"), csv);
  CtlRun r = Ctl("import " + dir_.Sub("quirks.csv") + " --data " + data + " --json");
  // A line break is not allowed in a title: refused, on the row's line.
  ASSERT_EQ(r.rc, 1) << r;
  EXPECT_EQ(r.Json()["error"]["line"], 5);
  EXPECT_EQ(r.Json()["error"]["field"], "objective_title");
  EXPECT_NE(r.Json()["error"]["reason"].get<std::string>().find("control character"),
            std::string::npos);

  csv.replace(csv.find("Two\nlines"), 9, "Two lines");
  WriteFile(dir_.Sub("quirks.csv"), csv);
  r = Ctl("import " + dir_.Sub("quirks.csv") + " --data " + data + " --json");
  ASSERT_EQ(r.rc, 0) << r;
  json doc = Ctl("export --cycle 2026-q4 --format json --data " + data).Json();
  ASSERT_EQ(doc["objectives"].size(), 2u);
  EXPECT_EQ(doc["objectives"][0]["title"], "Hire well, fast");
  EXPECT_EQ(doc["objectives"][0]["key_results"][0]["title"], "Say \"yes\" in a week");
  EXPECT_EQ(doc["objectives"][0]["key_results"][0]["check_ins"][0]["measured_at"],
            "2026-11-02T00:00:00.000000Z");
  EXPECT_EQ(doc["objectives"][1]["parents"], json::array({"o-a"}));
}

struct BadCsv {
  const char* name;
  std::string text;
  int line;
  const char* field;   // the column named, "" when none
  const char* reason;  // a part of the reason
};

TEST_F(OkrctlTest, BadCsvIsRefusedWithLineColumnAndReasonAndNothingIsWritten) {
  std::string data = Data();
  SampleStore(data);
  const std::string h = kHeader;
  const std::string ok = "2026-q4,people,o-new,New objective,,k-new,New KR,number,0,10,,,\n";
  const std::vector<BadCsv> cases = {
      {"missing column",
       "cycle,owner,objective_id,objective_title,parents,kr_id,kr_title,metric,start,unit\n" + ok,
       1, "target", "missing column target"},
      {"unknown column", "cycle,owner,objective_id,objective_title,kr_id,kr_title,start,tagret\n",
       1, "", "unknown column \"tagret\""},
      {"duplicate column", h.substr(0, h.size() - 1) + ",start\n" + ok, 1, "start",
       "appears twice"},
      {"empty file", "", 1, "", "the file is empty"},
      {"header only", h, 1, "", "no data rows"},
      {"unknown owner", h + ok + Row({{"owner", "nobody"}}), 3, "owner", "no unit nobody"},
      {"unknown cycle", h + Row({{"cycle", "2025-q4"}}), 2, "cycle", "no cycle 2025-q4"},
      {"target equal to start", h + ok + ok.substr(0, 18) + "2,N2,,k-2,KR,number,5,5,,,\n", 3,
       "target", "target must differ from start"},
      {"non-numeric start", h + Row({{"start", "abc"}}), 2, "start",
       "start must be a number, not \"abc\""},
      {"decimal comma", h + Row({{"current", "\"12,5\""}}), 2, "current",
       "current must be a number, not \"12,5\""},
      {"bad date", h + Row({{"current", "1"}, {"checkin_date", "31/10/2026"}}), 2, "checkin_date",
       "checkin_date must be a date"},
      {"impossible date", h + Row({{"current", "1"}, {"checkin_date", "2026-02-30"}}), 2,
       "checkin_date", "checkin_date must be a date"},
      {"date in the future", h + Row({{"current", "1"}, {"checkin_date", "2999-01-01"}}), 2,
       "checkin_date", "measured_at is in the future"},
      {"date without value", h + Row({{"checkin_date", "2026-11-01"}}), 2, "checkin_date",
       "current is empty"},
      {"duplicate id in the file",
       h + ok +
           Row({{"objective_id", "o-new"},
                {"objective_title", "New objective"},
                {"kr_id", "k-new"},
                {"kr_title", "Again"}}),
       3, "kr_id", "duplicate key result id k-new (first on line 2)"},
      {"id already in the store", h + Row({{"kr_id", "kr-enps"}}), 2, "kr_id",
       "id kr-enps is already taken"},
      {"malformed id", h + Row({{"kr_id", "KR 1"}}), 2, "kr_id", "id must be 1-64 characters"},
      {"unbalanced quotes", h + ok + Row({{"objective_title", "\"X"}}) + ok, 3, "",
       "unbalanced quotes"},
      {"quote inside a field", h + Row({{"objective_title", "Say \"hi\""}}), 2, "",
       "a quote inside an unquoted field"},
      {"text after a closing quote", h + Row({{"objective_title", "\"X\"Y"}}), 2, "",
       "text after a closing quote"},
      {"row too short", h + "2026-q4,people,o-x,X,,k-x,KR,number,0\n", 2, "target",
       "the row has 9 fields"},
      {"objective disagrees with itself",
       h + ok + Row({{"objective_id", "o-new"}, {"objective_title", "Renamed"}, {"kr_id", "k-2"}}),
       3, "objective_title", "objective o-new has another objective_title on line 2"},
      {"missing title", h + Row({{"objective_title", ""}}), 2, "objective_title",
       "objective_title is required"},
      {"unknown parent", h + Row({{"parents", "o-nowhere"}}), 2, "parents",
       "no objective o-nowhere"},
      // Reported on the row whose parents close the loop.
      {"alignment cycle",
       h + "2026-q4,people,o-a,A,o-b,,,,,,,,\n2026-q4,people,o-b,B,o-a,,,,,,,,\n", 3, "parents",
       "alignment would form a cycle through o-a"},
      {"boolean target", h + Row({{"metric", "boolean"}, {"target", "2"}}), 2, "target",
       "a boolean targets 0 or 1"},
      {"unknown metric", h + Row({{"metric", "points"}, {"target", "2"}}), 2, "metric",
       "metric must be number, percent, currency or boolean"},
      {"not UTF-8", h + Row({{"objective_title", "Caf\xE9"}}), 2, "", "not UTF-8"},
      {"line counted across a quoted line break",
       h.substr(0, h.size() - 1) + ",kr_owner,weight,objective_description\n" +
           "2026-q4,people,o-a,A,,k-a,KR,number,0,1,,,,,,\"two\nlines\"\n" +
           "2026-q4,people,o-b,B,,k-b,KR,number,1,1,,,,,,\n",
       4, "target", "target must differ from start"},
      {"CRLF and byte order mark",
       "\xEF\xBB\xBF" + h.substr(0, h.size() - 1) +
           "\r\n2026-q4,people,o-a,A,,k-a,KR,number,0,1,,,\r\n"
           "2026-q4,people,o-b,B,,k-b,KR,number,0,1,,x,\r\n",
       3, "current", "current must be a number"},
  };
  ASSERT_GE(cases.size(), 20u);
  const Head before = HeadOf(data);
  for (const BadCsv& c : cases) {
    SCOPED_TRACE(c.name);
    CtlRun r = ImportRefused("bad.csv", c.text, data, c.line, c.field, c.reason);
    EXPECT_NE(r.err.find("nothing was written"), std::string::npos) << r;
    // The human form: file:line:column (column name): reason.
    EXPECT_NE(r.err.find("bad.csv:" + std::to_string(c.line) + ":"), std::string::npos) << r;
    Head after = HeadOf(data);
    EXPECT_EQ(after.seq, before.seq);
    EXPECT_EQ(after.hash, before.hash);
  }
  // The column number names the column in the header.
  WriteFile(dir_.Sub("bad.csv"), h + Row({{"target", "0"}}));
  json e = Ctl("import " + dir_.Sub("bad.csv") + " --data " + data + " --json").Json()["error"];
  EXPECT_EQ(e["column"], 10);  // target is the 10th column
}

TEST_F(OkrctlTest, HundredThousandRowsFailOnTheLastRowAndWriteNothing) {
  std::string data = Data();
  Frame(data);
  constexpr int kRows = 100'000;
  std::string csv = kHeader;
  csv.reserve(static_cast<size_t>(kRows) * 110);
  const char* owners[] = {"people", "talent-acquisition", "people-operations",
                          "learning-development"};
  for (int r = 0; r < kRows; ++r) {
    int o = r / 4;
    bool last = r == kRows - 1;
    csv += "2026-q4," + std::string(owners[o % 4]) + ",obj-" + std::to_string(o) + ",Objective " +
           std::to_string(o) + ",,kr-" + std::to_string(r) + ",Key result " + std::to_string(r) +
           ",number,0," + (last ? "0" : "100") + ",points," + std::to_string(r % 100) +
           ",2026-11-" + std::to_string(10 + r % 10) + "\n";
  }
  WriteFile(dir_.Sub("big.csv"), csv);
  const Head before = HeadOf(data);
  auto started = std::chrono::steady_clock::now();
  CtlRun r = Ctl("import " + dir_.Sub("big.csv") + " --data " + data + " --json");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(r.rc, 1) << r;
  json e = r.Json()["error"];
  EXPECT_EQ(e["line"], kRows + 1);
  EXPECT_EQ(e["field"], "target");
  EXPECT_EQ(e["reason"], "target must differ from start");
  EXPECT_EQ(HeadOf(data).seq, before.seq);
  EXPECT_EQ(HeadOf(data).hash, before.hash);
  std::cout << "[ info ] 100000 rows validated and refused in " << secs << " s\n";
}

TEST_F(OkrctlTest, BadJsonIsRefusedWithLineColumnAndPointer) {
  std::string data = Data();
  Frame(data);
  const Head before = HeadOf(data);
  struct Case {
    std::string text;
    int line;
    const char* field;
    const char* reason;
  } cases[] = {
      {"{\"objectives\": [\n  {\"id\": \"o\", \"cycle\": \"2026-q4\",\n   \"owner\": 3}]}", 3,
       "/objectives/0/owner", "owner must be a string"},
      {"{\"objectives\": [{\"id\": \"o\", \"cycle\": \"2026-q4\", \"owner\": \"people\", "
       "\"title\": \"T\",\n"
       " \"key_results\": [{\"id\": \"k\", \"title\": \"K\",\n   \"start\": 1, \"target\": 1}]}]}",
       3, "/objectives/0/key_results/0/target", "target must differ from start"},
      {"{\"units\": [{\"id\": \"x\", \"kind\": \"team\", \"name\": \"X\", \"parent\": \"nope\"}]}",
       1, "/units/0/parent", "no unit nope"},
      {"{\"objectives\": [\n", 2, "", "not valid JSON"},
      {"{\"okrs\": []}", 1, "/okrs", "unknown key"},
      {"{\"check_ins\": [{\"key_result\": \"kr-nope\", \"value\": 1}]}", 1,
       "/check_ins/0/key_result", "no key result kr-nope"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    ImportRefused("bad.json", c.text, data, c.line, c.field, c.reason);
  }
  EXPECT_EQ(HeadOf(data).seq, before.seq);
}

TEST_F(OkrctlTest, ImportingTheSameFileAgainWritesNothing) {
  std::string data = Data();
  SampleStore(data);
  uint64_t seq = HeadOf(data).seq;
  // Each command's idempotency key comes from the file's bytes and its
  // place in the file: a rerun (after an interrupted import, say) skips
  // what is already written.
  CtlRun r = Ctl("import " + Sample("hr-okrs-2026-q4.csv") + " --data " + data + " --json");
  ASSERT_EQ(r.rc, 0) << r;
  EXPECT_EQ(r.Json()["written"], 0);
  EXPECT_EQ(r.Json()["skipped"], 28);
  // The frame is identical to what is stored: references, not new units.
  r = Ctl("import " + Sample("hr-org.json") + " --data " + data + " --as other --json");
  ASSERT_EQ(r.rc, 0) << r;
  EXPECT_EQ(r.Json()["written"], 0);
  EXPECT_EQ(HeadOf(data).seq, seq);
  // A dry run of a new file decides everything and writes nothing.
  WriteFile(dir_.Sub("new.csv"),
            std::string(kHeader) + "2026-q4,people,o-n,N,,k-n,KR,number,0,1,,,\n");
  r = Ctl("import " + dir_.Sub("new.csv") + " --data " + data + " --dry-run --json");
  ASSERT_EQ(r.rc, 0) << r;
  EXPECT_EQ(r.Json()["events"], 2);
  EXPECT_EQ(HeadOf(data).seq, seq);
}

// --- Export ---

TEST_F(OkrctlTest, ExportImportExportIsByteIdentical) {
  std::string a = Data("a");
  SampleStore(a);
  for (const char* format : {"csv", "json"}) {
    SCOPED_TRACE(format);
    std::string first = dir_.Sub(std::string("first.") + format);
    ASSERT_EQ(Ctl("export --cycle 2026-q4 --format " + std::string(format) + " --data " + a +
                  " -o " + first)
                  .rc,
              0);
    std::string b = Data(std::string("b-") + format);
    // JSON carries its own frame; a CSV names units and cycles that exist.
    if (std::string(format) == "csv") Frame(b);
    CtlRun r = Ctl("import " + first + " --data " + b);
    ASSERT_EQ(r.rc, 0) << r;
    CtlRun second = Ctl("export --cycle 2026-q4 --format " + std::string(format) + " --data " + b);
    ASSERT_EQ(second.rc, 0) << second;
    EXPECT_EQ(second.out, ReadFile(first));
  }
  // --as-of: the state after the CSV import, before the week-48 check-ins.
  CtlRun early = Ctl("export --cycle 2026-q4 --as-of 41 --data " + a);
  ASSERT_EQ(early.rc, 0) << early;
  EXPECT_NE(early.out.find(",days,38,2026-11-09,"), std::string::npos) << early.out;
  EXPECT_EQ(Ctl("export --cycle 2026-q4 --as-of 4100 --data " + a).rc, 1);
  EXPECT_EQ(Ctl("export --cycle no-such --data " + a).rc, 1);
}

// --- Spreadsheet safety ---

// Texts a spreadsheet would run as formulas, the escape itself, and
// negative numbers: export writes the texts with one ' in front and the
// numbers plain, import takes exactly one ' off, and the round trip is exact.
TEST_F(OkrctlTest, FormulaCellsAreNeutralisedOnExportAndRestoredOnImport) {
  std::string a = Data("a");
  Frame(a);
  // Hand-written in the exported form: every text cell with one ' in front.
  const std::string csv =
      "cycle,owner,objective_id,objective_title,parents,kr_id,kr_title,metric,start,target,unit,"
      "current,checkin_date,objective_description\n"
      "2026-q4,people,o-formula,\"'=HYPERLINK(\"\"http://x.example\"\")\",,k-plus,'+1 a "
      "week,number,"
      "-5,-10,'-x,-7,2026-11-02,\"'\tTab\"\n"
      "2026-q4,people,o-formula,\"'=HYPERLINK(\"\"http://x.example\"\")\",,k-at,'@SUM(A1),number,"
      "0,1,,,,\"'\tTab\"\n"
      "2026-q4,people,o-formula,\"'=HYPERLINK(\"\"http://x.example\"\")\",,k-quote,''quoted,number,"
      "0,1,,,,\"'\tTab\"\n"
      "2026-q4,people,o-formula,\"'=HYPERLINK(\"\"http://"
      "x.example\"\")\",,k-quotes,'''twice,number,"
      "0,1,,,,\"'\tTab\"\n";
  WriteFile(dir_.Sub("formulas.csv"), csv);
  CtlRun r = Ctl("import " + dir_.Sub("formulas.csv") + " --data " + a);
  ASSERT_EQ(r.rc, 0) << r;

  // The store holds the texts themselves (JSON needs no escape).
  json doc = Ctl("export --cycle 2026-q4 --format json --data " + a).Json();
  const json* o = nullptr;
  for (const json& x : doc["objectives"]) {
    if (x["id"] == "o-formula") o = &x;
  }
  ASSERT_NE(o, nullptr) << doc.dump();
  EXPECT_EQ((*o)["title"], "=HYPERLINK(\"http://x.example\")");
  EXPECT_EQ((*o)["description"], "\tTab");
  std::vector<std::string> titles;
  for (const json& k : (*o)["key_results"]) titles.push_back(k["title"]);
  EXPECT_EQ(titles, (std::vector<std::string>{"+1 a week", "@SUM(A1)", "'quoted", "''twice"}));
  EXPECT_EQ((*o)["key_results"][0]["unit"], "-x");
  EXPECT_EQ((*o)["key_results"][0]["start"], -5);
  EXPECT_EQ((*o)["key_results"][0]["target"], -10);

  std::string first = dir_.Sub("first.csv");
  ASSERT_EQ(Ctl("export --cycle 2026-q4 --data " + a + " -o " + first).rc, 0);
  const std::string exported = ReadFile(first);
  EXPECT_NE(exported.find(",k-plus,'+1 a week,number,-5,-10,'-x,-7,2026-11-02,,1,'\tTab\r\n"),
            std::string::npos)
      << exported;
  EXPECT_NE(exported.find(",\"'=HYPERLINK(\"\"http://x.example\"\")\","), std::string::npos)
      << exported;
  EXPECT_NE(exported.find(",k-quotes,'''twice,"), std::string::npos) << exported;
  // No text cell of the whole export (the sample's rows too) starts a formula.
  std::vector<ctl::CsvRecord> records;
  ctl::CsvError error;
  ASSERT_TRUE(ctl::ParseCsv(exported, &records, &error)) << error.reason;
  const std::set<size_t> number_columns = {8, 9, 11, 14};  // start, target, current, weight
  for (const auto& record : records) {
    for (size_t c = 0; c < record.fields.size(); ++c) {
      const std::string& cell = record.fields[c];
      if (number_columns.count(c) || cell.empty()) continue;
      EXPECT_EQ(std::string("=+-@\t\r").find(cell[0]), std::string::npos)
          << "line " << record.line << " column " << c + 1 << ": " << cell;
    }
  }

  std::string b = Data("b");
  Frame(b);
  r = Ctl("import " + first + " --data " + b);
  ASSERT_EQ(r.rc, 0) << r;
  CtlRun second = Ctl("export --cycle 2026-q4 --data " + b);
  ASSERT_EQ(second.rc, 0) << second;
  EXPECT_EQ(second.out, exported);
}

// --- Through a running okrd ---

class OkrctlServerTest : public OkrctlTest {
 protected:
  OkrctlServerTest()
      : okrd_(WithTokens({kAdmin, kEditor, kAuditor}, {"--backup-root", dir_.Sub("backups")})) {}
  void SetUp() override { ASSERT_TRUE(okrd_.Start()); }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(okrd_.port()); }
  std::string As(const Token& t) const { return "OKR_TOKEN=" + t.token; }
  CtlRun Server(const std::string& args, const Token& token) {
    return Ctl(args + " --server " + Url(), As(token));
  }

  Okrd okrd_;
};

TEST_F(OkrctlServerTest, ImportThroughOkrdMatchesTheOfflineImport) {
  for (const char* file : {"hr-org.json", "hr-okrs-2026-q4.csv", "hr-checkins-week-48.json"}) {
    CtlRun r = Server("import " + Sample(file) + " --json", kAdmin);
    ASSERT_EQ(r.rc, 0) << r;
  }
  std::string offline = Data();
  SampleStore(offline);
  for (const char* format : {"csv", "json"}) {
    CtlRun online = Server("export --cycle 2026-q4 --format " + std::string(format), kAuditor);
    ASSERT_EQ(online.rc, 0) << online;
    CtlRun local =
        Ctl("export --cycle 2026-q4 --format " + std::string(format) + " --data " + offline);
    EXPECT_EQ(online.out, local.out) << format;
  }
  // Refused before anything is sent: the server's head does not move.
  uint64_t head = okrd_.HeadSeq();
  WriteFile(dir_.Sub("bad.csv"), std::string(kHeader) +
                                     "2026-q4,people,o-z,Z,,k-z,KR,number,0,1,,,\n" +
                                     "2026-q4,people,o-y,Y,,k-y,KR,number,3,3,,,\n");
  CtlRun bad = Server("import " + dir_.Sub("bad.csv") + " --json", kAdmin);
  EXPECT_EQ(bad.rc, 1) << bad;
  EXPECT_EQ(bad.Json()["error"]["line"], 3);
  EXPECT_EQ(okrd_.HeadSeq(), head);
  // An editor cannot read the log the rows are validated against.
  EXPECT_EQ(Server("import " + dir_.Sub("bad.csv"), kEditor).rc, 1);
  EXPECT_EQ(Ctl("import " + dir_.Sub("bad.csv") + " --server " + Url() + " --as x", As(kAdmin)).rc,
            2);
}

TEST_F(OkrctlServerTest, ClientCommands) {
  ASSERT_EQ(Server("import " + Sample("hr-org.json"), kAdmin).rc, 0);
  ASSERT_EQ(Server("import " + Sample("hr-okrs-2026-q4.csv"), kAdmin).rc, 0);

  CtlRun checkin = Server(
      "checkin kr-records-migrated 70 --note 'Oslo done' --confidence 0.8 --status on_track "
      "--measured-at 2026-11-21",
      kEditor);
  ASSERT_EQ(checkin.rc, 0) << checkin;
  EXPECT_NE(checkin.out.find("on kr-records-migrated: 70 % of 100, progress 70%"),
            std::string::npos)
      << checkin;
  CtlRun refused = Server("checkin kr-enps 20", kEditor);  // outside the editor's units
  EXPECT_EQ(refused.rc, 1);
  EXPECT_NE(refused.err.find("HTTP 403"), std::string::npos) << refused;
  EXPECT_EQ(Server("checkin kr-nope 1", kAdmin).rc, 1);
  // A value JSON cannot carry is named here, not sent as null (which okrd
  // answered as a missing value); nothing is written.
  const uint64_t head = okrd_.HeadSeq();
  for (const char* value : {"1e400", "nan", "inf"}) {
    CtlRun bad = Server(std::string("checkin kr-records-migrated ") + value, kAdmin);
    EXPECT_EQ(bad.rc, 2) << value << " " << bad;
    EXPECT_NE(bad.err.find("value must be a finite number"), std::string::npos) << bad;
  }
  CtlRun huge = Server("checkin kr-records-migrated 1e16", kAdmin);
  EXPECT_EQ(huge.rc, 2) << huge;
  EXPECT_NE(huge.err.find("value must lie between -1e15 and 1e15"), std::string::npos) << huge;
  // A confidence of nan was sent as null: the check-in was recorded without one.
  for (const char* confidence : {"nan", "1e400", "1.5"}) {
    CtlRun bad =
        Server(std::string("checkin kr-records-migrated 1 --confidence ") + confidence, kAdmin);
    EXPECT_EQ(bad.rc, 2) << confidence << " " << bad;
    EXPECT_NE(bad.err.find("confidence must be between 0 and 1"), std::string::npos) << bad;
  }
  EXPECT_EQ(okrd_.HeadSeq(), head);

  CtlRun objectives = Server("objectives --cycle 2026-q4", kAuditor);
  ASSERT_EQ(objectives.rc, 0) << objectives;
  EXPECT_NE(objectives.out.find("  kr-records-migrated"), std::string::npos) << objectives;
  EXPECT_NE(objectives.out.find("70 / 100 %"), std::string::npos) << objectives;
  json listed = Server("objectives --cycle 2026-q4 --json", kAuditor).Json();
  EXPECT_EQ(listed["items"].size(), 7u);
  json early = Server("objectives --cycle 2026-q4 --as-of 13 --json", kAuditor).Json();
  EXPECT_EQ(early["items"].size(), 0u);
  EXPECT_EQ(early["as_of_seq"], 13);

  CtlRun cascade = Server("cascade --cycle 2026-q4", kAuditor);
  ASSERT_EQ(cascade.rc, 0) << cascade;
  EXPECT_NE(cascade.out.find("Fjord Logistics (fjord)"), std::string::npos) << cascade;
  EXPECT_NE(cascade.out.find("    People Operations (people-operations)"), std::string::npos)
      << cascade;
  EXPECT_TRUE(Server("cascade --cycle 2026-q4 --json", kAuditor).Json().contains("nodes"));

  CtlRun review = Server("review 2026-q4 --format md", kAuditor);
  ASSERT_EQ(review.rc, 0) << review;
  EXPECT_EQ(review.out.rfind("# Review of Q4 2026", 0), 0u) << review.out;
  // Printed as okrd wrote it, with the log's signed checkpoint at its end.
  EXPECT_NE(review.out.find("\n## Checkpoint\n"), std::string::npos) << review.out;
  CtlRun review_csv = Server("review 2026-q4 --format csv", kAuditor);
  EXPECT_EQ(review_csv.out.rfind("cycle,objective,", 0), 0u);
  EXPECT_NE(review_csv.out.find("\r\n#checkpoint,note,"), std::string::npos) << review_csv.out;
  EXPECT_TRUE(Server("review 2026-q4 --format json", kAuditor).Json().contains("objectives"));

  CtlRun history = Server("history kr-records-migrated", kAuditor);
  ASSERT_EQ(history.rc, 0) << history;
  EXPECT_NE(history.out.find("key_result.added"), std::string::npos);
  EXPECT_NE(history.out.find("editor-6158"), std::string::npos);
  EXPECT_EQ(Server("history kr-records-migrated --json", kAuditor).Json()["items"].size(), 3u);
  EXPECT_EQ(Server("history kr-records-migrated", kEditor).rc, 1);  // audit reads only
}

TEST_F(OkrctlServerTest, BackupWhileWritingRestoresAConsistentLog) {
  ASSERT_EQ(Server("import " + Sample("hr-org.json"), kAdmin).rc, 0);
  ASSERT_EQ(Server("import " + Sample("hr-okrs-2026-q4.csv"), kAdmin).rc, 0);
  const std::vector<std::string> krs = {"kr-records-migrated", "kr-time-to-hire",
                                        "kr-learning-hours", "kr-referral-share"};
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (size_t t = 0; t < krs.size(); ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        Reply r = okrd_.Post("/v1/key-results/" + krs[t] + "/check-ins",
                             {{"value", 10 + i % 50}, {"note", "writer " + std::to_string(t)}},
                             kAdmin.token);
        if (r.status == 201) ++written;
      }
    });
  }
  while (written < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Under okrd's --backup-root.
  std::string backups = dir_.Sub("backups") + "/nightly";
  CtlRun first = Server("backup --to nightly --json", kAdmin);
  int at_first = written;
  while (written < at_first + 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CtlRun second = Server("backup --to nightly --json", kAdmin);
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_EQ(first.rc, 0) << first;
  ASSERT_EQ(second.rc, 0) << second;
  uint64_t seq1 = first.Json()["head_seq"], seq2 = second.Json()["head_seq"];
  EXPECT_GT(seq2, seq1);
  EXPECT_GT(okrd_.HeadSeq(), seq2);  // writes went on after both
  EXPECT_EQ(second.Json()["backup_id"], 2);

  CtlRun listed = Ctl("backups --from " + backups + " --json");
  ASSERT_EQ(listed.rc, 0) << listed;
  EXPECT_EQ(listed.Json()["items"].size(), 2u);

  struct Restored {
    uint32_t id;
    uint64_t seq;
    std::string hash;
  };
  for (const Restored& b : {Restored{1, seq1, first.Json()["head_hash"]},
                            Restored{2, seq2, second.Json()["head_hash"]}}) {
    SCOPED_TRACE("backup " + std::to_string(b.id));
    // A restored log needs the key file its log records (docs/OPERATIONS.md).
    Okrd restored(
        WithTokens({kAdmin, kAuditor}, {"--signing-key", okrd_.data_dir() + ".signing.key"}));
    CtlRun r = Ctl("restore --from " + backups + " --data " + restored.data_dir() +
                   " --backup-id " + std::to_string(b.id) + " --json");
    ASSERT_EQ(r.rc, 0) << r;
    EXPECT_EQ(r.Json()["ok"], true);
    EXPECT_EQ(r.Json()["events"], b.seq);
    EXPECT_EQ(r.Json()["head_hash"], b.hash);
    // The live log holds the same event at that seq.
    Reply event =
        okrd_.Get("/v1/events?raw=true&limit=1&after=" + std::to_string(b.seq - 1), kAuditor.token);
    ASSERT_EQ(event.status, 200) << event;
    EXPECT_EQ(ToHex(Sha256(*Base64Decode(event.json["items"][0]["raw"].get<std::string>()))),
              b.hash);
    ASSERT_TRUE(restored.Start());
    EXPECT_EQ(restored.HeadSeq(), b.seq);
    const std::string query = "/v1/objectives?cycle=2026-q4&as_of=" + std::to_string(b.seq);
    Reply live = okrd_.Get(query), copy = restored.Get(query);
    ASSERT_EQ(live.status, 200) << live;
    ASSERT_EQ(copy.status, 200) << copy;
    EXPECT_EQ(live.json, copy.json);
    CtlRun verified =
        Ctl("verify --server http://127.0.0.1:" + std::to_string(restored.port()), As(kAuditor));
    EXPECT_EQ(verified.rc, 0) << verified;
  }
  // A restore never overwrites, and a damaged backup is refused.
  std::string busy = dir_.Sub("busy");
  std::filesystem::create_directories(busy);
  WriteFile(busy + "/keep.txt", "x");
  EXPECT_EQ(Ctl("restore --from " + backups + " --data " + busy).rc, 1);
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(backups + "/shared_checksum")) {
    if (!entry.is_regular_file()) continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(entry.file_size() / 2));
    f.put('\x5a');
  }
  CtlRun damaged = Ctl("restore --from " + backups + " --data " + dir_.Sub("damaged"));
  EXPECT_EQ(damaged.rc, 1) << damaged;
  EXPECT_NE(damaged.err.find("damaged"), std::string::npos) << damaged;
}

TEST_F(OkrctlServerTest, BackupRouteIsForAdminsOnly) {
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", "b"}}, kEditor.token).status, 403);
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", "b"}}, kAuditor.token).status, 403);
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", "b"}}).status, 401);
  // `to` is relative to --backup-root (tests/operator_test.cc has the rest).
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"to", dir_.Sub("b")}}, kAdmin.token).status, 422);
  EXPECT_EQ(okrd_.Post("/v1/admin/backup", {{"into", "b"}}, kAdmin.token).status, 400);
  Reply ok = okrd_.Post("/v1/admin/backup", {{"to", "relative/dir"}}, kAdmin.token);
  EXPECT_EQ(ok.status, 201) << ok;
  EXPECT_EQ(ok.json["head_seq"], okrd_.HeadSeq());
  EXPECT_EQ(okrd_.Get("/v1/events?raw=maybe", kAuditor.token).status, 400);
}

// Changes one stored event of a stopped okrd's data directory in place,
// bypassing the store, as someone with the files could: `edit` gets the
// value and changes it.
void TamperWithEvent(const std::string& data_dir, uint64_t seq,
                     const std::function<void(std::string*)>& edit) {
  rocksdb::Options options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, data_dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, data_dir, cfs, &handles, &db).ok());
  rocksdb::ColumnFamilyHandle* events = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == format::kEventsCf) events = handles[i];
  }
  std::string value;
  ASSERT_TRUE(db->Get({}, events, format::SeqKey(seq), &value).ok());
  edit(&value);
  ASSERT_TRUE(db->Put({}, events, format::SeqKey(seq), value).ok());
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

TEST_F(OkrctlServerTest, VerifyFromTheServedBytesCatchesATamperedLog) {
  const uint64_t start = okrd_.HeadSeq();  // the log's own key event
  ASSERT_EQ(Server("import " + Sample("hr-org.json"), kAdmin).rc, 0);
  ASSERT_EQ(Server("import " + Sample("hr-okrs-2026-q4.csv"), kAdmin).rc, 0);
  ASSERT_EQ(Server("import " + Sample("hr-checkins-week-48.json"), kAdmin).rc, 0);
  CtlRun healthy = Server("verify --json", kAuditor);
  ASSERT_EQ(healthy.rc, 0) << healthy;
  EXPECT_EQ(healthy.Json()["events"], start + 44);
  EXPECT_EQ(healthy.Json()["head_hash"], healthy.Json()["server"]["head_hash"]);
  EXPECT_EQ(Server("verify", kEditor).rc, 1);  // audit reads only

  // A copy of the data directory with one word of seq 20 rewritten: the
  // value still decodes, so only the chain can tell (seq 21's prevHash).
  ASSERT_TRUE(okrd_.Stop());
  const OkrdOptions forensics = WithTokens({kAdmin, kAuditor}, {"--read-only-forensics"});
  Okrd copy(forensics);
  std::filesystem::copy(okrd_.data_dir(), copy.data_dir(),
                        std::filesystem::copy_options::recursive);
  TamperWithEvent(copy.data_dir(), 20, [](std::string* value) {
    size_t at = value->find("imported from");
    ASSERT_NE(at, std::string::npos);
    (*value)[at] = 'I';
  });
  // okrd refuses to serve a broken chain, but serves it read-only for forensics.
  Okrd normal(WithTokens({kAdmin}));
  std::filesystem::copy(copy.data_dir(), normal.data_dir(),
                        std::filesystem::copy_options::recursive);
  EXPECT_FALSE(normal.Start());
  ASSERT_TRUE(copy.Start());
  const std::string url = "http://127.0.0.1:" + std::to_string(copy.port());
  CtlRun broken = Ctl("verify --json --server " + url, As(kAuditor));
  EXPECT_EQ(broken.rc, 1) << broken;
  json report = broken.Json();
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["first_bad_seq"], 21) << broken;
  EXPECT_EQ(report["problem"], "prevHash does not match the previous event");
  EXPECT_EQ(report["server"]["ok"], false);
  CtlRun text = Ctl("verify --server " + url, As(kAuditor));
  EXPECT_NE(text.out.find("BROKEN at seq 21"), std::string::npos) << text;
  // Writes are refused; reads and audit reads answer.
  EXPECT_EQ(copy.Post("/v1/key-results/kr-pay-gap/check-ins", {{"value", 3}}, kAdmin.token).status,
            403);
  EXPECT_EQ(copy.Post("/v1/admin/backup", {{"to", dir_.Sub("b")}}, kAdmin.token).status, 403);
  EXPECT_EQ(copy.Get("/v1/objectives?cycle=2026-q4").status, 200);
  EXPECT_EQ(copy.Get("/v1/events?limit=1", kAuditor.token).status, 200);
  ASSERT_TRUE(copy.Stop());
  // Nothing in the copy was written: it is still broken at the same place.
  json offline = Ctl("verify --json --data " + copy.data_dir()).Json();
  EXPECT_EQ(offline["first_bad_seq"], 21) << offline;
  EXPECT_EQ(offline["problem"], "prevHash does not match the previous event");
}

// --- verify --deep: snapshots against the log ---

// Rewrites the title of `objective` (its newest revision) inside the
// snapshot stored at `seq`: the snapshot still decodes and still carries
// the right head hash, so only a comparison with the log can tell.
void RetitleInSnapshot(const std::string& data, uint64_t seq, const std::string& objective,
                       const std::string& title) {
  auto store = EventStore::Open(data);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto stored = (*store)->SnapshotAtOrBefore(seq);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->seq, seq);
  bool found = false;
  for (std::string& part : stored->parts) {
    auto words = kj::heapArray<capnp::word>(part.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), part.data(), part.size());
    capnp::FlatArrayMessageReader reader(words.asPtr());
    capnp::MallocMessageBuilder builder;
    builder.setRoot(reader.getRoot<schema::Snapshot>());
    for (auto o : builder.getRoot<schema::Snapshot>().getObjectives()) {
      if (std::string(o.getId().cStr()) != objective) continue;
      auto revisions = o.getRevisions();
      revisions[revisions.size() - 1].setTitle(title);
      found = true;
    }
    auto flat = capnp::messageToFlatArray(builder);
    auto bytes = flat.asBytes();
    part.assign(bytes.begin(), bytes.end());
  }
  ASSERT_TRUE(found) << objective << " is not in the snapshot at seq " << seq;
  ASSERT_TRUE((*store)->PutSnapshot(seq, stored->parts).ok());
}

TEST_F(OkrctlTest, VerifyDeepComparesEverySnapshotWithTheLogAndNamesATamperedOne) {
  // okrd writes the snapshots itself, every 5 events (it keeps the newest two).
  Okrd okrd(WithTokens({kAdmin}, {"--snapshot-every", "5"}));
  ASSERT_TRUE(okrd.Start());
  const std::string url = " --server http://127.0.0.1:" + std::to_string(okrd.port());
  for (const char* file : {"hr-org.json", "hr-okrs-2026-q4.csv", "hr-checkins-week-48.json"}) {
    ASSERT_EQ(Ctl("import " + Sample(file) + url, "OKR_TOKEN=" + kAdmin.token).rc, 0) << file;
  }
  // Its starts from here on write no snapshot: a start owes one when the
  // head is far enough past the newest (one owed at the stop was dropped),
  // and a third would push the older of the two kept out.
  ASSERT_TRUE(okrd.Restart(std::vector<std::string>{"--snapshot-every", "0"}));
  ASSERT_TRUE(okrd.Stop());
  const std::string data = okrd.data_dir();

  CtlRun healthy = Ctl("verify --deep --json --data " + data);
  ASSERT_EQ(healthy.rc, 0) << healthy;
  json snapshots = healthy.Json()["snapshots"];
  ASSERT_EQ(snapshots["seqs"].size(), 2u) << healthy;
  EXPECT_EQ(snapshots["checked"], 2);
  EXPECT_EQ(snapshots["ok"], true);
  const uint64_t newest = snapshots["seqs"][1].get<uint64_t>();
  CtlRun text = Ctl("verify --deep --data " + data);
  EXPECT_EQ(text.rc, 0) << text;
  EXPECT_NE(text.out.find("snapshots: 2 agree with a full replay of the log"), std::string::npos)
      << text;

  // The newest snapshot (the one okrd starts from) now holds another title.
  RetitleInSnapshot(data, newest, "obj-hire-well", "Hire nobody");
  ASSERT_TRUE(okrd.Start());
  EXPECT_EQ(okrd.Get("/v1/objectives/obj-hire-well").json["title"], "Hire nobody")
      << "okrd serves the snapshot: that is why it must be checked";
  ASSERT_TRUE(okrd.Stop());

  CtlRun deep = Ctl("verify --deep --json --data " + data);
  EXPECT_EQ(deep.rc, 1) << deep;
  json report = deep.Json();
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["first_bad_seq"], nullptr) << "the chain itself is intact";
  EXPECT_EQ(report["snapshots"]["first_bad_seq"], newest);
  EXPECT_EQ(report["snapshots"]["checked"], 1) << "the older snapshot agrees";
  const std::string problem = report["snapshots"]["problem"];
  EXPECT_NE(problem.find("objective obj-hire-well"), std::string::npos) << problem;
  EXPECT_NE(problem.find("title: snapshot \"Hire nobody\", log \"Hire the people our growth needs"),
            std::string::npos)
      << problem;
  text = Ctl("verify --deep --data " + data);
  EXPECT_EQ(text.rc, 1);
  EXPECT_NE(text.out.find("SNAPSHOT at seq " + std::to_string(newest) + " differs"),
            std::string::npos)
      << text;

  // Plain verify checks the chain only, as before: the log is intact.
  CtlRun plain = Ctl("verify --json --data " + data);
  EXPECT_EQ(plain.rc, 0) << plain;
  EXPECT_FALSE(plain.Json().contains("snapshots")) << plain;
  // Snapshots are read from a data directory, never through okrd.
  EXPECT_EQ(Ctl("verify --deep --server http://127.0.0.1:1").rc, 2);
}

// --- Tokens ---

// A token made, listed and revoked with okrctl against the file a running
// okrd reads: it works once okrd has had SIGHUP, and stops working once
// revoked and SIGHUP'd again; the file keeps its mode and only hashes; a
// refused change leaves it byte for byte.
TEST_F(OkrctlTest, ATokenMadeWorksAfterSighupAndARevokedOneIsRefused) {
  Okrd okrd(WithTokens({kAdmin}));
  ASSERT_TRUE(okrd.Start());
  const std::string file = okrd.tokens_path();
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  CtlRun made = Ctl("token new --actor ci.auditor --role auditor --json --file " + file);
  ASSERT_EQ(made.rc, 0) << made;
  const std::string token = made.Json()["token"].get<std::string>();
  EXPECT_EQ(token.rfind("okr_", 0), 0u) << token;
  EXPECT_EQ(token.size(), 4u + 64u);
  const std::string text = ReadFile(file);
  EXPECT_EQ(text.find(token), std::string::npos) << "the token itself was stored";
  EXPECT_NE(text.find(ToHex(Sha256(token))), std::string::npos);
  struct stat after {};
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_EQ(after.st_mode & 07777, before.st_mode & 07777);
  EXPECT_EQ(after.st_uid, before.st_uid);

  // Not before SIGHUP; then, as an auditor.
  EXPECT_EQ(okrd.Get("/v1/audit/verify", token).status, 401);
  ASSERT_EQ(::kill(okrd.pid(), SIGHUP), 0);
  ASSERT_TRUE(testing::WaitFor([&] { return okrd.Get("/v1/audit/verify", token).status == 200; }))
      << okrd.LogTail();
  EXPECT_EQ(okrd.Post("/v1/units", {{"id", "x"}, {"kind", "team"}, {"name", "X"}}, token).status,
            403);

  // The listing names actors and roles, never a whole hash.
  CtlRun listed = Ctl("token list --json --file " + file);
  ASSERT_EQ(listed.rc, 0) << listed;
  ASSERT_EQ(listed.Json()["items"].size(), 2u);
  EXPECT_EQ(listed.Json()["items"][1]["actor"], "ci.auditor");
  EXPECT_EQ(listed.Json()["items"][1]["role"], "auditor");
  EXPECT_EQ(listed.Json()["items"][1]["token_sha256_prefix"], ToHex(Sha256(token)).substr(0, 12));
  EXPECT_EQ(Ctl("token list --file " + file).out.find(ToHex(Sha256(token))), std::string::npos);

  // Refused, the file unchanged: an actor twice, an unknown role, a
  // subject that is no id, a revoke of nobody, a file okrd would refuse.
  const std::string kept = ReadFile(file);
  EXPECT_EQ(Ctl("token new --actor ci.auditor --role viewer --file " + file).rc, 1);
  EXPECT_EQ(Ctl("token new --actor x --role boss --file " + file).rc, 2);
  EXPECT_EQ(Ctl("token new --actor x --role viewer --subject 'Not An Id' --file " + file).rc, 1);
  EXPECT_EQ(Ctl("token revoke --actor nobody --file " + file).rc, 1);
  EXPECT_EQ(ReadFile(file), kept);
  ::chmod(file.c_str(), 0644);
  CtlRun loose = Ctl("token new --actor x --role viewer --file " + file);
  EXPECT_EQ(loose.rc, 1);
  EXPECT_NE(loose.err.find("chmod 600"), std::string::npos) << loose;
  ::chmod(file.c_str(), before.st_mode & 07777);
  EXPECT_EQ(ReadFile(file), kept);

  // Revoked: refused after the next SIGHUP; the admin's token still works.
  ASSERT_EQ(Ctl("token revoke --actor ci.auditor --file " + file).rc, 0);
  ASSERT_EQ(::kill(okrd.pid(), SIGHUP), 0);
  ASSERT_TRUE(testing::WaitFor([&] { return okrd.Get("/v1/audit/verify", token).status == 401; }));
  EXPECT_EQ(okrd.Get("/v1/audit/verify", kAdmin.token).status, 200);

  // Eight new tokens at once: each okrctl waits its turn, none is lost.
  std::string racers;
  for (int i = 0; i < 8; ++i) {
    racers += testing::BuildFile(OKRCTL_PATH) + " token new --actor racer." + std::to_string(i) +
              " --role viewer --file " + file + " >/dev/null 2>&1 & ";
  }
  std::string ignored;
  ASSERT_EQ(testing::RunCommand(racers + "wait", &ignored), 0);
  CtlRun raced = Ctl("token list --json --file " + file);
  ASSERT_EQ(raced.rc, 0) << raced;
  EXPECT_EQ(raced.Json()["items"].size(), 1u + 8u) << raced;

  // A file that does not exist yet is created, 0600.
  const std::string fresh = dir_.Sub("fresh-tokens.json");
  ASSERT_EQ(Ctl("token new --actor first --role admin --file " + fresh).rc, 0);
  struct stat created {};
  ASSERT_EQ(::stat(fresh.c_str(), &created), 0);
  EXPECT_EQ(created.st_mode & 07777, 0600u);
}

// --- Help and usage ---

TEST_F(OkrctlTest, HelpNamesEveryCommandAndUsageErrorsExitTwo) {
  CtlRun help = Ctl("--help");
  EXPECT_EQ(help.rc, 0);
  for (const char* command :
       {"verify", "audit", "dump", "head", "import", "export", "backup", "restore", "backups",
        "checkin", "objectives", "cascade", "review", "history", "token"}) {
    EXPECT_NE(help.out.find(std::string(command)), std::string::npos) << command;
    CtlRun sub = Ctl(std::string(command) + " --help");
    EXPECT_EQ(sub.rc, 0) << command;
    EXPECT_NE(sub.out.find("--"), std::string::npos) << command;
  }
  CtlRun token = Ctl("token --help");
  for (const char* command : {"new", "list", "revoke"}) {
    EXPECT_NE(token.out.find(command), std::string::npos) << command;
    EXPECT_EQ(Ctl(std::string("token ") + command + " --help").rc, 0) << command;
  }
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
  EXPECT_EQ(Ctl("").rc, 2);
  EXPECT_EQ(Ctl("token").rc, 2);                             // which one
  EXPECT_EQ(Ctl("token new --actor a --role admin").rc, 2);  // no --file
  EXPECT_EQ(Ctl("frobnicate").rc, 2);
  EXPECT_EQ(Ctl("import x.csv").rc, 2);  // neither --data nor --server
  EXPECT_EQ(Ctl("import x.csv --data a --server http://127.0.0.1:1").rc, 2);  // both
  EXPECT_EQ(Ctl("export --data a").rc, 2);                                    // no --cycle
  EXPECT_EQ(Ctl("audit --server http://127.0.0.1:1 --state s.json").rc, 2);   // no --key
  EXPECT_EQ(Ctl("audit --server http://127.0.0.1:1 --key not-a-vkey --state s.json").rc, 2);
  EXPECT_EQ(Ctl("export --cycle c --format xlsx --data a").rc, 2);
  EXPECT_EQ(Ctl("verify --server ftp://example").rc, 2);
  EXPECT_EQ(Ctl("verify --data " + dir_.Sub("missing")).rc, 1);
}

// --- The parts ---

TEST(CsvTest, ReadsRfc4180AndWritesWhatItReads) {
  std::vector<ctl::CsvRecord> records;
  ctl::CsvError error;
  ASSERT_TRUE(
      ctl::ParseCsv("a,\"b,c\",\"d \"\"e\"\"\"\r\n\"multi\r\nline\",,x\n", &records, &error));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].fields, (std::vector<std::string>{"a", "b,c", "d \"e\""}));
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"multi\nline", "", "x"}));
  EXPECT_EQ(records[1].line, 2u);
  for (const std::string& field :
       {std::string("plain"), std::string("a,b"), std::string("say \"hi\""),
        std::string("two\nlines"), std::string(" padded "),
        std::string("\xEF\xBB\xBFstarts with a byte order mark")}) {
    ASSERT_TRUE(ctl::ParseCsv(ctl::CsvField(field) + "\n", &records, &error));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].fields[0], field);
  }
  EXPECT_FALSE(ctl::ParseCsv("a,\"b\n", &records, &error));
  EXPECT_EQ(error.line, 1u);
  EXPECT_EQ(error.column, 2u);
}

TEST(CsvTest, NumbersReadBackExactly) {
  for (double v : {0.0, 1.0, -2.5, 0.1, 1.0 / 3, 1e21, 123456.789, 42500.5, 4.2}) {
    double back = 0;
    ASSERT_TRUE(ctl::ParseNumber(ctl::FormatNumber(v), &back)) << ctl::FormatNumber(v);
    EXPECT_EQ(back, v);
  }
  EXPECT_EQ(ctl::FormatNumber(30), "30");
  EXPECT_EQ(ctl::FormatNumber(-0.0), "0");
  double v = 0;
  for (const char* bad : {"", "abc", "1,5", "12%", "inf", "nan", "1e400", "1e", "--1", "0x10"}) {
    EXPECT_FALSE(ctl::ParseNumber(bad, &v)) << bad;
  }
  EXPECT_TRUE(ctl::ParseNumber("+1.5e3", &v));
  EXPECT_EQ(v, 1500);
}

TEST(Base64Test, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    EXPECT_EQ(*Base64Decode(Base64Encode(bytes)), bytes);
    bytes.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(Base64Encode("okr"), "b2ty");
  EXPECT_EQ(Base64Encode("ok"), "b2s=");
  EXPECT_FALSE(Base64Decode("b2s").has_value());
  EXPECT_FALSE(Base64Decode("b=s=").has_value());
  EXPECT_FALSE(Base64Decode("b2*y").has_value());
}

}  // namespace
}  // namespace okr
