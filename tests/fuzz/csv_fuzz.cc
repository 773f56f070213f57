// CSV as okrctl import reads it (tools/ctl/csv.h): ParseCsv must refuse
// malformed text with a line and a reason, never crash; records it
// accepts, written back with CsvField, must read back the same; numbers
// ParseNumber accepts must read back the same from FormatNumber; every
// field neutralised against formulas must restore to itself.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "tools/ctl/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<okr::ctl::CsvRecord> records;
  okr::ctl::CsvError error;
  if (!okr::ctl::ParseCsv(text, &records, &error)) {
    FUZZ_CHECK(error.line >= 1 && !error.reason.empty());
  } else {
    std::string written;
    for (const auto& r : records) {
      for (size_t i = 0; i < r.fields.size(); ++i) {
        if (i > 0) written += ',';
        written += okr::ctl::CsvField(r.fields[i]);
        FUZZ_CHECK(okr::RestoreFormula(okr::NeutraliseFormula(r.fields[i])) == r.fields[i]);
      }
      written += "\r\n";
    }
    std::vector<okr::ctl::CsvRecord> again;
    FUZZ_CHECK(okr::ctl::ParseCsv(written, &again, &error));
    FUZZ_CHECK(again.size() == records.size());
    for (size_t k = 0; k < records.size(); ++k) FUZZ_CHECK(again[k].fields == records[k].fields);
  }
  double value = 0;
  if (okr::ctl::ParseNumber(text, &value) && std::isfinite(value)) {
    double back = 0;
    FUZZ_CHECK(okr::ctl::ParseNumber(okr::ctl::FormatNumber(value), &back));
    FUZZ_CHECK(back == value);
  }
  return 0;
}
