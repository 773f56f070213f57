#include "tests/printed_checkpoint.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <vector>

#include "projections/read/spreadsheet.h"
#include "tools/ctl/csv.h"

namespace okr::testing {
namespace {

// The Markdown section: the note between two fences of the same length,
// and the line telling how to prove it, which names the size.
std::optional<PrintedCheckpoint> ReadMarkdown(const std::string& text) {
  static const std::regex kSection(
      "\n## Checkpoint\n\nThe log's signed checkpoint at this review's as_of: size ([0-9]+), "
      "root `([A-Za-z0-9+/=]+)` \\(base64\\)\\.\n\n(```+)\n([\\s\\S]*?\n)\\3\n\n"
      "To prove it: [^\n]*/v1/log/proof/consistency\\?from=\\1&to=N[^\n]*\n$");
  std::smatch m;
  if (!std::regex_search(text, m, kSection)) {
    ADD_FAILURE() << "no checkpoint section at the end of\n" << text;
    return std::nullopt;
  }
  // CommonMark: a line of only backticks, at least as many as the opening
  // fence's, closes the block; none in the note may.
  const std::string fence = m[3];
  std::istringstream note(m[4]);
  for (std::string line; std::getline(note, line);) {
    const bool closes = line.size() >= fence.size() && line.find_first_not_of('`') == line.npos;
    EXPECT_FALSE(closes) << "the note's line " << line << " closes the fence " << fence;
  }
  PrintedCheckpoint printed;
  printed.review = text.substr(0, m.position(0));
  printed.size = std::stoull(m[1]);
  printed.root = m[2];
  printed.note = m[4];
  return printed;
}

// The CSV rows: #checkpoint, the field's name and its value, as the last
// records: size, root and note, then on a replica's review of an older
// tree from, from_root and proof. Each value is read back as a text cell
// is (RestoreFormula): a root may start with '+'.
std::optional<PrintedCheckpoint> ReadCsv(const std::string& text) {
  std::vector<ctl::CsvRecord> records;
  ctl::CsvError error;
  if (!ctl::ParseCsv(text, &records, &error)) {
    ADD_FAILURE() << "not CSV: line " << error.line << ": " << error.reason;
    return std::nullopt;
  }
  for (const ctl::CsvRecord& r : records) {
    EXPECT_EQ(r.fields.size(), records.front().fields.size()) << "record at line " << r.line;
  }
  const size_t start = text.find("\r\n#checkpoint,size,");
  size_t first = records.size();
  while (first > 1 && !records[first - 1].fields.empty() &&
         records[first - 1].fields[0] == "#checkpoint") {
    --first;
  }
  const size_t rows = records.size() - first;
  if ((rows != 3 && rows != 6) || start == std::string::npos) {
    ADD_FAILURE() << "no checkpoint rows at the end of\n" << text;
    return std::nullopt;
  }
  const char* names[] = {"size", "root", "note", "from", "from_root", "proof"};
  std::string values[6];
  for (size_t i = 0; i < rows; ++i) {
    const std::vector<std::string>& f = records[first + i].fields;
    EXPECT_EQ(f[1], names[i]);
    values[i] = RestoreFormula(f[2]);
    for (size_t k = 3; k < f.size(); ++k) EXPECT_EQ(f[k], "") << names[i];
  }
  PrintedCheckpoint printed;
  printed.review = text.substr(0, start + 2);
  printed.size = std::stoull(values[0]);
  printed.root = values[1];
  printed.note = values[2];
  if (rows == 6) {
    printed.consistency =
        PrintedCheckpoint::Consistency{std::stoull(values[3]), values[4], values[5]};
  }
  return printed;
}

}  // namespace

std::optional<PrintedCheckpoint> ReadPrintedCheckpoint(const std::string& text,
                                                       const std::string& format) {
  return format == "md" ? ReadMarkdown(text) : ReadCsv(text);
}

}  // namespace okr::testing
