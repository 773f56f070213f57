// Spreadsheet safety (SPEC §6): how a text cell of a CSV file is written
// so that a spreadsheet shows it rather than runs it, and how an importer
// reads it back. The one place for the rule: every CSV writer of okrd
// (the review) and of okrctl (export) calls CsvText for text cells, and
// okrctl import calls RestoreFormula on them. It lives in projections,
// the lowest library that writes CSV; okrctl links it too.
#pragma once

#include <string>
#include <string_view>

namespace okr {

// The escape put in front of a text cell a spreadsheet would run.
inline constexpr char kFormulaEscape = '\'';
// First characters that make a spreadsheet read a cell as a formula (=, +,
// -, @, TAB, CR; OWASP "CSV injection"), and the escape itself, so that
// every cell starting with the escape was escaped and the inverse is exact.
inline constexpr std::string_view kFormulaLeads = "=+-@\t\r'";

// `text` with kFormulaEscape put in front when its first character is one
// of kFormulaLeads, else unchanged. For text cells only: numbers stay
// plain (a negative number is a number, not a formula).
std::string NeutraliseFormula(std::string_view text);

// The inverse for a text cell read from a CSV file: `cell` without one
// leading kFormulaEscape, else unchanged. RestoreFormula(NeutraliseFormula(t))
// == t for every t.
std::string_view RestoreFormula(std::string_view cell);

// A field as written to a CSV file (RFC 4180), so that reading it back
// gives `value`: quoted when it holds a comma, quote, CR or LF, starts or
// ends with a space (which a reader may trim), or starts with a byte order
// mark (which, opening a file, a reader takes as the file's). Does not
// neutralise: use CsvText for text cells.
std::string CsvField(std::string_view value);

// A text cell ready to write: CsvField(NeutraliseFormula(text)).
std::string CsvText(std::string_view text);

}  // namespace okr
