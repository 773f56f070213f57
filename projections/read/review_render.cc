// The review rendered for people (Markdown) and spreadsheets (CSV), from
// the JSON Review() answers.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "projections/read/review.h"
#include "projections/read/spreadsheet.h"

namespace okr {

using nlohmann::json;

namespace {

std::string Num(const json& v) {
  if (v.is_null()) return "";
  if (v.is_number()) {
    // Every digit the JSON has (a stream's default 6 would turn 1234567
    // into 1.23457e+06), and whole numbers without an exponent.
    const double d = v.get<double>();
    char buf[64];
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) {
      std::snprintf(buf, sizeof buf, "%.0f", d);
      return buf;
    }
    auto end = std::to_chars(buf, buf + sizeof buf, d).ptr;
    return std::string(buf, end);
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string Percent(const json& v) {
  if (!v.is_number()) return "–";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(0);
  os << v.get<double>() * 100 << "%";
  return os.str();
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

// User text inside Markdown, on one line: a pipe would end a table cell
// and a line break would start a new block, so neither gets through as
// itself; a backslash is escaped too, or "\\|" would unescape the pipe.
std::string Cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string ReviewMarkdown(const json& r) {
  std::ostringstream md;
  const json& c = r["cycle"];
  md << "# Review of " << Cell(Str(c["name"])) << " (" << Str(c["id"]) << ", " << Str(c["starts"])
     << " to " << Str(c["ends"]) << ", " << Str(c["state"]) << ")\n\n";
  md << "Achieved: " << r["achieved"].size() << " · partially: " << r["partially"].size()
     << " · missed: " << r["missed"].size() << " · not reviewed: " << r["unreviewed"].size()
     << " · check-ins: " << r["check_ins"].get<size_t>() << "\n";
  for (const json& o : r["objectives"]) {
    md << "\n## " << Cell(Str(o["title"])) << " (" << Str(o["id"]) << ")\n\n";
    md << "Owner: " << Str(o["owner"]) << " · computed score " << Percent(o["computed_score"])
       << " · reviewed score " << Percent(o["score"]) << " · outcome "
       << (o["outcome"].is_null() ? "not reviewed" : Str(o["outcome"])) << "\n\n";
    if (!Str(o["reflection"]).empty()) md << "Reflection: " << Cell(Str(o["reflection"])) << "\n\n";
    if (!Str(o["lessons"]).empty()) md << "Lessons: " << Cell(Str(o["lessons"])) << "\n\n";
    if (o["key_results"].empty()) {
      md << "No key results of its own: its score rolls up from the objectives aligned to it.\n";
      continue;
    }
    md << "| key result | start | original target | target | final | progress | check-ins |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const json& k : o["key_results"]) {
      md << "| " << Cell(Str(k["title"])) << " | " << Num(k["start"]) << " | "
         << Num(k["original_target"]) << " | " << Num(k["target"]) << " | " << Num(k["final"])
         << " " << Cell(Str(k["unit"])) << " | " << Percent(k["progress"]) << " | "
         << k["check_ins"].get<size_t>() << " |\n";
    }
  }
  md << "\n## Moved goalposts\n\n";
  if (r["moved_goalposts"].empty()) {
    md << "None.\n";
  } else {
    md << "| key result | field | before | after | by | when | reason |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const json& g : r["moved_goalposts"]) {
      md << "| " << Str(g["key_result"]) << " | " << Str(g["field"]) << " | " << Num(g["before"])
         << " | " << Num(g["after"]) << " | " << Cell(Str(g["actor"])) << " | "
         << Str(g["recorded_at"]) << " | " << Cell(Str(g["reason"])) << " |\n";
    }
  }
  return md.str();
}

std::string ReviewCsv(const json& r) {
  std::ostringstream csv;
  csv << "cycle,objective,objective_title,owner,computed_score,score,outcome,key_result,"
         "key_result_title,start,original_target,target,final,progress,check_ins\r\n";
  std::string cycle = Str(r["cycle"]["id"]);
  for (const json& o : r["objectives"]) {
    for (const json& k : o["key_results"]) {
      csv << CsvText(cycle) << ',' << CsvText(Str(o["id"])) << ',' << CsvText(Str(o["title"]))
          << ',' << CsvText(Str(o["owner"])) << ',' << Num(o["computed_score"]) << ','
          << Num(o["score"]) << ',' << CsvText(Str(o["outcome"])) << ',' << CsvText(Str(k["id"]))
          << ',' << CsvText(Str(k["title"])) << ',' << Num(k["start"]) << ','
          << Num(k["original_target"]) << ',' << Num(k["target"]) << ',' << Num(k["final"]) << ','
          << Num(k["progress"]) << ',' << Num(k["check_ins"]) << "\r\n";
    }
  }
  return csv.str();
}

}  // namespace okr
