// The spreadsheet-safety rule itself (projections/read/spreadsheet.h): which
// text cells get the escape, that the importer's inverse undoes exactly
// one, and that text cells are quoted like any other field. The writers
// that use it are tested in review_test (okrd's review) and okrctl_test
// (export → import → export).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "projections/read/spreadsheet.h"

namespace okr {
namespace {

TEST(SpreadsheetTest, TextsASpreadsheetWouldRunGetOneQuoteInFront) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
      {"+1", "'+1"},
      {"-x", "'-x"},
      {"@SUM(A1)", "'@SUM(A1)"},
      {"\tTab", "'\tTab"},
      {"\rReturn", "'\rReturn"},
      {"'quoted", "''quoted"},
      {"''twice", "'''twice"},
  };
  for (const auto& [text, cell] : cases) {
    EXPECT_EQ(NeutraliseFormula(text), cell) << text;
    EXPECT_EQ(RestoreFormula(cell), text) << cell;
  }
}

TEST(SpreadsheetTest, OtherTextsAreWrittenAsTheyAre) {
  for (const std::string text :
       {"", "Hire well", "1-2 hires", " =not first", "a=b", "\nline", "\xEF\xBB\xBF=bom first"}) {
    EXPECT_EQ(NeutraliseFormula(text), text) << text;
    EXPECT_EQ(RestoreFormula(text), text) << text;
  }
}

TEST(SpreadsheetTest, EveryLeadingByteIsEscapedExactlyWhenTheRuleSaysSo) {
  const std::string leads = "=+-@\t\r'";  // SPEC §6
  for (int b = 0; b < 256; ++b) {
    const std::string text = std::string(1, static_cast<char>(b)) + "x";
    const bool escaped = leads.find(static_cast<char>(b)) != std::string::npos;
    EXPECT_EQ(NeutraliseFormula(text), escaped ? "'" + text : text) << "byte " << b;
    EXPECT_EQ(RestoreFormula(NeutraliseFormula(text)), text) << "byte " << b;
  }
}

TEST(SpreadsheetTest, RestoreTakesOffOneQuoteOnly) {
  EXPECT_EQ(RestoreFormula("'''x"), "''x");
  EXPECT_EQ(RestoreFormula("'"), "");
  EXPECT_EQ(RestoreFormula("x'"), "x'");
}

TEST(SpreadsheetTest, TextCellsAreNeutralisedThenQuoted) {
  EXPECT_EQ(CsvText("=1+2"), "'=1+2");
  EXPECT_EQ(CsvText("=SUM(A1,B1)"), "\"'=SUM(A1,B1)\"");
  EXPECT_EQ(CsvText("@\"x\""), "\"'@\"\"x\"\"\"");
  EXPECT_EQ(CsvText("\rx"), "\"'\rx\"");
  EXPECT_EQ(CsvText("plain"), "plain");
  EXPECT_EQ(CsvField("-5"), "-5");  // numbers are written by CsvField alone
}

}  // namespace
}  // namespace okr
