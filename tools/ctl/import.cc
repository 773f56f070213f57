#include "tools/ctl/import.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "api/routes/request.h"
#include "eventstore/event_json.h"
#include "eventstore/base/time.h"
#include "tools/ctl/csv.h"

namespace okr::ctl {

using nlohmann::json;
using Part = PlannedCommand::Part;

std::string ImportError::ToString() const {
  std::string out = file;
  if (at.line > 0) {
    out += ":" + std::to_string(at.line);
    if (at.column > 0) out += ":" + std::to_string(at.column);
  }
  if (!at.field.empty()) out += " (" + at.field + ")";
  return out + ": " + reason;
}

namespace {

// --- CSV columns (docs/IMPORT.md) ---

// Every column the importer knows, in the order export writes them.
const std::vector<std::string>& CsvColumns() {
  static const std::vector<std::string> kColumns = {
      "cycle", "owner",   "objective_id", "objective_title", "parents",      "kr_id",
      "kr_title", "metric", "start",      "target",          "unit",         "current",
      "checkin_date", "kr_owner", "weight", "objective_description"};
  return kColumns;
}

bool RequiredCsvColumn(const std::string& name) {
  static const std::set<std::string> kRequired = {"cycle",  "owner",    "objective_id",
                                                  "objective_title", "kr_id", "kr_title",
                                                  "start",  "target"};
  return kRequired.count(name) > 0;
}

// The cells that belong to a key result: a row without kr_id leaves them empty.
const std::vector<std::string>& KeyResultColumns() {
  static const std::vector<std::string> kColumns = {
      "kr_title", "metric", "start", "target", "unit", "current", "checkin_date", "kr_owner",
      "weight"};
  return kColumns;
}

// Decide's field names mapped to the CSV column that carries them.
std::string CsvColumnOf(Part part, const std::string& field) {
  static const std::map<std::string, std::string> kObjective = {
      {"id", "objective_id"}, {"cycle", "cycle"},       {"owner", "owner"},
      {"title", "objective_title"}, {"description", "objective_description"},
      {"parents", "parents"}, {"", "objective_id"}};
  static const std::map<std::string, std::string> kKeyResult = {
      {"id", "kr_id"},        {"objective", "objective_id"}, {"title", "kr_title"},
      {"owner", "kr_owner"},  {"metric", "metric"},          {"start", "start"},
      {"target", "target"},   {"unit", "unit"},              {"weight", "weight"},
      {"cycle", "cycle"},     {"", "kr_id"}};
  static const std::map<std::string, std::string> kCheckIn = {
      {"value", "current"}, {"measured_at", "checkin_date"}, {"key_result", "kr_id"},
      {"id", "kr_id"},      {"cycle", "cycle"},               {"", "current"}};
  const auto& table = part == Part::kObjective ? kObjective
                      : part == Part::kKeyResult ? kKeyResult
                                                 : kCheckIn;
  auto it = table.find(field);
  if (it == table.end()) it = table.find("");
  return it->second;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string NormaliseHeader(std::string_view s) {
  std::string out;
  for (char c : Trim(s)) {
    if (c == ' ' || c == '-') out.push_back('_');
    else out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Quoted(const std::string& s) { return "\"" + s.substr(0, 80) + "\""; }

// --- Locating a JSON pointer in the text it was parsed from ---

// Walks valid JSON text to the value a pointer names; stops at the deepest
// part of the pointer that exists.
class JsonLocator {
 public:
  explicit JsonLocator(std::string_view text) : t_(text) {}

  size_t Find(const std::vector<std::string>& tokens) {
    p_ = 0;
    return Find(tokens, 0);
  }

 private:
  size_t Find(const std::vector<std::string>& tokens, size_t k) {
    Ws();
    if (k == tokens.size() || p_ >= t_.size()) return p_;
    size_t here = p_;
    if (t_[p_] == '{') {
      ++p_;
      for (;;) {
        Ws();
        if (p_ >= t_.size() || t_[p_] != '"') return here;
        std::string key = ReadString();
        Ws();
        if (p_ < t_.size() && t_[p_] == ':') ++p_;
        Ws();
        if (key == tokens[k]) return Find(tokens, k + 1);
        SkipValue();
        Ws();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        return here;
      }
    }
    if (t_[p_] == '[') {
      ++p_;
      size_t index = 0;
      bool numeric = !tokens[k].empty() &&
                     std::all_of(tokens[k].begin(), tokens[k].end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!numeric) return here;
      size_t wanted = std::stoul(tokens[k]);
      for (;; ++index) {
        Ws();
        if (p_ >= t_.size() || t_[p_] == ']') return here;
        if (index == wanted) return Find(tokens, k + 1);
        SkipValue();
        Ws();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        return here;
      }
    }
    return here;
  }

  void Ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }

  // At a quote: the string's text with simple escapes undone (enough to
  // compare keys).
  std::string ReadString() {
    std::string out;
    ++p_;
    while (p_ < t_.size() && t_[p_] != '"') {
      if (t_[p_] == '\\' && p_ + 1 < t_.size()) {
        out.push_back(t_[p_ + 1]);
        p_ += 2;
        continue;
      }
      out.push_back(t_[p_++]);
    }
    ++p_;
    return out;
  }

  void SkipValue() {
    if (p_ >= t_.size()) return;
    if (t_[p_] == '"') {
      ReadString();
      return;
    }
    if (t_[p_] == '{' || t_[p_] == '[') {
      int depth = 0;
      while (p_ < t_.size()) {
        char c = t_[p_];
        if (c == '"') {
          ReadString();
          continue;
        }
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') {
          if (--depth == 0) {
            ++p_;
            return;
          }
        }
        ++p_;
      }
      return;
    }
    while (p_ < t_.size() && t_[p_] != ',' && t_[p_] != '}' && t_[p_] != ']' && t_[p_] != ' ' &&
           t_[p_] != '\n' && t_[p_] != '\r' && t_[p_] != '\t') {
      ++p_;
    }
  }

  std::string_view t_;
  size_t p_ = 0;
};

std::vector<std::string> PointerTokens(const std::string& pointer) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < pointer.size() && pointer[at] == '/') {
    size_t next = pointer.find('/', at + 1);
    std::string token = pointer.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    // RFC 6901 escapes.
    for (size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
      if (i + 1 < token.size()) token.replace(i, 2, token[i + 1] == '1' ? "/" : "~");
    }
    out.push_back(std::move(token));
    if (next == std::string::npos) break;
    at = next;
  }
  return out;
}

// 1-based line and column (in characters) of byte `offset`.
SourceLocation LineColumn(std::string_view text, size_t offset) {
  SourceLocation at{1, 1, ""};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++at.column;
    }
  }
  return at;
}

// --- CSV planning ---

class CsvPlanner {
 public:
  CsvPlanner(ImportPlan* plan, ImportError* error, std::vector<std::string>* header)
      : plan_(plan), error_(error), header_(header) {}

  bool Plan(std::string_view text) {
    std::vector<CsvRecord> records;
    CsvError csv_error;
    if (!ParseCsv(text, &records, &csv_error)) {
      return Fail({csv_error.line, csv_error.column, ColumnName(csv_error.column)}, csv_error.reason);
    }
    if (records.empty()) return Fail({1, 1, ""}, "the file is empty: expected a header row");
    if (!ReadHeader(records.front())) return false;
    if (records.size() == 1) {
      return Fail({records.front().line, 1, ""}, "the file has a header row but no data rows");
    }
    rows_.reserve(records.size() - 1);
    for (size_t i = 1; i < records.size(); ++i) {
      if (!ReadRow(records[i])) return false;
    }
    plan_->records = rows_.size();
    // Commands in file order, each objective just before its first row
    // (after the objectives of this file it aligns to).
    for (size_t r = 0; r < rows_.size(); ++r) {
      if (!EnsureObjective(rows_[r].objective_id, r)) return false;
      if (rows_[r].kr_id.empty()) continue;
      const Row& row = rows_[r];
      CreateKeyResult kr;
      kr.id = row.kr_id;
      kr.objective = row.objective_id;
      kr.title = row.kr_title;
      kr.owner = row.kr_owner;
      kr.metric = row.metric.empty() ? "number" : row.metric;
      kr.start = row.start;
      kr.target = row.target;
      kr.unit = row.unit;
      kr.weight = row.weight;
      Add(Part::kKeyResult, std::move(kr), row.line);
      if (row.current) {
        RecordCheckIn ci;
        ci.key_result = row.kr_id;
        ci.value = *row.current;
        ci.measured_at_us = row.measured_at_us;
        Add(Part::kCheckIn, std::move(ci), row.line);
      }
    }
    return true;
  }

 private:
  struct Row {
    size_t line = 0;
    std::string cycle, owner, objective_id, objective_title, description, kr_id, kr_title, metric,
        unit, kr_owner;
    std::vector<std::string> parents;
    double start = 0, target = 0, weight = 1;
    std::optional<double> current;
    std::optional<int64_t> measured_at_us;
  };

  bool Fail(SourceLocation at, std::string reason) {
    *error_ = {plan_->file, std::move(at), std::move(reason)};
    return false;
  }

  std::string ColumnName(size_t column) const {
    return column >= 1 && column <= header_->size() ? (*header_)[column - 1] : "";
  }

  int Index(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }

  SourceLocation At(size_t line, const std::string& name) const {
    int i = Index(name);
    return {line, i < 0 ? 0 : static_cast<size_t>(i) + 1, name};
  }

  bool ReadHeader(const CsvRecord& record) {
    const auto& known = CsvColumns();
    if (record.fields.size() > kMaxCsvFields) {
      return Fail({record.line, kMaxCsvFields + 1, ""},
                  "more than " + std::to_string(kMaxCsvFields) + " columns");
    }
    for (size_t i = 0; i < record.fields.size(); ++i) {
      std::string name = NormaliseHeader(record.fields[i]);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return Fail({record.line, i + 1, ""},
                    "unknown column " + Quoted(record.fields[i]) + " (the columns are: " + list + ")");
      }
      if (index_.count(name)) {
        return Fail({record.line, i + 1, name}, "column " + name + " appears twice");
      }
      index_[name] = static_cast<int>(i);
      header_->push_back(name);
    }
    for (const auto& name : known) {
      if (RequiredCsvColumn(name) && !index_.count(name)) {
        return Fail({record.line, record.fields.size() + 1, name}, "missing column " + name);
      }
    }
    return true;
  }

  bool Number(const CsvRecord& record, const std::string& cell, const std::string& name,
              double* out) {
    if (ParseNumber(cell, out)) return true;
    return Fail(At(record.line, name), name + " must be a number, not " + Quoted(cell));
  }

  bool ReadRow(const CsvRecord& record) {
    const size_t columns = header_->size();
    if (record.fields.size() < columns) {
      return Fail({record.line, record.fields.size() + 1, ColumnName(record.fields.size() + 1)},
                  "the row has " + std::to_string(record.fields.size()) + " fields, the header " +
                      std::to_string(columns) + " (missing column " +
                      ColumnName(record.fields.size() + 1) + ")");
    }
    for (size_t i = columns; i < record.fields.size(); ++i) {
      if (!Trim(record.fields[i]).empty()) {
        return Fail({record.line, i + 1, ""}, "the row has " + std::to_string(record.fields.size()) +
                                                  " fields, the header " + std::to_string(columns));
      }
    }
    auto cell = [&](const std::string& name) -> std::string {
      int i = Index(name);
      return i < 0 ? "" : Trim(record.fields[static_cast<size_t>(i)]);
    };
    // A text cell as export wrote it: neutralised against formulas
    // (projections/read/spreadsheet.h), so the escape comes off here.
    auto text = [&](const std::string& name) { return std::string(RestoreFormula(cell(name))); };
    Row row;
    row.line = record.line;
    row.cycle = text("cycle");
    row.owner = text("owner");
    row.objective_id = text("objective_id");
    row.objective_title = text("objective_title");
    row.description = text("objective_description");
    row.kr_id = text("kr_id");
    for (const char* name : {"cycle", "owner", "objective_id", "objective_title"}) {
      if (text(name).empty()) return Fail(At(record.line, name), std::string(name) + " is required");
    }
    std::string parents = text("parents");
    for (size_t at = 0; at <= parents.size();) {
      size_t semi = parents.find(';', at);
      std::string p = Trim(parents.substr(at, semi == std::string::npos ? std::string::npos : semi - at));
      if (!p.empty()) row.parents.push_back(p);
      if (semi == std::string::npos) break;
      at = semi + 1;
    }

    if (row.kr_id.empty()) {
      for (const auto& name : KeyResultColumns()) {
        if (!cell(name).empty()) {
          return Fail(At(record.line, name),
                      "kr_id is empty (a row for the objective alone), so " + name + " must be too");
        }
      }
    } else {
      if (auto [it, fresh] = kr_lines_.emplace(row.kr_id, record.line); !fresh) {
        return Fail(At(record.line, "kr_id"), "duplicate key result id " + row.kr_id +
                                                  " (first on line " + std::to_string(it->second) + ")");
      }
      row.kr_title = text("kr_title");
      row.metric = text("metric");
      row.unit = text("unit");
      row.kr_owner = text("kr_owner");
      for (const char* name : {"start", "target"}) {
        std::string text = cell(name);
        if (text.empty()) return Fail(At(record.line, name), std::string(name) + " is required");
        if (!Number(record, text, name, name[0] == 's' ? &row.start : &row.target)) return false;
      }
      if (std::string w = cell("weight"); !w.empty() && !Number(record, w, "weight", &row.weight)) {
        return false;
      }
      std::string current = cell("current"), date = text("checkin_date");
      if (!current.empty()) {
        double v = 0;
        if (!Number(record, current, "current", &v)) return false;
        row.current = v;
      }
      if (!date.empty()) {
        if (!row.current) {
          return Fail(At(record.line, "checkin_date"),
                      "checkin_date is set but current is empty: a check-in needs its value");
        }
        auto us = ParseRfc3339(date);
        if (!us) {
          return Fail(At(record.line, "checkin_date"),
                      "checkin_date must be a date YYYY-MM-DD (or an RFC 3339 date-time), not " +
                          Quoted(date));
        }
        row.measured_at_us = *us;
      }
    }

    // An objective spans the rows of its key results: they must agree.
    if (auto it = objectives_.find(row.objective_id); it != objectives_.end()) {
      const Row& first = rows_[it->second];
      auto differs = [&](const char* column, bool same) {
        if (same) return false;
        Fail(At(record.line, column), "objective " + row.objective_id + " has another " + column +
                                          " on line " + std::to_string(first.line));
        return true;
      };
      if (differs("cycle", first.cycle == row.cycle) || differs("owner", first.owner == row.owner) ||
          differs("objective_title", first.objective_title == row.objective_title) ||
          differs("parents", first.parents == row.parents) ||
          differs("objective_description", first.description == row.description)) {
        return false;
      }
    } else {
      objectives_.emplace(row.objective_id, rows_.size());
    }
    rows_.push_back(std::move(row));
    return true;
  }

  // Adds the objective of row `r` (and first those of this file it aligns
  // to) unless already added.
  bool EnsureObjective(const std::string& id, size_t r) {
    if (created_.count(id)) return true;
    size_t first = objectives_.at(id);
    const Row& row = rows_[first];
    if (!visiting_.insert(id).second) {
      return Fail(At(rows_[r].line, "parents"), "alignment would form a cycle through " + id);
    }
    for (const auto& parent : row.parents) {
      if (objectives_.count(parent) && !EnsureObjective(parent, first)) return false;
    }
    visiting_.erase(id);
    created_.insert(id);
    CreateObjective o;
    o.id = id;
    o.cycle = row.cycle;
    o.owner = row.owner;
    o.title = row.objective_title;
    o.description = row.description;
    o.parents = row.parents;
    Add(Part::kObjective, std::move(o), row.line);
    return true;
  }

  void Add(Part part, Command command, size_t line) {
    PlannedCommand c{part, std::move(command), line, "", "", std::nullopt};
    plan_->commands.push_back(std::move(c));
  }

  ImportPlan* plan_;
  ImportError* error_;
  std::vector<std::string>* header_;
  std::unordered_map<std::string, int> index_;
  std::vector<Row> rows_;
  std::unordered_map<std::string, size_t> objectives_;  // id → its first row
  std::unordered_map<std::string, size_t> kr_lines_;    // id → its line
  std::set<std::string> created_, visiting_;
};

// --- JSON planning ---

class JsonPlanner {
 public:
  JsonPlanner(ImportPlan* plan, ImportError* error, const std::string& text)
      : plan_(plan), error_(error), text_(text) {}

  bool Plan() {
    json doc;
    try {
      doc = json::parse(text_);
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error …"
      if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
      SourceLocation at = LineColumn(text_, e.byte > 0 ? e.byte - 1 : 0);
      return Fail(at, "not valid JSON: " + what);
    }
    if (!doc.is_object()) return FailAt("", "the file must hold one JSON object (docs/IMPORT.md)");
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      static const std::set<std::string> kKeys = {"format", "version", "units", "cycles",
                                                  "objectives", "check_ins"};
      if (!kKeys.count(it.key())) return FailAt("/" + it.key(), "unknown key " + Quoted(it.key()));
    }
    if (doc.contains("format") && doc["format"] != "okrd-okrs") {
      return FailAt("/format", "format must be \"okrd-okrs\"");
    }
    if (doc.contains("version") && doc["version"] != 1) {
      return FailAt("/version", "this okrctl reads version 1");
    }
    for (const char* list : {"units", "cycles", "objectives", "check_ins"}) {
      if (doc.contains(list) && !doc[list].is_array()) {
        return FailAt(std::string("/") + list, std::string(list) + " must be a list");
      }
    }
    std::vector<size_t> closes;  // cycles to close at the end, by their pointer index
    if (!Units(doc) || !Cycles(doc, &closes) || !Objectives(doc) || !TopLevelCheckIns(doc)) {
      return false;
    }
    for (size_t index : closes) {
      const auto& created = plan_->commands[index];
      PlannedCommand c{Part::kCloseCycle, CloseCycle{std::get<CreateCycle>(created.command).id}, 0,
                       created.pointer + "/state", "", index};
      plan_->commands.push_back(std::move(c));
    }
    return true;
  }

 private:
  bool Fail(SourceLocation at, std::string reason) {
    *error_ = {plan_->file, std::move(at), std::move(reason)};
    return false;
  }
  bool FailAt(const std::string& pointer, std::string reason) {
    JsonLocator locator(text_);
    SourceLocation at = LineColumn(text_, locator.Find(PointerTokens(pointer)));
    at.field = pointer;
    return Fail(at, std::move(reason));
  }

  // Parses one object with the API's own body rules, minus `nested` keys.
  std::optional<Command> Parse(api::WriteRoute route, const std::string& path_id, json object,
                               const std::string& pointer, std::string* reason,
                               const std::vector<std::string>& nested = {}) {
    if (!object.is_object()) {
      FailAt(pointer, "must be an object");
      return std::nullopt;
    }
    for (const auto& key : nested) object.erase(key);
    api::ApiError e;
    auto command = api::ParseCommand(route, path_id, object, reason, &e);
    if (!command) FailAt(e.field.empty() ? pointer : pointer + "/" + e.field, e.message);
    return command;
  }

  bool NewId(const std::string& id, const std::string& pointer) {
    if (id.empty()) return true;  // a check-in without id: assigned by okrd
    if (auto [it, fresh] = ids_.emplace(id, pointer); !fresh) {
      return FailAt(pointer + "/id", "duplicate id " + id + " (first at " + it->second + ")");
    }
    return true;
  }

  size_t Add(Part part, Command command, const std::string& pointer, std::string reason) {
    PlannedCommand c{part, std::move(command), 0, pointer, std::move(reason), std::nullopt};
    plan_->commands.push_back(std::move(c));
    ++plan_->records;
    return plan_->commands.size() - 1;
  }

  // Entities whose parent is in the same list come after that parent.
  template <typename GetParents>
  bool Ordered(size_t count, const std::vector<std::string>& ids, GetParents parents_of,
               const std::string& list, const std::string& field, std::vector<size_t>* order) {
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < count; ++i) at.emplace(ids[i], i);
    std::vector<int> state(count, 0);  // 0 new, 1 visiting, 2 done
    std::function<bool(size_t)> visit = [&](size_t i) {
      if (state[i] == 2) return true;
      if (state[i] == 1) {
        return FailAt("/" + list + "/" + std::to_string(i) + "/" + field,
                      "following " + field + " from " + ids[i] + " leads back to it");
      }
      state[i] = 1;
      for (const auto& p : parents_of(i)) {
        if (auto it = at.find(p); it != at.end() && !visit(it->second)) return false;
      }
      state[i] = 2;
      order->push_back(i);
      return true;
    };
    for (size_t i = 0; i < count; ++i) {
      if (!visit(i)) return false;
    }
    return true;
  }

  bool Units(const json& doc) {
    if (!doc.contains("units")) return true;
    const json& list = doc["units"];
    std::vector<CreateUnit> units;
    std::vector<std::string> reasons, ids;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/units/" + std::to_string(i), reason;
      auto c = Parse(api::WriteRoute::kCreateUnit, "", list[i], pointer, &reason);
      if (!c) return false;
      units.push_back(std::get<CreateUnit>(*c));
      if (!NewId(units.back().id, pointer)) return false;
      reasons.push_back(reason);
      ids.push_back(units.back().id);
    }
    std::vector<size_t> order;
    if (!Ordered(units.size(), ids, [&](size_t i) { return std::vector<std::string>{units[i].parent}; },
                 "units", "parent", &order)) {
      return false;
    }
    for (size_t i : order) Add(Part::kUnit, units[i], "/units/" + std::to_string(i), reasons[i]);
    return true;
  }

  bool Cycles(const json& doc, std::vector<size_t>* closes) {
    if (!doc.contains("cycles")) return true;
    const json& list = doc["cycles"];
    std::vector<CreateCycle> cycles;
    std::vector<std::string> reasons, ids;
    std::vector<bool> closed;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/cycles/" + std::to_string(i), reason;
      bool is_closed = false;
      if (list[i].is_object() && list[i].contains("state")) {
        const json& state = list[i]["state"];
        if (state != "open" && state != "closed") {
          return FailAt(pointer + "/state", "state must be open or closed");
        }
        is_closed = state == "closed";
      }
      auto c = Parse(api::WriteRoute::kCreateCycle, "", list[i], pointer, &reason, {"state"});
      if (!c) return false;
      cycles.push_back(std::get<CreateCycle>(*c));
      if (!NewId(cycles.back().id, pointer)) return false;
      reasons.push_back(reason);
      ids.push_back(cycles.back().id);
      closed.push_back(is_closed);
    }
    std::vector<size_t> order;
    if (!Ordered(cycles.size(), ids,
                 [&](size_t i) { return std::vector<std::string>{cycles[i].parent}; }, "cycles",
                 "parent", &order)) {
      return false;
    }
    for (size_t i : order) {
      size_t index = Add(Part::kCycle, cycles[i], "/cycles/" + std::to_string(i), reasons[i]);
      if (closed[i]) closes->push_back(index);
    }
    return true;
  }

  bool Objectives(const json& doc) {
    if (!doc.contains("objectives")) return true;
    const json& list = doc["objectives"];
    std::vector<CreateObjective> objectives;
    std::vector<std::string> reasons, ids;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/objectives/" + std::to_string(i), reason;
      auto c = Parse(api::WriteRoute::kCreateObjective, "", list[i], pointer, &reason, {"key_results"});
      if (!c) return false;
      objectives.push_back(std::get<CreateObjective>(*c));
      if (!NewId(objectives.back().id, pointer)) return false;
      reasons.push_back(reason);
      ids.push_back(objectives.back().id);
      if (list[i].contains("key_results") && !list[i]["key_results"].is_array()) {
        return FailAt(pointer + "/key_results", "key_results must be a list");
      }
    }
    std::vector<size_t> order;
    if (!Ordered(objectives.size(), ids, [&](size_t i) { return objectives[i].parents; },
                 "objectives", "parents", &order)) {
      return false;
    }
    // Key results come right after their objective, in file order, so the
    // objective lists them in that order.
    for (size_t i = 0; i < objectives.size(); ++i) {
      if (!KeyResults(list[i], objectives[i].id, "/objectives/" + std::to_string(i))) return false;
    }
    for (size_t i : order) {
      Add(Part::kObjective, objectives[i], "/objectives/" + std::to_string(i), reasons[i]);
      for (auto& c : pending_[i]) {
        plan_->commands.push_back(std::move(c));
        ++plan_->records;
      }
    }
    return true;
  }

  bool KeyResults(const json& objective, const std::string& objective_id, const std::string& pointer) {
    size_t index = pending_.size();
    pending_.emplace_back();
    if (!objective.contains("key_results")) return true;
    const json& list = objective["key_results"];
    for (size_t k = 0; k < list.size(); ++k) {
      std::string kp = pointer + "/key_results/" + std::to_string(k), reason;
      json body = list[k];
      if (body.is_object()) {
        if (body.contains("objective") && body["objective"] != objective_id) {
          return FailAt(kp + "/objective", "a key result listed under objective " + objective_id +
                                               " names another objective");
        }
        body["objective"] = objective_id;
        if (body.contains("check_ins") && !body["check_ins"].is_array()) {
          return FailAt(kp + "/check_ins", "check_ins must be a list");
        }
      }
      auto c = Parse(api::WriteRoute::kCreateKeyResult, "", body, kp, &reason, {"check_ins"});
      if (!c) return false;
      const std::string kr_id = std::get<CreateKeyResult>(*c).id;
      if (!NewId(kr_id, kp)) return false;
      pending_[index].push_back({Part::kKeyResult, std::move(*c), 0, kp, reason, std::nullopt});
      if (!body.contains("check_ins")) continue;
      const json& check_ins = body["check_ins"];
      for (size_t n = 0; n < check_ins.size(); ++n) {
        std::string cp = kp + "/check_ins/" + std::to_string(n), ci_reason;
        auto ci = Parse(api::WriteRoute::kCheckIn, kr_id, check_ins[n], cp, &ci_reason);
        if (!ci) return false;
        if (!NewId(std::get<RecordCheckIn>(*ci).id, cp)) return false;
        pending_[index].push_back({Part::kCheckIn, std::move(*ci), 0, cp, ci_reason, std::nullopt});
      }
    }
    return true;
  }

  bool TopLevelCheckIns(const json& doc) {
    if (!doc.contains("check_ins")) return true;
    const json& list = doc["check_ins"];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/check_ins/" + std::to_string(i), reason;
      json body = list[i];
      if (!body.is_object() || !body.contains("key_result") || !body["key_result"].is_string()) {
        return FailAt(body.is_object() ? pointer + "/key_result" : pointer,
                      "a check-in here names its key_result");
      }
      std::string kr = body["key_result"].get<std::string>();
      auto c = Parse(api::WriteRoute::kCheckIn, kr, body, pointer, &reason, {"key_result"});
      if (!c) return false;
      if (!NewId(std::get<RecordCheckIn>(*c).id, pointer)) return false;
      Add(Part::kCheckIn, std::move(*c), pointer, reason);
    }
    return true;
  }

  ImportPlan* plan_;
  ImportError* error_;
  const std::string& text_;
  std::unordered_map<std::string, std::string> ids_;  // id → where first defined
  std::vector<std::vector<PlannedCommand>> pending_;  // per objective: its key results and check-ins
};

bool LooksLikeJson(const std::string& path, std::string_view text) {
  auto ends_with = [&](std::string_view suffix) {
    if (path.size() < suffix.size()) return false;
    return std::equal(suffix.rbegin(), suffix.rend(), path.rbegin(),
                      [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  };
  if (ends_with(".json")) return true;
  if (ends_with(".csv")) return false;
  size_t first = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  return first != std::string_view::npos && text[first] == '{';
}

std::string EntityOf(const Command& command) {
  return std::visit(
      [](const auto& c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, RecordCheckIn>) return c.key_result;
        else if constexpr (std::is_same_v<T, CloseCycle>) return c.id;
        else if constexpr (requires { c.id; }) return c.id;
        else return "";
      },
      command);
}

}  // namespace

// --- ImportPlan ---

bool PlanImport(const std::string& path, std::string text, ImportPlan* plan, ImportError* error) {
  *plan = ImportPlan();
  plan->file = path;
  plan->name = BaseName(path);
  plan->content_hash = Sha256(text);
  bool planned = false;
  if (LooksLikeJson(path, text)) {
    plan->format = ImportFormat::kJson;
    plan->text_ = std::move(text);
    JsonPlanner planner(plan, error, plan->text_);
    planned = planner.Plan();
  } else {
    plan->format = ImportFormat::kCsv;
    CsvPlanner planner(plan, error, &plan->header_);
    planned = planner.Plan(text);
  }
  if (!planned) return false;
  // A check-in without an id gets one from the file and its place in it
  // (okrd's form: ci- and 16 hex digits), so the same file imported
  // anywhere, offline or through okrd, gives the same state.
  const std::string file_hex = ToHex(plan->content_hash);
  for (size_t i = 0; i < plan->commands.size(); ++i) {
    if (auto* ci = std::get_if<RecordCheckIn>(&plan->commands[i].command); ci && ci->id.empty()) {
      ci->id = "ci-" + ToHex(Sha256(file_hex + ":" + std::to_string(i))).substr(0, 16);
    }
  }
  return true;
}

SourceLocation ImportPlan::Locate(size_t index, const std::string& field) const {
  const PlannedCommand& c = commands[index];
  if (format == ImportFormat::kCsv) {
    std::string column = CsvColumnOf(c.part, field);
    auto it = std::find(header_.begin(), header_.end(), column);
    if (it == header_.end()) {
      column = CsvColumnOf(c.part, "");
      it = std::find(header_.begin(), header_.end(), column);
    }
    size_t number = it == header_.end() ? 0 : static_cast<size_t>(it - header_.begin()) + 1;
    return {c.line, number, column};
  }
  std::string pointer = c.pointer;
  if (!field.empty() && c.part != Part::kCloseCycle) pointer += "/" + field;
  JsonLocator locator(text_);
  SourceLocation at = LineColumn(text_, locator.Find(PointerTokens(pointer)));
  at.field = pointer;
  return at;
}

std::string ImportPlan::Reason(size_t index) const {
  const PlannedCommand& c = commands[index];
  if (!c.reason.empty()) return c.reason;
  if (format == ImportFormat::kCsv) return "imported from " + name + " line " + std::to_string(c.line);
  return "imported from " + name + " " + c.pointer;
}

std::string ImportPlan::IdempotencyKey(size_t index) const {
  return "import-" + ToHex(content_hash).substr(0, 32) + "-" + std::to_string(index);
}

// --- Validation ---

bool ValidateImport(const ImportPlan& plan, Projection state, const std::string& actor,
                    int64_t now_us, const std::function<bool(size_t)>& already_written,
                    const std::function<void(size_t)>& progress, Validation* out,
                    ImportError* error) {
  *out = Validation();
  out->skip.assign(plan.commands.size(), false);
  auto fail = [&](size_t i, const std::string& field, std::string reason) {
    *error = {plan.file, plan.Locate(i, field), std::move(reason)};
    return false;
  };
  for (size_t i = 0; i < plan.commands.size(); ++i) {
    if (progress) progress(i);
    const PlannedCommand& pc = plan.commands[i];
    if (pc.only_if_created && out->skip[*pc.only_if_created]) {
      out->skip[i] = true;
      continue;
    }
    if (already_written && already_written(i)) {
      out->skip[i] = true;
      continue;
    }
    // The frame of the organisation may already be there: a unit or cycle
    // identical to the stored one is a reference, not a new entity.
    if (const auto* u = std::get_if<CreateUnit>(&pc.command)) {
      if (const Unit* have = state.unit(u->id)) {
        const UnitFields& f = have->current();
        if (!f.retired && f.kind == u->kind && f.name == u->name && f.parent == u->parent &&
            f.email == u->email) {
          out->skip[i] = true;
          continue;
        }
        return fail(i, "id", "unit " + u->id + " already exists with other fields");
      }
    }
    if (const auto* c = std::get_if<CreateCycle>(&pc.command)) {
      if (const Cycle* have = state.cycle(c->id)) {
        const CycleFields& f = have->current();
        if (f.name == c->name && f.starts == c->starts && f.ends == c->ends && f.parent == c->parent) {
          out->skip[i] = true;
          continue;
        }
        return fail(i, "id", "cycle " + c->id + " already exists with other fields");
      }
    }
    CommandContext context{actor, plan.Reason(i), now_us};
    auto decision = Decide(state, pc.command, context);
    if (!decision.ok()) return fail(i, decision.status().field(), decision.status().message());
    if (decision->events.empty()) {
      out->skip[i] = true;
      continue;
    }
    for (EventDraft& draft : decision->events) {
      auto ev = draft.event();
      ev.setSeq(state.seq() + 1);
      ev.setRecordedAt(std::max(now_us, state.recorded_at_us()));
      ev.setVersion(state.Version(draft.entity()) + 1);
      if (Status s = state.Apply(ev.asReader()); !s.ok()) {
        return fail(i, "", "cannot apply " + EntityOf(pc.command) + ": " + s.message());
      }
    }
    out->events += decision->events.size();
    ++out->to_write;
  }
  if (progress) progress(plan.commands.size());
  return true;
}

// --- Writing ---

namespace {

// Runs the commands validation kept, several at a time, in an order that
// gives the state validation judged: units and cycles first, one by one;
// then one lane per objective (the objective, its key results in file
// order, their check-ins), lanes side by side, each objective after the
// objectives of the same import it aligns to; cycles are closed last.
// Concurrent appends share the store's group commit, which is where the
// speed comes from. `run(i)` writes command i; the first failure stops
// new work, and commands already written stay.
class LaneRunner {
 public:
  LaneRunner(const ImportPlan& plan, const Validation& validation) : plan_(plan), skip_(validation.skip) {}

  // Returns the index of the first command that failed, or nullopt.
  std::optional<size_t> Run(size_t workers, const std::function<bool(size_t)>& run,
                            const std::function<void(size_t)>& progress) {
    std::vector<size_t> frame, closes;
    std::map<std::string, size_t> lane_of;  // lane key → lane
    std::unordered_map<std::string, size_t> created_by;  // objective / key result id → command
    for (size_t i = 0; i < plan_.commands.size(); ++i) {
      const PlannedCommand& c = plan_.commands[i];
      if (const auto* o = std::get_if<CreateObjective>(&c.command)) created_by[o->id] = i;
      if (const auto* k = std::get_if<CreateKeyResult>(&c.command)) created_by[k->id] = i;
    }
    deps_.assign(plan_.commands.size(), {});
    auto lane = [&](const std::string& key) {
      auto [it, fresh] = lane_of.emplace(key, lanes_.size());
      if (fresh) lanes_.emplace_back();
      return it->second;
    };
    for (size_t i = 0; i < plan_.commands.size(); ++i) {
      if (skip_[i]) continue;
      const PlannedCommand& c = plan_.commands[i];
      switch (c.part) {
        case Part::kUnit:
        case Part::kCycle:
          frame.push_back(i);
          continue;
        case Part::kCloseCycle:
          closes.push_back(i);
          continue;
        case Part::kObjective: {
          const auto& o = std::get<CreateObjective>(c.command);
          for (const auto& parent : o.parents) {
            if (auto it = created_by.find(parent); it != created_by.end()) deps_[i].push_back(it->second);
          }
          lanes_[lane("o:" + o.id)].commands.push_back(i);
          continue;
        }
        case Part::kKeyResult:
          lanes_[lane("o:" + std::get<CreateKeyResult>(c.command).objective)].commands.push_back(i);
          continue;
        case Part::kCheckIn: {
          const std::string& kr = std::get<RecordCheckIn>(c.command).key_result;
          auto it = created_by.find(kr);
          std::string key = "k:" + kr;
          if (it != created_by.end()) key = "o:" + std::get<CreateKeyResult>(plan_.commands[it->second].command).objective;
          lanes_[lane(key)].commands.push_back(i);
          continue;
        }
      }
    }
    done_.assign(plan_.commands.size(), false);
    for (size_t i = 0; i < skip_.size(); ++i) done_[i] = skip_[i];
    // The frame first and the closes last, each in order: they are few.
    for (size_t i : frame) {
      if (!run(i)) return i;
      done_[i] = true;
      if (progress) progress(++completed_);
    }
    if (auto failed = RunLanes(workers, run, progress)) return failed;
    for (size_t i : closes) {
      if (!run(i)) return i;
      if (progress) progress(++completed_);
    }
    return std::nullopt;
  }

 private:
  struct Lane {
    std::vector<size_t> commands;
    size_t next = 0;
  };

  // Lock held. Queues lane l when its next command can run, else parks it
  // on the dependency it waits for.
  void Schedule(size_t l) {
    Lane& lane = lanes_[l];
    if (lane.next == lane.commands.size()) return;
    for (size_t dep : deps_[lane.commands[lane.next]]) {
      if (!done_[dep]) {
        waiting_[dep].push_back(l);
        return;
      }
    }
    ready_.push_back(l);
  }

  std::optional<size_t> RunLanes(size_t workers, const std::function<bool(size_t)>& run,
                                 const std::function<void(size_t)>& progress) {
    size_t remaining = 0;
    for (const Lane& lane : lanes_) remaining += lane.commands.size();
    if (remaining == 0) return std::nullopt;
    for (size_t l = 0; l < lanes_.size(); ++l) Schedule(l);
    std::optional<size_t> failed;
    size_t in_flight = 0;
    auto work = [&] {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        cv_.wait(lock, [&] { return !ready_.empty() || remaining == 0 || (failed && in_flight == 0) ||
                                    (ready_.empty() && in_flight == 0); });
        if (failed || remaining == 0 || ready_.empty()) {
          cv_.notify_all();
          return;
        }
        size_t l = ready_.front();
        ready_.pop_front();
        size_t i = lanes_[l].commands[lanes_[l].next];
        ++in_flight;
        lock.unlock();
        bool ok = run(i);
        lock.lock();
        --in_flight;
        if (!ok) {
          if (!failed || i < *failed) failed = i;
          cv_.notify_all();
          continue;
        }
        done_[i] = true;
        --remaining;
        ++lanes_[l].next;
        if (progress) progress(++completed_);
        Schedule(l);
        if (auto it = waiting_.find(i); it != waiting_.end()) {
          for (size_t waiting_lane : it->second) Schedule(waiting_lane);
          waiting_.erase(it);
        }
        cv_.notify_all();
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < std::max<size_t>(workers, 1); ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    if (!failed && remaining > 0) {
      // Unreachable while dependencies point backwards in the plan; should
      // it happen, name the first command left unwritten.
      for (const Lane& lane : lanes_) {
        if (lane.next < lane.commands.size()) return lane.commands[lane.next];
      }
    }
    return failed;
  }

  const ImportPlan& plan_;
  const std::vector<bool>& skip_;
  std::vector<std::vector<size_t>> deps_;
  std::vector<Lane> lanes_;
  std::vector<bool> done_;
  std::deque<size_t> ready_;
  std::unordered_map<size_t, std::vector<size_t>> waiting_;
  size_t completed_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

void Record(ImportWriteResult* result, std::mutex* mu, uint64_t seq) {
  std::lock_guard<std::mutex> lock(*mu);
  if (result->first_seq == 0 || seq < result->first_seq) result->first_seq = seq;
  result->last_seq = std::max(result->last_seq, seq);
  ++result->written;
}

}  // namespace

bool WriteOffline(const ImportPlan& plan, const Validation& validation, Projector* projector,
                  const std::string& actor, size_t writers,
                  const std::function<void(size_t)>& progress, ImportWriteResult* result,
                  ImportError* error) {
  *result = ImportWriteResult();
  std::mutex mu;
  std::vector<Status> failures(plan.commands.size());
  LaneRunner runner(plan, validation);
  auto failed = runner.Run(
      writers,
      [&](size_t i) {
        WriteRequest w;
        w.command = plan.commands[i].command;
        w.actor = actor;
        w.reason = plan.Reason(i);
        w.idempotency_key = plan.IdempotencyKey(i);
        w.fingerprint = Sha256(w.idempotency_key);
        auto written = projector->Write(w);
        if (!written.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          failures[i] = written.status();
          return false;
        }
        if (written->changed && !written->replayed) Record(result, &mu, written->seq);
        return true;
      },
      progress);
  if (failed) {
    const Status& s = failures[*failed];
    *error = {plan.file, plan.Locate(*failed, s.field()), s.ok() ? "not written" : s.message()};
    return false;
  }
  return true;
}

HttpCommand ToHttp(const Command& command, const std::string& reason) {
  HttpCommand out;
  json body = json::object();
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CreateUnit>) {
          out.path = "/v1/units";
          body = {{"id", c.id}, {"kind", c.kind}, {"name", c.name}};
          if (!c.parent.empty()) body["parent"] = c.parent;
          if (!c.email.empty()) body["email"] = c.email;
        } else if constexpr (std::is_same_v<T, CreateCycle>) {
          out.path = "/v1/cycles";
          body = {{"id", c.id}, {"name", c.name}, {"starts", c.starts}, {"ends", c.ends}};
          if (!c.parent.empty()) body["parent"] = c.parent;
        } else if constexpr (std::is_same_v<T, CloseCycle>) {
          out.path = "/v1/cycles/" + c.id + "/close";
        } else if constexpr (std::is_same_v<T, CreateObjective>) {
          out.path = "/v1/objectives";
          body = {{"id", c.id},       {"cycle", c.cycle},     {"owner", c.owner},
                  {"title", c.title}, {"description", c.description}, {"parents", c.parents}};
        } else if constexpr (std::is_same_v<T, CreateKeyResult>) {
          out.path = "/v1/key-results";
          body = {{"id", c.id},         {"objective", c.objective}, {"title", c.title},
                  {"metric", c.metric}, {"start", c.start},         {"target", c.target},
                  {"unit", c.unit},     {"weight", c.weight}};
          if (!c.owner.empty()) body["owner"] = c.owner;
        } else if constexpr (std::is_same_v<T, RecordCheckIn>) {
          out.path = "/v1/key-results/" + c.key_result + "/check-ins";
          body = {{"value", c.value}};
          if (!c.id.empty()) body["id"] = c.id;
          if (c.confidence) body["confidence"] = *c.confidence;
          if (!c.status.empty()) body["status"] = c.status;
          if (!c.note.empty()) body["note"] = c.note;
          if (c.measured_at_us) body["measured_at"] = FormatTimeUs(*c.measured_at_us);
        }
      },
      command);
  if (!reason.empty()) body["reason"] = reason;
  out.body = std::move(body);
  return out;
}

bool WriteOnline(const ImportPlan& plan, const Validation& validation,
                 const std::function<Result<std::unique_ptr<Client>>()>& connect, size_t writers,
                 const std::function<void(size_t)>& progress, ImportWriteResult* result,
                 ImportError* error) {
  *result = ImportWriteResult();
  std::mutex mu;
  std::vector<std::string> failures(plan.commands.size()), fields(plan.commands.size());
  // A client is not shared: each command takes one from the idle ones (or
  // connects a new one, so there are at most `writers`) and puts it back,
  // and all of them close before this returns.
  std::vector<std::unique_ptr<Client>> idle;
  LaneRunner runner(plan, validation);
  auto failed = runner.Run(
      writers,
      [&](size_t i) {
        std::unique_ptr<Client> client;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!idle.empty()) {
            client = std::move(idle.back());
            idle.pop_back();
          }
        }
        if (!client) {
          auto connected = connect();
          if (!connected.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            failures[i] = connected.status().message();
            return false;
          }
          client = std::move(connected.value());
        }
        HttpCommand h = ToHttp(plan.commands[i].command, plan.Reason(i));
        HttpAnswer a = client->Post(h.path, h.body, plan.IdempotencyKey(i));
        {
          std::lock_guard<std::mutex> lock(mu);
          idle.push_back(std::move(client));
        }
        if (!a.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          failures[i] = "okrd refused it: " + a.Describe();
          if (a.json.is_object() && a.json.contains("error") && a.json["error"].is_object() &&
              a.json["error"]["field"].is_string()) {
            fields[i] = a.json["error"]["field"].get<std::string>();
          }
          return false;
        }
        uint64_t seq = a.json.is_object() && a.json["seq"].is_number_unsigned() ? a.json["seq"].get<uint64_t>() : 0;
        Record(result, &mu, seq);
        return true;
      },
      progress);
  idle.clear();
  if (failed) {
    *error = {plan.file, plan.Locate(*failed, fields[*failed]),
              failures[*failed].empty() ? "not written" : failures[*failed]};
    return false;
  }
  return true;
}

}  // namespace okr::ctl
