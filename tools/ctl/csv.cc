#include "tools/ctl/csv.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace okr::ctl {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool AllEmpty(const std::vector<std::string>& fields) {
  for (const auto& f : fields) {
    if (!f.empty()) return false;
  }
  return true;
}

}  // namespace

bool ValidUtf8(std::string_view s, size_t* bad_offset) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (ok) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(len == 2 && c < 0xc2) &&                            // overlong
           !(len == 3 && c == 0xe0 && c1 < 0xa0) &&              // overlong
           !(len == 3 && c == 0xed && c1 > 0x9f) &&              // UTF-16 surrogate
           !(len == 4 && c == 0xf0 && c1 < 0x90) &&              // overlong
           !(len == 4 && (c > 0xf4 || (c == 0xf4 && c1 > 0x8f)));  // past U+10FFFF
    }
    if (!ok) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

bool ParseCsv(std::string_view text, std::vector<CsvRecord>* records, CsvError* error) {
  records->clear();
  size_t offset = 0;
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) offset = kUtf8Bom.size();
  size_t bad = 0;
  if (!ValidUtf8(text.substr(offset), &bad)) {
    bad += offset;
    size_t line = 1, column = 1;
    for (size_t i = offset; i < bad; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else if (text[i] == ',') {
        ++column;
      }
    }
    *error = {line, column, "the file is not UTF-8 (save it as \"CSV UTF-8\")"};
    return false;
  }

  size_t line = 1;
  CsvRecord record{line, {}};
  std::string field;
  bool field_started = false;  // the current record has at least this field
  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    if (!AllEmpty(record.fields)) records->push_back(std::move(record));
    record = CsvRecord{line, {}};
    field_started = false;
  };
  // Consumes a line break at i (CRLF, LF or CR); returns its length or 0.
  auto line_break = [&](size_t i) -> size_t {
    if (text[i] == '\n') return 1;
    if (text[i] == '\r') return i + 1 < text.size() && text[i + 1] == '\n' ? 2 : 1;
    return 0;
  };

  size_t i = offset;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' && field.empty() && !field_started) {
      // A quoted field: runs to the quote not doubled.
      size_t open_line = line, open_column = record.fields.size() + 1;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (size_t n = line_break(i)) {
          field.push_back('\n');
          ++line;
          i += n;
          continue;
        }
        field.push_back(text[i++]);
      }
      if (!closed) {
        *error = {open_line, open_column,
                  "unbalanced quotes: the quoted field opened here never closes"};
        return false;
      }
      field_started = true;
      if (i < text.size() && text[i] != ',' && !line_break(i)) {
        *error = {line, record.fields.size() + 1,
                  "text after a closing quote (a quote inside a quoted field is written \"\")"};
        return false;
      }
      continue;
    }
    if (c == ',') {
      end_field();
      field_started = false;
      ++i;
      continue;
    }
    if (size_t n = line_break(i)) {
      i += n;
      ++line;
      end_record();
      record.line = line;
      continue;
    }
    if (c == '"') {
      *error = {line, record.fields.size() + 1,
                "a quote inside an unquoted field (quote the whole field and double the quote)"};
      return false;
    }
    field.push_back(c);
    field_started = true;
    ++i;
  }
  if (field_started || !field.empty() || !record.fields.empty()) end_record();
  return true;
}

std::string FormatNumber(double v) {
  if (v == 0) return "0";  // also -0
  char buf[64];
  auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

bool ParseNumber(std::string_view text, double* out) {
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != text.size()) return false;
  std::string_view body = text[0] == '+' ? text.substr(1) : text;
  double v = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec != std::errc() || ptr != body.data() + body.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace okr::ctl
