#include "projections/read/spreadsheet.h"

namespace okr {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

}  // namespace

std::string NeutraliseFormula(std::string_view text) {
  if (text.empty() || kFormulaLeads.find(text.front()) == std::string_view::npos) {
    return std::string(text);
  }
  return kFormulaEscape + std::string(text);
}

std::string_view RestoreFormula(std::string_view cell) {
  if (!cell.empty() && cell.front() == kFormulaEscape) cell.remove_prefix(1);
  return cell;
}

std::string CsvField(std::string_view value) {
  bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos ||
               (!value.empty() && (value.front() == ' ' || value.back() == ' ')) ||
               value.substr(0, kUtf8Bom.size()) == kUtf8Bom;
  if (!quote) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvText(std::string_view text) { return CsvField(NeutraliseFormula(text)); }

}  // namespace okr
