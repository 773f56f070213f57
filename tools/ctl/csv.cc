#include "tools/ctl/csv.h"

#include <cassert>
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
      ok = !(len == 2 && c < 0xc2) &&                              // overlong
           !(len == 3 && c == 0xe0 && c1 < 0xa0) &&                // overlong
           !(len == 3 && c == 0xed && c1 > 0x9f) &&                // UTF-16 surrogate
           !(len == 4 && c == 0xf0 && c1 < 0x90) &&                // overlong
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

namespace {

// Where the first invalid byte `bad` lies, as a line and a field number
// (commas counted; good enough to find it in a spreadsheet).
CsvError NotUtf8(std::string_view text, size_t offset, size_t bad) {
  assert(offset <= bad && bad < text.size());
  size_t line = 1, column = 1;
  for (size_t i = offset; i < bad; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if (text[i] == ',') {
      ++column;
    }
  }
  return {line, column, "the file is not UTF-8 (save it as \"CSV UTF-8\")"};
}

// Reads the records of valid UTF-8 text in one pass. Single use.
class CsvReader {
 public:
  CsvReader(std::string_view text, size_t offset, std::vector<CsvRecord>* records)
      : text_(text), i_(offset), records_(records) {}

  bool Read(CsvError* error) {
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '"' && field_.empty() && !field_started_) {
        if (!ReadQuoted(error)) return false;
        continue;
      }
      if (c == ',') {
        EndField();
        field_started_ = false;
        ++i_;
        continue;
      }
      if (size_t n = LineBreak(i_)) {
        i_ += n;
        ++line_;
        EndRecord();
        record_.line = line_;
        continue;
      }
      if (c == '"') {
        *error = {line_, record_.fields.size() + 1,
                  "a quote inside an unquoted field (quote the whole field and double the quote)"};
        return false;
      }
      field_.push_back(c);
      field_started_ = true;
      ++i_;
    }
    if (field_started_ || !field_.empty() || !record_.fields.empty()) EndRecord();
    assert(i_ == text_.size());
    return true;
  }

 private:
  // At an opening quote: the field runs to the quote not doubled, and
  // only a comma or a line break may follow it.
  bool ReadQuoted(CsvError* error) {
    assert(text_[i_] == '"');
    size_t open_line = line_, open_column = record_.fields.size() + 1;
    ++i_;
    bool closed = false;
    while (i_ < text_.size()) {
      if (text_[i_] == '"') {
        if (i_ + 1 < text_.size() && text_[i_ + 1] == '"') {
          field_.push_back('"');
          i_ += 2;
          continue;
        }
        ++i_;
        closed = true;
        break;
      }
      if (size_t n = LineBreak(i_)) {
        field_.push_back('\n');
        ++line_;
        i_ += n;
        continue;
      }
      field_.push_back(text_[i_++]);
    }
    if (!closed) {
      *error = {open_line, open_column,
                "unbalanced quotes: the quoted field opened here never closes"};
      return false;
    }
    field_started_ = true;
    if (i_ < text_.size() && text_[i_] != ',' && !LineBreak(i_)) {
      *error = {line_, record_.fields.size() + 1,
                "text after a closing quote (a quote inside a quoted field is written \"\")"};
      return false;
    }
    return true;
  }

  void EndField() {
    record_.fields.push_back(std::move(field_));
    field_.clear();
  }

  void EndRecord() {
    EndField();
    if (!AllEmpty(record_.fields)) records_->push_back(std::move(record_));
    record_ = CsvRecord{line_, {}};
    field_started_ = false;
  }

  // The length of the line break at i (CRLF, LF or CR), or 0.
  size_t LineBreak(size_t i) const {
    if (text_[i] == '\n') return 1;
    if (text_[i] == '\r') return i + 1 < text_.size() && text_[i + 1] == '\n' ? 2 : 1;
    return 0;
  }

  std::string_view text_;
  size_t i_;
  std::vector<CsvRecord>* records_;
  size_t line_ = 1;
  CsvRecord record_{1, {}};
  std::string field_;
  bool field_started_ = false;  // the current record has at least this field
};

}  // namespace

bool ParseCsv(std::string_view text, std::vector<CsvRecord>* records, CsvError* error) {
  records->clear();
  size_t offset = 0;
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) offset = kUtf8Bom.size();
  size_t bad = 0;
  if (!ValidUtf8(text.substr(offset), &bad)) {
    *error = NotUtf8(text, offset, bad + offset);
    return false;
  }
  CsvReader reader(text, offset, records);
  return reader.Read(error);
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
