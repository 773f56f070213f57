// The review rendered for people (Markdown) and spreadsheets (CSV), an
// objective at a time, with the same numbers its JSON has.
#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string_view>

#include "eventstore/base/time.h"
#include "projections/read/review.h"
#include "projections/read/shown.h"
#include "projections/read/spreadsheet.h"

namespace okr {

using nlohmann::json;

namespace {

// Every digit the JSON has (a stream's default 6 would turn 1234567 into
// 1.23457e+06), and whole numbers without an exponent; none: empty.
std::string Num(std::optional<double> v) {
  if (!v) return "";
  const double d = *v;
  char buf[64];
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", d);
    return buf;
  }
  auto end = std::to_chars(buf, buf + sizeof buf, d).ptr;
  return std::string(buf, end);
}

std::string Percent(std::optional<double> v) {
  if (!v) return "–";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(0);
  os << *v * 100 << "%";
  return os.str();
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

// User text inside Markdown, on one line, read as the text it is: a pipe
// would end a table cell and a line break would start a new block, so
// neither gets through as itself; and every character that makes inline
// markup (a link or an image, raw HTML or an autolink, emphasis, code, an
// entity) is escaped with a backslash, so a title such as
// "[x](javascript:…)" or "<img onerror=…>" is shown, never rendered, by
// whatever renders the review. A backslash is escaped too, or a title's
// "\\|" would unescape the pipe.
std::string Cell(std::string_view s) {
  static constexpr std::string_view kInlineMarkup = "\\|[]<>*_`~&";
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') {
      out += ' ';
      continue;
    }
    if (kInlineMarkup.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// The CSV review's header row: its columns, every row has as many.
constexpr std::string_view kCsvHeader =
    "cycle,objective,objective_title,owner,computed_score,score,outcome,key_result,"
    "key_result_title,start,original_target,target,final,progress,check_ins\r\n";

// `text` in a fenced block whose fence is longer than any run of backticks
// in it (an origin may hold some), so no line of it closes the block.
std::string Fenced(const std::string& text) {
  assert(!text.empty() && text.back() == '\n');
  size_t longest = 0;
  size_t run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(std::max<size_t>(3, longest + 1), '`');
  return fence + "\n" + text + fence;
}

// A consistency proof's hashes (base64), `between` each two.
std::string JoinedProof(const json& proof, const char* between) {
  std::string out;
  for (const json& hash : proof) out += (out.empty() ? "" : between) + Str(hash);
  return out;
}

// A replica's checkpoint (SPEC §9): the primary's newest it holds, of a
// tree larger than the review's as_of, and the consistency proof from it.
std::string MarkdownReplicaCheckpoint(const json& checkpoint) {
  const json& consistency = checkpoint["consistency"];
  const std::string size = std::to_string(checkpoint["size"].get<uint64_t>());
  const std::string from = std::to_string(consistency["from"].get<uint64_t>());
  return "\n## Checkpoint\n\nThis okrd is a read replica and signs nothing. The newest checkpoint "
         "its primary signed that it holds: size " +
         size + ", root `" + Str(checkpoint["root"]) + "` (base64).\n\n" +
         Fenced(Str(checkpoint["note"])) + "\n\nThis review's as_of is the tree of size " + from +
         ", root `" + Str(consistency["from_root"]) +
         "` (base64). The consistency proof from size " + from + " to size " + size +
         " (RFC 9162 §2.1.4), a base64 hash per line:\n\n" +
         Fenced(JoinedProof(consistency["hashes"], "\n") + "\n") +
         "\n\nTo prove it: verify the note with the log's key (GET /v1/log/key, recorded by its "
         "log.signing_key event), then the proof from this root to the note's. The primary "
         "answers the same proof at GET /v1/log/proof/consistency?from=" +
         from + "&to=" + size + ".\n";
}

// The section that ends a Markdown review: the log's signed checkpoint at
// its as_of, the note verbatim (Fenced), and how a reader proves it. A replica's (SPEC §9)
// may be of a larger tree, with the consistency proof from as_of's.
std::string MarkdownCheckpoint(const json& checkpoint) {
  if (checkpoint.contains("consistency")) return MarkdownReplicaCheckpoint(checkpoint);
  const std::string size = std::to_string(checkpoint["size"].get<uint64_t>());
  return "\n## Checkpoint\n\nThe log's signed checkpoint at this review's as_of: size " + size +
         ", root `" + Str(checkpoint["root"]) + "` (base64).\n\n" +
         Fenced(Str(checkpoint["note"])) +
         "\n\nTo prove it: verify the note with the log's key (GET /v1/log/key, recorded by its "
         "log.signing_key event), then this root with GET "
         "/v1/log/proof/consistency?from=" +
         size +
         "&to=N against a checkpoint of size N you trust, such as the one okrctl audit keeps.\n";
}

// The rows that end a CSV review: "#checkpoint", the field's name (size,
// root, note; on a replica also from, from_root and proof, the hashes
// separated by spaces) and its value, then empty cells to the header's
// width, so the file stays one table. Text cells are written as every text
// cell is (CsvText): a note or root starting with a formula's character
// gets the escape in front.
std::string CsvCheckpoint(const json& checkpoint) {
  const std::string pad(std::count(kCsvHeader.begin(), kCsvHeader.end(), ',') - 2, ',');
  auto row = [&](const char* name, const std::string& cell) {
    return std::string("#checkpoint,") + name + "," + cell + pad + "\r\n";
  };
  std::string out = row("size", std::to_string(checkpoint["size"].get<uint64_t>())) +
                    row("root", CsvText(Str(checkpoint["root"]))) +
                    row("note", CsvText(Str(checkpoint["note"])));
  if (!checkpoint.contains("consistency")) return out;
  const json& consistency = checkpoint["consistency"];
  return out + row("from", std::to_string(consistency["from"].get<uint64_t>())) +
         row("from_root", CsvText(Str(consistency["from_root"]))) +
         row("proof", CsvText(JoinedProof(consistency["hashes"], " ")));
}

}  // namespace

void ReviewPlan::WriteText(ReviewFormat format, std::string* text, const json* checkpoint,
                           const std::function<void()>& pause) {
  assert(format != ReviewFormat::kJson);
  // Without a signing key okrd signs nothing: the JSON's checkpoint is null.
  const bool with_checkpoint = checkpoint != nullptr && checkpoint->is_object();
  if (format == ReviewFormat::kMarkdown) {
    WriteMarkdown(text, pause);
    if (with_checkpoint) *text += MarkdownCheckpoint(*checkpoint);
  } else {
    WriteCsv(text, pause);
    if (with_checkpoint) *text += CsvCheckpoint(*checkpoint);
  }
}

void ReviewPlan::WriteMarkdown(std::string* text, const std::function<void()>& pause) {
  std::ostringstream md;
  auto hand_on = [&] {  // what is written so far, to *text
    *text += std::move(md).str();
    md.str("");
    if (pause) pause();
  };
  const json c = at_end_.CycleJson(cycle_);
  md << "# Review of " << Cell(Str(c["name"])) << " (" << Str(c["id"]) << ", " << Str(c["starts"])
     << " to " << Str(c["ends"]) << ", " << Str(c["state"]) << ")\n\n";
  md << "Achieved: " << by_outcome_[0] << " · partially: " << by_outcome_[1]
     << " · missed: " << by_outcome_[2] << " · not reviewed: " << by_outcome_[3]
     << " · check-ins: " << check_ins_ << "\n";
  for (const Objective* o : objectives_) {
    const ObjectiveFields& f = *o->FieldsAt(as_of_);
    if (f.archived) continue;
    const ReviewFields* review = f.review ? &*f.review : nullptr;
    md << "\n## " << Cell(f.title) << " (" << o->id << ")\n\n";
    md << "Owner: " << f.owner << " · computed score " << Percent(at_end_.ObjectiveProgress(*o))
       << " · reviewed score " << Percent(review ? std::optional(review->score) : std::nullopt)
       << " · outcome " << (review ? review->outcome : "not reviewed") << "\n\n";
    if (review && !review->reflection.empty()) {
      md << "Reflection: "
         << ShownText({review->reflection, review->meta.seq, PersonalField::REFLECTION}, Cell)
         << "\n\n";
    }
    if (review && !review->lessons.empty()) {
      md << "Lessons: "
         << ShownText({review->lessons, review->meta.seq, PersonalField::LESSONS}, Cell) << "\n\n";
    }
    const auto krs = at_end_.KeyResultsOf(*o);
    if (krs.empty()) {
      md << "No key results of its own: its score rolls up from the objectives aligned to it.\n";
      hand_on();
      continue;
    }
    md << "| key result | start | original target | target | final | progress | check-ins |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const KeyResult* kr : krs) {
      const KeyResultLine line = LineOf(*kr);
      md << "| " << Cell(line.fields.title) << " | " << Num(line.fields.start) << " | "
         << Num(line.original_target) << " | " << Num(line.fields.target) << " | "
         << Num(line.final_value) << " " << Cell(line.fields.unit) << " | "
         << Percent(line.progress) << " | " << line.check_ins << " |\n";
    }
    hand_on();
  }
  md << "\n## Moved goalposts\n\n";
  bool any = false;
  for (const Objective* o : objectives_) {
    ForEachGoalpost(*o, [&](const Goalpost& g) {
      if (!any) {
        md << "| key result | field | before | after | by | when | reason |\n"
           << "|---|---|---|---|---|---|---|\n";
        any = true;
      }
      md << "| " << g.kr.id << " | " << (g.target ? "target" : "start") << " | " << Num(g.before)
         << " | " << Num(g.after) << " | " << Cell(g.meta.actor) << " | "
         << FormatTimeUs(g.meta.recorded_at_us) << " | "
         << ShownText({g.meta.reason, g.meta.seq, PersonalField::REASON}, Cell) << " |\n";
    });
    hand_on();
  }
  if (!any) md << "None.\n";
  *text += std::move(md).str();
}

void ReviewPlan::WriteCsv(std::string* text, const std::function<void()>& pause) {
  *text += kCsvHeader;
  const std::string cycle = CsvText(cycle_.id);
  for (const Objective* o : objectives_) {
    const ObjectiveFields& f = *o->FieldsAt(as_of_);
    if (f.archived) continue;
    const ReviewFields* review = f.review ? &*f.review : nullptr;
    // The objective's cells, the same on each of its key results' rows.
    const std::string objective = cycle + ',' + CsvText(o->id) + ',' + CsvText(f.title) + ',' +
                                  CsvText(f.owner) + ',' + Num(at_end_.ObjectiveProgress(*o)) +
                                  ',' + Num(review ? std::optional(review->score) : std::nullopt) +
                                  ',' + CsvText(review ? review->outcome : "") + ',';
    for (const KeyResult* kr : at_end_.KeyResultsOf(*o)) {
      const KeyResultLine line = LineOf(*kr);
      *text += objective + CsvText(kr->id) + ',' + CsvText(line.fields.title) + ',' +
               Num(line.fields.start) + ',' + Num(line.original_target) + ',' +
               Num(line.fields.target) + ',' + Num(line.final_value) + ',' + Num(line.progress) +
               ',' + std::to_string(line.check_ins) + "\r\n";
    }
    if (pause) pause();
  }
}

}  // namespace okr
