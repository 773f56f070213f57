// Importing OKRs from spreadsheets (CSV) and JSON: docs/IMPORT.md.
//
//   plan      parse the whole file into commands, each remembering where
//             in the file it came from; nothing is decided yet
//   validate  decide every command in order against a scratch copy of the
//             projection, folding each decision's events into the copy,
//             so command n is judged on the state commands 0..n-1 leave
//   write     only when every command passed: the same commands through
//             the one write path (Projector::Write offline, the HTTP API
//             online)
//
// A bad row stops the import at validation with file, line, column and
// reason, and nothing is written.
//
// Each step has its file: import_plan.cc (with import_csv.cc and
// import_json.cc, the planners of each format, sharing
// import_internal.h), import_validate.cc, import_write.cc.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/event_codec.h"
#include "projections/domain/commands.h"
#include "projections/domain/projection.h"
#include "projections/service/projector.h"
#include "tools/ctl/client.h"

namespace okr::ctl {

// Limits on an import (each tested or documented).
inline constexpr size_t kMaxImportFileBytes = 256u << 20;  // 256 MiB
inline constexpr size_t kMaxCsvFields = 64;                // columns in one row
// Commands written at once: enough for the store's group commit to share
// each sync among many appends, few enough for a two-core machine.
inline constexpr size_t kOfflineImportWriters = 32;
inline constexpr size_t kOnlineImportWriters = 8;  // connections to okrd

// Where something is in the import file: 1-based line and column (for a
// CSV the column is the field's number; for JSON, the character), and the
// CSV column name or the JSON pointer.
struct SourceLocation {
  size_t line = 0;
  size_t column = 0;
  std::string field;
};

// Why an import was refused.
struct ImportError {
  std::string file;
  SourceLocation at;
  std::string reason;

  // "hr.csv:7:10 (target): target must differ from start"
  std::string ToString() const;
};

enum class ImportFormat { kCsv, kJson };

// One command of the import, with its provenance.
struct PlannedCommand {
  // Which part of a CSV row or JSON object the command stems from, to map
  // the field Decide names ("title") back to a column or key.
  enum class Part { kUnit, kCycle, kObjective, kKeyResult, kCheckIn, kCloseCycle };
  Part part;
  Command command;
  size_t line = 0;      // CSV: the row's first line
  std::string pointer;  // JSON: the object it comes from ("/objectives/3")
  std::string reason;   // JSON: the object's own "reason"; empty: the default
  // A cycle closed at the end of a JSON import is closed only when this
  // import created it (the index of that CreateCycle).
  std::optional<size_t> only_if_created;
};

class ImportPlan {
 public:
  std::string file;  // as given
  std::string name;  // the file's base name, for reasons
  ImportFormat format = ImportFormat::kCsv;
  Hash content_hash{};  // SHA-256 of the file's bytes
  size_t records = 0;   // data rows (CSV) or objects (JSON)
  std::vector<PlannedCommand> commands;

  // Where field `field` (Decide's name for it) of command `index` lies.
  SourceLocation Locate(size_t index, const std::string& field) const;
  // The reason recorded with command `index`'s events.
  std::string Reason(size_t index) const;
  // The idempotency key of command `index`: the same file imported again
  // gives the same keys, so a rerun recognises what is already written.
  std::string IdempotencyKey(size_t index) const;

 private:
  friend bool PlanImport(const std::string& path, std::string text, ImportPlan* plan,
                         ImportError* error);
  std::vector<std::string> header_;  // CSV: normalised column names, in file order
  std::string text_;                 // JSON: the text, to locate pointers on error
};

// Parses `text` (the contents of `path`; CSV or JSON by extension, else by
// its first character) into a plan. False with *error on the first problem.
bool PlanImport(const std::string& path, std::string text, ImportPlan* plan, ImportError* error);

// What validation found.
struct Validation {
  // Commands that change nothing: a unit or cycle the store already holds
  // with the same fields, or (offline) a command an earlier, interrupted
  // run of this same import already wrote.
  std::vector<bool> skip;
  size_t to_write = 0;  // commands left to write
  size_t events = 0;    // events they append
};

// Decides every command against a copy of `state`, in order, as `actor`
// at `now_us`. `already_written(index)` (optional) says whether an earlier
// run wrote command `index`. False with *error at the first refusal.
bool ValidateImport(const ImportPlan& plan, Projection state, const std::string& actor,
                    int64_t now_us, const std::function<bool(size_t)>& already_written,
                    const std::function<void(size_t)>& progress, Validation* out,
                    ImportError* error);

struct ImportWriteResult {
  size_t written = 0;  // commands written
  uint64_t first_seq = 0, last_seq = 0;
};

// Writes the validated plan through `projector` as `actor`, `writers`
// commands at a time (concurrent appends share one durable write): units
// and cycles first, then each objective with its key results and check-ins
// in file order, objectives after those they align to, cycles closed last.
// The log's order of independent objectives may vary; the state does not.
// A refusal here (only a storage failure, or a change made between
// validation and write) stops with *error; the commands written so far
// stay, and running the same import again resumes after them.
bool WriteOffline(const ImportPlan& plan, const Validation& validation, Projector* projector,
                  const std::string& actor, size_t writers,
                  const std::function<void(size_t)>& progress, ImportWriteResult* result,
                  ImportError* error);

// The same through okrd's HTTP API: one connection per writer (from
// `connect`), each command with the idempotency key a rerun would use.
bool WriteOnline(const ImportPlan& plan, const Validation& validation,
                 const std::function<Result<std::unique_ptr<Client>>()>& connect, size_t writers,
                 const std::function<void(size_t)>& progress, ImportWriteResult* result,
                 ImportError* error);

}  // namespace okr::ctl
