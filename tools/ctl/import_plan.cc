// The plan of an import: which planner reads the file, the ids a plan
// gives check-ins, and where a command's field lies in the file.
#include <algorithm>
#include <cassert>
#include <cctype>

#include "tools/ctl/import_internal.h"

namespace okr::ctl {

using import_internal::Part;

std::string ImportError::ToString() const {
  std::string out = file;
  if (at.line > 0) {
    out += ":" + std::to_string(at.line);
    if (at.column > 0) out += ":" + std::to_string(at.column);
  }
  if (!at.field.empty()) out += " (" + at.field + ")";
  return out + ": " + reason;
}

namespace import_internal {

std::string Quoted(const std::string& s) { return "\"" + s.substr(0, 80) + "\""; }

std::string EntityOf(const Command& command) {
  return std::visit(
      [](const auto& c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, RecordCheckIn>)
          return c.key_result;
        else if constexpr (std::is_same_v<T, CloseCycle>)
          return c.id;
        else if constexpr (requires { c.id; })
          return c.id;
        else
          return "";
      },
      command);
}

}  // namespace import_internal

namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// JSON by extension (.json / .csv, any case), else by a first '{'.
bool LooksLikeJson(const std::string& path, std::string_view text) {
  auto ends_with = [&](std::string_view suffix) {
    if (path.size() < suffix.size()) return false;
    return std::equal(suffix.rbegin(), suffix.rend(), path.rbegin(), [](char a, char b) {
      return a == std::tolower(static_cast<unsigned char>(b));
    });
  };
  if (ends_with(".json")) return true;
  if (ends_with(".csv")) return false;
  size_t first = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  return first != std::string_view::npos && text[first] == '{';
}

// A check-in without an id gets one from the file and its place in it
// (okrd's form: ci- and 16 hex digits), so the same file imported
// anywhere, offline or through okrd, gives the same state.
void NameCheckIns(ImportPlan* plan) {
  const std::string file_hex = ToHex(plan->content_hash);
  for (size_t i = 0; i < plan->commands.size(); ++i) {
    if (auto* ci = std::get_if<RecordCheckIn>(&plan->commands[i].command); ci && ci->id.empty()) {
      ci->id = "ci-" + ToHex(Sha256(file_hex + ":" + std::to_string(i))).substr(0, 16);
    }
  }
}

}  // namespace

bool PlanImport(const std::string& path, std::string text, ImportPlan* plan, ImportError* error) {
  *plan = ImportPlan();
  plan->file = path;
  plan->name = BaseName(path);
  plan->content_hash = Sha256(text);
  bool planned = false;
  if (LooksLikeJson(path, text)) {
    plan->format = ImportFormat::kJson;
    // Kept: Locate finds pointers in it when validation refuses.
    plan->text_ = std::move(text);
    planned = import_internal::PlanJson(plan->text_, plan, error);
  } else {
    plan->format = ImportFormat::kCsv;
    planned = import_internal::PlanCsv(text, plan, error, &plan->header_);
  }
  if (!planned) return false;
  // Every record gives at least one command.
  assert(plan->commands.size() >= plan->records);
  NameCheckIns(plan);
  return true;
}

SourceLocation ImportPlan::Locate(size_t index, const std::string& field) const {
  assert(index < commands.size());
  const PlannedCommand& c = commands[index];
  if (format == ImportFormat::kCsv) {
    std::string column = import_internal::CsvColumnOf(c.part, field);
    auto it = std::find(header_.begin(), header_.end(), column);
    if (it == header_.end()) {
      column = import_internal::CsvColumnOf(c.part, "");
      it = std::find(header_.begin(), header_.end(), column);
    }
    size_t number = it == header_.end() ? 0 : static_cast<size_t>(it - header_.begin()) + 1;
    return {c.line, number, column};
  }
  std::string pointer = c.pointer;
  if (!field.empty() && c.part != Part::kCloseCycle) pointer += "/" + field;
  return import_internal::LocateJsonPointer(text_, pointer);
}

std::string ImportPlan::Reason(size_t index) const {
  assert(index < commands.size());
  const PlannedCommand& c = commands[index];
  if (!c.reason.empty()) return c.reason;
  if (format == ImportFormat::kCsv)
    return "imported from " + name + " line " + std::to_string(c.line);
  return "imported from " + name + " " + c.pointer;
}

std::string ImportPlan::IdempotencyKey(size_t index) const {
  return "import-" + ToHex(content_hash).substr(0, 32) + "-" + std::to_string(index);
}

}  // namespace okr::ctl
