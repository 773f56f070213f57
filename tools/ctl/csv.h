// CSV as spreadsheets write it (RFC 4180), read strictly and written so
// that reading it back gives the same fields.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "projections/read/spreadsheet.h"

namespace okr::ctl {

// One record: its fields and the line of the file it starts on (a quoted
// field may hold line breaks, so a record can span several lines).
struct CsvRecord {
  size_t line = 0;  // 1-based
  std::vector<std::string> fields;
};

// Where reading stopped and why.
struct CsvError {
  size_t line = 0;    // 1-based
  size_t column = 0;  // 1-based field number within the record
  std::string reason;
};

// Parses `text`: a UTF-8 byte order mark is skipped; records end with
// CRLF, LF or a lone CR; a field in double quotes may hold commas, line
// breaks and doubled quotes (line breaks inside come out as LF). Refuses
// invalid UTF-8, a quote inside an unquoted field, text after a closing
// quote, and a quoted field that never closes. Records whose fields are
// all empty (blank lines, ",,,") are dropped. False with *error set on
// refusal.
bool ParseCsv(std::string_view text, std::vector<CsvRecord>* records, CsvError* error);

// RFC 4180 quoting (projections/read/spreadsheet.h, shared with okrd's review
// CSV). Text cells are written with CsvText, which also neutralises
// formulas; numbers with FormatNumber.
using okr::CsvField;
using okr::CsvText;

// The shortest decimal that reads back as exactly `v` ("12", "0.1",
// "1e+21"): the same value always gives the same text.
std::string FormatNumber(double v);
// Parses a plain decimal number (optional sign, digits, point, exponent);
// false on anything else, including "1,5", "12%", "inf" and "nan".
bool ParseNumber(std::string_view text, double* out);

// True when `s` is valid UTF-8 (RFC 3629); else *bad_offset is the byte
// offset of the first invalid sequence.
bool ValidUtf8(std::string_view s, size_t* bad_offset);

}  // namespace okr::ctl
