// The end of a cycle: a scripted quarter (2026-q1) written week by week,
// then its review (JSON, Markdown, CSV), the diff between two points of it,
// and lint on crafted states, one rule at a time.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/projections_fixture.h"

namespace okr {
namespace {

using nlohmann::json;
using testing::At;
using testing::ProjectionsTest;

const char* const kPipelineTitle = "Fill the pipeline, with \"quality\", not just volume";

// Q1 2026 at Acme, written as it happened:
//
//   acme-grow       acme     "Grow to 250 people"                 (no key results)
//   ├── hr-hiring   hr       "Hire the people Acme needs"
//   │   ├── kr-hires          0 → 20 hires, weight 2     weekly
//   │   ├── kr-time-to-hire  45 → 30 days, weight 1     every other week
//   │   ├── ta-pipeline     ta  kPipelineTitle
//   │   │   └── kr-candidates  0 → 200, moved to 150 on Feb 16 by maria
//   │   └── ops-onboarding  hr-ops → jonas on Feb 2
//   │       ├── kr-onboarding-nps  20 → 50              every other week
//   │       └── kr-handbook        boolean 0 → 1        weeks 4 and 9
//   └── ld-academy  l-and-d  "Launch the Acme Academy"  archived Jan 26
//       └── kr-courses  0 → 10                           weeks 1 and 2
//
// Check-ins on the twelve Mondays from Jan 12 to Mar 30 at 10:00, one late
// check-in on Apr 1 (after the cycle ended), the cycle closed on Apr 2 and
// three of the four active objectives reviewed.
class QuarterReviewTest : public ProjectionsTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ProjectionsTest::SetUp());
    // Planning, on Monday Jan 5.
    ASSERT_OK(CreateObjective("acme-grow", "2026-q1", "acme", "Grow to 250 people"));
    ASSERT_OK(
        CreateObjective("hr-hiring", "2026-q1", "hr", "Hire the people Acme needs", {"acme-grow"}));
    ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20, "number", 2, "hires"));
    ASSERT_OK(
        AddKeyResult("kr-time-to-hire", "hr-hiring", "Days to hire", 45, 30, "number", 1, "days"));
    ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", kPipelineTitle, {"hr-hiring"}));
    ASSERT_OK(AddKeyResult("kr-candidates", "ta-pipeline", "Qualified candidates", 0, 200));
    ASSERT_OK(CreateObjective("ops-onboarding", "2026-q1", "hr-ops", "Onboard every hire smoothly",
                              {"hr-hiring"}));
    ASSERT_OK(AddKeyResult("kr-onboarding-nps", "ops-onboarding", "Onboarding NPS", 20, 50));
    ASSERT_OK(AddKeyResult("kr-handbook", "ops-onboarding", "Handbook published", 0, 1, "boolean"));
    ASSERT_OK(CreateObjective("ld-academy", "2026-q1", "l-and-d", "Launch the Acme Academy",
                              {"acme-grow"}));
    ASSERT_OK(AddKeyResult("kr-courses", "ld-academy", "Courses live", 0, 10));

    const std::vector<std::string> mondays = {
        "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02", "2026-02-09", "2026-02-16",
        "2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"};
    const double hires[] = {1, 2, 4, 5, 6, 8, 9, 11, 12, 14, 15, 16};
    const double candidates[] = {10, 22, 35, 41, 50, 58, 70, 81, 95, 104, 113, 120};
    const double time_to_hire[] = {43, 41, 40, 39, 37, 36};  // weeks 1, 3, 5, 7, 9, 11
    const double nps[] = {22, 25, 31, 35, 38, 41};           // weeks 2, 4, 6, 8, 10, 12
    for (int w = 1; w <= 12; ++w) {
      const std::string& monday = mondays[w - 1];
      NextWriteAt(At(monday + "T10:00:00Z"));
      ASSERT_OK(CheckIn("kr-hires", hires[w - 1]));
      if (w % 2 == 1) {
        ASSERT_OK(CheckIn("kr-time-to-hire", time_to_hire[w / 2]));
      }
      ASSERT_OK(CheckIn("kr-candidates", candidates[w - 1], std::nullopt, "", "amara"));
      if (w % 2 == 0) {
        ASSERT_OK(CheckIn("kr-onboarding-nps", nps[w / 2 - 1], std::nullopt, "", "jonas"));
      }
      if (w == 4 || w == 9) {
        ASSERT_OK(CheckIn("kr-handbook", w == 4 ? 0 : 1));
      }
      if (w <= 2) {
        ASSERT_OK(CheckIn("kr-courses", w, std::nullopt, "", "li"));
      }
      if (w == 2) seq_week2_ = Head();
      if (w == 3) {
        NextWriteAt(At("2026-01-26T15:00:00Z"));
        ASSERT_OK(Archive("ld-academy", "Moved to Q2"));
        NextWriteAt(At("2026-01-28T09:00:00Z"));
        ASSERT_OK(CreateUnit("noor", "person", "Noor Haddad", "ta", "noor@acme.example"));
      }
      if (w == 4) {
        NextWriteAt(At("2026-02-02T14:00:00Z"));
        ASSERT_OK(ChangeOwner("ops-onboarding", "jonas", "Jonas leads onboarding now"));
      }
      if (w == 6) {
        NextWriteAt(At("2026-02-16T12:00:00Z"));
        ASSERT_OK(MoveTarget("kr-candidates", 150, "Engineering hiring freeze", "maria"));
        seq_target_moved_ = Head();
      }
      if (w == 8) {
        NextWriteAt(At("2026-03-02T16:00:00Z"));
        ASSERT_OK(Comment("ta-pipeline", "Referrals are paying off", "amara"));
      }
    }
    // Measured after the cycle ended: not part of the quarter's score.
    NextWriteAt(At("2026-04-01T11:00:00Z"));
    ASSERT_OK(CheckIn("kr-hires", 18));
    seq_before_close_ = Head();
    NextWriteAt(At("2026-04-02T09:00:00Z"));
    ASSERT_OK(Close("2026-q1"));
    ASSERT_OK(Review("hr-hiring", 0.7, "partially", "Hiring slowed in February",
                     "Start sourcing earlier"));
    ASSERT_OK(Review("ta-pipeline", 0.8, "achieved", "Referrals worked"));
    ASSERT_OK(Review("ops-onboarding", 0.4, "missed", "The NPS survey started late"));
  }

  json ReviewJson(std::optional<uint64_t> as_of = std::nullopt) {
    auto review = okr::Review(state(), "2026-q1", as_of.value_or(Head()));
    EXPECT_TRUE(review.ok()) << review.status().ToString();
    return review.ok() ? *review : json();
  }
  static const json& Find(const json& list, const std::string& id) {
    for (const json& item : list) {
      if (item["id"] == id) return item;
    }
    static const json kNull;
    ADD_FAILURE() << "no " << id << " in " << list.dump();
    return kNull;
  }

  uint64_t seq_week2_ = 0;         // after the check-ins of Jan 19
  uint64_t seq_target_moved_ = 0;  // right after kr-candidates moved to 150
  uint64_t seq_before_close_ = 0;
};

TEST_F(QuarterReviewTest, ReviewListsEveryActiveObjectiveWithItsVerdict) {
  json r = ReviewJson();
  EXPECT_EQ(r["cycle"]["id"], "2026-q1");
  EXPECT_EQ(r["cycle"]["state"], "closed");
  EXPECT_EQ(r["cycle"]["version"], 2);  // created, closed
  std::vector<std::string> ids;
  for (const json& o : r["objectives"]) ids.push_back(o["id"]);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"acme-grow", "hr-hiring", "ops-onboarding", "ta-pipeline"}));
  EXPECT_EQ(r["achieved"], json({"ta-pipeline"}));
  EXPECT_EQ(r["partially"], json({"hr-hiring"}));
  EXPECT_EQ(r["missed"], json({"ops-onboarding"}));
  EXPECT_EQ(r["unreviewed"], json({"acme-grow"}));
  EXPECT_EQ(
      r["archived"],
      json::parse(R"([{"id":"ld-academy","title":"Launch the Acme Academy","owner":"l-and-d"}])"));
  // 12 (hires) + 6 (time to hire) + 12 (candidates) + 6 (NPS) + 2 (handbook);
  // the archived objective's 2 and the late check-in of Apr 1 do not count.
  EXPECT_EQ(r["check_ins"], 38);

  const json& hr = Find(r["objectives"], "hr-hiring");
  EXPECT_EQ(hr["score"], 0.7);
  EXPECT_EQ(hr["outcome"], "partially");
  EXPECT_EQ(hr["reflection"], "Hiring slowed in February");
  EXPECT_EQ(hr["lessons"], "Start sourcing earlier");
  EXPECT_EQ(hr["reviewed_by"], "admin");
  EXPECT_EQ(hr["parents"], json({"acme-grow"}));
  const json& acme = Find(r["objectives"], "acme-grow");
  EXPECT_TRUE(acme["score"].is_null());
  EXPECT_TRUE(acme["outcome"].is_null());
  EXPECT_TRUE(acme["key_results"].empty());
}

TEST_F(QuarterReviewTest, ComputedScoresAreTheProgressAtTheCycleEnd) {
  json r = ReviewJson();
  // ta-pipeline: 120 of the moved target 150 → 0.8.
  EXPECT_EQ(Find(r["objectives"], "ta-pipeline")["computed_score"], 0.8);
  // hr-hiring: kr-hires 16/20 = 0.8 (weight 2), kr-time-to-hire
  // (36 − 45)/(30 − 45) = 0.6 (weight 1) → (2 × 0.8 + 1 × 0.6) / 3 = 0.7333…
  EXPECT_DOUBLE_EQ(Find(r["objectives"], "hr-hiring")["computed_score"].get<double>(), 2.2 / 3);
  // ops-onboarding: NPS (41 − 20)/(50 − 20) = 0.7, handbook 1 → (0.7 + 1) / 2 = 0.85.
  EXPECT_DOUBLE_EQ(Find(r["objectives"], "ops-onboarding")["computed_score"].get<double>(), 0.85);
  // acme-grow has no key results: the mean of its active children, and
  // ld-academy is archived, so hr-hiring alone.
  EXPECT_DOUBLE_EQ(Find(r["objectives"], "acme-grow")["computed_score"].get<double>(), 2.2 / 3);
  // The check-in of Apr 1 (18 hires) came after the end: the live value has it, the review not.
  EXPECT_EQ(KeyResultJson("kr-hires")["current"], 18.0);
  EXPECT_EQ(KeyResultJson("kr-hires")["progress"], 0.9);
}

TEST_F(QuarterReviewTest, KeyResultsShowOriginalAndFinalTargetsAndValues) {
  json r = ReviewJson();
  EXPECT_EQ(Find(Find(r["objectives"], "ta-pipeline")["key_results"], "kr-candidates"),
            json::parse(R"({
              "id": "kr-candidates", "title": "Qualified candidates", "owner": "ta",
              "metric": "number", "unit": "", "weight": 1,
              "start": 0, "original_target": 200, "target": 150, "final": 120, "progress": 0.8,
              "check_ins": 12, "last_check_in": "2026-03-30T10:01:00.000000Z"})"));
  const json& hr = Find(r["objectives"], "hr-hiring")["key_results"];
  ASSERT_EQ(hr.size(), 2u);
  EXPECT_EQ(hr[0], json::parse(R"({
              "id": "kr-hires", "title": "Hires made", "owner": "hr",
              "metric": "number", "unit": "hires", "weight": 2,
              "start": 0, "original_target": 20, "target": 20, "final": 16, "progress": 0.8,
              "check_ins": 12, "last_check_in": "2026-03-30T10:00:00.000000Z"})"));
  EXPECT_EQ(hr[1], json::parse(R"({
              "id": "kr-time-to-hire", "title": "Days to hire", "owner": "hr",
              "metric": "number", "unit": "days", "weight": 1,
              "start": 45, "original_target": 30, "target": 30, "final": 36, "progress": 0.6,
              "check_ins": 6, "last_check_in": "2026-03-23T10:01:00.000000Z"})"));
  const json& ops = Find(r["objectives"], "ops-onboarding");
  EXPECT_EQ(ops["owner"], "jonas");  // the owner after the change
  ASSERT_EQ(ops["key_results"].size(), 2u);
  const json& nps = ops["key_results"][0];
  EXPECT_EQ(nps["id"], "kr-onboarding-nps");
  EXPECT_EQ(nps["owner"], "jonas");  // no owner of its own: the objective's
  EXPECT_EQ(nps["final"], 41.0);
  EXPECT_EQ(nps["progress"], 0.7);
  EXPECT_EQ(nps["check_ins"], 6);
  const json& handbook = ops["key_results"][1];
  EXPECT_EQ(handbook["metric"], "boolean");
  EXPECT_EQ(handbook["final"], 1.0);
  EXPECT_EQ(handbook["progress"], 1.0);
  EXPECT_EQ(handbook["check_ins"], 2);
  EXPECT_EQ(handbook["last_check_in"], "2026-03-09T10:03:00.000000Z");
}

TEST_F(QuarterReviewTest, TargetMovedMidCycleIsFlagged) {
  json r = ReviewJson();
  EXPECT_EQ(r["moved_goalposts"], json::parse(R"([{
      "key_result": "kr-candidates", "objective": "ta-pipeline", "field": "target",
      "before": 200, "after": 150, "actor": "maria",
      "recorded_at": "2026-02-16T12:00:00.000000Z", "reason": "Engineering hiring freeze",
      "seq": )" + std::to_string(seq_target_moved_) +
                                              "}]"));
}

TEST_F(QuarterReviewTest, ReviewAsOfBeforeTheCloseShowsAnOpenUnreviewedCycle) {
  json r = ReviewJson(seq_before_close_);
  EXPECT_EQ(r["cycle"]["state"], "open");
  EXPECT_TRUE(r["achieved"].empty());
  EXPECT_EQ(r["unreviewed"].size(), 4u);
  EXPECT_TRUE(Find(r["objectives"], "hr-hiring")["score"].is_null());
  EXPECT_EQ(r["check_ins"], 38);
  // Before the target moved: no moved goalposts, the original target in force.
  json early = ReviewJson(seq_target_moved_ - 1);
  EXPECT_TRUE(early["moved_goalposts"].empty());
  const json& kr = Find(Find(early["objectives"], "ta-pipeline")["key_results"], "kr-candidates");
  EXPECT_EQ(kr["target"], 200.0);
  EXPECT_EQ(kr["original_target"], 200.0);
  EXPECT_EQ(kr["final"], 58.0);  // the Feb 16 check-in, as known then
  EXPECT_EQ(kr["check_ins"], 6);
}

TEST_F(QuarterReviewTest, ReviewOfAnUnknownCycleIsNotFound) {
  auto review = okr::Review(state(), "2025-q4", Head());
  ASSERT_FALSE(review.ok());
  EXPECT_EQ(review.status().code(), Status::Code::kNotFound);
  // Known now, but not yet at seq 9 (2026-q1 was created at seq 10).
  EXPECT_FALSE(okr::Review(state(), "2026-q1", 9).ok());
}

TEST_F(QuarterReviewTest, MarkdownShowsTheMovedTarget) {
  const std::string md = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kMarkdown).value();
  for (const char* line : {
           "# Review of Q1 2026 (2026-q1, 2026-01-01 to 2026-03-31, closed)",
           "Achieved: 1 · partially: 1 · missed: 1 · not reviewed: 1 · check-ins: 38",
           "| kr-candidates | target | 200 | 150 | maria | 2026-02-16T12:00:00.000000Z | "
           "Engineering hiring freeze |",
           "| Qualified candidates | 0 | 200 | 150 | 120  | 80% | 12 |",
           "## Fill the pipeline, with \"quality\", not just volume (ta-pipeline)",
       }) {
    EXPECT_NE(md.find(line), std::string::npos) << line << "\n" << md;
  }
  EXPECT_EQ(md.find("ld-academy"), std::string::npos) << "archived objectives are not reviewed";
}

// RFC 4180: records end in CRLF; a field with a comma, quote or line break
// is quoted, and quotes inside are doubled.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      ++i;
    } else {
      field += c;
    }
  }
  EXPECT_FALSE(quoted) << "unterminated quote";
  EXPECT_TRUE(field.empty() && row.empty()) << "the last record does not end in CRLF";
  return rows;
}

TEST_F(QuarterReviewTest, CsvHasOneRowPerKeyResultAndQuotesLikeRfc4180) {
  const std::string csv = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kCsv).value();
  auto rows = ParseCsv(csv);
  // The header and the 5 key results of the 4 active objectives (acme-grow has none).
  ASSERT_EQ(rows.size(), 6u) << csv;
  EXPECT_EQ(rows[0][0], "cycle");
  for (const auto& row : rows) EXPECT_EQ(row.size(), 15u) << csv;
  std::vector<std::string> krs;
  for (size_t i = 1; i < rows.size(); ++i) krs.push_back(rows[i][7]);
  EXPECT_EQ(krs, (std::vector<std::string>{"kr-hires", "kr-time-to-hire", "kr-onboarding-nps",
                                           "kr-handbook", "kr-candidates"}));
  EXPECT_EQ(rows[5],
            (std::vector<std::string>{"2026-q1", "ta-pipeline", kPipelineTitle, "ta", "0.8", "0.8",
                                      "achieved", "kr-candidates", "Qualified candidates", "0",
                                      "200", "150", "120", "0.8", "12"}));
  // The raw text: the title quoted, its quotes doubled.
  EXPECT_NE(csv.find(",\"Fill the pipeline, with \"\"quality\"\", not just volume\","),
            std::string::npos)
      << csv;
}

TEST_F(QuarterReviewTest, CsvNumbersRoundTripToTheJsonValues) {
  json r = ReviewJson();
  auto rows = ParseCsv(ReviewText(state(), "2026-q1", Head(), ReviewFormat::kCsv).value());
  ASSERT_EQ(rows.size(), 6u);
  // hr-hiring's computed score 0.7333… is written with every digit it has.
  EXPECT_EQ(rows[1][1], "hr-hiring");
  EXPECT_EQ(std::stod(rows[1][4]),
            Find(r["objectives"], "hr-hiring")["computed_score"].get<double>())
      << rows[1][4];
  EXPECT_EQ(std::stod(rows[3][4]),
            Find(r["objectives"], "ops-onboarding")["computed_score"].get<double>())
      << rows[3][4];
}

class LargeValuesTest : public ProjectionsTest {};

TEST_F(LargeValuesTest, ReviewKeepsEveryDigitOfLargeValues) {
  ASSERT_OK(CreateObjective("ta-referrals", "2026-q1", "ta", "Pay for referrals"));
  ASSERT_OK(AddKeyResult("kr-bonus", "ta-referrals", "Referral bonuses paid", 0, 1'250'000,
                         "currency", 1, "EUR"));
  ASSERT_OK(CheckIn("kr-bonus", 1'234'567.5));
  auto review = okr::Review(state(), "2026-q1", Head());
  ASSERT_TRUE(review.ok());
  auto rows = ParseCsv(ReviewText(state(), "2026-q1", Head(), ReviewFormat::kCsv).value());
  ASSERT_EQ(rows.size(), 2u);
  const auto& row = rows[1];
  EXPECT_EQ(row[7], "kr-bonus");
  EXPECT_EQ(row[9], "0");                                  // start
  EXPECT_EQ(row[10], "1250000");                           // original target, not 1.25e+06
  EXPECT_EQ(row[11], "1250000");                           // target
  EXPECT_EQ(row[12], "1234567.5");                         // final, not 1.23457e+06
  EXPECT_EQ(std::stod(row[13]), 1'234'567.5 / 1'250'000);  // progress, every digit
  const std::string md = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kMarkdown).value();
  EXPECT_NE(md.find("| Referral bonuses paid | 0 | 1250000 | 1250000 | 1234567.5 EUR | 99% | 1 |"),
            std::string::npos)
      << md;
}

// --- Spreadsheet and Markdown safety (SPEC §6) ---

class SpreadsheetSafetyTest : public ProjectionsTest {};

// True when a spreadsheet would run `cell` as a formula.
bool RunsAsFormula(const std::string& cell) {
  return !cell.empty() && std::string_view("=+-@\t\r").find(cell.front()) != std::string_view::npos;
}

TEST_F(SpreadsheetSafetyTest, ReviewCsvNeutralisesFormulaTextsButNotNegativeNumbers) {
  ASSERT_OK(
      CreateObjective("ta-formula", "2026-q1", "ta", "=HYPERLINK(\"http://x.example\",\"open\")"));
  ASSERT_OK(AddKeyResult("kr-plus", "ta-formula", "+1 referral a week", -5, -10));
  ASSERT_OK(AddKeyResult("kr-at", "ta-formula", "@SUM(A1)", 0, 1));
  ASSERT_OK(AddKeyResult("kr-minus", "ta-formula", "-x", 0, 1));
  ASSERT_OK(AddKeyResult("kr-quote", "ta-formula", "'quoted", 0, 1));
  ASSERT_OK(AddKeyResult("kr-quotes", "ta-formula", "''twice", 0, 1));
  ASSERT_OK(CheckIn("kr-plus", -7));
  auto review = okr::Review(state(), "2026-q1", Head());
  ASSERT_TRUE(review.ok());
  const std::string csv = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kCsv).value();
  auto rows = ParseCsv(csv);
  ASSERT_EQ(rows.size(), 6u) << csv;
  // Text cells carry one ' in front; numbers, negative ones too, stay numbers.
  EXPECT_EQ(rows[1][2], "'=HYPERLINK(\"http://x.example\",\"open\")");
  EXPECT_EQ(rows[1][7], "kr-plus");
  EXPECT_EQ(rows[1][8], "'+1 referral a week");
  EXPECT_EQ(rows[1][9], "-5");    // start
  EXPECT_EQ(rows[1][11], "-10");  // target
  EXPECT_EQ(rows[1][12], "-7");   // final
  EXPECT_EQ(rows[2][8], "'@SUM(A1)");
  EXPECT_EQ(rows[3][8], "'-x");
  EXPECT_EQ(rows[4][8], "''quoted");
  EXPECT_EQ(rows[5][8], "'''twice");
  const std::vector<size_t> text_columns = {0, 1, 2, 3, 6, 7, 8};
  for (const auto& row : rows) {
    for (size_t c : text_columns) EXPECT_FALSE(RunsAsFormula(row[c])) << row[c];
  }
}

// How many cells a Markdown table row has: pipes not escaped by a backslash
// delimit them (GitHub Flavored Markdown).
size_t TableCells(const std::string& line) {
  size_t pipes = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\')
      ++i;
    else if (line[i] == '|')
      ++pipes;
  }
  return pipes - 1;
}

TEST_F(SpreadsheetSafetyTest, MarkdownKeepsUserTextInsideItsCellAndOnItsLine) {
  ASSERT_OK(CreateObjective("ta-md", "2026-q1", "ta", "Hiring | with pipes"));
  ASSERT_OK(AddKeyResult("kr-md", "ta-md", "a | b \\| c \\", 0, 1, "number", 1, "x|y"));
  ASSERT_OK(Review("ta-md", 0.5, "partially", "first line\n| x | y |\n# not a heading",
                   "one\r\n## nor this"));
  auto review = okr::Review(state(), "2026-q1", Head());
  ASSERT_TRUE(review.ok());
  const std::string md = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kMarkdown).value();
  std::istringstream lines(md);
  bool found_row = false;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.rfind("| x", 0), 0u) << md;
    EXPECT_NE(line, "# not a heading") << md;
    EXPECT_NE(line, "## nor this") << md;
    if (line.rfind("| a ", 0) == 0) {
      found_row = true;
      EXPECT_EQ(TableCells(line), 7u) << line;
    }
  }
  EXPECT_TRUE(found_row) << md;
  EXPECT_NE(md.find("Reflection: first line \\| x \\| y \\| # not a heading"), std::string::npos)
      << md;
}

// A title written as Markdown markup is shown as the text it is: no link,
// image, raw HTML or emphasis comes out of user text in a review that is
// pasted into a wiki.
TEST_F(SpreadsheetSafetyTest, MarkdownShowsUserMarkupAsText) {
  const std::string title =
      "[x](javascript:alert(1)) <img src=x onerror=alert(1)> *b* _e_ `c` ~~s~~ &amp; \\";
  ASSERT_OK(CreateObjective("ta-markup", "2026-q1", "ta", title));
  ASSERT_OK(AddKeyResult("kr-markup", "ta-markup", "<b>bold</b> [link]", 0, 1));
  const std::string md = ReviewText(state(), "2026-q1", Head(), ReviewFormat::kMarkdown).value();
  EXPECT_NE(md.find("## \\[x\\](javascript:alert(1)) \\<img src=x onerror=alert(1)\\> \\*b\\* "
                    "\\_e\\_ \\`c\\` \\~\\~s\\~\\~ \\&amp; \\\\ (ta-markup)"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| \\<b\\>bold\\</b\\> \\[link\\] |"), std::string::npos) << md;
}

// --- Diff ---

// Checks that `got` has every field of `want` with its value (and maybe more).
void ExpectFields(const json& got, const json& want) {
  for (const auto& [field, value] : want.items()) {
    const json actual = got.is_object() && got.contains(field) ? got[field] : json();
    EXPECT_EQ(actual, value) << field << " of " << got.dump();
  }
}

TEST_F(QuarterReviewTest, DiffBetweenTwoSeqsListsCreatedChangedAndArchived) {
  json d = Diff(state(), seq_week2_, seq_target_moved_, "");
  EXPECT_EQ(d["from"], seq_week2_);
  EXPECT_EQ(d["to"], seq_target_moved_);
  ASSERT_EQ(d["created"].size(), 1u) << d["created"].dump();
  ExpectFields(
      d["created"][0],
      {{"entity", "noor"}, {"kind", "unit"}, {"recorded_at", "2026-01-28T09:00:00.000000Z"}});

  ASSERT_EQ(d["changed"].size(), 3u) << d["changed"].dump();
  struct Change {
    const char *entity, *field;
    json before, after;
    const char* reason;
    json more;  // further fields checked
  };
  const Change changes[] = {
      {"ld-academy", "state", "active", "archived", "Moved to Q2", json::object()},
      {"ops-onboarding",
       "owner",
       "hr-ops",
       "jonas",
       "Jonas leads onboarding now",
       {{"actor", "admin"}, {"recorded_at", "2026-02-02T14:00:00.000000Z"}}},
      {"kr-candidates",
       "target",
       200.0,
       150.0,
       "Engineering hiring freeze",
       {{"actor", "maria"}, {"seq", seq_target_moved_}}},
  };
  for (size_t i = 0; i < std::size(changes); ++i) {
    const Change& c = changes[i];
    SCOPED_TRACE(c.entity);
    const json& got = d["changed"][i];
    ExpectFields(got, {{"entity", c.entity},
                       {"field", c.field},
                       {"before", c.before},
                       {"after", c.after},
                       {"reason", c.reason}});
    ExpectFields(got, c.more);
  }

  ASSERT_EQ(d["archived"].size(), 1u);
  ExpectFields(d["archived"][0], {{"entity", "ld-academy"}, {"kind", "objective"}});
  // Weeks 3 to 6: 3 + 4 + 3 + 3 check-ins.
  EXPECT_EQ(d["check_ins"].size(), 13u);
  EXPECT_TRUE(d["comments"].empty());
}

TEST_F(QuarterReviewTest, DiffOfOneCycleLeavesOutUnits) {
  json d = Diff(state(), seq_week2_, seq_target_moved_, "2026-q1");
  EXPECT_TRUE(d["created"].empty()) << d["created"].dump();
  EXPECT_EQ(d["changed"].size(), 3u);
  EXPECT_EQ(d["check_ins"].size(), 13u);
  // The rest of the quarter: the comment, the close and the reviews.
  json rest = Diff(state(), seq_target_moved_, Head(), "2026-q1");
  ASSERT_EQ(rest["comments"].size(), 1u);
  EXPECT_EQ(rest["comments"][0]["actor"], "amara");
  EXPECT_EQ(rest["comments"][0]["text"], "Referrals are paying off");
  std::vector<std::string> fields;
  for (const json& c : rest["changed"])
    fields.push_back(c["entity"].get<std::string>() + "." + c["field"].get<std::string>());
  EXPECT_EQ(fields, (std::vector<std::string>{"2026-q1.state", "hr-hiring.review",
                                              "ta-pipeline.review", "ops-onboarding.review"}));
}

// --- Lint, one rule at a time ---

class LintTest : public ProjectionsTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ProjectionsTest::SetUp());
    ASSERT_OK(CreateObjective("acme-grow", "2026-q1", "acme", "Grow to 250 people"));
  }
};

TEST_F(LintTest, SixObjectivesForOneOwnerAreTooMany) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK(
        CreateObjective("ta-" + std::to_string(i), "2026-q1", "ta", "Objective", {"acme-grow"}));
  }
  EXPECT_TRUE(LintFindings("2026-q1", "too_many_objectives").empty());
  ASSERT_OK(CreateObjective("ta-6", "2026-q1", "ta", "One too many", {"acme-grow"}));
  json findings = LintFindings("2026-q1", "too_many_objectives");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]["entity"], "ta");
  EXPECT_EQ(findings[0]["message"], "ta has 6 active objectives in 2026-q1; keep it to 5 or fewer");
  // Another cycle counts on its own; archived objectives do not count.
  EXPECT_TRUE(LintFindings("2026-q2", "too_many_objectives").empty());
  ASSERT_OK(Archive("ta-6"));
  EXPECT_TRUE(LintFindings("2026-q1", "too_many_objectives").empty());
}

TEST_F(LintTest, SixKeyResultsOnOneObjectiveAreTooMany) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK(AddKeyResult("kr-" + std::to_string(i), "acme-grow", "Key result", 0, 10));
  }
  EXPECT_TRUE(LintFindings("2026-q1", "too_many_key_results").empty());
  ASSERT_OK(AddKeyResult("kr-6", "acme-grow", "One too many", 0, 10));
  json findings = LintFindings("2026-q1", "too_many_key_results");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]["entity"], "acme-grow");
  ASSERT_OK(RemoveKeyResult("kr-6"));
  EXPECT_TRUE(LintFindings("2026-q1", "too_many_key_results").empty());
}

TEST_F(LintTest, TeamObjectiveAlignedToNothingIsUnaligned) {
  ASSERT_OK(CreateObjective("ta-alone", "2026-q1", "ta", "On our own"));
  ASSERT_OK(CreateObjective("ta-aligned", "2026-q1", "ta", "Together", {"acme-grow"}));
  json findings = LintFindings("2026-q1", "unaligned");
  // The company's own objective needs no parent.
  ASSERT_EQ(findings.size(), 1u) << findings.dump();
  EXPECT_EQ(findings[0]["entity"], "ta-alone");
  ASSERT_OK(Align("ta-alone", {"acme-grow"}));
  EXPECT_TRUE(LintFindings("2026-q1", "unaligned").empty());
}

TEST_F(LintTest, KeyResultWithoutCheckInForFifteenDaysIsStale) {
  ASSERT_OK(AddKeyResult("kr-hires", "acme-grow", "Hires made", 0, 20));
  NextWriteAt(At("2026-01-06T09:00:00Z"));
  ASSERT_OK(CheckIn("kr-hires", 3));
  SetNow(At("2026-01-19T09:00:00Z"));  // 13 days later
  EXPECT_TRUE(LintFindings("2026-q1", "stale").empty());
  SetNow(At("2026-01-21T09:00:00Z"));  // 15 days later
  json findings = LintFindings("2026-q1", "stale");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]["entity"], "kr-hires");
  EXPECT_EQ(findings[0]["message"], "no check-in since 2026-01-06 (more than 14 days)");
  // A check-in measured recently clears it.
  ASSERT_OK(CheckIn("kr-hires", 5, At("2026-01-20T09:00:00Z")));
  EXPECT_TRUE(LintFindings("2026-q1", "stale").empty());
}

TEST_F(LintTest, KeyResultOfAClosedCycleIsNotStale) {
  ASSERT_OK(AddKeyResult("kr-hires", "acme-grow", "Hires made", 0, 20));
  SetNow(At("2026-02-15T09:00:00Z"));
  ASSERT_EQ(LintFindings("2026-q1", "stale").size(), 1u);
  ASSERT_OK(Close("2026-q1"));
  EXPECT_TRUE(LintFindings("2026-q1", "stale").empty());
}

TEST_F(LintTest, KeyResultOfACycleNotYetStartedIsNotStale) {
  // Planned in January for Q2: there is nothing to check in before April.
  ASSERT_OK(CreateObjective("acme-q2", "2026-q2", "acme", "Open the second office"));
  ASSERT_OK(AddKeyResult("kr-desks", "acme-q2", "Desks filled", 0, 40));
  SetNow(At("2026-03-20T09:00:00Z"));
  EXPECT_TRUE(LintFindings("2026-q2", "stale").empty());
  SetNow(At("2026-04-10T09:00:00Z"));  // 9 days into the quarter
  EXPECT_TRUE(LintFindings("2026-q2", "stale").empty());
  SetNow(At("2026-04-16T09:00:00Z"));  // 15 days into the quarter
  json findings = LintFindings("2026-q2", "stale");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]["entity"], "kr-desks");
  EXPECT_EQ(findings[0]["message"], "no check-in since 2026-04-01 (more than 14 days)");
}

TEST_F(LintTest, TargetMovedAfterTheCycleStartedIsFlagged) {
  ASSERT_OK(AddKeyResult("kr-hires", "acme-grow", "Hires made", 0, 20));
  EXPECT_TRUE(LintFindings("2026-q1", "moved_goalposts").empty());
  NextWriteAt(At("2026-02-16T12:00:00Z"));
  ASSERT_OK(MoveTarget("kr-hires", 15, "Engineering hiring freeze", "maria"));
  json findings = LintFindings("2026-q1", "moved_goalposts");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]["entity"], "kr-hires");
  EXPECT_EQ(
      findings[0]["message"],
      "target changed on 2026-02-16 by maria, after the cycle started (Engineering hiring freeze)");
  // A start moved later is flagged too; a new title is not a goalpost.
  okr::UpdateKeyResult start;
  start.id = "kr-hires";
  start.start = 2;
  ASSERT_OK(Run(start));
  okr::UpdateKeyResult title;
  title.id = "kr-hires";
  title.title = "People hired";
  ASSERT_OK(Run(title));
  EXPECT_EQ(LintFindings("2026-q1", "moved_goalposts").size(), 2u);
}

TEST_F(LintTest, ReviewKeepsGoalpostsOfRemovedKeyResultsAndArchivedObjectives) {
  ASSERT_OK(CreateObjective("ta-pipeline", "2026-q1", "ta", "Pipeline", {"acme-grow"}));
  ASSERT_OK(AddKeyResult("kr-candidates", "ta-pipeline", "Candidates", 0, 200));
  ASSERT_OK(AddKeyResult("kr-events", "ta-pipeline", "Events", 0, 6));
  ASSERT_OK(CreateObjective("ld-academy", "2026-q1", "l-and-d", "Academy", {"acme-grow"}));
  ASSERT_OK(AddKeyResult("kr-courses", "ld-academy", "Courses", 0, 10));
  NextWriteAt(At("2026-02-10T10:00:00Z"));
  ASSERT_OK(MoveTarget("kr-candidates", 100, "halved", "maria"));
  ASSERT_OK(RemoveKeyResult("kr-candidates"));  // moved, then dropped
  ASSERT_OK(MoveTarget("kr-courses", 4, "budget cut", "li"));
  ASSERT_OK(Archive("ld-academy"));
  auto review = okr::Review(state(), "2026-q1", Head());
  ASSERT_TRUE(review.ok());
  const json& moved = (*review)["moved_goalposts"];
  ASSERT_EQ(moved.size(), 2u) << moved.dump();
  EXPECT_EQ(moved[0]["key_result"], "kr-courses");
  EXPECT_EQ(moved[0]["objective"], "ld-academy");
  EXPECT_EQ(moved[0]["before"], 10.0);
  EXPECT_EQ(moved[0]["after"], 4.0);
  EXPECT_EQ(moved[0]["actor"], "li");
  EXPECT_EQ(moved[1]["key_result"], "kr-candidates");
  EXPECT_EQ(moved[1]["before"], 200.0);
  EXPECT_EQ(moved[1]["after"], 100.0);
  EXPECT_EQ(moved[1]["reason"], "halved");
  // The removed key result itself is no longer part of its objective.
  const json& pipeline = (*review)["objectives"][1];
  ASSERT_EQ(pipeline["id"], "ta-pipeline");
  ASSERT_EQ(pipeline["key_results"].size(), 1u);
  EXPECT_EQ(pipeline["key_results"][0]["id"], "kr-events");
}

TEST_F(LintTest, TargetChangedBeforeTheCycleStartsIsNotAMovedGoalpost) {
  // Planning Q2 in January: changes before Apr 1 are planning, not moving goalposts.
  ASSERT_OK(CreateObjective("acme-q2", "2026-q2", "acme", "Open the second office"));
  ASSERT_OK(AddKeyResult("kr-desks", "acme-q2", "Desks filled", 0, 40));
  ASSERT_OK(MoveTarget("kr-desks", 50, "bigger office"));
  EXPECT_TRUE(LintFindings("2026-q2", "moved_goalposts").empty());
  NextWriteAt(At("2026-04-15T12:00:00Z"));
  ASSERT_OK(MoveTarget("kr-desks", 45, "landlord delay"));
  ASSERT_EQ(LintFindings("2026-q2", "moved_goalposts").size(), 1u);
  // The review's original target is the one in force when the cycle started.
  auto review = okr::Review(state(), "2026-q2", Head());
  ASSERT_TRUE(review.ok());
  const json& kr = (*review)["objectives"][0]["key_results"][0];
  EXPECT_EQ(kr["original_target"], 50.0);
  EXPECT_EQ(kr["target"], 45.0);
  ASSERT_EQ((*review)["moved_goalposts"].size(), 1u);
  EXPECT_EQ((*review)["moved_goalposts"][0]["before"], 50.0);
  EXPECT_EQ((*review)["moved_goalposts"][0]["after"], 45.0);
  EXPECT_EQ((*review)["moved_goalposts"][0]["reason"], "landlord delay");
}

}  // namespace
}  // namespace okr
