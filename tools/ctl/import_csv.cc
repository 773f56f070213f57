// Planning a CSV import (docs/IMPORT.md): one row per key result (or one
// for an objective alone), an objective spread over the rows of its key
// results, which must then agree on it.
#include <algorithm>
#include <cassert>
#include <cctype>
#include <map>
#include <set>
#include <unordered_map>

#include "eventstore/base/time.h"
#include "tools/ctl/csv.h"
#include "tools/ctl/import_internal.h"

namespace okr::ctl::import_internal {
namespace {

// --- CSV columns (docs/IMPORT.md) ---

// Every column the importer knows, in the order export writes them.
const std::vector<std::string>& CsvColumns() {
  static const std::vector<std::string> kColumns = {
      "cycle",        "owner",    "objective_id", "objective_title",
      "parents",      "kr_id",    "kr_title",     "metric",
      "start",        "target",   "unit",         "current",
      "checkin_date", "kr_owner", "weight",       "objective_description"};
  return kColumns;
}

bool RequiredCsvColumn(const std::string& name) {
  static const std::set<std::string> kRequired = {
      "cycle", "owner", "objective_id", "objective_title", "kr_id", "kr_title", "start", "target"};
  return kRequired.count(name) > 0;
}

// The cells that belong to a key result: a row without kr_id leaves them empty.
const std::vector<std::string>& KeyResultColumns() {
  static const std::vector<std::string> kColumns = {"kr_title",     "metric",   "start",
                                                    "target",       "unit",     "current",
                                                    "checkin_date", "kr_owner", "weight"};
  return kColumns;
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
    if (c == ' ' || c == '-')
      out.push_back('_');
    else
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// "a; b;;c" → {"a", "b", "c"}.
std::vector<std::string> SplitParents(const std::string& parents) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= parents.size();) {
    size_t semi = parents.find(';', at);
    std::string p =
        Trim(parents.substr(at, semi == std::string::npos ? std::string::npos : semi - at));
    if (!p.empty()) out.push_back(p);
    if (semi == std::string::npos) break;
    at = semi + 1;
  }
  return out;
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
      return Fail({csv_error.line, csv_error.column, ColumnName(csv_error.column)},
                  csv_error.reason);
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
      if (!rows_[r].kr_id.empty()) AddKeyResult(rows_[r]);
    }
    assert(created_.size() == objectives_.size());
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

  // The cells of one record by column name, trimmed.
  class Cells {
   public:
    Cells(const CsvPlanner& planner, const CsvRecord& record)
        : planner_(planner), record_(record) {}
    std::string cell(const std::string& name) const {
      int i = planner_.Index(name);
      return i < 0 ? "" : Trim(record_.fields[static_cast<size_t>(i)]);
    }
    // A text cell as export wrote it: neutralised against formulas
    // (projections/read/spreadsheet.h), so the escape comes off here.
    std::string text(const std::string& name) const {
      return std::string(RestoreFormula(cell(name)));
    }
    size_t line() const { return record_.line; }

   private:
    const CsvPlanner& planner_;
    const CsvRecord& record_;
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
        return Fail({record.line, i + 1, ""}, "unknown column " + Quoted(record.fields[i]) +
                                                  " (the columns are: " + list + ")");
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
    assert(header_->size() == record.fields.size());
    return true;
  }

  bool Number(size_t line, const std::string& cell, const std::string& name, double* out) {
    if (ParseNumber(cell, out)) return true;
    return Fail(At(line, name), name + " must be a number, not " + Quoted(cell));
  }

  // As many fields as the header; extra ones only when empty.
  bool CheckWidth(const CsvRecord& record) {
    const size_t columns = header_->size();
    if (record.fields.size() < columns) {
      return Fail({record.line, record.fields.size() + 1, ColumnName(record.fields.size() + 1)},
                  "the row has " + std::to_string(record.fields.size()) + " fields, the header " +
                      std::to_string(columns) + " (missing column " +
                      ColumnName(record.fields.size() + 1) + ")");
    }
    for (size_t i = columns; i < record.fields.size(); ++i) {
      if (!Trim(record.fields[i]).empty()) {
        return Fail({record.line, i + 1, ""}, "the row has " +
                                                  std::to_string(record.fields.size()) +
                                                  " fields, the header " + std::to_string(columns));
      }
    }
    return true;
  }

  bool ReadRow(const CsvRecord& record) {
    if (!CheckWidth(record)) return false;
    Cells cells(*this, record);
    Row row;
    row.line = record.line;
    row.cycle = cells.text("cycle");
    row.owner = cells.text("owner");
    row.objective_id = cells.text("objective_id");
    row.objective_title = cells.text("objective_title");
    row.description = cells.text("objective_description");
    row.kr_id = cells.text("kr_id");
    for (const char* name : {"cycle", "owner", "objective_id", "objective_title"}) {
      if (cells.text(name).empty())
        return Fail(At(record.line, name), std::string(name) + " is required");
    }
    row.parents = SplitParents(cells.text("parents"));
    if (!(row.kr_id.empty() ? NoKeyResultCells(cells) : ReadKeyResult(cells, &row))) return false;
    if (!SameObjective(row)) return false;
    if (!objectives_.count(row.objective_id)) objectives_.emplace(row.objective_id, rows_.size());
    rows_.push_back(std::move(row));
    return true;
  }

  // A row for the objective alone leaves the key result's cells empty.
  bool NoKeyResultCells(const Cells& cells) {
    for (const auto& name : KeyResultColumns()) {
      if (!cells.cell(name).empty()) {
        return Fail(At(cells.line(), name),
                    "kr_id is empty (a row for the objective alone), so " + name + " must be too");
      }
    }
    return true;
  }

  bool ReadKeyResult(const Cells& cells, Row* row) {
    assert(!row->kr_id.empty());
    const size_t line = cells.line();
    if (auto [it, fresh] = kr_lines_.emplace(row->kr_id, line); !fresh) {
      return Fail(At(line, "kr_id"), "duplicate key result id " + row->kr_id + " (first on line " +
                                         std::to_string(it->second) + ")");
    }
    row->kr_title = cells.text("kr_title");
    row->metric = cells.text("metric");
    row->unit = cells.text("unit");
    row->kr_owner = cells.text("kr_owner");
    for (const char* name : {"start", "target"}) {
      std::string text = cells.cell(name);
      if (text.empty()) return Fail(At(line, name), std::string(name) + " is required");
      if (!Number(line, text, name, name[0] == 's' ? &row->start : &row->target)) return false;
    }
    if (std::string w = cells.cell("weight");
        !w.empty() && !Number(line, w, "weight", &row->weight)) {
      return false;
    }
    return ReadCheckIn(cells, row);
  }

  // current and checkin_date: the check-in a row may carry.
  bool ReadCheckIn(const Cells& cells, Row* row) {
    const size_t line = cells.line();
    std::string current = cells.cell("current"), date = cells.text("checkin_date");
    if (!current.empty()) {
      double v = 0;
      if (!Number(line, current, "current", &v)) return false;
      row->current = v;
    }
    if (date.empty()) return true;
    if (!row->current) {
      return Fail(At(line, "checkin_date"),
                  "checkin_date is set but current is empty: a check-in needs its value");
    }
    auto us = ParseRfc3339(date);
    if (!us) {
      return Fail(
          At(line, "checkin_date"),
          "checkin_date must be a date YYYY-MM-DD (or an RFC 3339 date-time), not " + Quoted(date));
    }
    row->measured_at_us = *us;
    return true;
  }

  // An objective spans the rows of its key results: they must agree.
  bool SameObjective(const Row& row) {
    auto it = objectives_.find(row.objective_id);
    if (it == objectives_.end()) return true;
    const Row& first = rows_[it->second];
    assert(first.objective_id == row.objective_id);
    auto differs = [&](const char* column, bool same) {
      if (same) return false;
      Fail(At(row.line, column), "objective " + row.objective_id + " has another " + column +
                                     " on line " + std::to_string(first.line));
      return true;
    };
    return !(differs("cycle", first.cycle == row.cycle) ||
             differs("owner", first.owner == row.owner) ||
             differs("objective_title", first.objective_title == row.objective_title) ||
             differs("parents", first.parents == row.parents) ||
             differs("objective_description", first.description == row.description));
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

  // The key result of `row`, then its check-in when the row has one.
  void AddKeyResult(const Row& row) {
    assert(created_.count(row.objective_id));
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
    if (!row.current) return;
    RecordCheckIn ci;
    ci.key_result = row.kr_id;
    ci.value = *row.current;
    ci.measured_at_us = row.measured_at_us;
    Add(Part::kCheckIn, std::move(ci), row.line);
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

}  // namespace

bool PlanCsv(std::string_view text, ImportPlan* plan, ImportError* error,
             std::vector<std::string>* header) {
  assert(plan->commands.empty() && header->empty());
  CsvPlanner planner(plan, error, header);
  return planner.Plan(text);
}

std::string CsvColumnOf(Part part, const std::string& field) {
  static const std::map<std::string, std::string> kObjective = {
      {"id", "objective_id"},
      {"cycle", "cycle"},
      {"owner", "owner"},
      {"title", "objective_title"},
      {"description", "objective_description"},
      {"parents", "parents"},
      {"", "objective_id"}};
  static const std::map<std::string, std::string> kKeyResult = {
      {"id", "kr_id"},       {"objective", "objective_id"},
      {"title", "kr_title"}, {"owner", "kr_owner"},
      {"metric", "metric"},  {"start", "start"},
      {"target", "target"},  {"unit", "unit"},
      {"weight", "weight"},  {"cycle", "cycle"},
      {"", "kr_id"}};
  static const std::map<std::string, std::string> kCheckIn = {
      {"value", "current"},    {"measured_at", "checkin_date"},
      {"key_result", "kr_id"}, {"id", "kr_id"},
      {"cycle", "cycle"},      {"", "current"}};
  const auto& table = part == Part::kObjective   ? kObjective
                      : part == Part::kKeyResult ? kKeyResult
                                                 : kCheckIn;
  auto it = table.find(field);
  if (it == table.end()) it = table.find("");
  assert(it != table.end());
  return it->second;
}

}  // namespace okr::ctl::import_internal
