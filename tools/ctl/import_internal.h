// What the parts of the importer share (tools/ctl/import_*.cc), private
// to them: the planners of each format, and the means to map a command's
// field back to where the file has it. tools/ctl/import.h is the public
// header. Everything here is a pure function of its arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tools/ctl/import.h"

namespace okr::ctl::import_internal {

using Part = PlannedCommand::Part;

// Parses CSV `text` into plan->commands and plan->records, filling
// *header with the normalised column names in file order. False with
// *error (its file from plan->file) on the first problem.
bool PlanCsv(std::string_view text, ImportPlan* plan, ImportError* error,
             std::vector<std::string>* header);
// The CSV column that carries Decide's field `field` of a `part` command;
// the part's key column for a field it does not know.
std::string CsvColumnOf(Part part, const std::string& field);

// Parses JSON `text` into plan->commands and plan->records. `text` must
// outlive the call only. False with *error on the first problem.
bool PlanJson(const std::string& text, ImportPlan* plan, ImportError* error);
// Where JSON pointer `pointer` lies in `text` (valid JSON): line and
// column of the value it names, or of the deepest part of it that exists;
// the field is the pointer.
SourceLocation LocateJsonPointer(std::string_view text, const std::string& pointer);

// A quoted excerpt of a cell or key for a reason (at most 80 bytes).
std::string Quoted(const std::string& s);
// The entity a command is about (a check-in's key result).
std::string EntityOf(const Command& command);

}  // namespace okr::ctl::import_internal
